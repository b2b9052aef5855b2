"""Checkpoints that resume a run exactly, written atomically.

A checkpoint holds the objective's state (every module: backbone, heads, estimators, teachers),
each optimiser, the AMP scaler, the RNG states and the position (epoch, next batch, global step).
``checkpoints/latest`` names the newest complete file; it is replaced only after that file is in
place, so a run killed while saving resumes from the previous checkpoint.
"""

from __future__ import annotations

import logging
import pickle
import random
from pathlib import Path
from typing import Dict, List, Tuple

import torch

from wespeaker_like.errors import InputError
from wespeaker_like.fileio import atomic_path, atomic_write


def rng_state() -> Dict[str, object]:
    state = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Dict[str, object]) -> None:
    random.setstate(_as_tuple(state["python"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuple(value):
    return tuple(_as_tuple(v) for v in value) if isinstance(value, (list, tuple)) else value


def save_checkpoint(ckpt_dir: Path, name: str, state: Dict[str, object], keep: int) -> Path:
    """Write ``ckpt_dir/name``, point ``latest`` at it, and drop older checkpoints of its kind
    (``epoch_*`` or ``step_*``) beyond ``keep``."""
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    path = ckpt_dir / name
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    with atomic_write(ckpt_dir / "latest") as handle:
        handle.write(name + "\n")
    kind = name.split("_")[0]
    for old in sorted(ckpt_dir.glob(f"{kind}_*.pt"))[:-keep]:
        old.unlink()
    return path


def resume_candidates(ckpt_dir: Path) -> List[Path]:
    """The checkpoint named by ``latest`` first, then every other one, newest first."""
    others = sorted(ckpt_dir.glob("*.pt"), key=lambda p: (p.stat().st_mtime_ns, p.name), reverse=True)
    pointer = ckpt_dir / "latest"
    if not pointer.is_file():
        return others
    named = ckpt_dir / pointer.read_text().strip()
    return [named] + [p for p in others if p != named]


def load_checkpoint(path: Path, map_location="cpu") -> Dict[str, object]:
    """A checkpoint or final model; a missing, truncated or corrupt file is an InputError naming it."""
    if not Path(path).is_file():
        raise InputError(path, "not found")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError) as exc:
        raise InputError(path, f"is not a readable checkpoint (truncated or corrupt?): "
                         f"{str(exc).splitlines()[0]}") from None


def load_first_intact(paths: List[Path], map_location, log: logging.Logger) -> Tuple[Path, Dict[str, object]]:
    """The first of ``paths`` that loads; each one skipped is logged as a warning."""
    for path in paths:
        try:
            return path, load_checkpoint(path, map_location)
        except InputError as exc:
            log.warning("%s; falling back to the previous checkpoint", exc)
    raise InputError(paths[0].parent, "no intact checkpoint to resume from; remove the directory to start over")


def remove_temporary_files(exp_dir: Path) -> List[Path]:
    """Delete temporary files left by a run killed while writing a checkpoint or the final model."""
    leftovers = list((exp_dir / "checkpoints").glob(".*.tmp*")) + list(exp_dir.glob(".final_model.*.tmp.pt"))
    for path in leftovers:
        path.unlink(missing_ok=True)
    return leftovers


def move_aside(ckpt_dir: Path) -> Path:
    """Rename ``ckpt_dir`` to the first free ``<ckpt_dir>.old.N``; returns the new name."""
    n = 1
    while ckpt_dir.with_name(f"{ckpt_dir.name}.old.{n}").exists():
        n += 1
    target = ckpt_dir.with_name(f"{ckpt_dir.name}.old.{n}")
    ckpt_dir.rename(target)
    return target


def epoch_checkpoints(ckpt_dir: Path) -> List[Path]:
    return sorted(ckpt_dir.glob("epoch_*.pt"))


def average_state_dicts(states: List[Dict[str, torch.Tensor]]) -> Dict[str, torch.Tensor]:
    """Element-wise mean of floating tensors; integer buffers (e.g. BN counters) from the last."""
    out = {}
    for key, value in states[-1].items():
        if value.is_floating_point():
            out[key] = sum(s[key].double() for s in states).div(len(states)).to(value.dtype)
        else:
            out[key] = value.clone()
    return out


def load_matching_state(module: torch.nn.Module, state: Dict[str, torch.Tensor], state_path: Path,
                        config_path: Path) -> None:
    """``module.load_state_dict(state)``, with shape or key mismatches named on both sides."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise InputError(state_path, f"does not fit the model built from {config_path}: missing keys "
                         f"{missing[:5]}, unexpected keys {unexpected[:5]}")
    for key, value in own.items():
        if value.shape != state[key].shape:
            raise InputError(state_path, f"'{key}' has shape {tuple(state[key].shape)} but the model built from "
                             f"{config_path} expects {tuple(value.shape)}: the config and the model differ")
    module.load_state_dict(state)
