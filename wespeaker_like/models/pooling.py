"""Pooling layers: frame-level features -> one utterance-level vector.

Every layer takes ``(batch, channels, frames)`` or, for 2-D CNNs, ``(batch, channels, freq, frames)``
(flattened to ``(batch, channels * freq, frames)``) and returns ``(batch, out_dim)``; ``out_dim`` is an
attribute so the model can size the layer after it.

| name | what                                                                   | out_dim |
|------|------------------------------------------------------------------------|---------|
| TAP  | temporal average pooling                                               | C       |
| TSTP | temporal statistics pooling: mean ‖ std (x-vector)                     | 2C      |
| SAP  | self-attentive pooling: one attention weight per frame, weighted mean  | C       |
| ASTP | attentive statistics pooling, per-channel weights, optional global     | 2C      |
|      | context (ECAPA-TDNN); ``ASP`` is the same class                        |         |
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def _flatten(x: torch.Tensor) -> torch.Tensor:
    """(B, C, F, T) -> (B, C*F, T); (B, C, T) unchanged."""
    if x.dim() == 4:
        x = x.reshape(x.size(0), x.size(1) * x.size(2), x.size(3))
    return x


def _std(x: torch.Tensor, mean: torch.Tensor, eps: float) -> torch.Tensor:
    """Biased standard deviation over the last axis, ``mean`` given with keepdim."""
    return (x - mean).pow(2).mean(dim=-1).clamp(min=eps).sqrt()


class TAP(nn.Module):
    """Temporal average pooling. (B, C[, F], T) -> (B, C[*F])."""

    def __init__(self, in_dim: int, **kwargs):
        super().__init__()
        self.out_dim = in_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _flatten(x).mean(dim=-1)


class TSTP(nn.Module):
    """Temporal statistics pooling, mean ‖ std. (B, C[, F], T) -> (B, 2*C[*F]).

    ``unbiased`` divides the variance by T - 1 (WeSpeaker, 3D-Speaker) instead of T (Kaldi)."""

    def __init__(self, in_dim: int, eps: float = 1e-7, unbiased: bool = True, **kwargs):
        super().__init__()
        self.out_dim = 2 * in_dim
        self.eps = eps
        self.unbiased = unbiased

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _flatten(x)
        mean = x.mean(dim=-1, keepdim=True)
        var = (x - mean).pow(2).sum(dim=-1) / (x.size(-1) - 1 if self.unbiased else x.size(-1))
        return torch.cat([mean.squeeze(-1), var.clamp(min=self.eps).sqrt()], dim=1)


class SAP(nn.Module):
    """Self-attentive pooling (voxceleb_trainer ResNetSE34L): ``w_t = softmax_t(u · tanh(W x_t + b))``,
    output ``sum_t w_t x_t``. (B, C[, F], T) -> (B, C[*F])."""

    def __init__(self, in_dim: int, **kwargs):
        super().__init__()
        self.out_dim = in_dim
        self.linear = nn.Linear(in_dim, in_dim)
        self.attention = nn.Parameter(torch.empty(in_dim, 1))
        nn.init.xavier_normal_(self.attention)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _flatten(x).transpose(1, 2)  # (B, T, C)
        h = torch.tanh(self.linear(x))
        w = torch.softmax(torch.matmul(h, self.attention), dim=1)  # (B, T, 1)
        return (x * w).sum(dim=1)


class ASTP(nn.Module):
    """Attentive statistics pooling with channel- and context-dependent weights (ECAPA-TDNN).

    Attention ``e = W2 f(W1 [x; mean; std])``, softmax over time per channel, output weighted
    mean ‖ weighted std. (B, C[, F], T) -> (B, 2*C[*F]).

    Args:
        in_dim: channels C (after flattening frequency).
        attention_channels: bottleneck of the attention (128 everywhere in the references).
        global_context: append the utterance mean and std to every frame before the attention.
        attention_bn: hidden layer is conv -> ReLU -> BN (SpeechBrain / 3D-Speaker TDNNBlock,
            voxceleb_trainer ASP) instead of a bare conv (WeSpeaker ASTP).
        attention_tanh: apply tanh to the hidden layer (ECAPA, WeSpeaker); voxceleb_trainer omits it.
    """

    def __init__(self, in_dim: int, attention_channels: int = 128, global_context: bool = True,
                 attention_bn: bool = False, attention_tanh: bool = True, eps: float = 1e-7, **kwargs):
        super().__init__()
        self.out_dim = 2 * in_dim
        self.global_context = global_context
        self.attention_tanh = attention_tanh
        self.eps = eps
        layers = [nn.Conv1d(in_dim * (3 if global_context else 1), attention_channels, 1)]
        if attention_bn:
            layers += [nn.ReLU(), nn.BatchNorm1d(attention_channels)]
        self.hidden = nn.Sequential(*layers)
        self.out = nn.Conv1d(attention_channels, in_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _flatten(x)
        if self.global_context:
            mean = x.mean(dim=-1, keepdim=True)
            std = _std(x, mean, self.eps).unsqueeze(-1)
            h = self._context_projection(x, torch.cat([mean, std], dim=1))
        else:
            h = self.hidden[0](x)
        for i, layer in enumerate(self.hidden):
            if i > 0:
                h = layer(h)
        if self.attention_tanh:
            h = torch.tanh(h)
        w = torch.softmax(self.out(h), dim=-1)
        mean = (w * x).sum(dim=-1)
        std = (w * (x - mean.unsqueeze(-1)).pow(2)).sum(dim=-1).clamp(min=self.eps).sqrt()
        return torch.cat([mean, std], dim=1)

    def _context_projection(self, x: torch.Tensor, stats: torch.Tensor) -> torch.Tensor:
        """The first 1x1 conv applied to ``[x; mean; std]`` repeated over time, without building that
        (B, 3C, T) input: its mean/std columns are the same at every frame, so their part of the conv
        is computed once per utterance and added. (B, C, T), (B, 2C, 1) -> (B, attention_channels, T)."""
        conv = self.hidden[0]
        channels = x.size(1)
        per_frame = F.conv1d(x, conv.weight[:, :channels])
        per_utterance = F.conv1d(stats, conv.weight[:, channels:], conv.bias)
        return per_frame + per_utterance


ASP = ASTP

POOLINGS = {"TAP": TAP, "TSTP": TSTP, "SAP": SAP, "ASTP": ASTP, "ASP": ASTP}


def build_pooling(name: str, in_dim: int, **kwargs) -> nn.Module:
    """``build_pooling("ASTP", 1536, attention_channels=128)``; names as in the table above."""
    if name not in POOLINGS:
        raise KeyError(f"unknown pooling '{name}'; known: {', '.join(sorted(POOLINGS))}")
    return POOLINGS[name](in_dim, **kwargs)
