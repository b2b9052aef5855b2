"""The DCGAN-style spectrogram decoder D_r of paper 001 (METHODS.md §2.1): 3 FC + 9 transposed convs.

[f_spk; f_res] (B, input_dim) -> FC -> FC -> FC to channels[0]·F0·T0 -> reshape (B, channels[0], F0, T0)
-> len(channels) - 1 ConvTranspose2d layers, those in ``upsample_layers`` doubling both axes
(k=4, s=2, p=1), the others refining at the same size (k=3, s=1, p=1) -> (B, 1, F0·2^u, T0·2^u)
-> cropped to (B, num_frames, num_mel_bins). F0 and T0 are the smallest sizes that reach the target
after the u up-samplings (64 bins, 300 frames: F0 = 4, T0 = 19 -> 64 x 304 -> 300 frames).
Every layer but the last has BN + ReLU; the last is linear (the target is a normalised log-mel).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn as nn

DEFAULT_CHANNELS = (512, 256, 256, 128, 128, 64, 64, 32, 32, 1)
DEFAULT_UPSAMPLE_LAYERS = (1, 3, 5, 7)  # refine, up, refine, up, refine, up, refine, up, refine


class SpectrogramDecoder(nn.Module):
    """(B, input_dim) -> (B, num_frames, num_mel_bins), the layout of the views' features."""

    def __init__(self, input_dim: int, num_mel_bins: int = 64, num_frames: int = 300,
                 fc_dims: Sequence[int] = (1024, 1024), channels: Sequence[int] = DEFAULT_CHANNELS,
                 upsample_layers: Sequence[int] = DEFAULT_UPSAMPLE_LAYERS):
        super().__init__()
        channels, upsample_layers = [int(c) for c in channels], {int(i) for i in upsample_layers}
        if len(channels) < 2 or channels[-1] != 1:
            raise ValueError(f"decoder channels must run from the first map's to 1, got {channels}")
        if not upsample_layers <= set(range(len(channels) - 1)):
            raise ValueError(f"decoder upsample_layers {sorted(upsample_layers)} must index its "
                             f"{len(channels) - 1} transposed convolutions")
        self.num_mel_bins, self.num_frames = int(num_mel_bins), int(num_frames)
        scale = 2 ** len(upsample_layers)
        self.first_shape = (channels[0], math.ceil(self.num_mel_bins / scale), math.ceil(self.num_frames / scale))
        dims = [int(input_dim), *[int(d) for d in fc_dims], math.prod(self.first_shape)]
        fc = []
        for d_in, d_out in zip(dims[:-1], dims[1:]):
            fc += [nn.Linear(d_in, d_out), nn.BatchNorm1d(d_out), nn.ReLU()]
        self.fc = nn.Sequential(*fc)
        convs = []
        for index, (c_in, c_out) in enumerate(zip(channels[:-1], channels[1:])):
            kernel, stride = (4, 2) if index in upsample_layers else (3, 1)
            convs.append(nn.ConvTranspose2d(c_in, c_out, kernel, stride, padding=1))
            if index < len(channels) - 2:
                convs += [nn.BatchNorm2d(c_out), nn.ReLU()]
        self.deconv = nn.Sequential(*convs)

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        maps = self.fc(code).view(len(code), *self.first_shape)
        spectrogram = self.deconv(maps)[:, 0, :self.num_mel_bins, :self.num_frames]  # (B, F, T)
        return spectrogram.transpose(1, 2)
