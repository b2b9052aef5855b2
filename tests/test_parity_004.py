"""Paper 004's losses against the public reference implementations (values and input gradients).

The fixtures (``../shared/fixtures/parity``, README there) hold inputs, the reference's loss and
its gradients, in float64. ``WESPEAKER_PARITY_DIR`` points the tests at another fixture set with
the same file and array names; every file there whose name starts with a known prefix runs.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import PARITY_DIR
from wespeaker_like.losses import AAMSoftmax, AMSoftmax, AngularPrototypical, gaussian_infonce, sup_margin_con_loss
from wespeaker_like.losses.margin import margin_logits

RTOL, ATOL = 1e-7, 1e-10
PREFIXES = ("supcon", "supmargincon", "infocl_infonce", "angleproto", "aamsoftmax_vox", "amsoftmax_vox",
            "addmargin_3dspeaker", "arcmargin_3dspeaker")


def fixtures(prefix):
    """Fixture files of one kind: ``<prefix>.npz`` or ``<prefix>_<variant>.npz`` (not a longer prefix)."""
    files = sorted(PARITY_DIR.glob(f"{prefix}*.npz"))
    return [f for f in files if f.stem == prefix or f.stem[len(prefix)] == "_"
            and not any(f.stem.startswith(p) and len(p) > len(prefix) for p in PREFIXES)]


def cases(prefix):
    return pytest.mark.parametrize("path", fixtures(prefix), ids=lambda p: p.stem)


def tensor(z, name):
    return torch.tensor(z[name], dtype=torch.float64, requires_grad=True)


def check(loss, z, inputs, value_key="loss"):
    """Value of ``loss`` and the gradients of the named leaf tensors against the fixture."""
    np.testing.assert_allclose(loss.item(), z[value_key].item(), rtol=RTOL, atol=ATOL)
    loss.backward()
    for name, leaf in inputs.items():
        np.testing.assert_allclose(leaf.grad.numpy(), z[f"grad_{name}"], rtol=RTOL, atol=ATOL, err_msg=name)


def test_the_fixture_directory_holds_the_known_fixtures():
    assert PARITY_DIR.is_dir(), f"no parity fixtures at {PARITY_DIR} (WESPEAKER_PARITY_DIR)"
    found = {prefix: fixtures(prefix) for prefix in PREFIXES}
    assert all(found.values()), f"missing in {PARITY_DIR}: {[p for p, f in found.items() if not f]}"


@cases("supcon")
def test_supcon_matches_supcontrast(path):
    z = np.load(path)
    assert z["temperature"].item() == z["base_temperature"].item() and str(z["contrast_mode"]) == "all"
    features = tensor(z, "features")
    views = torch.cat(features.unbind(1))  # already L2-normalised: the reference does not normalise
    labels = torch.as_tensor(z["labels"]).repeat(features.shape[1])
    loss = sup_margin_con_loss(views, labels, temperature=z["temperature"].item())
    check(loss, z, {"features": features})


@cases("supmargincon")
def test_supmargincon_matches_the_author_code(path):
    z = np.load(path)
    features = tensor(z, "features")
    views = F.normalize(torch.cat(features.unbind(1)), eps=1e-12)
    labels = torch.as_tensor(z["labels"]).repeat(features.shape[1])
    margin = float(np.float32(z["margin"].item()))  # the reference's label mask is float32 (README)
    loss = sup_margin_con_loss(views, labels, temperature=z["temperature"].item(), margin=margin,
                               margin_type="cos", denominator="all_but_self")
    check(loss, z, {"features": features})


@cases("infocl_infonce")
def test_infonce_matches_infocl(path):
    z = np.load(path)
    mu, emb = tensor(z, "mu"), tensor(z, "z")
    value = gaussian_infonce(emb, mu, rho=0.05, positive_term=False, contrast="means")
    check(value, z, {"mu": mu, "z": emb}, value_key="value")


@cases("angleproto")
def test_angular_prototypical_matches_voxceleb_trainer(path):
    z = np.load(path)
    x = tensor(z, "x")
    loss_fn = AngularPrototypical(z["w"].item(), z["b"].item()).double()
    logits = loss_fn.logits(x)
    loss = F.cross_entropy(logits, torch.arange(len(logits)))
    accuracy = 100.0 * (logits.argmax(1) == torch.arange(len(logits))).double().mean().item()
    assert accuracy == pytest.approx(z["prec1"].item(), rel=1e-6)
    check(loss, z, {"x": x})
    np.testing.assert_allclose(loss_fn.w.grad.item(), z["grad_w"].item(), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(loss_fn.b.grad.item(), z["grad_b"].item(), rtol=RTOL, atol=1e-12)


@cases("aamsoftmax_vox")
def test_aam_softmax_matches_voxceleb_trainer(path):
    z = np.load(path)
    assert not z["easy_margin"].item()
    x = tensor(z, "x")
    head = AAMSoftmax(x.shape[1], z["weight"].shape[0], z["margin"].item(), z["scale"].item(),
                      fallback="voxceleb_trainer").double()
    with torch.no_grad():
        head.weight.copy_(torch.as_tensor(z["weight"]))
    labels = torch.as_tensor(z["label"])
    logits = head.logits(x, labels)
    assert 100.0 * (logits.argmax(1) == labels).double().mean().item() == pytest.approx(z["prec1"].item(), rel=1e-6)
    check(F.cross_entropy(logits, labels), z, {"x": x})
    np.testing.assert_allclose(head.weight.grad.numpy(), z["grad_weight"], rtol=RTOL, atol=ATOL)


@cases("amsoftmax_vox")
def test_am_softmax_matches_voxceleb_trainer(path):
    z = np.load(path)
    x = tensor(z, "x")
    head = AMSoftmax(x.shape[1], z["W"].shape[1], z["margin"].item(), z["scale"].item()).double()
    with torch.no_grad():
        head.weight.copy_(torch.as_tensor(z["W"]).T)  # the reference stores (in, classes)
    loss = head(x, torch.as_tensor(z["label"]))
    check(loss, z, {"x": x})
    np.testing.assert_allclose(head.weight.grad.numpy().T, z["grad_W"], rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("path", fixtures("arcmargin_3dspeaker") + fixtures("addmargin_3dspeaker"),
                         ids=lambda p: p.stem)
def test_margins_on_cosines_match_3dspeaker(path):
    z = np.load(path)
    cosine, labels = tensor(z, "cosine"), torch.as_tensor(z["label"])
    if path.stem.startswith("arcmargin"):
        assert not z["easy_margin"].item()
        # rows below cos(π − m) take the fallback (the README says the fixtures exercise it)
        assert (cosine.detach().gather(1, labels[:, None]) < np.cos(np.pi - z["margin"].item())).any()
    kind = "aam" if path.stem.startswith("arcmargin") else "am"
    logits = margin_logits(cosine, labels, z["margin"].item(), z["scale"].item(), kind, fallback="3dspeaker")
    check(F.cross_entropy(logits, labels), z, {"cosine": cosine})


def test_the_two_fallbacks_differ_on_the_3dspeaker_fixture():
    """The wrong fallback changes the arc-margin loss by about 0.15 (README): the switch matters."""
    z = np.load(fixtures("arcmargin_3dspeaker")[0])
    cosine, labels = torch.as_tensor(z["cosine"]), torch.as_tensor(z["label"])
    losses = [F.cross_entropy(margin_logits(cosine, labels, z["margin"].item(), z["scale"].item(), "aam", f),
                              labels).item() for f in ("voxceleb_trainer", "3dspeaker")]
    assert losses[1] == pytest.approx(z["loss"].item(), rel=1e-9)
    assert abs(losses[0] - losses[1]) > 0.05
