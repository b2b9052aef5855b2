"""vCLUB upper bounds of mutual information (paper 000, eq. 3, 12-19; Linear95/CLUB).

Each estimator is a variational network q_φ(y | x). Its ``learning_loss`` (the negative
log-likelihood of the joint pairs) trains φ on detached embeddings; its ``forward`` gives the vCLUB
estimate Î = mean_i log q(y_i | x_i) − mean_{i,j} log q(y_j | x_i), which the main objective
minimises with φ frozen but differentiable.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def gaussian_club(mu: torch.Tensor, logvar: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """vCLUB estimate (scalar) for q(y | x) = N(mu(x), diag exp(logvar(x))); all inputs (N, D).

    Positive pairs: Σ_d −(y_id − mu_id)² / 2v_id; negative pairs: the same against every y_j,
    averaged over j (j = i included) with the anchor's variance v_i. The log-normalisers cancel.
    """
    inverse_variance = torch.exp(-logvar)
    positive = (-(mu - y) ** 2 / 2.0 * inverse_variance).sum(dim=1)
    # mean_j (y_j − mu_i)² = mean_j y_j² − 2 mu_i·mean_j y_j + mu_i²  (no (N, N, D) tensor)
    mean_square_distance = (y ** 2).mean(dim=0) - 2.0 * mu * y.mean(dim=0) + mu ** 2
    negative = (-mean_square_distance / 2.0 * inverse_variance).sum(dim=1)
    return (positive - negative).mean()


def gaussian_loglikelihood(mu: torch.Tensor, logvar: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """mean_i Σ_d [−(y_id − mu_id)² / v_id − logvar_id]: 2× the Gaussian log-likelihood up to a constant
    (the reference drops the ½; the scale does not matter to Adam)."""
    return (-(mu - y) ** 2 * torch.exp(-logvar) - logvar).sum(dim=1).mean()


def categorical_club(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """vCLUB estimate (scalar) for q(y | x) = softmax(logits(x)); logits (N, L), labels (N,) ints.

    log_prob[i, j] = log q(labels_j | x_i); mean of the diagonal minus mean of all N² entries.
    """
    log_prob = F.log_softmax(logits, dim=1)[:, labels]  # (N, N)
    return log_prob.diagonal().mean() - log_prob.mean()


def categorical_loglikelihood(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """mean_i log q(labels_i | x_i) = −cross-entropy."""
    return -F.cross_entropy(logits, labels)


class GaussianClub(nn.Module):
    """q(y | x) Gaussian with separate mean and log-variance branches, each
    Linear(x_dim, hidden) → ReLU → Linear(hidden, y_dim); tanh on the log-variance (so v ∈ (e⁻¹, e))."""

    def __init__(self, x_dim: int, y_dim: int, hidden: int = 1024):
        super().__init__()
        self.mean = nn.Sequential(nn.Linear(x_dim, hidden), nn.ReLU(), nn.Linear(hidden, y_dim))
        self.logvar = nn.Sequential(nn.Linear(x_dim, hidden), nn.ReLU(), nn.Linear(hidden, y_dim), nn.Tanh())

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """x (N, x_dim), y (N, y_dim) -> the vCLUB estimate of I(x; y)."""
        return gaussian_club(self.mean(x), self.logvar(x), y)

    def learning_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return -gaussian_loglikelihood(self.mean(x), self.logvar(x), y)


class CategoricalClub(nn.Module):
    """q(label | x) = softmax(Linear(x_dim, hidden) → ReLU → Linear(hidden, num_classes))."""

    def __init__(self, x_dim: int, num_classes: int, hidden: int = 1024):
        super().__init__()
        self.classifier = nn.Sequential(nn.Linear(x_dim, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """x (N, x_dim), labels (N,) -> the vCLUB estimate of I(x; label)."""
        return categorical_club(self.classifier(x), labels)

    def learning_loss(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return -categorical_loglikelihood(self.classifier(x), labels)
