"""EMA teachers: modules that follow a student by an exponential moving average, never by an optimiser.

After every batch the trainer sets ``teacher <- m * teacher + (1 - m) * student`` for each parameter,
with the momentum ``m`` a schedule of the fractional epoch (DINO / SDPN: cosine from 0.996 to 1).
Buffers (BatchNorm statistics) are the teacher's own, as in the reference implementations. The
teacher is part of the objective, so its weights are checkpointed with it.
"""

from __future__ import annotations

from typing import Mapping, Optional

import torch

from wespeaker_like.registry import SCHEDULERS


class EmaTeacher:
    """``teacher`` follows ``student`` (same architecture); ``momentum`` is the value at progress 0 and
    ``schedule`` (a scheduler spec, e.g. ``{name: warmup_cosine, final_lr: 1.0}``) how it moves;
    without a schedule it stays constant."""

    def __init__(self, teacher: torch.nn.Module, student: torch.nn.Module, momentum: float = 0.996,
                 schedule: Optional[Mapping] = None):
        self.teacher, self.student = teacher, student
        self.momentum, self.schedule_spec = float(momentum), dict(schedule or {"name": "constant"})
        self.teacher_params = list(teacher.parameters())
        self.student_params = list(student.parameters())
        if [p.shape for p in self.teacher_params] != [p.shape for p in self.student_params]:
            raise ValueError("an EMA teacher needs the same parameter shapes as its student")
        for p in self.teacher_params:
            p.requires_grad_(False)
        self._schedule = None

    def start(self, total_epochs: float) -> None:
        self._schedule = SCHEDULERS.build(self.schedule_spec, base_lr=self.momentum, total_epochs=total_epochs)

    def momentum_at(self, progress: float) -> float:
        return self._schedule(progress)

    @torch.no_grad()
    def update(self, progress: float) -> float:
        """One EMA step at ``progress``; returns the momentum used."""
        m = self.momentum_at(progress)
        for t, s in zip(self.teacher_params, self.student_params):
            t.mul_(m).add_(s.detach(), alpha=1.0 - m)
        return m
