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
import torch
import torchaudio
import torchaudio.compliance.kaldi as kaldi

from conftest import ROOT, repo_env
from wespeaker_like.bin import make_features
from wespeaker_like.data.kaldi_dir import DataDir, read_table
from wespeaker_like.errors import InputError
from wespeaker_like.audio.source import AudioSource
from wespeaker_like.data.scp import read_scp
from wespeaker_like.features import build_frontend
from wespeaker_like.features.ark import ArkScpWriter
from wespeaker_like.features.frontends import check_model_input_dim


def small_data_dir(path, corpus_dir, num_utts=6):
    wavs = read_table(corpus_dir / "test" / "wav.scp")
    utt2spk = read_table(corpus_dir / "test" / "utt2spk")
    utts = sorted(wavs)[:num_utts]
    DataDir({"wav.scp": {u: str(corpus_dir / wavs[u]) for u in utts},
             "utt2spk": {u: utt2spk[u] for u in utts}}).save(path)
    return utts


def _speech(corpus_dir):
    audio, rate = soundfile.read(corpus_dir / "WAVE" / "SPEAKER0003" / "000030012.opus", dtype="float32")
    assert rate == 16000
    return audio


def test_fbank_frames_and_dimension(corpus_dir):
    audio = _speech(corpus_dir)
    feats = build_frontend({}).features(audio)
    assert feats.shape == (1 + (len(audio) - 400) // 160, 80)
    assert np.isfinite(feats.numpy()).all() and 0 < feats.mean() < 20  # natural-log mel energies


def test_kaldi_frontends_equal_compliance_kaldi(corpus_dir):
    audio = _speech(corpus_dir)
    wave = torch.from_numpy(audio).unsqueeze(0) * 32768
    fbank = build_frontend({"type": "fbank", "num_mel_bins": 64, "norm": "none"})
    expected = kaldi.fbank(wave, num_mel_bins=64, dither=0.0, energy_floor=0.0, window_type="hamming")
    torch.testing.assert_close(fbank(audio), expected)
    hires = {"type": "mfcc", "num_mel_bins": 40, "num_ceps": 40, "low_freq": 20, "high_freq": -400, "norm": "none"}
    mfcc = build_frontend(hires)
    expected = kaldi.mfcc(wave, num_mel_bins=40, num_ceps=40, low_freq=20, high_freq=-400, dither=0.0,
                          energy_floor=0.0, window_type="hamming")
    assert mfcc.dim == 40
    torch.testing.assert_close(mfcc(audio), expected)


@pytest.mark.parametrize("window_type", ["hamming", "hanning", "povey", "rectangular", "blackman"])
@pytest.mark.parametrize("kind", ["fbank", "mfcc"])
def test_kaldi_frontend_options_equal_compliance_kaldi(corpus_dir, window_type, kind):
    audio = _speech(corpus_dir)
    wave = torch.from_numpy(audio).unsqueeze(0) * 32768
    for options in ({"preemphasis": 0.0, "low_freq": 0.0, "high_freq": -400.0},
                    {"preemphasis": 0.97, "low_freq": 300.0, "high_freq": 3700.0},
                    {"preemphasis": 1.0, "frame_length": 32.0, "frame_shift": 12.5, "num_mel_bins": 23}):
        cfg = {"type": kind, "window_type": window_type, "num_mel_bins": 40, "num_ceps": 13, "norm": "none",
               **options}
        frontend = build_frontend(cfg)
        full = frontend.cfg  # defaults filled in
        common = dict(num_mel_bins=full["num_mel_bins"], frame_length=full["frame_length"],
                      frame_shift=full["frame_shift"], dither=0.0, energy_floor=0.0, window_type=window_type,
                      preemphasis_coefficient=full["preemphasis"], low_freq=full["low_freq"],
                      high_freq=full["high_freq"])
        expected = kaldi.fbank(wave, **common) if kind == "fbank" else kaldi.mfcc(wave, num_ceps=13, **common)
        assert frontend.num_frames(len(audio)) == expected.shape[0]
        torch.testing.assert_close(frontend(audio), expected)


def test_kaldi_dither_draws_as_compliance_kaldi(corpus_dir):
    audio = _speech(corpus_dir)
    frontend = build_frontend({"dither": 1.0, "norm": "none"})
    torch.manual_seed(3)
    expected = kaldi.fbank(torch.from_numpy(audio).unsqueeze(0) * 32768, num_mel_bins=80, dither=1.0,
                           energy_floor=0.0, window_type="hamming")
    torch.manual_seed(3)
    dithered = frontend(audio)
    torch.testing.assert_close(dithered, expected)
    assert not torch.allclose(dithered, build_frontend({"norm": "none"})(audio))


def test_stft_and_logmel_equal_torch_computations(corpus_dir):
    audio = _speech(corpus_dir)
    wave = torch.from_numpy(audio)
    stft = build_frontend({"type": "stft", "norm": "none"})
    magnitude = torch.stft(wave, 512, hop_length=160, win_length=400, window=torch.hamming_window(400),
                           center=False, return_complex=True).abs()
    assert stft.dim == 257
    torch.testing.assert_close(stft(audio), torch.log(magnitude + 1e-6).T)
    logmel = build_frontend({"type": "logmel", "num_mel_bins": 64, "norm": "none", "low_freq": 0})
    mel = torchaudio.transforms.MelSpectrogram(16000, n_fft=512, win_length=400, hop_length=160, n_mels=64,
                                               window_fn=torch.hamming_window, center=False)(wave)
    torch.testing.assert_close(logmel(audio), torch.log(mel + 1e-6).T, rtol=1e-4, atol=1e-4)


def test_normalisations(corpus_dir):
    audio = _speech(corpus_dir)
    raw = build_frontend({"norm": "none"})(audio)
    cmn = build_frontend({"norm": "cmn"})(audio)
    torch.testing.assert_close(cmn, raw - raw.mean(0))
    cmvn = build_frontend({"norm": "cmvn"})(audio)
    torch.testing.assert_close(cmvn, (raw - raw.mean(0)) / raw.std(0, unbiased=False))
    instance = build_frontend({"norm": "instance"})(audio)
    expected = torch.nn.InstanceNorm1d(80)(raw.T.unsqueeze(0)).squeeze(0).T
    torch.testing.assert_close(instance, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kind", ["fbank", "mfcc", "stft", "logmel"])
def test_frames_samples_round_trip(kind):
    for shift, length in ((10, 25), (12.5, 32)):
        frontend = build_frontend({"type": kind, "frame_shift": shift, "frame_length": length})
        for frames in (1, 2, 7, 200, 301):
            samples = frontend.num_samples(frames)
            assert frontend.num_frames(samples) == frames and frontend.num_frames(samples - 1) == frames - 1
            wave = np.random.default_rng(frames).uniform(-0.3, 0.3, samples + frontend.shift - 1).astype(np.float32)
            assert frontend(wave).shape == (frames, frontend.dim)


def test_bad_feature_config_and_dimension_mismatch_are_named():
    with pytest.raises(InputError, match="unknown key 'features.num_bins'"):
        build_frontend({"num_bins": 80}, "conf/x.yaml")
    with pytest.raises(InputError, match="features.norm is 'mean'"):
        build_frontend({"norm": "mean"})
    with pytest.raises(InputError, match="features.window_type 'hann' is not available for fbank"):
        build_frontend({"window_type": "hann"})
    with pytest.raises(InputError, match=r"features.preemphasis must be in \[0, 1\]"):
        build_frontend({"preemphasis": 1.5})
    with pytest.raises(InputError, match=r"features.num_ceps \(40\) cannot exceed features.num_mel_bins \(23\)"):
        build_frontend({"type": "mfcc", "num_mel_bins": 23})
    with pytest.raises(InputError, match=r"high_freq -8000 \(= 0.0 Hz\) must satisfy 0 <= low < high"):
        build_frontend({"high_freq": -8000})
    check_model_input_dim(build_frontend({"type": "stft"}), {"feat_dim": 257})
    with pytest.raises(InputError, match=r"conf/x.yaml: model.feat_dim is 80 but .* 40-d features \(features.num_ceps\)"):
        check_model_input_dim(build_frontend({"type": "mfcc"}), {"feat_dim": 80}, "conf/x.yaml")
    with pytest.raises(InputError, match=r"model.feat_dim is 80 \(ecapa_tdnn's default\) but the logmel front-end gives 64-d"):
        check_model_input_dim(build_frontend({"type": "logmel", "num_mel_bins": 64}), {"name": "ecapa_tdnn"})
    check_model_input_dim(build_frontend({}), {"name": "ecapa_tdnn"})  # its default feat_dim 80 fits


def test_jobs_merge_and_skip_finished(tmp_path, corpus_dir):
    utts = small_data_dir(tmp_path / "data", corpus_dir)
    args = ["--data_dir", str(tmp_path / "data"), "--feat_dir", str(tmp_path / "feats"), "--num_jobs", "2"]
    for job in ("1", "2"):
        assert make_features.main(args + ["--job", job]) == 0
    assert make_features.main(args + ["--merge"]) == 0
    feats = kaldiio.load_scp(str(tmp_path / "data" / "feats.scp"))
    frames = read_table(tmp_path / "data" / "utt2num_frames")
    assert sorted(feats) == utts and all(feats[u].shape == (int(frames[u]), 80) for u in utts)
    [ark] = (tmp_path / "feats").glob("fbank.1.*.ark")
    before = ark.stat().st_mtime_ns
    assert make_features.main(args + ["--job", "1"]) == 0
    assert ark.stat().st_mtime_ns == before  # finished job not redone


def test_killed_job_leaves_no_scp_and_rerun_completes(tmp_path, corpus_dir):
    utts = small_data_dir(tmp_path / "data", corpus_dir, num_utts=400)
    cmd = [sys.executable, "-m", "wespeaker_like.bin.make_features", "--data_dir", str(tmp_path / "data"),
           "--feat_dir", str(tmp_path / "feats"), "--num_jobs", "1", "--job", "1"]
    proc = subprocess.Popen(cmd, env=repo_env(), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not list((tmp_path / "feats").glob(".fbank.1.*.ark.*.tmp")):
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert list((tmp_path / "feats").glob(".fbank.1.*.tmp")), "the killed job left no temporary file"
    assert not list((tmp_path / "feats").glob("fbank.1.*.scp")), "the job finished before it could be killed"
    assert subprocess.run(cmd, env=repo_env(), cwd=ROOT, capture_output=True).returncode == 0
    [scp] = (tmp_path / "feats").glob("fbank.1.*.scp")
    assert sorted(read_scp(scp)) == utts
    for utt, mat in kaldiio.load_scp_sequential(str(scp)):
        assert mat.shape[1] == 80
    assert [p.name for p in (tmp_path / "feats").iterdir() if p.name.startswith(".")] == []  # temps removed


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
        make_features.run_job(tmp_path / "data", tmp_path / "feats", 1, 1, build_frontend({}), False)
    assert not list((tmp_path / "feats").glob("*.scp"))
    # --skip_bad drops the utterance and the merge leaves it out of feats.scp
    assert make_features.main(args + ["--skip_bad"]) == 0
    assert make_features.main(args[:4] + ["--merge"]) == 0
    assert sorted(read_scp(tmp_path / "data" / "feats.scp")) == [utts[0], utts[2]]


def test_malformed_scp_line_is_named(tmp_path):
    (tmp_path / "feats.scp").write_text("a /x.ark:12\nb /x.ark:12 extra\n")
    with pytest.raises(InputError, match=r"feats.scp:2: expected '<key> <ark path>:<byte offset>' or"):
        read_scp(tmp_path / "feats.scp")


def _stage3(data, feats, num_jobs=1, config=None, extra=()):
    args = ["--data_dir", str(data), "--feat_dir", str(feats), "--num_jobs", str(num_jobs), *extra]
    args += ["--config", str(config)] if config else []
    for job in range(1, num_jobs + 1):
        assert make_features.main(args + ["--job", str(job)]) == 0
    assert make_features.main(args + ["--merge"]) == 0
    return dict(kaldiio.load_scp(str(data / "feats.scp")).items())  # read now: later merges remove shards


def test_changed_config_or_wav_scp_redoes_the_job(tmp_path, corpus_dir, caplog):
    utts = small_data_dir(tmp_path / "data", corpus_dir, num_utts=3)
    config = tmp_path / "x.yaml"
    config.write_text("features: {num_mel_bins: 80}\n")
    assert _stage3(tmp_path / "data", tmp_path / "feats", config=config)[utts[0]].shape[1] == 80
    config.write_text("features: {num_mel_bins: 40}\n")
    with caplog.at_level("WARNING"):
        feats = _stage3(tmp_path / "data", tmp_path / "feats", config=config)
    assert all(feats[u].shape[1] == 40 for u in utts)
    assert "features changed: num_mel_bins" in caplog.text
    # Another recording behind the same utterance id: redone, not "already complete".
    wav_scp = tmp_path / "data" / "wav.scp"
    entries = read_table(wav_scp)
    wav_scp.write_text("".join(f"{u} {entries[utts[1]] if u == utts[0] else entries[u]}\n" for u in utts))
    caplog.clear()
    with caplog.at_level("INFO"):
        feats = _stage3(tmp_path / "data", tmp_path / "feats", config=config)
    assert "audio changed (wav.scp" in caplog.text and "already complete" not in caplog.text
    np.testing.assert_array_equal(feats[utts[0]], feats[utts[1]])
    # Unchanged inputs: skipped; a changed norm alone does not touch stored features.
    caplog.clear()
    config.write_text("features: {num_mel_bins: 40, norm: instance}\n")
    with caplog.at_level("INFO"):
        _stage3(tmp_path / "data", tmp_path / "feats", config=config)
    assert "already complete" in caplog.text
    assert len(list((tmp_path / "feats").glob("*.ark"))) == 1  # older shards removed by the merge


def test_new_job_split_never_breaks_the_existing_feats_scp(tmp_path, corpus_dir):
    utts = small_data_dir(tmp_path / "data", corpus_dir, num_utts=9)
    before = _stage3(tmp_path / "data", tmp_path / "feats", num_jobs=2)
    args = ["--data_dir", str(tmp_path / "data"), "--feat_dir", str(tmp_path / "feats"), "--num_jobs", "3"]
    assert make_features.main(args + ["--job", "1"]) == 0
    still = kaldiio.load_scp(str(tmp_path / "data" / "feats.scp"))
    assert sorted(still) == utts and all(np.array_equal(still[u], before[u]) for u in utts)
    with pytest.raises(InputError, match="job 2 has no output for the current inputs"):
        make_features.merge(tmp_path / "data", tmp_path / "feats", 3, build_frontend({}))
    after = _stage3(tmp_path / "data", tmp_path / "feats", num_jobs=3)
    assert all(np.array_equal(after[u], before[u]) for u in utts)


def test_stage3_honours_segments(tmp_path, corpus_dir):
    audio = _speech(corpus_dir)
    data = tmp_path / "data"
    data.mkdir()
    soundfile.write(tmp_path / "ok1.wav", audio[:32000], 16000, subtype="FLOAT")
    (data / "wav.scp").write_text(f"r1 {tmp_path / 'ok1.wav'}\n")
    (data / "segments").write_text("r1 r1 0.0 0.5\nr1-b r1 0.25 -1\n")
    (data / "utt2spk").write_text("r1 s1\nr1-b s1\n")
    (data / "spk2utt").write_text("s1 r1 r1-b\n")
    feats = _stage3(data, tmp_path / "feats")
    fbank = build_frontend({})
    torch.testing.assert_close(torch.tensor(feats["r1"]), fbank.features(audio[:8000]))
    torch.testing.assert_close(torch.tensor(feats["r1-b"]), fbank.features(audio[4000:32000]))


def test_packed_audio_reads_like_the_original(tmp_path, corpus_dir):
    utts = small_data_dir(tmp_path / "data", corpus_dir, num_utts=4)
    wav_scp = tmp_path / "data" / "wav.scp"
    entries = read_table(wav_scp)
    entries[utts[1]] = f"cat {entries[utts[1]]} |"  # a pipe, decoded once by the packing
    wav_scp.write_text("".join(f"{u} {entries[u]}\n" for u in utts))
    (tmp_path / "data" / "segments").write_text("".join(f"{u} {u} 0.2 -1\n" for u in utts))
    args = ["--data_dir", str(tmp_path / "data"), "--feat_dir", str(tmp_path / "wav_ark"), "--num_jobs", "2",
            "--pack", str(tmp_path / "packed")]
    for job in ("1", "2"):
        assert make_features.main(args + ["--job", job]) == 0
    assert make_features.main(args + ["--merge"]) == 0
    packed_scp = read_table(tmp_path / "packed" / "wav.scp")
    assert sorted(packed_scp) == utts and all(".ark:" in v for v in packed_scp.values())
    assert not (tmp_path / "packed" / "segments").exists()
    assert read_table(tmp_path / "packed" / "utt2spk") == read_table(tmp_path / "data" / "utt2spk")
    original = AudioSource.from_data_dir(tmp_path / "data", 16000)
    packed = AudioSource.from_data_dir(tmp_path / "packed", 16000)
    for utt in utts:
        whole = original.read(utt)
        assert packed.num_samples(utt) == whole.shape[0]
        # 16-bit storage of decoded Opus: within half a quantisation step
        np.testing.assert_allclose(packed.read(utt), whole, atol=0.5 / 32768 + 1e-7)
        np.testing.assert_array_equal(packed.read(utt, 5000, 3200), packed.read(utt)[5000:8200])
