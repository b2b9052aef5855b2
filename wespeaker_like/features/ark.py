"""Atomic Kaldi ark/scp writing with kaldiio.

``ArkScpWriter`` streams matrices/vectors into a temporary ark, then renames the ark and finally
the scp into place: an scp under its final name always refers to a complete ark, so a rerun can
treat an existing scp as "this job is done".
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Dict, List, Tuple

import kaldiio
import numpy as np
import soundfile

from wespeaker_like.data.scp import read_scp
from wespeaker_like.errors import InputError
from wespeaker_like.fileio import atomic_write


class ArkScpWriter:
    """``with ArkScpWriter("x.ark", "x.scp") as w: w.write(key, array)``."""

    def __init__(self, ark_path: str | Path, scp_path: str | Path):
        self.ark_path = Path(ark_path)
        self.scp_path = Path(scp_path)
        self._tmp_ark = self.ark_path.with_name(f".{self.ark_path.name}.{os.getpid()}.tmp")
        self._entries: list[Tuple[str, int]] = []

    def __enter__(self) -> "ArkScpWriter":
        self.ark_path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open(self._tmp_ark, "wb")
        return self

    def write(self, key: str, array: np.ndarray) -> None:
        offset = self._handle.tell() + len(key.encode("utf-8")) + 1
        kaldiio.save_ark(self._handle, {key: np.ascontiguousarray(array, dtype=np.float32)})
        self._entries.append((key, offset))

    def write_wave(self, key: str, samples: np.ndarray, sample_rate: int) -> None:
        """A Kaldi wave-ark entry: (S,) float in [-1, 1] stored as 16-bit PCM WAV; the scp offset points
        at its RIFF header."""
        pcm = np.clip(np.round(np.asarray(samples, dtype=np.float64) * 32768), -32768, 32767).astype("<i2")
        encoded = io.BytesIO()
        soundfile.write(encoded, pcm, sample_rate, format="WAV", subtype="PCM_16")
        self._handle.write(f"{key} ".encode("utf-8"))
        self._entries.append((key, self._handle.tell()))
        self._handle.write(encoded.getvalue())

    def __exit__(self, exc_type, exc, tb) -> None:
        self._handle.close()
        if exc_type is not None:
            self._tmp_ark.unlink(missing_ok=True)
            return
        os.replace(self._tmp_ark, self.ark_path)
        final = self.ark_path.resolve()
        with atomic_write(self.scp_path) as scp:
            for key, offset in self._entries:
                scp.write(f"{key} {final}:{offset}\n")


def job_is_done(scp_path: Path, keys: List[str], skipped: List[str] = ()) -> bool:
    """True when ``scp_path`` exists and, with ``skipped``, covers exactly ``keys``."""
    return scp_path.is_file() and set(read_scp(scp_path)) | set(skipped) == set(keys)


def merge_job_scps(scp_paths: List[Path], what: str) -> Dict[str, str]:
    """Union of finished jobs' scp tables; a missing one means that job has not finished."""
    merged: Dict[str, str] = {}
    for job, scp in enumerate(scp_paths, start=1):
        if not scp.is_file():
            raise InputError(scp, f"{what} job {job} has not finished (no scp); rerun the stage")
        merged.update(read_scp(scp))
    return merged
