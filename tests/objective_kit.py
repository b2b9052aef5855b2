"""Objective contract test kit: two proof objectives that use every trainer feature a method may need,
and configs of the shipped objectives that must pass the same contract (``KIT_CONFIGS``).

They are registered on import (tests only, not shipped as methods):

* ``kit_two_optimizers`` (a): step groups with different optimisers (``main``: the config's SGD with
  Nesterov momentum; ``aux``: Adam, constant LR) stepped one after the other on every batch; ``aux`` is
  frozen (outside its window) during the first epoch, and a pre-step hook keeps the first layer of
  the backbone still during that epoch. ``unused`` never gets a gradient: it must never move.
* ``kit_ema_teacher`` (b): self-distillation between two crops with an EMA teacher (momentum cosine
  0.996 -> 1), per-parameter gradient clipping, a ``no_decay`` sub-group (biases and prototypes) and a
  weight-decay schedule; the evaluation embedding is the teacher's backbone.

``kit_mlp`` is a backbone without batch statistics, so one rank with batch B equals two of B/2.
"""

from __future__ import annotations

import copy
from typing import Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from wespeaker_like.dataset.features import View
from wespeaker_like.models import build_model
from wespeaker_like.objectives.base import Objective
from wespeaker_like.registry import MODELS, OBJECTIVES
from wespeaker_like.training.ema import EmaTeacher


class KitMLP(nn.Module):
    """(B, T, feat_dim) -> (B, embed_dim): a frame-wise layer, ReLU, mean pooling, a linear layer.

    Its low-level feature (``forward_with_frontend``, as every backbone has) is the pooled first layer."""

    def __init__(self, feat_dim: int = 20, hidden: int = 32, embed_dim: int = 16):
        super().__init__()
        self.feat_dim, self.embed_dim, self.frontend_dim = feat_dim, embed_dim, hidden
        self.frame = nn.Linear(feat_dim, hidden)
        self.out = nn.Linear(hidden, embed_dim)

    def forward_with_frontend(self, x):
        first = torch.relu(self.frame(x)).mean(dim=1)
        return self.out(first), first

    def forward(self, x):
        return self.forward_with_frontend(x)[0]


class TwoOptimizers(Objective):
    label_names = ("spk",)

    def __init__(self, model: Mapping, num_classes: Mapping[str, int], num_frames: int = 30):
        super().__init__()
        self.views = [View(num_frames)]
        self.backbone = build_model(model)
        self.head = nn.Linear(self.backbone.embed_dim, num_classes["spk"])
        self.aux = nn.Linear(self.backbone.embed_dim, num_classes["spk"])
        self.unused = nn.Linear(3, 3)

    def parameter_groups(self):
        main = list(self.backbone.parameters()) + list(self.head.parameters()) + list(self.unused.parameters())
        return {"main": main, "aux": list(self.aux.parameters())}

    def step_group_defaults(self):
        return {"aux": {"optim": {"name": "adam", "lr": 1.0e-3}, "scheduler": {"name": "constant"},
                        "start_epoch": 1}}

    def before_optimizer_step(self, group, progress):
        if group == "main" and progress < 1:
            for p in self.backbone.frame.parameters():
                p.grad = None

    def training_step(self, batch, updater):
        feats, labels = batch["views"][0], batch["labels"]["spk"]
        embedding = self.backbone(feats)
        values = {}
        if updater.is_active("aux"):
            aux_loss = F.cross_entropy(self.aux(embedding.detach()), labels)
            updater.step("aux", aux_loss)
            values["aux_loss"] = aux_loss.item()
        loss = F.cross_entropy(self.head(embedding), labels)
        updater.step("main", loss)
        values["loss"] = loss.item()
        return values

    def embedding_model(self):
        return self.backbone


class EmaTeacherObjective(Objective):
    label_names = ("spk",)

    def __init__(self, model: Mapping, num_classes: Mapping[str, int], num_frames: int = 30,
                 num_prototypes: int = 8, momentum: float = 0.996):
        super().__init__()
        self.views = [View(num_frames), View(num_frames)]
        backbone = build_model(model)
        self.student = nn.Sequential(backbone, nn.Linear(backbone.embed_dim, num_prototypes, bias=False))
        self.teacher = copy.deepcopy(self.student)
        self.ema = EmaTeacher(self.teacher, self.student, momentum, {"name": "warmup_cosine", "final_lr": 1.0})

    def ema_teachers(self):
        return {"teacher": self.ema}

    def parameter_groups(self):
        prototypes = self.student[1].weight
        decay = [p for p in self.student.parameters() if p.ndim > 1 and p is not prototypes]
        no_decay = [p for p in self.student.parameters() if p.ndim <= 1 or p is prototypes]
        return {"main": {"decay": decay, "no_decay": no_decay}}

    def step_group_defaults(self):
        return {"main": {"clip": {"mode": "per_parameter", "max_norm": 3.0},
                         "sub_groups": {"no_decay": {"weight_decay": 0.0}},
                         "weight_decay_scheduler": {"name": "warmup_cosine", "final_lr": 0.05}}}

    def training_step(self, batch, updater):
        first, second = batch["views"]
        with torch.no_grad():
            targets = [F.softmax(self.teacher(v) / 0.04, dim=1) for v in (first, second)]
        loss = sum(-(t * F.log_softmax(self.student(v) / 0.1, dim=1)).sum(1).mean()
                   for t, v in zip(targets, (second, first))) / 2
        updater.step("main", loss)
        return {"loss": loss.item()}

    def embedding_model(self):
        return self.teacher[0]


if "kit_mlp" not in MODELS:
    MODELS.register("kit_mlp")(KitMLP)
    OBJECTIVES.register("kit_two_optimizers")(TwoOptimizers)
    OBJECTIVES.register("kit_ema_teacher")(EmaTeacherObjective)

# what every kit config shares: 4 speakers' features of 20 dims, the MLP backbone, 3 short epochs
KIT_DATA_AND_MODEL = """\
dataset: {num_workers: 0, sampler: {name: random, batch_size: 8}}
model: {name: kit_mlp, feat_dim: 20, hidden: 32, embed_dim: 16}
"""
KIT_TRAINER = """\
trainer: {epochs: 3, log_every: 1, checkpoint_every_steps: 2, keep_checkpoints: 2, average_last: 1, num_threads: 1,
          device: cpu}
"""

KIT_CONFIGS = {
    "kit_two_optimizers": "seed: 5\n" + KIT_DATA_AND_MODEL + """\
objective: {name: kit_two_optimizers, num_frames: 30}
optim: {name: sgd, lr: 0.05, momentum: 0.9, nesterov: true, weight_decay: 1.0e-3}
scheduler: {name: warmup_exponential, final_lr: 0.01, warmup_epochs: 0.5}
""" + KIT_TRAINER,
    "kit_ema_teacher": "seed: 6\n" + KIT_DATA_AND_MODEL + """\
objective: {name: kit_ema_teacher, num_frames: 30, num_prototypes: 8}
optim: {name: sgd, lr: 0.05, momentum: 0.9, weight_decay: 1.0e-2}
scheduler: {name: warmup_cosine, final_lr: 1.0e-3, warmup_epochs: 1}
""" + KIT_TRAINER,
    # paper 004 with every term on (AAM, SupMarginCon, noisy-embedding MI): the batch-wide terms
    # must give the same training on 2 ranks of B/2 as on 1 rank of B
    "supmargincon": "seed: 7\n" + KIT_DATA_AND_MODEL + """\
objective: {name: supmargincon, num_frames: 30, views: {augment: null},
            loss: {name: aam, margin: 0.2, scale: 16.0, fallback: 3dspeaker},
            margin_schedule: {start_epoch: 0, end_epoch: 2},
            contrastive: {name: supmargincon, temperature: 0.1, margin: 0.2, margin_type: arc,
                          denominator: this_pos+negatives, positives: speaker},
            projection: linear,
            mi: {weight: 0.1, rho: 0.05, sigma: 0.1, positive_term: true, noise_embedding: true, critic_hidden: 24}}
optim: {name: sgd, lr: 0.05, momentum: 0.9, weight_decay: 1.0e-3}
scheduler: {name: warmup_exponential, final_lr: 0.01, warmup_epochs: 0.5}
""" + KIT_TRAINER,
    # paper 002's l-AP with a (random, frozen) VAE, post-decoding masks and plain AP kept: partners,
    # λ and masks are drawn for the global batch, so 2 ranks of B/2 must train as 1 rank of B
    "ssl_ap": "seed: 8\n" + KIT_DATA_AND_MODEL + """\
objective: {name: ssl_ap, num_frames: 30, mode: lap, alpha: 0.5, ceps_aug: true, keep_plain_ap: true,
            vae: {name: conv_vae, feat_dim: 20, num_frames: 30, latent_dim: 8}}
optim: {name: adam, lr: 1.0e-3}
scheduler: {name: step, step_epochs: 1, gamma: 0.5}
""" + KIT_TRAINER,
}
# parameters of a kit config that must stay where they started (frozen modules)
UNMOVED = {"ssl_ap": ("vae.",)}
# parameters whose gradient is 0 in exact arithmetic, so Adam moves them by rounding noise (steps of
# about lr whatever the noise's size): AP's bias b (a common shift of the logits cancels in the
# cross-entropy). Their value depends on the rounding, so it is not compared across rank counts.
NOISE_DRIVEN = {"ssl_ap": ("ap.b",)}
