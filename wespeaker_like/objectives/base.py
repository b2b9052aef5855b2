"""The objective interface: everything a training method decides, and nothing the trainer does.

An objective is an ``nn.Module`` that owns every trainable module of the method (backbone, heads,
estimators, EMA teachers), so one ``state_dict`` checkpoints all of them. It declares

* ``views``: the crops each sample must provide (``dataset.View``),
* ``label_names``: the labels a batch must carry (``spk``, ``dev``, …),
* ``parameter_groups()``: one optimiser per named group, with per-group option overrides,

and implements ``training_step(batch, updater)``, which computes its losses and calls
``updater.step(group, loss)`` once per optimiser step it wants (once for supervised training;
estimator steps then a main step for CLUB). ``on_progress(progress)`` is called before every step
with the fractional epoch (margin schedules, EMA momentum, phase switches).
``embedding_model()`` is the sub-network whose output is the evaluation embedding.
"""

from __future__ import annotations

from typing import Dict, Iterable, List, Mapping, Protocol, Tuple

import torch
import torch.nn as nn

from wespeaker_like.dataset.features import View
from wespeaker_like.registry import OBJECTIVES


class Updater(Protocol):
    """What the trainer hands to ``training_step``: one call = one optimiser step of ``group``."""

    def step(self, group: str, loss: torch.Tensor) -> None: ...


class Objective(nn.Module):
    views: List[View] = [View(200)]
    label_names: Tuple[str, ...] = ("spk",)

    def parameter_groups(self) -> Dict[str, Tuple[Iterable[nn.Parameter], Mapping]]:
        """``{group: (parameters, optimiser overrides)}``; default: one group 'main' with everything."""
        return {"main": (self.parameters(), {})}

    def on_progress(self, progress: float) -> None:
        """Called before each step with the fractional epoch."""

    def training_step(self, batch: Dict[str, object], updater: Updater) -> Dict[str, float]:
        """Run the method's optimiser steps on one batch; return numbers to log."""
        raise NotImplementedError

    def embedding_model(self) -> nn.Module:
        raise NotImplementedError


def build_objective(cfg: Mapping, model_cfg: Mapping, num_classes: Mapping[str, int]) -> Objective:
    """``cfg`` is the config's ``objective`` section (``name`` + options)."""
    return OBJECTIVES.build(cfg, model=dict(model_cfg), num_classes=dict(num_classes))
