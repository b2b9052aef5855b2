"""Progress display that suits where stderr goes: a tqdm bar on a terminal, log lines in a log file.

A bar redraws itself with carriage returns, which in a log file (``train.log``, a launcher's
``JOB.log``) become one endless line; when stderr is not a terminal ``progress_bar`` returns a
``LogProgress`` instead, which logs ``desc n/total ...`` every ``every`` steps, or nothing at all
with ``every=None`` (for callers that log their own line every N steps, like the trainer).
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Optional

from tqdm import tqdm


class LogProgress:
    """The part of tqdm's interface the package uses (``update``, ``set_postfix_str``, ``close``,
    a context manager), reporting through ``log`` every ``every`` steps and once at the end."""

    def __init__(self, total: int, desc: str, every: Optional[int], log: logging.Logger, initial: int = 0):
        self.total, self.desc, self.every, self.log = total, desc, every, log
        self.n = initial
        self._initial = initial
        self._postfix = ""
        self._start = time.monotonic()
        self._reported = initial

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.every and self.n // self.every > self._reported // self.every:
            self._report()

    def set_postfix_str(self, text: str) -> None:
        self._postfix = text

    def _report(self) -> None:
        self._reported = self.n
        elapsed = time.monotonic() - self._start
        rate = (self.n - self._initial) / elapsed if elapsed > 0 else 0.0
        left = f", {(self.total - self.n) / rate:.0f} s left" if rate > 0 and self.total else ""
        postfix = f" {self._postfix}" if self._postfix else ""
        self.log.info("%s %d/%d (%.1f/s%s)%s", self.desc, self.n, self.total, rate, left, postfix)

    def close(self) -> None:
        if self.every and self.n != self._reported:
            self._report()

    def __enter__(self) -> "LogProgress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def progress_bar(total: int, desc: str, every: Optional[int], log: logging.Logger, initial: int = 0,
                 enabled: bool = True):
    """A tqdm bar on stderr when stderr is a terminal, else a ``LogProgress`` (see the module doc);
    ``enabled=False`` (e.g. on ranks other than the first) reports nothing either way."""
    if sys.stderr.isatty():
        return tqdm(total=total, initial=initial, desc=desc, disable=not enabled, file=sys.stderr,
                    dynamic_ncols=True, mininterval=1.0)
    return LogProgress(total, desc, every if enabled else None, log, initial)
