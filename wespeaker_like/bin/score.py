"""Stage 6: score a trial list with one back-end (cosine, AS-norm or PLDA), compute EER / minDCF,
optionally calibrate the scores on a development trial list.

    python -m wespeaker_like.bin.score \\
        --embeddings exp/x/embeddings/test/xvector.scp --trials data/test/trials \\
        --scores exp/x/scores/test.cosine.score [--results exp/x/scores/test.cosine.result] \\
        [--enroll_map data/cnceleb1_eval/enroll.map] \\
        [--backend cosine|asnorm|plda] [--mean_embeddings exp/x/embeddings/train/xvector.scp] \\
        [--asnorm_cohort exp/x/embeddings/train/xvector.scp --asnorm_top_n 300] \\
        [--plda_train exp/x/embeddings/train/xvector.scp --plda_utt2spk data/train/utt2spk \\
         --lda_dim 100 --plda_model exp/x/plda.npz] \\
        [--calibration_trials dev.trials [--calibration_embeddings dev.scp] --calibration exp/x/calibration.json] \\
        [--p_target 0.01 0.05]

Back-ends: ``cosine`` (mean-normalised with ``--mean_embeddings``), ``asnorm`` (cosine, then
adaptive s-norm against ``--asnorm_cohort``; the default when a cohort is given) and ``plda`` (LDA +
two-covariance PLDA trained on ``--plda_train`` with the speakers of ``--plda_utt2spk`` and saved to
``--plda_model``, or, without ``--plda_train``, read from it). With ``--calibration_trials``, the
same back-end scores the development list, ``llr = a * score + b`` is fitted on it
(``scoring.calibration``) and written with the Bayes threshold of the first ``--p_target``; the
results then also hold Cllr and actual DCF of the calibrated test scores. The score file always
holds the raw scores.

Writes ``<enroll> <test> <score>`` lines (trial order) and a JSON results file, both atomically,
and prints ``EER 8.31 %  minDCF(0.01) 0.512  minDCF(0.05) 0.377`` to stdout.
Options accept ``_`` or ``-`` spelling (``--p_target`` == ``--p-target``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable, List, Optional

import numpy as np

from wespeaker_like.bin._entry import ArgumentParser, entry_point
from wespeaker_like.data.kaldi_dir import read_table
from wespeaker_like.data.trials import Trial, read_trials, require_both_kinds
from wespeaker_like.errors import InputError
from wespeaker_like.scoring.calibration import LinearCalibration, write_calibration
from wespeaker_like.scoring.cosine import EmbeddingTable, enrollment_embeddings, load_embeddings, mean_vector, score_trials
from wespeaker_like.scoring.metrics import (
    compute_act_dcf, compute_cllr, compute_metrics, format_p_target, summary_line,
)
from wespeaker_like.scoring.plda import PldaBackend, plda_score_trials
from wespeaker_like.scoring.scores import SCORE_DECIMALS, write_results, write_scores

BACKENDS = ("cosine", "asnorm", "plda")
# Scores a trial list: (trials, test-side table, enroll-side table or None, trials path) -> [T].
Scorer = Callable[[List[Trial], EmbeddingTable, Optional[EmbeddingTable], Path], np.ndarray]


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="python -m wespeaker_like.bin.score", description=__doc__.split("\n\n")[0])
    parser.add_argument("--embeddings", required=True, type=Path,
            help="embedding scp holding every test (and enroll) id of the trials")
    parser.add_argument("--trials", required=True, type=Path,
            help="trial list, '<enroll> <test> target|nontarget' lines")
    parser.add_argument("--backend", choices=BACKENDS, default=None,
            help="scoring back-end (default: asnorm when --asnorm_cohort is given, else cosine)")
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
    parser.add_argument("--plda_train", type=Path, default=None,
            help="training embedding scp for LDA + PLDA (plda back-end)")
    parser.add_argument("--plda_utt2spk", type=Path, default=None,
            help="utt2spk giving the speaker of every --plda_train embedding")
    parser.add_argument("--lda_dim", type=int, default=0,
            help="LDA dimension before PLDA, at most min(dim, speakers - 1); 0: no LDA (default)")
    parser.add_argument("--plda_model", type=Path, default=None,
            help="PLDA model .npz: written when --plda_train is given, read otherwise")
    parser.add_argument("--calibration_trials", type=Path, default=None,
            help="development trial list: fit a linear calibration of this back-end's scores on it")
    parser.add_argument("--calibration_embeddings", type=Path, default=None,
            help="embedding scp of the development trials (default: --embeddings)")
    parser.add_argument("--calibration", type=Path, default=None,
            help="output calibration JSON (default: the score file with suffix .calibration.json)")
    parser.add_argument("--calibration_prior", type=float, default=None,
            help="training prior of the logistic regression (default: the first --p_target)")
    parser.add_argument("--p_target", type=float, nargs="+", default=[0.01, 0.05],
            help="target priors for minDCF (C_miss = C_fa = 1; default 0.01 0.05)")
    parser.add_argument("--batch_size", type=int, default=8192, help="trials scored per batch")
    return parser


def backend_option_error(args: argparse.Namespace) -> Optional[str]:
    """Why the back-end options do not fit together, or None; sets ``args.backend`` when unset."""
    args.backend = args.backend or ("asnorm" if args.asnorm_cohort is not None else "cosine")
    backend = args.backend
    if backend == "asnorm" and args.asnorm_cohort is None:
        return "--backend asnorm needs --asnorm_cohort (a cohort embedding scp)"
    if backend != "asnorm" and args.asnorm_cohort is not None:
        return f"--asnorm_cohort is only used by --backend asnorm, not {backend}"
    if backend != "plda":
        if args.plda_train is not None or args.plda_model is not None:
            return f"--plda_train / --plda_model are only used by --backend plda, not {backend}"
        return None
    if args.mean_embeddings is not None:
        return "--mean_embeddings does not apply to --backend plda (PLDA centres with the mean of --plda_train)"
    if args.plda_train is None and args.plda_model is None:
        return "--backend plda needs --plda_train and --plda_utt2spk, or --plda_model"
    if args.plda_train is not None and args.plda_utt2spk is None:
        return "--plda_train needs --plda_utt2spk (the speaker of every training embedding)"
    return None


def train_plda(args: argparse.Namespace) -> PldaBackend:
    """LDA + PLDA on ``--plda_train`` with the speakers of ``--plda_utt2spk``, saved if asked."""
    table = load_embeddings(args.plda_train)
    utt2spk = read_table(args.plda_utt2spk)
    unknown = [key for key in table.keys if key not in utt2spk]
    if unknown:
        raise InputError(args.plda_utt2spk, f"no speaker for '{unknown[0]}' of '{args.plda_train}' "
                         f"({len(unknown)} such; expected the utt2spk of the PLDA training set)")
    speakers = [utt2spk[key] for key in table.keys]
    num_speakers = len(set(speakers))
    if num_speakers < 2:
        raise InputError(args.plda_utt2spk, f"PLDA needs embeddings of at least 2 speakers, "
                         f"'{args.plda_train}' has {num_speakers}")
    if args.lda_dim > min(table.dim, num_speakers - 1):
        raise InputError(args.plda_train, f"--lda_dim {args.lda_dim} is too large: LDA gives at most "
                         f"min(dimension {table.dim}, speakers {num_speakers} - 1) dimensions")
    backend = PldaBackend.fit(table.matrix, speakers, args.lda_dim or None)
    if args.plda_model is not None:
        backend.save(args.plda_model)
    return backend


def make_scorer(args: argparse.Namespace, backend: str, dim: int) -> Scorer:
    """The scoring function of ``backend``, with its models loaded or trained once."""
    if backend == "plda":
        model = train_plda(args) if args.plda_train is not None else PldaBackend.load(args.plda_model)
        return lambda trials, table, enroll, path: plda_score_trials(trials, model, table, enroll, path)
    mean = None
    if args.mean_embeddings is not None:
        mean_table = load_embeddings(args.mean_embeddings)
        if mean_table.dim != dim:
            raise InputError(args.mean_embeddings, f"embeddings have dimension {mean_table.dim}, "
                             f"expected {dim} like '{args.embeddings}'")
        mean = mean_vector(mean_table)
    cohort = None if args.asnorm_cohort is None else load_embeddings(args.asnorm_cohort)
    return lambda trials, table, enroll, path: score_trials(
        trials, table, enroll_embeddings=enroll, mean=mean, cohort=cohort, top_n=args.asnorm_top_n,
        batch_size=args.batch_size, trials_path=path)


def calibrate(args: argparse.Namespace, backend: str, scorer: Scorer, embeddings: EmbeddingTable,
              scores: np.ndarray, labels: List[bool], results: dict) -> None:
    """Fit the calibration on the development trials, write it, add its figures to ``results``."""
    dev_table = embeddings
    if args.calibration_embeddings is not None:
        dev_table = load_embeddings(args.calibration_embeddings)
    dev_trials = read_trials(args.calibration_trials, known_utts=dev_table.index)
    require_both_kinds(dev_trials, args.calibration_trials)
    dev_scores = scorer(dev_trials, dev_table, None, args.calibration_trials)
    dev_labels = [t.is_target for t in dev_trials]
    prior = args.calibration_prior if args.calibration_prior is not None else args.p_target[0]
    calibration = LinearCalibration.fit(dev_scores, dev_labels, prior=prior)
    path = args.calibration or args.scores.with_suffix(".calibration.json")  # removed by run() first
    record = write_calibration(
        path, calibration, args.p_target[0], args.calibration_trials, backend=backend,
        embeddings=str(args.calibration_embeddings or args.embeddings),
        mean_embeddings=None if args.mean_embeddings is None else str(args.mean_embeddings),
        num_trials=len(dev_trials), dev_cllr=compute_cllr(calibration(dev_scores), dev_labels))
    llrs = calibration(scores)
    results["calibration"] = dict(record, path=str(path))
    results["cllr"] = compute_cllr(llrs, labels)
    results["act_dcf"] = {format_p_target(p): compute_act_dcf(llrs, labels, p) for p in args.p_target}


def run(args: argparse.Namespace) -> dict:
    """Score, write the score and results files (and the calibration), return the results dict.

    ``args`` come checked by ``backend_option_error``. Outputs of an earlier run are removed
    first, so a failure never leaves them looking current.
    """
    start = time.perf_counter()
    results_path = args.results or args.scores.with_suffix(".result")
    calibration_path = args.calibration or args.scores.with_suffix(".calibration.json")
    for stale in (args.scores, results_path, calibration_path):
        stale.unlink(missing_ok=True)
    backend = args.backend
    embeddings = load_embeddings(args.embeddings)
    enroll = None if args.enroll_embeddings is None else load_embeddings(args.enroll_embeddings)
    if args.enroll_map is not None:
        enroll = enrollment_embeddings(enroll or embeddings, args.enroll_map)
    if enroll is None:
        trials = read_trials(args.trials, known_utts=embeddings.index)
    else:
        trials = read_trials(args.trials)  # ids are checked side by side when scoring
    require_both_kinds(trials, args.trials)
    scorer = make_scorer(args, backend, embeddings.dim)
    # Rounded as the score file holds them, so stage 7 (which reads the file) gets these same metrics.
    scores = np.round(np.asarray(scorer(trials, embeddings, enroll, args.trials), dtype=np.float64), SCORE_DECIMALS)
    labels = [t.is_target for t in trials]
    results = compute_metrics(scores, labels, args.p_target)
    results["scoring"] = {
        "backend": backend,
        "embeddings": str(args.embeddings),
        "enroll_embeddings": None if args.enroll_embeddings is None else str(args.enroll_embeddings),
        "enroll_map": None if args.enroll_map is None else str(args.enroll_map),
        "trials": str(args.trials),
        "mean_embeddings": None if args.mean_embeddings is None else str(args.mean_embeddings),
        "asnorm_cohort": None if args.asnorm_cohort is None else str(args.asnorm_cohort),
        "asnorm_top_n": args.asnorm_top_n if args.asnorm_cohort is not None else None,
        "plda_train": None if args.plda_train is None else str(args.plda_train),
        "lda_dim": args.lda_dim or None if backend == "plda" else None,
        "plda_model": None if args.plda_model is None else str(args.plda_model),
    }
    if args.calibration_trials is not None:
        calibrate(args, backend, scorer, embeddings, scores, labels, results)
    write_scores(args.scores, trials, scores)
    write_results(results_path, results)
    print(f"{backend}: scored {len(trials)} trials in {time.perf_counter() - start:.2f} s -> {args.scores}, "
          f"{results_path}", file=sys.stderr)
    return results


@entry_point("score")
def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.asnorm_top_n < 2:
        build_parser().error("--asnorm_top_n must be at least 2")
    if args.calibration is not None and args.calibration_trials is None:
        build_parser().error("--calibration needs --calibration_trials (the development trial list)")
    problem = backend_option_error(args)
    if problem:
        build_parser().error(problem)
    if args.lda_dim < 0:
        build_parser().error("--lda_dim must be 0 (no LDA) or positive")
    if args.calibration_prior is not None and not 0.0 < args.calibration_prior < 1.0:
        build_parser().error(f"--calibration_prior must be in (0, 1), got {args.calibration_prior}")
    for p in args.p_target:
        if not 0.0 < p < 1.0:
            build_parser().error(f"--p_target values must be in (0, 1), got {p}")
    results = run(args)
    line = summary_line(results)
    if "cllr" in results:
        line += f"  Cllr {results['cllr']:.3f}" + "".join(
            f"  actDCF({key}) {value:.3f}" for key, value in results["act_dcf"].items())
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
