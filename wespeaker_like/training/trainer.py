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
import sys
import time
from pathlib import Path
from typing import Dict, Mapping

import torch
from tqdm import tqdm

from wespeaker_like.fileio import atomic_path, atomic_write
from wespeaker_like.registry import SCHEDULERS
from wespeaker_like.training import checkpoint as ckpt
from wespeaker_like.training.distributed import DistContext, average_gradients, broadcast_module, ranks_agree

log = logging.getLogger("train")

OPTIMIZERS = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}


def build_optimizer(params, cfg: Mapping) -> torch.optim.Optimizer:
    cfg = dict(cfg)
    name = cfg.pop("name", "sgd")
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer '{name}' (expected one of {sorted(OPTIMIZERS)})")
    return OPTIMIZERS[name](list(params), **cfg)


class _Updater:
    """Performs one optimiser step of a parameter group for ``Objective.training_step``."""

    def __init__(self, trainer: "Trainer"):
        self.t = trainer

    def step(self, group: str, loss: torch.Tensor) -> None:
        t = self.t
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss of group '{group}' is {loss.item()} at step {t.global_step}; "
                                     "lower the learning rate or check the input features")
        optimizer, params = t.optimizers[group], t.group_params[group]
        optimizer.zero_grad(set_to_none=True)
        t.scaler.scale(loss).backward()
        average_gradients(params, t.dist.world_size)
        if t.grad_clip > 0:
            t.scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(params, t.grad_clip)
        t.scaler.step(optimizer)
        t.scaler.update()


class Trainer:
    def __init__(self, cfg: Mapping, objective, loader, batch_sampler, exp_dir: Path, dist: DistContext,
                 num_classes: Mapping[str, int]):
        self.cfg, self.dist, self.exp_dir = cfg, dist, Path(exp_dir)
        tcfg = cfg["trainer"]
        self.epochs = int(tcfg["epochs"])
        self.grad_clip = float(tcfg["grad_clip"])
        self.log_every = int(tcfg["log_every"])
        self.checkpoint_every = int(tcfg["checkpoint_every_steps"])
        self.keep = int(tcfg["keep_checkpoints"])
        self.average_last = int(tcfg["average_last"])
        self.num_classes = dict(num_classes)
        self.objective = objective.to(dist.device)
        broadcast_module(self.objective)
        self.loader, self.sampler = loader, batch_sampler
        self.steps_per_epoch = len(batch_sampler)
        self.optimizers: Dict[str, torch.optim.Optimizer] = {}
        self.group_params: Dict[str, list] = {}
        self.schedules = {}
        for group, (params, overrides) in objective.parameter_groups().items():
            params = [p for p in params if p.requires_grad]
            group_cfg = {**cfg["optim"], **overrides}
            self.group_params[group] = params
            self.optimizers[group] = build_optimizer(params, group_cfg)
            sched_cfg = dict(cfg["scheduler"])
            self.schedules[group] = SCHEDULERS.build(sched_cfg, base_lr=group_cfg["lr"], total_epochs=self.epochs)
        amp = bool(tcfg["amp"]) and dist.device.type == "cuda"
        self.autocast = (torch.autocast("cuda", dtype=torch.float16) if amp else contextlib.nullcontext())
        self.scaler = torch.amp.GradScaler("cuda", enabled=amp)
        self.epoch, self.batch_in_epoch, self.global_step, self.train_seconds = 0, 0, 0, 0.0
        self.ckpt_dir = self.exp_dir / "checkpoints"

    # ---- checkpointing -------------------------------------------------------------------
    def state(self) -> Dict[str, object]:
        return {
            "objective": self.objective.state_dict(),
            "embedding": self.objective.embedding_model().state_dict(),
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "scaler": self.scaler.state_dict(),
            "rng": ckpt.rng_state(),
            "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch, "global_step": self.global_step,
            "train_seconds": self.train_seconds, "num_classes": self.num_classes,
        }

    def save(self, name: str) -> None:
        if self.dist.is_main:
            ckpt.save_checkpoint(self.ckpt_dir, name, self.state(), self.keep if name.startswith("step")
                                 else max(self.keep, self.average_last))

    def resume(self) -> bool:
        path = ckpt.latest_checkpoint(self.ckpt_dir)
        if path is None:
            return False
        state = ckpt.load_checkpoint(path, self.dist.device)
        self.objective.load_state_dict(state["objective"])
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])
        self.scaler.load_state_dict(state["scaler"])
        ckpt.set_rng_state(state["rng"])
        self.epoch, self.batch_in_epoch = state["epoch"], state["batch_in_epoch"]
        self.global_step, self.train_seconds = state["global_step"], state["train_seconds"]
        log.info("resumed from %s: epoch %d, batch %d, step %d", path, self.epoch + 1, self.batch_in_epoch,
                 self.global_step)
        return True

    # ---- training --------------------------------------------------------------------------
    def _set_lr(self, progress: float) -> None:
        for group, optimizer in self.optimizers.items():
            lr = self.schedules[group](progress)
            for param_group in optimizer.param_groups:
                param_group["lr"] = lr

    def _move(self, batch):
        dev = self.dist.device
        batch["views"] = [v.to(dev, non_blocking=True) for v in batch["views"]]
        batch["labels"] = {k: v.to(dev, non_blocking=True) for k, v in batch["labels"].items()}
        return batch

    def fit(self) -> None:
        updater = _Updater(self)
        self.objective.train()
        while self.epoch < self.epochs:
            self.sampler.set_epoch(self.epoch, self.batch_in_epoch)
            bar = tqdm(total=self.steps_per_epoch, initial=self.batch_in_epoch, disable=not self.dist.is_main,
                       desc=f"epoch {self.epoch + 1}/{self.epochs}", file=sys.stderr, dynamic_ncols=True,
                       mininterval=1.0 if sys.stderr.isatty() else 30.0)
            sums: Dict[str, float] = {}
            count = 0
            start = time.time()
            for batch in self.loader:
                progress = self.epoch + self.batch_in_epoch / self.steps_per_epoch
                self._set_lr(progress)
                self.objective.on_progress(progress)
                with self.autocast:
                    values = self.objective.training_step(self._move(batch), updater)
                self.batch_in_epoch += 1
                self.global_step += 1
                count += 1
                for k, v in values.items():
                    sums[k] = sums.get(k, 0.0) + v
                bar.update(1)
                if self.global_step % self.log_every == 0:
                    lr = next(iter(self.optimizers.values())).param_groups[0]["lr"]
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
        if self.dist.is_main:
            self.write_final_model()

    def write_final_model(self) -> None:
        paths = ckpt.epoch_checkpoints(self.ckpt_dir)[-self.average_last:]
        states = [ckpt.load_checkpoint(p)["embedding"] for p in paths]
        final = {"embedding": ckpt.average_state_dicts(states), "num_classes": self.num_classes,
                 "averaged": [p.name for p in paths]}
        with atomic_path(self.exp_dir / "final_model.pt") as tmp:
            torch.save(final, tmp)
        with atomic_write(self.exp_dir / "train_time") as handle:
            handle.write(f"{self.train_seconds:.1f}\n")
        log.info("wrote %s (average of %s)", self.exp_dir / "final_model.pt", ", ".join(p.name for p in paths))
