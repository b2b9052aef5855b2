"""PLDA back-end: LDA front and two-covariance PLDA trained by EM, scored by the closed-form LLR.

Front (``PldaBackend.transform``), fitted on the training-set embeddings::

    x -> x - m_train -> length-normalised to norm sqrt(D) -> LDA [D -> K] -> length-normalised to sqrt(K)

Two-covariance model (Brummer & de Villiers 2010) of the transformed vectors: every speaker has a
latent ``y ~ N(mu, B)`` and each of its utterances is ``x = y + e``, ``e ~ N(0, W)``. For a trial
``(x1, x2)`` the log-likelihood ratio of "same speaker" against "different speakers" is, with
``T = B + W`` and centred ``xi - mu``,

    llr = 1/2 x1' Q x1 + 1/2 x2' Q x2 + x1' P x2 + c,
    A = (T - B T^-1 B)^-1,  Q = T^-1 - A,  P = T^-1 B A,  c = 1/2 (log|T| - log|T - B T^-1 B|).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from wespeaker_like.data.trials import Trial
from wespeaker_like.errors import InputError
from wespeaker_like.fileio import atomic_path
from wespeaker_like.scoring.cosine import EmbeddingTable, trial_rows


def _class_index(labels: Sequence[str]) -> tuple[np.ndarray, int]:
    """Integer class ids [N] and the number of classes."""
    _, ids = np.unique(np.asarray(labels), return_inverse=True)
    return ids.reshape(-1), int(ids.max()) + 1 if len(ids) else 0


def _length_norm(x: np.ndarray) -> np.ndarray:
    """Rows scaled to norm sqrt(dim): [N, D] -> [N, D] (Kaldi's ivector-normalize-length)."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x * (np.sqrt(x.shape[1]) / np.maximum(norms, 1e-12))


def scatter_matrices(x: np.ndarray, labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Global mean [D], within-class and between-class scatter [D, D] of ``x`` [N, D].

    Within: ``1/N sum_i (x_i - m_s(i))(x_i - m_s(i))'``; between: ``1/N sum_s n_s (m_s - m)(m_s - m)'``.
    """
    ids, num_classes = _class_index(labels)
    counts = np.bincount(ids, minlength=num_classes).astype(np.float64)
    class_means = np.zeros((num_classes, x.shape[1]))
    np.add.at(class_means, ids, x)
    class_means /= counts[:, None]
    mean = x.mean(axis=0)
    centred = x - class_means[ids]
    within = centred.T @ centred / x.shape[0]
    offsets = class_means - mean
    between = (offsets * counts[:, None]).T @ offsets / x.shape[0]
    return mean, within, between


def fit_lda(x: np.ndarray, labels: Sequence[str], dim: int) -> np.ndarray:
    """LDA projection [D, dim]: the ``dim`` leading generalised eigenvectors of (between, within).

    Columns are ordered by decreasing between/within ratio and scaled so that the projected
    within-class scatter is the identity. ``dim`` must be at most min(D, classes - 1). A tiny
    ridge (1e-6 of the mean variance) keeps a rank-deficient within-class scatter invertible.
    """
    from scipy.linalg import eigh

    num_classes = _class_index(labels)[1]
    if not 1 <= dim <= min(x.shape[1], num_classes - 1):
        raise ValueError(f"LDA dimension must be in [1, min(D={x.shape[1]}, speakers-1={num_classes - 1})], "
                         f"got {dim}")
    _, within, between = scatter_matrices(x, labels)
    within = within + 1e-6 * np.trace(within) / x.shape[1] * np.eye(x.shape[1])
    values, vectors = eigh(between, within)  # ascending; vectors' within @ vectors = I
    return vectors[:, ::-1][:, :dim].copy()


@dataclass
class TwoCovPLDA:
    """Speaker mean ``mu`` [K], between-speaker ``between`` [K, K] and within ``within`` [K, K]."""

    mu: np.ndarray
    between: np.ndarray
    within: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray, labels: Sequence[str], max_iterations: int = 100,
            tolerance: float = 1e-7) -> "TwoCovPLDA":
        """Maximum-likelihood model of ``x`` [N, K] with speaker ``labels`` [N] by EM.

        Starts from the scatter matrices; stops when no entry of the covariances moves by more
        than ``tolerance`` times their largest entry, or after ``max_iterations``.
        """
        ids, num_speakers = _class_index(labels)
        if num_speakers < 2:
            raise ValueError(f"PLDA needs at least 2 speakers, got {num_speakers}")
        counts = np.bincount(ids, minlength=num_speakers)
        sums = np.zeros((num_speakers, x.shape[1]))
        np.add.at(sums, ids, x)
        second_moment = x.T @ x
        mean, within, between = scatter_matrices(x, labels)
        model = cls(mean, between + 1e-6 * np.eye(x.shape[1]) * np.trace(within) / x.shape[1],
                    within * x.shape[0] / max(x.shape[0] - num_speakers, 1))
        for _ in range(max_iterations):
            updated = model._em_step(counts, sums, second_moment, x.shape[0])
            scale = np.abs(updated.within).max() + np.abs(updated.between).max()
            change = max(np.abs(updated.within - model.within).max(), np.abs(updated.between - model.between).max())
            model = updated
            if change <= tolerance * scale:
                break
        return model

    def _em_step(self, counts: np.ndarray, sums: np.ndarray, second_moment: np.ndarray,
                 num_utts: int) -> "TwoCovPLDA":
        """One EM iteration from per-speaker counts [S], sums [S, K] and sum_i x_i x_i' [K, K]."""
        between_inv = np.linalg.inv(self.between)
        within_inv = np.linalg.inv(self.within)
        dim = sums.shape[1]
        posterior_means = np.empty_like(sums)
        posterior_cov_sum = np.zeros((dim, dim))           # sum_s C_s
        weighted_cov_sum = np.zeros((dim, dim))            # sum_s n_s C_s
        for n in np.unique(counts):  # speakers with the same count share the posterior covariance
            members = counts == n
            cov = np.linalg.inv(between_inv + n * within_inv)
            posterior_means[members] = (between_inv @ self.mu + sums[members] @ within_inv) @ cov
            posterior_cov_sum += members.sum() * cov
            weighted_cov_sum += members.sum() * n * cov
        num_speakers = len(counts)
        mu = posterior_means.mean(axis=0)
        offsets = posterior_means - mu
        between = (posterior_cov_sum + offsets.T @ offsets) / num_speakers
        cross = sums.T @ posterior_means
        within = (second_moment - cross - cross.T + weighted_cov_sum
                  + (posterior_means * counts[:, None]).T @ posterior_means) / num_utts
        return TwoCovPLDA(mu, (between + between.T) / 2, (within + within.T) / 2)

    def llr_terms(self) -> tuple[np.ndarray, np.ndarray, float]:
        """``Q`` [K, K], ``P`` [K, K] and ``c`` of the closed-form LLR (module docstring)."""
        total = self.between + self.within
        total_inv = np.linalg.inv(total)
        schur = total - self.between @ total_inv @ self.between
        schur_inv = np.linalg.inv(schur)
        q = total_inv - schur_inv
        p = total_inv @ self.between @ schur_inv
        const = 0.5 * (np.linalg.slogdet(total)[1] - np.linalg.slogdet(schur)[1])
        return (q + q.T) / 2, (p + p.T) / 2, float(const)

    def llr(self, x1: np.ndarray, x2: np.ndarray, batch_size: int = 8192) -> np.ndarray:
        """Same-vs-different-speaker log-likelihood ratios [T] of paired rows of x1, x2 [T, K]."""
        q, p, const = self.llr_terms()
        out = np.empty(x1.shape[0])
        for start in range(0, x1.shape[0], batch_size):
            a = x1[start:start + batch_size] - self.mu
            b = x2[start:start + batch_size] - self.mu
            out[start:start + batch_size] = (0.5 * np.einsum("ij,jk,ik->i", a, q, a)
                                             + 0.5 * np.einsum("ij,jk,ik->i", b, q, b)
                                             + np.einsum("ij,jk,ik->i", a, p, b) + const)
        return out


@dataclass
class PldaBackend:
    """Training mean [D], LDA projection [D, K] (or None: no LDA) and the PLDA model in K dims."""

    mean: np.ndarray
    lda: Optional[np.ndarray]
    plda: TwoCovPLDA

    @classmethod
    def fit(cls, embeddings: np.ndarray, labels: Sequence[str], lda_dim: Optional[int] = None,
            max_iterations: int = 100) -> "PldaBackend":
        """Front and PLDA from training embeddings [N, D] with speaker labels [N]."""
        mean = embeddings.mean(axis=0)
        x = _length_norm(embeddings - mean)
        lda = None if lda_dim is None else fit_lda(x, labels, lda_dim)
        backend = cls(mean, lda, TwoCovPLDA(np.zeros(1), np.eye(1), np.eye(1)))
        backend.plda = TwoCovPLDA.fit(backend.transform(embeddings), labels, max_iterations)
        return backend

    def transform(self, embeddings: np.ndarray) -> np.ndarray:
        """The front: [N, D] -> [N, K] (module docstring)."""
        x = _length_norm(np.asarray(embeddings, dtype=np.float64) - self.mean)
        if self.lda is not None:
            x = _length_norm(x @ self.lda)
        return x

    def score(self, enroll: np.ndarray, test: np.ndarray) -> np.ndarray:
        """LLRs [T] of paired raw embeddings enroll, test [T, D]."""
        return self.plda.llr(self.transform(enroll), self.transform(test))

    def save(self, path: str | Path) -> None:
        """One ``.npz`` file, written atomically."""
        arrays = {"mean": self.mean, "mu": self.plda.mu, "between": self.plda.between,
                  "within": self.plda.within}
        if self.lda is not None:
            arrays["lda"] = self.lda
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as handle:
                np.savez(handle, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> "PldaBackend":
        """Read a model written by ``save``; InputError naming the file when it is not one."""
        path = Path(path)
        if not path.is_file():
            raise InputError(path, "PLDA model not found (expected an .npz written by bin.score --backend plda)")
        try:
            with np.load(path) as data:
                arrays = {key: data[key] for key in data.files}
        except (OSError, ValueError) as err:
            raise InputError(path, f"not a readable .npz file: {err}") from None
        missing = {"mean", "mu", "between", "within"} - set(arrays)
        if missing:
            raise InputError(path, f"not a PLDA model: arrays {sorted(missing)} missing")
        return cls(arrays["mean"], arrays.get("lda"),
                   TwoCovPLDA(arrays["mu"], arrays["between"], arrays["within"]))


def plda_score_trials(trials: Sequence[Trial], backend: PldaBackend, embeddings: EmbeddingTable,
                      enroll_embeddings: Optional[EmbeddingTable] = None,
                      trials_path: Optional[str | Path] = None) -> np.ndarray:
    """PLDA LLRs [T] of ``trials``; tables as in ``cosine.score_trials`` (each row transformed once)."""
    trials_path = None if trials_path is None else Path(trials_path)
    enroll_table = embeddings if enroll_embeddings is None else enroll_embeddings
    for table in {id(t): t for t in (embeddings, enroll_table)}.values():
        if table.dim != backend.mean.shape[0]:
            raise InputError(table.path, f"embeddings have dimension {table.dim}, the PLDA model expects "
                             f"{backend.mean.shape[0]}")
    enroll_used, enroll_inv, test_used, test_inv = trial_rows(trials, enroll_table, embeddings, trials_path)
    enroll_vecs = backend.transform(enroll_table.matrix[enroll_used])
    test_vecs = backend.transform(embeddings.matrix[test_used])
    return backend.plda.llr(enroll_vecs[enroll_inv], test_vecs[test_inv])
