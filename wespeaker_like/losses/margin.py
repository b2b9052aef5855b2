"""Softmax classifiers with margins: plain softmax, AM (additive cosine), AAM (additive angle).

All take embeddings (B, D) and integer labels (B,) and return the mean cross-entropy.
``logits(emb, labels)`` gives the (B, C) scaled logits with the margin applied to the target class
(use ``logits(emb, None)`` at inference: no margin). ``margin`` is a plain attribute so a margin
schedule can change it during training.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from wespeaker_like.registry import LOSSES


class MarginSoftmax(nn.Module):
    """Cosine classifier with scale ``s`` and a margin on the target logit.

    aam: s·cos(θ_y + m), with s·(cos θ_y − m·sin m) where θ_y + m > π (keeps the logit monotonic);
    am:  s·(cos θ_y − m).
    """

    def __init__(self, embed_dim: int, num_classes: int, margin: float = 0.2, scale: float = 32.0,
                 margin_type: str = "aam"):
        super().__init__()
        if margin_type not in ("aam", "am"):
            raise ValueError(f"margin_type must be 'aam' or 'am', got '{margin_type}'")
        self.weight = nn.Parameter(torch.empty(num_classes, embed_dim))
        nn.init.xavier_normal_(self.weight)
        self.margin = float(margin)
        self.scale = float(scale)
        self.margin_type = margin_type

    def logits(self, emb: torch.Tensor, labels: Optional[torch.Tensor]) -> torch.Tensor:
        cosine = F.linear(F.normalize(emb.float()), F.normalize(self.weight.float()))
        if labels is None or self.margin == 0.0:
            return self.scale * cosine
        target_cos = cosine.gather(1, labels[:, None])
        if self.margin_type == "am":
            target = target_cos - self.margin
        else:
            m = self.margin
            sine = torch.sqrt((1.0 - target_cos * target_cos).clamp(min=1e-7))
            shifted = target_cos * math.cos(m) - sine * math.sin(m)
            # θ + m > π  <=>  cos θ < cos(π − m)
            target = torch.where(target_cos > math.cos(math.pi - m), shifted, target_cos - m * math.sin(m))
        return self.scale * cosine.scatter(1, labels[:, None], target)

    def forward(self, emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(self.logits(emb, labels), labels)


@LOSSES.register("aam")
class AAMSoftmax(MarginSoftmax):
    def __init__(self, embed_dim: int, num_classes: int, margin: float = 0.2, scale: float = 32.0):
        super().__init__(embed_dim, num_classes, margin, scale, "aam")


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
