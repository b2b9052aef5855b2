"""Atomic file output: write to a temporary name beside the target, then rename.

A killed process therefore never leaves a half-written scp, ark, checkpoint or table under the
final name, and a rerun that finds the final name can trust it. Files get the mode an ordinary
``open`` would give (0666 minus the umask), not mkstemp's private 0600.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Iterator, IO


def file_hash(path: str | Path, algorithm: str = "md5") -> str:
    """Hex digest of a file's bytes, read in 1 MiB blocks (archives of tens of GB included)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def current_umask() -> int:
    """The process umask (read from /proc on Linux, where setting it to probe is not needed)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _temporary_file(path: Path, prefix: str, suffix: str) -> tuple[int, str]:
    """mkstemp beside ``path`` (parents created), chmod-ed to 0666 & ~umask like a plain open."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=path.parent)
    os.fchmod(fd, 0o666 & ~current_umask())
    return fd, tmp


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temporary file next to ``path``; on success fsync and rename it to ``path``."""
    path = Path(path)
    binary = "b" in mode
    fd, tmp = _temporary_file(path, f".{path.name}.", ".tmp")
    try:
        with os.fdopen(fd, mode, encoding=None if binary else encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path for writers that need a file name (torch.save, soundfile, savefig).

    The temporary name keeps the target's suffix so format detection by extension still works.
    """
    path = Path(path)
    fd, tmp = _temporary_file(path, f".{path.stem}.", f".tmp{path.suffix}")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
