"""TDNN x-vector (Snyder et al., ICASSP 2018; Kaldi ``egs/voxceleb/v2`` layout).

Five frame layers (context [-2..2], {-2,0,2}, {-3,0,3}, {0}, {0}; widths 512, 512, 512, 512, 1500;
each affine -> ReLU -> BN, unpadded as in Kaldi, so the input needs at least 15 frames), statistics
pooling (mean ‖ std, 3000), and the 512-d segment layer ``segment6`` whose affine output is the
x-vector. Kaldi's ``segment7`` and output layer belong to the classifier and are not part of the extractor.

Shapes: (B, T, feat_dim) -> (B, embed_dim).
"""

from typing import Sequence, Tuple

import torch
import torch.nn as nn

from ..registry import MODELS
from .base import Backbone
from .ecapa_tdnn import TDNNBlock
from .pooling import build_pooling


@MODELS.register("tdnn")
class XVector(Backbone):
    """x-vector TDNN. (B, T >= 15, feat_dim) -> (B, embed_dim); front-end output = frame layer 1, (B, channels[0]).

    Args:
        feat_dim, embed_dim: input size and segment-layer size (512 in Kaldi).
        channels, kernel_sizes, dilations: the five frame layers.
        pooling: "TSTP" (Kaldi statistics pooling) or another name from ``pooling.py``.
    """

    def __init__(self, feat_dim: int = 80, embed_dim: int = 512,
                 channels: Sequence[int] = (512, 512, 512, 512, 1500),
                 kernel_sizes: Sequence[int] = (5, 3, 3, 1, 1), dilations: Sequence[int] = (1, 2, 3, 1, 1),
                 pooling: str = "TSTP"):
        super().__init__()
        self.embed_dim = embed_dim
        self.frontend_dim = channels[0]
        layers = [TDNNBlock(i, o, k, d, same=False)
                  for i, o, k, d in zip([feat_dim] + list(channels[:-1]), channels, kernel_sizes, dilations)]
        self.layer1 = layers[0]
        self.frames = nn.Sequential(*layers[1:])
        self.pool = build_pooling(pooling, channels[-1], unbiased=False)  # Kaldi: biased std
        self.segment6 = nn.Linear(self.pool.out_dim, embed_dim)

    @torch.jit.export
    def forward_with_frontend(self, feats: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        x = self.layer1(feats.transpose(1, 2))
        return self.segment6(self.pool(self.frames(x))), x.mean(dim=2)
