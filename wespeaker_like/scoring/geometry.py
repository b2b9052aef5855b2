"""Alignment and uniformity of L2-normalised embeddings (Wang & Isola, ICML 2020).

alignment = mean over positive pairs of ||x − y||² (lower: positives closer);
uniformity = log mean over distinct pairs of exp(−2·||x_i − x_j||²) (lower: spread over the sphere).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def alignment(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """(N, D), (N, D) -> scalar: mean squared distance of the normalised rows i of both."""
    return (F.normalize(first, dim=1) - F.normalize(second, dim=1)).square().sum(dim=1).mean()


def uniformity(x: torch.Tensor, t: float = 2.0) -> torch.Tensor:
    """(N, D), N >= 2 -> scalar: log of the mean Gaussian potential over the N(N−1)/2 pairs."""
    return torch.pdist(F.normalize(x, dim=1)).square().mul(-t).exp().mean().log()


def speaker_alignment(x: torch.Tensor, speakers: torch.Tensor) -> torch.Tensor:
    """(N, D), (N,) speaker ids -> scalar: alignment over every same-speaker pair of distinct rows."""
    first, second = torch.triu_indices(len(x), len(x), offset=1, device=x.device)
    same = speakers[first] == speakers[second]
    if not same.any():
        raise ValueError("no two embeddings share a speaker: alignment needs positive pairs")
    return alignment(x[first[same]], x[second[same]])
