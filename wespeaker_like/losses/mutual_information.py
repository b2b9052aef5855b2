"""Mutual-information lower bounds.

* InfoNCE of I(z; h) with a Gaussian critic (paper 004, eq. 4-7; InfoCL's "LBE"). The critic
  models p(z | h) = N(f(h), σ²I) with a learned mean f (an MLP), and scores a pair by
  −ρ·||z − f(h)||². ρ and the noise std σ are independent settings, as the paper gives them.
* MINE's Donsker–Varadhan bound (paper 001, eq. 5) from a statistics network's scores
  (``models/statistics_network.py``).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from wespeaker_like.training.distributed import world

CONTRASTS = ("means", "embeddings")


def gaussian_infonce(z: torch.Tensor, mu: torch.Tensor, rho: float = 0.05, positive_term: bool = True,
                     contrast: str = "means") -> torch.Tensor:
    """InfoNCE estimate (scalar, to be maximised) from embeddings z (N, D) and critic means mu (N, D).

    score_ij = −ρ·||z_i − mu_j||². With ``contrast="means"`` each z_i is contrasted with every mean
    (InfoCL): Î = mean_i [score_ii − LSE_j score_ij] + log N; with ``"embeddings"`` each mean with
    every z (eq. 6 as printed: LSE over i of score_ij for row j). ``positive_term=False`` drops
    score_ii and log N (InfoCL's form, and eq. 6 literally): the value is then −mean LSE.
    """
    if contrast not in CONTRASTS:
        raise ValueError(f"contrast must be one of {', '.join(CONTRASTS)}, got '{contrast}'")
    squared_distance = z.square().sum(1)[:, None] + mu.square().sum(1)[None, :] - 2.0 * z @ mu.T  # O(N²) memory
    scores = -rho * squared_distance
    if contrast == "embeddings":
        scores = scores.T
    estimate = -torch.logsumexp(scores, dim=1).mean()
    if positive_term:
        estimate = estimate + scores.diagonal().mean() + math.log(len(z))
    return estimate


class GaussianCriticInfoNCE(nn.Module):
    """I(z; h) estimator: critic mean f(h) = Linear(d_h, hidden) → ReLU → Linear(hidden, d_z).

    ``forward(h (N, d_h), z (N, d_z))`` returns the estimate (scalar; the loss is its negative).
    """

    def __init__(self, low_level_dim: int, embed_dim: int, hidden: int = 512, rho: float = 0.05,
                 positive_term: bool = True, contrast: str = "means"):
        super().__init__()
        self.critic_mean = nn.Sequential(nn.Linear(low_level_dim, hidden), nn.ReLU(), nn.Linear(hidden, embed_dim))
        self.rho, self.positive_term, self.contrast = float(rho), bool(positive_term), contrast

    def forward(self, h: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return gaussian_infonce(z, self.critic_mean(h), self.rho, self.positive_term, self.contrast)


def injected_noise(seed: int, progress: float, sigma: float, num_views: int, batch: int, dim: int,
                   like: torch.Tensor) -> torch.Tensor:
    """σ·ε for this rank's rows, view-major (num_views·batch, dim), cut from one draw for the global
    batch: the same on every rank and after a resume (it depends on ``seed`` and ``progress`` only)."""
    rank, world_size = world()
    generator = torch.Generator(like.device)
    generator.manual_seed(seed * 1_000_003 + round(progress * 1e9))
    noise = torch.randn(num_views, world_size * batch, dim, device=like.device, dtype=like.dtype, generator=generator)
    return sigma * noise[:, rank * batch:(rank + 1) * batch].reshape(num_views * batch, dim)


def donsker_varadhan(joint: torch.Tensor, marginal: torch.Tensor) -> torch.Tensor:
    """MINE's Donsker–Varadhan lower bound (scalar, to be maximised) from the statistics network's
    scores on joint pairs (N,) or (N, 1) and on marginal pairs (M,) or (M, 1):
    mean(joint) − log mean(exp(marginal)), the log-mean-exp taken as logsumexp − log M."""
    marginal = marginal.reshape(-1)
    return joint.mean() - (torch.logsumexp(marginal, dim=0) - math.log(len(marginal)))
