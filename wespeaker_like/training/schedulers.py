"""Learning-rate and value schedules as pure functions of training progress.

``progress`` is the fractional epoch (epoch + step_in_epoch / steps_per_epoch), so schedules are
stepped per iteration and a resumed run recomputes the same value from the step counter: there is
no scheduler state to save.
"""

from __future__ import annotations

import math

from wespeaker_like.registry import SCHEDULERS


class Schedule:
    """``lr(progress) -> learning rate`` for one optimiser whose peak rate is ``base_lr``."""

    def __init__(self, base_lr: float, total_epochs: float):
        self.base_lr, self.total_epochs = base_lr, total_epochs

    def __call__(self, progress: float) -> float:
        raise NotImplementedError


def _warmup(progress: float, warmup_epochs: float) -> float:
    return min(1.0, (progress + 1e-9) / warmup_epochs) if warmup_epochs > 0 else 1.0


@SCHEDULERS.register("constant")
class Constant(Schedule):
    def __call__(self, progress):
        return self.base_lr


@SCHEDULERS.register("warmup_exponential")
class WarmupExponential(Schedule):
    """Linear warm-up to ``base_lr`` then exponential decay reaching ``final_lr`` at the last step
    (WeSpeaker's ExponentialDecrease)."""

    def __init__(self, base_lr, total_epochs, final_lr: float = 5e-5, warmup_epochs: float = 0.0):
        super().__init__(base_lr, total_epochs)
        self.final_lr, self.warmup_epochs = final_lr, warmup_epochs

    def __call__(self, progress):
        ratio = self.final_lr / self.base_lr
        return self.base_lr * _warmup(progress, self.warmup_epochs) * ratio ** (progress / self.total_epochs)


@SCHEDULERS.register("warmup_cosine")
class WarmupCosine(Schedule):
    """Linear warm-up, then half-cosine from ``base_lr`` to ``final_lr`` (3D-Speaker, SDPN)."""

    def __init__(self, base_lr, total_epochs, final_lr: float = 0.0, warmup_epochs: float = 0.0):
        super().__init__(base_lr, total_epochs)
        self.final_lr, self.warmup_epochs = final_lr, warmup_epochs

    def __call__(self, progress):
        if progress < self.warmup_epochs:
            return self.base_lr * _warmup(progress, self.warmup_epochs)
        span = max(self.total_epochs - self.warmup_epochs, 1e-9)
        t = min(1.0, (progress - self.warmup_epochs) / span)
        return self.final_lr + 0.5 * (self.base_lr - self.final_lr) * (1 + math.cos(math.pi * t))


@SCHEDULERS.register("sgdr")
class SGDR(Schedule):
    """Cosine annealing with warm restarts: per cycle of ``cycle_epochs`` a warm-up from ``min_lr``
    to the cycle's peak, then cosine to ``min_lr``; the peak is multiplied by ``gamma`` each cycle."""

    def __init__(self, base_lr, total_epochs, cycle_epochs: float = 25, min_lr: float = 1e-8,
                 gamma: float = 0.8, warmup_epochs: float = 1.0):
        super().__init__(base_lr, total_epochs)
        self.cycle, self.min_lr, self.gamma, self.warmup_epochs = cycle_epochs, min_lr, gamma, warmup_epochs

    def __call__(self, progress):
        cycle = int(progress // self.cycle)
        t = progress - cycle * self.cycle
        peak = self.base_lr * self.gamma ** cycle
        if t < self.warmup_epochs:
            return self.min_lr + (peak - self.min_lr) * t / self.warmup_epochs
        frac = (t - self.warmup_epochs) / max(self.cycle - self.warmup_epochs, 1e-9)
        return self.min_lr + 0.5 * (peak - self.min_lr) * (1 + math.cos(math.pi * frac))


@SCHEDULERS.register("step")
class StepDecay(Schedule):
    """``base_lr * gamma ** floor(progress / step_epochs)``."""

    def __init__(self, base_lr, total_epochs, step_epochs: float = 10, gamma: float = 0.5):
        super().__init__(base_lr, total_epochs)
        self.step_epochs, self.gamma = step_epochs, gamma

    def __call__(self, progress):
        return self.base_lr * self.gamma ** math.floor(progress / self.step_epochs)


def ramp(progress: float, start: float, end: float, initial: float, final: float, kind: str = "exp") -> float:
    """Value moving from ``initial`` (before ``start``) to ``final`` (after ``end``), e.g. an AAM margin.

    ``kind='exp'`` follows WeSpeaker's margin scheduler (fast at first, then saturating);
    ``'linear'`` is a straight line.
    """
    if progress <= start:
        return initial
    if progress >= end:
        return final
    t = (progress - start) / (end - start)
    if kind == "exp":
        t = 1.0 - math.exp(-5.0 * t) if t < 1 else 1.0
        t /= 1.0 - math.exp(-5.0)
    elif kind != "linear":
        raise ValueError(f"ramp kind must be 'exp' or 'linear', got '{kind}'")
    return initial + (final - initial) * min(t, 1.0)
