"""Paper 004: AAM + supervised (margin) contrastive learning + λ·InfoNCE(h, z), every term switchable.

Each utterance gives two views of one crop: view 0 the original, view 1 the same crop augmented
(``views: {augment: copy}``: a stage-2 copy; or an on-the-fly profile name). Both go through the
encoder in one pass, giving embeddings e (2B, d) and the pooled first-layer feature h (2B, d_h).

- ``loss``: a classifier (LOSSES: softmax | am | aam) on e of both views; null = off. Its margin
  may follow ``margin_schedule`` (as in ``classification``).
- ``contrastive``: ``supcon`` or ``supmargincon`` (``losses.contrastive.sup_margin_con_loss``) on
  z = normalise(g(e)), g = ``projection`` (``linear``: Linear(d, d); ``identity``); ``positives``:
  ``speaker`` (every other view of the same speaker in the batch, so extra same-speaker utterances
  of a k-per-speaker batch are positives, never negatives) or ``instance`` (SimCLR: only the other
  view of the same utterance). null or name ``none`` = off.
- ``mi``: −weight·(Î(h_0; z_0) + Î(h_1; z_1)), Î the Gaussian-critic InfoNCE estimate
  (``losses.mutual_information``), with z = e + sigma·ε; ``noise_embedding: true`` (the paper's
  literal form) gives that noisy z to every loss. null or weight 0 = off.

Under torchrun the contrastive and MI terms run over the global batch (rows gathered from every
rank, ``training.distributed.gather_across_ranks``) and the noise is drawn for the global batch,
so N ranks of B/N equal one rank of B. Logged: each term, accuracy, margin, and the alignment and
uniformity of the two views' normalised embeddings.
"""

from __future__ import annotations

from typing import Mapping, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

import wespeaker_like.losses  # noqa: F401  (registers the margin softmaxes)
from wespeaker_like.dataset.features import View
from wespeaker_like.losses.contrastive import sup_margin_con_loss
from wespeaker_like.losses.margin import compute_dtype
from wespeaker_like.losses.mutual_information import GaussianCriticInfoNCE, injected_noise
from wespeaker_like.models import build_model
from wespeaker_like.objectives.base import Objective, checked_options
from wespeaker_like.objectives.classification import follow_margin_schedule
from wespeaker_like.registry import LOSSES, OBJECTIVES
from wespeaker_like.scoring.geometry import alignment, uniformity
from wespeaker_like.training.distributed import gather_across_ranks, world

DEFAULT_LOSS = {"name": "aam", "margin": 0.3, "scale": 32.0, "fallback": "3dspeaker"}
DEFAULT_CONTRASTIVE = {"name": "supmargincon", "temperature": 0.07, "margin": 0.2, "margin_type": "arc",
                       "denominator": "all_but_self", "positives": "speaker"}
DEFAULT_MI = {"weight": 0.1, "rho": 0.05, "sigma": 0.1, "positive_term": True, "noise_embedding": False,
              "critic_hidden": 512, "contrast": "means"}
CONTRASTIVE_NAMES = ("supcon", "supmargincon")
POSITIVES = ("speaker", "instance")
PROJECTIONS = ("linear", "identity")


@OBJECTIVES.register("supmargincon")
class SupMarginCon(Objective):
    label_names = ("spk",)
    nested_specs = {"loss": LOSSES}

    def __init__(self, model: Mapping, num_classes: Mapping[str, int], num_frames: int = 300,
                 views: Optional[Mapping] = None, loss: Optional[Mapping] = DEFAULT_LOSS,
                 margin_schedule: Optional[Mapping] = None, contrastive: Optional[Mapping] = DEFAULT_CONTRASTIVE,
                 projection: str = "linear", mi: Optional[Mapping] = DEFAULT_MI):
        super().__init__()
        augmented = {"augment": "copy", **dict(views or {})}
        self.views = [View(num_frames),
                      View.from_dict({**augmented, "num_frames": num_frames, "position": "same", "relative_to": 0})]
        self.backbone = build_model(model)
        dim = self.backbone.embed_dim
        self.head = LOSSES.build(loss, embed_dim=dim, num_classes=num_classes["spk"]) if loss else None
        self.final_margin = getattr(self.head, "margin", 0.0)
        self.margin_schedule = dict(margin_schedule) if margin_schedule else None

        self.contrastive = None
        if contrastive and contrastive.get("name", "supmargincon") != "none":
            self.contrastive = checked_options(contrastive, DEFAULT_CONTRASTIVE, "contrastive")
            if self.contrastive["name"] not in CONTRASTIVE_NAMES:
                raise ValueError(f"contrastive name must be one of {CONTRASTIVE_NAMES} or none, "
                                 f"got '{self.contrastive['name']}'")
            if self.contrastive["positives"] not in POSITIVES:
                raise ValueError(f"contrastive positives must be one of {POSITIVES}, "
                                 f"got '{self.contrastive['positives']}'")
            if self.contrastive["name"] == "supcon":
                self.contrastive["margin"] = 0.0
        if projection not in PROJECTIONS:
            raise ValueError(f"projection must be one of {PROJECTIONS}, got '{projection}'")
        self.projection = nn.Linear(dim, dim) if projection == "linear" and self.contrastive else None

        self.mi = checked_options(mi, DEFAULT_MI, "mi") if mi and mi.get("weight", DEFAULT_MI["weight"]) else None
        self.mi_estimator = None
        if self.mi:
            self.mi_estimator = GaussianCriticInfoNCE(self.backbone.frontend_dim, dim, self.mi["critic_hidden"],
                                                      self.mi["rho"], self.mi["positive_term"], self.mi["contrast"])
        # the noise of a step depends on (this draw, the step's progress) only: the same after a resume
        # (the global RNG is not: loaders draw from it) and on every rank
        self.noise_seed = int(torch.randint(2**31 - 1, (), device="cpu"))  # also under a meta device
        self.progress = 0.0
        if self.head is None and self.contrastive is None:
            raise ValueError("supmargincon: both 'loss' and 'contrastive' are off; nothing trains the embedding")

    def on_progress(self, progress: float) -> None:
        self.progress = progress
        if self.head is not None:
            follow_margin_schedule(self.head, self.margin_schedule, self.final_margin, progress)

    def _noise(self, num_views: int, batch: int, dim: int, like: torch.Tensor) -> torch.Tensor:
        return injected_noise(self.noise_seed, self.progress, self.mi["sigma"], num_views, batch, dim, like)

    def losses(self, batch) -> dict:
        """The weighted terms (tensors) and the numbers to log, for one batch of two views."""
        views, speakers = batch["views"], batch["labels"]["spk"]
        num_views, size = len(views), len(speakers)
        embedding, low_level = self.backbone.forward_with_frontend(torch.cat(views))  # (V·B, d), (V·B, d_h)
        embedding = compute_dtype(embedding)
        labels = speakers.repeat(num_views)
        terms, stats = {}, {}
        noisy = embedding + self._noise(num_views, size, embedding.shape[1], embedding) if self.mi else embedding
        used = noisy if self.mi and self.mi["noise_embedding"] else embedding
        if self.head is not None:
            logits = self.head.logits(used, labels)
            terms["classifier"] = F.cross_entropy(logits, labels)
            stats["acc"] = (logits.detach().argmax(1) == labels).float().mean().item()
            stats["margin"] = float(self.head.margin)
        if self.contrastive is not None:
            c = self.contrastive
            z = F.normalize(self.projection(used) if self.projection is not None else used, dim=1)
            if c["positives"] == "speaker":
                identity = labels
            else:  # the global index of the utterance
                identity = (world()[0] * size + torch.arange(size, device=labels.device)).repeat(num_views)
            terms["contrastive"] = sup_margin_con_loss(
                gather_across_ranks(z), gather_across_ranks(identity), c["temperature"], c["margin"],
                c["margin_type"], c["denominator"])
        if self.mi is not None:
            estimates = [self.mi_estimator(gather_across_ranks(h), gather_across_ranks(z))
                         for h, z in zip(low_level.chunk(num_views), noisy.chunk(num_views))]
            stats["mi"] = sum(e.item() for e in estimates) / num_views
            terms["mi"] = -self.mi["weight"] * sum(estimates)
        with torch.no_grad():
            first, second = embedding.detach().chunk(num_views)[:2]
            stats["align"] = alignment(first, second).item()
            stats["uniform"] = uniformity(embedding.detach()).item()
        return {"terms": terms, "stats": stats}

    def training_step(self, batch, updater):
        result = self.losses(batch)
        loss = sum(result["terms"].values())
        updater.step("main", loss)
        return {"loss": loss.item(), **{k: v.item() for k, v in result["terms"].items()}, **result["stats"]}

    def embedding_model(self):
        return self.backbone
