"""User-facing errors: every message names the file, the line and what was expected."""

from __future__ import annotations

from pathlib import Path


class InputError(ValueError):
    """Bad user input (data dir, config, audio, trials).

    ``InputError(path, "expected <key> <value>", line=12)`` renders as
    ``data/train/utt2spk:12: expected <key> <value>``.
    """

    def __init__(self, path: str | Path | None, message: str, line: int | None = None):
        self.path = None if path is None else str(path)
        self.line = line
        self.detail = message
        where = self.path or "<input>"
        if line is not None:
            where = f"{where}:{line}"
        super().__init__(f"{where}: {message}")
