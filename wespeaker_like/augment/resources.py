"""Augmentation resources: Kaldi-style directories of RIRs, noise, music and babble speech.

Resource-dir format (one directory per category; names used by the recipes: ``rirs``,
``noise``, ``music``, ``speech``)::

    <dir>/wav.scp    <id> <path or 'cmd |'>    required; absolute paths recommended (relative
                                               paths are taken from the current directory, as
                                               in Kaldi); any sample rate, mono or multi-channel
                                               (channels are averaged)
    <dir>/utt2dur    <id> <seconds>            required by the format (every writer makes it);
                                               readers only need wav.scp
    <dir>/utt2spk    <id> <speaker>            optional; for ``speech`` it lets babble leave out
                                               the target utterance's own speaker
    <dir>/segments   <id> <rec> <start> <end>  optional; then wav.scp is keyed by recording

Ids are single tokens, files are C-sorted (``LC_ALL=C``), as in any Kaldi table. Other files may
be present (``simulate_rirs`` adds ``rir_info``) and are ignored. A Kaldi data dir such as
``data/train`` is therefore also a valid ``speech`` resource.

How each category is used (see ``augment.augmenter``):

- ``rirs``: each entry is one room impulse response, used whole (resampled to the target rate).
- ``noise``, ``music``: recordings of any length; a random segment of the needed length is read
  at use time (seeking, so long files are cheap), tiled if the recording is shorter.
- ``speech``: utterances summed for babble, each cropped at a random offset or tiled.

``make_noise_resources`` builds ``noise`` and ``music`` dirs from a folder laid out like
``../shared/data/noise`` (``noise/*.flac``, ``music/*.flac``). MUSAN/RIRS_NOISES preparation must
produce exactly this format.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import soundfile

from wespeaker_like.audio.io import read_wav_scp_entry, resample
from wespeaker_like.data.kaldi_dir import VALUE_FORMATS, read_table, table_lines, write_table
from wespeaker_like.errors import InputError

AUDIO_SUFFIXES = (".flac", ".wav", ".ogg", ".opus")
# Items up to this long are read whole (and cached) by ``random_segment``; longer ones by seeking.
WHOLE_SECONDS = 30.0
INFO_CACHE = 100_000


def read_table_with_lines(path: Path, value_format=None) -> Tuple[Dict[str, str], Dict[str, int]]:
    """Read a Kaldi table and also return key -> 1-based line number (for error messages)."""
    table = read_table(path, value_format=value_format)
    lines: Dict[str, int] = {}
    for line in table_lines(path):
        lines.setdefault(line.fields[0], line.number)
    return table, lines


@dataclass(frozen=True)
class _Item:
    """Where one resource/utterance lives: a wav.scp entry and an optional time range."""

    entry: str
    source: str  # file named in errors (wav.scp)
    line: int
    start: float = 0.0  # seconds
    end: float = -1.0  # seconds, -1 = to the end


class Resource:
    """One resource dir (or Kaldi data dir) opened for reading audio.

    ``load(id, rate)`` returns a whole item (N,) float32, cached (least recently used items are
    dropped beyond ``cache_samples`` samples in all; 0 = no cache); ``random_segment`` reads only
    the needed part of a recording longer than ``WHOLE_SECONDS``.
    """

    def __init__(self, path: str | Path, cache_samples: int = 4_000_000, whole_seconds: float = WHOLE_SECONDS):
        self.path = Path(path)
        self.whole_seconds = whole_seconds  # on the fly: items up to this long are held whole, resampled once
        if not self.path.is_dir():
            raise InputError(self.path, "resource directory not found (expected a dir with wav.scp and utt2dur)")
        wav_scp = self.path / "wav.scp"
        wavs, wav_lines = read_table_with_lines(wav_scp)
        self.items: Dict[str, _Item] = {}
        segments_path = self.path / "segments"
        if segments_path.is_file():
            segments, seg_lines = read_table_with_lines(segments_path, VALUE_FORMATS["segments"])
            for key, value in segments.items():
                rec, start, end = value.split()
                if rec not in wavs:
                    raise InputError(segments_path, f"recording '{rec}' of '{key}' is not in {wav_scp}",
                                     seg_lines[key])
                self.items[key] = _Item(wavs[rec], str(wav_scp), wav_lines[rec], float(start), float(end))
        else:
            for key, value in wavs.items():
                self.items[key] = _Item(value, str(wav_scp), wav_lines[key])
        if not self.items:
            raise InputError(wav_scp, "no entries (expected '<id> <path>' lines)")
        self.ids: List[str] = sorted(self.items, key=lambda k: k.encode("utf-8"))
        self.utt2spk: Optional[Dict[str, str]] = None
        if (self.path / "utt2spk").is_file():
            self.utt2spk = read_table(self.path / "utt2spk", value_format=VALUE_FORMATS["utt2spk"])
        self._cache: "OrderedDict[Tuple[str, int], object]" = OrderedDict()
        self._cache_samples = cache_samples
        self._cached = 0  # samples held in the cache
        self._info: "OrderedDict[str, Tuple[int, int, int]]" = OrderedDict()
        self._last_pipe: Tuple[Optional[str], Optional[Tuple[np.ndarray, int]]] = (None, None)

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        return f"Resource({str(self.path)!r}, {len(self)} items)"

    def _is_pipe(self, key: str) -> bool:
        return self.items[key].entry.strip().endswith("|")

    def _pipe_audio(self, key: str) -> Tuple[np.ndarray, int]:
        """Whole output of a pipe entry at its own rate (cached: a pipe cannot seek)."""
        cached = self._cache.get((key, 0))
        if cached is None and self._last_pipe[0] == key:
            cached = self._last_pipe[1]  # kept even without a cache: one read serves info + audio
        if cached is None:
            item = self.items[key]
            samples, rate = read_wav_scp_entry(item.entry, item.source, line=item.line, key=key)
            samples.setflags(write=False)
            cached = (samples, rate)
            self._remember((key, 0), cached)
        self._last_pipe = (key, cached)
        return cached

    def _remember(self, cache_key, value) -> None:
        """Cache an array (or an (array, rate) pair) and drop the oldest beyond the budget."""
        size = (value[0] if isinstance(value, tuple) else value).shape[0]
        if size > self._cache_samples or cache_key in self._cache:
            return
        self._cache[cache_key] = value
        self._cached += size
        while self._cached > self._cache_samples:
            _, old = self._cache.popitem(last=False)
            self._cached -= (old[0] if isinstance(old, tuple) else old).shape[0]

    def _native_info(self, key: str) -> Tuple[int, int, int]:
        """(sample rate, first frame, number of frames) of an item, from the header where possible.

        Remembered for the last ``INFO_CACHE`` items (header reads cost as much as short decodes).
        """
        info = self._info.get(key)
        if info is None:
            info = self._read_info(key)
            self._info[key] = info
            if len(self._info) > INFO_CACHE:
                self._info.popitem(last=False)
        return info

    def _read_info(self, key: str) -> Tuple[int, int, int]:
        item = self.items[key]
        if self._is_pipe(key):
            samples, rate = self._pipe_audio(key)
            total = samples.shape[0]
        else:
            if not Path(item.entry.strip()).is_file():
                raise InputError(item.source, f"utterance '{key}': audio file '{item.entry}' not found", item.line)
            try:
                info = soundfile.info(item.entry.strip())
            except Exception as exc:
                raise InputError(item.source, f"utterance '{key}': cannot read audio file '{item.entry}' "
                                 f"({exc})", item.line) from None
            rate, total = info.samplerate, info.frames
        first = min(int(round(item.start * rate)), total)
        last = total if item.end < 0 else min(total, int(round(item.end * rate)))
        return rate, first, max(last - first, 0)

    def _read_native(self, key: str, offset: int = 0, num_frames: int = -1) -> Tuple[np.ndarray, int]:
        """Frames [offset, offset+num_frames) of an item (-1: to its end) at its own rate -> ((M,), rate)."""
        item = self.items[key]
        if self._is_pipe(key) or item.start != 0.0 or item.end >= 0:
            rate, first, frames = self._native_info(key)
            available = max(frames - offset, 0)
            num_frames = available if num_frames < 0 else min(num_frames, available)
            if self._is_pipe(key):
                samples, rate = self._pipe_audio(key)
                return samples[first + offset:first + offset + num_frames], rate
            offset += first
        return read_wav_scp_entry(item.entry, item.source, line=item.line, key=key,
                                  start=offset, num_frames=num_frames)

    def duration(self, key: str) -> float:
        """Length of an item in seconds (reads the header only for plain files)."""
        rate, _, frames = self._native_info(key)
        return frames / rate

    def load(self, key: str, sample_rate: int) -> np.ndarray:
        """The whole item resampled to ``sample_rate``: (N,) float32, read-only (cached)."""
        cached = self._cache.get((key, sample_rate))
        if cached is not None:
            self._cache.move_to_end((key, sample_rate))
            return cached
        samples, rate = self._read_native(key)
        if rate != sample_rate:
            samples = resample(samples, rate, sample_rate)
        if samples.shape[0] == 0:
            item = self.items[key]
            raise InputError(item.source, f"'{key}': audio '{item.entry}' is empty", item.line)
        samples = np.array(samples, dtype=np.float32)
        samples.setflags(write=False)
        self._remember((key, sample_rate), samples)
        return samples

    def random_id(self, rng: np.random.Generator) -> str:
        return self.ids[int(rng.integers(len(self.ids)))]

    def random_segment(self, rng: np.random.Generator, num_samples: int, sample_rate: int,
                       key: Optional[str] = None) -> np.ndarray:
        """A random stretch of ``num_samples`` at ``sample_rate`` from a random (or the given) item.

        Items up to ``whole_seconds`` (default ``WHOLE_SECONDS``) long are loaded whole (and cached) and cut at a random
        offset; of a longer one only the stretch (plus a little for the resampling filter) is
        read. An item shorter than ``num_samples`` is tiled. Returns (num_samples,) float32.
        """
        key = key if key is not None else self.random_id(rng)
        rate, _, total = self._native_info(key)
        if total == 0:
            item = self.items[key]
            raise InputError(item.source, f"'{key}': audio '{item.entry}' is empty", item.line)
        if total <= self.whole_seconds * rate:
            samples = self.load(key, sample_rate)
            offset = int(rng.integers(0, samples.shape[0] - num_samples + 1)) if samples.shape[0] > num_samples else 0
            return fit_length(samples[offset:], num_samples)
        need = num_samples if rate == sample_rate else int(math.ceil(num_samples * rate / sample_rate)) + 1
        if total > need:
            offset = int(rng.integers(0, total - need + 1))
            samples, rate = self._read_native(key, offset, need)
            if rate != sample_rate:
                samples = resample(samples, rate, sample_rate)
        else:
            samples = self.load(key, sample_rate)
        return fit_length(samples, num_samples)

    def random_keys(self, rng: np.random.Generator, count: int, exclude_speaker: Optional[str] = None) -> List[str]:
        """``count`` distinct random ids, none of speaker ``exclude_speaker`` (needs utt2spk).

        Returns fewer when fewer exist; raises ``InputError`` if none is left at all.
        """
        def allowed(key: str) -> bool:
            return exclude_speaker is None or self.utt2spk is None or self.utt2spk.get(key) != exclude_speaker

        chosen: List[str] = []
        for _ in range(50 * count):  # rejection sampling: cheap when the pool has many speakers
            if len(chosen) == count:
                return chosen
            key = self.random_id(rng)
            if key not in chosen and allowed(key):
                chosen.append(key)
        pool = [key for key in self.ids if key not in chosen and allowed(key)]
        if not chosen and not pool:
            raise InputError(self.path / "utt2spk", f"no utterance of a speaker other than '{exclude_speaker}' "
                             "(babble needs other speakers)")
        extra = rng.choice(len(pool), size=min(count - len(chosen), len(pool)), replace=False) if pool else []
        return chosen + [pool[int(i)] for i in extra]


def fit_length(samples: np.ndarray, num_samples: int) -> np.ndarray:
    """Crop (N,) to its first ``num_samples`` or repeat it until that long. -> (num_samples,)."""
    if samples.shape[0] >= num_samples:
        return samples[:num_samples]
    reps = int(math.ceil(num_samples / max(samples.shape[0], 1)))
    return np.tile(samples, reps)[:num_samples]


@dataclass
class AugmentResources:
    """The opened resource dirs of each category (None where not given)."""

    rirs: Optional[Resource] = None
    noise: Optional[Resource] = None
    music: Optional[Resource] = None
    speech: Optional[Resource] = None

    @classmethod
    def from_dirs(cls, rirs: str | Path | None = None, noise: str | Path | None = None,
                  music: str | Path | None = None, speech: str | Path | None = None,
                  cache_samples: int = 4_000_000, whole_seconds: float = WHOLE_SECONDS) -> "AugmentResources":
        """Open the given dirs; ``speech`` may be a Kaldi data dir (its utt2spk is used for babble).

        On the fly, a ``whole_seconds`` above the longest item and a ``cache_samples`` above the
        total keep every resource in memory at the target rate after its first use.
        """
        def open_dir(path):
            return None if path is None else Resource(path, cache_samples=cache_samples, whole_seconds=whole_seconds)

        return cls(open_dir(rirs), open_dir(noise), open_dir(music), open_dir(speech))


def write_resource_dir(out_dir: str | Path, wavs: Mapping[str, str], durations: Mapping[str, float],
                       extra: Optional[Mapping[str, Mapping[str, str]]] = None) -> Path:
    """Write ``wav.scp`` and ``utt2dur`` (and any ``extra`` tables) atomically, C-sorted."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_table(out_dir / "wav.scp", wavs)
    write_table(out_dir / "utt2dur", {key: f"{durations[key]:.4f}" for key in wavs})
    for name, table in (extra or {}).items():
        write_table(out_dir / name, table)
    return out_dir


def make_noise_resources(src_dir: str | Path, out_dir: str | Path,
                         categories: Sequence[str] = ("noise", "music")) -> Dict[str, Path]:
    """Resource dirs ``out_dir/<category>`` from audio files in ``src_dir/<category>/``.

    Ids are ``<category>-<file stem>`` (spaces become ``_``), paths absolute; durations from the
    file headers. Files are not copied or resampled (that happens at use time).
    Returns {category: resource dir}.
    """
    src_dir, out_dir = Path(src_dir), Path(out_dir)
    made: Dict[str, Path] = {}
    for category in categories:
        folder = src_dir / category
        if not folder.is_dir():
            raise InputError(folder, f"folder not found (expected {src_dir}/{category}/*.flac or *.wav)")
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
        if not files:
            raise InputError(folder, f"no audio files (expected *{', *'.join(AUDIO_SUFFIXES)})")
        wavs, durations = {}, {}
        for path in files:
            key = f"{category}-{'_'.join(path.stem.split())}"
            if key in wavs:
                raise InputError(path, f"id '{key}' is used by two files (file names must differ by stem)")
            try:
                info = soundfile.info(str(path))
            except Exception as exc:
                raise InputError(path, f"cannot read audio header ({exc})") from None
            if info.frames == 0:
                raise InputError(path, "audio file is empty")
            wavs[key] = str(path.resolve())
            durations[key] = info.frames / info.samplerate
        made[category] = write_resource_dir(out_dir / category, wavs, durations)
    return made


__all__ = ["AugmentResources", "Resource", "fit_length", "make_noise_resources", "write_resource_dir",
           "read_table_with_lines"]
