"""Step groups: one optimiser each, with its own schedules, sub-groups, clipping and AMP scaler.

An objective names its groups in ``parameter_groups()`` (``{group: params}`` or
``{group: {sub_group: params}}``) and may give defaults per group in ``step_group_defaults()``;
the config's ``step_groups: {group: spec}`` overrides them key by key. A spec::

    optim: {name: adam, lr: 1.0e-3, betas: [0.5, 0.999]}   # full spec; replaces the base `optim`
    scheduler: {name: constant}                             # LR schedule; default: the base `scheduler`
    weight_decay_scheduler: {name: warmup_cosine, final_lr: 0.4}  # optional; starts at optim.weight_decay
    clip: {mode: per_parameter, max_norm: 3.0}              # global | per_parameter | none
    sub_groups: {no_decay: {weight_decay: 0.0, lr_scale: 1.0}}
    start_epoch: 0                                          # active window [start_epoch, end_epoch)
    end_epoch: null                                         # (phases); schedules run over the window
    lr_reference_batch: 0                                   # > 0: LR x global batch / lr_reference_batch

A group stepped outside its window is an error; ``Updater.is_active(group)`` tells the objective.
"""

from __future__ import annotations

import contextlib
from typing import Dict, Iterable, List, Mapping, Optional

import torch

from wespeaker_like.registry import SCHEDULERS

OPTIMIZERS = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
CLIP_MODES = ("global", "per_parameter", "none")
SPEC_DEFAULTS = {"optim": None, "scheduler": None, "weight_decay_scheduler": None, "clip": None,
                 "sub_groups": {}, "start_epoch": 0, "end_epoch": None, "lr_reference_batch": 0}
SUB_GROUP_DEFAULTS = {"weight_decay": None, "lr_scale": 1.0}


def group_specs(objective, cfg: Mapping) -> Dict[str, dict]:
    """Full spec of every group: SPEC_DEFAULTS < base optim/scheduler/clip < objective < config."""
    grad_clip = float(cfg["trainer"]["grad_clip"])
    base = {**SPEC_DEFAULTS, "optim": dict(cfg["optim"]), "scheduler": dict(cfg["scheduler"]),
            "clip": {"mode": "global" if grad_clip > 0 else "none", "max_norm": grad_clip}}
    defaults = objective.step_group_defaults()
    overrides = cfg.get("step_groups") or {}
    specs = {}
    for group in objective.parameter_groups():
        specs[group] = {**base, **defaults.get(group, {}), **overrides.get(group, {})}
    return specs


def _as_sub_groups(params) -> Dict[str, List[torch.nn.Parameter]]:
    if isinstance(params, Mapping):
        return {name: [p for p in ps if p.requires_grad] for name, ps in params.items()}
    return {"default": [p for p in params if p.requires_grad]}


class StepGroup:
    """One optimiser over a set of parameters, stepped by ``Updater.step(name, loss)``."""

    def __init__(self, name: str, params, spec: Mapping, total_epochs: float, global_batch: int, amp: bool,
                 device_type: str):
        self.name, self.spec = name, dict(spec)
        self.start_epoch = float(spec["start_epoch"])
        self.end_epoch = float(total_epochs if spec["end_epoch"] is None else spec["end_epoch"])
        optim = dict(spec["optim"])
        optimizer_class = OPTIMIZERS[optim.pop("name", "sgd")]
        self.base_lr = float(optim["lr"])
        if spec["lr_reference_batch"]:
            self.base_lr *= global_batch / spec["lr_reference_batch"]
        self.base_weight_decay = float(optim.get("weight_decay", 0.0))
        sub_specs = spec["sub_groups"] or {}
        param_groups = []
        for sub_name, sub_params in _as_sub_groups(params).items():
            sub = {**SUB_GROUP_DEFAULTS, **sub_specs.get(sub_name, {})}
            param_groups.append({"params": sub_params, "sub_group": sub_name, "lr_scale": float(sub["lr_scale"]),
                                 "fixed_weight_decay": sub["weight_decay"]})
            if sub["weight_decay"] is not None:
                param_groups[-1]["weight_decay"] = float(sub["weight_decay"])
        self.params = [p for g in param_groups for p in g["params"]]
        # one multi-tensor kernel per update (torch picks it on CUDA only, the per-tensor loop on CPU):
        # the same arithmetic, without a Python loop over parameters
        optim.setdefault("foreach", True)
        self.optimizer = optimizer_class(param_groups, **optim)
        span = self.end_epoch - self.start_epoch
        self.lr_schedule = SCHEDULERS.build(dict(spec["scheduler"]), base_lr=self.base_lr, total_epochs=span)
        wd = spec["weight_decay_scheduler"]
        self.wd_schedule = (SCHEDULERS.build(dict(wd), base_lr=self.base_weight_decay, total_epochs=span)
                            if wd else None)
        clip = spec["clip"] or {"mode": "none"}
        self.clip_mode, self.max_norm = clip.get("mode", "none"), float(clip.get("max_norm", 0.0))
        self.scaler = torch.amp.GradScaler(device_type, enabled=amp)
        self.autocast_off = (torch.autocast(device_type, enabled=False) if amp else contextlib.nullcontext())

    def is_active(self, progress: float) -> bool:
        return self.start_epoch <= progress < self.end_epoch

    def set_progress(self, progress: float) -> None:
        """Set each sub-group's LR (and weight decay) for the fractional epoch ``progress``."""
        local = progress - self.start_epoch
        lr = self.lr_schedule(local)
        weight_decay = self.wd_schedule(local) if self.wd_schedule else None
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group["lr_scale"] if group["lr_scale"] != 1.0 else lr
            if weight_decay is not None and group["fixed_weight_decay"] is None:
                group["weight_decay"] = weight_decay

    def clip(self) -> None:
        """Clip unscaled gradients: the global norm, or each tensor's norm separately."""
        grads = [p for p in self.params if p.grad is not None]
        if self.clip_mode == "global" and self.max_norm > 0:
            torch.nn.utils.clip_grad_norm_(grads, self.max_norm)
        elif self.clip_mode == "per_parameter" and self.max_norm > 0:
            for p in grads:
                torch.nn.utils.clip_grad_norm_([p], self.max_norm)

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict()}

    def load_state_dict(self, state: Mapping) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])


def check_disjoint(groups: Iterable[StepGroup], frozen: Iterable[torch.nn.Parameter] = ()) -> None:
    """A parameter belongs to at most one group, and never to a group and an EMA teacher."""
    owner: Dict[int, str] = {id(p): "an EMA teacher" for p in frozen}
    for group in groups:
        for p in group.params:
            other: Optional[str] = owner.get(id(p))
            if other is not None:
                raise ValueError(f"a parameter of step group '{group.name}' also belongs to {other}")
            owner[id(p)] = f"step group '{group.name}'"
