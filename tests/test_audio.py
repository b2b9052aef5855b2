"""Audio I/O on the real corpus: opus files, pipes, errors naming wav.scp, resampling, speed."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import soundfile

from wespeaker_like.audio.io import load_audio, read_wav_scp_entry, resample, speed_perturb, write_audio
from wespeaker_like.audio.source import AudioSource
from wespeaker_like.augment.resources import Resource
from wespeaker_like.errors import InputError
from wespeaker_like.data.scp import read_scp
from wespeaker_like.features.ark import ArkScpWriter

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


def _source_dir(tmp_path: Path, entries: dict, segments: str = "") -> Path:
    data = tmp_path / "src"
    data.mkdir(exist_ok=True)
    (data / "wav.scp").write_text("".join(f"{key} {value}\n" for key, value in sorted(entries.items())))
    if segments:
        (data / "segments").write_text(segments)
    return data


def test_crop_reads_equal_whole_then_slice_for_every_format(tmp_path):
    speech = load_audio(str(OPUS), 16000)
    write_audio(tmp_path / "a.wav", speech, 16000)
    write_audio(tmp_path / "a.flac", speech, 16000)
    with ArkScpWriter(tmp_path / "w.ark", tmp_path / "w.scp") as writer:
        writer.write_wave("other", speech[:999], 16000)
        writer.write_wave("ark", speech, 16000)
    entries = {"wav": tmp_path / "a.wav", "flac": tmp_path / "a.flac", "opus": OPUS,
               "ark": read_scp(tmp_path / "w.scp")["ark"], "pipe": f"cat {shlex.quote(str(OPUS))} |"}
    source = AudioSource.from_data_dir(_source_dir(tmp_path, entries), 16000)
    for utt in entries:
        whole = source.read(utt)
        assert source.num_samples(utt) == whole.shape[0] == speech.shape[0], utt
        assert np.max(np.abs(whole - speech)) <= 1 / 32768 + 1e-7, utt  # 16-bit storage at most
        for start, count in ((0, 400), (12345, 16000), (speech.shape[0] - 3200, 3200)):
            np.testing.assert_array_equal(source.read(utt, start, count), whole[start:start + count], err_msg=utt)
    np.testing.assert_array_equal(source.read("ark"), kaldiio.load_mat(entries["ark"])[1] / 32768)
    with pytest.raises(InputError, match=r"wav.scp:1: utterance 'ark': cannot read samples .* it has"):
        source.read("ark", speech.shape[0] - 10, 11)


def test_wav_crops_read_as_bytes_equal_soundfile(tmp_path):
    """PCM/float WAVs are read without the decoder: the samples must be what libsndfile returns."""
    speech = load_audio(str(OPUS), 16000)[:20000]
    stereo = np.stack([speech, 0.5 * speech[::-1]], axis=1)
    files = {}
    for subtype, audio in (("PCM_16", speech), ("PCM_32", speech), ("FLOAT", speech), ("PCM_16", stereo)):
        files[f"{subtype}_{audio.ndim}"] = path = tmp_path / f"{subtype}_{audio.ndim}.wav"
        soundfile.write(str(path), audio, 16000, subtype=subtype)
    with_list_chunk = bytearray((tmp_path / "PCM_16_1.wav").read_bytes())  # a LIST chunk before 'data'
    assert with_list_chunk[36:40] == b"data"
    with_list_chunk[36:36] = b"LIST\x06\x00\x00\x00INFOab"
    with_list_chunk[4:8] = (len(with_list_chunk) - 8).to_bytes(4, "little")
    files["list"] = tmp_path / "list.wav"
    files["list"].write_bytes(bytes(with_list_chunk))
    source = AudioSource.from_data_dir(_source_dir(tmp_path, files), 16000)
    for utt, path in files.items():
        assert source._info(utt).pcm is not None, utt  # the byte path is the one under test
        expected = soundfile.read(str(path), dtype="float32", always_2d=True)[0].mean(axis=1, dtype=np.float32)
        for start, count in ((0, 20000), (777, 4321), (19999, 1)):
            np.testing.assert_array_equal(source.read(utt, start, count), expected[start:start + count], err_msg=utt)
    files["list"].write_bytes(bytes(with_list_chunk[:-30000]))  # 5000 samples left after the header was read
    with pytest.raises(InputError, match=r"wav.scp:5: utterance 'list': read 1000 samples at 4000 where 5000 were"):
        source.read("list", 4000, 5000)


def test_crops_honour_segments_and_resampling(tmp_path):
    speech = load_audio(str(OPUS), 16000)
    write_audio(tmp_path / "a.wav", speech, 16000)
    data = _source_dir(tmp_path, {"rec": tmp_path / "a.wav"}, "s1 rec 0.5 1.5\ns2 rec 1.0 -1\n")
    source = AudioSource.from_data_dir(data, 16000)
    assert source.utts == ["s1", "s2"] and source.num_samples("s1") == 16000
    np.testing.assert_array_equal(source.read("s1", 100, 800), load_audio(str(tmp_path / "a.wav"))[8100:8900])
    assert source.num_samples("s2") == speech.shape[0] - 16000
    assert source.where("s2") == f"{data / 'wav.scp'}:1 (segments {data / 'segments'}:2)"
    at8k = AudioSource.from_data_dir(data, 8000)
    assert at8k.num_samples("s1") == 8000
    reference = resample(load_audio(str(tmp_path / "a.wav"))[8000:24000], 16000, 8000)
    np.testing.assert_allclose(at8k.read("s1"), reference, atol=1e-6)
    # An interior crop matches the resampled whole up to the filter's edge effects.
    assert np.max(np.abs(at8k.read("s1", 2000, 1000) - reference[2000:3000])) < 2e-3


def _truncated_wav(tmp_path: Path) -> Path:
    write_audio(tmp_path / "full.wav", 0.1 * np.ones(32000, dtype=np.float32), 16000)
    data = (tmp_path / "full.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[:44 + 1000])
    return tmp_path / "cut.wav"


def test_truncated_wav_is_an_error_naming_both_lengths(tmp_path):
    cut = _truncated_wav(tmp_path)
    expected = r" is truncated: its WAV header says 32000 samples \(64000 bytes\) but it holds 500 samples"
    with pytest.raises(InputError, match=r"x.scp:3: utterance 'u': audio file '.*cut.wav'" + expected):
        load_audio(str(cut), source="x.scp", line=3, key="u")
    with pytest.raises(InputError, match=r"pipe 'cat .*cut.wav \|'" + expected):
        load_audio(f"cat {cut} |")
    source = AudioSource.from_data_dir(_source_dir(tmp_path, {"a": cut, "b": f"cat {cut} |"}), 16000)
    for utt in ("a", "b"):
        with pytest.raises(InputError, match=expected):
            source.read(utt, 0, 100)
    with pytest.raises(InputError, match=r"2 bad audio entries:\n  .*wav.scp:1: .*\n  .*wav.scp:2: "):
        source.check(400)
    # A streaming writer's "unknown" size (sox/ffmpeg to a pipe) is not a promise: read what is there.
    streamed = bytearray((tmp_path / "full.wav").read_bytes()[:44 + 1000])
    assert streamed[36:40] == b"data"
    streamed[40:44] = b"\xff\xff\xff\xff"
    (tmp_path / "streamed.wav").write_bytes(bytes(streamed))
    streamed_samples = load_audio(f"cat {tmp_path / 'streamed.wav'} |")
    assert streamed_samples.shape == (500,)
    np.testing.assert_allclose(streamed_samples, 0.1, atol=1e-4)


def test_pipe_failure_upstream_shows_its_stderr(tmp_path):
    entry = f"cat {tmp_path / 'missing.wav'} | cat |"
    with pytest.raises(InputError, match=r"wav.scp:4: .*failed with exit code 1: cat: .*missing.wav: No such file"):
        load_audio(entry, source="wav.scp", line=4)


def test_check_lists_short_and_missing_entries(tmp_path):
    write_audio(tmp_path / "short.wav", np.zeros(300, dtype=np.float32), 16000)
    data = _source_dir(tmp_path, {"a": OPUS, "b": tmp_path / "short.wav", "c": tmp_path / "none.wav"})
    source = AudioSource.from_data_dir(data, 16000)
    with pytest.raises(InputError) as info:
        source.check(400)
    lines = str(info.value).splitlines()
    assert lines[0].endswith("2 bad audio entries:")
    assert lines[1].strip() == f"{data / 'wav.scp'}:2: utterance 'b' has 300 samples; expected at least 400"
    assert lines[2].strip().startswith(f"{data / 'wav.scp'}:3: utterance 'c': audio file") and "not found" in lines[2]
    (data / "wav.scp").write_text(f"a {OPUS}\nb {tmp_path / 'short.wav'}\n")
    AudioSource.from_data_dir(data, 16000).check(300)  # all fine: no error
