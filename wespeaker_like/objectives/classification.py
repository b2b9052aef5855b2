"""Supervised speaker classification: one crop per utterance, a margin softmax on the embedding.

Covers the softmax (CE), AM-softmax and AAM-softmax baselines; the AAM margin can follow a
schedule (``margin_schedule: {start_epoch, end_epoch, initial, kind}``: WeSpeaker's warm-up from
0 to the final margin). With raw audio, ``augment`` names the dataset's on-the-fly augmentation
profile for the crop and ``spec_augment`` its masks (``dataset.views.SpecAugment`` fields).
"""

from __future__ import annotations

from typing import Mapping, Optional

import torch

import wespeaker_like.losses  # noqa: F401  (registers the margin softmaxes)
from wespeaker_like.dataset.features import View
from wespeaker_like.models import build_model
from wespeaker_like.objectives.base import Objective
from wespeaker_like.registry import LOSSES, OBJECTIVES
from wespeaker_like.training.schedulers import ramp


def follow_margin_schedule(head: torch.nn.Module, schedule: Optional[Mapping], final_margin: float,
                           progress: float) -> None:
    """Set ``head.margin`` for the fractional epoch ``progress`` (no-op without a schedule)."""
    if schedule:
        head.margin = ramp(progress, schedule.get("start_epoch", 0), schedule["end_epoch"],
                           schedule.get("initial", 0.0), final_margin, schedule.get("kind", "exp"))


@OBJECTIVES.register("classification")
class Classification(Objective):
    label_names = ("spk",)
    nested_specs = {"loss": LOSSES}

    def __init__(self, model: Mapping, num_classes: Mapping[str, int], loss: Optional[Mapping] = None,
                 num_frames: int = 200, margin_schedule: Optional[Mapping] = None, augment: Optional[str] = None,
                 spec_augment: Optional[Mapping] = None):
        super().__init__()
        self.views = [View.from_dict({"num_frames": num_frames, "augment": augment, "spec_augment": spec_augment})]
        self.backbone = build_model(model)
        loss = dict(loss or {"name": "aam", "margin": 0.2, "scale": 32.0})
        self.head = LOSSES.build(loss, embed_dim=self.backbone.embed_dim, num_classes=num_classes["spk"])
        self.final_margin = getattr(self.head, "margin", 0.0)
        self.margin_schedule = dict(margin_schedule) if margin_schedule else None

    def on_progress(self, progress: float) -> None:
        follow_margin_schedule(self.head, self.margin_schedule, self.final_margin, progress)

    def training_step(self, batch, updater):
        feats, labels = batch["views"][0], batch["labels"]["spk"]
        logits = self.head.logits(self.backbone(feats), labels)
        loss = torch.nn.functional.cross_entropy(logits, labels)
        updater.step("main", loss)
        accuracy = (logits.detach().argmax(1) == labels).float().mean()
        return {"loss": loss.item(), "acc": accuracy.item(), "margin": float(self.head.margin)}

    def embedding_model(self):
        return self.backbone
