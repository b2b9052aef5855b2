"""Instance-mixup draws (paper 002, i-mix / l-mix; kibok90/imix's ``mixup``): each sample i is mixed
with a partner r(i) != i by a weight λ_i ~ Beta(α, α).

Both draws take a ``numpy`` generator, so an objective can seed them from its own seed and the
step (``dataset.views.stream``) and never touch the global RNG (exact resume).
"""

from __future__ import annotations

import numpy as np


def random_derangement(n: int, rng: np.random.Generator) -> np.ndarray:
    """A uniformly random permutation of ``range(n)`` without fixed points, (n,) int64.

    Permutations with a fixed point are redrawn whole (about e draws on average), which keeps the
    result uniform over derangements. ValueError for n < 2 (no derangement exists)."""
    if n < 2:
        raise ValueError(f"a derangement needs at least 2 items (i-mix needs a batch of >= 2), got {n}")
    identity = np.arange(n)
    while True:
        permutation = rng.permutation(n)
        if not np.any(permutation == identity):
            return permutation


def mixing_weights(n: int, alpha: float, rng: np.random.Generator, per_sample: bool = True,
                   lam_max: bool = False) -> np.ndarray:
    """λ ~ Beta(α, α), (n,) float64: one per sample, or one shared by the batch (``per_sample=False``);
    ``lam_max`` replaces λ by max(λ, 1 − λ) (the i-mix reference), so the sample itself dominates."""
    if alpha <= 0:
        raise ValueError(f"the mixup alpha must be > 0, got {alpha}")
    lam = rng.beta(alpha, alpha, size=n if per_sample else 1)
    if lam_max:
        lam = np.maximum(lam, 1.0 - lam)
    return np.broadcast_to(lam, (n,)).astype(np.float64)


def mix(first, second, lam):
    """λ·first + (1 − λ)·second with λ broadcast over the trailing dims; (B, ...) tensors, λ (B,)."""
    lam = lam.reshape(-1, *([1] * (first.dim() - 1))).to(first.dtype)
    return lam * first + (1 - lam) * second


def distance_from_line(x, first, second):
    """Euclidean distance of each x_i from the line through first_i and second_i, each flattened to
    a supervector (paper 002 Fig. 6): (B, ...) tensors -> (B,). An i-mix sample lies on the line
    (distance 0); an l-mix sample leaves it by what the decoder makes of the mixed code."""
    x, a, b = (t.flatten(1).double() for t in (x, first, second))
    direction = a - b
    offset = x - b
    along = (offset * direction).sum(1, keepdim=True) / direction.square().sum(1, keepdim=True).clamp(min=1e-30)
    return (offset - along * direction).norm(dim=1)
