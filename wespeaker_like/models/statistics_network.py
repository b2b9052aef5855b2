"""MINE's statistics network T_θ (paper 001, METHODS.md §2.1): an MLP scoring a pair of embeddings.

T([u; v]) = Linear(d_u + d_v, hidden) -> ReLU -> Linear(hidden, hidden) -> ReLU -> Linear(hidden, 1),
the form of the MINE class in Linear95/CLUB; its scores feed ``losses.mutual_information.donsker_varadhan``.
"""

from __future__ import annotations

import torch
import torch.nn as nn


class StatisticsNetwork(nn.Module):
    """``forward(u (N, d_u), v (N, d_v))`` -> scores (N,)."""

    def __init__(self, u_dim: int, v_dim: int, hidden: int = 512):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(u_dim + v_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 1))

    def forward(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return self.mlp(torch.cat([u, v], dim=1)).squeeze(1)
