"""The experiment config schema and its loader, shared by training and extraction.

``load_experiment_config`` merges includes and ``--set`` overrides, fills defaults, and checks every
key and value type with ``file:line`` errors: the fixed sections against ``SCHEMA``, and every
``{name: ...}`` spec (model, objective, its nested specs such as ``loss``, scheduler, optimisers and
the ``step_groups``) against the signature of the class it names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping

from wespeaker_like.errors import InputError
from wespeaker_like.features.frontends import FEATURE_DEFAULTS
from wespeaker_like.registry import MODELS, OBJECTIVES, SCHEDULERS, Registry
from wespeaker_like.training.config import OPEN, Config, check_keys, check_kwargs, load_config, with_defaults
from wespeaker_like.training.step_groups import CLIP_MODES, OPTIMIZERS, SPEC_DEFAULTS, SUB_GROUP_DEFAULTS

SCHEMA = {
    "seed": 42,
    "features": FEATURE_DEFAULTS,
    # sampler: random uses batch_size; speaker_balanced the other three (dataset/samplers.py)
    "dataset": {"num_workers": 1, "sampler": {"name": "random", "batch_size": 128, "speakers_per_batch": 0,
                                              "utts_per_speaker": 2, "max_utts_per_speaker": 500},
                # raw audio (source: audio) only: extra front-ends, on-the-fly augmentation, speed copies
                "source": "auto", "frontends": OPEN, "augment": OPEN, "speed_perturb": [], "min_seconds": 0.0,
                "skip_bad": False,
                # a stage-2 data dir: sample only the clean originals (views reach the copies, 004)
                "originals_only": False},
    "model": OPEN,
    "objective": OPEN,
    "optim": OPEN,
    "scheduler": OPEN,
    "step_groups": OPEN,
    "init_from": {"path": "", "key_map": OPEN, "freeze": OPEN},
    # a paper-table row reproduced by the config: stage 7 shows its numbers ({trials: {eer, min_dcf}}, p_target) beside ours
    "paper": {"table": "", "row": "", "numbers": OPEN, "p_target": 0.01},
    "trainer": {"epochs": 10, "grad_clip": 0.0, "amp": False, "log_every": 20, "checkpoint_every_steps": 200,
                "keep_checkpoints": 2, "average_last": 1, "num_threads": 0, "device": "auto",
                "sync_batchnorm": False,
                # torch.compile the backbone (training/compile.py; eager when compilation fails)
                "compile": False},
}


def check_spec(cfg: Config, dotted: str, registry: Registry, ignore: Iterable[str] = ("name",)) -> None:
    """Section ``dotted`` is ``{name: <registered>, **options of that class}``."""
    spec = cfg.get_path(dotted)
    if not isinstance(spec, Mapping) or "name" not in spec:
        raise cfg.error(dotted, f"expected a mapping with a 'name' (one of: {', '.join(registry.names())})")
    try:
        target = registry.get(spec["name"])
    except KeyError as exc:
        raise cfg.error(f"{dotted}.name", str(exc.args[0])) from None
    check_kwargs(cfg, dotted, target, ignore)


def check_optimizer(cfg: Config, dotted: str) -> None:
    name = cfg.get_path(dotted).get("name", "sgd")
    if name not in OPTIMIZERS:
        raise cfg.error(f"{dotted}.name", f"unknown optimizer '{name}'; expected one of {sorted(OPTIMIZERS)}")
    check_kwargs(cfg, dotted, OPTIMIZERS[name])


def _check_step_groups(cfg: Config) -> None:
    spec_schema = {k: OPEN if k in ("optim", "scheduler", "weight_decay_scheduler", "clip", "sub_groups")
                   else v for k, v in SPEC_DEFAULTS.items()}
    for group, spec in cfg["step_groups"].items():
        prefix = f"step_groups.{group}"
        if not isinstance(spec, Mapping):
            raise cfg.error(prefix, "expected a mapping (a step group spec)")
        check_keys(cfg, spec_schema, prefix + ".")
        if spec.get("optim") is not None:
            check_optimizer(cfg, prefix + ".optim")
        for key in ("scheduler", "weight_decay_scheduler"):
            if spec.get(key) is not None:
                check_spec(cfg, f"{prefix}.{key}", SCHEDULERS, ignore=("name", "base_lr", "total_epochs"))
        clip = spec.get("clip")
        if clip is not None:
            check_keys(cfg, {"mode": "none", "max_norm": 0.0}, prefix + ".clip.")
            if clip.get("mode", "none") not in CLIP_MODES:
                raise cfg.error(prefix + ".clip.mode", f"expected one of {', '.join(CLIP_MODES)}")
        for sub in spec.get("sub_groups") or {}:
            check_keys(cfg, {**SUB_GROUP_DEFAULTS, "weight_decay": 0.0}, f"{prefix}.sub_groups.{sub}.")


def load_experiment_config(path: str | Path, overrides: Iterable[str] = ()) -> Config:
    """Merged, defaulted and checked config: unknown keys or wrong value types raise InputError with file:line."""
    import wespeaker_like.losses  # noqa: F401  (registers the heads)
    import wespeaker_like.models  # noqa: F401  (registers the backbones)
    import wespeaker_like.objectives  # noqa: F401  (registers the objectives)
    import wespeaker_like.training.schedulers  # noqa: F401  (registers the schedules)

    cfg = load_config(path, overrides)
    check_keys(cfg, SCHEMA)
    cfg = with_defaults(cfg, SCHEMA)
    check_spec(cfg, "model", MODELS)
    check_spec(cfg, "objective", OBJECTIVES, ignore=("name", "model", "num_classes"))
    check_spec(cfg, "scheduler", SCHEDULERS, ignore=("name", "base_lr", "total_epochs"))
    objective = OBJECTIVES.get(cfg["objective"]["name"])
    for key, registry in objective.nested_specs.items():
        if isinstance(cfg["objective"].get(key), Mapping):
            check_spec(cfg, f"objective.{key}", registry, ignore=("name", "embed_dim", "num_classes"))
    check_optimizer(cfg, "optim")
    _check_step_groups(cfg)
    return cfg
