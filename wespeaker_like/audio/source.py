"""A data dir's audio, read by utterance: wav.scp (+ segments), with entries of three kinds.

- a file (WAV, FLAC, Ogg/Opus, ...): a crop seeks to its part and decodes only that (soundfile); a
  16/32-bit PCM or float WAV is read as bytes at the offset its header gave (checked once per recording);
- ``path.ark:offset``, a Kaldi wave ark entry (what ``make_features --pack`` writes): a crop reads
  only its bytes;
- ``cmd |``: run with pipefail and decoded whole (pack such data dirs once to avoid that per read).

``segments`` (``<utt> <recording> <start s> <end s|-1>``) selects a part of the recording, and every
position and length here is in samples at the source's ``sample_rate``, relative to the utterance.
A recording at another rate is resampled (a crop is read with a margin, resampled and trimmed).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import soundfile

from wespeaker_like.audio.io import check_wav_length, decode_pipe, resample, wav_layout
from wespeaker_like.data.kaldi_dir import VALUE_FORMATS, c_sorted, line_of, read_table
from wespeaker_like.errors import InputError

_ARK_ENTRY = re.compile(r"^(?P<path>.+):(?P<offset>\d+)$")
_MAX_LISTED = 5


@dataclass(frozen=True)
class _PcmSamples:
    """Where a PCM/float WAV's samples lie in a file (a plain WAV or a wave ark entry): read as bytes."""

    path: str
    data_start: int      # byte offset of sample 0 in the file
    channels: int
    dtype: str           # numpy dtype of one sample


@dataclass(frozen=True)
class _Recording:
    rate: int
    frames: int          # at ``rate``
    pcm: Optional[_PcmSamples] = None  # None: decode with soundfile (or the pipe's cached output)


class AudioSource:
    """A data dir's audio; reads only the requested part where the format allows.

    ``read(utt, start, num_samples)`` -> (num_samples,) float32 in [-1, 1] at ``sample_rate``.
    """

    def __init__(self, wav_scp: str | Path, sample_rate: int, segments: str | Path | None = None):
        self.wav_scp = Path(wav_scp)
        self.segments_path = Path(segments) if segments is not None else None
        self.sample_rate = sample_rate
        self.entries: Dict[str, str] = read_table(self.wav_scp)
        self.segments: Dict[str, Tuple[str, float, float]] = {}
        if self.segments_path is not None:
            table = read_table(self.segments_path, value_format=VALUE_FORMATS["segments"])
            for utt, value in table.items():
                recording, begin, end = value.split()
                if recording not in self.entries:
                    raise InputError(self.segments_path, f"recording '{recording}' of utterance '{utt}' is not "
                                     f"in {self.wav_scp}", line_of(self.segments_path, utt))
                self.segments[utt] = (recording, float(begin), float(end))
            self.utts: List[str] = c_sorted(self.segments)
        else:
            self.utts = c_sorted(self.entries)
        self._recordings: Dict[str, _Recording] = {}
        self._last_pipe: Tuple[Optional[str], Optional[np.ndarray]] = (None, None)

    @classmethod
    def from_data_dir(cls, data_dir: str | Path, sample_rate: int) -> "AudioSource":
        """wav.scp and, if present, segments of ``data_dir``."""
        data_dir = Path(data_dir)
        segments = data_dir / "segments"
        if not (data_dir / "wav.scp").is_file():
            raise InputError(data_dir / "wav.scp", "file not found (a data dir with audio needs wav.scp)")
        return cls(data_dir / "wav.scp", sample_rate, segments if segments.is_file() else None)

    # --- descriptions for messages and fingerprints ---------------------------------------------
    def recording(self, utt: str) -> str:
        if utt in self.segments:
            return self.segments[utt][0]
        if self.segments_path is None and utt in self.entries:
            return utt
        where = self.segments_path if self.segments_path is not None else self.wav_scp
        raise InputError(where, f"no entry for utterance '{utt}'")

    def where(self, utt: str) -> str:
        """``path/wav.scp:LINE`` (and the segments line) of an utterance, for messages."""
        text = f"{self.wav_scp}:{line_of(self.wav_scp, self.recording(utt))}"
        if utt in self.segments:
            text += f" (segments {self.segments_path}:{line_of(self.segments_path, utt)})"
        return text

    def describe(self, utt: str) -> str:
        """Everything that decides an utterance's samples: entry and segment, one line."""
        recording = self.recording(utt)
        segment = " ".join(map(repr, self.segments[utt][1:])) if utt in self.segments else "whole"
        return f"{utt} {self.entries[recording]} [{segment}] @{self.sample_rate}"

    # --- lengths -----------------------------------------------------------------------------------
    def error(self, utt: str, message: str) -> InputError:
        """InputError naming the wav.scp line of the utterance's recording."""
        recording = self.recording(utt)
        return InputError(self.wav_scp, f"utterance '{utt}': {message}", line_of(self.wav_scp, recording))

    def _info(self, utt: str) -> _Recording:
        recording = self.recording(utt)
        info = self._recordings.get(recording)
        if info is None:
            entry = self.entries[recording].strip()
            source, line = str(self.wav_scp), line_of(self.wav_scp, recording)
            if entry.endswith("|"):
                data, rate = self._decode_pipe(recording, entry)
                info = _Recording(rate, data.shape[0])
            elif self._ark_entry(entry):
                path, offset = self._ark_entry(entry)
                layout = self._ark_layout(utt, path, offset)
                pcm = _PcmSamples(path, offset + layout.data_offset, layout.channels, layout.dtype)
                info = _Recording(layout.sample_rate, layout.declared_frames, pcm)
            else:
                if not Path(entry).is_file():
                    raise self.error(utt, f"audio file '{entry}' not found")
                with open(entry, "rb") as handle:
                    check_wav_length(handle, f"audio file '{entry}'", source, line, f"utterance '{utt}': ")
                    handle.seek(0)
                    layout = wav_layout(handle)
                try:
                    sf_info = soundfile.info(entry)
                except Exception as exc:
                    raise self.error(utt, f"cannot decode audio file '{entry}' ({exc})") from None
                # A PCM/float WAV whose header soundfile agrees with is read as bytes: no decoder per crop.
                direct = (layout is not None and layout.dtype and layout.declared_frames == sf_info.frames
                          and layout.sample_rate == sf_info.samplerate)
                pcm = _PcmSamples(entry, layout.data_offset, layout.channels, layout.dtype) if direct else None
                info = _Recording(sf_info.samplerate, sf_info.frames, pcm)
            self._recordings[recording] = info
        return info

    def _native_span(self, utt: str) -> Tuple[int, int, _Recording]:
        """(first sample, number of samples) of the utterance at the recording's own rate."""
        info = self._info(utt)
        if utt not in self.segments:
            return 0, info.frames, info
        _, begin, end = self.segments[utt]
        first = int(round(begin * info.rate))
        last = info.frames if end == -1 else min(int(round(end * info.rate)), info.frames)
        if first >= last:
            raise InputError(self.segments_path, f"utterance '{utt}' starts at {begin} s, after the end of its "
                             f"recording ({info.frames / info.rate:.3f} s)", line_of(self.segments_path, utt))
        return first, last - first, info

    def num_samples(self, utt: str) -> int:
        """Length of the utterance at ``sample_rate`` (segments honoured)."""
        _, count, info = self._native_span(utt)
        if info.rate == self.sample_rate:
            return count
        return math.ceil(count * self.sample_rate / info.rate)  # torchaudio's resample output length

    # --- reading -----------------------------------------------------------------------------------
    def read(self, utt: str, start: int = 0, num_samples: Optional[int] = None) -> np.ndarray:
        """Samples [start, start + num_samples) of the utterance -> (num_samples,) float32 in [-1, 1].

        ``num_samples`` None reads to the end. A span past the end raises InputError.
        """
        total = self.num_samples(utt)
        if num_samples is None:
            num_samples = total - start
        if start < 0 or num_samples < 0 or start + num_samples > total:
            raise self.error(utt, f"cannot read samples {start}..{start + num_samples}: it has {total}")
        first, count, info = self._native_span(utt)
        if info.rate == self.sample_rate:
            return self._read_native(utt, info, first + start, num_samples)
        # Read the matching span at the recording's rate with a margin for the filter, resample, trim.
        margin = 64
        native_start = int(start * info.rate / self.sample_rate)
        lead = min(margin, native_start)
        native_count = min(math.ceil(num_samples * info.rate / self.sample_rate) + margin + lead,
                           count - native_start + lead)
        native = self._read_native(utt, info, first + native_start - lead, native_count)
        out = resample(native, info.rate, self.sample_rate)
        skip = int(round(lead * self.sample_rate / info.rate))
        out = out[skip:skip + num_samples]
        if out.shape[0] < num_samples:
            out = np.pad(out, (0, num_samples - out.shape[0]))
        return np.ascontiguousarray(out, dtype=np.float32)

    def _read_native(self, utt: str, info: _Recording, start: int, count: int) -> np.ndarray:
        """``count`` samples from ``start`` at the recording's rate (``info`` is ``_info(utt)``)."""
        recording = self.recording(utt)
        entry = self.entries[recording].strip()
        if info.pcm is not None:  # header and length were checked once by _info
            data = self._read_pcm(utt, info.pcm, start, count)
        elif entry.endswith("|"):
            data, _ = self._decode_pipe(recording, entry)
            data = data[start:start + count]
        else:  # header and length were checked once by _info; decode only the span
            try:
                data = soundfile.read(entry, dtype="float32", always_2d=True, start=start, frames=count)[0]
            except Exception as exc:  # soundfile raises several types for undecodable input
                raise self.error(utt, f"cannot decode audio file '{entry}' ({exc})") from None
            data = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
        if data.shape[0] != count:
            raise self.error(utt, f"read {data.shape[0]} samples at {start} where {count} were expected "
                              f"(the audio is shorter than its header said)")
        return np.ascontiguousarray(data, dtype=np.float32)

    def _decode_pipe(self, recording: str, entry: str) -> Tuple[np.ndarray, int]:
        """Decoded (mono) pipe output; the last one is kept so check-then-read decodes once."""
        if self._last_pipe[0] == recording:
            return self._last_pipe[1]
        data, rate = decode_pipe(entry, str(self.wav_scp), line_of(self.wav_scp, recording),
                                 f"utterance '{recording}': ")
        mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
        self._last_pipe = (recording, (np.ascontiguousarray(mono, dtype=np.float32), rate))
        return self._last_pipe[1]

    @staticmethod
    def _ark_entry(entry: str) -> Optional[Tuple[str, int]]:
        match = _ARK_ENTRY.match(entry)
        if match is None or Path(entry).is_file():
            return None
        return match["path"], int(match["offset"])

    def _ark_layout(self, utt: str, path: str, offset: int):
        try:
            with open(path, "rb") as handle:
                handle.seek(offset)
                layout = wav_layout(handle)
                if layout is not None:
                    check_wav_length(_Window(handle, offset), f"wave ark entry '{path}:{offset}'",
                                     str(self.wav_scp), line_of(self.wav_scp, self.recording(utt)),
                                     f"utterance '{utt}': ")
        except OSError as exc:
            raise self.error(utt, f"cannot read wave ark '{path}' ({exc})") from None
        if layout is None or not layout.dtype:
            raise self.error(utt, f"'{path}:{offset}' is not a 16/32-bit PCM or float WAV entry of a wave ark")
        return layout

    def _read_pcm(self, utt: str, pcm: _PcmSamples, start: int, count: int) -> np.ndarray:
        """Samples as libsndfile returns them: integers scaled by 1 / 2^(bits-1), channels averaged."""
        item = np.dtype(pcm.dtype)
        try:
            with open(pcm.path, "rb") as handle:
                handle.seek(pcm.data_start + start * pcm.channels * item.itemsize)
                raw = np.frombuffer(handle.read(count * pcm.channels * item.itemsize), dtype=item)
        except OSError as exc:
            raise self.error(utt, f"cannot read audio '{pcm.path}' ({exc})") from None
        data = raw[:raw.shape[0] - raw.shape[0] % pcm.channels].reshape(-1, pcm.channels).astype(np.float32)
        if item.kind == "i":
            data *= 1.0 / (1 << (8 * item.itemsize - 1))
        return data.mean(axis=1) if pcm.channels > 1 else data[:, 0]

    # --- checks ------------------------------------------------------------------------------------
    def check(self, min_samples: int) -> None:
        """Every utterance once: readable header, at least ``min_samples`` samples. InputError listing
        the first offenders with their wav.scp lines."""
        problems = []
        for utt in self.utts:
            try:
                length = self.num_samples(utt)
                if length < min_samples:
                    problems.append(f"{self.where(utt)}: utterance '{utt}' has {length} samples; "
                                    f"expected at least {min_samples}")
            except InputError as exc:
                problems.append(str(exc))
            if len(problems) >= _MAX_LISTED:
                break
        if problems:
            raise InputError(self.wav_scp, f"{len(problems)}{'+' if len(problems) >= _MAX_LISTED else ''} bad "
                             "audio entries:\n  " + "\n  ".join(problems))


class _Window:
    """A file handle seen from ``base`` on, so header checks work on an entry inside an ark."""

    def __init__(self, handle, base: int):
        self._handle, self._base = handle, base
        handle.seek(base)

    def tell(self) -> int:
        return self._handle.tell() - self._base

    def read(self, size: int = -1) -> bytes:
        return self._handle.read(size)

    def seek(self, position: int, whence: int = 0) -> int:
        target = position + self._base if whence == 0 else position
        return self._handle.seek(target, whence) - self._base
