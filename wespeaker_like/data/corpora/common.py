"""Shared helpers for corpus preparation: layout checks, durations, data dir output, trial checks.

Every check raises ``InputError`` naming the path it looked at and what it expected there.
"""

from __future__ import annotations

import logging
import os
import struct
import subprocess
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import soundfile

from wespeaker_like.data.kaldi_dir import DataDir, utt2spk_to_spk2utt, write_table
from wespeaker_like.data.trials import Trial, write_trials
from wespeaker_like.errors import InputError

log = logging.getLogger("corpora")

AUDIO_EXTENSIONS = (".wav", ".flac", ".m4a")


# --------------------------------------------------------------------------- layout checks
def need_dir(path: Path, what: str) -> Path:
    """``path`` must be a directory; ``what`` says what the corpus keeps there."""
    path = Path(path)
    if not path.is_dir():
        raise InputError(path, f"directory not found (expected {what})")
    return path


def need_file(path: Path, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise InputError(path, f"file not found (expected {what})")
    return path


def find_audio(root: Path, extension: str, what: str) -> List[Path]:
    """All files with ``extension`` under ``root`` (recursive), sorted; at least one must exist."""
    need_dir(root, what)
    files = sorted(p for p in root.rglob(f"*{extension}") if p.is_file())
    if not files:
        raise InputError(root, f"no '*{extension}' files found (expected {what})")
    return files


def speaker_video_utt(path: Path, root: Path, what: str) -> Tuple[str, str, str]:
    """VoxCeleb layout ``<root>/<spk>/<video>/<n>.<ext>`` -> (spk, video, n)."""
    rel = path.relative_to(root).parts
    if len(rel) != 3:
        raise InputError(path, f"unexpected layout: expected {what} "
                         f"('<speaker>/<video>/<number>{path.suffix}' under {root})")
    return rel[0], rel[1], Path(rel[2]).stem


def add_utt(table: Dict[str, str], utt: str, value: str, source: Path | str) -> None:
    """Insert a key, refusing duplicates (two files mapping to one utterance id)."""
    if utt in table:
        raise InputError(source, f"duplicate utterance id '{utt}' (also from '{table[utt]}')")
    table[utt] = value


def strip_ext(name: str) -> str:
    for ext in AUDIO_EXTENSIONS:
        if name.endswith(ext):
            return name[: -len(ext)]
    return name


def resolve_listed_audio(root: Path, entry: str, source: Path, line: int) -> Path:
    """A list entry like ``id00800/singing-01-001.wav`` -> the file under ``root`` with any audio
    extension (CN-Celeb v2 ships FLAC while its lists keep the '.wav' names)."""
    stem = strip_ext(entry)
    for ext in (".flac", ".wav"):
        candidate = root / (stem + ext)
        if candidate.is_file():
            return candidate.resolve()
    raise InputError(source, f"'{entry}' names no audio file (looked for {root / stem}.flac or .wav)", line)


# --------------------------------------------------------------------------- durations
def m4a_duration(path: str | Path) -> Optional[float]:
    """Duration from the MP4 container's ``moov/mvhd`` box, without decoding; None if not found."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError:
        return None

    def boxes(start: int, end: int):
        pos = start
        while pos + 8 <= end:
            size, kind = struct.unpack(">I4s", data[pos:pos + 8])
            header = 8
            if size == 1:
                size = struct.unpack(">Q", data[pos + 8:pos + 16])[0]
                header = 16
            elif size == 0:
                size = end - pos
            if size < header:
                return
            yield kind, pos + header, pos + size
            pos += size

    for kind, body, end in boxes(0, len(data)):
        if kind != b"moov":
            continue
        for sub, sbody, _ in boxes(body, end):
            if sub == b"mvhd":
                version = data[sbody]
                if version == 1:
                    timescale, duration = struct.unpack(">IQ", data[sbody + 20:sbody + 32])
                else:
                    timescale, duration = struct.unpack(">II", data[sbody + 12:sbody + 20])
                return duration / timescale if timescale else None
    return None


def audio_duration(path: str) -> float:
    """Seconds of audio in a file (header only for wav/flac/m4a); raises InputError if unreadable."""
    if path.endswith(".m4a"):
        dur = m4a_duration(path)
        if dur is None:
            dur = _ffprobe_duration(path)
        return dur
    try:
        info = soundfile.info(path)
    except Exception as exc:  # soundfile raises several types
        raise InputError(path, f"cannot read audio header ({exc})") from None
    return info.frames / info.samplerate


def _ffprobe_duration(path: str) -> float:
    try:
        out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration",
                              "-of", "default=nw=1:nk=1", path], capture_output=True, text=True)
    except FileNotFoundError:
        raise InputError(path, "cannot read the m4a duration: no mvhd box and no ffprobe "
                         "(install ffmpeg: apt-get install -y ffmpeg)") from None
    try:
        return float(out.stdout.strip())
    except ValueError:
        raise InputError(path, f"cannot read the m4a duration (ffprobe: {out.stderr.strip()[-200:]})") from None


def durations(paths: Mapping[str, str], nj: int = 1) -> Dict[str, float]:
    """utt -> seconds for ``utt -> file path``; ``nj`` worker processes for large corpora."""
    keys = list(paths)
    files = [paths[k] for k in keys]
    if nj > 1 and len(files) > 1000:
        with ProcessPoolExecutor(max_workers=nj) as pool:
            values = list(pool.map(audio_duration, files, chunksize=256))
    else:
        values = [audio_duration(f) for f in files]
    return dict(zip(keys, values))


def format_dur(seconds: float) -> str:
    return f"{seconds:.4f}"  # the precision of every utt2dur writer (augmentation dirs too)


# --------------------------------------------------------------------------- output
def write_data_dir(path: Path, wav_scp: Mapping[str, str], utt2spk: Mapping[str, str],
                   utt2dur: Optional[Mapping[str, float]] = None,
                   extra: Optional[Mapping[str, Mapping[str, str]]] = None) -> DataDir:
    """Write a sorted Kaldi data dir (wav.scp, utt2spk, spk2utt, utt2dur, extra utt files) and
    validate what was written. Utterance ids must start with their speaker id (Kaldi sorting)."""
    path = Path(path)
    for utt, spk in utt2spk.items():
        if not utt.startswith(spk):
            raise InputError(path / "utt2spk", f"utterance id '{utt}' does not start with its speaker id '{spk}'")
    tables: Dict[str, Dict[str, str]] = {"wav.scp": dict(wav_scp), "utt2spk": dict(utt2spk)}
    if utt2dur is not None:
        tables["utt2dur"] = {u: format_dur(d) for u, d in utt2dur.items()}
    for name, table in (extra or {}).items():
        tables[name] = dict(table)
    data = DataDir(tables)
    data.save(path)
    loaded = DataDir.load(path)
    loaded.validate(need=("wav.scp",) + (("utt2dur",) if utt2dur is not None else ()))
    return loaded


def check_speakers_disjoint(train: Mapping[str, str], test: Mapping[str, str],
                            train_where: Path | str, test_where: Path | str) -> None:
    """No speaker may be in both training and evaluation data (utt2spk maps)."""
    common = sorted(set(train.values()) & set(test.values()))
    if common:
        raise InputError(test_where, f"speaker '{common[0]}' is also in the training data {train_where} "
                         f"({len(common)} speakers cross the train/test boundary; expected disjoint speaker sets)")


def check_trials(trials: Sequence[Trial], known: Iterable[str], source: Path | str, data_dir: Path | str) -> None:
    known = set(known)
    for number, trial in enumerate(trials, start=1):
        for utt in (trial.enroll, trial.test):
            if utt not in known:
                raise InputError(source, f"trial names utterance '{utt}', which is not in the data dir {data_dir}",
                                 number)


def save_trials(path: Path, trials: Sequence[Trial]) -> None:
    write_trials(path, list(trials))


def summary(name: str, utt2spk: Mapping[str, str], path: Path, full: Optional[str] = None) -> str:
    speakers = len(set(utt2spk.values()))
    if all(u == s for u, s in utt2spk.items()):  # a resource dir: every id is its own speaker
        line = f"{name}: {len(utt2spk)} files -> {path}"
    else:
        line = f"{name}: {speakers} speakers, {len(utt2spk)} utterances -> {path}"
    if full:
        line += f"  (full corpus: {full})"
    log.info(line)
    print(line, flush=True)
    return line


def write_map(path: Path, table: Mapping[str, Sequence[str]]) -> None:
    """``<key> <item> <item> ...`` lines, C-sorted (enroll.map, comb.map)."""
    write_table(path, {k: list(v) for k, v in table.items()})


def spk2utt(utt2spk: Mapping[str, str]) -> Dict[str, List[str]]:
    return utt2spk_to_spk2utt(utt2spk)


def abspath(path: Path | str) -> str:
    return os.path.abspath(str(path))


def parallel_map(func: Callable, items: Sequence, nj: int) -> List:
    if nj > 1 and len(items) > 1:
        with ProcessPoolExecutor(max_workers=nj) as pool:
            return list(pool.map(func, items, chunksize=max(1, len(items) // (nj * 8) or 1)))
    return [func(item) for item in items]
