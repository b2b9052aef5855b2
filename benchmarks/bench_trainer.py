#!/usr/bin/env python3
"""Training steps per second of the real trainer, for one or more checkouts side by side.

Runs ``wespeaker_like.bin.train`` of each checkout (``--code DIR``, repeatable; default: this one)
on the same data dir and config, stops it after ``--steps`` logged steps, and reports the seconds
per step between the first and the last logged step (the start-up, data-set scan and first batches
are left out). Checkouts are measured in turn, ``--rounds`` times, so a change in machine load
touches all of them alike; the table prints the median of the rounds.

    # before/after a change, on the mini recipe's features (stage 3 done):
    git worktree add /tmp/base <old commit>
    python3 benchmarks/bench_trainer.py --code /tmp/base --code . \\
        --config egs/speechocean762/v1/conf/ecapa_aam.yaml \\
        --train_data egs/speechocean762/v1/data/train_combined --steps 40 --rounds 2
"""

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STEP_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) train INFO epoch \d+ batch \d+/\d+ step (\d+) (.*)$")


def seconds_per_step(code: Path, config: Path, train_data: Path, steps: int, log_every: int) -> tuple:
    """Train from scratch in a temporary exp dir until step ``steps`` is logged:
    ((last - first logged time) / steps between them, the logged values of the last step)."""
    env = dict(os.environ, PYTHONPATH=str(code), OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY", "PASSIVE"),
               MALLOC_MMAP_MAX_="0", MALLOC_TRIM_THRESHOLD_="100000000000")
    with tempfile.TemporaryDirectory() as exp:
        log = Path(exp) / "train.log"
        command = [sys.executable, "-m", "wespeaker_like.bin.train", "--config", str(config),
                   "--train_data", str(train_data), "--exp_dir", exp,
                   "--set", f"trainer.log_every={log_every}", "trainer.checkpoint_every_steps=100000",
                   "trainer.device=cpu"]
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                start_new_session=True, text=True)
        times, values = {}, ""
        try:
            while proc.poll() is None and steps not in times:
                time.sleep(0.5)
                if log.is_file():
                    for line in log.read_text().splitlines():
                        match = STEP_LINE.match(line)
                        if match:
                            stamp = time.mktime(time.strptime(match.group(1)[:19], "%Y-%m-%d %H:%M:%S"))
                            times[int(match.group(2))] = stamp + int(match.group(1)[20:]) / 1000
                            values = match.group(3)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if steps not in times:
            raise SystemExit(f"{code}: training stopped before step {steps}:\n{proc.stderr.read()[-2000:]}")
        first = min(times)
        return (times[steps] - times[first]) / (steps - first), values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--code", action="append", type=Path, help="checkout to measure (repeatable)")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--train_data", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--log_every", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    codes = [c.resolve() for c in (args.code or [Path(__file__).resolve().parents[1]])]
    results = {code: [] for code in codes}
    for round_number in range(args.rounds):
        for code in codes:
            value, logged = seconds_per_step(code, args.config.resolve(), args.train_data.resolve(), args.steps,
                                             args.log_every)
            results[code].append(value)
            print(f"round {round_number + 1} {code}: {value:.3f} s/step; step {args.steps}: {logged}", flush=True)
    print(f"\n| checkout | s/step (median of {args.rounds}) | rounds |\n|---|---|---|")
    for code, values in results.items():
        print(f"| {code} | {statistics.median(values):.3f} | {', '.join(f'{v:.3f}' for v in values)} |")


if __name__ == "__main__":
    main()
