"""The speechocean762 recipe end to end (stages 0-7) on a few real speakers, including a kill
during training, a rerun that resumes, and a second run with the same seed giving the same EER."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import ROOT, SHARED, repo_env
from wespeaker_like.data.kaldi_dir import read_table

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


def run_recipe(tmp_path, *options, wait=True):
    cmd = ["bash", str(RUN), "--corpus_dir", str(tmp_path / "corpus"), "--noise_dir", str(SHARED / "noise"),
           "--trials", str(tmp_path / "corpus" / "trials" / "test.trials"), "--data", str(tmp_path / "data"),
           "--config", str(CONFIG), "--num_rooms", "4", "--nj", "2", "--results_md", str(tmp_path / "RESULTS.md"),
           *options]
    if not wait:
        return subprocess.Popen(cmd, env=repo_env(), cwd=tmp_path, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
    proc = subprocess.run(cmd, env=repo_env(), cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return proc.stdout


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
    rest = run_recipe(tmp_path, "--stage", "4", "--exp", str(exp))
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
    scores = (exp / "scores" / "test.score").read_text().splitlines()
    assert len(scores) == 24 * 23 // 2
    result = json.loads((exp / "scores" / "test.result").read_text())
    assert 0.0 <= result["eer_percent"] <= 100.0 and set(result["min_dcf"]) == {"0.01", "0.05"}
    rows = [line for line in (tmp_path / "RESULTS.md").read_text().splitlines() if "speechocean762/exp" in line]
    assert len(rows) == 1 and f"{result['eer_percent']:.2f}" in rows[0]
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
    run_recipe(tmp_path, "--stage", "4", "--stop_stage", "6", "--exp", str(again))
    first = json.loads((exp / "scores" / "test.result").read_text())
    second = json.loads((again / "scores" / "test.result").read_text())
    assert first["eer_percent"] == second["eer_percent"] and first["min_dcf"] == second["min_dcf"]
