"""Safe reading of Kaldi matrix scp files (feats.scp, xvector.scp, any ``<key> <ark>:<offset>`` table).

Only two value forms are accepted: ``<path>:<byte offset>`` and a bare ``<path>`` (a file holding
one matrix). kaldiio would also run ``cmd |`` / ``| cmd`` values through a shell and read ``-`` as
stdin; here such a value is an error naming the scp line, and arks are opened with plain ``open``,
so no scp value can start a process. (wav.scp's documented ``cmd |`` entries are audio, read
elsewhere.)
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import BinaryIO, Dict, Iterator, Optional, Tuple

import numpy as np
from kaldiio.matio import read_kaldi

from wespeaker_like.data.kaldi_dir import line_of, read_table
from wespeaker_like.errors import InputError

# A path without whitespace or '|' (so never a pipe), optionally followed by ':<digits>'.
_LOCATION = re.compile(r"(?P<path>[^\s|]+?)(?::(?P<offset>\d+))?")
LOCATION_FORMAT = "'<key> <ark path>:<byte offset>' or '<key> <path>'"


def parse_location(location: str) -> Optional[Tuple[str, Optional[int]]]:
    """``"a.ark:12"`` -> ``("a.ark", 12)``, ``"m.mat"`` -> ``("m.mat", None)``; None if not a plain path."""
    match = _LOCATION.fullmatch(location)
    if match is None or match["path"] == "-":
        return None
    offset = match["offset"]
    return match["path"], None if offset is None else int(offset)


def read_scp(scp_path: str | Path) -> Dict[str, str]:
    """``<key> <location>`` lines -> ordered ``{key: location}``.

    Raises ``InputError`` naming the file and line for a missing file, a duplicate key or a
    value that is not ``<path>:<offset>`` / ``<path>`` (e.g. a ``cmd |`` pipe).
    """
    return read_table(scp_path, value_format=(lambda value: parse_location(value) is not None,
                                              LOCATION_FORMAT))


def _error(scp_path: str | Path, key: str, message: str) -> InputError:
    """An ``InputError`` at the line of ``key`` in ``scp_path`` (no line if the scp is gone)."""
    return InputError(scp_path, message, line_of(scp_path, key) if Path(scp_path).is_file() else None)


class ArkFiles:
    """Open ark handles shared by many ``load`` calls; ``with ArkFiles() as arks: arks.load(...)``."""

    def __init__(self):
        self._handles: Dict[str, BinaryIO] = {}

    def __enter__(self) -> "ArkFiles":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        for handle in self._handles.values():
            handle.close()
        self._handles.clear()

    def load(self, location: str, scp_path: str | Path, key: str) -> np.ndarray:
        """The matrix (or vector) at ``location``, the value of ``key`` in ``scp_path``.

        Every failure (unsafe value, missing ark, offset past its end, truncated or foreign data)
        is an ``InputError`` naming the scp line and the ark.
        """
        parsed = parse_location(location)
        if parsed is None:
            raise _error(scp_path, key, f"expected {LOCATION_FORMAT}, got '{key} {location}'")
        path, offset = parsed
        try:
            handle = self._handles.get(path)
            if handle is None:
                handle = self._handles[path] = open(path, "rb")
            size = os.fstat(handle.fileno()).st_size
            if offset is not None and offset >= size:
                raise _error(scp_path, key, f"offset {offset} of '{key}' is past the end of '{path}' "
                                            f"({size} bytes); the ark is truncated or from another run")
            handle.seek(offset or 0)
            return np.asarray(read_kaldi(handle))
        except InputError:
            raise
        except Exception as err:  # kaldiio raises assertion, value and EOF errors for bad data
            raise _error(scp_path, key, f"cannot read '{key}' from '{location}': "
                                        f"{type(err).__name__} {err}".rstrip()) from None


def load_matrix(location: str, scp_path: str | Path, key: str) -> np.ndarray:
    """One entry of ``scp_path`` (see ``ArkFiles.load``), opening and closing its ark."""
    with ArkFiles() as arks:
        return arks.load(location, scp_path, key)


def iter_scp(scp_path: str | Path) -> Iterator[Tuple[str, np.ndarray]]:
    """``(key, matrix)`` for every entry of ``scp_path``, in file order."""
    with ArkFiles() as arks:
        for key, location in read_scp(scp_path).items():
            yield key, arks.load(location, scp_path, key)
