"""Utterance-level CMN for callers not yet on ``FrontEnd.normalise`` (features/frontends.py).

The front-ends themselves (Kaldi fbank/MFCC and the others) live in ``features.frontends``.
"""

from __future__ import annotations

import numpy as np
import torch


def apply_cmn(feats: torch.Tensor | np.ndarray):
    """Utterance-level cepstral mean normalisation over time: (T, F) -> (T, F)."""
    return feats - feats.mean(0, keepdims=True) if isinstance(feats, np.ndarray) else feats - feats.mean(0, keepdim=True)
