"""Score files: ``<enroll> <test> <score>`` lines, written atomically, read with line-level errors."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from wespeaker_like.data.kaldi_dir import table_lines
from wespeaker_like.data.trials import Trial
from wespeaker_like.errors import InputError
from wespeaker_like.fileio import atomic_write


def trial_line_number(trials_path: str | Path | None, index: int) -> Optional[int]:
    """Line number of the ``index``-th (0-based) trial, i.e. non-blank line, of a trial file.

    ``read_trials`` skips blank lines, so list positions and file lines can differ; this maps
    back for error messages. None when the file cannot be read.
    """
    if trials_path is None or not Path(trials_path).is_file():
        return None
    return next((line.number for seen, line in enumerate(table_lines(trials_path)) if seen == index), None)


SCORE_DECIMALS = 6  # what a score file holds; metrics are computed on scores rounded the same way


def write_scores(path: str | Path, trials: Sequence[Trial], scores: Sequence[float]) -> None:
    """One ``<enroll> <test> <score>`` line per trial, in trial order (``SCORE_DECIMALS`` decimals)."""
    if len(trials) != len(scores):
        raise ValueError(f"{len(trials)} trials but {len(scores)} scores")
    with atomic_write(path) as handle:
        handle.writelines(f"{t.enroll} {t.test} {s:.{SCORE_DECIMALS}f}\n" for t, s in zip(trials, scores))


def read_scores(path: str | Path) -> Dict[Tuple[str, str], float]:
    """``{(enroll, test): score}`` from a score file; InputError at a malformed or repeated line."""
    scores: Dict[Tuple[str, str], float] = {}
    for line in table_lines(path, "score file not found (expected '<enroll> <test> <score>' lines)"):
        if len(line.fields) != 3:
            raise line.expected("'<enroll> <test> <score>'")
        try:
            value = float(line.fields[2])
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise line.error(f"expected a finite number as score, got '{line.fields[2]}'")
        key = (line.fields[0], line.fields[1])
        if key in scores:
            raise line.error(f"trial '{key[0]} {key[1]}' is scored twice")
        scores[key] = value
    if not scores:
        raise InputError(path, "score file is empty")
    return scores


def align_scores(scores: Dict[Tuple[str, str], float], trials: Sequence[Trial],
                 scores_path: str | Path, trials_path: str | Path) -> Tuple[np.ndarray, np.ndarray]:
    """Scores [T] and boolean labels [T] in trial order; a trial without a score is an error."""
    values: List[float] = []
    for index, trial in enumerate(trials):
        value = scores.get((trial.enroll, trial.test))
        if value is None:
            raise InputError(trials_path, f"trial '{trial.enroll} {trial.test}' has no score in "
                             f"'{scores_path}' (expected the score file of this trial list)",
                             trial_line_number(trials_path, index))
        values.append(value)
    return np.asarray(values), np.fromiter((t.is_target for t in trials), dtype=bool, count=len(trials))


def write_results(path: str | Path, results: Dict[str, object]) -> None:
    """Results dict (see ``metrics.compute_metrics``) as indented JSON, atomically."""
    with atomic_write(path) as handle:
        json.dump(results, handle, indent=2, sort_keys=False)
        handle.write("\n")
