"""Miniature copies of the real corpora, with the official directory layouts, file naming and
list formats (a few speakers and utterances each, audio generated here).

Each ``make_*`` builds the extracted corpus under ``root`` and returns it; ``make_archives``
packs the same trees into the official archive names (parts included) for stage-0 tests.
Durations are exact sample counts at 16 kHz so the tests can state utt2dur line by line.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path
from typing import Dict, List

import numpy as np
import soundfile

RATE = 16000


def tone(seconds: float, seed: int = 0) -> np.ndarray:
    """Deterministic noise-like audio of exactly ``seconds`` at 16 kHz."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * RATE))
    t = np.arange(n) / RATE
    return (0.2 * np.sin(2 * np.pi * (200 + 50 * seed) * t) + 0.02 * rng.standard_normal(n)).astype(np.float32)


def write(path: Path, seconds: float, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), tone(seconds, seed), RATE, subtype="PCM_16")
    return path


def write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- VoxCeleb
VOX1_DEV = {"id10001/1zcIwhmdeo4/00001.wav": 1.0, "id10001/1zcIwhmdeo4/00002.wav": 1.5,
            "id10001/7gWzIy6yIIk/00001.wav": 0.5, "id10002/C7k7C-PDvAA/00001.wav": 1.0}
VOX1_TEST = {"id10270/5r0dWxy17C8/00001.wav": 1.0, "id10270/5r0dWxy17C8/00002.wav": 0.75,
             "id10270/x6uYqmx31kE/00001.wav": 0.5, "id10271/1gtz-CUIygI/00001.wav": 1.25}
VOX1_TRIALS = {
    "veri_test.txt": "1 id10270/x6uYqmx31kE/00001.wav id10270/5r0dWxy17C8/00001.wav\n"
                     "0 id10270/x6uYqmx31kE/00001.wav id10271/1gtz-CUIygI/00001.wav\n"
                     "1 id10270/5r0dWxy17C8/00002.wav id10270/x6uYqmx31kE/00001.wav\n",
    "veri_test2.txt": "1 id10270/x6uYqmx31kE/00001.wav id10270/5r0dWxy17C8/00001.wav\n"
                      "0 id10270/x6uYqmx31kE/00001.wav id10271/1gtz-CUIygI/00001.wav\n",
    "list_test_all.txt": "1 id10001/1zcIwhmdeo4/00001.wav id10001/7gWzIy6yIIk/00001.wav\n"
                         "0 id10001/1zcIwhmdeo4/00002.wav id10002/C7k7C-PDvAA/00001.wav\n"
                         "0 id10270/5r0dWxy17C8/00001.wav id10002/C7k7C-PDvAA/00001.wav\n",
    "list_test_all2.txt": "1 id10001/1zcIwhmdeo4/00001.wav id10001/7gWzIy6yIIk/00001.wav\n"
                          "0 id10001/1zcIwhmdeo4/00002.wav id10002/C7k7C-PDvAA/00001.wav\n",
    "list_test_hard.txt": "1 id10270/5r0dWxy17C8/00002.wav id10270/x6uYqmx31kE/00001.wav\n"
                          "0 id10001/1zcIwhmdeo4/00001.wav id10002/C7k7C-PDvAA/00001.wav\n",
    "list_test_hard2.txt": "1 id10270/5r0dWxy17C8/00002.wav id10270/x6uYqmx31kE/00001.wav\n",
}
VOX2_DEV = {"id00012/21Uxsk56VDQ/00001.m4a": 1.0, "id00012/21Uxsk56VDQ/00002.m4a": 0.5,
            "id00015/0fijmz4vTVU/00001.m4a": 1.5}


# The speaker metadata as published beside the trial lists (.../voxceleb/meta/): vox1_meta.csv is
# TAB-separated with spaces inside fields; vox2_meta.csv has a UTF-8 BOM, CRLF and ' ,' separators.
VOX1_META = ("VoxCeleb1 ID\tVGGFace1 ID\tGender\tNationality\tSet\n"
             "id10001\tA.J._Buckley\tm\tIreland\tdev\n"
             "id10002\tA.R._Rahman\tm\tIndia\tdev\n"
             "id10003\tAamir_Khan\tm\tIndia\tdev\n"
             "id10270\tEartha_Kitt\tf\tUnited States\ttest\n"
             "id10271\tEd_Westwick\tm\tUnited Kingdom\ttest\n")
VOX2_META = ("\ufeffVoxCeleb2 ID ,VGGFace2 ID ,Gender ,Set \r\n"
             "id00012 ,n000012 ,m ,dev \r\n"
             "id00015 ,n000015 ,f ,dev \r\n"
             "id00016 ,n000016 ,m ,test \r\n").encode("utf-8")


def make_voxceleb1(root: Path) -> Path:
    """``root`` = voxceleb1/: dev/wav/..., test/wav/..., the six official trial lists."""
    for seed, (rel, dur) in enumerate(VOX1_DEV.items()):
        write(root / "dev" / "wav" / rel, dur, seed)
    for seed, (rel, dur) in enumerate(VOX1_TEST.items()):
        write(root / "test" / "wav" / rel, dur, seed + 10)
    for name, text in VOX1_TRIALS.items():
        write_text(root / name, text)
    return root


def make_m4a(path: Path, seconds: float, seed: int = 0) -> Path:
    """A real AAC (.m4a) file made with ffmpeg from generated audio."""
    path.parent.mkdir(parents=True, exist_ok=True)
    wav = path.with_suffix(".src.wav")
    write(wav, seconds, seed)
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(wav), "-c:a", "aac",
                    "-b:a", "64k", str(path)], check=True)
    wav.unlink()
    return path


def make_voxceleb2(root: Path) -> Path:
    """``root`` = voxceleb2/: dev/aac/<spk>/<video>/<n>.m4a."""
    for seed, (rel, dur) in enumerate(VOX2_DEV.items()):
        make_m4a(root / "dev" / "aac" / rel, dur, seed + 20)
    return root


# --------------------------------------------------------------------------- CN-Celeb
CN1_DATA = {"id00000/singing-01-001.flac": 0.5, "id00000/singing-01-002.flac": 0.5,
            "id00000/singing-01-003.flac": 1.0, "id00000/speech-01-001.flac": 2.0,
            "id00001/interview-01-001.flac": 1.0, "id00001/vlog-01-001.flac": 0.5,
            "id00800/speech-01-001.flac": 0.5, "id00800/speech-01-002.flac": 0.75,
            "id00801/interview-01-001.flac": 1.0}
CN1_TEST = {"id00800-singing-01-005.flac": 0.5, "id00801-vlog-01-002.flac": 0.75}
CN2_DATA = {"id10000/recitation-01-001.flac": 1.0, "id10000/recitation-01-002.flac": 0.5}
CN_ENROLL_MAP = ("id00800-enroll id00800/speech-01-001.wav id00800/speech-01-002.wav\n"
                 "id00801-enroll id00801/interview-01-001.wav\n")
CN_TRIALS = ("id00800-enroll test/id00800-singing-01-005.wav 1\n"
             "id00800-enroll test/id00801-vlog-01-002.wav 0\n"
             "id00801-enroll test/id00800-singing-01-005.wav 0\n"
             "id00801-enroll test/id00801-vlog-01-002.wav 1\n")


def make_cnceleb(root: Path) -> Path:
    """``root`` holds CN-Celeb_flac/ and CN-Celeb2_flac/ as the v2 archives extract."""
    cn1 = root / "CN-Celeb_flac"
    for seed, (rel, dur) in enumerate(CN1_DATA.items()):
        write(cn1 / "data" / rel, dur, seed)
    write_text(cn1 / "dev" / "dev.lst", "id00000\nid00001\n")
    for seed, (name, dur) in enumerate(CN1_TEST.items()):
        write(cn1 / "eval" / "test" / name, dur, seed + 30)
    # The official enrollment audio: the enroll.map utterances concatenated.
    enroll = cn1 / "eval" / "enroll"
    enroll.mkdir(parents=True, exist_ok=True)
    for line in CN_ENROLL_MAP.splitlines():
        eid, *utts = line.split()
        audio = np.concatenate([soundfile.read(str(cn1 / "data" / u.replace(".wav", ".flac")), dtype="float32")[0]
                                for u in utts])
        soundfile.write(str(enroll / f"{eid}.flac"), audio, RATE, subtype="PCM_16")
    lists = cn1 / "eval" / "lists"
    write_text(lists / "enroll.lst", "id00800-enroll enroll/id00800-enroll.wav\nid00801-enroll enroll/id00801-enroll.wav\n")
    write_text(lists / "enroll.map", CN_ENROLL_MAP)
    write_text(lists / "test.lst", "test/id00800-singing-01-005.wav\ntest/id00801-vlog-01-002.wav\n")
    write_text(lists / "trials.lst", CN_TRIALS)
    cn2 = root / "CN-Celeb2_flac"
    for seed, (rel, dur) in enumerate(CN2_DATA.items()):
        write(cn2 / "data" / rel, dur, seed + 40)
    write_text(cn2 / "spk.lst", "id10000\n")
    return root


# --------------------------------------------------------------------------- FFSVC
# As extracted: FFSVC2020 under wav/<set>/<V><SSSS>/<sss><DEVICE><DISTANCE>/, the FFSVC2022 dev archive's
# own dev/ folder of renamed files beside it, the two lists downloaded from the challenge site.
FFSVC_TRAIN = {"wav/train/F0001/001I1M/F0001_001I1M_1_0001_normal.wav": 1.5,
               "wav/train/F0001/001PCM5M/F0001_001PCM5M_recorded6_0002_normal.wav": 0.5,
               "wav/dev/S0002/002PAD3M/S0002_002PAD3M_1_0003_fast.wav": 1.0,
               "supplementary/T0002/002MIC/T0002_002MIC_Tr2_0004_normal.wav": 1.25,
               "supplementary/T0001/001PCML3M/T0001_001PCML3M_recorded10_0005_slow.wav": 2.0}
FFSVC_DEV = {"ffsvc22_dev_000000.wav": 1.0, "ffsvc22_dev_000001.wav": 0.5, "ffsvc22_dev_000002.wav": 0.75}
FFSVC_META = ("Original_Name FFSVC2022_Name\n"
              "F0101_101I1M_1_0001_normal ffsvc22_dev_000000\n"
              "S0101_101PAD5M_1_0002_normal ffsvc22_dev_000001\n"
              "T0202_202IL3M_1_0003_fast ffsvc22_dev_000002\n")
FFSVC_TRIALS = "1 ffsvc22_dev_000000.wav ffsvc22_dev_000001.wav\n0 ffsvc22_dev_000000.wav ffsvc22_dev_000002.wav\n"


def make_ffsvc(root: Path) -> Path:
    for seed, (rel, dur) in enumerate(FFSVC_TRAIN.items()):
        write(root / rel, dur, seed)
    for seed, (name, dur) in enumerate(FFSVC_DEV.items()):
        write(root / "dev" / name, dur, seed + 50)
    write_text(root / "dev_meta_list", FFSVC_META)
    write_text(root / "trials_dev_keys", FFSVC_TRIALS)
    return root


# --------------------------------------------------------------------------- MUSAN / RIRS_NOISES
MUSAN = {"music/fma/music-fma-0000.wav": 2.0, "music/fma/music-fma-0001.wav": 1.5,
         "noise/free-sound/noise-free-sound-0000.wav": 1.0, "noise/sound-bible/noise-sound-bible-0000.wav": 0.5,
         "speech/librivox/speech-librivox-0000.wav": 2.5, "speech/us-gov/speech-us-gov-0000.wav": 1.0}


def make_musan(root: Path) -> Path:
    """``root`` = musan/."""
    for seed, (rel, dur) in enumerate(MUSAN.items()):
        write(root / rel, dur, seed)
    write_text(root / "music" / "fma" / "ANNOTATIONS",
               "music-fma-0000 Classical N composer-a\nmusic-fma-0001 Pop Y singer-b\n")
    write_text(root / "noise" / "free-sound" / "ANNOTATIONS", "noise-free-sound-0000 rain\n")
    write_text(root / "README", "MUSAN miniature\n")
    return root


# Kaldi's rir_list ids: --rir-id small-Room001-00001 --room-id small-Room001 RIRS_NOISES/simulated_rirs/smallroom/...
SIM_RIRS = {"smallroom": "Room001", "mediumroom": "Room002", "largeroom": "Room003"}
REAL_RIR = "air_type1_air_binaural_stairway_1_1_90"


def make_rirs_noises(root: Path) -> Path:
    """``root`` = RIRS_NOISES/ (rir_list paths are relative to its parent)."""
    for seed, (size, room) in enumerate(SIM_RIRS.items()):
        lines = []
        for n in (1, 2):
            rel = f"simulated_rirs/{size}/{room}/{room}-0000{n}.wav"
            write(root / rel, 0.25, seed * 2 + n)
            prefix = size[:-len("room")]
            lines.append(f"--rir-id {prefix}-{room}-0000{n} --room-id {prefix}-{room} RIRS_NOISES/{rel}")
        write_text(root / "simulated_rirs" / size / "rir_list", "\n".join(lines) + "\n")
    write(root / "real_rirs_isotropic_noises" / f"{REAL_RIR}.wav", 0.5, 9)
    write_text(root / "real_rirs_isotropic_noises" / "rir_list",
               f"--rir-id {REAL_RIR} --room-id air_type1_air_binaural_stairway "
               f"RIRS_NOISES/real_rirs_isotropic_noises/{REAL_RIR}.wav\n")
    write(root / "pointsource_noises" / "noise-free-sound-0001.wav", 0.5, 11)
    return root


def make_voxceleb_and_noises(corpus: Path) -> Path:
    """VoxCeleb1, VoxCeleb2, MUSAN and RIRS_NOISES hand-extracted under ``corpus`` (voxceleb1/,
    voxceleb2/, musan/, RIRS_NOISES/), where the VoxCeleb recipes' stage 0 finds them."""
    make_voxceleb1(corpus / "voxceleb1")
    make_voxceleb2(corpus / "voxceleb2")
    make_musan(corpus / "musan")
    make_rirs_noises(corpus / "RIRS_NOISES")
    return corpus


# --------------------------------------------------------------------------- archives
def _zip(src: Path, target: Path, arc_root: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w") as archive:
        for path in sorted(src.rglob("*")):
            archive.write(path, path.relative_to(arc_root).as_posix())
    return target


def _tar(srcs: List[Path], target: Path, arc_root: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(target, "w:gz") as archive:
        for src in srcs:
            archive.add(src, src.relative_to(arc_root).as_posix())
    return target


def _split(path: Path, names: List[str]) -> List[Path]:
    data = path.read_bytes()
    size = -(-len(data) // len(names))
    parts = []
    for i, name in enumerate(names):
        part = path.parent / name
        part.write_bytes(data[i * size:(i + 1) * size])
        parts.append(part)
    path.unlink()
    return parts


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def make_archives(work: Path, out: Path, corpora=("voxceleb1", "voxceleb2", "cnceleb", "musan", "rirs_noises")
                  ) -> Dict[str, str]:
    """Official archive names (and parts) of the miniature corpora in ``out``; returns name -> md5
    of every whole archive and part (write it as an md5sum file for ``--checksums``)."""
    sums: Dict[str, str] = {}
    out.mkdir(parents=True, exist_ok=True)
    if "voxceleb1" in corpora:
        vox1 = make_voxceleb1(work / "voxceleb1")
        whole = _zip(vox1 / "dev" / "wav", out / "vox1_dev_wav.zip", vox1 / "dev")
        sums["vox1_dev_wav.zip"] = md5(whole)
        for part in _split(whole, [f"vox1_dev_wav_parta{c}" for c in "abcd"]):
            sums[part.name] = md5(part)
        sums["vox1_test_wav.zip"] = md5(_zip(vox1 / "test" / "wav", out / "vox1_test_wav.zip", vox1 / "test"))
        for name in VOX1_TRIALS:
            shutil.copy(vox1 / name, out / name)
    if "voxceleb2" in corpora:
        vox2 = make_voxceleb2(work / "voxceleb2")
        whole = _zip(vox2 / "dev", out / "vox2_aac.zip", vox2)
        sums["vox2_aac.zip"] = md5(whole)
        for part in _split(whole, [f"vox2_dev_aac_parta{c}" for c in "abcdefgh"]):
            sums[part.name] = md5(part)
    if "cnceleb" in corpora:
        cn = make_cnceleb(work / "cnceleb")
        sums["cn-celeb_v2.tar.gz"] = md5(_tar([cn / "CN-Celeb_flac"], out / "cn-celeb_v2.tar.gz", cn))
        whole = _tar([cn / "CN-Celeb2_flac"], out / "cn-celeb2_v2.tar.gz", cn)
        sums["cn-celeb2_v2.tar.gz"] = md5(whole)
        for part in _split(whole, ["cn-celeb2_v2.tar.gzaa", "cn-celeb2_v2.tar.gzab", "cn-celeb2_v2.tar.gzac"]):
            sums[part.name] = md5(part)
    if "musan" in corpora:
        musan = make_musan(work / "musan")
        sums["musan.tar.gz"] = md5(_tar([musan], out / "musan.tar.gz", musan.parent))
    if "rirs_noises" in corpora:
        rirs = make_rirs_noises(work / "RIRS_NOISES")
        sums["rirs_noises.zip"] = md5(_zip(rirs, out / "rirs_noises.zip", rirs.parent))
    return sums


def write_checksums(path: Path, sums: Dict[str, str]) -> Path:
    return write_text(path, "".join(f"{v}  {k}\n" for k, v in sorted(sums.items())))
