"""Paper 002 (issue 14): the convolutional VAE, its KL, the i-mix draws, AP / i-AP / l-AP against
their formulas and the AP parity fixture, and training without speaker labels through the trainer
(the VAE stage, then l-AP loading it frozen through init_from)."""

import json
import math
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import objective_kit  # noqa: F401  (registers the kit_mlp backbone)
from conftest import PARITY_DIR, make_feature_data_dir
from test_sdpn_objective import Recorder
from wespeaker_like.augment.mixup import distance_from_line, mix, mixing_weights, random_derangement
from wespeaker_like.bin import mix_diagnostic, train
from wespeaker_like.losses.contrastive import AngularPrototypical, mixed_target_cross_entropy
from wespeaker_like.losses.vae import gaussian_kl_to_standard, vae_loss
from wespeaker_like.models.vae import ConvVAE
from wespeaker_like.objectives import build_objective
from wespeaker_like.objectives import ssl_ap as ssl_ap_module

KIT_MODEL = {"name": "kit_mlp", "feat_dim": 20, "hidden": 32, "embed_dim": 16}
SMALL_VAE = {"name": "conv_vae", "feat_dim": 20, "num_frames": 30}


def objective(**options):
    torch.manual_seed(0)
    return build_objective({"name": "ssl_ap", "num_frames": 30, **options}, KIT_MODEL, {})


def random_batch(size=6, frames=30, dim=20):
    torch.manual_seed(1)
    return {"views": [torch.randn(size, frames, dim), torch.randn(size, frames, dim)], "labels": {}}


# ---------------------------------------------------------------------------------------------- VAE

def test_vae_maps_1x40x180_to_64_and_back_exactly():
    torch.manual_seed(0)
    vae = ConvVAE()
    assert vae.sizes == [(40, 180), (14, 60), (5, 20), (2, 7), (1, 3), (1, 1)]
    feats = torch.randn(3, 180, 40)
    mean, log_var = vae.encode(feats)
    assert mean.shape == log_var.shape == (3, 64)
    assert vae.decode(mean).shape == (3, 180, 40)
    assert torch.equal(vae(feats), mean) and vae.embed_dim == 64
    convs = [m for m in vae.encoder if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 64, 32, 32, 32]
    deconvs = [m for m in vae.decoder if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [c.out_channels for c in deconvs] == [32, 32, 64, 32, 1]
    assert vae.mean.in_features == 32 and vae.expand.out_features == 32
    # the decoder ends in the transposed conv, no ReLU: it can produce negative MFCCs
    assert isinstance(vae.decoder[-1], torch.nn.ConvTranspose2d)
    with torch.no_grad():
        vae.decoder[-1].bias.fill_(-10.0)
        assert (vae.decode(mean) < 0).all()


def test_vae_other_sizes_and_sigmoid_output_range():
    vae = ConvVAE(feat_dim=20, num_frames=30, latent_dim=8, out_act="sigmoid", input_range=[-5.0, 3.0])
    out = vae.decode(vae(torch.randn(2, 30, 20)))
    assert out.shape == (2, 30, 20) and out.min() >= -5.0 and out.max() <= 3.0
    with pytest.raises(ValueError, match="input_range"):
        ConvVAE(out_act="sigmoid")
    with pytest.raises(ValueError, match="expects"):
        ConvVAE()(torch.randn(1, 40, 180))


def test_kl_matches_the_closed_form_and_the_tolerance_floors_it():
    torch.manual_seed(0)
    mean, log_var = torch.randn(5, 64, dtype=torch.float64), torch.randn(5, 64, dtype=torch.float64)
    std = (0.5 * log_var).exp()
    expected = torch.distributions.kl_divergence(torch.distributions.Normal(mean, std),
                                                 torch.distributions.Normal(0.0, 1.0)).sum(1)
    torch.testing.assert_close(gaussian_kl_to_standard(mean, log_var), expected, rtol=1e-12, atol=1e-12)
    assert torch.all(gaussian_kl_to_standard(torch.zeros(2, 4), torch.zeros(2, 4)) == 0)
    target, recon = torch.randn(5, 30, 20, dtype=torch.float64), torch.randn(5, 30, 20, dtype=torch.float64)
    terms = vae_loss(recon, target, mean, log_var)
    sse = ((recon - target) ** 2).sum((1, 2))
    torch.testing.assert_close(terms["loss"], (sse + expected).mean())
    torch.testing.assert_close(terms["reconstruction"], sse.mean())
    floored = vae_loss(recon, target, mean * 0, log_var * 0, kl_tolerance=0.5)  # KL 0, floored at 0.5·64
    torch.testing.assert_close(floored["loss"], sse.mean() + 32.0)
    assert floored["kl"].item() == 0.0


# ------------------------------------------------------------------------------------------ mixing

def test_derangement_has_no_fixed_point_and_is_uniform():
    rng = np.random.default_rng(0)
    for n in (2, 3, 7, 64):
        for _ in range(50):
            perm = random_derangement(n, rng)
            assert sorted(perm) == list(range(n)) and not np.any(perm == np.arange(n))
    counts = {}
    for _ in range(4000):  # n = 3 has exactly two derangements, (1 2 0) and (2 0 1)
        key = tuple(random_derangement(3, rng))
        counts[key] = counts.get(key, 0) + 1
    assert set(counts) == {(1, 2, 0), (2, 0, 1)}
    assert abs(counts[(1, 2, 0)] - 2000) < 4 * math.sqrt(1000)
    with pytest.raises(ValueError, match="at least 2"):
        random_derangement(1, rng)


def test_mixing_weights_follow_beta_alpha_alpha():
    rng = np.random.default_rng(0)
    for alpha in (0.5, 1.0, 32.0):
        lam = mixing_weights(40000, alpha, rng)
        assert lam.mean() == pytest.approx(0.5, abs=0.01)
        assert lam.var() == pytest.approx(1 / (4 * (2 * alpha + 1)), rel=0.05)  # Beta(α, α) variance
    shared = mixing_weights(8, 0.5, rng, per_sample=False)
    assert np.all(shared == shared[0])
    assert np.all(mixing_weights(1000, 0.5, rng, lam_max=True) >= 0.5)


def test_distance_from_the_line_between_two_inputs():
    first, second = torch.tensor([[0.0, 0.0, 0.0]]), torch.tensor([[2.0, 0.0, 0.0]])
    assert distance_from_line(torch.tensor([[5.0, 3.0, 4.0]]), first, second).item() == pytest.approx(5.0)
    torch.manual_seed(0)
    a, b, lam = torch.randn(4, 30, 20), torch.randn(4, 30, 20), torch.rand(4)
    assert distance_from_line(mix(a, b, lam), a, b).max().item() < 1e-5  # an i-mix sample is on the line


# ------------------------------------------------------------------------------------ AP and i-AP

@pytest.mark.parametrize("path", sorted(PARITY_DIR.glob("angleproto*.npz")), ids=lambda p: p.stem)
def test_ap_with_lambda_one_matches_the_angleproto_fixture(path):
    z = np.load(path)
    x = torch.tensor(z["x"], dtype=torch.float64, requires_grad=True)
    ap = AngularPrototypical(z["w"].item(), z["b"].item()).double()
    logits = ap.logits(x)
    n = len(logits)
    loss = mixed_target_cross_entropy(logits, torch.arange(n), torch.roll(torch.arange(n), 1),
                                      torch.ones(n, dtype=torch.float64))
    np.testing.assert_allclose(loss.item(), z["loss"].item(), rtol=1e-7, atol=1e-10)
    loss.backward()
    np.testing.assert_allclose(x.grad.numpy(), z["grad_x"], rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(ap.w.grad.item(), z["grad_w"].item(), rtol=1e-7, atol=1e-10)


def test_mixed_target_cross_entropy_is_the_lambda_weighted_sum():
    torch.manual_seed(0)
    logits, lam = torch.randn(5, 5, dtype=torch.float64), torch.rand(5, dtype=torch.float64)
    targets, partners = torch.arange(5), torch.tensor([3, 0, 4, 1, 2])
    expected = (lam * F.cross_entropy(logits, targets, reduction="none")
                + (1 - lam) * F.cross_entropy(logits, partners, reduction="none")).mean()
    torch.testing.assert_close(mixed_target_cross_entropy(logits, targets, partners, lam), expected)


def test_plain_ap_step_is_equation_one():
    obj, batch = objective(), random_batch()
    values = obj.training_step(batch, Recorder())
    first, second = (F.normalize(obj.backbone(v)) for v in batch["views"])
    logits = 10.0 * first @ second.T - 5.0  # rows: view-1 prototypes; columns: view-2 queries
    assert values["ap"] == pytest.approx(F.cross_entropy(logits, torch.arange(6)).item(), rel=1e-6)
    assert obj.views[1].position == "disjoint" and obj.views[1].relative_to == 0


def test_iap_step_is_equation_four(monkeypatch):
    obj, batch = objective(mode="iap", alpha=0.5), random_batch()
    rng = obj._rng()
    partners, lam = random_derangement(6, rng), mixing_weights(6, 0.5, rng)
    values = obj.training_step(batch, Recorder())
    first, second = batch["views"]
    queries = F.normalize(obj.backbone(second))
    expected = 0.0
    for i in range(6):
        mixed = lam[i] * first[i] + (1 - lam[i]) * first[partners[i]]  # the view-1 inputs are mixed
        row = 10.0 * F.normalize(obj.backbone(mixed[None].float())) @ queries.T - 5.0
        log_p = F.log_softmax(row[0], dim=0)
        expected -= (lam[i] * log_p[i] + (1 - lam[i]) * log_p[partners[i]]).item() / 6
    assert values["mix"] == pytest.approx(expected, rel=1e-5)
    assert "ap" not in values


def test_lambda_one_reduces_iap_to_ap_exactly(monkeypatch):
    monkeypatch.setattr(ssl_ap_module, "mixing_weights", lambda n, *args: np.ones(n))
    plain, mixed = objective(), objective(mode="iap", alpha=0.5)
    batch = random_batch()
    plain_recorder, mixed_recorder = Recorder(), Recorder()
    plain.training_step(batch, plain_recorder)
    mixed.training_step(batch, mixed_recorder)
    torch.testing.assert_close(mixed_recorder.loss, plain_recorder.loss, rtol=1e-7, atol=0)
    for (name, p), q in zip(plain.named_parameters(), mixed.parameters()):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-6, atol=1e-8, msg=name)


def test_lap_decodes_the_mixed_posterior_mean_then_masks():
    obj = objective(mode="lap", alpha=1.0, vae=SMALL_VAE, ceps_aug={"time_width": [4, 4], "freq_width": [3, 3]})
    assert obj.views[0].spec_augment is None and obj.views[1].spec_augment is not None
    assert all(not p.requires_grad for p in obj.vae.parameters())
    assert not any(p is q for p in obj.parameter_groups()["main"] for q in obj.vae.parameters())
    first = random_batch()["views"][0]
    partners, lam = torch.tensor([2, 0, 1, 5, 3, 4]), torch.rand(6, dtype=torch.float64)
    out = obj.mixed_inputs(first, partners, lam, range(6))
    mean = obj.vae.encode(first)[0]
    decoded = obj.vae.decode(mix(mean, mean[partners], lam))
    masked = out == 0
    assert torch.equal(out[~masked], decoded[~masked])
    for row in range(6):  # one 4-frame time mask and one 3-coefficient mask per sample
        assert int(masked[row].all(dim=1).sum()) == 4 and int(masked[row].all(dim=0).sum()) == 3


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="mode"):
        objective(mode="mix")
    with pytest.raises(ValueError, match="needs 'vae'"):
        objective(mode="lap")
    with pytest.raises(ValueError, match="mode lap only"):
        objective(mode="iap", vae=SMALL_VAE)
    with pytest.raises(ValueError, match="ceps_aug.width"):
        objective(ceps_aug={"width": 3})


# ----------------------------------------------------------------------------- through the trainer

VAE_CONFIG = """\
seed: 3
dataset: {num_workers: 0, sampler: {name: random, batch_size: 8}}
model: {name: conv_vae, feat_dim: 20, num_frames: 30, latent_dim: 8}
objective: {name: vae, num_frames: 30, kl_tolerance: 0.5}
optim: {name: adam, lr: 1.0e-3}
scheduler: {name: constant}
trainer: {epochs: 2, log_every: 1, checkpoint_every_steps: 100, keep_checkpoints: 1, average_last: 1, num_threads: 1,
          device: cpu}
"""
LAP_CONFIG = """\
seed: 4
dataset: {num_workers: 0, sampler: {name: random, batch_size: 8}}
model: {name: kit_mlp, feat_dim: 20, hidden: 32, embed_dim: 16}
objective: {name: ssl_ap, num_frames: 30, mode: lap, alpha: 0.5, ceps_aug: true, keep_plain_ap: true,
            vae: {name: conv_vae, feat_dim: 20, num_frames: 30, latent_dim: 8}}
init_from: {path: VAE_EXP, key_map: {"vae.": ""}}
optim: {name: adam, lr: 1.0e-3}
scheduler: {name: constant}
trainer: {epochs: 2, log_every: 1, checkpoint_every_steps: 100, keep_checkpoints: 1, average_last: 1, num_threads: 1,
          device: cpu}
"""


def test_vae_then_lap_train_on_a_data_dir_without_utt2spk(tmp_path):
    data = make_feature_data_dir(tmp_path / "labelled")
    unlabelled = tmp_path / "unlabelled"
    shutil.copytree(data, unlabelled)
    (unlabelled / "utt2spk").unlink()
    (unlabelled / "spk2utt").unlink()
    vae_config, lap_config = tmp_path / "vae.yaml", tmp_path / "lap.yaml"
    vae_config.write_text(VAE_CONFIG)
    lap_config.write_text(LAP_CONFIG.replace("VAE_EXP", str(tmp_path / "vae")))
    assert train.main(["--config", str(vae_config), "--train_data", str(unlabelled),
                       "--exp_dir", str(tmp_path / "vae")]) == 0
    vae_log = (tmp_path / "vae" / "train.log").read_text()
    assert "24 utterances, {} classes" in vae_log and " kl " in vae_log and "reconstruction" in vae_log
    assert train.main(["--config", str(lap_config), "--train_data", str(unlabelled),
                       "--exp_dir", str(tmp_path / "lap")]) == 0
    vae_state = torch.load(tmp_path / "vae" / "final_model.pt", weights_only=True)["embedding"]
    lap_state = torch.load(tmp_path / "lap" / "checkpoints" / "epoch_002.pt", weights_only=True)["objective"]
    for key, value in vae_state.items():  # loaded through init_from and never trained
        assert torch.equal(lap_state[f"vae.{key}"], value), key
    assert "mix" in (tmp_path / "lap" / "train.log").read_text()
    # the Fig. 6 diagnostic with that VAE: i-mix samples on the line X1X2, l-mix samples off it
    out = tmp_path / "diagnostic.json"
    assert mix_diagnostic.main(["--vae_exp", str(tmp_path / "vae"), "--data_dir", str(unlabelled), "--out", str(out),
                                "--num_pairs", "10"]) == 0
    summary = json.loads(out.read_text())
    distances = summary["distance_from_line"]
    assert summary["num_pairs"] == 10 and distances["i-mix"]["relative_mean"] < 1e-6
    assert distances["l-mix"]["mean"] > 0.01 and distances["reconstruction"]["mean"] > 0.01
