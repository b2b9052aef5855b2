"""The objective interface: everything a training method decides, and nothing the trainer does.

An objective is an ``nn.Module`` that owns every trainable module of the method (backbone, heads,
estimators, EMA teachers), so one ``state_dict`` checkpoints all of them. It declares

* ``views``: the crops each sample must provide (``dataset.View``),
* ``label_names``: the labels a batch must carry (``spk``, ``dev``, …),
* ``parameter_groups()``: one optimiser per named step group (``{group: params}`` or, with
  sub-groups such as ``no_decay``, ``{group: {sub_group: params}}``); ``step_group_defaults()``
  gives each group's spec (``training/step_groups.py``), which the config's ``step_groups`` overrides,
* ``ema_teachers()``: modules the trainer moves by EMA after every batch (``training/ema.py``),
* ``nested_specs``: options of the objective that are ``{name: ...}`` specs of a registry,

and implements ``training_step(batch, updater)``, which computes its losses and calls
``updater.step(group, loss)`` once per optimiser step it wants (once for supervised training;
estimator steps then a main step for CLUB). ``on_progress(progress)`` is called before every step
with the fractional epoch (margin schedules, phase switches); ``before_optimizer_step(group,
progress)`` runs between a group's backward and its optimiser step (e.g. zero a layer's gradients).
``updater.is_active(group)`` says whether a group is in its epoch window (phases).
``embedding_model()`` is the sub-network whose output is the evaluation embedding.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Callable, Dict, Iterable, List, Mapping, Optional, Protocol, Tuple, Union

import torch
import torch.nn as nn

from wespeaker_like.dataset.features import View
from wespeaker_like.registry import OBJECTIVES

if TYPE_CHECKING:
    from wespeaker_like.training.ema import EmaTeacher


class Updater(Protocol):
    """What the trainer hands to ``training_step``: one call = one optimiser step of ``group``."""

    def step(self, group: str, loss: torch.Tensor) -> None: ...

    def is_active(self, group: str) -> bool: ...


class Objective(nn.Module):
    views: List[View] = [View(200)]
    label_names: Tuple[str, ...] = ("spk",)
    nested_specs: Mapping[str, object] = {}

    def parameter_groups(self) -> Dict[str, Union[Iterable[nn.Parameter], Mapping[str, Iterable[nn.Parameter]]]]:
        """``{group: parameters}`` or ``{group: {sub_group: parameters}}``; default: 'main' with every
        parameter that no EMA teacher owns."""
        teacher = {id(p) for ema in self.ema_teachers().values() for p in ema.teacher.parameters()}
        return {"main": [p for p in self.parameters() if id(p) not in teacher]}

    def step_group_defaults(self) -> Dict[str, Mapping]:
        """Per group, spec keys that replace the config's base ``optim`` / ``scheduler`` / ``clip``."""
        return {}

    def ema_teachers(self) -> Dict[str, "EmaTeacher"]:
        return {}

    def before_optimizer_step(self, group: str, progress: float) -> None:
        """Called with averaged, unscaled gradients just before ``group``'s clipping and step."""

    def on_progress(self, progress: float) -> None:
        """Called before each step with the fractional epoch."""

    def training_step(self, batch: Dict[str, object], updater: Updater) -> Dict[str, float]:
        """Run the method's optimiser steps on one batch; return numbers to log."""
        raise NotImplementedError

    def embedding_model(self) -> nn.Module:
        raise NotImplementedError


def checked_options(given: Optional[Mapping], known: Union[Mapping, Callable], section: str,
                    fixed: Tuple[str, ...] = ()) -> dict:
    """The options ``given`` for a sub-block ``section`` of an objective, checked against ``known``:
    either a mapping of defaults (returned merged under ``given``) or a callable whose keyword
    parameters, less the ``fixed`` ones the objective sets itself, are the allowed keys.
    ValueError naming the first unknown key and the expected ones."""
    given = dict(given or {})
    if isinstance(known, Mapping):
        allowed = list(known)
    else:
        allowed = [name for name in inspect.signature(known).parameters if name not in ("self", *fixed)]
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise ValueError(f"unknown key '{section}.{unknown[0]}' (expected {', '.join(allowed)})")
    return {**known, **given} if isinstance(known, Mapping) else given


def build_objective(cfg: Mapping, model_cfg: Mapping, num_classes: Mapping[str, int]) -> Objective:
    """``cfg`` is the config's ``objective`` section (``name`` + options)."""
    return OBJECTIVES.build(cfg, model=dict(model_cfg), num_classes=dict(num_classes))
