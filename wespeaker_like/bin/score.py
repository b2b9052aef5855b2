"""Stage 6: cosine-score a trial list and compute EER / minDCF.

    python -m wespeaker_like.bin.score \\
        --embeddings exp/x/embeddings/test/xvector.scp --trials data/test/trials \\
        --scores exp/x/scores/test.score --results exp/x/scores/test.result \\
        [--enroll_map data/cnceleb1_eval/enroll.map] \\
        [--mean_embeddings exp/x/embeddings/train/xvector.scp] \\
        [--asnorm_cohort exp/x/embeddings/train/xvector.scp --asnorm_top_n 300] \\
        [--p_target 0.01 0.05]

Writes ``<enroll> <test> <score>`` lines (trial order) and a JSON results file, both atomically,
and prints ``EER 8.31 %  minDCF(0.01) 0.512  minDCF(0.05) 0.377`` to stdout.
Options accept ``_`` or ``-`` spelling (``--p_target`` == ``--p-target``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import List, Optional

from wespeaker_like.bin._entry import ArgumentParser, entry_point
from wespeaker_like.data.trials import read_trials, require_both_kinds
from wespeaker_like.errors import InputError
from wespeaker_like.scoring.cosine import enrollment_embeddings, load_embeddings, mean_vector, score_trials
from wespeaker_like.scoring.metrics import compute_metrics, summary_line
from wespeaker_like.scoring.scores import write_results, write_scores


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="python -m wespeaker_like.bin.score", description=__doc__.split("\n\n")[0])
    parser.add_argument("--embeddings", required=True, type=Path,
            help="embedding scp holding every test (and enroll) id of the trials")
    parser.add_argument("--trials", required=True, type=Path,
            help="trial list, '<enroll> <test> target|nontarget' lines")
    parser.add_argument("--scores", required=True, type=Path, help="output score file")
    parser.add_argument("--results", type=Path, default=None,
            help="output JSON results file (default: the score file with suffix .result)")
    parser.add_argument("--enroll_embeddings", type=Path, default=None,
            help="separate scp for the enroll side, e.g. per-speaker models (default: --embeddings)")
    parser.add_argument("--enroll_map", type=Path, default=None,
            help="'<enroll id> <utt> ...' lines: an enroll id without its own embedding is scored with the "
                 "mean embedding of its utterances (CN-Celeb enrollment averaging)")
    parser.add_argument("--mean_embeddings", type=Path, default=None,
            help="scp whose mean embedding is subtracted before L2 normalisation (e.g. train set)")
    parser.add_argument("--asnorm_cohort", type=Path, default=None,
            help="cohort embedding scp; enables symmetric adaptive s-norm")
    parser.add_argument("--asnorm_top_n", type=int, default=300,
            help="cohort size N of AS-norm (top-N highest scores per side; default 300)")
    parser.add_argument("--p_target", type=float, nargs="+", default=[0.01, 0.05],
            help="target priors for minDCF (C_miss = C_fa = 1; default 0.01 0.05)")
    parser.add_argument("--batch_size", type=int, default=8192, help="trials scored per batch")
    return parser


def run(args: argparse.Namespace) -> dict:
    """Score, write the score and results files, return the results dict.

    Outputs of an earlier run are removed first, so a failure never leaves them looking current.
    """
    start = time.perf_counter()
    results_path = args.results or args.scores.with_suffix(".result")
    for stale in (args.scores, results_path):
        stale.unlink(missing_ok=True)
    embeddings = load_embeddings(args.embeddings)
    enroll = None if args.enroll_embeddings is None else load_embeddings(args.enroll_embeddings)
    if args.enroll_map is not None:
        enroll = enrollment_embeddings(enroll or embeddings, args.enroll_map)
    if enroll is None:
        trials = read_trials(args.trials, known_utts=embeddings.index)
    else:
        trials = read_trials(args.trials)  # ids are checked side by side in score_trials
    require_both_kinds(trials, args.trials)
    mean = None
    if args.mean_embeddings is not None:
        mean_table = load_embeddings(args.mean_embeddings)
        if mean_table.dim != embeddings.dim:
            raise InputError(args.mean_embeddings, f"embeddings have dimension {mean_table.dim}, "
                             f"expected {embeddings.dim} like '{args.embeddings}'")
        mean = mean_vector(mean_table)
    cohort = None if args.asnorm_cohort is None else load_embeddings(args.asnorm_cohort)

    scores = score_trials(trials, embeddings, enroll_embeddings=enroll, mean=mean, cohort=cohort,
                          top_n=args.asnorm_top_n, batch_size=args.batch_size,
                          trials_path=args.trials)
    labels = [t.is_target for t in trials]
    results = compute_metrics(scores, labels, args.p_target)
    results["scoring"] = {
        "embeddings": str(args.embeddings),
        "enroll_embeddings": None if args.enroll_embeddings is None else str(args.enroll_embeddings),
        "enroll_map": None if args.enroll_map is None else str(args.enroll_map),
        "trials": str(args.trials),
        "mean_embeddings": None if args.mean_embeddings is None else str(args.mean_embeddings),
        "asnorm_cohort": None if args.asnorm_cohort is None else str(args.asnorm_cohort),
        "asnorm_top_n": args.asnorm_top_n if args.asnorm_cohort is not None else None,
    }
    write_scores(args.scores, trials, scores)
    write_results(results_path, results)
    print(f"scored {len(trials)} trials in {time.perf_counter() - start:.2f} s -> {args.scores}, "
          f"{results_path}", file=sys.stderr)
    return results


@entry_point("score")
def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.asnorm_top_n < 2:
        build_parser().error("--asnorm_top_n must be at least 2")
    for p in args.p_target:
        if not 0.0 < p < 1.0:
            build_parser().error(f"--p_target values must be in (0, 1), got {p}")
    print(summary_line(run(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
