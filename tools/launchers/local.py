"""run.pl: run the jobs on this machine, several at once.

* At most ``--max-jobs-run`` jobs run at once; the default is the number of CPUs this process
  may use divided by ``--num-threads`` (at least 1). Jobs that must all run at the same time
  (e.g. ranks waiting for each other) need an explicit ``--max-jobs-run``.
* ``--num-threads N`` exports OMP_NUM_THREADS, MKL_NUM_THREADS and OPENBLAS_NUM_THREADS=N.
* ``--gpu N`` gives every job N GPUs of its own through CUDA_VISIBLE_DEVICES, taken from the
  GPUs visible to run.pl (its CUDA_VISIBLE_DEVICES, else ``nvidia-smi -L``); jobs wait for free
  GPUs, so no two running jobs share one. With no GPU visible it warns and leaves
  CUDA_VISIBLE_DEVICES alone (the job may fall back to the CPU).
* ``--mem``, ``--config`` and options only a scheduler config knows are accepted and ignored,
  so one recipe runs under every launcher.
* Ctrl-C / SIGTERM kills the running jobs (each runs in its own process group) and starts no more.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Dict, List, Optional

from .request import LauncherError, Request, log_footer, log_header, report_failures

PROG = "run.pl"


def default_max_jobs(threads: int) -> int:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cpus // threads)


def visible_gpus() -> List[str]:
    """GPU ids a job may be given: from CUDA_VISIBLE_DEVICES if set, else nvidia-smi."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [gpu.strip() for gpu in listed.split(",") if gpu.strip() and gpu.strip() != "-1"]
    try:
        result = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [str(i) for i, line in enumerate(l for l in result.stdout.splitlines() if l.startswith("GPU "))]


class GpuPool:
    """Hands out disjoint sets of GPU ids to concurrently running jobs."""

    def __init__(self, gpus: List[str]):
        self._free = list(gpus)
        self._changed = threading.Condition()

    def take(self, count: int) -> List[str]:
        with self._changed:
            self._changed.wait_for(lambda: len(self._free) >= count)
            taken, self._free = self._free[:count], self._free[count:]
            return taken

    def give_back(self, gpus: List[str]) -> None:
        with self._changed:
            self._free.extend(gpus)
            self._changed.notify_all()


class LocalRunner:
    """Runs the jobs of a request in a thread pool, one ``bash -c`` process group each."""

    def __init__(self, request: Request):
        self.request = request
        self.max_jobs = request.max_jobs_run or default_max_jobs(request.num_threads)
        self.gpu_pool: Optional[GpuPool] = None
        if request.gpus > 0:
            gpus = visible_gpus()
            if not gpus:
                print(f"{PROG}: warning: --gpu {request.gpus} asked for but no GPU is visible "
                      "(CUDA_VISIBLE_DEVICES / nvidia-smi); running without setting CUDA_VISIBLE_DEVICES",
                      file=sys.stderr)
            elif len(gpus) < request.gpus:
                raise LauncherError(f"--gpu {request.gpus} asked for but only {len(gpus)} GPUs are "
                                    f"visible ({','.join(gpus)})")
            else:
                self.gpu_pool = GpuPool(gpus)
        self._running: Dict[int, subprocess.Popen] = {}
        self._lock = threading.Lock()
        self._stopping = False
        self.stopped_by = 0  # the signal that stopped the run, 0 if none

    def _environment(self, gpus: Optional[List[str]]) -> Dict[str, str]:
        env = dict(os.environ)
        if self.request.threads_given:
            for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
                env[name] = str(self.request.num_threads)
        if gpus is not None:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
        return env

    def run_job(self, task: int) -> Optional[int]:
        """Run one job, writing its log; returns its exit code, None if never started."""
        gpus = self.gpu_pool.take(self.request.gpus) if self.gpu_pool else None
        try:
            if self._stopping:
                return None
            log_path = self.request.log_path(task)
            command = self.request.command(task)
            try:
                log_path.parent.mkdir(parents=True, exist_ok=True)
                log = open(log_path, "w", encoding="utf-8")
            except OSError as err:
                print(f"{PROG}: cannot write the log {log_path}: {err.strerror}", file=sys.stderr)
                return 1
            start = time.monotonic()
            with log:
                log.write(log_header(command))
                log.flush()
                with self._lock:
                    if self._stopping:
                        return None
                    process = subprocess.Popen(["bash", "-c", command], stdin=subprocess.DEVNULL, stdout=log,
                                               stderr=subprocess.STDOUT, env=self._environment(gpus),
                                               start_new_session=True)
                    self._running[task] = process
                code = process.wait()
                with self._lock:
                    del self._running[task]
                if code < 0:
                    code = 128 - code  # killed by a signal: report it as bash does
                log.write(log_footer(round(time.monotonic() - start), self.request.num_threads, code))
            return code
        finally:
            if gpus is not None:
                self.gpu_pool.give_back(gpus)

    def stop(self, signum: int, _frame=None) -> None:
        """Signal handler: kill running jobs, start no new ones."""
        with self._lock:
            self._stopping = True
            self.stopped_by = signum
            for process in self._running.values():
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass

    def run(self) -> int:
        previous = {sig: signal.signal(sig, self.stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            with ThreadPoolExecutor(max_workers=self.max_jobs) as pool:
                futures = {task: pool.submit(self.run_job, task) for task in self.request.tasks}
                # Wait with a timeout so signal handlers get to run in this (the main) thread.
                while wait(futures.values(), timeout=0.5).not_done:
                    pass
            codes = {task: future.result() for task, future in futures.items()}
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        failed = {task: ("killed" if code is not None and self.stopped_by else "")
                  for task, code in codes.items() if code not in (0, None)}
        status = report_failures(PROG, self.request, failed)
        if self.stopped_by:
            never_run = sum(code is None for code in codes.values())
            print(f"{PROG}: interrupted by signal {self.stopped_by}; {never_run} jobs were not started",
                  file=sys.stderr)
            return 128 + self.stopped_by
        return status


def run_local(request: Request) -> int:
    return LocalRunner(request).run()
