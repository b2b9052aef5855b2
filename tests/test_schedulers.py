"""Learning-rate schedules and the margin ramp, checked at their defining points."""

import math

import pytest

from wespeaker_like.training.schedulers import SGDR, StepDecay, WarmupCosine, WarmupExponential, ramp


def test_warmup_exponential_endpoints_and_midpoint():
    s = WarmupExponential(0.1, 10, final_lr=1e-3, warmup_epochs=2)
    assert s(0.0) == pytest.approx(0.0, abs=1e-9)
    assert s(1.0) == pytest.approx(0.5 * 0.1 * 0.01 ** 0.1)  # half-way through warm-up
    assert s(5.0) == pytest.approx(0.1 * 0.01 ** 0.5)
    assert s(10.0) == pytest.approx(1e-3)


def test_warmup_cosine():
    s = WarmupCosine(0.4, 10, final_lr=0.0, warmup_epochs=2)
    assert s(1.0) == pytest.approx(0.2)
    assert s(2.0) == pytest.approx(0.4)
    assert s(6.0) == pytest.approx(0.2)
    assert s(10.0) == pytest.approx(0.0, abs=1e-12)


def test_sgdr_restarts_with_decayed_peak():
    s = SGDR(1e-3, 50, cycle_epochs=25, min_lr=1e-8, gamma=0.8, warmup_epochs=1)
    assert s(1.0) == pytest.approx(1e-3)
    assert s(13.0) == pytest.approx(1e-8 + 0.5 * (1e-3 - 1e-8))
    assert s(26.0) == pytest.approx(0.8e-3)
    assert s(24.999) < 1e-6


def test_step_decay():
    s = StepDecay(1e-3, 40, step_epochs=10, gamma=0.5)
    assert [s(e) for e in (0, 9.9, 10, 25)] == pytest.approx([1e-3, 1e-3, 5e-4, 2.5e-4])


def test_ramp():
    assert ramp(0.5, 1, 3, 0.0, 0.2, "linear") == 0.0
    assert ramp(2.0, 1, 3, 0.0, 0.2, "linear") == pytest.approx(0.1)
    assert ramp(9.0, 1, 3, 0.0, 0.2) == pytest.approx(0.2)
    exp_mid = 0.2 * (1 - math.exp(-2.5)) / (1 - math.exp(-5))
    assert ramp(2.0, 1, 3, 0.0, 0.2, "exp") == pytest.approx(exp_mid)
