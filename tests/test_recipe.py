"""The speechocean762 recipe end to end (stages 0-7) on a few real speakers, including a kill
during training, a rerun that resumes, and a second run with the same seed giving the same EER."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import kaldiio
import numpy as np
import pytest

from conftest import ROOT, SHARED, repo_env, run_script
from wespeaker_like.data.kaldi_dir import read_table
from wespeaker_like.data.trials import read_trials
from wespeaker_like.scoring.calibration import read_calibration
from wespeaker_like.scoring.cosine import load_embeddings, mean_vector, score_trials
from wespeaker_like.scoring.metrics import compute_eer

RUN = ROOT / "egs" / "speechocean762" / "v1" / "run.sh"
CONFIG = ROOT / "tests" / "conf" / "tiny_ecapa.yaml"


def make_mini_corpus(root: Path, corpus: Path, speakers_per_set: int, utts_per_speaker: int) -> Path:
    """The corpus layout (WAVE/SPEAKERxxxx, train/, test/) with a few speakers, audio linked in."""
    for subset in ("train", "test"):
        spk2utt = read_table(corpus / subset / "spk2utt")
        wavs = read_table(corpus / subset / "wav.scp")
        genders = read_table(corpus / subset / "spk2gender")
        speakers = sorted(spk2utt)[:speakers_per_set]
        (root / subset).mkdir(parents=True)
        lines = {"wav.scp": [], "utt2spk": [], "spk2gender": []}
        for spk in speakers:
            lines["spk2gender"].append(f"{spk}\t{genders[spk]}")
            for utt in spk2utt[spk].split()[:utts_per_speaker]:
                target = root / wavs[utt]
                target.parent.mkdir(parents=True, exist_ok=True)
                if not target.exists():
                    target.symlink_to(corpus / wavs[utt])
                lines["wav.scp"].append(f"{utt}\t{wavs[utt]}")
                lines["utt2spk"].append(f"{utt} {spk}")
        for name, content in lines.items():
            (root / subset / name).write_text("\n".join(content) + "\n")
    test_spk = read_table(root / "test" / "utt2spk")
    test_utts = sorted(test_spk)
    trials = [f"{a} {b} {'target' if test_spk[a] == test_spk[b] else 'nontarget'}"
              for i, a in enumerate(test_utts) for b in test_utts[i + 1:]]
    (root / "trials").mkdir()
    (root / "trials" / "test.trials").write_text("\n".join(trials) + "\n")
    return root


BACKEND_OPTIONS = ("--lda_dim", "3", "--calibration_num_target", "30", "--calibration_num_nontarget", "100")


def run_recipe(tmp_path, *options, wait=True):
    cmd = ["bash", str(RUN), "--corpus_dir", str(tmp_path / "corpus"), "--noise_dir", str(SHARED / "noise"),
           "--trials", str(tmp_path / "corpus" / "trials" / "test.trials"), "--data", str(tmp_path / "data"),
           "--config", str(CONFIG), "--num_rooms", "4", "--nj", "2", "--results_md", str(tmp_path / "RESULTS.md"),
           *options]
    if not wait:
        return subprocess.Popen(cmd, env=repo_env(), cwd=tmp_path, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
    return run_script(cmd, tmp_path, timeout=900).stdout


@pytest.fixture(scope="module")
def recipe_run(tmp_path_factory):
    """Stages 0-3, then stage 4 killed after its first checkpoint, then the rest."""
    tmp_path = tmp_path_factory.mktemp("recipe")
    make_mini_corpus(tmp_path / "corpus", SHARED / "speechocean762", speakers_per_set=4, utts_per_speaker=6)
    exp = tmp_path / "exp"
    stages_0_3 = run_recipe(tmp_path, "--stop_stage", "3", "--exp", str(exp))
    proc = run_recipe(tmp_path, "--stage", "4", "--stop-stage", "4", "--exp", str(exp), wait=False)
    deadline = time.time() + 300
    while time.time() < deadline and not list((exp / "checkpoints").glob("step_*.pt")):
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_with_final_model = (exp / "final_model.pt").exists()
    rest = run_recipe(tmp_path, "--stage", "4", "--exp", str(exp), *BACKEND_OPTIONS)
    return tmp_path, exp, stages_0_3, rest, killed_with_final_model


def test_all_stages_produce_their_outputs(recipe_run):
    tmp_path, exp, stages_0_3, rest, _ = recipe_run
    data = tmp_path / "data"
    assert "skipping the download" in stages_0_3
    assert len(read_table(data / "train" / "utt2spk")) == 24 and len(read_table(data / "test" / "utt2spk")) == 24
    combined = read_table(data / "train_combined" / "utt2uniq")
    assert len(combined) == 24 * 5  # clean + reverb, noise, music, babble
    assert len(read_table(data / "train_combined" / "feats.scp")) == 120
    assert len(read_table(data / "test" / "feats.scp")) == 24
    assert len(read_table(exp / "embeddings" / "test" / "xvector.scp")) == 24
    rows = [line for line in (tmp_path / "RESULTS.md").read_text().splitlines() if "speechocean762/exp" in line]
    assert len(rows) == 3
    for backend, row in zip(("cosine", "asnorm", "plda"), rows):
        scores = (exp / "scores" / f"test.{backend}.score").read_text().splitlines()
        assert len(scores) == 24 * 23 // 2
        result = json.loads((exp / "scores" / f"test.{backend}.result").read_text())
        assert 0.0 <= result["eer_percent"] <= 100.0 and set(result["min_dcf"]) == {"0.01", "0.05"}
        assert f"| {backend} |" in row and f"{result['eer_percent']:.2f}" in row
    assert read_calibration(exp / "calibration.json")["backend"] == "cosine"
    for png in ("det.png", "tsne.png"):
        assert (exp / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    timings = (exp / "stage_times").read_text()
    assert all(f"stage {n} " in timings for n in range(8))


def test_killed_training_resumes_from_its_checkpoint(recipe_run):
    _, exp, _, _, killed_with_final_model = recipe_run
    assert not killed_with_final_model
    log = (exp / "train.log").read_text()
    assert "resumed from" in log and "epoch 3 done" in log
    assert (exp / "final_model.pt").exists()


def test_same_seed_gives_same_eer(recipe_run):
    tmp_path, exp, _, _, _ = recipe_run
    again = tmp_path / "exp_again"
    run_recipe(tmp_path, "--stage", "4", "--stop_stage", "6", "--exp", str(again), *BACKEND_OPTIONS)
    first = json.loads((exp / "scores" / "test.cosine.result").read_text())
    second = json.loads((again / "scores" / "test.cosine.result").read_text())
    assert first["eer_percent"] == second["eer_percent"] and first["min_dcf"] == second["min_dcf"]


def fake_embeddings(scp: Path, utt2spk: dict, seed: int) -> None:
    """16-d embeddings with a per-speaker centre, written as stage 5 does."""
    rng = np.random.default_rng(seed)
    centres = {spk: rng.normal(size=16) * 2 for spk in sorted(set(utt2spk.values()))}
    vectors = {utt: (centres[spk] + rng.normal(size=16)).astype(np.float32) for utt, spk in utt2spk.items()}
    scp.parent.mkdir(parents=True)
    kaldiio.save_ark(str(scp.with_suffix(".ark")), vectors, scp=str(scp))


def test_stages_6_and_7_score_every_backend_side_by_side(tmp_path):
    """Stage 6 with three back-ends and calibration, stage 7 rows, on stage-5-like embeddings."""
    data, exp = tmp_path / "data", tmp_path / "exp" / "x"
    train = {f"tr{s}-u{u}": f"tr{s}" for s in range(8) for u in range(6)}
    test = {f"te{s}-u{u}": f"te{s}" for s in range(5) for u in range(4)}
    for name, utt2spk in (("train_clean", train), ("test", test)):
        (data / name).mkdir(parents=True)
        (data / name / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s in sorted(utt2spk.items())))
    (data / "test" / "spk2gender").write_text("".join(f"te{s} {'mf'[s % 2]}\n" for s in range(5)))
    keys = sorted(test)
    (data / "test" / "trials").write_text("".join(
        f"{a} {b} {'target' if test[a] == test[b] else 'nontarget'}\n" for i, a in enumerate(keys) for b in keys[i + 1:]))
    fake_embeddings(exp / "embeddings" / "train_clean" / "xvector.scp", train, seed=1)
    fake_embeddings(exp / "embeddings" / "test" / "xvector.scp", test, seed=2)

    results_md = tmp_path / "RESULTS.md"
    proc = subprocess.run(["bash", str(RUN), "--stage", "6", "--data", str(data), "--exp", str(exp),
                           "--results_md", str(results_md), *BACKEND_OPTIONS],
                          env=repo_env(), cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summaries = [line for line in proc.stdout.splitlines() if line.startswith("EER ")]
    assert len(summaries) == 3 and all("  Cllr " in line for line in summaries), proc.stdout
    for backend in ("cosine", "asnorm", "plda"):
        assert f"{backend}: scored 190 trials" in proc.stderr

    # Cosine scores are the mean-normalised cosines; the calibration file is the cosine back-end's.
    trials = read_trials(data / "test" / "trials")
    train_table = load_embeddings(exp / "embeddings" / "train_clean" / "xvector.scp")
    expected = score_trials(trials, load_embeddings(exp / "embeddings" / "test" / "xvector.scp"),
                            mean=mean_vector(train_table))
    written = [float(line.split()[2]) for line in (exp / "scores" / "test.cosine.score").read_text().splitlines()]
    np.testing.assert_allclose(written, expected, atol=1e-6)
    calibration = read_calibration(exp / "calibration.json")
    assert calibration["backend"] == "cosine" and calibration["trials"] == str(exp / "scores" / "calibration.trials")
    assert len((exp / "scores" / "calibration.trials").read_text().splitlines()) == 130
    assert calibration["a"] > 0 and (exp / "plda.npz").is_file()
    assert (exp / "scores" / "test.plda.calibration.json").is_file()

    rows = [[c.strip() for c in line.strip("|").split("|")] for line in results_md.read_text().splitlines()
            if line.startswith("| speechocean762/x ")]
    assert [row[1] for row in rows] == ["cosine", "asnorm", "plda"]
    labels = [t.is_target for t in trials]
    for row in rows:
        result = json.loads((exp / "scores" / f"test.{row[1]}.result").read_text())
        assert row[3] == f"{result['eer_percent']:.2f}"
        assert result["scoring"]["backend"] == row[1]
    assert rows[0][3] == f"{100 * compute_eer(np.round(expected, 6), labels)[0]:.2f}"
    for png in ("det.png", "det_asnorm.png", "det_plda.png", "tsne.png"):
        assert (exp / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # An unknown back-end is refused before anything runs.
    bad = subprocess.run(["bash", str(RUN), "--stage", "6", "--data", str(data), "--exp", str(exp),
                          "--backends", "cosine,lda"], env=repo_env(), cwd=tmp_path, capture_output=True, text=True)
    assert bad.returncode == 1 and "unknown back-end 'lda'" in bad.stderr
