"""MoCo (He et al. 2020; WeSpeaker's ``examples/voxceleb/v3/moco``): self-supervised contrast of a
query encoder against a momentum key encoder and a queue of past keys.

Per batch, view 0 (the original crop) goes through the query encoder (backbone + projection,
L2-normalised) and view 1 (by default the same crop of a stage-2 augmented copy) through the key
encoder, an EMA teacher of the query encoder (``ema_teachers()``; momentum 0.999, constant). The
loss is the InfoNCE of each query against its own key (positive) and the ``queue_size`` queued keys
(negatives) at temperature ``temperature`` (``losses.contrastive.queue_infonce``); then the batch's
keys, gathered from every rank in rank order, replace the oldest queue columns. The queue and its
write position are buffers: checkpointed with the objective, so a resumed run continues exactly.

``mi`` (paper 004 Table V "MoCo+MI"; the ``supmargincon`` objective's block and estimator):
adds −weight·(Î(h_0; z_0) + Î(h_1; z_1)), the Gaussian-critic InfoNCE between the query backbone's
pooled first-layer output h and its embedding with injected noise z = e + sigma·ε, for both views.
Labels are not used; the evaluation embedding is the query backbone.
"""

from __future__ import annotations

import copy
from typing import Mapping, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from wespeaker_like.dataset.features import View
from wespeaker_like.losses.contrastive import queue_infonce
from wespeaker_like.losses.mutual_information import GaussianCriticInfoNCE, injected_noise
from wespeaker_like.models import build_model
from wespeaker_like.objectives.base import Objective, checked_options
from wespeaker_like.objectives.supmargincon import DEFAULT_MI
from wespeaker_like.registry import OBJECTIVES
from wespeaker_like.training.distributed import gather_across_ranks
from wespeaker_like.training.ema import EmaTeacher


class Encoder(nn.Module):
    """Backbone then projection: (B, T, F) -> (L2-normalised projection (B, D), embedding (B, D),
    pooled first-layer output (B, frontend_dim))."""

    def __init__(self, model: Mapping, projection: str):
        super().__init__()
        self.backbone = build_model(dict(model))
        dim = self.backbone.embed_dim
        if projection not in ("linear", "identity"):
            raise ValueError(f"moco: projection must be 'linear' or 'identity', got '{projection}'")
        self.projection = nn.Linear(dim, dim) if projection == "linear" else nn.Identity()

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
        self.mi = checked_options(mi, DEFAULT_MI, "mi") if mi and mi.get("weight", DEFAULT_MI["weight"]) else None
        self.mi_estimator = None
        if self.mi:
            self.mi_estimator = GaussianCriticInfoNCE(self.query.backbone.frontend_dim, dim, self.mi["critic_hidden"],
                                                      self.mi["rho"], self.mi["positive_term"], self.mi["contrast"])
        self.noise_seed = int(torch.randint(2**31 - 1, (), device="cpu"))  # noise of a step: (seed, progress)
        self.progress = 0.0

    def ema_teachers(self):
        return {"key": self.ema}

    def on_progress(self, progress: float) -> None:
        self.progress = progress

    @torch.no_grad()
    def _enqueue(self, keys: torch.Tensor) -> None:
        """Write the (B, D) keys of every rank, in rank order, over the oldest queue columns."""
        keys = gather_across_ranks(keys)[-self.queue.shape[1]:]
        columns = (self.queue_position + torch.arange(len(keys), device=keys.device)) % self.queue.shape[1]
        self.queue[:, columns] = keys.T.to(self.queue.dtype)
        self.queue_position.copy_((self.queue_position + len(keys)) % self.queue.shape[1])

    def _mi_loss(self, embedding: torch.Tensor, low_level: torch.Tensor, num_views: int) -> torch.Tensor:
        """−weight·Σ_v Î(h_v; e_v + σε) over the global batch; ``embedding`` (V·B, D) view-major."""
        size = len(embedding) // num_views
        noisy = embedding + injected_noise(self.noise_seed, self.progress, self.mi["sigma"], num_views, size,
                                           embedding.shape[1], embedding)
        estimates = [self.mi_estimator(gather_across_ranks(h), gather_across_ranks(z))
                     for h, z in zip(low_level.chunk(num_views), noisy.chunk(num_views))]
        return -self.mi["weight"] * sum(estimates)

    def training_step(self, batch, updater):
        original, augmented = batch["views"]
        with torch.no_grad():
            keys = self.key(augmented)[0]
        views = [original, augmented] if self.mi else [original]
        projected, embedding, low_level = self.query(torch.cat(views))
        queries = projected[:len(original)]
        terms = {"moco": queue_infonce(queries, keys, self.queue.clone(), self.temperature)}
        if self.mi:
            terms["mi"] = self._mi_loss(embedding, low_level, len(views))
        loss = sum(terms.values())
        updater.step("main", loss)
        self._enqueue(keys)
        return {"loss": loss.item(), **{name: value.item() for name, value in terms.items()}}

    def embedding_model(self):
        return self.query.backbone
