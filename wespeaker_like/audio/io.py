"""Load audio with soundfile (wav, flac, ogg/opus) from a path or a Kaldi ``cmd |`` pipe.

All waveforms are float32 numpy arrays in [-1, 1], mono, shape (num_samples,).
Relative paths in a wav.scp are resolved against the current directory, as Kaldi does.
"""

from __future__ import annotations

import io
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Optional, Tuple

import numpy as np
import soundfile

from wespeaker_like.errors import InputError


def read_wav_scp_entry(entry: str, source: str = "wav.scp", line: Optional[int] = None,
                       key: Optional[str] = None, start: int = 0,
                       num_frames: int = -1) -> Tuple[np.ndarray, int]:
    """Read one wav.scp value: a file path, or a shell pipe ending in ``|`` that writes audio to stdout.

    ``start``/``num_frames`` select a part (in frames at the file's own rate; -1 = to the end);
    a plain file is read partially (seek), a pipe is read whole and then sliced.
    Returns (samples float32 (N,), sample_rate). Errors name ``source`` and ``line``
    (e.g. ``data/train/wav.scp:17``) and, if given, the utterance ``key``.
    """
    entry = entry.strip()
    what = f"utterance '{key}': " if key is not None else ""
    if entry.endswith("|"):
        data, rate = decode_pipe(entry, source, line, what)
        data = data[start:] if num_frames < 0 else data[start:start + num_frames]
    else:
        path = Path(entry)
        if not path.is_file():
            raise InputError(source, f"{what}audio file '{entry}' not found", line)
        with open(path, "rb") as handle:
            check_wav_length(handle, f"audio file '{entry}'", source, line, what)
        try:
            data, rate = soundfile.read(str(path), dtype="float32", always_2d=True,
                                        start=start, frames=num_frames)
        except Exception as exc:
            raise InputError(source, f"{what}cannot decode audio file '{entry}' ({exc})", line) from None
    return data.mean(axis=1) if data.shape[1] > 1 else data[:, 0], rate


def decode_pipe(entry: str, source: str = "wav.scp", line: Optional[int] = None,
                what: str = "") -> Tuple[np.ndarray, int]:
    """Run a ``cmd |`` entry with bash's pipefail and decode its stdout whole -> ((N, channels), rate).

    A failing command anywhere in the pipe, or output that is not audio, raises InputError with the
    command's stderr; a WAV on stdout shorter than its header says is an error too.
    """
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", entry.strip()[:-1]], capture_output=True)
    stderr = proc.stderr.decode(errors="replace").strip()[-300:]
    if proc.returncode != 0:
        raise InputError(source, f"{what}pipe '{entry}' failed with exit code {proc.returncode}: {stderr}", line)
    handle = io.BytesIO(proc.stdout)
    check_wav_length(handle, f"pipe '{entry}'", source, line, what)
    try:
        data, rate = soundfile.read(handle, dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises several types for undecodable input
        said = f"; it wrote to stderr: {stderr}" if stderr else ""
        raise InputError(source, f"{what}pipe '{entry}' did not produce readable audio ({exc}){said}", line) from None
    return data, rate


@dataclass(frozen=True)
class WavLayout:
    """Where the samples of a RIFF/WAVE stream lie: ``data_offset`` is relative to the RIFF start."""

    sample_rate: int
    channels: int
    dtype: str           # numpy dtype of one sample: '<i2', '<i4' or '<f4'
    data_offset: int
    declared_bytes: int  # size the 'data' chunk header promises

    @property
    def declared_frames(self) -> int:
        return self.declared_bytes // (self.channels * np.dtype(self.dtype).itemsize)


# Streaming writers (sox or ffmpeg to a pipe) cannot fill in the data size and write 0 or a value near
# 2 or 4 GiB (sox: 0x7ffff000, ffmpeg: 0xffffffff); such sizes mean "unknown", not "promised".
_UNKNOWN_SIZE_FROM = 0x7FFF0000
_WAV_DTYPES = {(1, 16): "<i2", (1, 32): "<i4", (3, 32): "<f4"}


def wav_layout(handle: BinaryIO) -> Optional[WavLayout]:
    """Parse the RIFF/WAVE header at the handle's position; None if the stream is not a WAV file.

    The handle is left at an unspecified position. Formats other than 16/32-bit PCM and 32-bit
    float get ``dtype`` '' (soundfile still reads them; only direct byte access needs the dtype).
    """
    base = handle.tell()
    head = handle.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    fmt = None
    while True:
        chunk = handle.read(8)
        if len(chunk) < 8:
            return None
        name, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
        if name == b"fmt ":
            body = handle.read(size + (size & 1))
            code, channels, rate = struct.unpack("<HHI", body[:8])
            bits = struct.unpack("<H", body[14:16])[0]
            if code == 0xFFFE and len(body) >= 26:  # WAVE_FORMAT_EXTENSIBLE: the real code is in the GUID
                code = struct.unpack("<H", body[24:26])[0]
            fmt = (channels, rate, _WAV_DTYPES.get((code, bits), ""))
        elif name == b"data":
            if fmt is None:
                return None
            return WavLayout(fmt[1], fmt[0], fmt[2], handle.tell() - base, size)
        else:
            handle.seek(size + (size & 1), io.SEEK_CUR)


def check_wav_length(handle: BinaryIO, what_file: str, source: str, line: Optional[int], what: str = "") -> None:
    """InputError when a WAV stream holds fewer bytes than its 'data' chunk promises; other formats pass."""
    start = handle.tell()
    layout = wav_layout(handle)
    if layout is not None and layout.dtype and 0 < layout.declared_bytes < _UNKNOWN_SIZE_FROM:
        available = handle.seek(0, io.SEEK_END) - start - layout.data_offset
        if available < layout.declared_bytes:
            frame_bytes = layout.channels * np.dtype(layout.dtype).itemsize
            raise InputError(source, f"{what}{what_file} is truncated: its WAV header says "
                             f"{layout.declared_frames} samples ({layout.declared_bytes} bytes) but it holds "
                             f"{max(available, 0) // frame_bytes} samples ({max(available, 0)} bytes)", line)
    handle.seek(start)


def load_audio(entry: str, sample_rate: Optional[int] = None, source: str = "wav.scp",
               min_samples: int = 1, line: Optional[int] = None, key: Optional[str] = None) -> np.ndarray:
    """Read and (if ``sample_rate`` is given) resample to it; reject audio shorter than ``min_samples``.

    Returns float32 (N,). Errors name ``source``/``line`` and the utterance ``key`` if given.
    """
    samples, rate = read_wav_scp_entry(entry, source, line=line, key=key)
    if sample_rate is not None and rate != sample_rate:
        samples = resample(samples, rate, sample_rate)
    if samples.shape[0] < min_samples:
        what = f"utterance '{key}': " if key is not None else ""
        raise InputError(source, f"{what}audio '{entry}' has {samples.shape[0]} samples; "
                         f"expected at least {min_samples}", line)
    return samples


def resample(samples: np.ndarray, orig_rate: int, new_rate: int) -> np.ndarray:
    """Band-limited sinc resampling (torchaudio.functional.resample). (N,) -> (ceil(N*new/orig),)."""
    if orig_rate == new_rate:
        return samples
    if samples.shape[0] == 0:
        return samples.astype(np.float32, copy=False)
    import torch
    import torchaudio.functional as AF

    samples = np.ascontiguousarray(samples, dtype=np.float32)
    if not samples.flags.writeable:  # torch warns on read-only arrays (e.g. cached audio)
        samples = samples.copy()
    out = AF.resample(torch.from_numpy(samples), orig_rate, new_rate)
    return out.numpy().astype(np.float32, copy=False)


def speed_perturb(samples: np.ndarray, factor: float, sample_rate: int = 16000) -> np.ndarray:
    """Kaldi/sox-style ``speed`` change (tempo and pitch together) by resampling.

    Playing ``factor`` times faster means reading the signal as if recorded at rate*factor and
    resampling it back to ``sample_rate``: (N,) -> (about N / factor,); a tone at f Hz moves
    to f * factor Hz.
    """
    if factor <= 0:
        raise ValueError(f"speed factor must be positive, got {factor}")
    if factor == 1.0:
        return samples
    # Use integer rates so the resampling kernel is exact: 16000*0.9 = 14400.
    return resample(samples, int(round(sample_rate * factor)), sample_rate)


def write_audio(path: str | Path, samples: np.ndarray, sample_rate: int, subtype: str = "PCM_16") -> None:
    """Write (N,) audio atomically; format from the suffix (.wav, .flac). Clips to [-1, 1].

    ``subtype`` is soundfile's (``PCM_16`` by default; ``FLOAT`` for .wav files such as RIRs).
    """
    from wespeaker_like.fileio import atomic_path

    with atomic_path(path) as tmp:
        soundfile.write(str(tmp), np.clip(samples, -1.0, 1.0), sample_rate, subtype=subtype)
