"""The interface every backbone shares.

A backbone maps fbank features ``(batch, frames, feat_dim)`` to embeddings ``(batch, embed_dim)``.
Subclasses implement ``forward_with_frontend``, which also returns the output of the first
convolution mean-pooled over time (and frequency for 2-D CNNs), ``(batch, C_first)``: the
low-level feature ``h`` of the MI term of paper 004. ``forward`` reuses the same pass.
"""

from typing import Tuple

import torch
import torch.nn as nn


class Backbone(nn.Module):
    embed_dim: int
    frontend_dim: int  # channels of the first convolution = width of the pooled front-end output

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """(B, T, F) -> (B, embed_dim)."""
        return self.forward_with_frontend(feats)[0]

    @torch.jit.export
    def forward_with_frontend(self, feats: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(B, T, F) -> (embedding (B, embed_dim), first-conv output pooled (B, frontend_dim))."""
        raise NotImplementedError
