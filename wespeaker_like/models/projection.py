"""Self-distillation heads: the projection MLP and the L2-normalised prototypes (SDPN, DINO).

``ProjectionHead``: Linear -> BN -> GELU repeated, then a last Linear and L2 normalisation
(3D-Speaker's SDPN_Head / DINOHead with ``use_bn``: 512 -> 2048 -> 2048 -> 256). Linear weights are
truncated-normal (std 0.02), biases zero.

``Prototypes``: K learnable vectors scored by cosine, ``logits = z/|z| . (c/|c|)^T`` (the losses'
``prototype_scores``). SDPN's 1,024 shared prototypes and DINO's weight-normalised last layer with
its gain fixed at 1 are the same operation; both are initialised uniform in +-1/sqrt(dim)
(PyTorch's Linear default).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from wespeaker_like.losses.self_distillation import prototype_scores

class ProjectionHead(nn.Module):
    """(B, in_dim) -> (B, out_dim), L2-normalised rows; ``num_layers`` Linear layers in all."""

    def __init__(self, in_dim: int, hidden_dim: int = 2048, out_dim: int = 256, num_layers: int = 3,
                 use_bn: bool = True):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"a projection head needs at least one layer, got num_layers={num_layers}")
        layers, width = [], in_dim
        for _ in range(num_layers - 1):
            layers += [nn.Linear(width, hidden_dim)] + ([nn.BatchNorm1d(hidden_dim)] if use_bn else []) + [nn.GELU()]
            width = hidden_dim
        layers.append(nn.Linear(width, out_dim))
        self.mlp = nn.Sequential(*layers)
        self.out_dim = out_dim
        for module in self.mlp:
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.mlp(x), dim=-1)


class Prototypes(nn.Module):
    """(B, dim) -> (B, num) cosine logits against the L2-normalised prototype vectors."""

    def __init__(self, num: int = 1024, dim: int = 256):
        super().__init__()
        bound = 1.0 / math.sqrt(dim)
        self.weight = nn.Parameter(torch.empty(num, dim).uniform_(-bound, bound))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return prototype_scores(z, self.weight)
