"""Cosine scoring of trial lists from Kaldi embedding scp files, with optional mean
normalisation and symmetric adaptive s-norm (AS-norm).

Pipeline for every embedding (enrollment, test and cohort alike)::

    x  ->  x - mean   (only with a mean vector, e.g. of the training-set embeddings)
       ->  x / ||x||
    score(e, t) = <e_hat, t_hat>

AS-norm (optional) then rescales every raw cosine score with statistics of the ``top_n`` highest
scores of each side against a cohort:
``s' = ((s - mu_e) / sigma_e + (s - mu_t) / sigma_t) / 2`` (population std, ``ddof=0``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from wespeaker_like.data.kaldi_dir import line_of, read_list_table
from wespeaker_like.data.scp import ArkFiles, read_scp
from wespeaker_like.data.trials import Trial
from wespeaker_like.errors import InputError
from wespeaker_like.scoring.scores import trial_line_number


@dataclass
class EmbeddingTable:
    """Embeddings keyed by id: ``keys`` [N] and ``matrix`` [N, D] (float64), rows in scp order."""

    keys: List[str]
    matrix: np.ndarray
    path: Optional[Path] = None
    index: Dict[str, int] = field(init=False, repr=False)

    def __post_init__(self):
        self.matrix = np.asarray(self.matrix, dtype=np.float64)
        if self.matrix.ndim != 2 or self.matrix.shape[0] != len(self.keys):
            raise ValueError(f"matrix must be [{len(self.keys)}, D], got {self.matrix.shape}")
        self.index = {key: row for row, key in enumerate(self.keys)}
        if len(self.index) != len(self.keys):
            raise ValueError("embedding keys are not unique")

    def __len__(self) -> int:
        return len(self.keys)

    def __contains__(self, key: str) -> bool:
        return key in self.index

    @property
    def dim(self) -> int:
        return self.matrix.shape[1]

    def rows(self, ids: Sequence[str]) -> np.ndarray:
        """Row indices [len(ids)] of ``ids`` (KeyError for an unknown id)."""
        return np.fromiter((self.index[i] for i in ids), dtype=np.int64, count=len(ids))


def load_embeddings(scp: str | Path) -> EmbeddingTable:
    """Read a Kaldi scp of vectors (``<utt> <ark>:<offset>`` lines, as written by kaldiio).

    A stored 1 x D matrix is taken as a vector. Raises ``InputError`` naming the scp and line for
    a missing file, a malformed or unsafe line (see ``data.scp``), a duplicate key, an unreadable
    entry or a dimension that differs from the first entry's.
    """
    scp = Path(scp)
    if not scp.is_file():
        raise InputError(scp, "embedding scp not found (expected '<utt> <ark>:<offset>' lines)")
    locations = read_scp(scp)
    if not locations:
        raise InputError(scp, "embedding scp is empty")
    vectors: List[np.ndarray] = []
    with ArkFiles() as arks:
        for key, location in locations.items():
            value = arks.load(location, scp, key)
            if value.ndim == 2 and value.shape[0] == 1:
                value = value[0]
            if value.ndim != 1:
                raise InputError(scp, f"expected a vector for '{key}', got an array of shape "
                                      f"{value.shape}", line_of(scp, key))
            if vectors and value.shape != vectors[0].shape:
                raise InputError(scp, f"embedding of '{key}' has dimension {value.shape[0]}, "
                                      f"expected {vectors[0].shape[0]} like the first entry", line_of(scp, key))
            vectors.append(value)
    return EmbeddingTable(list(locations), np.stack(vectors), scp)


def enrollment_embeddings(embeddings: EmbeddingTable, enroll_map: str | Path) -> EmbeddingTable:
    """One row per enrollment id of ``enroll_map`` (``<enroll id> <utt> <utt> ...`` lines, as the
    CN-Celeb preparation writes it): the id's own embedding when ``embeddings`` has it (one
    concatenated enrollment utterance), otherwise the mean of its utterances' embeddings [D].

    An utterance without an embedding raises ``InputError`` at its enroll.map line.
    """
    enroll_map = Path(enroll_map)
    table = read_list_table(enroll_map)
    rows: List[np.ndarray] = []
    for enroll_id, utts in table.items():
        if enroll_id in embeddings:
            rows.append(embeddings.matrix[embeddings.index[enroll_id]])
            continue
        missing = [u for u in utts if u not in embeddings]
        if missing:
            where = f" '{embeddings.path}'" if embeddings.path else ""
            raise InputError(enroll_map, f"enrollment utterance '{missing[0]}' of '{enroll_id}' has no embedding "
                             f"in{where}", line_of(enroll_map, enroll_id))
        rows.append(embeddings.matrix[embeddings.rows(utts)].mean(axis=0))
    return EmbeddingTable(list(table), np.stack(rows), enroll_map)


def l2_normalise(matrix: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows divided by their L2 norm: [N, D] -> [N, D] (an all-zero row stays zero)."""
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    return matrix / np.maximum(norms, eps)


def normalise(matrix: np.ndarray, mean: Optional[np.ndarray] = None) -> np.ndarray:
    """Optional mean subtraction ([D]) then L2 normalisation: [N, D] -> [N, D]."""
    if mean is not None:
        if mean.shape != (matrix.shape[1],):
            raise ValueError(f"mean vector has shape {mean.shape}, embeddings have dim {matrix.shape[1]}")
        matrix = matrix - mean
    return l2_normalise(matrix)


def mean_vector(table: EmbeddingTable) -> np.ndarray:
    """Mean embedding [D] of a set (WeSpeaker's ``mean_vec``, usually the training set)."""
    return table.matrix.mean(axis=0)


def asnorm_statistics(embeddings: np.ndarray, cohort: np.ndarray, top_n: int,
                      batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std [M] of each embedding's ``top_n`` highest cosine scores against a cohort.

    ``embeddings`` [M, D] and ``cohort`` [C, D] must already be normalised. ``top_n`` larger
    than C uses the whole cohort.
    """
    if top_n < 2:
        raise ValueError(f"asnorm top_n must be at least 2, got {top_n}")
    n = min(top_n, cohort.shape[0])
    means = np.empty(embeddings.shape[0])
    stds = np.empty(embeddings.shape[0])
    for start in range(0, embeddings.shape[0], batch_size):
        scores = embeddings[start:start + batch_size] @ cohort.T                  # [B, C]
        top = np.partition(scores, scores.shape[1] - n, axis=1)[:, -n:]         # [B, n]
        means[start:start + batch_size] = top.mean(axis=1)
        stds[start:start + batch_size] = top.std(axis=1)
    return means, np.maximum(stds, 1e-12)


def lookup_rows(table: EmbeddingTable, ids: Sequence[str], side: str,
            trials_path: Optional[Path]) -> np.ndarray:
    """Row indices of ``ids`` in ``table``; an unknown id raises InputError at its trial line."""
    try:
        return table.rows(ids)
    except KeyError:
        index = next(k for k, key in enumerate(ids) if key not in table)
        where = f" '{table.path}'" if table.path else ""
        raise InputError(trials_path, f"{side} utterance '{ids[index]}' has no embedding in{where} "
                         f"(expected every trial id to be in the embedding scp)",
                         trial_line_number(trials_path, index)) from None


def trial_rows(trials: Sequence[Trial], enroll_table: EmbeddingTable, test_table: EmbeddingTable,
               trials_path: Optional[Path]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rows each side of the trials uses, once: ``(enroll_used [U], enroll_inv [T], test_used [V],
    test_inv [T])`` with ``enroll_table row = enroll_used[enroll_inv[k]]`` for trial k (and so on)."""
    enroll_rows = lookup_rows(enroll_table, [t.enroll for t in trials], "enroll", trials_path)
    test_rows = lookup_rows(test_table, [t.test for t in trials], "test", trials_path)
    enroll_used, enroll_inv = np.unique(enroll_rows, return_inverse=True)
    test_used, test_inv = np.unique(test_rows, return_inverse=True)
    return enroll_used, enroll_inv.reshape(-1), test_used, test_inv.reshape(-1)


def score_trials(trials: Sequence[Trial], embeddings: EmbeddingTable,
                 enroll_embeddings: Optional[EmbeddingTable] = None,
                 mean: Optional[np.ndarray] = None,
                 cohort: Optional[EmbeddingTable] = None, top_n: int = 300,
                 batch_size: int = 8192, trials_path: Optional[str | Path] = None) -> np.ndarray:
    """Cosine scores [T] of ``trials`` (each an ``(enroll, test, is_target)``).

    ``embeddings`` holds the test side (and the enroll side unless ``enroll_embeddings`` is
    given, e.g. per-speaker averaged models keyed by model id). ``mean`` [D] is subtracted from
    every embedding before L2 normalisation. With a ``cohort`` table, scores are AS-normed with
    the ``top_n`` cohort statistics of each side. ``trials_path`` is only used in error messages.
    """
    trials_path = None if trials_path is None else Path(trials_path)
    enroll_table = embeddings if enroll_embeddings is None else enroll_embeddings
    if enroll_table.dim != embeddings.dim:
        raise ValueError(f"enroll embeddings have dim {enroll_table.dim}, test ones {embeddings.dim}")
    # Normalise only the rows the trials use: [U, D] each, indexed by inverse maps.
    enroll_used, enroll_inv, test_used, test_inv = trial_rows(trials, enroll_table, embeddings, trials_path)
    enroll_vecs = normalise(enroll_table.matrix[enroll_used], mean)
    test_vecs = normalise(embeddings.matrix[test_used], mean)

    scores = np.empty(len(trials))
    for start in range(0, len(trials), batch_size):
        stop = start + batch_size
        scores[start:stop] = np.einsum("ij,ij->i", enroll_vecs[enroll_inv[start:stop]],
                                       test_vecs[test_inv[start:stop]])

    if cohort is not None:
        if cohort.dim != embeddings.dim:
            raise InputError(cohort.path, f"cohort embeddings have dimension {cohort.dim}, "
                             f"expected {embeddings.dim} like the test embeddings")
        cohort_vecs = normalise(cohort.matrix, mean)
        mu_e, sigma_e = asnorm_statistics(enroll_vecs, cohort_vecs, top_n)
        mu_t, sigma_t = asnorm_statistics(test_vecs, cohort_vecs, top_n)
        mu_e, sigma_e = mu_e[enroll_inv], sigma_e[enroll_inv]
        mu_t, sigma_t = mu_t[test_inv], sigma_t[test_inv]
        scores = 0.5 * ((scores - mu_e) / sigma_e + (scores - mu_t) / sigma_t)
    return scores
