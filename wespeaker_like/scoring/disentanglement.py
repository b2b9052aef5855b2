"""Stage 7 disentanglement diagnostics (paper 000): how much of a nuisance label (the device) each
embedding branch still carries.

* ``linear_probe_accuracy``: multinomial logistic regression fit on training embeddings, accuracy
  on held-out ones (features standardised with the training statistics);
* ``gaussian_mutual_information``: I(a; b) in nats of the Gaussian with the samples' joint covariance,
  ½ (log det Σ_a + log det Σ_b − log det Σ_ab) (a ridge keeps it finite for rank-deficient sets);
* ``diagnose``: both for every branch found (``<dir>/<branch>/xvector.scp`` of ``extract --branch``),
  plus a t-SNE of the held-out embeddings of each branch coloured by the label.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Mapping, Optional, Sequence

import numpy as np

from wespeaker_like.errors import InputError

BRANCHES = ("x", "x_s", "x_d")


def linear_probe_accuracy(train_x: np.ndarray, train_y: Sequence[str], test_x: np.ndarray,
                          test_y: Sequence[str], regularisation: float = 1.0, seed: int = 0) -> float:
    """Accuracy (0-1) on (test_x (M, D), test_y) of a logistic regression fit on (train_x (N, D), train_y).

    ``regularisation`` is the inverse L2 strength C of scikit-learn. A held-out label never seen in
    training counts as an error."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    if len(set(train_y)) < 2:
        raise ValueError(f"a probe needs at least 2 classes in its training labels, got {sorted(set(train_y))}")
    scaler = StandardScaler().fit(train_x)
    probe = LogisticRegression(C=regularisation, max_iter=2000, random_state=seed)
    probe.fit(scaler.transform(train_x), list(train_y))
    return float(np.mean(probe.predict(scaler.transform(test_x)) == np.asarray(list(test_y))))


def gaussian_mutual_information(a: np.ndarray, b: np.ndarray, ridge: float = 1e-6) -> float:
    """I(a; b) in nats under a joint Gaussian fit to the rows of a (N, Da) and b (N, Db)."""
    if len(a) != len(b):
        raise ValueError(f"a and b need the same rows, got {len(a)} and {len(b)}")
    joint = np.cov(np.concatenate([a, b], axis=1), rowvar=False)
    joint = joint + ridge * np.trace(joint) / len(joint) * np.eye(len(joint))
    da = a.shape[1]

    def logdet(matrix):
        return np.linalg.slogdet(matrix)[1]

    return float(0.5 * (logdet(joint[:da, :da]) + logdet(joint[da:, da:]) - logdet(joint)))


def _branch_tables(directory: Path) -> Dict[str, object]:
    from wespeaker_like.scoring.cosine import load_embeddings

    found = {b: load_embeddings(directory / b / "xvector.scp") for b in BRANCHES
             if (directory / b / "xvector.scp").is_file()}
    if not found:
        raise InputError(directory, f"no embeddings of any branch (expected {directory}/<{'|'.join(BRANCHES)}>/"
                         "xvector.scp, written by extract --branch)")
    return found


def _labelled(table, labels: Mapping[str, str], labels_path: Path):
    missing = [u for u in table.keys if u not in labels]
    if missing:
        raise InputError(labels_path, f"no label for utterance '{missing[0]}' ({len(missing)} such)")
    return np.asarray(table.matrix, dtype=np.float64), [labels[u] for u in table.keys]


def diagnose(train_dir: Path, test_dir: Path, labels: Mapping[str, str], labels_path: Path,
             tsne_png: Optional[Path] = None, seed: int = 0, tsne_max_utts: int = 2000) -> Dict[str, float]:
    """{``probe_<branch>``: held-out accuracy, ``mi_x_s_x_d``: Gaussian MI on the held-out set (when both
    branches are there), ``chance``: the majority-class accuracy of the held-out set}."""
    train, test = _branch_tables(train_dir), _branch_tables(test_dir)
    results: Dict[str, float] = {}
    held_out = {}
    for branch in BRANCHES:
        if branch not in train or branch not in test:
            continue
        train_x, train_y = _labelled(train[branch], labels, labels_path)
        test_x, test_y = _labelled(test[branch], labels, labels_path)
        results[f"probe_{branch}"] = linear_probe_accuracy(train_x, train_y, test_x, test_y, seed=seed)
        held_out[branch] = (test[branch].keys, test_x, test_y)
    if not held_out:
        raise InputError(test_dir, f"no branch has embeddings in both {train_dir} and {test_dir}")
    any_labels = next(iter(held_out.values()))[2]
    results["chance"] = max(any_labels.count(v) for v in set(any_labels)) / len(any_labels)
    if "x_s" in held_out and "x_d" in held_out:
        keys_s, x_s, _ = held_out["x_s"]
        row_of = {u: i for i, u in enumerate(held_out["x_d"][0])}
        x_d = held_out["x_d"][1][[row_of[u] for u in keys_s]]
        results["mi_x_s_x_d"] = gaussian_mutual_information(x_s, x_d)
    if tsne_png is not None:
        _plot_by_label(tsne_png, held_out, seed, tsne_max_utts)
    return results


def _plot_by_label(path: Path, held_out: Mapping[str, tuple], seed: int, max_utts: int) -> None:
    from wespeaker_like.scoring.plots import plot_tsne_by_label, tsne_2d

    rng = np.random.default_rng(seed)
    panels = {}
    for branch, (_, x, y) in held_out.items():
        rows = np.sort(rng.permutation(len(x))[:max_utts])
        panels[f"{branch} by device"] = (tsne_2d(x[rows], seed=seed), [y[r] for r in rows])
    plot_tsne_by_label(path, panels)
