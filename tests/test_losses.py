"""Margin softmaxes against their direct formulas."""

import math

import numpy as np
import pytest
import torch

from wespeaker_like.losses import AAMSoftmax, AMSoftmax, Softmax


def direct_loss(emb, weight, labels, scale, margin, kind):
    """-1/N Σ log softmax with the target logit s·ψ(θ_y), computed element by element in numpy."""
    emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    weight = weight / np.linalg.norm(weight, axis=1, keepdims=True)
    total = 0.0
    for i, y in enumerate(labels):
        cos = weight @ emb[i]
        logits = scale * cos
        theta = math.acos(np.clip(cos[y], -1, 1))
        if kind == "am":
            logits[y] = scale * (cos[y] - margin)
        elif theta + margin <= math.pi:
            logits[y] = scale * math.cos(theta + margin)
        else:
            logits[y] = scale * (cos[y] - margin * math.sin(margin))
        total += -(logits[y] - np.log(np.exp(logits).sum()))
    return total / len(labels)


@pytest.mark.parametrize("cls, kind", [(AAMSoftmax, "aam"), (AMSoftmax, "am")])
def test_margin_losses_match_formula(cls, kind):
    torch.manual_seed(0)
    head = cls(16, 7, margin=0.3, scale=30.0)
    emb, labels = torch.randn(12, 16), torch.randint(0, 7, (12,))
    got = head(emb, labels).item()
    want = direct_loss(emb.numpy(), head.weight.detach().numpy(), labels.numpy(), 30.0, 0.3, kind)
    assert got == pytest.approx(want, rel=1e-4)


def test_aam_fallback_branch_when_angle_plus_margin_exceeds_pi():
    head = AAMSoftmax(2, 2, margin=0.5, scale=10.0)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    emb = torch.tensor([[-1.0, 0.05]])  # nearly opposite to class 0: θ ≈ π - 0.05
    labels = torch.tensor([0])
    got = head.logits(emb, labels)[0, 0].item()
    cos = -1.0 / math.hypot(1.0, 0.05)
    assert got == pytest.approx(10.0 * (cos - 0.5 * math.sin(0.5)), rel=1e-5)
    assert head(emb, labels).item() == pytest.approx(
        direct_loss(emb.numpy(), head.weight.detach().numpy(), [0], 10.0, 0.5, "aam"), rel=1e-5)


def test_zero_margin_is_scaled_cosine_softmax_and_no_margin_at_inference():
    torch.manual_seed(1)
    head = AAMSoftmax(8, 5, margin=0.0, scale=16.0)
    emb, labels = torch.randn(4, 8), torch.tensor([0, 1, 2, 3])
    cosine = torch.nn.functional.normalize(emb) @ torch.nn.functional.normalize(head.weight).T
    assert torch.allclose(head.logits(emb, labels), 16.0 * cosine, atol=1e-5)
    head.margin = 0.2
    assert torch.allclose(head.logits(emb, None), 16.0 * cosine, atol=1e-5)


def test_softmax_is_linear_cross_entropy():
    torch.manual_seed(2)
    head = Softmax(8, 5)
    emb, labels = torch.randn(6, 8), torch.randint(0, 5, (6,))
    want = torch.nn.functional.cross_entropy(head.linear(emb), labels)
    assert head(emb, labels).item() == pytest.approx(want.item())
