"""Verification metrics from trial scores: DET/ROC points, EER, minDCF.

Decision rule used throughout: a trial is **accepted** when ``score >= threshold``.

* ``P_miss(t)`` = fraction of target trials with ``score < t`` (falsely rejected),
* ``P_fa(t)``   = fraction of non-target trials with ``score >= t`` (falsely accepted).

The operating points are evaluated at every distinct score and at ``+inf``; that is every
distinct decision a threshold can make (tied scores are always accepted or rejected together).
The first point (lowest threshold) accepts everything (P_miss 0, P_fa 1), the last rejects
everything (P_miss 1, P_fa 0).
"""

from __future__ import annotations

from typing import Dict, Iterable, NamedTuple, Sequence

import numpy as np


class DetCurve(NamedTuple):
    """Operating points, ordered by increasing threshold; all arrays have shape [K]."""

    p_miss: np.ndarray      # non-decreasing, from 0 to 1
    p_fa: np.ndarray        # non-increasing, from 1 to 0
    thresholds: np.ndarray  # increasing; the last one is +inf


class DcfResult(NamedTuple):
    min_dcf: float      # normalised minimum detection cost
    threshold: float    # accept when score >= threshold attains it
    p_target: float


def _validate(scores, labels) -> tuple[np.ndarray, np.ndarray, int]:
    """``scores`` [N] as float64, boolean ``labels`` [N] and the number of target trials."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    labels = np.asarray(labels).reshape(-1)
    if scores.shape != labels.shape:
        raise ValueError(f"scores ({scores.size}) and labels ({labels.size}) differ in length")
    if labels.dtype != bool:
        if not np.isin(labels, (0, 1)).all():
            raise ValueError("labels must be boolean (True = target trial)")
        labels = labels.astype(bool)
    if not np.isfinite(scores).all():
        raise ValueError("scores contain NaN or infinity")
    num_target = int(np.count_nonzero(labels))
    if num_target == 0 or num_target == labels.size:
        raise ValueError(f"need both target and non-target trials, got {num_target} target "
                         f"and {labels.size - num_target} non-target")
    return scores, labels, num_target


def split_scores(scores, labels) -> tuple[np.ndarray, np.ndarray]:
    """Validate and split ``scores`` [N] by boolean ``labels`` [N] into (target, non-target)."""
    scores, labels, _ = _validate(scores, labels)
    return scores[labels], scores[~labels]


def det_curve(scores: Sequence[float], labels: Sequence[bool]) -> DetCurve:
    """All operating points of a score set.

    ``scores`` [N] float, ``labels`` [N] bool (True = target). Returns a ``DetCurve`` of K points,
    K = number of distinct scores + 1. One value sort of all scores gives the thresholds and how
    many scores each rejects; a sort of the smaller class and a histogram of where its scores fall
    split that count between the classes (no argsort, no per-threshold binary search).
    """
    scores, labels, num_target = _validate(scores, labels)
    num_nontarget = scores.size - num_target
    small_is_target = num_target <= num_nontarget
    small = np.sort(scores[labels] if small_is_target else scores[~labels])
    merged = np.sort(scores)
    # merged[i] starts a run of equal scores: exactly i scores lie strictly below it, i.e. are
    # rejected when the threshold is merged[i]. In-place operations below: on 1e7 scores every
    # temporary array costs about as much as the arithmetic.
    starts_run = np.empty(merged.size, dtype=bool)
    starts_run[0] = True
    np.not_equal(merged[1:], merged[:-1], out=starts_run[1:])
    rejected = np.flatnonzero(starts_run)                  # [K - 1]
    thresholds = np.empty(rejected.size + 1)
    thresholds[:-1] = merged[rejected]
    thresholds[-1] = np.inf
    # Run index of each score of the smaller class; per-run counts, summed: how many of the
    # class lie strictly below each threshold.
    per_run = np.bincount(np.searchsorted(thresholds[:-1], small, side="left"), minlength=rejected.size)
    small_rejected = np.empty(thresholds.size, dtype=np.int64)
    small_rejected[0] = 0
    np.cumsum(per_run, out=small_rejected[1:])
    large_rejected = np.empty_like(small_rejected)
    np.subtract(rejected, small_rejected[:-1], out=large_rejected[:-1])
    large_rejected[-1] = scores.size - small.size
    target_rejected, nontarget_rejected = ((small_rejected, large_rejected) if small_is_target
                                           else (large_rejected, small_rejected))
    p_miss = np.divide(target_rejected, num_target)
    p_fa = np.divide(nontarget_rejected, num_nontarget)
    np.subtract(1.0, p_fa, out=p_fa)
    return DetCurve(p_miss, p_fa, thresholds)


def eer_from_curve(curve: DetCurve) -> tuple[float, float]:
    """``compute_eer`` on the operating points of ``det_curve``."""
    diff = curve.p_miss - curve.p_fa          # -1 at the first point, +1 at the last
    i = int(np.argmax(diff >= 0))             # first index with P_miss >= P_fa (i >= 1)
    d0, d1 = diff[i - 1], diff[i]
    alpha = d0 / (d0 - d1)                    # in (0, 1]: fraction of the way from i-1 to i
    eer = curve.p_miss[i - 1] + alpha * (curve.p_miss[i] - curve.p_miss[i - 1])
    t0, t1 = curve.thresholds[i - 1], curve.thresholds[i]
    threshold = t0 + alpha * (t1 - t0) if np.isfinite(t1) else t0
    return float(eer), float(threshold)


def compute_eer(scores: Sequence[float], labels: Sequence[bool]) -> tuple[float, float]:
    """Equal error rate as a fraction in [0, 1], and the threshold where it is reached.

    Convention: walking the operating points by increasing threshold, find the first point with
    ``P_miss >= P_fa`` and the point before it (``P_miss < P_fa``). The EER is where the straight
    segment joining these two points in the (P_fa, P_miss) plane crosses ``P_miss == P_fa``; the
    threshold is interpolated by the same fraction (if the upper threshold is +inf, the lower
    one is returned). When an operating point has ``P_miss == P_fa`` exactly, that value is the
    EER. Perfectly separated scores give 0, perfectly reversed ones give 1.
    """
    return eer_from_curve(det_curve(scores, labels))


def min_dcf_from_curve(curve: DetCurve, p_target: float, c_miss: float = 1.0,
                       c_fa: float = 1.0) -> DcfResult:
    """``compute_min_dcf`` on the operating points of ``det_curve``."""
    if not 0.0 < p_target < 1.0:
        raise ValueError(f"p_target must be in (0, 1), got {p_target}")
    # c_miss * P_miss * p_target + c_fa * P_fa * (1 - p_target), in place, same operation order
    dcf = np.multiply(curve.p_miss, c_miss)
    dcf *= p_target
    false_alarm_cost = np.multiply(curve.p_fa, c_fa)
    false_alarm_cost *= 1.0 - p_target
    dcf += false_alarm_cost
    best = int(np.argmin(dcf))
    norm = min(c_miss * p_target, c_fa * (1.0 - p_target))
    return DcfResult(float(dcf[best] / norm), float(curve.thresholds[best]), float(p_target))


def compute_min_dcf(scores: Sequence[float], labels: Sequence[bool], p_target: float,
                    c_miss: float = 1.0, c_fa: float = 1.0) -> DcfResult:
    """Normalised minimum detection cost, as NIST SRE and Kaldi's ``compute_min_dcf.py``.

    ``DCF(t) = C_miss * P_miss(t) * P_target + C_fa * P_fa(t) * (1 - P_target)``, minimised over
    all operating points and divided by ``min(C_miss * P_target, C_fa * (1 - P_target))`` (the
    cost of the better of "accept all" / "reject all"), so a useless system scores 1.
    """
    return min_dcf_from_curve(det_curve(scores, labels), p_target, c_miss, c_fa)


def compute_metrics(scores: Sequence[float], labels: Sequence[bool],
                    p_targets: Iterable[float] = (0.01, 0.05)) -> Dict[str, object]:
    """EER (percent) and minDCF at each ``p_target``, as a JSON-ready dict; one ``det_curve``.

    Keys: ``num_trials``, ``num_target``, ``num_nontarget``, ``eer_percent``, ``eer_threshold``,
    ``min_dcf`` ({"0.01": value, ...}), ``min_dcf_threshold`` (same keys).
    """
    curve = det_curve(scores, labels)
    labels = np.asarray(labels, dtype=bool)
    eer, eer_threshold = eer_from_curve(curve)
    out: Dict[str, object] = {
        "num_trials": int(labels.size),
        "num_target": int(labels.sum()),
        "num_nontarget": int((~labels).sum()),
        "eer_percent": 100.0 * eer,
        "eer_threshold": eer_threshold,
        "min_dcf": {},
        "min_dcf_threshold": {},
    }
    for p in p_targets:
        result = min_dcf_from_curve(curve, p)
        key = format_p_target(p)
        out["min_dcf"][key] = result.min_dcf
        out["min_dcf_threshold"][key] = result.threshold
    return out


def format_p_target(p_target: float) -> str:
    """``0.01 -> "0.01"``, ``0.050 -> "0.05"``: the key used in results files and summaries."""
    return f"{p_target:g}"


def summary_line(metrics: Dict[str, object]) -> str:
    """``EER 8.31 %  minDCF(0.01) 0.512  minDCF(0.05) 0.377`` from ``compute_metrics`` output."""
    parts = [f"EER {metrics['eer_percent']:.2f} %"]
    parts += [f"minDCF({key}) {value:.3f}" for key, value in metrics["min_dcf"].items()]
    return "  ".join(parts)


def compute_cllr(llrs: Sequence[float], labels: Sequence[bool]) -> float:
    """Log-likelihood-ratio cost in bits (Brummer): 0 for perfect LLRs, 1 for LLRs that are all 0.

    ``Cllr = 1/(2 ln 2) * (mean_target log(1 + e^-llr) + mean_nontarget log(1 + e^llr))``.
    """
    target, nontarget = split_scores(llrs, labels)
    return float((np.logaddexp(0.0, -target).mean() + np.logaddexp(0.0, nontarget).mean()) / (2 * np.log(2)))


def bayes_threshold(p_target: float, c_miss: float = 1.0, c_fa: float = 1.0) -> float:
    """LLR threshold of the Bayes decision: accept when ``llr >= log(C_fa (1-P) / (C_miss P))``."""
    if not 0.0 < p_target < 1.0:
        raise ValueError(f"p_target must be in (0, 1), got {p_target}")
    return float(np.log(c_fa * (1.0 - p_target) / (c_miss * p_target)))


def compute_act_dcf(llrs: Sequence[float], labels: Sequence[bool], p_target: float,
                    c_miss: float = 1.0, c_fa: float = 1.0) -> float:
    """Normalised actual detection cost of calibrated LLRs at the Bayes threshold (as minDCF's norm)."""
    target, nontarget = split_scores(llrs, labels)
    threshold = bayes_threshold(p_target, c_miss, c_fa)
    p_miss = float((target < threshold).mean())
    p_fa = float((nontarget >= threshold).mean())
    dcf = c_miss * p_miss * p_target + c_fa * p_fa * (1.0 - p_target)
    return dcf / min(c_miss * p_target, c_fa * (1.0 - p_target))
