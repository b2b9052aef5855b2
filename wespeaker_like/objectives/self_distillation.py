"""Self-distillation without labels: SDPN (Chen et al., ICASSP 2025) and the DINO* baseline (METHODS.md §4).

Both train a student (backbone + projection head) against an EMA teacher of the same architecture;
the evaluation embedding is the teacher's backbone. ``label_names`` is empty: a data dir without
``utt2spk`` trains.

``sdpn``: views = 1 clean global crop (teacher) + ``num_local`` augmented local crops (student), the
locals sharing their SpecAugment positions. Logits are cosines to ``num_prototypes`` prototypes shared
by both branches (targets under no-grad, so the prototypes learn only through the student); the loss
is ``SdpnLoss`` (distillation CE + me-max) plus ``dr_weight`` x KoLeo on the L2-normalised student
backbone embeddings of each local chunk, summed over chunks. Switches of Tables 1, 3, 4:
``use_prototypes: false`` (w/o PRO: the head outputs are the logits; with ``head.hidden_dim: 2080``,
w/o PRO-2), ``dr_weight`` (mu), ``augment`` (wave profile of the locals) and ``spec_augment``.

``dino``: 2 global + ``num_local`` local crops; the student sees all, the teacher the globals; logits
are cosines to ``out_dim`` weight-normalised vectors per branch (DINO's last layer, gain 1);
``DinoLoss`` centres and sharpens the teacher; the student's last layer is not updated before epoch
``freeze_last_layer``.

Batch views: (B, T, F) each, global first. Step stats: the losses' terms and the collapse statistics
of the teacher (embedding std across the batch, entropy of the mean assignment, prototypes used).
"""

from __future__ import annotations

import copy
from typing import Callable, Mapping, Optional

import torch
import torch.nn as nn

from wespeaker_like.dataset.views import View
from wespeaker_like.losses.self_distillation import (DinoLoss, KoLeoLoss, SdpnLoss, embedding_std,
                                                     mean_assignment_entropy, prototypes_used, sinkhorn_knopp)
from wespeaker_like.models import build_model
from wespeaker_like.models.projection import ProjectionHead, Prototypes
from wespeaker_like.objectives.base import Objective, checked_options
from wespeaker_like.registry import OBJECTIVES
from wespeaker_like.training.ema import EmaTeacher

HEAD_DEFAULTS = {"hidden_dim": 2048, "out_dim": 256, "num_layers": 3, "use_bn": True}
MOMENTUM_SCHEDULE = {"name": "warmup_cosine", "final_lr": 1.0}  # 0.996 -> 1 over all iterations
LOCAL_MASK_GROUP = "local"


class Branch(nn.Module):
    """Backbone + projection head [+ its own last layer]. (B, T, F) -> (embedding (B, E), logits (B, K))."""

    def __init__(self, model: Mapping, head: Mapping, last_layer: Optional[nn.Module] = None):
        super().__init__()
        self.backbone = build_model(dict(model))
        head = {**HEAD_DEFAULTS, **checked_options(head, ProjectionHead, "head", fixed=("in_dim",))}
        self.head = ProjectionHead(self.backbone.embed_dim, **head)
        self.last_layer = last_layer

    def forward(self, feats: torch.Tensor, prototypes: Optional[nn.Module] = None):
        embedding = self.backbone(feats)
        z = self.head(embedding)
        scorer = prototypes if prototypes is not None else self.last_layer
        return embedding, (scorer(z) if scorer is not None else z)


class _SelfDistillation(Objective):
    """What SDPN and DINO share: student/teacher branches, EMA, parameter groups, step-group defaults."""

    label_names = ()

    def _init_branches(self, model: Mapping, head: Mapping, momentum: float, momentum_schedule: Optional[Mapping],
                       last_layer: Optional[nn.Module] = None) -> None:
        self.student = Branch(model, head, last_layer)
        self.teacher = copy.deepcopy(self.student)
        self.ema = EmaTeacher(self.teacher, self.student, momentum, momentum_schedule or MOMENTUM_SCHEDULE)

    @staticmethod
    def _local_views(num_frames: int, count: int, augment: Optional[str], spec_augment: Optional[Mapping]):
        """``count`` local views; their SpecAugment masks share positions (one ``group``)."""
        spec = {"group": LOCAL_MASK_GROUP, **dict(spec_augment)} if spec_augment else None
        return [View.from_dict({"num_frames": num_frames, "augment": augment, "spec_augment": spec})] * count

    def ema_teachers(self):
        return {"teacher": self.ema}

    def _trained_modules(self):
        return [self.student]

    def parameter_groups(self):
        """One group 'main': weight matrices decay; biases, norm parameters and prototypes do not."""
        params = [p for module in self._trained_modules() for p in module.parameters()]
        no_decay_ids = {id(p) for p in self._no_decay()}
        return {"main": {"decay": [p for p in params if p.ndim > 1 and id(p) not in no_decay_ids],
                         "no_decay": [p for p in params if p.ndim <= 1 or id(p) in no_decay_ids]}}

    def _no_decay(self):
        return []

    def step_group_defaults(self):
        """3D-Speaker's train_sdpn: per-tensor clipping at 3, no decay on the no_decay sub-group, and
        the LR scaled by global batch / 256."""
        return {"main": {"clip": {"mode": "per_parameter", "max_norm": 3.0},
                         "sub_groups": {"no_decay": {"weight_decay": 0.0}},
                         "lr_reference_batch": 256}}

    def embedding_model(self):
        return self.teacher.backbone


@OBJECTIVES.register("sdpn")
class Sdpn(_SelfDistillation):
    def __init__(self, model: Mapping, num_classes: Mapping[str, int], global_frames: int = 400,
                 local_frames: int = 200, num_local: int = 4, augment: Optional[str] = None,
                 spec_augment: Optional[Mapping] = None, head: Optional[Mapping] = None,
                 use_prototypes: bool = True, num_prototypes: int = 1024, loss: Optional[Mapping] = None,
                 dr_weight: float = 0.1, momentum: float = 0.996, momentum_schedule: Optional[Mapping] = None):
        super().__init__()
        self.num_local, self.dr_weight = int(num_local), float(dr_weight)
        self.views = [View(global_frames)] + self._local_views(local_frames, num_local, augment, spec_augment)
        self._init_branches(model, head, momentum, momentum_schedule)
        self.prototypes = (Prototypes(num_prototypes, self.student.head.out_dim) if use_prototypes else None)
        loss_options = checked_options(loss, SdpnLoss, "loss", fixed=("num_local_views",))
        self.loss = SdpnLoss(num_local_views=self.num_local, **loss_options)
        self.koleo = KoLeoLoss()

    def _trained_modules(self):
        return [self.student] + ([self.prototypes] if self.prototypes is not None else [])

    def _no_decay(self):
        return [self.prototypes.weight] if self.prototypes is not None else []

    def training_step(self, batch, updater):
        global_view, local_views = batch["views"][0], batch["views"][1:]
        with torch.no_grad():
            teacher_embedding, teacher_logits = self.teacher(global_view, self.prototypes)
        student_embedding, student_logits = self.student(torch.cat(local_views), self.prototypes)
        loss, stats = self.loss(student_logits, teacher_logits)
        values = {k: float(v) for k, v in stats.items()}
        if self.dr_weight:
            koleo = sum(self.koleo(chunk) for chunk in student_embedding.chunk(self.num_local))
            loss = loss + self.dr_weight * koleo
            values["koleo"] = koleo.item()
        updater.step("main", loss)
        values["loss"] = loss.item()
        # the sharpened teacher assignment before Sinkhorn-Knopp balances it
        probs = sinkhorn_knopp(teacher_logits, self.loss.teacher_temperature * self.loss.sharpen_temperature, 0)
        values.update(collapse_statistics(teacher_embedding, probs))
        return values


@OBJECTIVES.register("dino")
class Dino(_SelfDistillation):
    def __init__(self, model: Mapping, num_classes: Mapping[str, int], global_frames: int = 400,
                 local_frames: int = 200, num_global: int = 2, num_local: int = 4, augment: Optional[str] = None,
                 global_augment: Optional[str] = None, spec_augment: Optional[Mapping] = None,
                 head: Optional[Mapping] = None, out_dim: int = 65536, loss: Optional[Mapping] = None,
                 freeze_last_layer: float = 1.0, momentum: float = 0.996, momentum_schedule: Optional[Mapping] = None):
        super().__init__()
        self.num_global, self.num_local = int(num_global), int(num_local)
        self.freeze_last_layer = float(freeze_last_layer)
        self.views = ([View(global_frames, augment=global_augment) for _ in range(self.num_global)]
                      + self._local_views(local_frames, num_local, augment, spec_augment))
        head = {**HEAD_DEFAULTS, **checked_options(head, ProjectionHead, "head", fixed=("in_dim",))}
        self._init_branches(model, head, momentum, momentum_schedule, Prototypes(out_dim, head["out_dim"]))
        loss_options = checked_options(loss, DinoLoss, "loss", fixed=("out_dim", "num_crops", "num_global_crops"))
        self.loss = DinoLoss(out_dim=out_dim, num_crops=self.num_global + self.num_local,
                             num_global_crops=self.num_global, **loss_options)
        self.progress = 0.0

    def on_progress(self, progress: float) -> None:
        self.progress = progress

    def before_optimizer_step(self, group: str, progress: float) -> None:
        if progress < self.freeze_last_layer:  # DINO: the last layer stays still for the first epoch(s)
            self.student.last_layer.weight.grad = None

    def training_step(self, batch, updater):
        views = batch["views"]
        global_views, local_views = torch.cat(views[:self.num_global]), torch.cat(views[self.num_global:])
        with torch.no_grad():
            teacher_embedding, teacher_logits = self.teacher(global_views)
        # one backbone pass per crop length, as DINO's multi-crop wrapper
        student_logits = torch.cat([self.student(global_views)[1], self.student(local_views)[1]])
        centre = self.loss.center.clone()  # the targets' centre, before the loss moves it
        loss, stats = self.loss(student_logits, teacher_logits, self.progress)
        updater.step("main", loss)
        values = {k: float(v) for k, v in stats.items()}
        values["loss"] = loss.item()
        probs = torch.softmax((teacher_logits.float() - centre) / stats["teacher_temperature"], dim=1)
        values.update(collapse_statistics(teacher_embedding, probs))
        return values


def collapse_statistics(teacher_embedding: torch.Tensor, teacher_probs: torch.Tensor) -> dict:
    """Teacher backbone embeddings (B, E) and assignment probabilities (B, K) -> the logged collapse
    numbers: embedding std across the batch, entropy of the mean assignment, fraction of prototypes used."""
    return {"teacher_std": embedding_std(teacher_embedding), "assign_entropy": mean_assignment_entropy(teacher_probs),
            "protos_used": prototypes_used(teacher_probs)}
