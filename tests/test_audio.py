"""Audio I/O on the real corpus: opus files, pipes, errors naming wav.scp, resampling, speed."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from wespeaker_like.audio.io import load_audio, read_wav_scp_entry, resample, speed_perturb, write_audio
from wespeaker_like.augment.resources import Resource
from wespeaker_like.errors import InputError

CORPUS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "speechocean762"
OPUS = CORPUS / "WAVE" / "SPEAKER0001" / "000010011.opus"

pytestmark = pytest.mark.skipif(not OPUS.is_file(), reason="shared corpus not available")


def _wav_stdout_command(num_samples: int, rate: int = 16000) -> str:
    """A sox-free shell command that writes a 440 Hz WAV to stdout."""
    code = ("import io,sys,numpy as n,soundfile as s;b=io.BytesIO();"
            f"s.write(b,0.1*n.sin(2*n.pi*440*n.arange({num_samples})/{rate}),{rate},format='WAV');"
            "sys.stdout.buffer.write(b.getvalue())")
    return f"{shlex.quote(sys.executable)} -c {shlex.quote(code)}"


def _dominant_frequency(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples)), n=8 * len(samples)))
    return float(np.argmax(spectrum) * rate / (8 * len(samples)))


def test_load_real_opus():
    samples, rate = read_wav_scp_entry(str(OPUS))
    assert rate == 16000
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert abs(samples.shape[0] - soundfile.info(str(OPUS)).frames) <= 1
    assert 1.0 < samples.shape[0] / rate < 30.0  # a read sentence
    assert 0.001 < np.sqrt(np.mean(samples ** 2)) < 0.5 and np.max(np.abs(samples)) <= 1.0
    # Partial reads (used for long noise recordings) match the whole file.
    part, _ = read_wav_scp_entry(str(OPUS), start=8000, num_frames=4000)
    np.testing.assert_allclose(part, samples[8000:12000], atol=1e-6)


def test_pipe_entries_cat_and_python():
    whole = load_audio(str(OPUS))
    piped = load_audio(f"cat {shlex.quote(str(OPUS))} |")
    np.testing.assert_array_equal(piped, whole)
    tone = load_audio(_wav_stdout_command(16000) + " |", sample_rate=16000)
    assert tone.shape == (16000,)
    assert abs(_dominant_frequency(tone, 16000) - 440) < 2


def _scp(tmp_path: Path, lines: list[str]) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    (data / "wav.scp").write_text("".join(f"{line}\n" for line in lines))
    return data


def test_bad_entries_name_wav_scp_line_and_entry(tmp_path):
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"this is not audio" * 10)
    data = _scp(tmp_path, [f"good {OPUS}", f"missing {tmp_path / 'nope.flac'}", f"broken {garbage}",
                           "failing python3 -c 'import sys; sys.exit(3)' |",
                           "silent true |"])
    resource = Resource(data)
    assert resource.load("good", 16000).shape[0] > 16000
    expected = {"missing": (2, "not found"), "broken": (3, "cannot decode"), "failing": (4, "exit code 3"),
                "silent": (5, "did not produce readable audio")}
    for key, (line, words) in expected.items():
        with pytest.raises(InputError) as info:
            resource.load(key, 16000)
        assert info.value.path == str(data / "wav.scp") and info.value.line == line
        assert f"'{key}'" in str(info.value) and words in str(info.value)
        assert str(info.value).startswith(f"{data / 'wav.scp'}:{line}: ")


def test_load_audio_errors_keep_source_and_line(tmp_path):
    with pytest.raises(InputError) as info:
        load_audio(str(tmp_path / "x.wav"), source="data/train/wav.scp", line=7, key="utt1")
    assert str(info.value).startswith("data/train/wav.scp:7: utterance 'utt1': audio file")
    with pytest.raises(InputError, match="expected at least 100000"):
        load_audio(str(OPUS), min_samples=100000, source="wav.scp", line=1)


def test_segments_are_cut_from_the_recording(tmp_path):
    data = _scp(tmp_path, [f"rec1 {OPUS}"])
    (data / "segments").write_text("rec1-a rec1 0.50 1.00\nrec1-b rec1 1.0 -1\n")
    resource = Resource(data)
    whole = load_audio(str(OPUS))
    np.testing.assert_allclose(resource.load("rec1-a", 16000), whole[8000:16000], atol=1e-6)
    assert resource.load("rec1-b", 16000).shape[0] == whole.shape[0] - 16000
    assert abs(resource.duration("rec1-a") - 0.5) < 1e-9


def test_resample_and_speed_lengths_and_pitch():
    rate, n = 16000, 32000
    sine = (0.5 * np.sin(2 * np.pi * 1000 * np.arange(n) / rate)).astype(np.float32)
    down = resample(sine, rate, 8000)
    assert abs(down.shape[0] - n / 2) <= 1
    assert abs(_dominant_frequency(down, 8000) - 1000) < 3
    for factor in (0.9, 1.1):
        out = speed_perturb(sine, factor, rate)
        assert abs(out.shape[0] - n / factor) <= 2, (factor, out.shape)
        assert abs(_dominant_frequency(out, rate) - 1000 * factor) < 3, factor
    speech = load_audio(str(OPUS), 16000)
    assert abs(speed_perturb(speech, 0.9).shape[0] - speech.shape[0] / 0.9) <= 2
    assert speed_perturb(speech, 1.0) is speech
    with pytest.raises(ValueError):
        speed_perturb(speech, 0.0)


def test_write_audio_flac_and_float_wav(tmp_path):
    speech = load_audio(str(OPUS), 16000)
    write_audio(tmp_path / "a.flac", speech, 16000)
    back, rate = soundfile.read(str(tmp_path / "a.flac"), dtype="float32")
    assert rate == 16000 and back.shape == speech.shape
    assert np.max(np.abs(back - speech)) < 1.0 / 32768 + 1e-6  # 16-bit
    rir = np.array([1.0, 1e-7, -1e-7, 0.5], dtype=np.float32)
    write_audio(tmp_path / "r.wav", rir, 16000, subtype="FLOAT")
    np.testing.assert_array_equal(soundfile.read(str(tmp_path / "r.wav"), dtype="float32")[0], rir)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.flac", "r.wav"]  # no temp files left
