"""Alignment and uniformity of L2-normalised embeddings (Wang & Isola, ICML 2020).

alignment = mean over positive pairs of ||x − y||² (lower: positives closer);
uniformity = log mean over distinct pairs of exp(−2·||x_i − x_j||²) (lower: spread over the sphere).
Intra-class variation: mean cosine distance of same-speaker pairs, of different-speaker pairs, and their ratio.
"""

from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F


def alignment(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """(N, D), (N, D) -> scalar: mean squared distance of the normalised rows i of both."""
    return (F.normalize(first, dim=1) - F.normalize(second, dim=1)).square().sum(dim=1).mean()


def uniformity(x: torch.Tensor, t: float = 2.0) -> torch.Tensor:
    """(N, D), N >= 2 -> scalar: log of the mean Gaussian potential over the N(N−1)/2 pairs."""
    return torch.pdist(F.normalize(x, dim=1)).square().mul(-t).exp().mean().log()


def _pairs(speakers: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(N,) speaker ids -> (first, second, same): the row indices of every pair of distinct rows,
    (N(N−1)/2,) each, and whether the pair shares a speaker."""
    first, second = torch.triu_indices(len(speakers), len(speakers), offset=1, device=speakers.device)
    return first, second, speakers[first] == speakers[second]


def speaker_alignment(x: torch.Tensor, speakers: torch.Tensor) -> torch.Tensor:
    """(N, D), (N,) speaker ids -> scalar: alignment over every same-speaker pair of distinct rows."""
    first, second, same = _pairs(speakers)
    if not same.any():
        raise ValueError("no two embeddings share a speaker: alignment needs positive pairs")
    return alignment(x[first[same]], x[second[same]])


def intra_class_distances(x: torch.Tensor, speakers: torch.Tensor) -> Tuple[float, float, float]:
    """(N, D), (N,) speaker ids -> (mean within-speaker cosine distance, mean between-speaker cosine
    distance, their ratio) over every pair of distinct rows; cosine distance = 1 − cos. A lower ratio:
    utterances of one speaker lie closer together relative to other speakers'."""
    normalised = F.normalize(x, dim=1)
    first, second, same = _pairs(speakers)
    distance = 1.0 - (normalised[first] * normalised[second]).sum(dim=1)
    if not same.any() or same.all():
        raise ValueError("intra-class distances need two embeddings of one speaker and two of different speakers")
    within, between = distance[same].mean().item(), distance[~same].mean().item()
    return within, between, within / between
