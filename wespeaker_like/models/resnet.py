"""2-D ResNets over the (frequency, time) plane of the fbank features.

One trunk, ``ResNet``, serves every ResNet-style backbone; they differ in the block, the stem and the
pooling, all constructor arguments:

* ResNet34 (WeSpeaker / 3D-Speaker): ``m_channels: 32``, basic blocks [3, 4, 6, 3], TSTP.
* Thin ResNet34 (voxceleb_trainer ``ResNetSE34V2``): widths [32, 64, 128, 256], SE blocks, stem conv
  with bias and ReLU before BN, ASP over the flattened (channel, frequency) axis.
* Fast ResNet34 (voxceleb_trainer ``ResNetSE34L``): widths [16, 32, 64, 128], 7x7 stem with stride
  (2, 1), last stage stride 1, mean over frequency, SAP.
* Res2Net / ERes2Net / ERes2NetV2 (``eres2net.py``): Res2Net blocks and bottom-up AFF fusion.

Shapes: (B, T, feat_dim) -> (B, embed_dim).
"""

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..registry import MODELS
from .base import Backbone
from .pooling import build_pooling

Stride = Union[int, Sequence[int]]


def _pair(s: Stride) -> Tuple[int, int]:
    return (s, s) if isinstance(s, int) else (int(s[0]), int(s[1]))


class SELayer(nn.Module):
    """Squeeze-excitation over (F, T). (B, C, F, T) -> (B, C, F, T)."""

    def __init__(self, channels: int, reduction: int = 8):
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(channels, channels // reduction), nn.ReLU(inplace=True),
                                nn.Linear(channels // reduction, channels), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(x.mean(dim=(2, 3)))[:, :, None, None]


class BasicBlock(nn.Module):
    """Two 3x3 convs plus shortcut. (B, C_in, F, T) -> (B, C_out, F/s_f, T/s_t).

    With ``se_reduction > 0`` it is voxceleb_trainer's SEBasicBlock: SE on the second conv's output,
    and ReLU *before* BN after the first conv, as in that reference.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: Stride = 1, se_reduction: int = 0):
        super().__init__()
        stride = _pair(stride)
        self.relu_first = se_reduction > 0
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.se = SELayer(out_ch, se_reduction) if se_reduction > 0 else nn.Identity()
        self.shortcut = nn.Sequential()
        if stride != (1, 1) or in_ch != out_ch:
            self.shortcut = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(x)
        out = self.bn1(F.relu(out)) if self.relu_first else F.relu(self.bn1(out))
        out = self.se(self.bn2(self.conv2(out)))
        out += self.shortcut(x)  # in place: neither BN's nor SE's backward needs this output
        return F.relu_(out)


class AFF(nn.Module):
    """Attentional feature fusion (3D-Speaker ERes2Net): ``x * a + y * (2 - a)``, ``a = 1 + tanh(att([x; y]))``.
    (B, C, F, T) x 2 -> (B, C, F, T)."""

    def __init__(self, channels: int, r: int = 4):
        super().__init__()
        inter = channels // r
        self.att = nn.Sequential(
            nn.Conv2d(2 * channels, inter, 1), nn.BatchNorm2d(inter), nn.SiLU(inplace=True),
            nn.Conv2d(inter, channels, 1), nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        a = 1.0 + torch.tanh(self.att(torch.cat([x, y], dim=1)))
        return x * a + y * (2.0 - a)


class BottomUpFusion(nn.Module):
    """Fuses a lower stage into the next one: ``AFF(upper, conv3x3_stride(lower))``."""

    def __init__(self, lower_ch: int, upper_ch: int, stride: Stride):
        super().__init__()
        self.down = nn.Conv2d(lower_ch, upper_ch, 3, _pair(stride), 1, bias=False)
        self.fuse = AFF(upper_ch)

    def forward(self, upper: torch.Tensor, lower: torch.Tensor) -> torch.Tensor:
        return self.fuse(upper, self.down(lower))


# block(in_ch, planes, stride, stage) -> module whose output has planes * expansion channels
BlockFn = Callable[[int, int, Stride, int], nn.Module]


@MODELS.register("resnet")
class ResNet(Backbone):
    """ResNet trunk. (B, T, feat_dim) -> (B, embed_dim); front-end output = stem conv, (B, stem channels).

    Args:
        feat_dim, embed_dim: input feature size, embedding size.
        num_blocks: blocks per stage.
        m_channels: stage widths are ``m_channels * [1, 2, 4, 8]`` unless ``widths`` is given.
        widths: explicit stage widths (voxceleb_trainer ``num_filters``); the stem has ``widths[0]`` channels.
        strides: stride per stage, int or [freq, time].
        stem_kernel, stem_stride, stem_bias: the first conv; ``stem_relu_first`` puts ReLU before BN.
        se_reduction: > 0 uses SE basic blocks (voxceleb_trainer).
        pooling, pooling_args: pooling layer name and extra arguments (see ``pooling.py``).
        freq_reduce: "flatten" pools over the (channel x frequency) axis (WeSpeaker, ResNetSE34V2);
            "mean" averages frequency first (ResNetSE34L).
        two_emb_layer: Linear -> ReLU -> BN(affine=False) -> Linear, as WeSpeaker/3D-Speaker's option.
        block, expansion: block constructor and its channel expansion (used by ``eres2net.py``).
        fuse_from: with value k < len(stages) - 1, fuse stage k's output bottom-up into every later stage
            with AFF (ERes2Net: 0, ERes2NetV2: 2); ``None`` disables it.
    """

    def __init__(self, feat_dim: int = 80, embed_dim: int = 256, num_blocks: Sequence[int] = (3, 4, 6, 3),
                 m_channels: int = 32, widths: Optional[Sequence[int]] = None,
                 strides: Sequence[Stride] = (1, 2, 2, 2), stem_kernel: int = 3, stem_stride: Stride = 1,
                 stem_bias: bool = False, stem_relu_first: bool = False, se_reduction: int = 0,
                 pooling: str = "TSTP", pooling_args: Optional[Dict[str, Any]] = None,
                 freq_reduce: str = "flatten", two_emb_layer: bool = False,
                 block: Optional[BlockFn] = None, expansion: int = 1, fuse_from: Optional[int] = None):
        super().__init__()
        widths = list(widths) if widths is not None else [m_channels * k for k in (1, 2, 4, 8)]
        if not (len(widths) == len(num_blocks) == len(strides)):
            raise ValueError(f"ResNet: num_blocks {list(num_blocks)}, widths {widths} and strides "
                             f"{list(strides)} must have the same length")
        if freq_reduce not in ("flatten", "mean"):
            raise ValueError(f"ResNet: freq_reduce must be 'flatten' or 'mean', got '{freq_reduce}'")
        if block is None:
            def block(i: int, o: int, s: Stride, stage: int) -> nn.Module:
                return BasicBlock(i, o, s, se_reduction)
        self.embed_dim = embed_dim
        self.frontend_dim = widths[0]
        self.stem_relu_first = stem_relu_first
        self.flatten_freq = freq_reduce == "flatten"

        sf, st = _pair(stem_stride)
        self.conv1 = nn.Conv2d(1, widths[0], stem_kernel, (sf, st), stem_kernel // 2, bias=stem_bias)
        self.bn1 = nn.BatchNorm2d(widths[0])
        freq = (feat_dim + 2 * (stem_kernel // 2) - stem_kernel) // sf + 1

        stages: List[nn.Module] = []
        out_chs: List[int] = []
        in_ch = widths[0]
        for i, (n, w, s) in enumerate(zip(num_blocks, widths, strides)):
            stages.append(nn.Sequential(*[block(in_ch if j == 0 else w * expansion, w, s if j == 0 else 1, i)
                                          for j in range(n)]))
            in_ch = w * expansion
            out_chs.append(in_ch)
            freq = (freq - 1) // _pair(s)[0] + 1
        self.stages = nn.ModuleList(stages)

        self.fuse_from = len(stages) - 1 if fuse_from is None else fuse_from
        self.fusions = nn.ModuleList([BottomUpFusion(out_chs[i - 1], out_chs[i], strides[i])
                                      for i in range(self.fuse_from + 1, len(stages))])

        pool_in = in_ch * freq if self.flatten_freq else in_ch
        self.pool = build_pooling(pooling, pool_in, **(pooling_args or {}))
        self.seg_1 = nn.Linear(self.pool.out_dim, embed_dim)
        self.seg_2 = (nn.Sequential(nn.ReLU(), nn.BatchNorm1d(embed_dim, affine=False), nn.Linear(embed_dim, embed_dim))
                      if two_emb_layer else nn.Identity())

    @torch.jit.export
    def forward_with_frontend(self, feats: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        x = feats.transpose(1, 2).unsqueeze(1)  # (B, 1, F, T)
        x = self.conv1(x)
        x = self.bn1(F.relu(x)) if self.stem_relu_first else F.relu(self.bn1(x))
        first = x.mean(dim=(2, 3))
        outs: List[torch.Tensor] = []
        for stage in self.stages:
            x = stage(x)
            outs.append(x)
        x = outs[self.fuse_from]
        for j, fusion in enumerate(self.fusions):
            x = fusion(outs[self.fuse_from + 1 + j], x)
        if not self.flatten_freq:
            x = x.mean(dim=2)
        return self.seg_2(self.seg_1(self.pool(x))), first


@MODELS.register("thin_resnet34")
def thin_resnet34(feat_dim: int = 64, embed_dim: int = 512, **kwargs) -> ResNet:
    """voxceleb_trainer ResNetSE34V2 (its config: 64 log-mels, ASP, 512-d)."""
    cfg: Dict[str, Any] = dict(
        widths=[32, 64, 128, 256], se_reduction=8, stem_bias=True, stem_relu_first=True, pooling="ASTP",
        pooling_args=dict(global_context=False, attention_bn=True, attention_tanh=False))
    cfg.update(kwargs)
    return ResNet(feat_dim=feat_dim, embed_dim=embed_dim, **cfg)


@MODELS.register("fast_resnet34")
def fast_resnet34(feat_dim: int = 40, embed_dim: int = 512, **kwargs) -> ResNet:
    """voxceleb_trainer ResNetSE34L (its config: 40 log-mels, SAP, 512-d)."""
    cfg: Dict[str, Any] = dict(
        widths=[16, 32, 64, 128], strides=[1, 2, 2, 1], se_reduction=8, stem_kernel=7, stem_stride=[2, 1],
        pooling="SAP", freq_reduce="mean")
    cfg.update(kwargs)
    return ResNet(feat_dim=feat_dim, embed_dim=embed_dim, **cfg)
