"""MUSAN (OpenSLR 17) as the stage-2 augmentation resources ``noise``, ``music`` and ``speech``.

Layout (``musan.tar.gz`` extracted)::

    musan/music/{fma,fma-western-art,hd-classical,jamendo,rfm}/music-<set>-<nnnn>.wav  + ANNOTATIONS
    musan/noise/{free-sound,sound-bible}/noise-<set>-<nnnn>.wav                        + ANNOTATIONS
    musan/speech/{librivox,us-gov}/speech-<set>-<nnnn>.wav                             + ANNOTATIONS

Each category becomes a Kaldi-style resource dir ``<out>/musan/<category>/`` with ``wav.scp``
(``<file stem> <absolute path>``), ``utt2dur``, and ``utt2spk``/``spk2utt`` mapping every id to
itself. The ``speech`` dir is the babble source. The Kaldi augmentation categories stage 2 draws
with these resources (Snyder et al. 2018, Kaldi egs/voxceleb/v2) are in :data:`KALDI_CATEGORIES`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Sequence

from wespeaker_like.data.corpora.common import (
    abspath, add_utt, durations, find_audio, need_dir, summary, write_data_dir,
)
from wespeaker_like.data.corpora.download import Archive
from wespeaker_like.data.kaldi_dir import numbered_lines
from wespeaker_like.errors import InputError

BASE_URL = "https://www.openslr.org/resources/17"
CATEGORIES = ("noise", "music", "speech")
ARCHIVES = [Archive("musan.tar.gz", md5="0c472d4fc0c5141eca47ad1ffeb2a7df",
                    layout=tuple((f"musan/{category}", f"*/{category}-*.wav") for category in CATEGORIES))]
FULL = {"noise": "930 files, about 6 h", "music": "660 files, about 42 h", "speech": "426 files, about 60 h"}

# Kaldi egs/voxceleb/v2 augmentation: reverberation with the simulated RIRs; MUSAN noise added
# every second as foreground at SNR 15/10/5/0 dB; one music track at 15/10/8/5 dB; babble of 3-7
# MUSAN speech files at 20/17/15/13 dB.
KALDI_CATEGORIES = {
    "reverb": {"resource": "rirs", "snr": None, "count": None},
    "noise": {"resource": "noise", "snr": (0, 15), "count": (1, 1)},
    "music": {"resource": "music", "snr": (5, 15), "count": (1, 1)},
    "babble": {"resource": "speech", "snr": (13, 20), "count": (3, 7)},
}


def read_vocals(annotations: Path) -> Dict[str, bool]:
    """music/*/ANNOTATIONS: ``<file> <genre...> <Y|N vocals> ...`` -> file -> has vocals."""
    vocals = {}
    with open(annotations, encoding="utf-8", errors="replace") as handle:  # genre names may be Latin-1
        for line in numbered_lines(handle, annotations):
            if len(line.fields) >= 3 and line.fields[2] in ("Y", "N"):
                vocals[line.fields[0]] = line.fields[2] == "Y"
    return vocals


def prepare_musan(src: Path, out: Path, categories: Sequence[str] = CATEGORIES, music_vocals: bool = True,
                  nj: int = 1, name: str = "musan") -> Dict[str, Path]:
    """Write ``<out>/<name>/{noise,music,speech}``. ``music_vocals=False`` leaves out music with
    vocals (MUSAN's ANNOTATIONS), as Kaldi's make_musan.sh --use-vocals false does."""
    src, out = Path(src), Path(out)
    need_dir(src, "the MUSAN root with music/, noise/, speech/ (musan.tar.gz extracted)")
    result = {}
    for category in categories:
        if category not in CATEGORIES:
            raise InputError(None, f"unknown MUSAN category '{category}' (expected {', '.join(CATEGORIES)})")
        root = need_dir(src / category, f"MUSAN {category} audio as {category}/<set>/{category}-<set>-<n>.wav")
        wav: Dict[str, str] = {}
        skipped = 0
        vocals: Dict[str, bool] = {}
        if category == "music" and not music_vocals:
            for annotations in root.glob("*/ANNOTATIONS"):
                vocals.update(read_vocals(annotations))
        for path in find_audio(root, ".wav", f"MUSAN {category} audio"):
            if vocals.get(path.stem, False):
                skipped += 1
                continue
            add_utt(wav, path.stem, abspath(path), path)
        target = out / name / category
        write_data_dir(target, wav, {u: u for u in wav}, durations(wav, nj))
        if skipped:
            print(f"musan {category}: left out {skipped} files with vocals", flush=True)
        summary(f"{name}/{category}", {u: u for u in wav}, target, FULL[category])
        result[category] = target
    return result


def categories_text(resources: Optional[Dict[str, Path]] = None) -> str:
    """The Kaldi categories as lines ``<category> <resource> snr=<lo>:<hi> count=<lo>:<hi>``."""
    lines = []
    for cat, spec in KALDI_CATEGORIES.items():
        res = spec["resource"]
        where = str(resources[res]) if resources and res in resources else res
        snr = "-" if spec["snr"] is None else f"{spec['snr'][0]}:{spec['snr'][1]}"
        count = "-" if spec["count"] is None else f"{spec['count'][0]}:{spec['count'][1]}"
        lines.append(f"{cat} {where} snr={snr} count={count}")
    return "\n".join(lines) + "\n"
