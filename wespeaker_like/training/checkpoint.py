"""Checkpoints that resume a run exactly, written atomically.

A checkpoint holds the objective's state (every module: backbone, heads, estimators, teachers),
each optimiser, the AMP scaler, the RNG states and the position (epoch, next batch, global step).
``checkpoints/latest`` names the newest complete file; it is replaced only after that file is in
place, so a run killed while saving resumes from the previous checkpoint.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Dict, List, Optional

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


def latest_checkpoint(ckpt_dir: Path) -> Optional[Path]:
    pointer = ckpt_dir / "latest"
    if not pointer.is_file():
        return None
    path = ckpt_dir / pointer.read_text().strip()
    if not path.is_file():
        raise InputError(pointer, f"names '{path.name}', which does not exist; remove 'latest' to start over")
    return path


def load_checkpoint(path: Path, map_location="cpu") -> Dict[str, object]:
    return torch.load(path, map_location=map_location, weights_only=True)


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
