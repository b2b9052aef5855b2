"""MFA-Conformer (Zhang et al., Interspeech 2022; zyzisyz/mfa_conformer on WeNet's Conformer encoder).

Conv2d subsampling (x2 in time and frequency) -> N Conformer blocks (macaron FFN, relative-position
multi-head self-attention, convolution module, pre-LayerNorm) -> concatenation of every block's output
(multi-scale feature aggregation) -> LayerNorm -> attentive statistics pooling with global context
-> BN -> Linear.

The self-attention is Transformer-XL relative-position attention (Dai et al. 2019, as ESPnet's
``RelPositionMultiHeadedAttention``): sinusoidal encodings of the relative offsets T-1 ... -(T-1),
learned biases u and v, and the relative shift. (The WeNet revision that mfa_conformer copied skips the
shift, which turns the position term into an absolute one; the parameters are the same.)
No padding mask: batches hold equal-length crops.

Shapes: (B, T, feat_dim) -> (B, embed_dim).
"""

import math
from typing import List, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..registry import MODELS
from .base import Backbone
from .pooling import build_pooling


def relative_positions(length: int, d_model: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Sinusoidal encodings of offsets length-1, ..., 0, ..., -(length-1). -> (1, 2*length-1, d_model)."""
    pos = torch.arange(length - 1, -length, -1, device=device, dtype=torch.float32).unsqueeze(1)
    div = torch.exp(torch.arange(0, d_model, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / d_model))
    pe = torch.stack([torch.sin(pos * div), torch.cos(pos * div)], dim=-1).reshape(1, 2 * length - 1, d_model)
    return pe.to(dtype)


def rel_shift(x: torch.Tensor) -> torch.Tensor:
    """(B, H, T, 2T-1) scores indexed by offset slot -> (B, H, T, T) with ``out[i, j] = x[i, T-1-(i-j)]``."""
    b, h, t, n = x.shape
    x = F.pad(x, (1, 0)).reshape(b, h, n + 1, t)[:, :, 1:].reshape(b, h, t, n)
    return x[:, :, :, : n // 2 + 1]


class RelPositionMHSA(nn.Module):
    """Multi-head self-attention with relative positions. (B, T, D), (1, 2T-1, D) -> (B, T, D)."""

    def __init__(self, d_model: int, heads: int, dropout: float = 0.0):
        super().__init__()
        self.h, self.d_k = heads, d_model // heads
        self.linear_q = nn.Linear(d_model, d_model)
        self.linear_k = nn.Linear(d_model, d_model)
        self.linear_v = nn.Linear(d_model, d_model)
        self.linear_out = nn.Linear(d_model, d_model)
        self.linear_pos = nn.Linear(d_model, d_model, bias=False)
        self.pos_bias_u = nn.Parameter(torch.empty(heads, self.d_k))
        self.pos_bias_v = nn.Parameter(torch.empty(heads, self.d_k))
        nn.init.xavier_uniform_(self.pos_bias_u)
        nn.init.xavier_uniform_(self.pos_bias_v)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        q = self.linear_q(x).view(b, t, self.h, self.d_k)
        k = self.linear_k(x).view(b, t, self.h, self.d_k).transpose(1, 2)
        v = self.linear_v(x).view(b, t, self.h, self.d_k).transpose(1, 2)
        p = self.linear_pos(pos).view(1, -1, self.h, self.d_k).transpose(1, 2)  # (1, H, 2T-1, d_k)
        ac = torch.matmul((q + self.pos_bias_u).transpose(1, 2), k.transpose(-2, -1))
        bd = rel_shift(torch.matmul((q + self.pos_bias_v).transpose(1, 2), p.transpose(-2, -1)))
        attn = self.dropout(torch.softmax((ac + bd) / math.sqrt(self.d_k), dim=-1))
        return self.linear_out(torch.matmul(attn, v).transpose(1, 2).reshape(b, t, -1))


class FeedForward(nn.Sequential):
    """Linear -> Swish -> dropout -> Linear. (B, T, D) -> (B, T, D)."""

    def __init__(self, d_model: int, hidden: int, dropout: float):
        super().__init__(nn.Linear(d_model, hidden), nn.SiLU(), nn.Dropout(dropout), nn.Linear(hidden, d_model))


class ConvModule(nn.Module):
    """Pointwise conv + GLU -> depthwise conv -> BN -> Swish -> pointwise conv. (B, T, D) -> (B, T, D)."""

    def __init__(self, d_model: int, kernel_size: int):
        super().__init__()
        self.pointwise1 = nn.Conv1d(d_model, 2 * d_model, 1)
        self.depthwise = nn.Conv1d(d_model, d_model, kernel_size, padding=(kernel_size - 1) // 2, groups=d_model)
        self.bn = nn.BatchNorm1d(d_model)
        self.pointwise2 = nn.Conv1d(d_model, d_model, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.glu(self.pointwise1(x.transpose(1, 2)), dim=1)
        x = self.pointwise2(F.silu(self.bn(self.depthwise(x))))
        return x.transpose(1, 2)


class ConformerBlock(nn.Module):
    """½FFN -> MHSA -> conv -> ½FFN -> LayerNorm, each with a pre-LayerNorm residual. (B, T, D) -> (B, T, D)."""

    def __init__(self, d_model: int, heads: int, ffn_dim: int, kernel_size: int, dropout: float,
                 attention_dropout: float):
        super().__init__()
        self.ff1 = FeedForward(d_model, ffn_dim, dropout)
        self.mhsa = RelPositionMHSA(d_model, heads, attention_dropout)
        self.conv = ConvModule(d_model, kernel_size)
        self.ff2 = FeedForward(d_model, ffn_dim, dropout)
        self.norm_ff1, self.norm_mhsa, self.norm_conv, self.norm_ff2, self.norm_out = [
            nn.LayerNorm(d_model, eps=1e-12) for _ in range(5)]
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        x = x + 0.5 * self.dropout(self.ff1(self.norm_ff1(x)))
        x = x + self.dropout(self.mhsa(self.norm_mhsa(x), pos))
        x = x + self.dropout(self.conv(self.norm_conv(x)))
        x = x + 0.5 * self.dropout(self.ff2(self.norm_ff2(x)))
        return self.norm_out(x)


@MODELS.register("mfa_conformer")
class MFAConformer(Backbone):
    """MFA-Conformer. (B, T >= 3, feat_dim) -> (B, embed_dim); front-end output = subsampling conv, (B, d_model).

    Args:
        feat_dim, embed_dim: input and embedding sizes.
        num_blocks, d_model, heads, ffn_dim, kernel_size: encoder shape (paper: 6, 256, 4, 2048, 15).
        dropout: FFN / residual / positional-encoding dropout (0.1); attention_dropout: on attention weights (0.0).
        attention_channels: bottleneck of the pooling attention (SpeechBrain ASP: 128).
    """

    def __init__(self, feat_dim: int = 80, embed_dim: int = 192, num_blocks: int = 6, d_model: int = 256,
                 heads: int = 4, ffn_dim: int = 2048, kernel_size: int = 15, dropout: float = 0.1,
                 attention_dropout: float = 0.0, attention_channels: int = 128):
        super().__init__()
        self.embed_dim = embed_dim
        self.frontend_dim = d_model
        self.d_model = d_model
        self.subsample = nn.Conv2d(1, d_model, 3, 2)  # "conv2d2": x2 in time and frequency, no padding
        self.subsample_out = nn.Linear(d_model * ((feat_dim - 1) // 2), d_model)
        self.dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList([ConformerBlock(d_model, heads, ffn_dim, kernel_size, dropout, attention_dropout)
                                     for _ in range(num_blocks)])
        self.norm = nn.LayerNorm(d_model * num_blocks, eps=1e-12)
        self.pool = build_pooling("ASTP", d_model * num_blocks, attention_channels=attention_channels,
                                  global_context=True, attention_bn=True)
        self.bn = nn.BatchNorm1d(self.pool.out_dim)
        self.fc = nn.Linear(self.pool.out_dim, embed_dim)

    @torch.jit.export
    def forward_with_frontend(self, feats: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        x = F.relu(self.subsample(feats.unsqueeze(1)))  # (B, D, T', F')
        first = x.mean(dim=(2, 3))
        b, c, t, f = x.shape
        x = self.subsample_out(x.transpose(1, 2).reshape(b, t, c * f)) * math.sqrt(self.d_model)
        x = self.dropout(x)
        pos = self.dropout(relative_positions(t, self.d_model, x.device, x.dtype))
        outs: List[torch.Tensor] = []
        for block in self.blocks:
            x = block(x, pos)
            outs.append(x)
        x = self.norm(torch.cat(outs, dim=-1)).transpose(1, 2)  # (B, D * num_blocks, T')
        return self.fc(self.bn(self.pool(x))), first
