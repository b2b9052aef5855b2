"""Linear score calibration (prior-weighted logistic regression), Cllr and actual DCF."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.optimize import minimize

from wespeaker_like.errors import InputError
from wespeaker_like.scoring.calibration import LinearCalibration, read_calibration, write_calibration
from wespeaker_like.scoring.metrics import bayes_threshold, compute_act_dcf, compute_cllr, compute_min_dcf


def synthetic_scores(seed, num_target=3000, num_nontarget=30000):
    """Cosine-like scores: targets N(0.6, 0.12), non-targets N(0.1, 0.1) (not linear LLRs)."""
    rng = np.random.default_rng(seed)
    scores = np.concatenate([rng.normal(0.6, 0.12, num_target), rng.normal(0.1, 0.1, num_nontarget)])
    labels = np.concatenate([np.ones(num_target, bool), np.zeros(num_nontarget, bool)])
    return scores, labels


def direct_objective(params, scores, labels, prior, ridge):
    """The BOSARIS prior-weighted cross-entropy written out term by term."""
    a, b = params
    logit = math.log(prior / (1 - prior))
    llr = a * scores + b + logit
    target_cost = np.mean(np.logaddexp(0, -llr[labels]))      # log(1 + e^-llr), overflow-safe
    nontarget_cost = np.mean(np.logaddexp(0, llr[~labels]))
    return prior * target_cost + (1 - prior) * nontarget_cost + ridge / 2 * (a * a + b * b)


@pytest.mark.parametrize("prior", [0.5, 0.01])
def test_fit_matches_direct_optimisation(prior):
    scores, labels = synthetic_scores(0, 600, 3000)
    fitted = LinearCalibration.fit(scores, labels, prior=prior)
    direct = minimize(direct_objective, x0=[1.0, 0.0], args=(scores, labels, prior, 1e-6),
                      method="Nelder-Mead",  # derivative-free: independent of the Newton gradients
                      options={"xatol": 1e-10, "fatol": 1e-16, "maxiter": 20000, "adaptive": True})
    assert direct.success
    np.testing.assert_allclose([fitted.a, fitted.b], direct.x, rtol=1e-6)
    assert direct_objective([fitted.a, fitted.b], scores, labels, prior, 1e-6) <= direct.fun + 1e-12
    assert fitted.prior == prior


def test_recovers_the_true_llr_of_equal_variance_gaussian_scores():
    # Targets N(2, 1), non-targets N(0, 1): the true LLR is 2 s - 2 for any training prior.
    rng = np.random.default_rng(1)
    scores = np.concatenate([rng.normal(2, 1, 20000), rng.normal(0, 1, 20000)])
    labels = np.arange(40000) < 20000
    for prior in (0.5, 0.1):
        fitted = LinearCalibration.fit(scores, labels, prior=prior)
        # 40,000 trials: the standard error of a and b is about 0.02; allow five of them.
        assert fitted.a == pytest.approx(2.0, abs=0.1) and fitted.b == pytest.approx(-2.0, abs=0.1)


def test_calibration_lowers_cllr_and_actual_dcf_approaches_min_dcf():
    scores, labels = synthetic_scores(2)
    calibration = LinearCalibration.fit(scores, labels, prior=0.05)
    evaluation, eval_labels = synthetic_scores(3)  # a fresh draw of the same system
    raw_cllr = compute_cllr(evaluation, eval_labels)
    calibrated_cllr = compute_cllr(calibration(evaluation), eval_labels)
    assert calibrated_cllr < 0.5 * raw_cllr and calibrated_cllr < 1.0
    min_dcf = compute_min_dcf(evaluation, eval_labels, 0.05).min_dcf
    act_dcf = compute_act_dcf(calibration(evaluation), eval_labels, 0.05)
    assert min_dcf <= act_dcf < min_dcf + 0.05
    assert compute_act_dcf(evaluation, eval_labels, 0.05) > act_dcf + 0.2  # raw scores as LLRs


def test_perfectly_separated_scores_give_a_finite_steep_calibration():
    scores = np.array([0.9, 0.8, 0.7, 0.2, 0.1, 0.0, -0.1])
    labels = np.array([True, True, True, False, False, False, False])
    calibration = LinearCalibration.fit(scores, labels)
    assert math.isfinite(calibration.a) and calibration.a > 20
    llr = calibration(scores)
    assert (llr[labels] > 0).all() and (llr[~labels] < 0).all()


def test_cllr_and_act_dcf_hand_values():
    labels = np.array([True, False])
    assert compute_cllr([0.0, 0.0], labels) == pytest.approx(1.0)
    assert compute_cllr([50.0, -50.0], labels) == pytest.approx(0.0, abs=1e-20)
    # llr log(3) for the target: log2(1 + 1/3) / 2; llr log(3) for the non-target: log2(4) / 2.
    assert compute_cllr([math.log(3), math.log(3)], labels) == pytest.approx((math.log2(4 / 3) + 2) / 2)
    assert bayes_threshold(0.01) == pytest.approx(math.log(99))
    # P_target 0.5: threshold 0. The target at -1 is missed, the non-target at 0 accepted: DCF 0.5+0.5, /0.5.
    assert compute_act_dcf([-1.0, 0.0], labels, 0.5) == pytest.approx(2.0)
    assert compute_act_dcf([1.0, -1.0], labels, 0.5) == 0.0


def test_calibration_file_round_trip_and_errors(tmp_path):
    path = tmp_path / "exp" / "calibration.json"
    calibration = LinearCalibration(a=8.0, b=-3.0, prior=0.01)
    record = write_calibration(path, calibration, 0.01, "data/dev/trials", backend="cosine")
    stored = json.loads(path.read_text())
    assert stored == record == read_calibration(path)
    assert stored["threshold"] == pytest.approx(math.log(99))
    assert stored["score_threshold"] == pytest.approx((math.log(99) + 3.0) / 8.0)
    assert (stored["trials"], stored["backend"], stored["p_target"]) == ("data/dev/trials", "cosine", 0.01)
    assert [p.name for p in path.parent.iterdir()] == ["calibration.json"]
    path.write_text('{"a": 1.0, "b": 0.0}\n')
    with pytest.raises(InputError, match="calibration.json: expected a JSON object with keys a, b, threshold"):
        read_calibration(path)
    path.write_text('{"a": 1.0,\n "b": }\n')
    with pytest.raises(InputError, match=r"calibration.json:2: not valid JSON"):
        read_calibration(path)
