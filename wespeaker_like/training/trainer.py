"""The one trainer: epochs of batches through an objective, with checkpoint/resume, AMP, clipping,
per-iteration LR schedules, torchrun data parallelism, a progress bar and a log file.

Layout of ``exp_dir``: ``config.yaml`` (merged config), ``train.log``, ``checkpoints/``
(``epoch_NNN.pt``, ``step_NNNNNNN.pt``, ``latest``), ``train_time`` (seconds, summed over resumed
runs) and, at the end, ``final_model.pt`` (the evaluation sub-network, averaged over the last
``average_last`` epochs).
"""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path
import uuid
from typing import Dict, Mapping, Optional

import torch

from wespeaker_like.errors import InputError
from wespeaker_like.fileio import atomic_path, atomic_write
from wespeaker_like.progress import progress_bar
from wespeaker_like.training import checkpoint as ckpt
from wespeaker_like.training.compile import compile_backbone
from wespeaker_like.training.distributed import (DistContext, average_gradients, broadcast_module,
                                                 maybe_sync_batchnorm, ranks_agree)
from wespeaker_like.training.init_from import apply_init_from, frozen_parameters
from wespeaker_like.training.step_groups import StepGroup, check_disjoint, group_specs

log = logging.getLogger("train")


class _Updater:
    """Performs one optimiser step of a step group for ``Objective.training_step``."""

    def __init__(self, trainer: "Trainer"):
        self.t = trainer

    def is_active(self, group: str) -> bool:
        return self.t.groups[group].is_active(self.t.progress)

    def step(self, group: str, loss: torch.Tensor) -> None:
        t = self.t
        if group not in t.groups:
            raise KeyError(f"unknown step group '{group}'; the objective declares {sorted(t.groups)}")
        g = t.groups[group]
        if not g.is_active(t.progress):
            raise RuntimeError(f"step group '{group}' is stepped at epoch {t.progress:.3f}, outside its window "
                               f"[{g.start_epoch}, {g.end_epoch})")
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss of group '{group}' is {loss.item()} at step {t.global_step + 1}; "
                                     "lower the learning rate or check the input features")
        g.optimizer.zero_grad(set_to_none=True)
        with g.autocast_off:  # autocast covers the forward only
            g.scaler.scale(loss).backward()
        average_gradients(g.params, t.dist.world_size)
        for p in t.frozen:
            p.grad = None  # init_from.freeze: untouched by the optimiser, momentum and weight decay
        g.scaler.unscale_(g.optimizer)
        t.objective.before_optimizer_step(group, t.progress)
        g.clip()
        g.scaler.step(g.optimizer)
        g.scaler.update()
        if not torch.stack([torch.isfinite(p).all() for p in g.params]).all():
            raise FloatingPointError(f"weights of step group '{group}' are not finite after step "
                                     f"{t.global_step + 1} (epoch {t.epoch + 1}); lower the learning rate")


class Trainer:
    def __init__(self, cfg: Mapping, objective, loader, batch_sampler, exp_dir: Path, dist: DistContext,
                 num_classes: Mapping[str, int], train_data: Optional[Path] = None,
                 label_maps: Optional[Mapping[str, Mapping[str, int]]] = None):
        self.cfg, self.dist, self.exp_dir = cfg, dist, Path(exp_dir)
        tcfg = cfg["trainer"]
        self.epochs = int(tcfg["epochs"])
        self.log_every = int(tcfg["log_every"])
        self.checkpoint_every = int(tcfg["checkpoint_every_steps"])
        self.keep = int(tcfg["keep_checkpoints"])
        self.average_last = int(tcfg["average_last"])
        self.num_classes = dict(num_classes)
        self.label_maps = {k: dict(v) for k, v in (label_maps or {}).items()}
        self.train_data = str(Path(train_data).resolve()) if train_data else None
        self.objective = maybe_sync_batchnorm(objective, bool(tcfg["sync_batchnorm"]), dist).to(dist.device)
        broadcast_module(self.objective)
        if tcfg["compile"]:
            compile_backbone(self.objective.embedding_model())
        self.loader, self.sampler = loader, batch_sampler
        self.steps_per_epoch = len(batch_sampler)
        self.teachers = self.objective.ema_teachers()
        for teacher in self.teachers.values():
            teacher.start(self.epochs)
        amp = bool(tcfg["amp"]) and dist.device.type == "cuda"
        self.autocast = (torch.autocast("cuda", dtype=torch.float16) if amp else contextlib.nullcontext())
        global_batch = getattr(batch_sampler, "batch_size", 0) * dist.world_size
        self.groups: Dict[str, StepGroup] = {}
        params = self.objective.parameter_groups()
        for name, spec in group_specs(self.objective, cfg).items():
            self.groups[name] = StepGroup(name, params[name], spec, self.epochs, global_batch, amp,
                                          dist.device.type)
        check_disjoint(self.groups.values(), [p for t in self.teachers.values() for p in t.teacher_params])
        self.epoch, self.batch_in_epoch, self.global_step, self.train_seconds = 0, 0, 0, 0.0
        self.progress = 0.0
        self.init_from = dict(cfg.get("init_from") or {})
        self.frozen: list = []
        self.run_id = uuid.uuid4().hex
        self.ckpt_dir = self.exp_dir / "checkpoints"
        if dist.is_main:
            ckpt.remove_temporary_files(self.exp_dir)

    # ---- checkpointing -------------------------------------------------------------------
    def state(self) -> Dict[str, object]:
        return {
            "objective": self.objective.state_dict(),
            "embedding": self.objective.embedding_model().state_dict(),
            "step_groups": {k: g.state_dict() for k, g in self.groups.items()},
            "rng": ckpt.rng_state(),
            "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch, "global_step": self.global_step,
            "train_seconds": self.train_seconds, "num_classes": self.num_classes, "label_maps": self.label_maps,
            "run_id": self.run_id, "train_data": self.train_data,
        }

    def save(self, name: str) -> None:
        if self.dist.is_main:
            ckpt.save_checkpoint(self.ckpt_dir, name, self.state(), self.keep if name.startswith("step")
                                 else max(self.keep, self.average_last))

    def start(self) -> None:
        """Resume if the run has a checkpoint, otherwise apply ``init_from`` (if configured)."""
        if not self.resume() and self.init_from.get("path"):
            apply_init_from(self.objective, self.init_from)

    def resume(self) -> bool:
        """Continue from ``checkpoints/latest`` (or the newest intact checkpoint when it is damaged)."""
        if not (self.ckpt_dir / "latest").is_file():
            return False
        found = ckpt.resume_candidates(self.ckpt_dir)
        path, state = ckpt.load_first_intact(found, self.dist.device, log)
        if self.train_data and state.get("train_data") and state["train_data"] != self.train_data:
            raise InputError(path, f"was trained on {state['train_data']}, not on --train_data "
                             f"{self.train_data}; use the same data or a new --exp_dir")
        self.objective.load_state_dict(state["objective"])
        for name, group in self.groups.items():
            group.load_state_dict(state["step_groups"][name])
        ckpt.set_rng_state(state["rng"])
        self.epoch, self.batch_in_epoch = state["epoch"], state["batch_in_epoch"]
        self.global_step, self.train_seconds = state["global_step"], state["train_seconds"]
        self.run_id = state["run_id"]
        log.info("resumed from %s: epoch %d, batch %d, step %d", path, self.epoch + 1, self.batch_in_epoch,
                 self.global_step)
        return True

    # ---- training --------------------------------------------------------------------------
    def _set_progress(self, progress: float) -> None:
        self.progress = progress
        if self.init_from.get("freeze"):
            self.frozen = frozen_parameters(self.objective, self.init_from["freeze"], progress)
        for group in self.groups.values():
            group.set_progress(progress)
        self.objective.on_progress(progress)

    def _move(self, batch):
        dev = self.dist.device
        batch["views"] = [v.to(dev, non_blocking=True) for v in batch["views"]]
        batch["labels"] = {k: v.to(dev, non_blocking=True) for k, v in batch["labels"].items()}
        return batch

    def fit(self) -> None:
        updater = _Updater(self)
        self.objective.train()
        # A rerun of a finished experiment keeps its final model (and so the stage-5 embeddings made from it).
        finished_before = self.epoch >= self.epochs and (self.exp_dir / "final_model.pt").is_file()
        while self.epoch < self.epochs:
            self.sampler.set_epoch(self.epoch, self.batch_in_epoch)
            self.steps_per_epoch = len(self.sampler)  # a speaker-balanced epoch's batch count varies
            if self.steps_per_epoch == 0:
                raise InputError(self.train_data, f"epoch {self.epoch + 1}: the batch sampler "
                                 f"({type(self.sampler).__name__}) gives no batch on rank {self.dist.rank} of "
                                 f"{self.dist.world_size}; nothing would be trained (dataset.sampler)")
            # In a log file the line below every log_every steps is the progress report.
            bar = progress_bar(self.steps_per_epoch, f"epoch {self.epoch + 1}/{self.epochs}", None, log,
                               initial=self.batch_in_epoch, enabled=self.dist.is_main)
            sums: Dict[str, float] = {}
            count = 0
            start = time.time()
            for batch in self.loader:
                progress = self.epoch + self.batch_in_epoch / self.steps_per_epoch
                self._set_progress(progress)
                with self.autocast:
                    values = self.objective.training_step(self._move(batch), updater)
                for name, teacher in self.teachers.items():
                    values[f"momentum_{name}"] = teacher.update(progress)
                self.batch_in_epoch += 1
                self.global_step += 1
                count += 1
                for k, v in values.items():
                    sums[k] = sums.get(k, 0.0) + v
                bar.update(1)
                if self.global_step % self.log_every == 0:
                    lr = next(iter(self.groups.values())).optimizer.param_groups[0]["lr"]
                    means = " ".join(f"{k} {v / count:.4f}" for k, v in sums.items())
                    bar.set_postfix_str(means)
                    log.info("epoch %d batch %d/%d step %d lr %.3g %s", self.epoch + 1, self.batch_in_epoch,
                             self.steps_per_epoch, self.global_step, lr, means)
                if self.checkpoint_every and self.global_step % self.checkpoint_every == 0 \
                        and self.batch_in_epoch < self.steps_per_epoch:
                    self.train_seconds += time.time() - start
                    start = time.time()
                    self.save(f"step_{self.global_step:07d}.pt")
            bar.close()
            self.train_seconds += time.time() - start
            means = " ".join(f"{k} {v / max(count, 1):.4f}" for k, v in sums.items())
            log.info("epoch %d done: %s (%.0f s training so far)", self.epoch + 1, means, self.train_seconds)
            self.epoch, self.batch_in_epoch = self.epoch + 1, 0
            self.save(f"epoch_{self.epoch:03d}.pt")
        if self.dist.distributed:
            if not ranks_agree(self.objective, self.dist.world_size):
                raise RuntimeError("parameters differ between ranks after training (gradient averaging broke)")
            log.info("parameters agree across %d ranks", self.dist.world_size)
        if finished_before:
            log.info("training had finished: %s kept", self.exp_dir / "final_model.pt")
        elif self.dist.is_main:
            self.write_final_model()

    def write_final_model(self) -> None:
        paths, states = [], []
        for path in ckpt.epoch_checkpoints(self.ckpt_dir):
            state = ckpt.load_checkpoint(path)
            if state.get("run_id") == self.run_id:
                paths.append(path)
                states.append(state["embedding"])
        paths, states = paths[-self.average_last:], states[-self.average_last:]
        final = {"embedding": ckpt.average_state_dicts(states), "num_classes": self.num_classes,
                 "label_maps": self.label_maps, "averaged": [p.name for p in paths]}
        with atomic_path(self.exp_dir / "final_model.pt") as tmp:
            torch.save(final, tmp)
        with atomic_write(self.exp_dir / "train_time") as handle:
            handle.write(f"{self.train_seconds:.1f}\n")
        log.info("wrote %s (average of %s)", self.exp_dir / "final_model.pt", ", ".join(p.name for p in paths))
