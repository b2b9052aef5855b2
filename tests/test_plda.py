"""PLDA back-end: EM recovers known covariances, LLR equals the Gaussian closed form, LDA, save/load."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from wespeaker_like.data.trials import Trial
from wespeaker_like.errors import InputError
from wespeaker_like.scoring.cosine import EmbeddingTable
from wespeaker_like.scoring.plda import PldaBackend, TwoCovPLDA, fit_lda, plda_score_trials, scatter_matrices

DIM = 4
MU = np.array([1.0, -2.0, 0.5, 0.0])
# Between- and within-speaker covariances with correlations, well conditioned.
BETWEEN = np.array([[2.0, 0.6, 0.0, 0.3], [0.6, 1.5, -0.4, 0.0], [0.0, -0.4, 1.0, 0.2], [0.3, 0.0, 0.2, 0.8]])
WITHIN = np.array([[0.5, 0.1, 0.0, 0.0], [0.1, 0.4, 0.05, 0.0], [0.0, 0.05, 0.6, -0.1], [0.0, 0.0, -0.1, 0.3]])


def draw(num_speakers, utts_per_speaker, seed, dim_extra=0):
    """Vectors [S*n, DIM] of the two-covariance model and their speaker labels."""
    rng = np.random.default_rng(seed)
    speakers = rng.multivariate_normal(MU, BETWEEN, size=num_speakers)
    noise = rng.multivariate_normal(np.zeros(DIM), WITHIN, size=(num_speakers, utts_per_speaker))
    x = (speakers[:, None, :] + noise).reshape(-1, DIM)
    labels = [f"spk{s:04d}" for s in range(num_speakers) for _ in range(utts_per_speaker)]
    return x, labels


def entry_standard_errors(cov, dof):
    """Standard error of each entry of a sample covariance of ``dof`` Gaussian draws."""
    return np.sqrt((cov ** 2 + np.outer(np.diag(cov), np.diag(cov))) / dof)


def test_em_recovers_the_between_and_within_covariances():
    num_speakers, n = 2000, 8
    x, labels = draw(num_speakers, n, seed=1)
    model = TwoCovPLDA.fit(x, labels)
    # Within: N - S = 14000 degrees of freedom. Between: estimated from the 2000 speaker means,
    # whose covariance is B + W/n, so its error is that of a 2000-draw sample covariance of B + W/n.
    # Five standard errors per entry: a false failure has odds below 1e-5 per entry.
    within_se = entry_standard_errors(WITHIN, num_speakers * (n - 1))
    between_se = entry_standard_errors(BETWEEN + WITHIN / n, num_speakers)
    assert np.all(np.abs(model.within - WITHIN) < 5 * within_se), model.within - WITHIN
    assert np.all(np.abs(model.between - BETWEEN) < 5 * between_se), model.between - BETWEEN
    assert np.all(np.abs(model.mu - MU) < 5 * np.sqrt(np.diag(BETWEEN + WITHIN / n) / num_speakers))
    # The estimates are not just the initial scatter matrices: EM moved the between-class one
    # (the scatter of class means also holds W/n).
    _, _, scatter_between = scatter_matrices(x, labels)
    assert np.abs(scatter_between - model.between).max() > 0.02


def test_em_with_unequal_speaker_sizes_converges_to_a_fixed_point():
    x, labels = draw(300, 6, seed=2)
    keep = np.random.default_rng(3).random(len(labels)) < 0.7  # 1-6 utterances per speaker
    keep[::6] = True
    x, labels = x[keep], [l for l, k in zip(labels, keep) if k]
    model = TwoCovPLDA.fit(x, labels, max_iterations=500, tolerance=1e-10)
    ids = np.unique(labels, return_inverse=True)[1]
    counts = np.bincount(ids)
    sums = np.zeros((counts.size, DIM))
    np.add.at(sums, ids, x)
    again = model._em_step(counts, sums, x.T @ x, x.shape[0])
    np.testing.assert_allclose(again.between, model.between, atol=1e-8)
    np.testing.assert_allclose(again.within, model.within, atol=1e-8)
    assert np.abs(model.within - WITHIN).max() < 0.1 and np.abs(model.between - BETWEEN).max() < 0.5


def test_llr_equals_the_gaussian_closed_form():
    model = TwoCovPLDA(MU, BETWEEN, WITHIN)
    rng = np.random.default_rng(4)
    x1 = rng.normal(size=(20, DIM)) * 1.5 + MU
    x2 = np.concatenate([x1[:10] + rng.normal(size=(10, DIM)) * 0.5, rng.normal(size=(10, DIM)) * 1.5 + MU])
    total = BETWEEN + WITHIN
    same = multivariate_normal(np.concatenate([MU, MU]), np.block([[total, BETWEEN], [BETWEEN, total]]))
    different = multivariate_normal(np.concatenate([MU, MU]),
                                    np.block([[total, np.zeros((DIM, DIM))], [np.zeros((DIM, DIM)), total]]))
    pairs = np.concatenate([x1, x2], axis=1)
    expected = same.logpdf(pairs) - different.logpdf(pairs)
    np.testing.assert_allclose(model.llr(x1, x2, batch_size=7), expected, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(model.llr(x2, x1), expected, rtol=1e-9, atol=1e-9)  # symmetric
    assert expected[:10].mean() > expected[10:].mean() + 1


def test_lda_whitens_within_and_orders_between_class_directions():
    rng = np.random.default_rng(5)
    # 10-d data: speaker information only in the first 3 coordinates.
    x, labels = draw(400, 5, seed=6)
    x = np.concatenate([x[:, :3], rng.normal(size=(x.shape[0], 7))], axis=1)
    projection = fit_lda(x, labels, 3)
    _, within, between = scatter_matrices(x, labels)
    np.testing.assert_allclose(projection.T @ within @ projection, np.eye(3), atol=1e-4)
    projected_between = projection.T @ between @ projection
    ratios = np.diag(projected_between)
    np.testing.assert_allclose(projected_between, np.diag(ratios), atol=1e-6)
    assert np.all(np.diff(ratios) < 0)
    # The speaker-free coordinates carry (almost) no weight in the kept directions.
    assert np.abs(projection[3:]).max() < 0.2 * np.abs(projection[:3]).max()
    with pytest.raises(ValueError, match="LDA dimension"):
        fit_lda(x, labels[:10] + ["one"] * (len(labels) - 10), 3)  # 3 speakers: at most 2 dims


def test_backend_scores_are_the_plda_llr_of_the_transformed_embeddings(tmp_path):
    x, labels = draw(60, 6, seed=7)
    rng = np.random.default_rng(8)
    embeddings = np.concatenate([x, rng.normal(size=(x.shape[0], 4))], axis=1) @ rng.normal(size=(8, 8))
    backend = PldaBackend.fit(embeddings, labels, lda_dim=3)
    assert backend.lda.shape == (8, 3) and backend.plda.between.shape == (3, 3)
    transformed = backend.transform(embeddings)
    np.testing.assert_allclose(np.linalg.norm(transformed, axis=1), np.sqrt(3))
    enroll, test = embeddings[0:60:6], embeddings[1:60:6]
    scores = backend.score(enroll, test)
    np.testing.assert_allclose(scores, backend.plda.llr(backend.transform(enroll), backend.transform(test)))
    impostor = backend.score(embeddings[0:60:6], embeddings[7:67:6])
    assert scores.mean() > impostor.mean()

    # Trial lists: rows looked up by id, enroll ids possibly from another table.
    table = EmbeddingTable([f"u{i}" for i in range(len(labels))], embeddings)
    trials = [Trial(f"u{i}", f"u{i + 1}", True) for i in range(0, 60, 6)] + [Trial("u0", "u7", False)]
    np.testing.assert_allclose(plda_score_trials(trials, backend, table),
                               np.append(scores, impostor[0]), rtol=1e-12)
    models = EmbeddingTable(["model"], embeddings[:3].mean(axis=0, keepdims=True))
    np.testing.assert_allclose(plda_score_trials([Trial("model", "u4", True)], backend, table, models),
                               backend.score(embeddings[:3].mean(axis=0, keepdims=True), embeddings[4:5]))
    with pytest.raises(InputError, match="dimension 3, the PLDA model expects 8"):
        plda_score_trials(trials, backend, EmbeddingTable(table.keys, embeddings[:, :3]))

    path = tmp_path / "model" / "plda.npz"
    backend.save(path)
    assert [p.name for p in path.parent.iterdir()] == ["plda.npz"]  # no temporary left
    loaded = PldaBackend.load(path)
    np.testing.assert_array_equal(loaded.score(enroll, test), scores)
    no_lda = PldaBackend.fit(embeddings, labels)
    no_lda.save(path)
    assert PldaBackend.load(path).lda is None
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="bad.npz: not a readable"):
        PldaBackend.load(tmp_path / "bad.npz")
    with pytest.raises(InputError, match="PLDA model not found"):
        PldaBackend.load(tmp_path / "missing.npz")
