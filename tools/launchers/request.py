"""The command line shared by run.pl, queue.pl and slurm.pl, and what each job runs and logs.

    run.pl [--num-threads N] [--gpu N] [--mem 4G] [--max-jobs-run N] [--config F] \\
        [JOB=1:N] log/x.JOB.log command args...

The job variable (any identifier before ``=``) is replaced textually in the log name and the
command. A command given as one argument is a shell script line and runs as is (pipes and
redirections inside it work); a command of several arguments is joined Kaldi-style: arguments
without whitespace go in raw (so an escaped ``\\|`` or ``\\>`` acts as a shell operator),
arguments with whitespace are quoted into one word. Either way it runs with ``bash -c``.
"""

from __future__ import annotations

import re
import shlex
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

JOB_RANGE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(\d+)(?::(\d+))?")
OPTION_NAME = re.compile(r"[a-z][a-z0-9_]*")
INTEGER_OPTIONS = {"num_threads": 1, "gpu": 0, "max_jobs_run": 1}  # name -> smallest allowed value

USAGE = """\
usage: {prog} [options] [JOB=1:N] <log-file> <command> [<args>...]
  Runs <command> once, or once per JOB value with JOB replaced by the value in the log name
  and the command; a failed job makes {prog} exit 1 naming its log.
options:
  --num-threads N    threads per job (exports OMP_NUM_THREADS/MKL_NUM_THREADS)
  --gpu N            GPUs per job
  --mem SIZE         memory per job (cluster launchers; mapped through the config)
  --max-jobs-run N   at most N jobs at once
  --config FILE      scheduler config (queue.pl: conf/queue.conf, slurm.pl: conf/slurm.conf)
  --NAME VALUE       any other option the scheduler config describes
"""


class LauncherError(Exception):
    """A problem with the command line, the config or the submission; printed, exit status 1."""


class HelpRequested(Exception):
    """--help / -h on the command line."""


@dataclass
class Request:
    """One launcher invocation: options, the job range and the templates of log and command."""

    log_template: str
    command_args: List[str]
    options: Dict[str, str] = field(default_factory=dict)  # underscored name -> value, no 'config'
    config: Optional[str] = None
    job_var: Optional[str] = None
    first: int = 1
    last: int = 1

    @property
    def tasks(self) -> range:
        return range(self.first, self.last + 1)

    @property
    def num_threads(self) -> int:
        return int(self.options.get("num_threads", 1))

    @property
    def threads_given(self) -> bool:
        return "num_threads" in self.options

    @property
    def gpus(self) -> int:
        return int(self.options.get("gpu", 0))

    @property
    def max_jobs_run(self) -> Optional[int]:
        value = self.options.get("max_jobs_run")
        return None if value is None else int(value)

    def _substitute(self, text: str, task: int) -> str:
        return text if self.job_var is None else text.replace(self.job_var, str(task))

    def log_path(self, task: int) -> Path:
        return Path(self._substitute(self.log_template, task))

    def command(self, task: int) -> str:
        return self._substitute(shell_command(self.command_args), task)

    @property
    def log_pattern(self) -> str:
        """The log name with the job variable as ``*``, for 'log is in log/x.*.log'."""
        return self.log_template if self.job_var is None else self.log_template.replace(self.job_var, "*")


def shell_command(args: List[str]) -> str:
    """Join command arguments into one bash command line (see the module docstring)."""
    if len(args) == 1:
        return args[0]
    return " ".join(arg if arg and not any(c.isspace() for c in arg) else shlex.quote(arg) for arg in args)


def parse_request(argv: List[str]) -> Request:
    """Parse ``[options] [JOB=a:b] <log> <command...>``; raises LauncherError or HelpRequested."""
    if not argv or argv[0] in ("-h", "--help"):
        raise HelpRequested()
    options: Dict[str, str] = {}
    config = None
    i = 0
    while i < len(argv) and argv[i].startswith("--"):
        arg = argv[i]
        if arg == "--help":
            raise HelpRequested()
        if "=" in arg:
            name, value = arg[2:].split("=", 1)
            i += 1
        else:
            if i + 1 >= len(argv):
                raise LauncherError(f"option {arg} needs a value")
            name, value = arg[2:], argv[i + 1]
            i += 2
        name = name.replace("-", "_")
        if not OPTION_NAME.fullmatch(name):
            raise LauncherError(f"bad option name '{arg}' (expected --lowercase-name)")
        if name == "config":
            config = value
        else:
            options[name] = value
    for name, smallest in INTEGER_OPTIONS.items():
        if name in options and not (options[name].isdigit() and int(options[name]) >= smallest):
            raise LauncherError(f"--{name.replace('_', '-')} expects an integer >= {smallest}, "
                                f"got '{options[name]}'")
    rest = argv[i:]
    request_kwargs = {}
    match = JOB_RANGE.fullmatch(rest[0]) if rest else None
    if match:
        first = int(match.group(2))
        last = int(match.group(3) or first)
        if first < 1 or last < first:
            raise LauncherError(f"bad job range '{rest[0]}' (expected {match.group(1)}=FIRST:LAST "
                                "with 1 <= FIRST <= LAST)")
        request_kwargs = {"job_var": match.group(1), "first": first, "last": last}
        rest = rest[1:]
    if len(rest) < 2:
        raise LauncherError("expected a log file and a command after the options")
    request = Request(log_template=rest[0], command_args=rest[1:], options=options, config=config,
                      **request_kwargs)
    if request.job_var and len(request.tasks) > 1 and request.job_var not in request.log_template:
        raise LauncherError(f"{len(request.tasks)} jobs would share the log '{request.log_template}' "
                            f"(put {request.job_var} into the log name)")
    return request


def now() -> str:
    """The time as ``date`` prints it."""
    return time.strftime("%a %b %d %H:%M:%S %Z %Y")


def log_header(command: str) -> str:
    """The first lines of a job log (the command line, then start time and host)."""
    commented = "\n".join(f"# {line}" for line in command.split("\n"))
    return f"{commented}\n# Started at {now()}\n# Running on {socket.gethostname()}\n"


def log_footer(elapsed: int, threads: int, code: int) -> str:
    return (f"# Accounting: time={elapsed} threads={threads}\n"
            f"# Ended (code {code}) at {now()}, elapsed time {elapsed} seconds\n")


def report_failures(prog: str, request: Request, failed: Dict[int, str]) -> int:
    """Print which jobs failed (task -> reason, '' for a plain non-zero exit); return exit status."""
    if not failed:
        return 0
    if len(request.tasks) == 1:
        task = next(iter(failed))
        reason = f" ({failed[task]})" if failed[task] else ""
        print(f"{prog}: job failed{reason}, log is in {request.log_path(task)}", file=sys.stderr)
        return 1
    print(f"{prog}: {len(failed)} / {len(request.tasks)} failed, log is in {request.log_pattern}", file=sys.stderr)
    shown = sorted(failed)[:10]
    for task in shown:
        reason = f" ({failed[task]})" if failed[task] else ""
        print(f"{prog}:   failed: {request.log_path(task)}{reason}", file=sys.stderr)
    if len(failed) > len(shown):
        print(f"{prog}:   ... and {len(failed) - len(shown)} more", file=sys.stderr)
    return 1
