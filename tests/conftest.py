"""Shared fixtures: the repository root on sys.path and the shared corpus location."""

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Sequence

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
# inputs, values and gradients of the reference code's losses; another set through WESPEAKER_PARITY_DIR
PARITY_DIR = (ROOT / os.environ.get("WESPEAKER_PARITY_DIR", "../shared/fixtures/parity")).resolve()
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def repo_env() -> dict:
    """Environment for subprocesses: the package and tools/ on the paths, like path.sh."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PATH"] = str(ROOT / "tools") + os.pathsep + env.get("PATH", "")
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def run_script(cmd: Sequence, cwd: Path, timeout: float, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``cmd`` (a recipe's run.sh, say) with ``repo_env()`` in its own process group and return
    its output. A timeout kills the whole group (torchrun and its workers, run.pl's jobs), not only
    the shell; with ``check``, a non-zero exit fails the test with the tails of stdout and stderr."""
    cmd = [str(c) for c in cmd]
    proc = subprocess.Popen(cmd, cwd=cwd, env=repo_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"{' '.join(cmd[:2])} ran past {timeout} s:\n{out[-3000:]}\n{err[-3000:]}")
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd[:2])} exited with {proc.returncode}:\n{out[-4000:]}\n{err[-4000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


@pytest.fixture
def corpus_dir() -> Path:
    path = SHARED / "speechocean762"
    if not path.is_dir():
        pytest.fail(f"the shared corpus is missing: {path} (tests need ../shared beside the checkout)")
    return path


def make_feature_data_dir(path: Path, num_speakers: int = 4, utts_per_speaker: int = 6, dim: int = 20,
                          seed: int = 0) -> Path:
    """A data dir with random fbank-like features whose mean depends on the speaker (learnable)."""
    import numpy as np

    from wespeaker_like.data.kaldi_dir import DataDir
    from wespeaker_like.features.ark import ArkScpWriter

    rng = np.random.default_rng(seed)
    utt2spk = {}
    with ArkScpWriter(path / "feats.ark", path / "feats.scp") as writer:
        for s in range(num_speakers):
            centre = rng.normal(0, 1, dim)
            for u in range(utts_per_speaker):
                utt = f"spk{s}-utt{u}"
                frames = int(rng.integers(40, 90))
                writer.write(utt, centre + rng.normal(0, 1, (frames, dim)) + rng.normal(0, 3, dim))
                utt2spk[utt] = f"spk{s}"
    from wespeaker_like.data.scp import read_scp

    DataDir({"utt2spk": utt2spk, "feats.scp": read_scp(path / "feats.scp")}).save(path)
    return path


TINY_TRAIN_CONFIG = """\
seed: 3
dataset: {num_workers: 0, sampler: {name: random, batch_size: 8}}
model: {name: ecapa_tdnn, feat_dim: 20, embed_dim: 16, channels: [16, 16, 16, 16, 48], se_channels: 8, attention_channels: 8}
objective: {name: classification, num_frames: 30, loss: {name: aam, margin: 0.2, scale: 16},
            margin_schedule: {start_epoch: 0, end_epoch: 2}}
optim: {name: sgd, lr: 0.1, momentum: 0.9, weight_decay: 1.0e-4}
scheduler: {name: warmup_exponential, final_lr: 0.01, warmup_epochs: 0.5}
trainer: {epochs: 3, log_every: 1, checkpoint_every_steps: 2, keep_checkpoints: 2, average_last: 2, num_threads: 1}
"""
