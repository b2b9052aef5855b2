#!/usr/bin/env python3
"""Seconds for EER + minDCF(0.01) + minDCF(0.05) on ``--trials`` random scores.

Ours is ``scoring.metrics.compute_metrics`` (one ``det_curve`` of value sorts and cumulative
counts). With ``--against DIR`` (an exported WeSpeaker tree, imported in place) the run alternates
ours and WeSpeaker's ``score_metrics`` path (``compute_pmiss_pfa_rbst``: one argsort and cumsums;
``compute_eer``; ``compute_c_norm`` per P_target) on the same scores, ``--repeats`` times each, and
prints the medians, their ratio and both results, so that agreement is visible too.

    python3 benchmarks/bench_metrics.py --against /work/ref/wespeaker --trials 10000000 --repeats 5
"""

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

P_TARGETS = (0.01, 0.05)


def ours(scores, labels):
    from wespeaker_like.scoring.metrics import compute_metrics

    metrics = compute_metrics(scores, labels, P_TARGETS)
    return [metrics["eer_percent"] / 100] + [metrics["min_dcf"][f"{p:g}"] for p in P_TARGETS]


def wespeaker_metrics(score_metrics):
    def run(scores, labels):
        fnr, fpr = score_metrics.compute_pmiss_pfa_rbst(scores, labels)
        eer = score_metrics.compute_eer(fnr, fpr)
        return [eer] + [score_metrics.compute_c_norm(fnr, fpr, p) for p in P_TARGETS]
    return run


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trials", type=int, default=10_000_000)
    p.add_argument("--target-rate", type=float, default=0.1)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--against", help="exported WeSpeaker tree (the directory holding wespeaker/)")
    args = p.parse_args()

    rng = np.random.default_rng(0)
    labels = rng.random(args.trials) < args.target_rate
    scores = rng.normal(size=args.trials) + 2.0 * labels
    impls = {"ours": ours}
    if args.against:
        os.environ.setdefault("MPLBACKEND", "Agg")
        from wespeaker_tree import import_wespeaker

        impls["wespeaker"] = wespeaker_metrics(import_wespeaker(args.against, "wespeaker.utils.score_metrics"))
    print(f"# {args.trials} trials ({labels.sum()} target), P_target {P_TARGETS}, {args.repeats} repeats "
          f"alternating; load average at start %.2f %.2f %.2f" % os.getloadavg())
    seconds = {name: [] for name in impls}
    results = {}
    for _ in range(args.repeats):
        for name, fn in impls.items():
            t0 = time.perf_counter()
            results[name] = fn(scores, labels.astype(np.int64) if name == "wespeaker" else labels)
            seconds[name].append(time.perf_counter() - t0)
    print("| implementation | median s | all s | EER | minDCF(0.01) | minDCF(0.05) |")
    print("|---|---|---|---|---|---|")
    for name in impls:
        values = " | ".join(f"{v:.6f}" for v in results[name])
        runs = " ".join(f"{s:.2f}" for s in seconds[name])
        print(f"| {name} | {statistics.median(seconds[name]):.2f} | {runs} | {values} |")
    if "wespeaker" in impls:
        ratio = statistics.median(seconds["wespeaker"]) / statistics.median(seconds["ours"])
        print(f"# ours is {ratio:.2f}x WeSpeaker's speed (median over median)")
    print("# load average at end: %.2f %.2f %.2f" % os.getloadavg())


if __name__ == "__main__":
    main()
