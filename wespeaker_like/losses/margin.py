"""Softmax classifiers with margins: plain softmax, AM (additive cosine), AAM (additive angle).

All take embeddings (B, D) and integer labels (B,) and return the mean cross-entropy.
``logits(emb, labels)`` gives the (B, C) scaled logits with the margin applied to the target class
(use ``logits(emb, None)`` at inference: no margin). ``margin`` is a plain attribute so a margin
schedule can change it during training. ``margin_logits`` does the same on given cosines (the
3D-Speaker losses take cosines), and ``angular_margin`` is the cos(θ + m) shift the contrastive
losses share.

Where θ + m > π, cos(θ + m) would grow again with θ; the two public references replace it
differently (``fallback``):

- ``voxceleb_trainer``: cos θ − m·sin m (jumps at θ = π − m);
- ``3dspeaker``: cos θ − (1 − cos m) (continuous at θ = π − m; 3D-Speaker's ArcMarginLoss, paper 004).
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from wespeaker_like.registry import LOSSES

FALLBACKS = ("voxceleb_trainer", "3dspeaker")


def compute_dtype(x: torch.Tensor) -> torch.Tensor:
    """``x`` in float32 at least (half inputs under autocast), float64 kept (parity tests)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def angular_margin(cosine: torch.Tensor, margin: float, fallback: str = "voxceleb_trainer") -> torch.Tensor:
    """Elementwise cos(θ + m) for cosines in [-1, 1], with ``fallback`` where θ + m > π (same shape)."""
    if fallback not in FALLBACKS:
        raise ValueError(f"fallback must be one of {', '.join(FALLBACKS)}, got '{fallback}'")
    sine = torch.sqrt((1.0 - cosine * cosine).clamp(min=1e-7))
    shifted = cosine * math.cos(margin) - sine * math.sin(margin)
    below = cosine - (margin * math.sin(margin) if fallback == "voxceleb_trainer" else 1.0 - math.cos(margin))
    # θ + m > π  <=>  cos θ < cos(π − m)
    return torch.where(cosine > math.cos(math.pi - margin), shifted, below)


def margin_logits(cosine: torch.Tensor, labels: Optional[torch.Tensor], margin: float, scale: float,
                  margin_type: str = "aam", fallback: str = "voxceleb_trainer") -> torch.Tensor:
    """(B, C) cosines, (B,) labels -> (B, C) logits ``scale·cos`` with the margin on each target."""
    if labels is None or margin == 0.0:
        return scale * cosine
    target_cos = cosine.gather(1, labels[:, None])
    if margin_type == "am":
        target = target_cos - margin
    else:
        target = angular_margin(target_cos, margin, fallback)
    return scale * cosine.scatter(1, labels[:, None], target)


class MarginSoftmax(nn.Module):
    """Cosine classifier with scale ``s`` and a margin on the target logit.

    aam: s·cos(θ_y + m), with ``fallback`` where θ_y + m > π (module docstring); am: s·(cos θ_y − m).
    """

    def __init__(self, embed_dim: int, num_classes: int, margin: float = 0.2, scale: float = 32.0,
                 margin_type: str = "aam", fallback: str = "voxceleb_trainer"):
        super().__init__()
        if margin_type not in ("aam", "am"):
            raise ValueError(f"margin_type must be 'aam' or 'am', got '{margin_type}'")
        if fallback not in FALLBACKS:
            raise ValueError(f"fallback must be one of {', '.join(FALLBACKS)}, got '{fallback}'")
        self.weight = nn.Parameter(torch.empty(num_classes, embed_dim))
        nn.init.xavier_normal_(self.weight)
        self.margin = float(margin)
        self.scale = float(scale)
        self.margin_type = margin_type
        self.fallback = fallback

    def logits(self, emb: torch.Tensor, labels: Optional[torch.Tensor]) -> torch.Tensor:
        emb = compute_dtype(emb)
        cosine = F.linear(F.normalize(emb), F.normalize(self.weight.to(emb.dtype)))
        return margin_logits(cosine, labels, self.margin, self.scale, self.margin_type, self.fallback)

    def forward(self, emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(self.logits(emb, labels), labels)


def uniform_cross_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of softmax(logits) (B, C) to the uniform distribution, −(1/C)·Σ_c log p_c,
    averaged over the batch (scalar); minimal when every class is equally likely."""
    return -F.log_softmax(compute_dtype(logits), dim=1).mean()


@LOSSES.register("aam")
class AAMSoftmax(MarginSoftmax):
    def __init__(self, embed_dim: int, num_classes: int, margin: float = 0.2, scale: float = 32.0,
                 fallback: str = "voxceleb_trainer"):
        super().__init__(embed_dim, num_classes, margin, scale, "aam", fallback)


@LOSSES.register("am")
class AMSoftmax(MarginSoftmax):
    def __init__(self, embed_dim: int, num_classes: int, margin: float = 0.2, scale: float = 32.0):
        super().__init__(embed_dim, num_classes, margin, scale, "am")


@LOSSES.register("softmax")
class Softmax(nn.Module):
    """Plain linear classifier + cross-entropy (the 'CE' baseline rows). ``margin`` is ignored (0)."""

    def __init__(self, embed_dim: int, num_classes: int):
        super().__init__()
        self.linear = nn.Linear(embed_dim, num_classes)
        self.margin = 0.0

    def logits(self, emb: torch.Tensor, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.linear(emb.float())

    def forward(self, emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(self.logits(emb), labels)
