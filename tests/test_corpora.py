"""Stage 0-2 of the real corpora on miniature copies with the official layouts (tests/corpora_fixtures.py).

Needs ffmpeg (VoxCeleb2 is AAC): ``apt-get install -y ffmpeg``.
"""

from __future__ import annotations

import http.server
import io
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpora_fixtures as F  # noqa: E402
from conftest import ROOT, run_script  # noqa: E402

from wespeaker_like.audio.io import load_audio  # noqa: E402
from wespeaker_like.bin.download_corpus import main as download_main  # noqa: E402
from wespeaker_like.data.corpora import cnceleb  # noqa: E402
from wespeaker_like.bin.prepare_corpus import main as prepare_main  # noqa: E402
from wespeaker_like.data.corpora import download as D  # noqa: E402
from wespeaker_like.data.corpora.common import m4a_duration  # noqa: E402
from wespeaker_like.data.corpora.ffsvc import parse_name  # noqa: E402
from wespeaker_like.data.kaldi_dir import DataDir  # noqa: E402
from wespeaker_like.errors import InputError  # noqa: E402

def need_ffmpeg():
    if shutil.which("ffmpeg") is None:
        pytest.fail("ffmpeg is not installed: VoxCeleb2 (AAC) needs it; apt-get install -y ffmpeg")


def lines(path: Path):
    return path.read_text(encoding="utf-8").splitlines()


def prep(*args) -> None:
    assert prepare_main([str(a) for a in args]) == 0


def prep_error(capsys, *args) -> str:
    assert prepare_main([str(a) for a in args]) == 1
    return capsys.readouterr().err


# --------------------------------------------------------------------------- VoxCeleb
@pytest.fixture(scope="module")
def vox1(tmp_path_factory):
    root = F.make_voxceleb1(tmp_path_factory.mktemp("c") / "voxceleb1")
    out = root.parent / "data"
    prep("voxceleb1", "--src", root, "--out", out)
    return root, out


def test_voxceleb1_data_dirs(vox1):
    root, out = vox1
    d, t = root / "dev" / "wav", root / "test" / "wav"
    assert lines(out / "vox1_dev" / "wav.scp") == [
        f"id10001-1zcIwhmdeo4-00001 {d}/id10001/1zcIwhmdeo4/00001.wav",
        f"id10001-1zcIwhmdeo4-00002 {d}/id10001/1zcIwhmdeo4/00002.wav",
        f"id10001-7gWzIy6yIIk-00001 {d}/id10001/7gWzIy6yIIk/00001.wav",
        f"id10002-C7k7C-PDvAA-00001 {d}/id10002/C7k7C-PDvAA/00001.wav",
    ]
    assert lines(out / "vox1_dev" / "utt2spk") == [
        "id10001-1zcIwhmdeo4-00001 id10001", "id10001-1zcIwhmdeo4-00002 id10001",
        "id10001-7gWzIy6yIIk-00001 id10001", "id10002-C7k7C-PDvAA-00001 id10002"]
    assert lines(out / "vox1_dev" / "spk2utt") == [
        "id10001 id10001-1zcIwhmdeo4-00001 id10001-1zcIwhmdeo4-00002 id10001-7gWzIy6yIIk-00001",
        "id10002 id10002-C7k7C-PDvAA-00001"]
    assert lines(out / "vox1_dev" / "utt2dur") == [
        "id10001-1zcIwhmdeo4-00001 1.0000", "id10001-1zcIwhmdeo4-00002 1.5000",
        "id10001-7gWzIy6yIIk-00001 0.5000", "id10002-C7k7C-PDvAA-00001 1.0000"]
    assert lines(out / "vox1_test" / "wav.scp") == [
        f"id10270-5r0dWxy17C8-00001 {t}/id10270/5r0dWxy17C8/00001.wav",
        f"id10270-5r0dWxy17C8-00002 {t}/id10270/5r0dWxy17C8/00002.wav",
        f"id10270-x6uYqmx31kE-00001 {t}/id10270/x6uYqmx31kE/00001.wav",
        f"id10271-1gtz-CUIygI-00001 {t}/id10271/1gtz-CUIygI/00001.wav",
    ]
    assert lines(out / "vox1_test" / "utt2dur") == [
        "id10270-5r0dWxy17C8-00001 1.0000", "id10270-5r0dWxy17C8-00002 0.7500",
        "id10270-x6uYqmx31kE-00001 0.5000", "id10271-1gtz-CUIygI-00001 1.2500"]
    both = DataDir.load(out / "vox1")
    both.validate(need=("wav.scp", "utt2dur"))
    assert both.utts == [
            "id10001-1zcIwhmdeo4-00001", "id10001-1zcIwhmdeo4-00002", "id10001-7gWzIy6yIIk-00001",
            "id10002-C7k7C-PDvAA-00001", "id10270-5r0dWxy17C8-00001", "id10270-5r0dWxy17C8-00002",
            "id10270-x6uYqmx31kE-00001", "id10271-1gtz-CUIygI-00001"]


def test_voxceleb1_trials(vox1):
    _, out = vox1
    o = out / "vox1_test" / "trials"
    e = out / "vox1" / "trials"
    assert lines(o / "vox1_O.kaldi") == [
        "id10270-x6uYqmx31kE-00001 id10270-5r0dWxy17C8-00001 target",
        "id10270-x6uYqmx31kE-00001 id10271-1gtz-CUIygI-00001 nontarget",
        "id10270-5r0dWxy17C8-00002 id10270-x6uYqmx31kE-00001 target"]
    assert lines(o / "vox1_O_cleaned.kaldi") == lines(o / "vox1_O.kaldi")[:2]
    assert lines(e / "vox1_E.kaldi") == [
        "id10001-1zcIwhmdeo4-00001 id10001-7gWzIy6yIIk-00001 target",
        "id10001-1zcIwhmdeo4-00002 id10002-C7k7C-PDvAA-00001 nontarget",
        "id10270-5r0dWxy17C8-00001 id10002-C7k7C-PDvAA-00001 nontarget"]
    assert lines(e / "vox1_E_cleaned.kaldi") == lines(e / "vox1_E.kaldi")[:2]
    assert lines(e / "vox1_H.kaldi") == [
        "id10270-5r0dWxy17C8-00002 id10270-x6uYqmx31kE-00001 target",
        "id10001-1zcIwhmdeo4-00001 id10002-C7k7C-PDvAA-00001 nontarget"]
    assert lines(e / "vox1_H_cleaned.kaldi") == lines(e / "vox1_H.kaldi")[:1]


def test_voxceleb_metadata_gives_spk2gender(tmp_path, capsys):
    need_ffmpeg()
    vox1 = F.make_voxceleb1(tmp_path / "voxceleb1")
    F.write_text(vox1 / "vox1_meta.csv", F.VOX1_META)
    prep("voxceleb1", "--src", vox1, "--out", tmp_path / "data", "--trials", "vox1_O")
    assert lines(tmp_path / "data" / "vox1_dev" / "spk2gender") == ["id10001 m", "id10002 m"]
    assert lines(tmp_path / "data" / "vox1_test" / "spk2gender") == ["id10270 f", "id10271 m"]
    assert lines(tmp_path / "data" / "vox1" / "spk2gender") == ["id10001 m", "id10002 m", "id10270 f", "id10271 m"]
    vox2 = F.make_voxceleb2(tmp_path / "voxceleb2")
    (vox2 / "vox2_meta.csv").write_bytes(F.VOX2_META)  # BOM, CRLF, 'id00012 ,n000012 ,m ,dev '
    prep("voxceleb2", "--src", vox2, "--out", tmp_path / "data")
    assert lines(tmp_path / "data" / "vox2_dev" / "spk2gender") == ["id00012 m", "id00015 f"]
    DataDir.load(tmp_path / "data" / "vox2_dev").validate(need=("wav.scp", "spk2gender"))
    # Without the metadata no spk2gender is written; a speaker it lacks, or a bad gender, names the line.
    F.write_text(vox1 / "vox1_meta.csv", F.VOX1_META.replace("id10271\tEd_Westwick\tm", "id10271\tEd_Westwick\tx"))
    err = prep_error(capsys, "voxceleb1", "--src", vox1, "--out", tmp_path / "bad")
    assert f"{vox1}/vox1_meta.csv:6: gender of 'id10271' must be m or f, got 'x'" in err
    F.write_text(vox1 / "vox1_meta.csv", "".join(F.VOX1_META.splitlines(keepends=True)[:5]))
    err = prep_error(capsys, "voxceleb1", "--src", vox1, "--out", tmp_path / "bad")
    assert f"{vox1}/vox1_meta.csv: no line for speaker 'id10271'" in err and not (tmp_path / "bad").exists()
    (vox1 / "vox1_meta.csv").unlink()
    prep("voxceleb1", "--src", vox1, "--out", tmp_path / "plain", "--trials", "vox1_O")
    assert not (tmp_path / "plain" / "vox1_dev" / "spk2gender").exists()


def test_voxceleb2_m4a_pipe_and_convert(tmp_path):
    need_ffmpeg()
    root = F.make_voxceleb2(tmp_path / "voxceleb2")
    aac = root / "dev" / "aac"
    prep("voxceleb2", "--src", root, "--out", tmp_path / "pipe", "--m4a", "pipe")
    pipe = "ffmpeg -nostdin -loglevel error -i {} -f wav -acodec pcm_s16le -ac 1 -ar 16000 - |"
    scp = lines(tmp_path / "pipe" / "vox2_dev" / "wav.scp")
    assert scp == [
        "id00012-21Uxsk56VDQ-00001 " + pipe.format(aac / "id00012/21Uxsk56VDQ/00001.m4a"),
        "id00012-21Uxsk56VDQ-00002 " + pipe.format(aac / "id00012/21Uxsk56VDQ/00002.m4a"),
        "id00015-0fijmz4vTVU-00001 " + pipe.format(aac / "id00015/0fijmz4vTVU/00001.m4a"),
    ]
    assert lines(tmp_path / "pipe" / "vox2_dev" / "utt2spk") == [
        "id00012-21Uxsk56VDQ-00001 id00012", "id00012-21Uxsk56VDQ-00002 id00012", "id00015-0fijmz4vTVU-00001 id00015"]
    durs = [float(line.split()[1]) for line in lines(tmp_path / "pipe" / "vox2_dev" / "utt2dur")]
    assert durs == pytest.approx([1.0, 0.5, 1.5], abs=0.06)  # AAC frames of 1024 samples
    # The pipe decodes to 16 kHz mono audio of that length through the project's reader.
    audio = load_audio(scp[2].split(maxsplit=1)[1], 16000)
    assert abs(len(audio) / 16000 - durs[2]) < 0.07 and np.abs(audio).max() > 0.05
    assert m4a_duration(aac / "id00015/0fijmz4vTVU/00001.m4a") == pytest.approx(durs[2], abs=1e-3)

    prep("voxceleb2", "--src", root, "--out", tmp_path / "conv", "--m4a", "convert", "--wav_dir", tmp_path / "wav")
    assert lines(tmp_path / "conv" / "vox2_dev" / "wav.scp") == [
        f"id00012-21Uxsk56VDQ-00001 {tmp_path}/wav/id00012/21Uxsk56VDQ/00001.wav",
        f"id00012-21Uxsk56VDQ-00002 {tmp_path}/wav/id00012/21Uxsk56VDQ/00002.wav",
        f"id00015-0fijmz4vTVU-00001 {tmp_path}/wav/id00015/0fijmz4vTVU/00001.wav",
    ]
    info = soundfile.info(str(tmp_path / "wav/id00015/0fijmz4vTVU/00001.wav"))
    assert info.samplerate == 16000 and info.channels == 1 and info.subtype == "PCM_16"
    conv = [float(line.split()[1]) for line in lines(tmp_path / "conv" / "vox2_dev" / "utt2dur")]
    assert conv == pytest.approx([1.0, 0.5, 1.5], abs=0.06)


# --------------------------------------------------------------------------- CN-Celeb
@pytest.fixture(scope="module")
def cn(tmp_path_factory):
    return F.make_cnceleb(tmp_path_factory.mktemp("cn"))


def test_cnceleb_train_and_official_concat_enrollment(cn, tmp_path):
    prep("cnceleb", "--src", cn, "--out", tmp_path)
    d1, d2 = cn / "CN-Celeb_flac" / "data", cn / "CN-Celeb2_flac" / "data"
    assert lines(tmp_path / "cnceleb1_dev" / "wav.scp") == [
        f"id00000-singing-01-001 {d1}/id00000/singing-01-001.flac",
        f"id00000-singing-01-002 {d1}/id00000/singing-01-002.flac",
        f"id00000-singing-01-003 {d1}/id00000/singing-01-003.flac",
        f"id00000-speech-01-001 {d1}/id00000/speech-01-001.flac",
        f"id00001-interview-01-001 {d1}/id00001/interview-01-001.flac",
        f"id00001-vlog-01-001 {d1}/id00001/vlog-01-001.flac",
    ]
    assert lines(tmp_path / "cnceleb2" / "wav.scp") == [
        f"id10000-recitation-01-001 {d2}/id10000/recitation-01-001.flac",
        f"id10000-recitation-01-002 {d2}/id10000/recitation-01-002.flac"]
    assert lines(tmp_path / "cnceleb_train" / "spk2utt") == [
        "id00000 id00000-singing-01-001 id00000-singing-01-002 id00000-singing-01-003 id00000-speech-01-001",
        "id00001 id00001-interview-01-001 id00001-vlog-01-001",
        "id10000 id10000-recitation-01-001 id10000-recitation-01-002"]
    assert lines(tmp_path / "cnceleb_train" / "utt2dur") == [
        "id00000-singing-01-001 0.5000", "id00000-singing-01-002 0.5000", "id00000-singing-01-003 1.0000",
        "id00000-speech-01-001 2.0000", "id00001-interview-01-001 1.0000", "id00001-vlog-01-001 0.5000",
        "id10000-recitation-01-001 1.0000", "id10000-recitation-01-002 0.5000"]
    e, t = cn / "CN-Celeb_flac" / "eval" / "enroll", cn / "CN-Celeb_flac" / "eval" / "test"
    assert lines(tmp_path / "cnceleb1_enroll" / "wav.scp") == [
        f"id00800-enroll {e}/id00800-enroll.flac", f"id00801-enroll {e}/id00801-enroll.flac"]
    assert lines(tmp_path / "cnceleb1_enroll" / "utt2spk") == ["id00800-enroll id00800", "id00801-enroll id00801"]
    assert lines(tmp_path / "cnceleb1_test" / "wav.scp") == [
        f"id00800-singing-01-005 {t}/id00800-singing-01-005.flac", f"id00801-vlog-01-002 {t}/id00801-vlog-01-002.flac"]
    assert lines(tmp_path / "cnceleb1_eval" / "utt2dur") == [
        "id00800-enroll 1.2500", "id00800-singing-01-005 0.5000", "id00801-enroll 1.0000", "id00801-vlog-01-002 0.7500"]
    expected_map = ["id00800-enroll id00800-speech-01-001 id00800-speech-01-002",
                    "id00801-enroll id00801-interview-01-001"]
    assert lines(tmp_path / "cnceleb1_eval" / "enroll.map") == expected_map
    assert lines(tmp_path / "cnceleb1_enroll" / "enroll.map") == expected_map
    assert lines(tmp_path / "cnceleb1_eval" / "trials" / "CNC-Eval.kaldi") == [
        "id00800-enroll id00800-singing-01-005 target", "id00800-enroll id00801-vlog-01-002 nontarget",
        "id00801-enroll id00800-singing-01-005 nontarget", "id00801-enroll id00801-vlog-01-002 target"]
    assert not (tmp_path / "cnceleb_train_comb").exists()


def test_cnceleb_rebuilt_concat_and_average_enrollment(cn, tmp_path):
    prep("cnceleb", "--src", cn, "--out", tmp_path / "rebuilt", "--rebuild_enroll", "--no_cn2")
    target = tmp_path / "rebuilt" / "cnceleb1_enroll" / "audio" / "id00800-enroll.flac"
    assert lines(tmp_path / "rebuilt" / "cnceleb1_enroll" / "wav.scp") == [
        f"id00800-enroll {target}",
        f"id00801-enroll {tmp_path}/rebuilt/cnceleb1_enroll/audio/id00801-enroll.flac"]
    # The concatenation equals the official enrollment file sample by sample.
    ours, _ = soundfile.read(str(target), dtype="int16")
    official, _ = soundfile.read(str(cn / "CN-Celeb_flac/eval/enroll/id00800-enroll.flac"), dtype="int16")
    assert len(ours) == 20000 and np.array_equal(ours, official)
    assert not (tmp_path / "rebuilt" / "cnceleb2").exists()
    assert lines(tmp_path / "rebuilt" / "cnceleb_train" / "utt2spk")[-1] == "id00001-vlog-01-001 id00001"

    prep("cnceleb", "--src", cn, "--out", tmp_path / "avg", "--enroll_mode", "average")
    d1 = cn / "CN-Celeb_flac" / "data"
    assert lines(tmp_path / "avg" / "cnceleb1_enroll" / "wav.scp") == [
        f"id00800-speech-01-001 {d1}/id00800/speech-01-001.flac",
        f"id00800-speech-01-002 {d1}/id00800/speech-01-002.flac",
        f"id00801-interview-01-001 {d1}/id00801/interview-01-001.flac"]
    assert lines(tmp_path / "avg" / "cnceleb1_eval" / "utt2spk") == [
        "id00800-singing-01-005 id00800", "id00800-speech-01-001 id00800", "id00800-speech-01-002 id00800",
        "id00801-interview-01-001 id00801", "id00801-vlog-01-002 id00801"]
    assert lines(tmp_path / "avg" / "cnceleb1_eval" / "enroll.map") == [
        "id00800-enroll id00800-speech-01-001 id00800-speech-01-002", "id00801-enroll id00801-interview-01-001"]
    assert lines(tmp_path / "avg" / "cnceleb1_eval" / "trials" / "CNC-Eval.kaldi")[0] == \
        "id00800-enroll id00800-singing-01-005 target"


def test_cnceleb_combine_short_utterances(cn, tmp_path):
    prep("cnceleb", "--src", cn, "--out", tmp_path, "--combine_short", "1.0")
    comb = tmp_path / "cnceleb_train_comb"
    d1, d2 = cn / "CN-Celeb_flac" / "data", cn / "CN-Celeb2_flac" / "data"
    assert lines(comb / "wav.scp") == [
        f"id00000-singing-01-001-cat2 {comb}/audio/id00000/id00000-singing-01-001-cat2.flac",
        f"id00000-singing-01-003 {d1}/id00000/singing-01-003.flac",
        f"id00000-speech-01-001 {d1}/id00000/speech-01-001.flac",
        f"id00001-interview-01-001 {d1}/id00001/interview-01-001.flac",
        f"id00001-vlog-01-001 {d1}/id00001/vlog-01-001.flac",
        f"id10000-recitation-01-001-cat2 {comb}/audio/id10000/id10000-recitation-01-001-cat2.flac",
    ]
    assert lines(comb / "utt2dur") == [
        "id00000-singing-01-001-cat2 1.0000", "id00000-singing-01-003 1.0000", "id00000-speech-01-001 2.0000",
        "id00001-interview-01-001 1.0000", "id00001-vlog-01-001 0.5000", "id10000-recitation-01-001-cat2 1.5000"]
    assert lines(comb / "comb.map")[0] == "id00000-singing-01-001-cat2 id00000-singing-01-001 id00000-singing-01-002"
    assert lines(comb / "comb.map")[-1] == \
        "id10000-recitation-01-001-cat2 id10000-recitation-01-001 id10000-recitation-01-002"
    joined, _ = soundfile.read(str(comb / "audio/id10000/id10000-recitation-01-001-cat2.flac"), dtype="int16")
    a, _ = soundfile.read(str(d2 / "id10000/recitation-01-001.flac"), dtype="int16")
    b, _ = soundfile.read(str(d2 / "id10000/recitation-01-002.flac"), dtype="int16")
    assert np.array_equal(joined, np.concatenate([a, b]))


# --------------------------------------------------------------------------- FFSVC
def test_ffsvc_train_devices_and_dev_trials(tmp_path):
    # FFSVC2020 as extracted (wav/train, wav/dev with <V><SSSS>/<sss><DEVICE><DISTANCE>/ folders) next to
    # the FFSVC2022 dev archive's own dev/ folder of renamed files: two 'dev' folders, told apart by name.
    root = F.make_ffsvc(tmp_path / "ffsvc")
    out = tmp_path / "data"
    prep("ffsvc", "--src", root, "--out", out)
    train = out / "ffsvc_train"
    assert lines(train / "wav.scp") == [
        f"ffsvc0001-F0001_001I1M_1_0001_normal {root}/wav/train/F0001/001I1M/F0001_001I1M_1_0001_normal.wav",
        f"ffsvc0001-T0001_001PCML3M_recorded10_0005_slow "
        f"{root}/supplementary/T0001/001PCML3M/T0001_001PCML3M_recorded10_0005_slow.wav",
        f"ffsvc0002-S0002_002PAD3M_1_0003_fast {root}/wav/dev/S0002/002PAD3M/S0002_002PAD3M_1_0003_fast.wav",
        f"ffsvc0002-T0002_002MIC_Tr2_0004_normal {root}/supplementary/T0002/002MIC/T0002_002MIC_Tr2_0004_normal.wav",
    ]  # F0001_001PCM5M_recorded6_0002_normal (0.5 s) is dropped; the 1.0 s one is kept
    assert lines(train / "utt2spk") == [
        "ffsvc0001-F0001_001I1M_1_0001_normal ffsvc0001", "ffsvc0001-T0001_001PCML3M_recorded10_0005_slow ffsvc0001",
        "ffsvc0002-S0002_002PAD3M_1_0003_fast ffsvc0002", "ffsvc0002-T0002_002MIC_Tr2_0004_normal ffsvc0002"]
    assert lines(train / "utt2dev") == [
        "ffsvc0001-F0001_001I1M_1_0001_normal I", "ffsvc0001-T0001_001PCML3M_recorded10_0005_slow PCM",
        "ffsvc0002-S0002_002PAD3M_1_0003_fast PAD", "ffsvc0002-T0002_002MIC_Tr2_0004_normal MIC"]
    assert lines(train / "utt2dur") == [
        "ffsvc0001-F0001_001I1M_1_0001_normal 1.5000", "ffsvc0001-T0001_001PCML3M_recorded10_0005_slow 2.0000",
        "ffsvc0002-S0002_002PAD3M_1_0003_fast 1.0000", "ffsvc0002-T0002_002MIC_Tr2_0004_normal 1.2500"]
    dev = out / "ffsvc2022_dev"
    assert lines(dev / "wav.scp") == [
        f"ffsvc0101-ffsvc22_dev_000000 {root}/dev/ffsvc22_dev_000000.wav",
        f"ffsvc0101-ffsvc22_dev_000001 {root}/dev/ffsvc22_dev_000001.wav",
        f"ffsvc0202-ffsvc22_dev_000002 {root}/dev/ffsvc22_dev_000002.wav"]
    assert lines(dev / "utt2dev") == [
        "ffsvc0101-ffsvc22_dev_000000 I", "ffsvc0101-ffsvc22_dev_000001 PAD", "ffsvc0202-ffsvc22_dev_000002 I"]
    assert lines(dev / "trials" / "ffsvc2022_dev.kaldi") == [
        "ffsvc0101-ffsvc22_dev_000000 ffsvc0101-ffsvc22_dev_000001 target",
        "ffsvc0101-ffsvc22_dev_000000 ffsvc0202-ffsvc22_dev_000002 nontarget"]
    prep("ffsvc", "--src", root, "--out", tmp_path / "dd", "--device_label", "device_distance", "--min_duration", "0")
    assert [line.split()[1] for line in lines(tmp_path / "dd" / "ffsvc_train" / "utt2dev")] == [
        "I_1M", "PCM_5M", "PCM_L3M", "PAD_3M", "MIC"]
    assert [line.split()[1] for line in lines(tmp_path / "dd" / "ffsvc2022_dev" / "utt2dev")] == [
        "I_1M", "PAD_5M", "I_L3M"]


def test_ffsvc_sets_and_lists_found_at_any_depth(tmp_path):
    """The archives extracted one level down each (FFSVC2020 in its own folder, the 2022 dev set and its
    two lists in another), the FFSVC2020 evaluation set beside them: same data dirs, eval left alone."""
    flat = F.make_ffsvc(tmp_path / "flat")
    prep("ffsvc", "--src", flat, "--out", tmp_path / "a")
    root = tmp_path / "nested"
    shutil.copytree(flat / "wav", root / "ffsvc2020_data" / "wav")
    shutil.copytree(flat / "supplementary", root / "ffsvc2020_data" / "supplementary")
    for name in ("dev", "dev_meta_list", "trials_dev_keys"):
        (shutil.copytree if name == "dev" else shutil.copy)(flat / name, root / "Dev_Test_FFSVC2022" / name)
    F.write(root / "ffsvc2020_data" / "wav" / "eval" / "eval_000001.wav", 1.0)
    prep("ffsvc", "--src", root, "--out", tmp_path / "b")
    for name in ("ffsvc_train/utt2spk", "ffsvc_train/utt2dev", "ffsvc2022_dev/utt2spk",
                 "ffsvc2022_dev/trials/ffsvc2022_dev.kaldi"):
        assert lines(tmp_path / "b" / name) == lines(tmp_path / "a" / name)
    assert lines(tmp_path / "b" / "ffsvc2022_dev" / "wav.scp")[0] == \
        f"ffsvc0101-ffsvc22_dev_000000 {root}/Dev_Test_FFSVC2022/dev/ffsvc22_dev_000000.wav"


def test_ffsvc_name_parsing():
    assert parse_name("T0549_549PCM5M_recorded6_0305_normal") == ("ffsvc0549", "PCM")
    assert parse_name("F0101_101I0.25M_1_0001_normal", "device_distance") == ("ffsvc0101", "I_0.25M")
    with pytest.raises(InputError, match="does not follow the FFSVC pattern"):
        parse_name("0549_recorded.wav", source="x.wav")
    with pytest.raises(InputError, match="unknown device code"):
        parse_name("T0549_549XYZ5M_1_0305_normal")
    with pytest.raises(InputError, match="expected one of PCM, PAD, MIC, I followed"):
        parse_name("T0549_549A5M_1_0305_normal")  # no Android code 'A' in the released names


# --------------------------------------------------------------------------- MUSAN / RIRS_NOISES
def test_musan_and_rirs_resources(tmp_path):
    musan = F.make_musan(tmp_path / "musan")
    rirs = F.make_rirs_noises(tmp_path / "RIRS_NOISES")
    out = tmp_path / "data"
    prep("musan", "--src", musan, "--out", out)
    prep("rirs_noises", "--src", rirs, "--out", out)
    assert lines(out / "musan" / "music" / "wav.scp") == [
        f"music-fma-0000 {musan}/music/fma/music-fma-0000.wav", f"music-fma-0001 {musan}/music/fma/music-fma-0001.wav"]
    assert lines(out / "musan" / "noise" / "utt2dur") == ["noise-free-sound-0000 1.0000", "noise-sound-bible-0000 0.5000"]
    assert lines(out / "musan" / "speech" / "wav.scp") == [
        f"speech-librivox-0000 {musan}/speech/librivox/speech-librivox-0000.wav",
        f"speech-us-gov-0000 {musan}/speech/us-gov/speech-us-gov-0000.wav"]
    assert lines(out / "musan" / "speech" / "utt2spk") == [
        "speech-librivox-0000 speech-librivox-0000", "speech-us-gov-0000 speech-us-gov-0000"]
    assert lines(out / "rirs_noises" / "simulated" / "wav.scp") == [
        f"large-Room003-00001 {rirs}/simulated_rirs/largeroom/Room003/Room003-00001.wav",
        f"large-Room003-00002 {rirs}/simulated_rirs/largeroom/Room003/Room003-00002.wav",
        f"medium-Room002-00001 {rirs}/simulated_rirs/mediumroom/Room002/Room002-00001.wav",
        f"medium-Room002-00002 {rirs}/simulated_rirs/mediumroom/Room002/Room002-00002.wav",
        f"small-Room001-00001 {rirs}/simulated_rirs/smallroom/Room001/Room001-00001.wav",
        f"small-Room001-00002 {rirs}/simulated_rirs/smallroom/Room001/Room001-00002.wav"]
    real = f"air_type1_air_binaural_stairway_1_1_90 {rirs}/real_rirs_isotropic_noises/{F.REAL_RIR}.wav"
    assert lines(out / "rirs_noises" / "real" / "wav.scp") == [real]
    assert lines(out / "rirs_noises" / "rirs" / "wav.scp") == [real] + lines(out / "rirs_noises" / "simulated" / "wav.scp")
    assert lines(out / "rirs_noises" / "rirs" / "utt2dur")[0] == "air_type1_air_binaural_stairway_1_1_90 0.5000"
    # Usable by stage 2 as they are.
    from wespeaker_like.augment.resources import Resource
    assert len(Resource(out / "rirs_noises" / "rirs").load("small-Room001-00001", 16000)) == 4000
    prep("musan", "--src", musan, "--out", tmp_path / "novocals", "--categories", "music", "--no_music_vocals")
    assert lines(tmp_path / "novocals" / "musan" / "music" / "utt2spk") == ["music-fma-0000 music-fma-0000"]


# --------------------------------------------------------------------------- input checks
def test_prep_errors_name_the_path(tmp_path, capsys, vox1, cn):
    root, _ = vox1
    err = prep_error(capsys, "voxceleb1", "--src", tmp_path / "nowhere", "--out", tmp_path / "o")
    assert f"{tmp_path}/nowhere: directory not found (expected the VoxCeleb1 root" in err
    # Unexpected layout: a file directly under the speaker directory.
    bad = tmp_path / "bad"
    shutil.copytree(root, bad)
    F.write(bad / "dev" / "wav" / "id10001" / "00009.wav", 0.5)
    err = prep_error(capsys, "voxceleb1", "--src", bad, "--out", tmp_path / "o")
    assert f"{bad}/dev/wav/id10001/00009.wav: unexpected layout: expected VoxCeleb1 dev audio" in err
    (bad / "dev" / "wav" / "id10001" / "00009.wav").unlink()
    # A speaker in both dev and test.
    shutil.copytree(bad / "dev" / "wav" / "id10002", bad / "test" / "wav" / "id10002")
    err = prep_error(capsys, "voxceleb1", "--src", bad, "--out", tmp_path / "o")
    assert f"{bad}/test/wav: speaker 'id10002' is also in the training data" in err
    shutil.rmtree(bad / "test" / "wav" / "id10002")
    # A trial naming an utterance that does not exist.
    with open(bad / "veri_test2.txt", "a") as handle:
        handle.write("1 id10270/x6uYqmx31kE/00001.wav id10270/x6uYqmx31kE/00099.wav\n")
    err = prep_error(capsys, "voxceleb1", "--src", bad, "--out", tmp_path / "o")
    assert f"{bad}/veri_test2.txt:3: trial names utterance 'id10270-x6uYqmx31kE-00099'" in err
    (bad / "veri_test2.txt").unlink()
    err = prep_error(capsys, "voxceleb1", "--src", bad, "--out", tmp_path / "o")
    assert f"{bad}/veri_test2.txt: file not found (expected the official VoxCeleb1 trial list" in err
    assert not (tmp_path / "o").exists()  # nothing written before the checks pass


def test_cnceleb_and_resource_errors(tmp_path, capsys, cn):
    bad = tmp_path / "cn"
    shutil.copytree(cn, bad)
    lists = bad / "CN-Celeb_flac" / "eval" / "lists"
    # An evaluation speaker listed for training.
    (bad / "CN-Celeb_flac" / "dev" / "dev.lst").write_text("id00000\nid00001\nid00800\n")
    err = prep_error(capsys, "cnceleb", "--src", bad, "--out", tmp_path / "o")
    assert "speaker 'id00800' is also in the training data" in err and "dev.lst" in err
    (bad / "CN-Celeb_flac" / "dev" / "dev.lst").write_text("id00000\nid00001\nid00005\n")
    err = prep_error(capsys, "cnceleb", "--src", bad, "--out", tmp_path / "o")
    assert (f"{bad}/CN-Celeb_flac/dev/dev.lst: speaker 'id00005' has no directory {bad}/CN-Celeb_flac/data/id00005"
            in err)
    (bad / "CN-Celeb_flac" / "dev" / "dev.lst").write_text("id00000\nid00001\n")
    # Duplicate speaker across CN-Celeb1 dev and CN-Celeb2.
    (bad / "CN-Celeb2_flac" / "spk.lst").write_text("id10000\nid10000\n")
    err = prep_error(capsys, "cnceleb", "--src", bad, "--out", tmp_path / "o")
    assert f"{bad}/CN-Celeb2_flac/spk.lst:2: duplicate speaker 'id10000'" in err
    (bad / "CN-Celeb2_flac" / "spk.lst").write_text("id10000\n")
    # Trials naming an enrollment id missing from enroll.map, and a test file that does not exist.
    (lists / "trials.lst").write_text(F.CN_TRIALS + "id00802-enroll test/id00801-vlog-01-002.wav 0\n")
    err = prep_error(capsys, "cnceleb", "--src", bad, "--out", tmp_path / "o")
    assert f"{lists}/trials.lst:5: enrollment id 'id00802-enroll' is not in enroll.map" in err
    (lists / "trials.lst").write_text(F.CN_TRIALS + "id00800-enroll test/id00801-vlog-01-009.wav 0\n")
    err = prep_error(capsys, "cnceleb", "--src", bad, "--out", tmp_path / "o")
    assert f"{lists}/trials.lst:5: trial names utterance 'id00801-vlog-01-009'" in err
    (lists / "enroll.map").write_text("id00800-enroll id00800/speech-01-009.wav\n")
    err = prep_error(capsys, "cnceleb", "--src", bad, "--out", tmp_path / "o")
    assert f"{lists}/enroll.map:1: 'id00800/speech-01-009.wav' names no audio file" in err
    # MUSAN: the same file name in two subsets is a duplicate id.
    musan = F.make_musan(tmp_path / "musan")
    F.write(musan / "noise" / "sound-bible" / "noise-free-sound-0000.wav", 0.5)
    err = prep_error(capsys, "musan", "--src", musan, "--out", tmp_path / "o")
    assert "duplicate utterance id 'noise-free-sound-0000'" in err
    rirs = F.make_rirs_noises(tmp_path / "RIRS_NOISES")
    (rirs / "simulated_rirs" / "mediumroom" / "rir_list").unlink()
    err = prep_error(capsys, "rirs_noises", "--src", rirs, "--out", tmp_path / "o")
    assert f"{rirs}/simulated_rirs/mediumroom/rir_list: file not found" in err
    ff = F.make_ffsvc(tmp_path / "ffsvc")
    F.write(ff / "wav" / "train" / "F0001" / "recording-7.wav", 1.0)
    err = prep_error(capsys, "ffsvc", "--src", ff, "--out", tmp_path / "o")
    assert f"{ff}/wav/train/F0001/recording-7.wav: file name 'recording-7' does not follow the FFSVC pattern" in err
    (ff / "wav" / "train" / "F0001" / "recording-7.wav").unlink()
    shutil.copy(ff / "dev" / "ffsvc22_dev_000001.wav", ff / "wav" / "dev" / "S0002" / "S0101_101I1M_1_0009_normal.wav")
    err = prep_error(capsys, "ffsvc", "--src", ff, "--out", tmp_path / "o")
    assert f"{ff}/dev: speaker 'ffsvc0101' is also in the training data" in err
    (ff / "wav" / "dev" / "S0002" / "S0101_101I1M_1_0009_normal.wav").unlink()
    (ff / "dev" / "ffsvc22_dev_000002.wav").rename(ff / "dev" / "ffsvc22_dev_000009.wav")
    err = prep_error(capsys, "ffsvc", "--src", ff, "--out", tmp_path / "o")
    assert f"{ff}/dev_meta_list: no line for 'ffsvc22_dev_000009'" in err
    shutil.copy(ff / "dev_meta_list", ff / "wav" / "dev_meta_list")
    (ff / "dev_meta_list").unlink()
    shutil.rmtree(ff / "wav" / "train")
    err = prep_error(capsys, "ffsvc", "--src", ff, "--out", tmp_path / "o")
    assert f"{ff}: no FFSVC2020 train audio found" in err


# --------------------------------------------------------------------------- stage 0
class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with HTTP Range support; records request paths and Range headers."""

    requests = []
    honour_range = True

    def log_message(self, *args):
        pass

    def do_GET(self):
        path = Path(self.translate_path(self.path))
        RangeHandler.requests.append((self.path, self.headers.get("Range")))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        rng = self.headers.get("Range")
        if rng and RangeHandler.honour_range:
            start = int(rng.split("=")[1].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            data = data[start:]
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()

    def handler(*args, **kwargs):
        return RangeHandler(*args, directory=str(root), **kwargs)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    RangeHandler.requests = []
    RangeHandler.honour_range = True
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_download_resume_md5_and_skip(server, tmp_path):
    www, url = server
    payload = os.urandom(300_000)
    (www / "a.bin").write_bytes(payload)
    good = F.md5(www / "a.bin")
    dest = tmp_path / "dl" / "a.bin"
    dest.parent.mkdir()
    (dest.parent / "a.bin.part").write_bytes(payload[:100_000])  # an interrupted earlier download
    D.download(f"{url}/a.bin", dest, good)
    assert dest.read_bytes() == payload and RangeHandler.requests == [("/a.bin", "bytes=100000-")]
    D.download(f"{url}/a.bin", dest, good)  # complete: no request
    assert len(RangeHandler.requests) == 1 and (dest.parent / "a.bin.md5").read_text().split()[0] == good
    # A server ignoring Range: the download restarts from zero.
    RangeHandler.honour_range = False
    other = tmp_path / "dl" / "b.bin"
    (tmp_path / "dl" / "b.bin.part").write_bytes(b"garbage")
    D.download(f"{url}/a.bin", other, good)
    assert other.read_bytes() == payload
    with pytest.raises(InputError, match="downloaded file has MD5 .* expected 0+"):
        D.download(f"{url}/a.bin", tmp_path / "dl" / "c.bin", "0" * 32)
    assert not (tmp_path / "dl" / "c.bin.part").exists()
    with pytest.raises(InputError, match="server answered 404"):
        D.download(f"{url}/missing.bin", tmp_path / "dl" / "m.bin")
    D.download((www / "a.bin").as_uri(), tmp_path / "dl" / "f.bin", good)  # file:// URL
    assert (tmp_path / "dl" / "f.bin").read_bytes() == payload


def test_fetch_archive_parts_archives_dir_and_extract(server, tmp_path):
    www, url = server
    src = tmp_path / "tree"
    F.write(src / "wav" / "id10001" / "v" / "00001.wav", 0.1)
    whole = F._zip(src / "wav", www / "x.zip", src)
    whole_md5 = F.md5(whole)
    parts = F._split(whole, ["x_partaa", "x_partab"])
    part_md5 = {p.name: F.md5(p) for p in parts}
    archive = D.Archive("x.zip", md5=whole_md5, parts=("x_partaa", "x_partab"), part_md5=part_md5, extract_to="c/dev")
    dest = D.fetch_archive(archive, tmp_path / "corpus", tmp_path / "dl", base_url=url)
    assert (dest / "wav" / "id10001" / "v" / "00001.wav").is_file()
    assert sorted(p for p, _ in RangeHandler.requests) == ["/x_partaa", "/x_partab"]
    D.fetch_archive(archive, tmp_path / "corpus", tmp_path / "dl", base_url=url)  # marker: skipped
    assert len(RangeHandler.requests) == 2
    # Parts already on disk: used in place, nothing requested, nothing copied.
    on_disk = tmp_path / "ondisk"
    on_disk.mkdir()
    for p in parts:
        shutil.copy(p, on_disk / p.name)
    D.fetch_archive(archive, tmp_path / "corpus2", tmp_path / "dl2", archives_dir=on_disk, base_url=url)
    assert len(RangeHandler.requests) == 2 and (tmp_path / "corpus2" / "c/dev/wav/id10001/v/00001.wav").is_file()
    assert not (tmp_path / "dl2" / "x_partaa").exists()
    # A corrupt part on disk stops with its path and both sums.
    (on_disk / "x_partab").write_bytes(b"corrupt")
    with pytest.raises(InputError, match=f"{on_disk}/x_partab: MD5 mismatch: expected {part_md5['x_partab']}"):
        D.fetch_archive(archive, tmp_path / "corpus3", tmp_path / "dl3", archives_dir=on_disk)
    # No URL and no archive: says where it looked.
    with pytest.raises(InputError, match="archive 'y.zip' not found"):
        D.fetch_archive(D.Archive("y.zip"), tmp_path / "corpus4", tmp_path / "dl4")
    # Members escaping the destination are refused.
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("../outside.txt", "x")
    with pytest.raises(InputError, match="would be written outside"):
        D.extract(evil, tmp_path / "e")
    sums = tmp_path / "sums.txt"
    sums.write_text(f"{whole_md5}  x.zip\n{'a' * 32} *x_partaa\n")
    assert D.read_checksums(sums) == {"x.zip": whole_md5, "x_partaa": "a" * 32}


def test_cnceleb2_downloads_the_published_part_names(server, tmp_path):
    """OpenSLR 82 publishes cn-celeb2_v2.tar.gzaa/ab/ac (each with an MD5); stage 0 fetches exactly those."""
    www, url = server
    sums = F.make_archives(tmp_path / "work", www, corpora=("cnceleb",))
    assert sorted(sums) == ["cn-celeb2_v2.tar.gz", "cn-celeb2_v2.tar.gzaa", "cn-celeb2_v2.tar.gzab",
                            "cn-celeb2_v2.tar.gzac", "cn-celeb_v2.tar.gz"]
    assert cnceleb.ARCHIVES[1].part_md5 == {"cn-celeb2_v2.tar.gzaa": "4cdf738cff565ce35ad34274848659c3",
                                            "cn-celeb2_v2.tar.gzab": "4ff59a7009b79ef7043498ad3882b81b",
                                            "cn-celeb2_v2.tar.gzac": "3aa8e6e7f7ec4382f9926b1b31498228"}
    D.fetch_all(cnceleb.ARCHIVES, tmp_path / "corpus", tmp_path / "dl", base_url=url, checksums=sums)
    assert sorted(path for path, _ in RangeHandler.requests) == [
        "/cn-celeb2_v2.tar.gzaa", "/cn-celeb2_v2.tar.gzab", "/cn-celeb2_v2.tar.gzac", "/cn-celeb_v2.tar.gz"]
    assert lines(tmp_path / "corpus" / "CN-Celeb2_flac" / "spk.lst") == ["id10000"]
    # Without the test's sums the published ones apply (and reject the miniature parts).
    with pytest.raises(InputError, match=f"{www}/cn-celeb2_v2.tar.gzaa: MD5 mismatch: expected 4cdf738c"):
        D.fetch_archive(cnceleb.ARCHIVES[1], tmp_path / "c2", tmp_path / "dl2", archives_dir=www)
    # A missing part is named as published.
    (www / "cn-celeb2_v2.tar.gzab").unlink()
    with pytest.raises(InputError, match="archive 'cn-celeb2_v2.tar.gzab' not found"):
        D.fetch_archive(cnceleb.ARCHIVES[1], tmp_path / "c3", tmp_path / "dl3", archives_dir=www, checksums=sums)


def _tar_member(archive: tarfile.TarFile, name: str, kind: bytes, mode: int, data: bytes = b"") -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size = kind, mode, len(data)
    archive.addfile(info, io.BytesIO(data) if data else None)


def test_extraction_keeps_regular_files_and_directories_only(tmp_path):
    good = tmp_path / "good.tar.gz"
    with tarfile.open(good, "w:gz") as archive:
        _tar_member(archive, "musan", tarfile.DIRTYPE, 0o1777)
        _tar_member(archive, "musan/README", tarfile.REGTYPE, 0o6777, b"setuid, setgid, world-writable")
    D.extract(good, tmp_path / "out")
    for rel in ("musan", "musan/README"):
        mode = (tmp_path / "out" / rel).stat().st_mode
        assert mode & (stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX | stat.S_IWGRP | stat.S_IWOTH) == 0, (rel, oct(mode))
    assert (tmp_path / "out" / "musan" / "README").read_bytes() == b"setuid, setgid, world-writable"
    for kind, what in ((tarfile.CHRTYPE, "character device"), (tarfile.FIFOTYPE, "FIFO")):
        bad = tmp_path / f"bad{what[0]}.tar"
        with tarfile.open(bad, "w") as archive:
            _tar_member(archive, "musan/README", tarfile.REGTYPE, 0o644, b"ok")
            _tar_member(archive, "musan/node", kind, 0o666)
        with pytest.raises(InputError, match=f"{bad}: member 'musan/node' is a {what}, not a regular file"):
            D.extract(bad, tmp_path / f"x{what[0]}")
        assert not (tmp_path / f"x{what[0]}" / "musan").exists()  # refused before anything is written
    link = tmp_path / "link.zip"
    with zipfile.ZipFile(link, "w") as archive:
        entry = zipfile.ZipInfo("RIRS_NOISES/passwd")
        entry.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(entry, "/etc/passwd")
    with pytest.raises(InputError, match="member 'RIRS_NOISES/passwd' is a symbolic link"):
        D.extract(link, tmp_path / "z")


def make_hand_extracted(corpus: Path) -> None:
    """Every downloadable corpus unpacked by hand in the layout its archives extract to."""
    F.make_voxceleb1(corpus / "voxceleb1")  # dev/wav, test/wav and the six trial lists
    F.make_voxceleb2(corpus / "voxceleb2")  # dev/aac
    F.make_cnceleb(corpus)                  # CN-Celeb_flac/, CN-Celeb2_flac/
    F.make_musan(corpus / "musan")
    F.make_rirs_noises(corpus / "RIRS_NOISES")


def test_stage0_recognises_hand_extracted_corpora(tmp_path, capsys):
    need_ffmpeg()
    corpus = tmp_path / "corpus"
    make_hand_extracted(corpus)
    nowhere = "http://127.0.0.1:9"  # any download attempt would fail
    corpora = ["voxceleb1", "voxceleb2", "cnceleb", "musan", "rirs_noises"]
    assert download_main([*corpora, "--corpus_dir", str(corpus), "--base_url", nowhere]) == 0
    out = capsys.readouterr().out
    for name in ("vox1_dev_wav.zip", "vox1_test_wav.zip", "vox2_aac.zip", "cn-celeb_v2.tar.gz", "cn-celeb2_v2.tar.gz",
                 "musan.tar.gz", "rirs_noises.zip"):
        assert f"{name}: found in its official extracted layout" in out
    assert "downloading" not in out and not (corpus / "archives").exists()
    # Partial copies stop with what is missing, before any download.
    shutil.rmtree(corpus / "voxceleb1" / "test" / "wav")
    assert download_main(["voxceleb1", "--corpus_dir", str(corpus), "--base_url", nowhere]) == 1
    err = capsys.readouterr().err
    assert (f"{corpus}: holds vox1_dev_wav.zip extracted by hand but not vox1_test_wav.zip: "
            f"missing {corpus}/voxceleb1/test/wav/") in err
    shutil.rmtree(corpus / "musan" / "music")
    assert download_main(["musan", "--corpus_dir", str(corpus), "--base_url", nowhere]) == 1
    assert f"holds part of the extracted musan.tar.gz but not {corpus}/musan/music/" in capsys.readouterr().err
    (corpus / "musan" / "music").mkdir()  # the folder without its files
    assert download_main(["musan", "--corpus_dir", str(corpus), "--base_url", nowhere]) == 1
    assert f"but not {corpus}/musan/music/*/music-*.wav" in capsys.readouterr().err
    (corpus / "CN-Celeb_flac" / "eval" / "lists" / "trials.lst").unlink()
    assert download_main(["cnceleb", "--corpus_dir", str(corpus), "--base_url", nowhere]) == 1
    assert (f"{corpus}: holds part of the extracted cn-celeb_v2.tar.gz but not "
            f"{corpus}/CN-Celeb_flac/eval/lists/trials.lst") in capsys.readouterr().err
    # A partial tree left by a killed extraction of our own is extracted again, not refused.
    arch = tmp_path / "archives"
    md5s = F.write_checksums(tmp_path / "md5.txt", F.make_archives(tmp_path / "work", arch, corpora=("musan",)))
    (corpus / ".musan.tar.gz.extracting").write_text("musan.tar.gz\n")
    assert download_main(["musan", "--corpus_dir", str(corpus), "--archives_dir", str(arch),
                          "--checksums", str(md5s)]) == 0
    assert (corpus / ".musan.tar.gz.extracted").is_file() and not (corpus / ".musan.tar.gz.extracting").exists()
    assert sorted(p.name for p in (corpus / "musan" / "music").rglob("*.wav")) == ["music-fma-0000.wav",
                                                                                  "music-fma-0001.wav"]


# --------------------------------------------------------------------------- recipes, stages 0-2
@pytest.fixture(scope="module")
def archives(tmp_path_factory):
    need_ffmpeg()
    base = tmp_path_factory.mktemp("arch")
    sums = F.make_archives(base / "work", base / "archives")
    F.write_checksums(base / "archives" / "md5.txt", sums)
    return base / "archives", base / "corpus"


def run_recipe(recipe: str, cwd: Path, *args) -> str:
    return run_script(["bash", ROOT / "egs" / recipe / "run.sh", "--nj", "1", *args], cwd, timeout=300).stdout


def test_recipe_voxceleb_v2_stages_0_to_2(archives, tmp_path):
    arch, corpus = archives
    run_recipe("voxceleb/v2", ROOT, "--stage", "0", "--stop-stage", "2", "--corpus_dir", corpus,
               "--archives_dir", arch, "--checksums", arch / "md5.txt", "--data", tmp_path / "data",
               "--aug_types", "reverb,noise,music,babble", "--aug_num_utts", "2")
    data = tmp_path / "data"
    assert lines(data / "vox1_test" / "trials" / "vox1_O.kaldi")[0] == \
        "id10270-x6uYqmx31kE-00001 id10270-5r0dWxy17C8-00001 target"
    assert lines(data / "vox2_dev" / "wav.scp")[0].startswith(
        f"id00012-21Uxsk56VDQ-00001 ffmpeg -nostdin -loglevel error -i {corpus}/voxceleb2/dev/aac/id00012/")
    for d in ("vox1_dev", "vox1", "vox2_dev", "musan/noise", "musan/music", "musan/speech", "rirs_noises/rirs",
              "vox2_dev_aug", "vox2_dev_combined"):
        DataDir.load(data / d).validate()
    assert len(lines(data / "vox2_dev_aug" / "wav.scp")) == 2
    assert len(lines(data / "vox2_dev_combined" / "utt2spk")) == 5


def test_recipe_cnceleb_v2_stages_0_to_2_from_its_dir(archives, tmp_path):
    arch, corpus = archives
    recipe = ROOT / "egs" / "cnceleb" / "v2"
    # Relative options are taken from where the recipe is run (here: its own directory).
    rel_data = os.path.relpath(tmp_path / "data", recipe)
    run_recipe("cnceleb/v2", recipe, "--corpus_dir", corpus, "--archives_dir", arch,
               "--checksums", arch / "md5.txt", "--data", rel_data, "--enroll_mode", "average",
               "--combine_short", "1", "--train_set", "cnceleb_train_comb", "--aug_types", "noise,reverb",
               "--aug_num_utts", "2")
    data = tmp_path / "data"
    assert lines(data / "cnceleb1_eval" / "trials" / "CNC-Eval.kaldi")[3] == "id00801-enroll id00801-vlog-01-002 target"
    assert len(lines(data / "cnceleb1_enroll" / "wav.scp")) == 3
    assert len(lines(data / "cnceleb_train_comb" / "wav.scp")) == 6
    DataDir.load(data / "cnceleb_train_comb_aug").validate()
    assert all(line.split()[1].startswith("/") for line in lines(data / "cnceleb1_test" / "wav.scp"))


def test_recipe_ffsvc2022_club_stages_0_to_2(archives, tmp_path):
    arch, corpus = archives
    ffsvc = F.make_ffsvc(tmp_path / "ffsvc")
    run_recipe("ffsvc2022/club", ROOT, "--corpus_dir", corpus, "--ffsvc_dir", ffsvc, "--archives_dir", arch,
               "--checksums", arch / "md5.txt", "--data", tmp_path / "data", "--aug_types", "music",
               "--aug_num_utts", "1", "--stop-stage", "2")
    data = tmp_path / "data"
    assert lines(data / "ffsvc2022_dev" / "trials" / "ffsvc2022_dev.kaldi")[0] == \
        "ffsvc0101-ffsvc22_dev_000000 ffsvc0101-ffsvc22_dev_000001 target"
    aug = DataDir.load(data / "ffsvc_train_aug")
    aug.validate()
    assert set(aug["utt2dev"].values()) <= {"I", "PAD", "PCM", "MIC"}
    for d in ("vox1_dev", "vox2_dev", "ffsvc_train"):
        DataDir.load(data / d).validate()
    # FFSVC has no download: a missing FFSVC dir stops stage 0 with the expected layout.
    proc = subprocess.run(["bash", str(ROOT / "egs/ffsvc2022/club/run.sh"), "--stop-stage", "0",
                           "--ffsvc_dir", tmp_path / "none", "--corpus_dir", corpus],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and f"FFSVC not found at {tmp_path}/none" in proc.stderr
