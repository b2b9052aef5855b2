"""Stage 6: metrics (EER, minDCF, DET), cosine scoring, mean norm, AS-norm, score CLI."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import kaldiio
import numpy as np
import pytest

from wespeaker_like.data.trials import Trial, write_trials
from wespeaker_like.errors import InputError
from wespeaker_like.scoring.cosine import EmbeddingTable, load_embeddings, mean_vector, score_trials
from wespeaker_like.scoring.metrics import compute_eer, compute_metrics, compute_min_dcf, det_curve
from wespeaker_like.scoring.scores import align_scores, read_scores, write_scores

REPO = Path(__file__).resolve().parents[1]

# Hand-worked case. Sorted: 0.1n 0.2n 0.3t 0.4n 0.6t 0.7n 0.8t (accept when score >= t).
HAND_TARGET = [0.8, 0.6, 0.3]
HAND_NONTARGET = [0.7, 0.4, 0.2, 0.1]


def hand_case():
    scores = np.array(HAND_TARGET + HAND_NONTARGET)
    labels = np.array([True] * 3 + [False] * 4)
    return scores, labels


# ----------------------------------------------------------------------------- metrics

def test_det_curve_hand_case():
    curve = det_curve(*hand_case())
    np.testing.assert_allclose(curve.thresholds, [0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, np.inf])
    np.testing.assert_allclose(curve.p_miss, [0, 0, 0, 1 / 3, 1 / 3, 2 / 3, 2 / 3, 1])
    np.testing.assert_allclose(curve.p_fa, [1, 3 / 4, 2 / 4, 2 / 4, 1 / 4, 1 / 4, 0, 0])


def test_eer_hand_case():
    # Bracket: t=0.4 (P_miss 1/3, P_fa 1/2) and t=0.6 (1/3, 1/4). P_miss - P_fa goes -1/6 -> +1/12,
    # so the crossing is 2/3 of the way: P_fa = 1/2 - 2/3 * 1/4 = 1/3 = P_miss; t = 0.4 + 2/3 * 0.2.
    eer, threshold = compute_eer(*hand_case())
    assert eer == pytest.approx(1 / 3)
    assert threshold == pytest.approx(0.4 + 0.2 * 2 / 3)


def test_eer_with_tied_target_and_nontarget():
    # Thresholds 0, 1, inf -> P_miss 0, 0, 1 and P_fa 1, 1/2, 0; crossing 1/3 of the way from t=1.
    eer, _ = compute_eer([1.0, 1.0, 1.0, 0.0], [True, True, False, False])
    assert eer == pytest.approx(1 / 3)


def test_min_dcf_hand_case():
    scores, labels = hand_case()
    # p_target 0.25: normaliser 0.25, DCF/norm = P_miss + 3 P_fa; best at t=0.8: 2/3 + 0.
    result = compute_min_dcf(scores, labels, 0.25)
    assert result.min_dcf == pytest.approx(2 / 3)
    assert result.threshold == pytest.approx(0.8)
    # p_target 0.5: DCF/norm = P_miss + P_fa; best at t=0.3: 0 + 1/2.
    result = compute_min_dcf(scores, labels, 0.5)
    assert result.min_dcf == pytest.approx(0.5)
    assert result.threshold == pytest.approx(0.3)


def brute_force_min_dcf(scores, labels, p_target, c_miss=1.0, c_fa=1.0):
    """Direct formula, one threshold at a time (every score, plus 'reject all')."""
    target = [s for s, l in zip(scores, labels) if l]
    nontarget = [s for s, l in zip(scores, labels) if not l]
    best = float("inf")
    for threshold in sorted(set(scores)) + [float("inf")]:
        p_miss = sum(s < threshold for s in target) / len(target)
        p_fa = sum(s >= threshold for s in nontarget) / len(nontarget)
        best = min(best, c_miss * p_miss * p_target + c_fa * p_fa * (1 - p_target))
    return best / min(c_miss * p_target, c_fa * (1 - p_target))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_min_dcf_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    labels = rng.random(300) < 0.3
    scores = np.round(rng.normal(size=300) + 1.2 * labels, 1)  # rounding makes ties
    for p_target in (0.01, 0.05, 0.3):
        expected = brute_force_min_dcf(scores.tolist(), labels.tolist(), p_target)
        assert compute_min_dcf(scores, labels, p_target).min_dcf == pytest.approx(expected)
    # unequal costs too
    expected = brute_force_min_dcf(scores.tolist(), labels.tolist(), 0.1, c_miss=10, c_fa=1)
    assert compute_min_dcf(scores, labels, 0.1, c_miss=10, c_fa=1).min_dcf == pytest.approx(expected)


def test_det_curve_matches_sklearn_roc():
    from sklearn.metrics import roc_curve

    rng = np.random.default_rng(3)
    labels = rng.random(500) < 0.4
    scores = np.round(rng.normal(size=500) + labels, 2)
    fpr, tpr, thresholds = roc_curve(labels, scores, drop_intermediate=False)
    curve = det_curve(scores, labels)
    # sklearn goes from high to low threshold and starts at +inf; ours is the reverse.
    np.testing.assert_allclose(curve.p_fa[::-1], fpr)
    np.testing.assert_allclose(curve.p_miss[::-1], 1 - tpr)
    eer, _ = compute_eer(scores, labels)
    fnr = 1 - tpr
    # The EER lies between the bracketing operating points' error rates.
    i = np.argmax(fnr <= fpr)
    assert min(fnr[i], fpr[i - 1]) - 1e-12 <= eer <= max(fnr[i - 1], fpr[i]) + 1e-12


def det_curve_by_unique(scores, labels):
    """The earlier det_curve: a binary search per class over np.unique of all scores."""
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=bool)
    target, nontarget = np.sort(scores[labels]), np.sort(scores[~labels])
    thresholds = np.append(np.unique(scores), np.inf)
    p_miss = np.searchsorted(target, thresholds, side="left") / target.size
    p_fa = 1.0 - np.searchsorted(nontarget, thresholds, side="left") / nontarget.size
    return p_miss, p_fa, thresholds


@pytest.mark.parametrize("seed,target_rate,decimals", [(4, 0.1, 1), (5, 0.9, 1), (6, 0.3, 6), (7, 0.5, 0)])
def test_one_pass_metrics_equal_the_unique_path(seed, target_rate, decimals):
    # Rounding makes ties within and across classes; target_rate 0.9 searches the other class.
    rng = np.random.default_rng(seed)
    labels = rng.random(2000) < target_rate
    scores = np.round(rng.normal(size=2000) + labels, decimals)
    p_miss, p_fa, thresholds = det_curve_by_unique(scores, labels)
    curve = det_curve(scores, labels)
    np.testing.assert_array_equal(curve.thresholds, thresholds)
    np.testing.assert_allclose(curve.p_miss, p_miss, rtol=0, atol=1e-12)
    np.testing.assert_allclose(curve.p_fa, p_fa, rtol=0, atol=1e-12)
    # EER and minDCF by their formulas on the earlier curve, against the one-curve compute_metrics.
    diff = p_miss - p_fa
    i = int(np.argmax(diff >= 0))
    alpha = diff[i - 1] / (diff[i - 1] - diff[i])
    eer = p_miss[i - 1] + alpha * (p_miss[i] - p_miss[i - 1])
    metrics = compute_metrics(scores, labels, (0.01, 0.05))
    assert abs(metrics["eer_percent"] - 100 * eer) <= 1e-12
    for p_target in (0.01, 0.05):
        dcf = p_miss * p_target + p_fa * (1 - p_target)
        best = int(np.argmin(dcf))
        key = f"{p_target:g}"
        assert abs(metrics["min_dcf"][key] - dcf[best] / min(p_target, 1 - p_target)) <= 1e-12
        assert metrics["min_dcf_threshold"][key] == thresholds[best]


def test_metrics_with_every_score_tied():
    # One distinct score: thresholds (0.5, inf), P_miss (0, 1), P_fa (1, 0): the EER is 1/2 at 0.5,
    # and minDCF(0.01) accepts nothing (cost 0.01 / 0.01 = 1) at +inf.
    scores, labels = [0.5] * 6, [True, False, False, True, False, False]
    curve = det_curve(scores, labels)
    np.testing.assert_array_equal(curve.thresholds, [0.5, np.inf])
    np.testing.assert_array_equal(curve.p_miss, [0.0, 1.0])
    np.testing.assert_array_equal(curve.p_fa, [1.0, 0.0])
    assert compute_eer(scores, labels) == (0.5, 0.5)
    result = compute_min_dcf(scores, labels, 0.01)
    assert result.min_dcf == 1.0 and result.threshold == np.inf


def test_perfect_and_reversed_scores():
    labels = np.array([True] * 5 + [False] * 7)
    separated = np.concatenate([np.linspace(1, 2, 5), np.linspace(-1, 0.5, 7)])
    assert compute_eer(separated, labels)[0] == 0.0
    assert compute_min_dcf(separated, labels, 0.01).min_dcf == 0.0
    assert compute_eer(-separated, labels)[0] == pytest.approx(1.0)
    assert compute_min_dcf(-separated, labels, 0.01).min_dcf == pytest.approx(1.0)
    metrics = compute_metrics(-separated, labels, [0.01, 0.05])
    assert metrics["eer_percent"] == pytest.approx(100.0)
    assert metrics["num_trials"] == 12 and metrics["num_target"] == 5
    assert set(metrics["min_dcf"]) == {"0.01", "0.05"}


def test_metrics_reject_bad_input():
    with pytest.raises(ValueError, match="both target and non-target"):
        compute_eer([0.1, 0.2], [True, True])
    with pytest.raises(ValueError, match="NaN"):
        compute_eer([0.1, float("nan")], [True, False])
    with pytest.raises(ValueError, match="p_target"):
        compute_min_dcf([0.1, 0.2], [True, False], 1.5)


# ----------------------------------------------------------------------------- cosine scoring

def write_embeddings(path_stem: Path, vectors: dict) -> Path:
    scp = path_stem.with_suffix(".scp")
    kaldiio.save_ark(str(path_stem.with_suffix(".ark")),
                     {k: np.asarray(v, dtype=np.float32) for k, v in vectors.items()}, scp=str(scp))
    return scp


@pytest.fixture
def small_set(tmp_path):
    """8 test utterances of 4 speakers (dim 6), 6 train vectors, and a trial list."""
    rng = np.random.default_rng(7)
    test = {f"spk{i // 2}-utt{i}": rng.normal(size=6) + 0.5 for i in range(8)}
    train = {f"tr{i}": rng.normal(size=6) + 0.5 for i in range(6)}
    keys = sorted(test)
    trials = [Trial(a, b, a.split("-")[0] == b.split("-")[0])
              for i, a in enumerate(keys) for b in keys[i + 1:]]
    trials_path = tmp_path / "trials"
    write_trials(trials_path, trials)
    return {
        "test": {k: v.astype(np.float32).astype(np.float64) for k, v in test.items()},
        "train": {k: v.astype(np.float32).astype(np.float64) for k, v in train.items()},
        "test_scp": write_embeddings(tmp_path / "test", test),
        "train_scp": write_embeddings(tmp_path / "train", train),
        "trials": trials,
        "trials_path": trials_path,
    }


def cos(a, b):
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_load_embeddings_round_trip(small_set):
    table = load_embeddings(small_set["test_scp"])
    assert table.keys == list(small_set["test"])
    assert table.matrix.shape == (8, 6)
    np.testing.assert_allclose(table.matrix[table.index["spk1-utt3"]], small_set["test"]["spk1-utt3"])


def test_cosine_scores_match_direct_formula(small_set):
    table = load_embeddings(small_set["test_scp"])
    scores = score_trials(small_set["trials"], table, batch_size=5)  # several batches
    emb = small_set["test"]
    expected = [cos(emb[t.enroll], emb[t.test]) for t in small_set["trials"]]
    np.testing.assert_allclose(scores, expected, rtol=1e-10)


def test_mean_normalisation(small_set):
    table = load_embeddings(small_set["test_scp"])
    mean = mean_vector(load_embeddings(small_set["train_scp"]))
    np.testing.assert_allclose(mean, np.mean(list(small_set["train"].values()), axis=0))
    scores = score_trials(small_set["trials"], table, mean=mean)
    emb = small_set["test"]
    expected = [cos(emb[t.enroll] - mean, emb[t.test] - mean) for t in small_set["trials"]]
    np.testing.assert_allclose(scores, expected, rtol=1e-10)
    assert not np.allclose(scores, score_trials(small_set["trials"], table))


@pytest.mark.parametrize("top_n", [3, 100])
def test_asnorm_matches_direct_computation(small_set, top_n):
    table = load_embeddings(small_set["test_scp"])
    cohort = load_embeddings(small_set["train_scp"])
    mean = mean_vector(cohort)
    scores = score_trials(small_set["trials"], table, mean=mean, cohort=cohort, top_n=top_n)

    emb, cohort_vecs = small_set["test"], list(small_set["train"].values())

    def stats(x):
        ranked = sorted((cos(x - mean, c - mean) for c in cohort_vecs), reverse=True)[:top_n]
        return np.mean(ranked), np.std(ranked)

    expected = []
    for t in small_set["trials"]:
        raw = cos(emb[t.enroll] - mean, emb[t.test] - mean)
        (mu_e, sd_e), (mu_t, sd_t) = stats(emb[t.enroll]), stats(emb[t.test])
        expected.append(0.5 * ((raw - mu_e) / sd_e + (raw - mu_t) / sd_t))
    np.testing.assert_allclose(scores, expected, rtol=1e-9)


def test_separate_enroll_table(small_set):
    # Enroll ids may be model ids (e.g. a speaker's averaged embedding) from another table.
    emb = small_set["test"]
    model = (emb["spk0-utt0"] + emb["spk0-utt1"]) / 2
    enroll = EmbeddingTable(["spk0"], model[None, :])
    trials = [Trial("spk0", "spk0-utt1", True), Trial("spk0", "spk2-utt5", False)]
    scores = score_trials(trials, load_embeddings(small_set["test_scp"]), enroll_embeddings=enroll)
    np.testing.assert_allclose(scores, [cos(model, emb["spk0-utt1"]), cos(model, emb["spk2-utt5"])])


def test_unknown_utterance_names_trials_file_and_line(small_set, tmp_path):
    path = tmp_path / "bad_trials"
    path.write_text("spk0-utt0 spk0-utt1 target\n\nspk0-utt0 nobody nontarget\n")
    trials = [Trial("spk0-utt0", "spk0-utt1", True), Trial("spk0-utt0", "nobody", False)]
    with pytest.raises(InputError) as err:
        score_trials(trials, load_embeddings(small_set["test_scp"]), trials_path=path)
    assert f"{path}:3" in str(err.value)
    assert "'nobody'" in str(err.value)


def test_bad_scp_lines(tmp_path, small_set):
    scp = tmp_path / "bad.scp"
    good = small_set["test_scp"].read_text().splitlines()
    scp.write_text(good[0] + "\nlonely_key\n")
    with pytest.raises(InputError, match=r"bad\.scp:2: expected '<key> <value>'"):
        load_embeddings(scp)
    scp.write_text(good[0] + "\n" + good[0] + "\n")
    with pytest.raises(InputError, match=r"bad\.scp:2: duplicate key"):
        load_embeddings(scp)
    other = write_embeddings(tmp_path / "other", {"x": np.zeros(4)})
    scp.write_text(good[0] + "\n" + other.read_text())
    with pytest.raises(InputError, match=r"bad\.scp:2: .*dimension 4, expected 6"):
        load_embeddings(scp)
    with pytest.raises(InputError, match="not found"):
        load_embeddings(tmp_path / "missing.scp")


# ----------------------------------------------------------------------------- score files

def test_score_file_round_trip_and_errors(tmp_path):
    trials = [Trial("a", "b", True), Trial("a", "c", False)]
    path = tmp_path / "s" / "test.score"
    write_scores(path, trials, [0.5, -0.25])
    assert path.read_text() == "a b 0.500000\na c -0.250000\n"
    scores, labels = align_scores(read_scores(path), trials, path, "trials")
    np.testing.assert_allclose(scores, [0.5, -0.25])
    assert labels.tolist() == [True, False]
    path.write_text("a b 0.5\na c high\n")
    with pytest.raises(InputError, match=r"test\.score:2: expected a finite number"):
        read_scores(path)
    path.write_text("a b 0.5\n")
    trials_path = tmp_path / "trials"
    write_trials(trials_path, trials)
    with pytest.raises(InputError, match=r"trials:2: trial 'a c' has no score"):
        align_scores(read_scores(path), trials, path, trials_path)


# ----------------------------------------------------------------------------- CLI

def run_score_cli(*args):
    return subprocess.run([sys.executable, "-m", "wespeaker_like.bin.score", *map(str, args)],
                          cwd=REPO, capture_output=True, text=True, timeout=60)


def test_score_cli_end_to_end(small_set, tmp_path):
    scores_path = tmp_path / "exp" / "scores" / "test.score"
    results_path = tmp_path / "exp" / "scores" / "test.result"
    proc = run_score_cli("--embeddings", small_set["test_scp"], "--trials", small_set["trials_path"],
                         "--scores", scores_path, "--results", results_path,
                         "--mean_embeddings", small_set["train_scp"],
                         "--asnorm-cohort", small_set["train_scp"], "--asnorm_top_n", 4,
                         "--p_target", 0.01, 0.05)
    assert proc.returncode == 0, proc.stderr
    assert re.fullmatch(r"EER \d+\.\d\d %  minDCF\(0\.01\) \d\.\d{3}  minDCF\(0\.05\) \d\.\d{3}\n",
                        proc.stdout), proc.stdout

    table = load_embeddings(small_set["test_scp"])
    cohort = load_embeddings(small_set["train_scp"])
    expected = score_trials(small_set["trials"], table, mean=mean_vector(cohort), cohort=cohort, top_n=4)
    lines = scores_path.read_text().splitlines()
    assert len(lines) == len(small_set["trials"])
    for line, trial, value in zip(lines, small_set["trials"], expected):
        enroll, test, score = line.split()
        assert (enroll, test) == (trial.enroll, trial.test)
        assert float(score) == pytest.approx(value, abs=1e-6)

    results = json.loads(results_path.read_text())
    labels = [t.is_target for t in small_set["trials"]]
    assert results["num_trials"] == len(small_set["trials"])
    assert results["eer_percent"] == pytest.approx(100 * compute_eer(expected, labels)[0])
    assert results["min_dcf"]["0.05"] == pytest.approx(compute_min_dcf(expected, labels, 0.05).min_dcf)
    assert f"EER {results['eer_percent']:.2f} %" in proc.stdout


def test_score_cli_unknown_utterance(small_set, tmp_path):
    trials = tmp_path / "trials_bad"
    trials.write_text("spk0-utt0 spk0-utt1 target\nspk0-utt0 spk1-utt2 nontarget\n"
                      "spk0-utt0 ghost nontarget\n")
    proc = run_score_cli("--embeddings", small_set["test_scp"], "--trials", trials,
                         "--scores", tmp_path / "out.score")
    assert proc.returncode != 0
    assert f"{trials}:3" in proc.stderr and "'ghost'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out.score").exists()


@pytest.mark.parametrize("kind", ["target", "nontarget"])
def test_one_sided_trials_fail_in_one_line_and_remove_old_outputs(small_set, tmp_path, kind):
    good = run_score_cli("--embeddings", small_set["test_scp"], "--trials", small_set["trials_path"],
                         "--scores", tmp_path / "out.score")
    assert good.returncode == 0, good.stderr
    assert (tmp_path / "out.score").is_file() and (tmp_path / "out.result").is_file()
    trials = tmp_path / "one_sided"
    trials.write_text(f"spk0-utt0 spk0-utt1 {kind}\nspk1-utt2 spk1-utt3 {kind}\n")
    proc = run_score_cli("--embeddings", small_set["test_scp"], "--trials", trials,
                         "--scores", tmp_path / "out.score")
    assert proc.returncode == 1
    assert proc.stderr.strip().endswith(f"{trials}: all 2 trials are {kind}; EER and minDCF need both "
                                        "target and nontarget trials")
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out.score").exists() and not (tmp_path / "out.result").exists()


def test_scp_offset_past_the_end_of_the_ark_fails_in_one_line(small_set, tmp_path):
    ark = small_set["test_scp"].with_suffix(".ark")
    bad = tmp_path / "bad.scp"
    lines = small_set["test_scp"].read_text().splitlines()
    key = lines[1].split()[0]
    bad.write_text("\n".join([lines[0], f"{key} {ark}:{ark.stat().st_size + 7}", *lines[2:]]) + "\n")
    proc = run_score_cli("--embeddings", bad, "--trials", small_set["trials_path"], "--scores", tmp_path / "o.score")
    assert proc.returncode == 1
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert f"{bad}:2: offset {ark.stat().st_size + 7} of '{key}' is past the end of '{ark}'" in proc.stderr


def test_enroll_map_averages_the_enrollment_utterances(small_set, tmp_path, capsys):
    from wespeaker_like.bin import score

    emb = small_set["test"]
    enroll_map = tmp_path / "enroll.map"
    enroll_map.write_text("spk0-enroll spk0-utt0 spk2-utt4\nspk1-utt3 spk1-utt3 spk1-utt2\n")
    trials_path = tmp_path / "trials_enroll"
    trials_path.write_text("spk0-enroll spk0-utt1 target\nspk0-enroll spk1-utt2 nontarget\n"
                           "spk1-utt3 spk1-utt2 target\n")
    out = tmp_path / "out.score"
    assert score.main(["--embeddings", str(small_set["test_scp"]), "--trials", str(trials_path),
                       "--scores", str(out), "--enroll_map", str(enroll_map)]) == 0
    model = (emb["spk0-utt0"] + emb["spk2-utt4"]) / 2  # an id with its own embedding keeps it (spk1-utt3)
    expected = [cos(model, emb["spk0-utt1"]), cos(model, emb["spk1-utt2"]), cos(emb["spk1-utt3"], emb["spk1-utt2"])]
    got = [float(line.split()[2]) for line in out.read_text().splitlines()]
    np.testing.assert_allclose(got, expected, atol=1e-6)

    enroll_map.write_text("spk0-enroll spk0-utt0\nspk9-enroll spk9-utt0 spk0-utt1\n")
    capsys.readouterr()
    assert score.main(["--embeddings", str(small_set["test_scp"]), "--trials", str(trials_path),
                       "--scores", str(out), "--enroll_map", str(enroll_map)]) == 1
    assert f"{enroll_map}:2: enrollment utterance 'spk9-utt0' of 'spk9-enroll' has no embedding" \
        in capsys.readouterr().err


# ----------------------------------------------------------------------------- back-ends, calibration

@pytest.fixture
def speaker_sets(tmp_path):
    """Train (12 speakers x 5) and test (5 x 4) embeddings of dim 8 with speaker structure."""
    rng = np.random.default_rng(11)
    mixing = rng.normal(size=(8, 8))

    def draw(prefix, num_speakers, num_utts):
        out = {}
        for s in range(num_speakers):
            centre = rng.normal(size=8) * 1.5
            for u in range(num_utts):
                out[f"{prefix}{s:02d}-u{u}"] = ((centre + rng.normal(size=8)) @ mixing).astype(np.float32)
        return out

    train, test = draw("tr", 12, 5), draw("te", 5, 4)
    utt2spk = tmp_path / "train_utt2spk"
    utt2spk.write_text("".join(f"{u} {u.split('-')[0]}\n" for u in train))
    keys = sorted(test)
    trials = [Trial(a, b, a[:4] == b[:4]) for i, a in enumerate(keys) for b in keys[i + 1:]]
    write_trials(tmp_path / "test_trials", trials)
    train_keys = sorted(train)
    dev = [Trial(a, b, a[:4] == b[:4]) for i, a in enumerate(train_keys) for b in train_keys[i + 1::2]]
    write_trials(tmp_path / "dev_trials", dev)
    return {"train_scp": write_embeddings(tmp_path / "train", train), "utt2spk": utt2spk,
            "test_scp": write_embeddings(tmp_path / "test", test), "trials": trials, "dev": dev,
            "trials_path": tmp_path / "test_trials", "dev_path": tmp_path / "dev_trials",
            "train_labels": [u.split("-")[0] for u in train]}


def read_score_file(path):
    return np.array([float(line.split()[2]) for line in path.read_text().splitlines()])


def test_score_cli_plda_backend_trains_saves_and_reloads(speaker_sets, tmp_path):
    from wespeaker_like.scoring.plda import PldaBackend, plda_score_trials

    s = speaker_sets
    model_path = tmp_path / "exp" / "plda.npz"
    common = ["--embeddings", s["test_scp"], "--trials", s["trials_path"], "--backend", "plda"]
    proc = run_score_cli(*common, "--scores", tmp_path / "a.score", "--plda_train", s["train_scp"],
                         "--plda_utt2spk", s["utt2spk"], "--lda_dim", 4, "--plda_model", model_path)
    assert proc.returncode == 0, proc.stderr
    train = load_embeddings(s["train_scp"])
    expected_model = PldaBackend.fit(train.matrix, s["train_labels"], lda_dim=4)
    expected = plda_score_trials(s["trials"], expected_model, load_embeddings(s["test_scp"]))
    np.testing.assert_allclose(read_score_file(tmp_path / "a.score"), expected, atol=1e-6)
    result = json.loads((tmp_path / "a.result").read_text())
    assert result["scoring"]["backend"] == "plda" and result["scoring"]["lda_dim"] == 4
    labels = [t.is_target for t in s["trials"]]
    assert result["eer_percent"] == pytest.approx(100 * compute_eer(np.round(expected, 6), labels)[0])

    # The saved model alone scores the same.
    proc = run_score_cli(*common, "--scores", tmp_path / "b.score", "--plda_model", model_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "b.score").read_text() == (tmp_path / "a.score").read_text()

    proc = run_score_cli(*common, "--scores", tmp_path / "c.score", "--plda_train", s["train_scp"],
                         "--plda_utt2spk", s["utt2spk"], "--lda_dim", 12)
    assert proc.returncode == 1
    assert "--lda_dim 12 is too large: LDA gives at most min(dimension 8, speakers 12 - 1)" in proc.stderr
    proc = run_score_cli(*common, "--scores", tmp_path / "c.score", "--plda_model", model_path,
                         "--mean_embeddings", s["train_scp"])
    assert proc.returncode == 2 and "--mean_embeddings does not apply to --backend plda" in proc.stderr
    proc = run_score_cli("--embeddings", s["test_scp"], "--trials", s["trials_path"], "--backend", "asnorm",
                         "--scores", tmp_path / "c.score")
    assert proc.returncode == 2 and "--backend asnorm needs --asnorm_cohort" in proc.stderr


def test_score_cli_calibration_on_development_trials(speaker_sets, tmp_path):
    from wespeaker_like.scoring.calibration import LinearCalibration, read_calibration
    from wespeaker_like.scoring.metrics import compute_act_dcf, compute_cllr

    s = speaker_sets
    calibration_path = tmp_path / "exp" / "calibration.json"
    proc = run_score_cli("--embeddings", s["test_scp"], "--trials", s["trials_path"],
                         "--scores", tmp_path / "cos.score", "--mean_embeddings", s["train_scp"],
                         "--calibration_trials", s["dev_path"], "--calibration_embeddings", s["train_scp"],
                         "--calibration", calibration_path, "--p_target", 0.05, 0.01)
    assert proc.returncode == 0, proc.stderr
    assert re.fullmatch(r"EER .*  Cllr \d\.\d{3}  actDCF\(0\.05\) \d\.\d{3}  actDCF\(0\.01\) \d\.\d{3}\n",
                        proc.stdout), proc.stdout
    train = load_embeddings(s["train_scp"])
    mean = mean_vector(train)
    dev_scores = score_trials(s["dev"], train, mean=mean)
    expected = LinearCalibration.fit(dev_scores, [t.is_target for t in s["dev"]], prior=0.05)
    stored = read_calibration(calibration_path)
    assert stored["a"] == pytest.approx(expected.a, rel=1e-9) and stored["b"] == pytest.approx(expected.b, rel=1e-9)
    assert stored["threshold"] == pytest.approx(np.log(0.95 / 0.05))
    assert (stored["trials"], stored["backend"], stored["prior"]) == (str(s["dev_path"]), "cosine", 0.05)
    assert stored["mean_embeddings"] == str(s["train_scp"])

    scores = score_trials(s["trials"], load_embeddings(s["test_scp"]), mean=mean)
    labels = [t.is_target for t in s["trials"]]
    result = json.loads((tmp_path / "cos.result").read_text())
    assert result["cllr"] == pytest.approx(compute_cllr(expected(scores), labels))
    assert result["act_dcf"]["0.01"] == pytest.approx(compute_act_dcf(expected(scores), labels, 0.01))
    assert result["calibration"]["path"] == str(calibration_path)
    assert result["cllr"] < compute_cllr(scores, labels)  # raw cosines read as LLRs are far worse

    # A run without calibration removes the stale default calibration file beside the scores.
    stale = tmp_path / "cos.calibration.json"
    stale.write_text("{}")
    assert run_score_cli("--embeddings", s["test_scp"], "--trials", s["trials_path"],
                         "--scores", tmp_path / "cos.score").returncode == 0
    assert not stale.exists()
