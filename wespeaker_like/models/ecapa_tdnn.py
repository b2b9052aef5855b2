"""ECAPA-TDNN (Desplanques et al., Interspeech 2020).

One class covers both reference layouts:

* WeSpeaker ``ECAPA_TDNN_GLOB_c{512,1024}``: ``channels: 512`` (int) means
  ``[C, C, C, C, 1536]``; the MFA layer is conv -> ReLU (no BN), the attention is conv -> tanh -> conv.
* 3D-Speaker / SpeechBrain (and the SDPN/RDINO encoder): ``channels: [1024, 1024, 1024, 1024, 3072]``
  with ``mfa_bn: true, attention_bn: true, padding_mode: reflect``.

Shapes: (B, T, feat_dim) -> (B, embed_dim).
"""

from typing import List, Sequence, Tuple, Union

import torch
import torch.nn as nn

from ..registry import MODELS
from .base import Backbone
from .pooling import build_pooling


class TDNNBlock(nn.Module):
    """Conv1d -> ReLU -> BN. (B, C_in, T) -> (B, C_out, T), or T - dilation * (kernel_size - 1) frames
    with ``same=False`` (Kaldi's unpadded TDNN layers)."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 1, dilation: int = 1,
                 padding_mode: str = "zeros", bn: bool = True, same: bool = True):
        super().__init__()
        self.conv = nn.Conv1d(in_ch, out_ch, kernel_size, dilation=dilation,
                              padding=dilation * (kernel_size - 1) // 2 if same else 0, padding_mode=padding_mode)
        self.relu = nn.ReLU(inplace=True)
        self.bn = nn.BatchNorm1d(out_ch) if bn else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.relu(self.conv(x)))


class Res2Block(nn.Module):
    """Res2Net hierarchy over ``scale`` channel groups; group 0 passes through. (B, C, T) -> (B, C, T)."""

    def __init__(self, channels: int, kernel_size: int, dilation: int, scale: int, padding_mode: str):
        super().__init__()
        assert channels % scale == 0, "channels must be divisible by the Res2Net scale"
        self.width = channels // scale
        self.blocks = nn.ModuleList(
            [TDNNBlock(self.width, self.width, kernel_size, dilation, padding_mode) for _ in range(scale - 1)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xs = torch.split(x, self.width, dim=1)
        out = [xs[0]]
        y = xs[0]
        for i, block in enumerate(self.blocks):
            y = block(xs[i + 1] if i == 0 else xs[i + 1] + y)
            out.append(y)
        return torch.cat(out, dim=1)


class SEBlock(nn.Module):
    """Squeeze-excitation over time. (B, C, T) -> (B, C, T)."""

    def __init__(self, channels: int, bottleneck: int = 128):
        super().__init__()
        self.fc1 = nn.Linear(channels, bottleneck)
        self.fc2 = nn.Linear(bottleneck, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean(dim=2)))))
        return x * s.unsqueeze(2)


class SERes2Block(nn.Module):
    """1x1 TDNN -> Res2 dilated TDNN -> 1x1 TDNN -> SE, plus residual. (B, C_in, T) -> (B, C_out, T)."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, dilation: int, scale: int = 8,
                 se_channels: int = 128, padding_mode: str = "zeros"):
        super().__init__()
        self.body = nn.Sequential(
            TDNNBlock(in_ch, out_ch, 1),
            Res2Block(out_ch, kernel_size, dilation, scale, padding_mode),
            TDNNBlock(out_ch, out_ch, 1),
            SEBlock(out_ch, se_channels),
        )
        self.shortcut = nn.Conv1d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.body(x)


@MODELS.register("ecapa_tdnn")
class ECAPA_TDNN(Backbone):
    """ECAPA-TDNN. (B, T, feat_dim) -> (B, embed_dim); front-end output = first TDNN block, (B, channels[0]).

    Args:
        feat_dim: input feature dimension.
        embed_dim: embedding size.
        channels: int C (WeSpeaker: ``[C, C, C, C, 1536]``) or the five widths
            [first conv, 3 SE-Res2 blocks, MFA].
        kernel_sizes, dilations: per layer, five entries.
        res2net_scale, se_channels, attention_channels: as named.
        global_context: ASTP attends to [x; mean; std].
        mfa_bn: BN after the MFA conv (3D-Speaker) or not (WeSpeaker).
        attention_bn: ReLU + BN in the ASTP hidden layer (3D-Speaker) or not (WeSpeaker).
        pooling: pooling name (see ``pooling.py``).
        padding_mode: "zeros" (WeSpeaker) or "reflect" (SpeechBrain / 3D-Speaker).
    """

    def __init__(self, feat_dim: int = 80, embed_dim: int = 192, channels: Union[int, Sequence[int]] = 512,
                 kernel_sizes: Sequence[int] = (5, 3, 3, 3, 1), dilations: Sequence[int] = (1, 2, 3, 4, 1),
                 res2net_scale: int = 8, se_channels: int = 128, attention_channels: int = 128,
                 global_context: bool = True, mfa_bn: bool = False, attention_bn: bool = False,
                 pooling: str = "ASTP", padding_mode: str = "zeros"):
        super().__init__()
        ch: List[int] = [channels] * 4 + [1536] if isinstance(channels, int) else list(channels)
        if len(ch) != 5 or len(kernel_sizes) != 5 or len(dilations) != 5:
            raise ValueError(f"ECAPA_TDNN needs 5 channels/kernel_sizes/dilations, got {ch}, "
                             f"{list(kernel_sizes)}, {list(dilations)}")
        self.embed_dim = embed_dim
        self.frontend_dim = ch[0]
        self.layer1 = TDNNBlock(feat_dim, ch[0], kernel_sizes[0], dilations[0], padding_mode)
        self.blocks = nn.ModuleList([
            SERes2Block(ch[i - 1], ch[i], kernel_sizes[i], dilations[i], res2net_scale, se_channels, padding_mode)
            for i in range(1, 4)])
        self.mfa = TDNNBlock(sum(ch[1:4]), ch[4], kernel_sizes[4], dilations[4], padding_mode, bn=mfa_bn)
        self.pool = build_pooling(pooling, ch[4], attention_channels=attention_channels,
                                  global_context=global_context, attention_bn=attention_bn)
        self.bn = nn.BatchNorm1d(self.pool.out_dim)
        self.linear = nn.Linear(self.pool.out_dim, embed_dim)

    @torch.jit.export
    def forward_with_frontend(self, feats: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        x = self.layer1(feats.transpose(1, 2))
        first = x.mean(dim=2)
        outs: List[torch.Tensor] = []
        for block in self.blocks:
            x = block(x)
            outs.append(x)
        x = self.mfa(torch.cat(outs, dim=1))
        return self.linear(self.bn(self.pool(x))), first
