"""MoCo (He et al. 2020; WeSpeaker's ``examples/voxceleb/v3/moco``): self-supervised contrast of a
query encoder against a momentum key encoder and a queue of past keys.

Per batch, view 0 (the original crop) goes through the query encoder (backbone + projection,
L2-normalised) and view 1 (by default the same crop of a stage-2 augmented copy) through the key
encoder, an EMA teacher of the query encoder (``ema_teachers()``; momentum 0.999, constant). The
loss is the InfoNCE of each query against its own key (positive) and the ``queue_size`` queued keys
(negatives), at temperature ``temperature``; then the batch's keys (gathered from every rank)
replace the oldest queue entries. The queue and its write position are buffers, so they are
checkpointed with the objective and a resumed run continues exactly.

``mi`` (optional, paper 004 Table V "MoCo+MI") adds ``weight`` x the InfoNCE mutual-information
loss between the backbone's pooled first-layer output h and the embedding of both views.
Labels are not used; the evaluation embedding is the query backbone.
"""

from __future__ import annotations

import copy
from typing import Mapping, Optional

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from wespeaker_like.dataset.features import View
from wespeaker_like.models import build_model
from wespeaker_like.objectives.base import Objective
from wespeaker_like.registry import OBJECTIVES
from wespeaker_like.training.ema import EmaTeacher


def queue_infonce(queries: torch.Tensor, keys: torch.Tensor, queue: torch.Tensor,
                  temperature: float) -> torch.Tensor:
    """MoCo's InfoNCE: mean over i of ``-log exp(q_i.k_i/t) / (exp(q_i.k_i/t) + sum_j exp(q_i.n_j/t))``.

    ``queries``, ``keys``: (B, D), L2-normalised, keys without gradient; ``queue``: (D, K) negatives.
    Returns a scalar.
    """
    positive = (queries * keys).sum(dim=1, keepdim=True)          # (B, 1)
    negatives = queries @ queue                                     # (B, K)
    logits = torch.cat([positive, negatives], dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(len(queries), dtype=torch.long, device=queries.device))


class Encoder(nn.Module):
    """Backbone then projection: (B, T, F) -> (L2-normalised projection (B, D), embedding (B, E),
    pooled first-layer output (B, frontend_dim))."""

    def __init__(self, model: Mapping, projection: str):
        super().__init__()
        self.backbone = build_model(dict(model))
        dim = self.backbone.embed_dim
        if projection == "linear":
            self.projection = nn.Linear(dim, dim)
        elif projection == "identity":
            self.projection = nn.Identity()
        else:
            raise ValueError(f"moco: projection must be 'linear' or 'identity', got '{projection}'")

    def forward(self, feats: torch.Tensor):
        embedding, low_level = self.backbone.forward_with_frontend(feats)
        return F.normalize(self.projection(embedding), dim=1), embedding, low_level


@OBJECTIVES.register("moco")
class MoCo(Objective):
    label_names = ("spk",)

    def __init__(self, model: Mapping, num_classes: Mapping[str, int], num_frames: int = 200,
                 views: Optional[Mapping] = None, queue_size: int = 65536, momentum: float = 0.999,
                 temperature: float = 0.07, projection: str = "linear", mi: Optional[Mapping] = None):
        super().__init__()
        key_view = {"num_frames": num_frames, "position": "same", "relative_to": 0, "augment": "copy",
                    **dict(views or {})}
        self.views = [View(num_frames), View.from_dict(key_view)]
        if queue_size < 1 or not 0.0 <= momentum <= 1.0 or temperature <= 0:
            raise ValueError(f"moco: need queue_size >= 1, 0 <= momentum <= 1 and temperature > 0; got "
                             f"{queue_size}, {momentum}, {temperature}")
        self.temperature = float(temperature)
        self.query = Encoder(model, projection)
        self.key = copy.deepcopy(self.query)
        self.ema = EmaTeacher(self.key, self.query, momentum)
        dim = self.query.backbone.embed_dim
        self.register_buffer("queue", F.normalize(torch.randn(dim, queue_size), dim=0))
        self.register_buffer("queue_position", torch.zeros((), dtype=torch.long))
        self.mi = self._build_mi(mi, self.query.backbone)

    @staticmethod
    def _build_mi(spec: Optional[Mapping], backbone: nn.Module):
        if not spec or not float(spec.get("weight", 0.0)):
            return None
        from wespeaker_like.losses.mutual_information import MIEnhancement

        return MIEnhancement.from_config(dict(spec), low_level_dim=backbone.frontend_dim,
                                         embed_dim=backbone.embed_dim)

    def ema_teachers(self):
        return {"key": self.ema}

    @torch.no_grad()
    def _enqueue(self, keys: torch.Tensor) -> None:
        """Write ``keys`` (B, D) of every rank, in rank order, over the oldest queue columns."""
        if dist.is_initialized() and dist.get_world_size() > 1:
            gathered = [torch.empty_like(keys) for _ in range(dist.get_world_size())]
            dist.all_gather(gathered, keys.contiguous())
            keys = torch.cat(gathered)
        size = self.queue.shape[1]
        keys = keys[-size:]
        columns = (self.queue_position + torch.arange(len(keys), device=keys.device)) % size
        self.queue[:, columns] = keys.T.to(self.queue.dtype)
        self.queue_position.copy_((self.queue_position + len(keys)) % size)

    def training_step(self, batch, updater):
        original, augmented = batch["views"]
        queries, embedding, low_level = self.query(original)
        with torch.no_grad():
            keys = self.key(augmented)[0]
        contrastive = queue_infonce(queries, keys, self.queue.clone().detach(), self.temperature)
        loss, values = contrastive, {"moco": contrastive.item()}
        if self.mi is not None:
            aug_embedding, aug_low_level = self.query.backbone.forward_with_frontend(augmented)
            mi_loss = self.mi(torch.cat([low_level, aug_low_level]), torch.cat([embedding, aug_embedding]))
            loss = loss + self.mi.weight * mi_loss
            values["mi"] = mi_loss.item()
        updater.step("main", loss)
        self._enqueue(keys)
        values["loss"] = loss.item()
        return values

    def embedding_model(self):
        return self.query.backbone
