"""MINE's statistics network T_θ (paper 001, METHODS.md §2.1): an MLP scoring a pair of embeddings.

T([u; v]) = Linear(d_u + d_v, hidden) -> ReLU -> Linear(hidden, hidden) -> ReLU -> Linear(hidden, 1),
the form of the MINE class in Linear95/CLUB; its scores feed ``losses.mutual_information.donsker_varadhan``.
With ``bound`` c the scores are c·tanh(T / c): the bound Ĵ is then at most 2c, so encoders that
maximise it jointly with T cannot drive it (and the loss) to infinity by separating the joint pairs
from the marginal ones ever further (observed on real speech: Ĵ ~ 2000 within 60 steps).
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn


class StatisticsNetwork(nn.Module):
    """``forward(u (N, d_u), v (N, d_v))`` -> scores (N,)."""

    def __init__(self, u_dim: int, v_dim: int, hidden: int = 512, bound: Optional[float] = None):
        super().__init__()
        self.bound = None if bound is None else float(bound)
        self.mlp = nn.Sequential(nn.Linear(u_dim + v_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 1))

    def forward(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        scores = self.mlp(torch.cat([u, v], dim=1)).squeeze(1)
        return scores if self.bound is None else self.bound * torch.tanh(scores / self.bound)
