"""Paper 003 (SDPN, DINO*) losses against the reference numbers in the parity fixtures.

Fixture directory: ``$WESPEAKER_PARITY_DIR``, default ``../shared/fixtures/parity`` beside the
checkout; every known 003 fixture found there runs (float64, values and input gradients).
"""

import numpy as np
import pytest
import torch

from conftest import PARITY_DIR
from wespeaker_like.losses.self_distillation import DinoLoss, KoLeoLoss, SdpnLoss, prototype_scores, sinkhorn_knopp

RTOL, ATOL = 1e-7, 1e-10


def assert_close(got, want, name):
    got = got.detach().numpy() if isinstance(got, torch.Tensor) else np.asarray(got)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg=name)


def tensor(array, grad=False):
    return torch.tensor(array, dtype=torch.float64, requires_grad=grad)


def sdpn_loss_for(fixture, memax_weight):
    assert np.array_equal(fixture["proto_labels"], np.eye(len(fixture["prototypes"]))), \
        "SdpnLoss assumes identity prototype labels, as the reference training script uses"
    return SdpnLoss(student_temperature=fixture["tau"].item(), teacher_temperature=fixture["tau"].item(),
                    sharpen_temperature=fixture["T"].item(),
                    sinkhorn_iterations=fixture["sinkhorn_iters"].item() if fixture["use_sinkhorn"].item() else 0,
                    memax_weight=memax_weight, num_local_views=fixture["num_views"].item())


def run_sdpn(fixture, memax_weight):
    anchors, prototypes = tensor(fixture["anchor_views"], True), tensor(fixture["prototypes"], True)
    targets = tensor(fixture["target_views"])
    loss, stats = sdpn_loss_for(fixture, memax_weight)(prototype_scores(anchors, prototypes),
                                                       prototype_scores(targets, prototypes))
    loss.backward()
    return loss, stats, anchors.grad, prototypes.grad


def check_sdpn(fixture):
    memax_weight = fixture["memax_weight"].item() if fixture["me_max"].item() else 0.0
    loss, stats, grad_anchors, grad_prototypes = run_sdpn(fixture, memax_weight)
    assert_close(loss, fixture["loss"], "loss")
    assert_close(stats["ce"], fixture["ploss"], "ploss")
    if fixture["me_max"].item():
        assert_close(stats["memax"], fixture["rloss"], "rloss")
    assert_close(grad_anchors, fixture["grad_anchor_views"], "grad_anchor_views")
    assert_close(grad_prototypes, fixture["grad_prototypes"], "grad_prototypes")
    loss_fn = sdpn_loss_for(fixture, memax_weight)
    teacher_scores = prototype_scores(tensor(fixture["target_views"]), tensor(fixture["prototypes"]))
    assert_close(loss_fn.targets(teacher_scores).repeat(loss_fn.num_local_views, 1), fixture["targets"], "targets")
    if "grad_anchor_views_ploss" in fixture:
        _, _, grad_anchors, grad_prototypes = run_sdpn(fixture, 0.0)
        assert_close(grad_anchors, fixture["grad_anchor_views_ploss"], "grad_anchor_views_ploss")
        assert_close(grad_prototypes, fixture["grad_prototypes_ploss"], "grad_prototypes_ploss")


def check_sinkhorn(fixture):
    # softmax(log q / 1) is q itself: the rows of Q_in are probabilities
    targets = sinkhorn_knopp(torch.log(tensor(fixture["Q_in"])), 1.0, fixture["num_itr"].item())
    assert_close(targets, fixture["Q_out"], "Q_out")


def check_koleo(fixture):
    assert fixture["eps_normalize"].item() == fixture["eps_pdist"].item() == fixture["eps_log"].item()
    x = tensor(fixture["x"], True)
    loss = KoLeoLoss(eps=fixture["eps_log"].item())(x)
    loss.backward()
    assert_close(loss, fixture["loss"], "loss")
    assert_close(x.grad, fixture["grad_x"], "grad_x")


def check_dino(fixture):
    loss_fn = DinoLoss(out_dim=fixture["out_dim"].item(), num_crops=fixture["ncrops"].item(), num_global_crops=2,
                       warmup_teacher_temperature=fixture["warmup_teacher_temp"].item(),
                       teacher_temperature=fixture["teacher_temp"].item(),
                       warmup_epochs=fixture["warmup_teacher_temp_epochs"].item(),
                       student_temperature=fixture["student_temp"].item(),
                       center_momentum=fixture["center_momentum"].item()).double()
    loss_fn.center.copy_(tensor(fixture["center_before"]))
    student, teacher = tensor(fixture["student_output"], True), tensor(fixture["teacher_output"], True)
    loss, stats = loss_fn(student, teacher, fixture["epoch"].item())
    loss.backward()
    assert_close(loss, fixture["loss"], "loss")
    assert stats["teacher_temperature"] == pytest.approx(fixture["teacher_temp_used"].item(), rel=1e-12)
    assert_close(student.grad, fixture["grad_student_output"], "grad_student_output")
    assert teacher.grad is None
    assert_close(loss_fn.center, fixture["center_after"], "center_after")


CHECKS = {"sdpn_memax": check_sdpn, "sdpn_no_memax": check_sdpn, "sdpn_sinkhorn": check_sinkhorn,
          "koleo": check_koleo, "dino": check_dino}
FOUND = sorted(name for name in CHECKS if (PARITY_DIR / f"{name}.npz").is_file())


def test_the_parity_directory_holds_003_fixtures():
    assert PARITY_DIR.is_dir(), f"parity fixtures missing: {PARITY_DIR} (set WESPEAKER_PARITY_DIR)"
    assert FOUND, f"none of {sorted(CHECKS)} in {PARITY_DIR}"


@pytest.mark.parametrize("name", FOUND)
def test_loss_matches_reference_fixture(name):
    with np.load(PARITY_DIR / f"{name}.npz") as fixture:
        CHECKS[name]({key: fixture[key] for key in fixture.files})
