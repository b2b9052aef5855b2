"""The convolutional VAE of paper 002 (l-mix), Table 1 as resolved in METHODS.md §3.4.

Input: a (B, T, F) feature crop (T = ``num_frames`` = 180 frames, F = ``feat_dim`` = 40 MFCCs),
seen as a 1 x F x T image. Encoder: 5 convs (3x3, stride 3, padding 1, ReLU) with channels
32, 64, 32, 32, 32 reduce 40 x 180 to 1 x 1; two linear layers give the posterior mean and log
variance (``latent_dim`` = 64). Decoder: linear + ReLU to the last encoder map, then 5 transposed
convs mirroring the encoder (channels 32, 32, 64, 32, 1) whose output paddings are chosen so that
each reproduces the encoder's map size exactly, ending at F x T.

The last layer is ``linear`` (MFCCs are signed) or ``sigmoid``; with ``sigmoid`` the input is
min-max scaled from ``input_range`` to [0, 1] before encoding and decoded maps are scaled back, so
``decode`` always returns features in the input's units.

As a registered model its ``forward`` is the posterior mean (B, latent_dim), the VAE's
"embedding"; ``embed_dim`` = ``latent_dim``.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from wespeaker_like.registry import MODELS

OUTPUT_ACTIVATIONS = ("linear", "sigmoid")
ENCODER_CHANNELS = (32, 64, 32, 32, 32)
KERNEL, STRIDE, PADDING = 3, 3, 1


def conv_output_size(size: int) -> int:
    return (size + 2 * PADDING - KERNEL) // STRIDE + 1


@MODELS.register("conv_vae")
class ConvVAE(nn.Module):
    def __init__(self, feat_dim: int = 40, num_frames: int = 180, latent_dim: int = 64,
                 channels: Sequence[int] = ENCODER_CHANNELS, out_act: str = "linear",
                 input_range: Optional[Sequence[float]] = None):
        super().__init__()
        if out_act not in OUTPUT_ACTIVATIONS:
            raise ValueError(f"out_act must be one of {', '.join(OUTPUT_ACTIVATIONS)}, got '{out_act}'")
        if out_act == "sigmoid" and (input_range is None or len(input_range) != 2 or input_range[0] >= input_range[1]):
            raise ValueError("out_act sigmoid needs input_range [low, high] (low < high): the feature range "
                             "scaled to [0, 1]")
        self.feat_dim, self.num_frames, self.latent_dim = int(feat_dim), int(num_frames), int(latent_dim)
        self.embed_dim = self.latent_dim
        self.out_act = out_act
        self.input_range = tuple(float(v) for v in input_range) if input_range is not None else None
        self.sizes: List[Tuple[int, int]] = [(self.feat_dim, self.num_frames)]  # map size before each conv
        encoder, previous = [], 1
        for width in channels:
            encoder += [nn.Conv2d(previous, width, KERNEL, STRIDE, PADDING), nn.ReLU()]
            previous = width
            self.sizes.append(tuple(conv_output_size(s) for s in self.sizes[-1]))
        self.encoder = nn.Sequential(*encoder)
        self.code_shape = (previous, *self.sizes[-1])
        flat = previous * self.sizes[-1][0] * self.sizes[-1][1]
        self.mean = nn.Linear(flat, self.latent_dim)
        self.log_var = nn.Linear(flat, self.latent_dim)
        self.expand = nn.Linear(self.latent_dim, flat)
        decoder = []
        widths = list(reversed([1, *channels[:-1]]))  # the input channels of each encoder conv, last first
        for index, (width, target, source) in enumerate(zip(widths, reversed(self.sizes[:-1]),
                                                            reversed(self.sizes[1:]))):
            padding = tuple(t - ((s - 1) * STRIDE - 2 * PADDING + KERNEL) for t, s in zip(target, source))
            decoder.append(nn.ConvTranspose2d(previous, width, KERNEL, STRIDE, PADDING, output_padding=padding))
            if index < len(widths) - 1:
                decoder.append(nn.ReLU())
            previous = width
        self.decoder = nn.Sequential(*decoder)

    def encode(self, feats: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(B, T, F) features -> posterior mean and log variance, (B, latent_dim) each."""
        if feats.shape[1:] != (self.num_frames, self.feat_dim):
            raise ValueError(f"conv_vae expects (batch, {self.num_frames}, {self.feat_dim}) features, "
                             f"got {tuple(feats.shape)}")
        image = feats.transpose(1, 2).unsqueeze(1)  # (B, 1, F, T)
        if self.input_range is not None:
            low, high = self.input_range
            image = (image - low) / (high - low)
        hidden = self.encoder(image).flatten(1)
        return self.mean(hidden), self.log_var(hidden)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, latent_dim) -> (B, T, F) features in the input's units."""
        hidden = torch.relu(self.expand(z)).view(len(z), *self.code_shape)
        image = self.decoder(hidden)
        if self.out_act == "sigmoid":
            image = torch.sigmoid(image)
        if self.input_range is not None:
            low, high = self.input_range
            image = image * (high - low) + low
        return image.squeeze(1).transpose(1, 2)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """(B, T, F) -> posterior mean (B, latent_dim)."""
        return self.encode(feats)[0]
