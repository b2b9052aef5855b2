"""Kaldi-compatible features computed with ``torchaudio.compliance.kaldi``.

``compute_features(samples, cfg)`` takes a float waveform in [-1, 1] of shape (num_samples,) and
returns a float32 tensor (num_frames, dim). With 25 ms windows and a 10 ms shift (snip_edges),
num_frames = 1 + (num_samples - 400) // 160 at 16 kHz.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping

import numpy as np
import torch
import torchaudio.compliance.kaldi as kaldi

FEATURE_DEFAULTS: Dict[str, Any] = {
    "type": "fbank",          # fbank | mfcc
    "sample_rate": 16000,
    "num_mel_bins": 80,
    "num_ceps": 40,           # mfcc only
    "frame_length": 25.0,     # ms
    "frame_shift": 10.0,      # ms
    "dither": 0.0,            # 0 keeps stage 3 deterministic
    "window_type": "hamming",
}


def min_samples(cfg: Mapping[str, Any]) -> int:
    """Samples needed for one frame."""
    return int(cfg["sample_rate"] * cfg["frame_length"] / 1000)


def compute_features(samples: np.ndarray, cfg: Mapping[str, Any]) -> torch.Tensor:
    """(num_samples,) float waveform -> (num_frames, dim) float32 features."""
    cfg = {**FEATURE_DEFAULTS, **cfg}
    # Kaldi works on 16-bit integer scale; the log-energies then match Kaldi's own binaries.
    wave = torch.as_tensor(samples, dtype=torch.float32).unsqueeze(0) * (1 << 15)
    common = dict(
        sample_frequency=cfg["sample_rate"], frame_length=cfg["frame_length"], frame_shift=cfg["frame_shift"],
        dither=cfg["dither"], window_type=cfg["window_type"], energy_floor=0.0,
    )
    if cfg["type"] == "fbank":
        return kaldi.fbank(wave, num_mel_bins=cfg["num_mel_bins"], **common)
    if cfg["type"] == "mfcc":
        return kaldi.mfcc(wave, num_mel_bins=cfg["num_mel_bins"], num_ceps=cfg["num_ceps"], **common)
    raise ValueError(f"unknown feature type '{cfg['type']}' (expected fbank or mfcc)")


def apply_cmn(feats: torch.Tensor | np.ndarray):
    """Utterance-level cepstral mean normalisation over time: (T, F) -> (T, F)."""
    return feats - feats.mean(0, keepdims=True) if isinstance(feats, np.ndarray) else feats - feats.mean(0, keepdim=True)
