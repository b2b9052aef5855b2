"""Stage 3 on real audio: Kaldi fbank, atomic ark/scp jobs, resume after a kill, bad input."""

import os
import signal
import subprocess
import sys
import time

import kaldiio
import numpy as np
import pytest
import soundfile

from conftest import ROOT, repo_env
from wespeaker_like.bin import make_features
from wespeaker_like.data.kaldi_dir import DataDir, read_table
from wespeaker_like.errors import InputError
from wespeaker_like.features import FEATURE_DEFAULTS, compute_features
from wespeaker_like.data.scp import read_scp
from wespeaker_like.features.ark import ArkScpWriter


def small_data_dir(path, corpus_dir, num_utts=6):
    wavs = read_table(corpus_dir / "test" / "wav.scp")
    utt2spk = read_table(corpus_dir / "test" / "utt2spk")
    utts = sorted(wavs)[:num_utts]
    DataDir({"wav.scp": {u: str(corpus_dir / wavs[u]) for u in utts},
             "utt2spk": {u: utt2spk[u] for u in utts}}).save(path)
    return utts


def test_fbank_frames_and_dimension(corpus_dir):
    audio, rate = soundfile.read(corpus_dir / "WAVE" / "SPEAKER0003" / "000030012.opus", dtype="float32")
    feats = compute_features(audio, FEATURE_DEFAULTS)
    assert rate == 16000 and feats.shape == (1 + (len(audio) - 400) // 160, 80)
    assert np.isfinite(feats.numpy()).all() and 0 < feats.mean() < 20  # natural-log mel energies


def test_jobs_merge_and_skip_finished(tmp_path, corpus_dir):
    utts = small_data_dir(tmp_path / "data", corpus_dir)
    args = ["--data_dir", str(tmp_path / "data"), "--feat_dir", str(tmp_path / "feats"), "--num_jobs", "2"]
    for job in ("1", "2"):
        assert make_features.main(args + ["--job", job]) == 0
    assert make_features.main(args + ["--merge"]) == 0
    feats = kaldiio.load_scp(str(tmp_path / "data" / "feats.scp"))
    frames = read_table(tmp_path / "data" / "utt2num_frames")
    assert sorted(feats) == utts and all(feats[u].shape == (int(frames[u]), 80) for u in utts)
    before = (tmp_path / "feats" / "fbank.1.ark").stat().st_mtime_ns
    assert make_features.main(args + ["--job", "1"]) == 0
    assert (tmp_path / "feats" / "fbank.1.ark").stat().st_mtime_ns == before  # finished job not redone


def test_killed_job_leaves_no_scp_and_rerun_completes(tmp_path, corpus_dir):
    utts = small_data_dir(tmp_path / "data", corpus_dir, num_utts=400)
    cmd = [sys.executable, "-m", "wespeaker_like.bin.make_features", "--data_dir", str(tmp_path / "data"),
           "--feat_dir", str(tmp_path / "feats"), "--num_jobs", "1", "--job", "1"]
    proc = subprocess.Popen(cmd, env=repo_env(), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not list((tmp_path / "feats").glob(".fbank.1.ark.*.tmp")):
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "feats" / "fbank.1.scp").exists(), "the job finished before it could be killed"
    assert subprocess.run(cmd, env=repo_env(), cwd=ROOT, capture_output=True).returncode == 0
    assert sorted(read_scp(tmp_path / "feats" / "fbank.1.scp")) == utts
    for utt, mat in kaldiio.load_scp_sequential(str(tmp_path / "feats" / "fbank.1.scp")):
        assert mat.shape[1] == 80


def test_ark_writer_removes_partial_output_on_error(tmp_path):
    with pytest.raises(RuntimeError):
        with ArkScpWriter(tmp_path / "x.ark", tmp_path / "x.scp") as writer:
            writer.write("a", np.zeros((3, 2)))
            raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("problem, message", [
    ("missing", r"wav.scp:2: .*not found"),
    ("empty", r"wav.scp:2: .*expected at least 400"),
    ("short", r"wav.scp:2: .*has 200 samples; expected at least 400"),
    ("garbage", r"wav.scp:2: .*cannot decode"),
])
def test_bad_audio_names_wav_scp_line(tmp_path, corpus_dir, problem, message):
    utts = small_data_dir(tmp_path / "data", corpus_dir, num_utts=3)
    bad = tmp_path / "bad.wav"
    if problem == "empty":
        soundfile.write(bad, np.zeros(0, dtype=np.float32), 16000)
    elif problem == "short":
        soundfile.write(bad, np.zeros(200, dtype=np.float32), 16000)
    elif problem == "garbage":
        bad.write_bytes(b"this is not audio")
    wav_scp = tmp_path / "data" / "wav.scp"
    lines = wav_scp.read_text().splitlines()
    lines[1] = f"{utts[1]} {bad}"
    wav_scp.write_text("\n".join(lines) + "\n")
    args = ["--data_dir", str(tmp_path / "data"), "--feat_dir", str(tmp_path / "feats"), "--job", "1"]
    with pytest.raises(InputError, match=message):
        make_features.run_job(tmp_path / "data", tmp_path / "feats", 1, 1, dict(FEATURE_DEFAULTS), False)
    assert not (tmp_path / "feats" / "fbank.1.scp").exists()
    # --skip_bad drops the utterance and the merge leaves it out of feats.scp
    assert make_features.main(args + ["--skip_bad"]) == 0
    assert make_features.main(args[:4] + ["--merge"]) == 0
    assert sorted(read_scp(tmp_path / "data" / "feats.scp")) == [utts[0], utts[2]]


def test_malformed_scp_line_is_named(tmp_path):
    (tmp_path / "feats.scp").write_text("a /x.ark:12\nb /x.ark:12 extra\n")
    with pytest.raises(InputError, match=r"feats.scp:2: expected '<key> <ark path>:<byte offset>' or"):
        read_scp(tmp_path / "feats.scp")
