"""Linear score calibration: ``llr = a * score + b`` by prior-weighted logistic regression.

Fitted on a development trial list's scores (BOSARIS ``train_linear_calibration``): minimise

    P/N_t * sum_target log(1 + e^-(a s + b + logit P)) + (1-P)/N_n * sum_nontarget log(1 + e^(a s + b + logit P))
    + lambda/2 * (a^2 + b^2)

where ``P`` is the training prior; ``a s + b`` is then a log-likelihood ratio. The tiny ridge
``lambda`` only matters when the development scores separate the classes perfectly (the
unpenalised optimum is then infinitely steep). The stored decision threshold is the Bayes
threshold, in LLR units, of an application prior ``p_target`` (``metrics.bayes_threshold``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Sequence

import numpy as np

from wespeaker_like.errors import InputError
from wespeaker_like.fileio import atomic_write
from wespeaker_like.scoring.metrics import bayes_threshold, split_scores

CALIBRATION_KEYS = ("a", "b", "threshold", "trials")


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -z))


def calibration_objective(params: np.ndarray, target: np.ndarray, nontarget: np.ndarray,
                          prior: float, ridge: float) -> tuple[float, np.ndarray, np.ndarray]:
    """Objective (module docstring), its gradient [2] and Hessian [2, 2] at ``params`` = (a, b)."""
    offset = math.log(prior / (1.0 - prior))
    a, b = params
    z_t = a * target + b + offset
    z_n = a * nontarget + b + offset
    value = (prior * np.logaddexp(0.0, -z_t).mean() + (1 - prior) * np.logaddexp(0.0, z_n).mean()
             + 0.5 * ridge * (a * a + b * b))
    grad = ridge * np.asarray(params, dtype=np.float64)
    hess = ridge * np.eye(2)
    for scores, weight, sign in ((target, prior, -1.0), (nontarget, 1 - prior, 1.0)):
        z = a * scores + b + offset
        slope = _sigmoid(sign * z)                           # d softplus(sign z) / d(sign z)
        curvature = slope * _sigmoid(-sign * z)
        features = np.stack([scores, np.ones_like(scores)])  # [2, n]
        grad += weight * sign * features @ slope / scores.size
        hess += weight * (features * curvature) @ features.T / scores.size
    return float(value), grad, hess


@dataclass
class LinearCalibration:
    """``llr = a * score + b``, fitted with training prior ``prior``."""

    a: float
    b: float
    prior: float = 0.5

    @classmethod
    def fit(cls, scores: Sequence[float], labels: Sequence[bool], prior: float = 0.5,
            ridge: float = 1e-6, max_iterations: int = 100) -> "LinearCalibration":
        """Damped Newton on the convex objective; scores [N], boolean labels [N]."""
        if not 0.0 < prior < 1.0:
            raise ValueError(f"calibration prior must be in (0, 1), got {prior}")
        target, nontarget = split_scores(scores, labels)
        params = np.zeros(2)
        value, grad, hess = calibration_objective(params, target, nontarget, prior, ridge)
        for _ in range(max_iterations):
            step = np.linalg.solve(hess, grad)
            size = 1.0
            while True:  # backtracking: Newton steps can overshoot far from the optimum
                candidate = params - size * step
                new_value, new_grad, new_hess = calibration_objective(candidate, target, nontarget, prior, ridge)
                if new_value <= value - 1e-4 * size * grad @ step or size < 1e-10:
                    break
                size /= 2
            converged = abs(value - new_value) <= 1e-15 * max(1.0, abs(value))
            params, value, grad, hess = candidate, new_value, new_grad, new_hess
            if converged or np.abs(size * step).max() < 1e-12:
                break
        return cls(float(params[0]), float(params[1]), prior)

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated LLRs, same shape as ``scores``."""
        return self.a * np.asarray(scores, dtype=np.float64) + self.b

    def score_threshold(self, llr_threshold: float) -> float:
        """The raw score at which the calibrated LLR equals ``llr_threshold``."""
        return (llr_threshold - self.b) / self.a


def write_calibration(path: str | Path, calibration: LinearCalibration, p_target: float,
                      trials: str | Path, **extra: Any) -> Dict[str, Any]:
    """Write and return the calibration JSON, atomically.

    Keys: ``a``, ``b`` (llr = a * score + b), ``threshold`` (Bayes threshold in LLR units for
    ``p_target``), ``trials`` (the development list), ``p_target``, ``prior`` (training prior),
    ``score_threshold`` (the same decision on the raw score), then ``extra``.
    """
    threshold = bayes_threshold(p_target)
    record: Dict[str, Any] = {
        "a": calibration.a, "b": calibration.b, "threshold": threshold, "trials": str(trials),
        "p_target": p_target, "prior": calibration.prior,
        "score_threshold": calibration.score_threshold(threshold) if calibration.a != 0 else None,
    }
    record.update(extra)
    with atomic_write(path) as handle:
        json.dump(record, handle, indent=2)
        handle.write("\n")
    return record


def read_calibration(path: str | Path) -> Dict[str, Any]:
    """The JSON of ``write_calibration``; InputError naming the file when a key is missing or bad."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "calibration file not found")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise InputError(path, f"not valid JSON: {err.msg}", err.lineno) from None
    if not isinstance(record, dict) or any(key not in record for key in CALIBRATION_KEYS):
        raise InputError(path, f"expected a JSON object with keys {', '.join(CALIBRATION_KEYS)}")
    for key in ("a", "b", "threshold"):
        if not isinstance(record[key], (int, float)) or not math.isfinite(record[key]):
            raise InputError(path, f"'{key}' must be a finite number, got {record[key]!r}")
    return record
