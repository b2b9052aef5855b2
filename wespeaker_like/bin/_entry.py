"""What every ``wespeaker_like.bin`` script shares: option spelling, user errors, exit status.

    from wespeaker_like.bin._entry import ArgumentParser, entry_point

    @entry_point("score")
    def main(argv=None) -> int:
        args = ArgumentParser(description=...).parse_args(argv)
        ...

* ``ArgumentParser`` (an ``argparse.ArgumentParser``) takes ``--a-b`` and ``--a_b`` for every long
  option, whichever spelling it was declared with (sub-commands included).
* ``entry_point(prog)`` turns an ``InputError`` escaping ``main`` into the single stderr line
  ``prog: path:line: message`` and exit status 1, without a traceback; likewise a
  ``FloatingPointError`` (training diverged: its message names the step and what to change).
  ``main`` returning None means 0. Programming errors still end in a traceback.
"""

from __future__ import annotations

import argparse
import functools
import sys
from typing import Callable, List, Optional, Sequence

from wespeaker_like.errors import InputError

Main = Callable[[Optional[List[str]]], Optional[int]]


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` on which ``--a-b`` and ``--a_b`` name the same option."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("epilog", "Options accept '-' or '_' between words (--num-jobs == --num_jobs).")
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def parse_known_args(self, args: Optional[Sequence[str]] = None, namespace=None):
        args = sys.argv[1:] if args is None else list(args)
        respelled, options_ended = [], False
        for arg in args:
            options_ended = options_ended or arg == "--"
            respelled.append(arg if options_ended else self._declared_spelling(arg))
        return super().parse_known_args(respelled, namespace)

    def _declared_spelling(self, arg: str) -> str:
        """``--a-b[=v]`` as ``--a_b[=v]`` (or the reverse) when only the other spelling is declared."""
        if not arg.startswith("--"):
            return arg
        name, equals, value = arg.partition("=")
        if name in self._option_string_actions:
            return arg
        for other in ("--" + name[2:].replace("-", "_"), "--" + name[2:].replace("_", "-")):
            if other in self._option_string_actions:
                return other + equals + value
        return arg


def entry_point(prog: str) -> Callable[[Main], Callable[[Optional[List[str]]], int]]:
    """Decorator for a script's ``main(argv)``: user errors become ``prog: message`` and exit 1."""

    def wrap(main: Main) -> Callable[[Optional[List[str]]], int]:
        @functools.wraps(main)
        def run(argv: Optional[List[str]] = None) -> int:
            try:
                status = main(argv)
            except (InputError, FloatingPointError) as err:
                print(f"{prog}: {err}", file=sys.stderr, flush=True)
                return 1
            return 0 if status is None else status

        run.entry_prog = prog
        return run

    return wrap
