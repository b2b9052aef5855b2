"""Self-distillation losses (SDPN, KoLeo, DINO) and collapse statistics against direct formulas,
the float32 pitfalls, and 2 gloo ranks against 1 process holding the concatenated batch."""

import math

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from wespeaker_like.losses.self_distillation import (DinoLoss, KoLeoLoss, SdpnLoss, embedding_std,
                                                     mean_assignment_entropy, prototype_scores, prototypes_used,
                                                     sinkhorn_knopp)


def softmax(rows):
    shifted = np.exp(rows - rows.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def direct_sinkhorn(probs, iterations):
    """Element loops over the (K, B) transpose, as METHODS.md §4.3 writes the scaling."""
    q = probs.T.copy()
    num_prototypes, batch = q.shape
    q /= q.sum()
    for _ in range(iterations):
        for k in range(num_prototypes):
            q[k, :] /= q[k, :].sum() * num_prototypes
        for b in range(batch):
            q[:, b] /= q[:, b].sum() * batch
    return (q * batch).T


def direct_sdpn(student, teacher, tau_s, tau_t, sharpen, iterations, memax_weight, views):
    """L_CE over view-major rows + memax_weight * (Σ pbar log pbar + log K), sharpening by p^(1/T)."""
    teacher_probs = softmax(teacher / tau_t) ** (1.0 / sharpen)
    targets = direct_sinkhorn(teacher_probs / teacher_probs.sum(axis=1, keepdims=True), iterations)
    student_probs = softmax(student / tau_s)
    batch = len(teacher)
    ce = 0.0
    for v in range(views):
        for b in range(batch):
            ce -= sum(targets[b, k] * math.log(student_probs[v * batch + b, k]) for k in range(targets.shape[1]))
    ce /= views * batch
    mean_probs = student_probs.mean(axis=0)
    memax = float((mean_probs * np.log(mean_probs)).sum() + math.log(len(mean_probs)))
    return ce + memax_weight * memax, ce, memax


def random_scores(rng, rows, cols):
    """Cosine-like scores in [-1, 1]."""
    return np.tanh(rng.normal(0, 1, (rows, cols)))


def test_sinkhorn_matches_the_formula_and_rows_are_distributions():
    rng = np.random.default_rng(0)
    logits = random_scores(rng, 7, 12)
    got = sinkhorn_knopp(torch.tensor(logits), 0.05, iterations=3).numpy()
    np.testing.assert_allclose(got, direct_sinkhorn(softmax(logits / 0.05), 3), rtol=1e-12)
    np.testing.assert_allclose(got.sum(axis=1), np.ones(7), rtol=1e-12)
    # 3 iterations do not balance the prototypes; many do: each gets B/K of the mass
    assert np.abs(got.sum(axis=0) - 7 / 12).max() > 1e-3
    balanced = sinkhorn_knopp(torch.tensor(logits), 0.05, iterations=500).numpy()
    np.testing.assert_allclose(balanced.sum(axis=0), np.full(12, 7 / 12), rtol=1e-6)
    np.testing.assert_allclose(balanced.sum(axis=1), np.ones(7), rtol=1e-12)


def test_sinkhorn_with_no_iterations_is_the_softmax():
    logits = torch.tensor(random_scores(np.random.default_rng(1), 5, 9))
    np.testing.assert_allclose(sinkhorn_knopp(logits, 0.1, iterations=0).numpy(),
                               softmax(logits.numpy() / 0.1), rtol=1e-12)


def test_sinkhorn_float32_keeps_a_prototype_no_sample_favours():
    # at temperature 0.005 prototype 0 has probability ~e^-400 everywhere: 0 in float32, 0/0 in a float32 scaling
    logits = torch.tensor(random_scores(np.random.default_rng(2), 6, 8), dtype=torch.float32)
    logits[:, 0] = -1.0
    logits[:, 1] = 1.0
    got = sinkhorn_knopp(logits, 0.005, iterations=3)
    assert got.dtype == torch.float32 and torch.isfinite(got).all()
    np.testing.assert_allclose(got.sum(dim=1).numpy(), np.ones(6), rtol=1e-6)
    np.testing.assert_allclose(got.numpy(), sinkhorn_knopp(logits.double(), 0.005, 3).numpy(), rtol=1e-5, atol=1e-30)


@pytest.mark.parametrize("tau_s, tau_t, sharpen, iterations, memax_weight, views",
                         [(0.1, 0.1, 0.25, 3, 1.0, 4),     # official code
                          (0.1, 0.04, 1.0, 3, 0.0, 4),     # paper-literal
                          (0.2, 0.1, 0.5, 0, 0.5, 3)])     # no Sinkhorn, other view count
def test_sdpn_loss_matches_the_formula(tau_s, tau_t, sharpen, iterations, memax_weight, views):
    rng = np.random.default_rng(3)
    student, teacher = random_scores(rng, views * 5, 11), random_scores(rng, 5, 11)
    loss_fn = SdpnLoss(student_temperature=tau_s, teacher_temperature=tau_t, sharpen_temperature=sharpen,
                       sinkhorn_iterations=iterations, memax_weight=memax_weight, num_local_views=views)
    loss, stats = loss_fn(torch.tensor(student), torch.tensor(teacher))
    want, ce, memax = direct_sdpn(student, teacher, tau_s, tau_t, sharpen, iterations, memax_weight, views)
    assert loss.item() == pytest.approx(want, rel=1e-10)
    assert stats["ce"] == pytest.approx(ce, rel=1e-10) and stats["memax"] == pytest.approx(memax, rel=1e-10)


def test_sdpn_gradient_reaches_the_student_only():
    rng = np.random.default_rng(4)
    student = torch.tensor(random_scores(rng, 8, 6), requires_grad=True)
    teacher = torch.tensor(random_scores(rng, 2, 6), requires_grad=True)
    loss, _ = SdpnLoss()(student, teacher)
    loss.backward()
    assert teacher.grad is None
    assert student.grad.abs().sum() > 0


def test_sdpn_rejects_a_student_batch_that_is_not_views_times_teacher_batch():
    with pytest.raises(ValueError, match="4 local views x 3 samples"):
        SdpnLoss()(torch.zeros(10, 5), torch.zeros(3, 5))


def test_sdpn_float32_cross_entropy_stays_finite_where_probabilities_underflow():
    # student temperature 0.005: probabilities down to e^-400 (0 in float32); log(p^-t) would give inf, and
    # prototype 0, predicted by no row, has a mean probability of 0 in the me-max term
    rng = np.random.default_rng(5)
    student, teacher = random_scores(rng, 12, 7), random_scores(rng, 3, 7)
    student[:, 0], student[:, 1] = -1.0, 1.0
    loss_fn = SdpnLoss(student_temperature=0.005, num_local_views=4)
    student32 = torch.tensor(student, dtype=torch.float32, requires_grad=True)
    loss32, _ = loss_fn(student32, torch.tensor(teacher, dtype=torch.float32))
    loss32.backward()
    student64 = torch.tensor(student, requires_grad=True)
    loss64, _ = loss_fn(student64, torch.tensor(teacher))
    loss64.backward()
    assert math.isfinite(loss32.item()) and torch.isfinite(student32.grad).all()
    assert loss32.item() == pytest.approx(loss64.item(), rel=1e-4)
    np.testing.assert_allclose(student32.grad.numpy(), student64.grad.numpy(), rtol=1e-3, atol=1e-3)


def test_prototype_scores_are_cosines():
    rng = np.random.default_rng(6)
    emb, protos = rng.normal(0, 1, (4, 5)), rng.normal(0, 3, (3, 5))
    want = (emb / np.linalg.norm(emb, axis=1, keepdims=True)) @ (protos / np.linalg.norm(protos, axis=1, keepdims=True)).T
    np.testing.assert_allclose(prototype_scores(torch.tensor(emb), torch.tensor(protos)).numpy(), want, rtol=1e-12)


def direct_koleo(x, eps=1e-8):
    unit = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), eps)
    total = 0.0
    for i in range(len(unit)):
        # nearest neighbour on the sphere = smallest Euclidean distance
        j = min((j for j in range(len(unit)) if j != i), key=lambda j: np.linalg.norm(unit[i] - unit[j]))
        total -= math.log(np.linalg.norm(unit[i] - unit[j] + eps) + eps)
    return total / len(unit)


def test_koleo_matches_the_formula_and_grows_as_points_crowd():
    rng = np.random.default_rng(7)
    x = rng.normal(0, 1, (9, 6))
    assert KoLeoLoss()(torch.tensor(x)).item() == pytest.approx(direct_koleo(x), rel=1e-10)
    crowded = x.copy()
    crowded[1] = crowded[0] + 1e-3 * rng.normal(0, 1, 6)
    assert KoLeoLoss()(torch.tensor(crowded)).item() > KoLeoLoss()(torch.tensor(x)).item() + 0.5


def test_koleo_needs_two_rows():
    with pytest.raises(ValueError, match="N >= 2"):
        KoLeoLoss()(torch.zeros(1, 4))


def direct_dino(student, teacher, center, t_teacher, t_student, crops, global_crops):
    batch = len(teacher) // global_crops
    targets = softmax((teacher - center) / t_teacher)
    log_probs = np.log(softmax(student / t_student))
    terms = [-(targets[a * batch:(a + 1) * batch] * log_probs[v * batch:(v + 1) * batch]).sum(axis=1).mean()
             for a in range(global_crops) for v in range(crops) if v != a]
    return sum(terms) / len(terms)


def test_dino_loss_centre_and_temperature_schedule_match_the_formulas():
    rng = np.random.default_rng(8)
    loss_fn = DinoLoss(out_dim=7, num_crops=4, num_global_crops=2, warmup_teacher_temperature=0.02,
                       teacher_temperature=0.06, warmup_epochs=5, student_temperature=0.1,
                       center_momentum=0.8).double()
    assert [loss_fn.teacher_temperature(e) for e in (0, 1.7, 2, 4, 9)] == pytest.approx([0.02, 0.03, 0.04, 0.06, 0.06])
    center = rng.normal(0, 0.1, (1, 7))
    loss_fn.center.copy_(torch.tensor(center))
    student, teacher = rng.normal(0, 1, (4 * 3, 7)), rng.normal(0, 1, (2 * 3, 7))
    loss, stats = loss_fn(torch.tensor(student), torch.tensor(teacher), epoch=2.5)
    assert loss.item() == pytest.approx(direct_dino(student, teacher, center, 0.04, 0.1, 4, 2), rel=1e-10)
    assert stats["teacher_temperature"] == pytest.approx(0.04)
    np.testing.assert_allclose(loss_fn.center.numpy(), 0.8 * center + 0.2 * teacher.mean(axis=0, keepdims=True),
                               rtol=1e-12)


@pytest.mark.parametrize("warmup_epochs", [1, 2, 7])
def test_dino_teacher_temperature_follows_the_linspace_schedule(warmup_epochs):
    schedule = np.concatenate([np.linspace(0.01, 0.05, warmup_epochs), np.full(20 - warmup_epochs, 0.05)])
    loss_fn = DinoLoss(out_dim=3, warmup_teacher_temperature=0.01, teacher_temperature=0.05,
                       warmup_epochs=warmup_epochs)
    assert [loss_fn.teacher_temperature(e + 0.5) for e in range(20)] == pytest.approx(schedule.tolist(), rel=1e-12)


def test_dino_rejects_mismatched_views():
    with pytest.raises(ValueError, match="6 and 2 views"):
        DinoLoss(out_dim=5)(torch.zeros(10, 5), torch.zeros(4, 5), 0)


def test_embedding_std_is_zero_for_collapse_and_matches_numpy():
    assert embedding_std(torch.ones(5, 3)) == pytest.approx(0.0, abs=1e-7)
    x = np.random.default_rng(9).normal(0, 1, (6, 4))
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    assert embedding_std(torch.tensor(x)) == pytest.approx(unit.std(axis=0).mean(), rel=1e-12)


def test_assignment_entropy_and_prototypes_used():
    even = torch.eye(4).repeat(2, 1)             # 8 rows spread evenly over 4 prototypes
    collapsed = torch.zeros(8, 4)
    collapsed[:, 2] = 1.0
    assert mean_assignment_entropy(even) == pytest.approx(math.log(4))
    assert mean_assignment_entropy(collapsed) == pytest.approx(0.0, abs=1e-7)
    p = np.array([[0.5, 0.3, 0.2, 0.0], [0.1, 0.1, 0.2, 0.6]])
    mean = p.mean(axis=0)
    assert mean_assignment_entropy(torch.tensor(p)) == pytest.approx(-(mean * np.log(mean)).sum(), rel=1e-12)
    assert prototypes_used(even) == 1.0 and prototypes_used(collapsed) == 0.25 and prototypes_used(torch.tensor(p)) == 0.5


def two_rank_worker(rank, init_file, inputs, results):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        results[rank] = run_losses(inputs, rank, 2)
    finally:
        dist.destroy_process_group()


def run_losses(inputs, rank, world_size):
    """This rank's share of the batch (view-major slices) through Sinkhorn, SDPN and DINO."""
    def share(rows, views):
        per_view = rows.view(views, -1, rows.shape[1])
        size = per_view.shape[1] // world_size
        return per_view[:, rank * size:(rank + 1) * size].reshape(-1, rows.shape[1])

    student = share(inputs["student"], 4).clone().requires_grad_(True)
    loss, _ = SdpnLoss()(student, share(inputs["teacher"], 1))
    loss.backward()
    dino = DinoLoss(out_dim=inputs["dino_teacher"].shape[1], num_crops=6).double()
    dino.center.copy_(inputs["center"])
    dino(share(inputs["dino_student"], 6), share(inputs["dino_teacher"], 2), epoch=0)
    return {"targets": sinkhorn_knopp(share(inputs["teacher"], 1), 0.025), "loss": loss.detach(),
            "student_grad": student.grad, "center": dino.center.clone()}


def test_two_gloo_ranks_give_the_targets_centre_and_gradients_of_one_process(tmp_path):
    rng = np.random.default_rng(10)
    inputs = {"teacher": torch.tensor(random_scores(rng, 6, 9)), "student": torch.tensor(random_scores(rng, 24, 9)),
              "dino_teacher": torch.tensor(rng.normal(0, 1, (12, 5))),
              "dino_student": torch.tensor(rng.normal(0, 1, (36, 5))), "center": torch.tensor(rng.normal(0, 1, (1, 5)))}
    whole = run_losses(inputs, 0, 1)
    results = mp.Manager().dict()
    mp.spawn(two_rank_worker, args=(str(tmp_path / "rendezvous"), inputs, results), nprocs=2, join=True)

    def by_view(rows, views):
        return rows.view(views, 2, -1, rows.shape[1])

    targets = torch.cat([results[r]["targets"] for r in (0, 1)])
    np.testing.assert_allclose(targets.numpy(), whole["targets"].numpy(), rtol=1e-12)
    for r in (0, 1):
        np.testing.assert_allclose(results[r]["center"].numpy(), whole["center"].numpy(), rtol=1e-12)
        # identity backward through the me-max all-reduce: rank gradient = world size x its rows' share
        np.testing.assert_allclose(results[r]["student_grad"].view(4, 3, 9).numpy() / 2,
                                   by_view(whole["student_grad"], 4)[:, r].numpy(), rtol=1e-10, atol=1e-14)
    assert (results[0]["loss"] + results[1]["loss"]).item() / 2 == pytest.approx(whole["loss"].item(), rel=1e-12)


def test_losses_compute_in_float32_under_autocast():
    rng = np.random.default_rng(11)
    student, teacher = torch.tensor(random_scores(rng, 8, 6)), torch.tensor(random_scores(rng, 2, 6))
    embeddings = torch.tensor(rng.normal(0, 1, (5, 4)))
    low = {name: x.to(torch.bfloat16) for name, x in (("s", student), ("t", teacher), ("e", embeddings))}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        sdpn, _ = SdpnLoss()(low["s"], low["t"])
        koleo = KoLeoLoss()(low["e"])
        dino, _ = DinoLoss(out_dim=6, num_crops=4)(low["s"], low["t"].repeat(2, 1), 0)
    assert sdpn.dtype == koleo.dtype == dino.dtype == torch.float32
    assert sdpn.item() == pytest.approx(SdpnLoss()(low["s"].float(), low["t"].float())[0].item(), rel=1e-6)
    assert koleo.item() == pytest.approx(KoLeoLoss()(low["e"].float()).item(), rel=1e-6)
    assert dino.item() == pytest.approx(
        DinoLoss(out_dim=6, num_crops=4)(low["s"].float(), low["t"].float().repeat(2, 1), 0)[0].item(), rel=1e-6)
