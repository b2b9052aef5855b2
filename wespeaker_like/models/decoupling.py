"""Paper 000's decoupling block: x -> shared MLP -> (speaker head x_s, device head x_d)."""

from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn as nn

MLP_ORDERS = ("fc_relu_bn", "fc_bn_relu")


def mlp_layer(in_dim: int, out_dim: int, order: str = "fc_relu_bn") -> nn.Sequential:
    """One MLP layer: Linear then ReLU and BatchNorm1d in ``order`` (the paper gives both orders)."""
    if order not in MLP_ORDERS:
        raise ValueError(f"mlp_order must be one of {', '.join(MLP_ORDERS)}, got '{order}'")
    if order == "fc_relu_bn":
        return nn.Sequential(nn.Linear(in_dim, out_dim), nn.ReLU(), nn.BatchNorm1d(out_dim))
    return nn.Sequential(nn.Linear(in_dim, out_dim), nn.BatchNorm1d(out_dim), nn.ReLU())


class DecouplingBlock(nn.Module):
    """(N, dim) -> x_s (N, dim), x_d (N, dim): a shared layer of width ``hidden`` then two parallel heads."""

    def __init__(self, dim: int, hidden: Optional[int] = None, mlp_order: str = "fc_relu_bn"):
        super().__init__()
        hidden = hidden or dim
        self.shared = mlp_layer(dim, hidden, mlp_order)
        self.speaker = mlp_layer(hidden, dim, mlp_order)
        self.device = mlp_layer(hidden, dim, mlp_order)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        shared = self.shared(x)
        return self.speaker(shared), self.device(shared)


class DecoupledEncoder(nn.Module):
    """A backbone then a decoupling block, as one embedding network: (B, T, F) -> (B, D), the branch
    named by ``output`` (x: the backbone's embedding, x_s: speaker, x_d: device)."""

    BRANCHES = ("x", "x_s", "x_d")

    def __init__(self, backbone: nn.Module, decoupling: DecouplingBlock, output: str = "x_s"):
        super().__init__()
        self.backbone, self.decoupling = backbone, decoupling
        self.output = "x_s"
        self.select(output)

    def select(self, output: str) -> None:
        if output not in self.BRANCHES:
            raise ValueError(f"branch must be one of {', '.join(self.BRANCHES)}, got '{output}'")
        self.output = output

    def branches(self, feats: torch.Tensor) -> dict:
        """{x, x_s, x_d}, each (B, D)."""
        x = self.backbone(feats)
        x_s, x_d = self.decoupling(x)
        return {"x": x, "x_s": x_s, "x_d": x_d}

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        if self.output == "x":
            return self.backbone(feats)
        return self.branches(feats)[self.output]
