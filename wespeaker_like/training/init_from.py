"""``init_from``: start an objective from another experiment's final model or checkpoint.

Config section::

    init_from:
      path: ../ecapa_aam/exp          # an experiment dir (its final_model.pt) or a checkpoint / final model .pt
      key_map: {"backbone.": ""}      # objective prefix -> source prefix; every entry is required
      freeze: {"backbone.": 2}        # parameters under the prefix stay still for the first N epochs

A final model holds only the embedding network, so the default ``key_map`` puts it where the
objective's ``embedding_model()`` lives; a checkpoint holds the whole objective (default ``{"": ""}``).
Objective keys left uninitialised and source keys left unused are logged; a prefix of ``key_map``
that matches nothing on either side is an error.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Dict, List, Mapping

import torch

from wespeaker_like.errors import InputError
from wespeaker_like.training.checkpoint import load_checkpoint

log = logging.getLogger("train")


def module_prefix(root: torch.nn.Module, module: torch.nn.Module) -> str:
    """``"backbone."`` for ``root.backbone``; ``""`` for ``root`` itself."""
    for name, candidate in root.named_modules():
        if candidate is module:
            return name + "." if name else ""
    raise ValueError("the module is not part of the objective")


def source_state(path: Path) -> tuple[Path, Dict[str, torch.Tensor], bool]:
    """(file, state dict, whether it is a whole objective) from an experiment dir or a .pt file."""
    path = Path(path)
    file = path / "final_model.pt" if path.is_dir() else path
    state = load_checkpoint(file)
    if "objective" in state:
        return file, state["objective"], True
    if "embedding" in state:
        return file, state["embedding"], False
    raise InputError(file, "holds neither 'objective' (a checkpoint) nor 'embedding' (a final model)")


def apply_init_from(objective: torch.nn.Module, spec: Mapping) -> None:
    """Copy the weights ``spec`` names into ``objective`` (in place), logging what was not matched."""
    file, source, whole = source_state(Path(spec["path"]))
    key_map = dict(spec.get("key_map") or ({"": ""} if whole else
                                            {module_prefix(objective, objective.embedding_model()): ""}))
    target = objective.state_dict()
    loaded, used = {}, set()
    for to_prefix, from_prefix in key_map.items():
        matched = 0
        for key in target:
            if not key.startswith(to_prefix):
                continue
            source_key = from_prefix + key[len(to_prefix):]
            if source_key not in source:
                continue
            if source[source_key].shape != target[key].shape:
                raise InputError(file, f"'{source_key}' has shape {tuple(source[source_key].shape)} but the "
                                 f"objective's '{key}' has {tuple(target[key].shape)} (init_from.key_map)")
            loaded[key] = source[source_key]
            used.add(source_key)
            matched += 1
        if matched == 0:
            raise InputError(file, f"init_from.key_map '{to_prefix}' <- '{from_prefix}': no weight of the source "
                             f"matches a weight of the objective; required module missing")
    objective.load_state_dict(loaded, strict=False)
    missing = sorted(k for k in target if k not in loaded)
    unexpected = sorted(k for k in source if k not in used)
    log.info("init_from %s: %d tensors loaded; not initialised: %s; unused from the source: %s", file,
             len(loaded), ", ".join(missing) or "none", ", ".join(unexpected) or "none")


def frozen_parameters(objective: torch.nn.Module, freeze: Mapping[str, float], progress: float) -> List:
    """Parameters under a ``freeze`` prefix whose number of epochs has not passed yet."""
    prefixes = tuple(prefix for prefix, epochs in freeze.items() if progress < float(epochs))
    if not prefixes:
        return []
    return [p for name, p in objective.named_parameters() if name.startswith(prefixes)]
