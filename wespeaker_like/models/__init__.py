"""Speaker-embedding backbones, registered in ``MODELS`` by name.

Every backbone maps fbank features ``(batch, frames, feat_dim)`` to ``(batch, embed_dim)`` and has
``forward_with_frontend(feats) -> (embedding, first_conv_pooled)`` and an ``embed_dim`` attribute.
Build one from a config's model section: ``build_model({"name": "ecapa_tdnn", "channels": 512})``.
"""

from typing import Any, Dict

import torch.nn as nn

from ..registry import MODELS
from . import campplus, conformer, ecapa_tdnn, eres2net, resnet, tdnn, vae  # noqa: F401  (each import registers its models)
from .base import Backbone
from .pooling import build_pooling


def build_model(cfg: Dict[str, Any]) -> nn.Module:
    """Build the backbone named by ``cfg["name"]`` with the other keys as constructor arguments.

    An unknown name raises ``KeyError`` listing the known ones; an unknown key raises ``ValueError``
    naming it.
    """
    if "name" not in cfg:
        raise ValueError(f"model config needs a 'name', one of: {', '.join(MODELS.names())}")
    try:
        return MODELS.build(cfg)
    except TypeError as exc:
        if "keyword argument" not in str(exc):
            raise
        raise ValueError(f"model '{cfg['name']}': {exc}") from None


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = ["MODELS", "Backbone", "build_model", "build_pooling", "count_parameters"]
