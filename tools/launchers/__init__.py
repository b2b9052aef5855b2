"""Shared implementation of the Kaldi-style job launchers run.pl, queue.pl and slurm.pl.

The launchers live in ``tools/`` (not in the Python package) so that they work with only
``tools/`` on PATH, on any machine with Python 3, as Kaldi's do.
"""

from __future__ import annotations

import sys
from typing import List, Optional

from .request import USAGE, HelpRequested, LauncherError, parse_request


def main(prog: str, argv: Optional[List[str]] = None) -> int:
    """Entry point of the launcher named ``prog`` (run.pl, queue.pl or slurm.pl)."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        request = parse_request(argv)
        if prog == "run.pl":
            from .local import run_local
            return run_local(request)
        from .cluster import SunGridEngine, Slurm, run_cluster
        scheduler = {"queue.pl": SunGridEngine, "slurm.pl": Slurm}[prog]()
        return run_cluster(request, scheduler)
    except HelpRequested:
        print(USAGE.format(prog=prog), end="")
        return 0 if argv else 1
    except LauncherError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        if not argv or "expected a log file" in str(err):
            print(USAGE.format(prog=prog), end="", file=sys.stderr)
        return 1
