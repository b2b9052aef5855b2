"""Res2Net, ERes2Net and ERes2NetV2 (3D-Speaker), on the ``ResNet`` trunk of ``resnet.py``.

They share one block, ``Res2Block``: 1x1 conv, split into ``scale`` groups, hierarchical 3x3 convs, 1x1 conv.

| model      | splits convolved        | fusion between splits  | bottom-up stage fusion | defaults            |
|------------|-------------------------|------------------------|------------------------|---------------------|
| res2net    | scale - 1 (last passes) | add                    | none                   | m 32, width 32, s 2 |
| eres2net   | all                     | add; AFF in stages 3-4 | stages 1->2->3->4      | m 32, width 32, s 2 |
| eres2netv2 | all                     | add; AFF in stages 3-4 | stage 3->4             | m 64, width 26, s 2 |

Shapes: (B, T, feat_dim) -> (B, embed_dim).
"""

import math
from typing import Any, List, Optional

import torch
import torch.nn as nn

from ..registry import MODELS
from .resnet import AFF, ResNet, Stride, _pair


class Add(nn.Module):
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x + y


class SplitConv(nn.Module):
    """One Res2Net split: fuse the previous split's output with this split's input, then 3x3 conv, BN, clipped ReLU."""

    def __init__(self, width: int, first: bool, aff: bool):
        super().__init__()
        self.first = first
        self.fuse = AFF(width) if aff and not first else Add()
        self.conv = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(width)
        self.act = nn.Hardtanh(0.0, 20.0, inplace=True)

    def forward(self, prev: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if not self.first:
            x = self.fuse(prev, x)
        return self.act(self.bn(self.conv(x)))


class Res2Block(nn.Module):
    """Res2Net bottleneck. (B, C_in, F, T) -> (B, planes * expansion, F/s_f, T/s_t).

    ``width = floor(planes * base_width / 64)``; ``all_splits`` convolves every split (ERes2Net) instead of
    passing the last one through (Res2Net); ``aff`` fuses splits with AFF instead of addition.
    """

    def __init__(self, in_ch: int, planes: int, stride: Stride = 1, base_width: int = 32, scale: int = 2,
                 expansion: int = 2, all_splits: bool = False, aff: bool = False):
        super().__init__()
        stride = _pair(stride)
        self.width = int(math.floor(planes * base_width / 64.0))
        self.act = nn.Hardtanh(0.0, 20.0, inplace=True)
        self.conv1 = nn.Conv2d(in_ch, self.width * scale, 1, stride, bias=False)
        self.bn1 = nn.BatchNorm2d(self.width * scale)
        n = scale if all_splits else scale - 1
        self.splits = nn.ModuleList([SplitConv(self.width, i == 0, aff) for i in range(n)])
        self.passthrough = not all_splits
        self.conv3 = nn.Conv2d(self.width * scale, planes * expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * expansion)
        self.shortcut = nn.Sequential()
        if stride != (1, 1) or in_ch != planes * expansion:
            self.shortcut = nn.Sequential(nn.Conv2d(in_ch, planes * expansion, 1, stride, bias=False),
                                          nn.BatchNorm2d(planes * expansion))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xs = torch.split(self.act(self.bn1(self.conv1(x))), self.width, dim=1)
        outs: List[torch.Tensor] = []
        y = xs[0]
        for i, split in enumerate(self.splits):
            y = split(y, xs[i])
            outs.append(y)
        if self.passthrough:
            outs.append(xs[-1])
        out = self.bn3(self.conv3(torch.cat(outs, dim=1)))
        return self.act(out + self.shortcut(x))


def _res2net(m_channels: int, base_width: int, scale: int, expansion: int, all_splits: bool,
             aff_from_stage: Optional[int], fuse_from: Optional[int], **kwargs: Any) -> ResNet:
    """ResNet trunk with Res2Blocks; blocks of stages >= ``aff_from_stage`` (0-based) fuse splits with AFF."""

    def block(in_ch: int, planes: int, stride: Stride, stage: int) -> nn.Module:
        aff = aff_from_stage is not None and stage >= aff_from_stage
        return Res2Block(in_ch, planes, stride, base_width, scale, expansion, all_splits, aff)

    kwargs.setdefault("embed_dim", 192)
    return ResNet(m_channels=m_channels, block=block, expansion=expansion, fuse_from=fuse_from, **kwargs)


@MODELS.register("res2net")
def res2net(m_channels: int = 32, base_width: int = 32, scale: int = 2, expansion: int = 2, **kwargs) -> ResNet:
    """3D-Speaker Res2Net34 (ResNet trunk arguments pass through, e.g. ``num_blocks``, ``pooling``)."""
    return _res2net(m_channels, base_width, scale, expansion, all_splits=False, aff_from_stage=None,
                    fuse_from=None, **kwargs)


@MODELS.register("eres2net")
def eres2net(m_channels: int = 32, base_width: int = 32, scale: int = 2, expansion: int = 2,
             **kwargs) -> ResNet:
    """3D-Speaker ERes2Net (base: m_channels 32)."""
    return _res2net(m_channels, base_width, scale, expansion, all_splits=True, aff_from_stage=2,
                    fuse_from=0, **kwargs)


@MODELS.register("eres2netv2")
def eres2netv2(m_channels: int = 64, base_width: int = 26, scale: int = 2, expansion: int = 2,
               **kwargs) -> ResNet:
    """3D-Speaker ERes2NetV2: only stage 3 fused into stage 4."""
    return _res2net(m_channels, base_width, scale, expansion, all_splits=True, aff_from_stage=2,
                    fuse_from=2, **kwargs)
