"""Report figures: NIST-style DET curve and a two-panel t-SNE of embeddings (speaker / gender).

Figures are drawn on ``matplotlib.figure.Figure`` objects with the Agg canvas (no pyplot global
state, no display needed) and saved atomically as PNG.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from scipy.special import ndtri  # noqa: E402  (inverse of the standard normal CDF)

from wespeaker_like.fileio import atomic_path  # noqa: E402
from wespeaker_like.scoring.cosine import normalise  # noqa: E402
from wespeaker_like.scoring.metrics import DetCurve  # noqa: E402

# Axis ticks of NIST DET plots, in percent.
DET_TICKS_PERCENT = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 40, 60, 80, 90, 95, 98, 99)


def _save(fig: Figure, path: str | Path, dpi: int) -> None:
    FigureCanvasAgg(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)


def _probit(p: np.ndarray) -> np.ndarray:
    """Normal deviate of probabilities (clipped away from 0 and 1 so it stays finite)."""
    return ndtri(np.clip(p, 1e-7, 1.0 - 1e-7))


def _spaced_ticks(low: float, high: float) -> list:
    """NIST tick values (percent) inside [low, high], thinned from the top so labels stay apart."""
    span = float(_probit(np.array([high]))[0] - _probit(np.array([low]))[0])
    kept: list = []
    for tick in sorted(DET_TICKS_PERCENT, reverse=True):
        if not low <= tick / 100 <= high:
            continue
        position = float(_probit(np.array([tick / 100]))[0])
        if not kept or kept[-1][1] - position >= 0.065 * span:
            kept.append((tick, position))
    return sorted(t for t, _ in kept)


def plot_det(path: str | Path, curve: DetCurve, eer: float,
             dcf_points: Optional[Mapping[str, Tuple[float, float]]] = None,
             title: str = "DET curve", label: Optional[str] = None, dpi: int = 120) -> None:
    """DET curve on normal-deviate axes (ticks in %), with the EER point marked.

    ``curve`` from ``metrics.det_curve``; ``eer`` as a fraction; ``dcf_points`` optionally maps a
    label such as ``"minDCF(0.01)"`` to the ``(P_fa, P_miss)`` operating point to mark.
    """
    fig = Figure(figsize=(5.5, 5.5))
    ax = fig.add_subplot(1, 1, 1)
    positive = np.concatenate([curve.p_miss[curve.p_miss > 0], curve.p_fa[curve.p_fa > 0]])
    low = float(np.clip(positive.min() if positive.size else 1e-3, 1e-4, 1e-2))
    high = 0.6 if eer < 0.3 else 0.99
    ax.plot(_probit(curve.p_fa), _probit(curve.p_miss), lw=1.5, label=label or "system")
    ax.plot(_probit(np.array([low, high])), _probit(np.array([low, high])), color="0.7", lw=0.8, ls="--")
    ax.plot(_probit(np.array([eer])), _probit(np.array([eer])), "o", color="tab:red",
            label=f"EER {100 * eer:.2f} %")
    for (name, (p_fa, p_miss)), marker in zip((dcf_points or {}).items(), "sD^v"):
        visible = low <= p_fa <= high and low <= p_miss <= high
        ax.plot(_probit(np.array([p_fa])), _probit(np.array([p_miss])), marker, ms=6,
                fillstyle="none", label=name if visible else f"{name} (off axes)")
    ticks = _spaced_ticks(low, high)
    tick_pos = _probit(np.array(ticks) / 100)
    tick_labels = [f"{t:g}" for t in ticks]
    for axis_ticks, axis_labels, set_lim in ((ax.set_xticks, ax.set_xticklabels, ax.set_xlim),
                                             (ax.set_yticks, ax.set_yticklabels, ax.set_ylim)):
        axis_ticks(tick_pos)
        axis_labels(tick_labels)
        set_lim(_probit(np.array([low]))[0], _probit(np.array([high]))[0])
    ax.set_xlabel("False acceptance rate (%)")
    ax.set_ylabel("False rejection rate (%)")
    ax.set_title(title)
    ax.grid(True, color="0.85", lw=0.6)
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    _save(fig, path, dpi)


def select_by_speaker(utts: Sequence[str], utt2spk: Mapping[str, str], max_utts: int,
                      seed: int = 0) -> List[str]:
    """Keep whole speakers (seeded random order) while the total stays <= ``max_utts``.

    Returns the kept utterances in their input order; if even the first speaker is larger than
    ``max_utts``, its first ``max_utts`` utterances are kept.
    """
    if len(utts) <= max_utts:
        return list(utts)
    by_speaker: Dict[str, List[str]] = {}
    for utt in utts:
        by_speaker.setdefault(utt2spk[utt], []).append(utt)
    speakers = sorted(by_speaker)
    random.Random(seed).shuffle(speakers)
    keep: set = set()
    for speaker in speakers:
        if len(keep) + len(by_speaker[speaker]) <= max_utts:
            keep.update(by_speaker[speaker])
    if not keep:
        keep.update(by_speaker[speakers[0]][:max_utts])
    return [u for u in utts if u in keep]


def tsne_2d(embeddings: np.ndarray, seed: int = 0, perplexity: float = 30.0,
            pca_dims: int = 50, iterations: int = 1000) -> np.ndarray:
    """2-D t-SNE of embeddings: [N, D] -> [N, 2].

    The embeddings are mean-normalised (by their own mean) and L2-normalised, reduced by PCA to
    ``pca_dims`` (when D is larger), then embedded with Barnes-Hut t-SNE (PCA init, seeded).
    Perplexity is capped at (N - 1) / 3 so small sets work; ``iterations`` >= 250 (sklearn).
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    if embeddings.shape[0] < 4:
        raise ValueError(f"t-SNE needs at least 4 embeddings, got {embeddings.shape[0]}")
    x = normalise(np.asarray(embeddings, dtype=np.float64), embeddings.mean(axis=0))
    dims = min(pca_dims, x.shape[0], x.shape[1])
    if dims < x.shape[1]:
        x = PCA(n_components=dims, random_state=seed).fit_transform(x)
    perplexity = min(perplexity, (x.shape[0] - 1) / 3.0)
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", learning_rate="auto",
                max_iter=iterations, random_state=seed)
    return tsne.fit_transform(x.astype(np.float32))


GENDER_COLOURS = {"m": ("tab:blue", "male (m)"), "f": ("tab:red", "female (f)")}


def plot_tsne(path: str | Path, points: np.ndarray, speakers: Sequence[str],
              genders: Sequence[str], title: str = "t-SNE of test embeddings",
              seed: int = 0, dpi: int = 120) -> None:
    """Two panels of the same 2-D points [N, 2]: coloured by speaker, and by gender.

    Speakers get colours spread over a cyclic colormap in a seeded random order (no legend);
    genders ``m``/``f`` get a legend, anything else is drawn grey as "unknown".
    """
    points = np.asarray(points)
    unique = sorted(set(speakers))
    order = list(range(len(unique)))
    random.Random(seed).shuffle(order)
    colour_of = {spk: order[i] / max(len(unique), 1) for i, spk in enumerate(unique)}
    speaker_colour = np.array([colour_of[s] for s in speakers])

    fig = Figure(figsize=(12, 5.8))
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    left.scatter(points[:, 0], points[:, 1], c=speaker_colour, cmap="hsv", vmin=0.0, vmax=1.0,
                 s=5, linewidths=0)
    left.set_title(f"by speaker ({len(unique)} speakers, {len(points)} utterances)")
    genders = np.asarray([g if g in GENDER_COLOURS else "unknown" for g in genders])
    for gender in list(GENDER_COLOURS) + ["unknown"]:
        mask = genders == gender
        if not mask.any():
            continue
        colour, name = GENDER_COLOURS.get(gender, ("0.6", "unknown"))
        right.scatter(points[mask, 0], points[mask, 1], color=colour, s=5, linewidths=0,
                      alpha=0.7, label=f"{name}: {int(mask.sum())}")
    right.set_title("by gender")
    right.legend(loc="best", markerscale=3, fontsize=9)
    for ax in (left, right):
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title)
    fig.tight_layout()
    _save(fig, path, dpi)


def plot_tsne_by_label(path: str | Path, panels: Mapping[str, tuple], dpi: int = 120) -> None:
    """One panel per ``{title: (points (N, 2), labels (N,))}``, points coloured by label, with a legend."""
    fig = Figure(figsize=(6 * len(panels), 5.8))
    for k, (title, (points, labels)) in enumerate(panels.items()):
        points, labels = np.asarray(points), np.asarray(labels)
        ax = fig.add_subplot(1, len(panels), k + 1)
        for value in sorted(set(labels.tolist())):
            mask = labels == value
            ax.scatter(points[mask, 0], points[mask, 1], s=5, linewidths=0, alpha=0.7,
                       label=f"{value}: {int(mask.sum())}")
        ax.set_title(title)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(loc="best", markerscale=3, fontsize=8)
    fig.tight_layout()
    _save(fig, path, dpi)
