"""queue.pl (SGE ``qsub``) and slurm.pl (``sbatch``): submit one array job, wait for it.

Beside the logs, ``<log dir>/q/`` receives ``<name>.sh`` (the job script: it runs the command of
task ``$SGE_TASK_ID`` / ``$SLURM_ARRAY_TASK_ID``, writes that task's log and then the marker
``<name>.done.<task>`` holding its exit code) and the scheduler's own output of the job script.
The launcher polls for the markers; the longest pause between polls is
``$WESPEAKER_POLL_INTERVAL`` seconds (default 30; pauses start at 1 s and grow).

A task that dies without writing its marker (killed by the scheduler, node failure) is noticed
through the scheduler: every ``$WESPEAKER_QUEUE_CHECK_INTERVAL`` seconds (default 120; 0 turns
it off) ``qstat -j`` / ``squeue -j`` is asked about the job; once it is gone, tasks still without
a marker after ``$WESPEAKER_QUEUE_GRACE`` more seconds (default 60, for slow shared file
systems) count as failed. The job id is read from both the usual submit output (``Your job 42``,
``Submitted batch job 42``) and the terse one (``qsub -terse`` / ``sbatch --parsable``: ``42``,
``42;cluster``). Without a job id or a working status command the launcher warns once and waits
at most ``$WESPEAKER_QUEUE_MAX_WAIT`` seconds (default 172800, two days) for the markers, then
fails naming the unfinished tasks. Every ``$WESPEAKER_QUEUE_HEARTBEAT`` seconds (default 300; 0
turns it off) it prints a line with the number of tasks done and pending.
The job script sources ``./path.sh`` from the submit directory if it exists, as Kaldi's does.
Before submitting, the tasks' old logs and markers are deleted, so none can pass for this run's.
Ctrl-C / SIGTERM cancels the job (``qdel`` / ``scancel``).
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

from .config import SchedulerConfig, load_config
from .request import LauncherError, Request, report_failures


class Scheduler:
    """What differs between SGE and Slurm; subclasses fill in the details."""

    prog = ""
    task_id_var = ""
    standard_config = ""
    builtin_config = ""

    def array_args(self, first: int, last: int, max_jobs: Optional[int], config: SchedulerConfig) -> List[str]:
        raise NotImplementedError

    def name_and_output_args(self, name: str, output_prefix: Path) -> List[str]:
        raise NotImplementedError

    def job_id(self, submit_output: str) -> Optional[str]:
        raise NotImplementedError

    def status_command(self, job_id: str) -> List[str]:
        raise NotImplementedError

    def is_gone(self, status: subprocess.CompletedProcess) -> bool:
        """Whether the status command says the scheduler no longer has the job."""
        raise NotImplementedError

    def cancel_command(self, job_id: str) -> List[str]:
        raise NotImplementedError


class SunGridEngine(Scheduler):
    prog = "queue.pl"
    task_id_var = "SGE_TASK_ID"
    standard_config = "conf/queue.conf"
    builtin_config = """\
command qsub -v PATH -cwd -S /bin/bash -j y -l arch=*64*
option mem=* -l mem_free=$0,ram_free=$0
option mem=0
option num_threads=* -pe smp $0
option num_threads=1
option max_jobs_run=* -tc $0
default gpu=0
option gpu=0
option gpu=* -l gpu=$0 -q g.q
"""

    def array_args(self, first, last, max_jobs, config):
        args = ["-t", f"{first}:{last}"]
        if max_jobs is not None and not config.describes("max_jobs_run"):
            args += ["-tc", str(max_jobs)]
        return args

    def name_and_output_args(self, name, output_prefix):
        # One file for all tasks, as Kaldi does: SGE appends, and the logs proper are elsewhere.
        return ["-N", name, "-o", f"{output_prefix}.log"]

    def job_id(self, submit_output):
        match = (re.search(r"Your job(?:-array)? (\d+)", submit_output)
                 or re.search(r"^\s*(\d+)(?:\.\d+-\d+:\d+)?\s*$", submit_output, re.MULTILINE))  # -terse
        return match.group(1) if match else None

    def status_command(self, job_id):
        return ["qstat", "-j", job_id]

    def is_gone(self, status):
        return status.returncode != 0 and "do not exist" in status.stdout + status.stderr

    def cancel_command(self, job_id):
        return ["qdel", job_id]


class Slurm(Scheduler):
    prog = "slurm.pl"
    task_id_var = "SLURM_ARRAY_TASK_ID"
    standard_config = "conf/slurm.conf"
    builtin_config = """\
command sbatch --export=PATH --ntasks-per-node=1
option time=* --time $0
option mem=* --mem-per-cpu $0
option mem=0
option num_threads=* --cpus-per-task $0
option num_threads=1 --cpus-per-task 1
default gpu=0
option gpu=0 -p cpu
option gpu=* --gres=gpu:$0 -p gpu
"""

    def array_args(self, first, last, max_jobs, config):
        limit = f"%{max_jobs}" if max_jobs is not None and not config.describes("max_jobs_run") else ""
        return [f"--array={first}-{last}{limit}"]

    def name_and_output_args(self, name, output_prefix):
        # %a: one file per task, since Slurm truncates the output file of each task.
        return [f"--job-name={name}", f"--output={output_prefix}.%a.log"]

    def job_id(self, submit_output):
        match = (re.search(r"Submitted batch job (\d+)", submit_output)
                 or re.search(r"^\s*(\d+)(?:;\S+)?\s*$", submit_output, re.MULTILINE))  # --parsable
        return match.group(1) if match else None

    def status_command(self, job_id):
        return ["squeue", "-h", "-j", job_id, "-o", "%i"]

    def is_gone(self, status):
        if status.returncode == 0:
            return not status.stdout.strip()  # finished jobs drop out of squeue
        return "Invalid job id" in status.stderr

    def cancel_command(self, job_id):
        return ["scancel", job_id]


def _seconds_from_env(name: str, default: float) -> float:
    value = os.environ.get(name, "")
    if not value:
        return default
    try:
        seconds = float(value)
    except ValueError:
        raise LauncherError(f"${name} must be a number of seconds, got '{value}'") from None
    if seconds < 0:
        raise LauncherError(f"${name} must not be negative, got '{value}'")
    return seconds


def queue_dir_and_name(request: Request) -> tuple[Path, str]:
    """``<log dir>/q`` (the log dir up to the first part naming the job variable) and a job name."""
    log = Path(request.log_template)
    parts = []
    for part in log.parent.parts:
        if request.job_var and request.job_var in part:
            break
        parts.append(part)
    qdir = Path(*parts, "q") if parts else Path("q")
    name = log.name.replace(request.job_var, "") if request.job_var else log.name
    name = re.sub(r"\.log$", "", name.replace("..", ".")).strip(".")
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "job"
    if not name[0].isalpha():
        name = "j" + name  # SGE job names must not start with a digit
    return qdir, name


def job_script(request: Request, scheduler: Scheduler, marker_prefix: Path, submit_command: List[str]) -> str:
    """A bash script running one task of the request, chosen by the scheduler's task id."""
    q = shlex.quote
    cases = "\n".join(f"  {task}) log={q(str(request.log_path(task)))}\n     command={q(request.command(task))} ;;"
                      for task in request.tasks)
    threads = request.num_threads
    thread_exports = (f"export OMP_NUM_THREADS={threads} MKL_NUM_THREADS={threads} "
                      f"OPENBLAS_NUM_THREADS={threads}" if request.threads_given else "")
    return f"""#!/bin/bash
# Written by {scheduler.prog}; submitted with:
#   {' '.join(q(arg) for arg in submit_command)}
# Runs task ${scheduler.task_id_var} of {request.first}..{request.last}: writes the task's log,
# then {marker_prefix}.<task> holding its exit code.
task=${{{scheduler.task_id_var}:-}}
marker={q(str(marker_prefix))}.$task
finish() {{
  echo "$1" > "$marker.tmp" && mv -f "$marker.tmp" "$marker"
  exit $(( $1 == 0 ? 0 : 1 ))  # never 99/100: those mean requeue/error state to SGE
}}
cd {q(str(Path.cwd()))} || finish 1
if [ -f ./path.sh ]; then . ./path.sh; fi
case "$task" in
{cases}
  *) echo "$0: unexpected task id '$task' (expected {request.first}..{request.last})" >&2; exit 1 ;;
esac
{thread_exports}
mkdir -p "$(dirname "$log")" || finish 1
start=$(date +%s)
{{
  sed 's/^/# /' <<< "$command"
  echo "# Started at $(date)"
  echo "# Running on $(hostname)"
}} > "$log" || finish 1
bash -c "$command" < /dev/null >> "$log" 2>&1
code=$?
elapsed=$(( $(date +%s) - start ))
echo "# Accounting: time=$elapsed threads={threads}" >> "$log"
echo "# Ended (code $code) at $(date), elapsed time $elapsed seconds" >> "$log"
finish $code
"""


class ClusterRunner:
    """Submits a request as one array job and waits for the markers of all its tasks."""

    def __init__(self, request: Request, scheduler: Scheduler):
        self.request = request
        self.scheduler = scheduler
        self.prog = scheduler.prog
        self.config = load_config(request.config, scheduler.standard_config, scheduler.builtin_config,
                                  scheduler.prog)
        self.qdir, self.name = queue_dir_and_name(request)
        self.marker_prefix = (self.qdir / f"{self.name}.done").resolve()
        self.job_id: Optional[str] = None
        self.max_wait = _seconds_from_env("WESPEAKER_QUEUE_MAX_WAIT", 172800.0)
        self.status_usable = True  # False once the job id or the status command is missing
        self.unfinished = ""  # why tasks without a marker count as failed

    def marker(self, task: int) -> Path:
        return Path(f"{self.marker_prefix}.{task}")

    def submit_command(self) -> List[str]:
        options = dict(self.request.options)
        if not self.config.describes("max_jobs_run"):
            options.pop("max_jobs_run", None)  # goes into the array spec instead
        script = (self.qdir / f"{self.name}.sh").resolve()
        return (self.config.command + self.config.option_args(options)
                + self.scheduler.name_and_output_args(self.name, (self.qdir / self.name).resolve())
                + self.scheduler.array_args(self.request.first, self.request.last,
                                            self.request.max_jobs_run, self.config)
                + [str(script)])

    def submit(self) -> None:
        command = self.submit_command()
        self.qdir.mkdir(parents=True, exist_ok=True)
        for task in self.request.tasks:  # leftovers of an earlier run must not count as done
            self.marker(task).unlink(missing_ok=True)
            self.request.log_path(task).unlink(missing_ok=True)
        script = Path(command[-1])
        tmp = script.with_name(f".{script.name}.tmp")
        tmp.write_text(job_script(self.request, self.scheduler, self.marker_prefix, command), encoding="utf-8")
        tmp.chmod(tmp.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        tmp.replace(script)
        try:
            result = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        except OSError as err:
            raise LauncherError(f"cannot run '{command[0]}': {err.strerror} "
                                f"(is the scheduler's submit command on PATH?)") from None
        if result.returncode != 0:
            raise LauncherError(f"submission failed (exit {result.returncode}): "
                                f"{' '.join(shlex.quote(a) for a in command)}\n{result.stdout}{result.stderr}".rstrip())
        self.job_id = self.scheduler.job_id(result.stdout + result.stderr)
        if self.job_id is None:
            output = (result.stdout + result.stderr).strip()
            self._status_unusable(f"found no job id in the output of {command[0]} ('{output[:200]}')")

    def _status_unusable(self, why: str) -> None:
        """Warn (once) that the scheduler cannot be asked about the job: only the time limit is left."""
        if self.status_usable:
            self.status_usable = False
            print(f"{self.prog}: warning: {why}; cannot ask the scheduler whether job '{self.name}' is still "
                  f"there, so waiting at most {self.max_wait:g} s ($WESPEAKER_QUEUE_MAX_WAIT) for its tasks",
                  file=sys.stderr)

    def _job_is_gone(self) -> bool:
        command = self.scheduler.status_command(self.job_id)
        try:
            status = subprocess.run(command, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        except OSError as err:
            self._status_unusable(f"cannot run the status command '{command[0]}' ({err.strerror})")
            return False
        except subprocess.TimeoutExpired:
            return False  # cannot tell now; ask again later
        return self.scheduler.is_gone(status)

    def _heartbeat(self, pending: set, waited: float) -> None:
        total = len(self.request.tasks)
        job = f"job {self.job_id}" if self.job_id else f"job '{self.name}'"
        print(f"{self.prog}: {job}: {total - len(pending)} / {total} tasks done, {len(pending)} pending "
              f"(waited {waited:.0f} s)", file=sys.stderr, flush=True)

    def wait(self) -> Dict[int, Optional[int]]:
        """Exit code of every task; None for a task without a marker, ``self.unfinished`` says why."""
        max_pause = _seconds_from_env("WESPEAKER_POLL_INTERVAL", 30.0)
        check_every = _seconds_from_env("WESPEAKER_QUEUE_CHECK_INTERVAL", 120.0)
        grace = _seconds_from_env("WESPEAKER_QUEUE_GRACE", 60.0)
        heartbeat = _seconds_from_env("WESPEAKER_QUEUE_HEARTBEAT", 300.0)
        if check_every == 0:
            self._status_unusable("$WESPEAKER_QUEUE_CHECK_INTERVAL is 0")
        pending = set(self.request.tasks)
        codes: Dict[int, Optional[int]] = {}
        pause = min(1.0, max_pause)
        start = last_check = last_beat = time.monotonic()
        gone_since: Optional[float] = None
        while True:
            for task in sorted(pending):
                if self.marker(task).is_file():
                    text = self.marker(task).read_text().strip()
                    codes[task] = int(text) if text.lstrip("-").isdigit() else 1
                    pending.discard(task)
            if not pending:
                return codes
            now = time.monotonic()
            if self.status_usable and now - last_check >= check_every:
                last_check = now
                gone_since = (gone_since or now) if self._job_is_gone() else None
            if gone_since is not None and now - gone_since >= grace:
                self.unfinished = (f"no exit status: job {self.job_id} left the scheduler without finishing "
                                   "this task (killed? out of memory or time?)")
                codes.update({task: None for task in pending})
                return codes
            if not self.status_usable and now - start >= self.max_wait:
                self.unfinished = (f"not finished after {self.max_wait:g} s ($WESPEAKER_QUEUE_MAX_WAIT) and "
                                   "the scheduler cannot be asked about it")
                codes.update({task: None for task in pending})
                return codes
            if heartbeat > 0 and now - last_beat >= heartbeat:
                last_beat = now
                self._heartbeat(pending, now - start)
            time.sleep(pause)
            pause = min(max_pause, pause * 1.5)

    def cancel(self, signum: int, _frame=None) -> None:
        """Signal handler: cancel the job, then exit."""
        if self.job_id:
            command = self.scheduler.cancel_command(self.job_id)
            try:
                subprocess.run(command, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
                print(f"{self.prog}: interrupted; cancelled job {self.job_id} ({' '.join(command)})", file=sys.stderr)
            except (OSError, subprocess.TimeoutExpired):
                print(f"{self.prog}: interrupted; could not run '{' '.join(command)}', cancel it by hand",
                      file=sys.stderr)
        else:
            print(f"{self.prog}: interrupted; the job id is unknown, cancel the job '{self.name}' by hand",
                  file=sys.stderr)
        sys.exit(128 + signum)

    def run(self) -> int:
        self.submit()
        previous = {sig: signal.signal(sig, self.cancel) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            codes = self.wait()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        for task in self.request.tasks:
            self.marker(task).unlink(missing_ok=True)
        failed = {task: "" if code is not None else self.unfinished for task, code in codes.items() if code != 0}
        return report_failures(self.prog, self.request, failed)


def run_cluster(request: Request, scheduler: Scheduler) -> int:
    return ClusterRunner(request, scheduler).run()
