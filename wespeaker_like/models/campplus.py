"""CAM++ (Wang et al., Interspeech 2023; 3D-Speaker ``campplus/DTDNN.py``).

A small 2-D ResNet front end (FCM) that halves frequency three times, then a densely connected TDNN
(D-TDNN) whose layers are gated by context-aware masking (CAM): each layer's output is multiplied by
a sigmoid mask computed from the utterance mean plus 100-frame segment means of its input.

Shapes: (B, T, feat_dim) -> (B, embed_dim).
"""

from typing import List, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..registry import MODELS
from .base import Backbone
from .pooling import build_pooling
from .resnet import BasicBlock


def bn_relu(channels: int) -> nn.Sequential:
    return nn.Sequential(nn.BatchNorm1d(channels), nn.ReLU(inplace=True))


class FCM(nn.Module):
    """Front-end convolution module. (B, F, T) -> (B, m_channels * ceil(F / 8), T)."""

    def __init__(self, feat_dim: int = 80, m_channels: int = 32, num_blocks: Sequence[int] = (2, 2)):
        super().__init__()
        self.conv1 = nn.Conv2d(1, m_channels, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(m_channels)
        blocks: List[nn.Module] = []
        for n in num_blocks:  # each stage halves frequency only
            blocks += [BasicBlock(m_channels, m_channels, (2, 1) if j == 0 else 1) for j in range(n)]
        self.blocks = nn.Sequential(*blocks)
        self.conv2 = nn.Conv2d(m_channels, m_channels, 3, (2, 1), 1, bias=False)
        self.bn2 = nn.BatchNorm2d(m_channels)
        freq = feat_dim
        for _ in range(len(num_blocks) + 1):
            freq = (freq - 1) // 2 + 1
        self.out_channels = m_channels * freq

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Returns the output and the first conv's output pooled over (F, T), (B, m_channels)."""
        x = F.relu(self.bn1(self.conv1(x.unsqueeze(1))))
        first = x.mean(dim=(2, 3))
        x = F.relu(self.bn2(self.conv2(self.blocks(x))))
        return x.reshape(x.size(0), x.size(1) * x.size(2), x.size(3)), first


class CAMLayer(nn.Module):
    """Dilated conv whose output is gated by a context mask. (B, C_in, T) -> (B, C_out, T)."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, dilation: int, reduction: int = 2,
                 seg_len: int = 100):
        super().__init__()
        self.seg_len = seg_len
        self.local = nn.Conv1d(in_ch, out_ch, kernel_size, padding=(kernel_size - 1) // 2 * dilation,
                               dilation=dilation, bias=False)
        self.linear1 = nn.Conv1d(in_ch, in_ch // reduction, 1)
        self.linear2 = nn.Conv1d(in_ch // reduction, out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The context (utterance mean + the mean of the frame's segment) is constant within each
        # segment, and so is the mask made from it frame by frame (1x1 convs, ReLU, sigmoid): it is
        # computed once per segment and repeated, the same function as the references' per-frame one.
        context = x.mean(dim=-1, keepdim=True) + F.avg_pool1d(x, self.seg_len, self.seg_len, ceil_mode=True)
        mask = torch.sigmoid(self.linear2(F.relu(self.linear1(context))))  # (B, C_out, ceil(T / seg_len))
        b, c, num_segments = mask.shape  # no branch on the length: exported graphs take any length
        mask = mask.unsqueeze(-1).expand(b, c, num_segments, self.seg_len).reshape(b, c, -1)[:, :, :x.size(-1)]
        return self.local(x) * mask


class DenseLayer(nn.Module):
    """BN-ReLU-1x1 conv bottleneck, BN-ReLU, CAM layer; output is concatenated to the input.
    (B, C, T) -> (B, C + growth, T)."""

    def __init__(self, in_ch: int, growth: int, bottleneck: int, kernel_size: int, dilation: int):
        super().__init__()
        self.bottleneck = nn.Sequential(bn_relu(in_ch), nn.Conv1d(in_ch, bottleneck, 1, bias=False),
                                        bn_relu(bottleneck))
        self.cam = CAMLayer(bottleneck, growth, kernel_size, dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.cam(self.bottleneck(x))], dim=1)


@MODELS.register("campplus")
class CAMPPlus(Backbone):
    """CAM++. (B, T, feat_dim) -> (B, embed_dim); front-end output = FCM's first conv, (B, m_channels).

    Args:
        feat_dim, embed_dim: input and embedding sizes (3D-Speaker: 80, 512).
        m_channels: FCM width.
        growth_rate, bn_size: D-TDNN growth and bottleneck factor (bottleneck = bn_size * growth_rate).
        init_channels: width of the TDNN layer after FCM (which also halves time: stride 2).
        num_layers, kernel_sizes, dilations: the three D-TDNN blocks.
    """

    def __init__(self, feat_dim: int = 80, embed_dim: int = 512, m_channels: int = 32, growth_rate: int = 32,
                 bn_size: int = 4, init_channels: int = 128, num_layers: Sequence[int] = (12, 24, 16),
                 kernel_sizes: Sequence[int] = (3, 3, 3), dilations: Sequence[int] = (1, 2, 2)):
        super().__init__()
        self.embed_dim = embed_dim
        self.frontend_dim = m_channels
        self.head = FCM(feat_dim, m_channels)
        layers: List[nn.Module] = [nn.Conv1d(self.head.out_channels, init_channels, 5, 2, 2, bias=False),
                                   bn_relu(init_channels)]
        ch = init_channels
        for n, k, d in zip(num_layers, kernel_sizes, dilations):
            layers += [DenseLayer(ch + i * growth_rate, growth_rate, bn_size * growth_rate, k, d) for i in range(n)]
            ch += n * growth_rate
            layers += [bn_relu(ch), nn.Conv1d(ch, ch // 2, 1, bias=False)]  # transition layer
            ch //= 2
        layers.append(bn_relu(ch))
        self.xvector = nn.Sequential(*layers)
        self.pool = build_pooling("TSTP", ch, unbiased=True)
        self.dense = nn.Linear(self.pool.out_dim, embed_dim, bias=False)
        self.bn = nn.BatchNorm1d(embed_dim, affine=False)
        for m in self.modules():
            if isinstance(m, (nn.Conv1d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    @torch.jit.export
    def forward_with_frontend(self, feats: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        x, first = self.head(feats.transpose(1, 2))
        return self.bn(self.dense(self.pool(self.xvector(x)))), first
