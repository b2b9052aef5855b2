"""Paper 000: speaker / device disentanglement by vCLUB mutual-information minimisation (METHODS.md §1).

Stage A (``club_pretrain``): the speaker loss on the backbone's embedding x; no device labels.
Stage B (``club``): x -> decoupling block -> (x_s, x_d) and, per batch (Algorithm 1):

1. estimator phase, ``club_inner_steps`` times: each active estimator takes one step of its own
   Adam (step group ``club_<term>``) on its negative log-likelihood over the detached embeddings;
2. main phase: one step of ``main`` on eq. 21 with the updated estimators frozen (their gradients
   from this backward are discarded: the next estimator step zeroes them first),
   λ_cs (AAM + AP on x_s) + λ_cd AAM(x_d, device) + λ_m1 Î(x_s; x_d) + λ_m2 Î(x_d; y_s) + λ_m3 Î(x_s; y_d).

A term is off when its weight is 0 (its estimator is not built and has no step group).
``mi_grad_to: s_only`` detaches x_d inside the Î terms (CLUB's domain-adaptation reference), so
Î(x_d; y_s) then trains nothing. ``eval_embedding``: ``x_s`` or ``x`` (Table I row 1); the
embedding network holds the whole decoupling block, so x_d can be extracted too (the probes).
The angular prototypical term needs batches of ``utts_per_speaker`` consecutive utterances per
speaker (``sampler: {name: speaker_balanced}``).
"""

from __future__ import annotations

from typing import Dict, Mapping, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

import wespeaker_like.losses  # noqa: F401  (registers the margin softmaxes)
from wespeaker_like.dataset.features import View
from wespeaker_like.losses.club import CategoricalClub, GaussianClub
from wespeaker_like.losses.contrastive import AngularPrototypical
from wespeaker_like.losses.margin import compute_dtype
from wespeaker_like.models import build_model
from wespeaker_like.models.decoupling import DecoupledEncoder, DecouplingBlock
from wespeaker_like.objectives.base import Objective, checked_options
from wespeaker_like.registry import LOSSES, OBJECTIVES

DEFAULT_SPEAKER_LOSS = {"name": "aam", "margin": 0.2, "scale": 30.0, "fallback": "voxceleb_trainer"}
DEFAULT_WEIGHTS = {"speaker": 5.0, "device": 10.0, "mi_s_d": 0.5, "mi_d_ys": 0.1, "mi_s_yd": 0.1}
MI_TERMS = ("mi_s_d", "mi_d_ys", "mi_s_yd")
EVAL_EMBEDDINGS = ("x", "x_s")
MI_GRAD_TO = ("both", "s_only")


def estimator_group(term: str) -> str:
    return f"club_{term}"


def _check_choice(name: str, value: str, choices) -> None:
    if value not in choices:
        raise ValueError(f"club: {name} must be one of {', '.join(choices)}, got '{value}'")


def speaker_loss_terms(head: nn.Module, prototypical: Optional[AngularPrototypical], embedding: torch.Tensor,
                       speakers: torch.Tensor, utts_per_speaker: int) -> Dict[str, torch.Tensor]:
    """AAM on every row and, if given, AP on the (N/M, M, D) speaker groups; also the logits' accuracy."""
    logits = head.logits(embedding, speakers)
    terms = {"aam": F.cross_entropy(logits, speakers)}
    if prototypical is not None:
        groups = speakers.view(-1, utts_per_speaker) if len(speakers) % utts_per_speaker == 0 else None
        if groups is None or not (groups == groups[:, :1]).all():
            raise ValueError(f"club: the angular prototypical loss needs batches of {utts_per_speaker} consecutive "
                             "utterances per speaker (dataset.sampler: {name: speaker_balanced, utts_per_speaker: "
                             f"{utts_per_speaker}}})")
        terms["ap"] = prototypical(embedding.view(-1, utts_per_speaker, embedding.shape[1]))
    terms["acc"] = (logits.detach().argmax(1) == speakers).float().mean()
    return terms


@OBJECTIVES.register("club")
class Club(Objective):
    label_names = ("spk", "dev")
    nested_specs = {"speaker_loss": LOSSES, "device_loss": LOSSES}

    def __init__(self, model: Mapping, num_classes: Mapping[str, int], num_frames: int = 200,
                 speaker_loss: Mapping = DEFAULT_SPEAKER_LOSS, prototypical: bool = True, utts_per_speaker: int = 2,
                 device_loss: Optional[Mapping] = DEFAULT_SPEAKER_LOSS, weights: Optional[Mapping] = None,
                 mlp_order: str = "fc_relu_bn", decoupling_hidden: Optional[int] = None,
                 estimator_hidden: int = 1024, club_inner_steps: int = 1, club_lr: float = 1.0e-3,
                 eval_embedding: str = "x_s", mi_grad_to: str = "both"):
        super().__init__()
        _check_choice("eval_embedding", eval_embedding, EVAL_EMBEDDINGS)
        _check_choice("mi_grad_to", mi_grad_to, MI_GRAD_TO)
        self.weights = checked_options(weights, DEFAULT_WEIGHTS, "weights")
        if not device_loss:
            self.weights["device"] = 0.0
        self.views = [View(num_frames)]
        self.backbone = build_model(model)
        dim = self.backbone.embed_dim
        self.speaker_head = LOSSES.build(dict(speaker_loss), embed_dim=dim, num_classes=num_classes["spk"])
        self.prototypical = AngularPrototypical() if prototypical else None
        self.utts_per_speaker = int(utts_per_speaker)
        self.eval_embedding, self.mi_grad_to = eval_embedding, mi_grad_to
        self.club_inner_steps, self.club_lr = int(club_inner_steps), float(club_lr)
        self.decoupling = self.device_head = None
        self.estimators = nn.ModuleDict()
        if self.label_names == ("spk",):  # Stage A: the speaker loss on x only
            return
        self.decoupling = DecouplingBlock(dim, decoupling_hidden, mlp_order)
        if self.weights["device"]:
            self.device_head = LOSSES.build(dict(device_loss), embed_dim=dim, num_classes=num_classes["dev"])
        builders = {"mi_s_d": lambda: GaussianClub(dim, dim, estimator_hidden),
                    "mi_d_ys": lambda: CategoricalClub(dim, num_classes["spk"], estimator_hidden),
                    "mi_s_yd": lambda: CategoricalClub(dim, num_classes["dev"], estimator_hidden)}
        for term in MI_TERMS:
            if self.weights[term]:
                self.estimators[term] = builders[term]()

    def parameter_groups(self):
        estimator_ids = {id(p) for p in self.estimators.parameters()}
        groups = {"main": [p for p in self.parameters() if id(p) not in estimator_ids]}
        for term, estimator in self.estimators.items():
            groups[estimator_group(term)] = list(estimator.parameters())
        return groups

    def step_group_defaults(self):
        spec = {"optim": {"name": "adam", "lr": self.club_lr, "betas": [0.5, 0.999]},
                "scheduler": {"name": "constant"}, "clip": {"mode": "none"}}
        return {estimator_group(term): dict(spec) for term in self.estimators}

    def _estimator_pairs(self, x_s, x_d, speakers, devices) -> Dict[str, tuple]:
        """Per MI term, the (condition, target) pair its estimator models."""
        return {"mi_s_d": (x_s, x_d), "mi_d_ys": (x_d, speakers), "mi_s_yd": (x_s, devices)}

    def training_step(self, batch, updater):
        feats, speakers = batch["views"][0], batch["labels"]["spk"]
        x = compute_dtype(self.backbone(feats))
        stats: Dict[str, float] = {}
        if self.decoupling is None:
            terms = speaker_loss_terms(self.speaker_head, self.prototypical, x, speakers, self.utts_per_speaker)
            stats["acc"] = terms.pop("acc").item()
            loss = sum(terms.values())
            updater.step("main", loss)
            return {"loss": loss.item(), **{k: v.item() for k, v in terms.items()}, **stats}

        devices = batch["labels"]["dev"]
        x_s, x_d = self.decoupling(x)
        detached = self._estimator_pairs(x_s.detach(), x_d.detach(), speakers, devices)
        for _ in range(self.club_inner_steps):
            for term, estimator in self.estimators.items():
                if updater.is_active(estimator_group(term)):
                    nll = estimator.learning_loss(*detached[term])
                    updater.step(estimator_group(term), nll)
                    stats[f"nll_{term}"] = nll.item()

        weighted: Dict[str, torch.Tensor] = {}
        speaker_terms = speaker_loss_terms(self.speaker_head, self.prototypical, x_s, speakers, self.utts_per_speaker)
        stats["acc"] = speaker_terms.pop("acc").item()
        weighted["speaker"] = self.weights["speaker"] * sum(speaker_terms.values())
        stats.update({k: v.item() for k, v in speaker_terms.items()})
        if self.device_head is not None:
            logits = self.device_head.logits(x_d, devices)
            weighted["device"] = self.weights["device"] * F.cross_entropy(logits, devices)
            stats["dev_acc"] = (logits.detach().argmax(1) == devices).float().mean().item()
        mi_x_d = x_d.detach() if self.mi_grad_to == "s_only" else x_d
        pairs = self._estimator_pairs(x_s, mi_x_d, speakers, devices)
        for term, estimator in self.estimators.items():
            estimate = estimator(*pairs[term])
            stats[term] = estimate.item()
            weighted[term] = self.weights[term] * estimate
        loss = sum(weighted.values())
        updater.step("main", loss)
        return {"loss": loss.item(), **{f"w_{k}": v.item() for k, v in weighted.items()}, **stats}

    def embedding_model(self):
        """Stage A: the backbone; Stage B: backbone + decoupling block giving ``eval_embedding`` (the
        other branches stay reachable: ``extract --branch``)."""
        if self.decoupling is None:
            return self.backbone
        return DecoupledEncoder(self.backbone, self.decoupling, self.eval_embedding)


@OBJECTIVES.register("club_pretrain")
class ClubPretrain(Club):
    """Stage A: ``club`` without decoupling block, device loss or estimators; evaluates x."""

    label_names = ("spk",)

    def __init__(self, model: Mapping, num_classes: Mapping[str, int], num_frames: int = 200,
                 speaker_loss: Mapping = DEFAULT_SPEAKER_LOSS, prototypical: bool = True, utts_per_speaker: int = 2):
        super().__init__(model, num_classes, num_frames, speaker_loss, prototypical, utts_per_speaker,
                         device_loss=None, weights={term: 0.0 for term in MI_TERMS}, eval_embedding="x")
