"""Paper 004's losses against naive loop implementations of their formulas (METHODS.md §5.2)."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from wespeaker_like.losses import AAMSoftmax, AngularPrototypical, GaussianCriticInfoNCE, gaussian_infonce
from wespeaker_like.losses import sup_margin_con_loss
from wespeaker_like.losses.contrastive import DENOMINATORS


def psi(cos, margin, margin_type):
    """The positive pair's similarity with its margin (cosines inside ±(1 − 1e-7))."""
    cos = min(max(cos, -1 + 1e-7), 1 - 1e-7)
    if margin_type == "cos":
        return min(max(cos - margin, -1 + 1e-7), 1 - 1e-7)
    theta = math.acos(cos)
    return math.cos(theta + margin) if theta + margin <= math.pi else cos - (1 - math.cos(margin))


def naive_sup_margin_con(z, labels, tau, margin, margin_type, denominator):
    n = len(z)
    total = 0.0
    for i in range(n):
        sim = [psi(float(z[i] @ z[a]), margin, margin_type) if labels[a] == labels[i]
               else float(z[i] @ z[a]) for a in range(n)]
        positives = [p for p in range(n) if p != i and labels[p] == labels[i]]
        negatives = [a for a in range(n) if labels[a] != labels[i]]
        terms = []
        for p in positives:
            if denominator == "all_but_self":
                pool = [a for a in range(n) if a != i]
            elif denominator == "this_pos+negatives":
                pool = [p] + negatives
            else:
                pool = negatives
            terms.append(sim[p] / tau - math.log(sum(math.exp(sim[a] / tau) for a in pool)))
        total += -sum(terms) / max(len(terms), 1)
    return total / n


def views_and_labels(seed=0, batch=6, dim=5):
    rng = np.random.default_rng(seed)
    views = rng.normal(size=(2 * batch, dim))
    views /= np.linalg.norm(views, axis=1, keepdims=True)
    speakers = np.array([0, 0, 1, 2, 2, 2][:batch])
    return views, np.tile(speakers, 2)


@pytest.mark.parametrize("denominator", DENOMINATORS)
@pytest.mark.parametrize("margin_type, margin", [("arc", 0.2), ("arc", 2.5), ("cos", 0.3)])
def test_sup_margin_con_matches_the_formula(denominator, margin_type, margin):
    """Margin 2.5 puts positive pairs past θ + m > π (the continuous fallback)."""
    views, labels = views_and_labels()
    got = sup_margin_con_loss(torch.tensor(views), torch.tensor(labels), 0.1, margin, margin_type, denominator)
    want = naive_sup_margin_con(views, labels, 0.1, margin, margin_type, denominator)
    assert got.item() == pytest.approx(want, rel=1e-10)


def test_zero_margin_is_supcon_and_instance_labels_are_simclr():
    views, labels = views_and_labels(seed=1)
    z, y = torch.tensor(views), torch.tensor(labels)
    supcon = naive_sup_margin_con(views, labels, 0.07, 0.0, "arc", "all_but_self")
    for margin_type in ("arc", "cos"):
        assert sup_margin_con_loss(z, y, 0.07, 0.0, margin_type).item() == pytest.approx(supcon, rel=1e-10)
    # SimCLR / NT-Xent: the only positive is the other view of the same sample
    instance = torch.arange(6).repeat(2)
    logits = (z @ z.T / 0.07).fill_diagonal_(float("-inf"))
    nt_xent = F.cross_entropy(logits, torch.arange(12).roll(6))
    assert sup_margin_con_loss(z, instance, 0.07).item() == pytest.approx(nt_xent.item(), rel=1e-10)


def test_a_margin_makes_positives_harder():
    views, labels = views_and_labels(seed=2)
    z, y = torch.tensor(views), torch.tensor(labels)
    losses = [sup_margin_con_loss(z, y, 0.07, m, "arc", "this_pos+negatives").item() for m in (0.0, 0.1, 0.2)]
    assert losses[0] < losses[1] < losses[2]


def naive_infonce(z, mu, rho, positive_term, contrast):
    n = len(z)
    score = np.array([[-rho * np.sum((z[i] - mu[j]) ** 2) for j in range(n)] for i in range(n)])
    if contrast == "embeddings":
        score = score.T
    total = 0.0
    for i in range(n):
        total += -math.log(sum(math.exp(score[i, j]) for j in range(n)))
        if positive_term:
            total += score[i, i]
    return total / n + (math.log(n) if positive_term else 0.0)


@pytest.mark.parametrize("positive_term", [True, False])
@pytest.mark.parametrize("contrast", ["means", "embeddings"])
def test_gaussian_infonce_matches_the_formula(positive_term, contrast):
    rng = np.random.default_rng(3)
    z, mu = rng.normal(size=(7, 4)), rng.normal(size=(7, 4))
    got = gaussian_infonce(torch.tensor(z), torch.tensor(mu), 0.3, positive_term, contrast)
    assert got.item() == pytest.approx(naive_infonce(z, mu, 0.3, positive_term, contrast), rel=1e-10)


def test_infonce_estimate_is_at_most_log_n_and_grows_with_dependence():
    torch.manual_seed(4)
    mu = torch.randn(16, 8, dtype=torch.float64) * 3
    dependent = gaussian_infonce(mu + 0.1 * torch.randn(16, 8, dtype=torch.float64), mu, rho=0.5)
    independent = gaussian_infonce(torch.randn(16, 8, dtype=torch.float64) * 3, mu, rho=0.5)
    assert independent.item() < dependent.item() <= math.log(16)
    assert dependent.item() == pytest.approx(math.log(16), rel=0.01)


def test_critic_is_the_two_layer_mlp_and_gets_gradients():
    critic = GaussianCriticInfoNCE(low_level_dim=6, embed_dim=4, hidden=512, rho=0.05)
    layers = critic.critic_mean
    assert [type(m).__name__ for m in layers] == ["Linear", "ReLU", "Linear"]
    assert (layers[0].in_features, layers[0].out_features, layers[2].out_features) == (6, 512, 4)
    h, z = torch.randn(5, 6), torch.randn(5, 4)
    value = critic(h, z)
    assert value.item() == pytest.approx(gaussian_infonce(z, layers(h), 0.05).item())
    (-value).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in critic.parameters())


def test_angular_prototypical_matches_the_formula():
    torch.manual_seed(5)
    x = torch.randn(4, 3, 6, dtype=torch.float64)
    loss_fn = AngularPrototypical().double()
    assert (loss_fn.w.item(), loss_fn.b.item()) == (10.0, -5.0)
    total = 0.0
    for i in range(4):
        logits = []
        for j in range(4):
            query, proto = x[i, 0].numpy(), x[j, 1:].mean(0).numpy()
            logits.append(10.0 * query @ proto / np.linalg.norm(query) / np.linalg.norm(proto) - 5.0)
        total += -(logits[i] - math.log(sum(math.exp(v) for v in logits)))
    assert loss_fn(x).item() == pytest.approx(total / 4, rel=1e-10)
    loss_fn(x).backward()
    assert loss_fn.w.grad.abs() > 0  # w and b are learnable


def test_aam_3dspeaker_fallback_is_continuous_and_voxceleb_jumps():
    for fallback, jump in (("3dspeaker", False), ("voxceleb_trainer", True)):
        head = AAMSoftmax(2, 2, margin=0.3, scale=1.0, fallback=fallback).double()
        with torch.no_grad():
            head.weight.copy_(torch.eye(2, dtype=torch.float64))
        threshold = math.pi - 0.3
        sides = []
        for theta in (threshold - 1e-9, threshold + 1e-9):
            emb = torch.tensor([[math.cos(theta), math.sin(theta)]], dtype=torch.float64)
            sides.append(head.logits(emb, torch.tensor([0]))[0, 0].item())
        assert (abs(sides[0] - sides[1]) > 0.01) == jump, fallback
        assert sides[0] == pytest.approx(-1.0, abs=1e-6)
