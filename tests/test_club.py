"""Paper 000 (CLUB): the vCLUB estimators against direct formulas and the parity fixtures, and the
``club`` objective's two phases, term switches and exact resume through the real trainer."""

import copy

import numpy as np
import pytest
import torch

import objective_kit  # noqa: F401  (registers kit_mlp)
from conftest import PARITY_DIR, ROOT, make_feature_data_dir
from test_trainer import train_until_killed
from wespeaker_like.bin import train
from wespeaker_like.data.kaldi_dir import write_table
from wespeaker_like.losses.club import (CategoricalClub, GaussianClub, categorical_club, categorical_loglikelihood,
                                        gaussian_club, gaussian_loglikelihood)
from wespeaker_like.objectives import build_objective
from wespeaker_like.objectives.club import MI_TERMS

MODEL = {"name": "kit_mlp", "feat_dim": 20, "hidden": 32, "embed_dim": 16}
CLASSES = {"spk": 4, "dev": 3}


def test_gaussian_club_is_the_double_sum_of_eq_13():
    gen = torch.Generator().manual_seed(0)
    mu, logvar, y = (torch.randn(6, 5, generator=gen, dtype=torch.float64) for _ in range(3))
    variance = logvar.exp()
    log_q = torch.zeros(6, 6, dtype=torch.float64)  # log q(y_j | x_i) without the normaliser
    for i in range(6):
        for j in range(6):
            log_q[i, j] = (-(y[j] - mu[i]) ** 2 / (2 * variance[i])).sum()
    expected = log_q.diagonal().mean() - log_q.mean()
    assert torch.allclose(gaussian_club(mu, logvar, y), expected, rtol=1e-12)
    full_loglikelihood = sum(torch.distributions.Normal(mu[i], variance[i].sqrt()).log_prob(y[i]).sum()
                             for i in range(6)) / 6
    constant = 5 * np.log(2 * np.pi)  # 2 log N = −(y−μ)²/v − log v − log 2π per dimension
    assert torch.allclose(gaussian_loglikelihood(mu, logvar, y), 2 * full_loglikelihood + constant, rtol=1e-12)


def test_categorical_club_is_diagonal_minus_all_pairs():
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    labels = torch.tensor([0, 2, 2, 1, 0])
    probs = logits.softmax(1)
    log_q = torch.tensor([[probs[i, labels[j]].log().item() for j in range(5)] for i in range(5)],
                         dtype=torch.float64)
    assert torch.allclose(categorical_club(logits, labels), log_q.diagonal().mean() - log_q.mean(), rtol=1e-12)
    assert torch.allclose(categorical_loglikelihood(logits, labels), log_q.diagonal().mean(), rtol=1e-12)


def _tensors(z, *names):
    return [torch.tensor(z[name], requires_grad=True) for name in names]


def test_gaussian_club_matches_the_reference_fixture():
    z = np.load(PARITY_DIR / "club.npz")
    for function, scalar, suffix in ((gaussian_club, "value", ""), (gaussian_loglikelihood, "loglikeli", "_loglikeli")):
        mu, logvar, y = _tensors(z, "mu", "logvar", "y_samples")
        value = function(mu, logvar, y)
        value.backward()
        np.testing.assert_allclose(value.item(), z[scalar].item(), rtol=1e-7, atol=1e-10)
        for tensor, name in ((mu, "mu"), (logvar, "logvar"), (y, "y_samples")):
            np.testing.assert_allclose(tensor.grad.numpy(), z[f"grad_{name}{suffix}"], rtol=1e-7, atol=1e-10)


def test_categorical_club_matches_the_reference_fixture():
    z = np.load(PARITY_DIR / "club_categorical.npz")
    labels = torch.tensor(z["labels"])
    for function, scalar, suffix in ((categorical_club, "value", ""),
                                     (categorical_loglikelihood, "loglikeli", "_loglikeli")):
        (logits,) = _tensors(z, "logits")
        value = function(logits, labels)
        value.backward()
        np.testing.assert_allclose(value.item(), z[scalar].item(), rtol=1e-7, atol=1e-10)
        np.testing.assert_allclose(logits.grad.numpy(), z[f"grad_logits{suffix}"], rtol=1e-7, atol=1e-10)


def test_estimator_networks_have_the_specified_branches():
    gaussian = GaussianClub(16, 12, hidden=8)
    x = torch.randn(5, 16) * 100
    assert isinstance(gaussian.logvar[-1], torch.nn.Tanh) and gaussian.logvar(x).abs().max() <= 1
    assert gaussian.mean[0].out_features == 8 and gaussian.mean[-1].out_features == 12
    categorical = CategoricalClub(16, 7, hidden=8)
    assert categorical.classifier(x).shape == (5, 7)


class RecordingUpdater:
    """Adam per step group; records which parameters each step moved."""

    def __init__(self, objective):
        self.objective = objective
        self.optimizers = {g: torch.optim.Adam(ps, lr=1e-2) for g, ps in objective.parameter_groups().items()}
        self.moved = []

    def is_active(self, group):
        return True

    def step(self, group, loss):
        before = {n: p.detach().clone() for n, p in self.objective.named_parameters()}
        self.optimizers[group].zero_grad(set_to_none=True)
        loss.backward()
        self.optimizers[group].step()
        moved = {n for n, p in self.objective.named_parameters() if not torch.equal(before[n], p)}
        self.moved.append((group, moved))


def batch(seed=0):
    gen = torch.Generator().manual_seed(seed)
    speakers = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    return {"views": [torch.randn(8, 30, 20, generator=gen)],
            "labels": {"spk": speakers, "dev": torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])}}


def club(**options):
    torch.manual_seed(0)
    return build_objective({"name": "club", "estimator_hidden": 8, **options}, MODEL, CLASSES)


def test_estimators_move_only_in_their_phase_and_theta_only_in_the_main_phase():
    objective = club(club_inner_steps=2)
    updater = RecordingUpdater(objective)
    objective.training_step(batch(), updater)
    groups = [g for g, _ in updater.moved]
    assert groups == ["club_mi_s_d", "club_mi_d_ys", "club_mi_s_yd"] * 2 + ["main"]
    for group, moved in updater.moved[:-1]:
        own = {f"estimators.{group[len('club_'):]}.{n}" for n, _ in objective.estimators[group[5:]].named_parameters()}
        assert moved == own, group
    theta = {n for n, _ in objective.named_parameters() if not n.startswith("estimators.")}
    assert updater.moved[-1][1] == theta  # every θ parameter moves (all terms on), no φ


def _main_terms(objective):
    """The weighted main-phase terms of one step on the fixed batch."""
    values = objective.training_step(batch(), RecordingUpdater(objective))
    return {k[2:]: v for k, v in values.items() if k.startswith("w_")}, values["loss"]


@pytest.mark.parametrize("term", ["device", *MI_TERMS])
def test_each_weight_switch_removes_exactly_that_term(term):
    full = club()
    switched = club(weights={term: 0.0})
    switched.load_state_dict(full.state_dict(), strict=False)
    assert term not in switched.estimators and (term != "device" or switched.device_head is None)
    full_terms, full_loss = _main_terms(full)
    terms, loss = _main_terms(switched)
    assert set(full_terms) - set(terms) == {term}
    for name, value in terms.items():
        assert value == pytest.approx(full_terms[name], rel=1e-6), name
    assert loss == pytest.approx(full_loss - full_terms[term], rel=1e-6)
    groups = switched.parameter_groups()
    assert (f"club_{term}" in groups) is False


def test_weights_are_applied_and_s_only_stops_mi_gradients_into_the_device_branch():
    unit = club(weights={"speaker": 1.0, "device": 1.0, "mi_s_d": 1.0, "mi_d_ys": 1.0, "mi_s_yd": 1.0})
    values = unit.training_step(batch(), RecordingUpdater(unit))
    for term in MI_TERMS:
        assert values[f"w_{term}"] == pytest.approx(values[term])
    assert values["w_speaker"] == pytest.approx(values["aam"] + values["ap"])
    objective = club(device_loss=None, weights={"mi_s_yd": 0.0, "speaker": 0.0}, mi_grad_to="s_only")
    updater = RecordingUpdater(objective)
    objective.training_step(batch(), updater)
    # only Î(x_s; x_d) (x_d detached) and Î(x_d; y_s) (no path at all) reach θ: the device head stays still
    assert not any(n.startswith("decoupling.device.") for n in updater.moved[-1][1])
    assert any(n.startswith("decoupling.speaker.") for n in updater.moved[-1][1])


def test_prototypical_term_needs_speaker_grouped_batches():
    bad = batch()
    bad["labels"]["spk"] = torch.tensor([0, 1, 0, 1, 2, 3, 2, 3])
    with pytest.raises(ValueError, match="speaker_balanced"):
        club().training_step(bad, RecordingUpdater(club()))


def test_evaluation_embedding_is_x_s_or_x():
    objective = club().eval()
    feats = batch()["views"][0]
    x = objective.backbone(feats)
    assert torch.equal(objective.embedding_model()(feats), objective.decoupling(x)[0])
    on_x = club(eval_embedding="x").eval()
    assert torch.equal(on_x.embedding_model()(feats), on_x.backbone(feats))
    branches = objective.embedding_model().branches(feats)
    assert torch.equal(branches["x_d"], objective.decoupling(x)[1]) and torch.equal(branches["x"], x)
    stage_a = build_objective({"name": "club_pretrain"}, MODEL, {"spk": 4})
    assert stage_a.embedding_model() is stage_a.backbone and list(stage_a.parameter_groups()) == ["main"]
    with pytest.raises(ValueError, match="eval_embedding"):
        club(eval_embedding="x_d")
    with pytest.raises(ValueError, match="unknown key .weights.mi."):
        club(weights={"mi": 1.0})


CLUB_CONFIG = """\
seed: 4
dataset: {num_workers: 0, sampler: {name: speaker_balanced, speakers_per_batch: 2, utts_per_speaker: 2}}
model: {name: kit_mlp, feat_dim: 20, hidden: 32, embed_dim: 16}
objective: {name: club, num_frames: 30, estimator_hidden: 8, club_inner_steps: 2,
            weights: {speaker: 5.0, device: 10.0, mi_s_d: 0.5, mi_d_ys: 0.1, mi_s_yd: 0.1}}
optim: {name: adam, lr: 1.0e-3, weight_decay: 2.0e-5}
scheduler: {name: sgdr, cycle_epochs: 1, min_lr: 1.0e-6, warmup_epochs: 0.5, gamma: 0.8}
trainer: {epochs: 3, log_every: 1, checkpoint_every_steps: 2, keep_checkpoints: 2, average_last: 1,
          num_threads: 1, device: cpu}
"""


@pytest.fixture(scope="module")
def device_data(tmp_path_factory):
    data = make_feature_data_dir(tmp_path_factory.mktemp("club") / "data", utts_per_speaker=4)
    utts = sorted(line.split()[0] for line in (data / "utt2spk").read_text().splitlines())
    write_table(data / "utt2dev", {u: ["phone", "array", "tablet"][i % 3] for i, u in enumerate(utts)})
    return data


def test_kill_and_resume_mid_epoch_is_bit_identical(device_data, tmp_path, monkeypatch):
    config = tmp_path / "club.yaml"
    config.write_text(CLUB_CONFIG)

    def run(exp):
        return train.main(["--config", str(config), "--train_data", str(device_data), "--exp_dir", str(exp)])

    assert run(tmp_path / "straight") == 0
    train_until_killed(lambda: run(tmp_path / "resumed"), monkeypatch, at="step_0000006.pt")  # epoch 2, batch 2
    assert run(tmp_path / "resumed") == 0
    assert "resumed from" in (tmp_path / "resumed" / "train.log").read_text()
    straight, resumed = (torch.load(tmp_path / e / "checkpoints" / "epoch_003.pt", weights_only=True)
                         for e in ("straight", "resumed"))
    for key in ("objective",):
        assert straight[key].keys() == resumed[key].keys()
        for name in straight[key]:
            assert torch.equal(straight[key][name], resumed[key][name]), name
    assert any(k.startswith("estimators.mi_s_d.") for k in straight["objective"])


# Table I (METHODS.md §1.7): row -> (device loss, MI terms on, EER %, minDCF); "a" rows = scratch
TABLE_I = {"2a": (False, set(), 11.83, 0.668), "2b": (False, set(), 7.08, 0.468),
           "3a": (True, set(), 12.20, 0.690), "3b": (True, set(), 7.15, 0.473),
           "4a": (True, {"mi_s_d"}, 12.06, 0.718), "4b": (True, {"mi_s_d"}, 7.03, 0.467),
           "5a": (True, {"mi_d_ys", "mi_s_yd"}, 12.00, 0.703), "5b": (True, {"mi_d_ys", "mi_s_yd"}, 6.99, 0.461),
           "6a": (True, set(MI_TERMS), 11.95, 0.684), "6b": (True, set(MI_TERMS), 6.95, 0.450)}


def _meta_objective(cfg, classes):
    with torch.device("meta"):
        return build_objective(cfg["objective"], cfg["model"], classes)


@pytest.mark.parametrize("row", sorted(TABLE_I))
def test_table_i_configs_load_and_switch_their_rows_terms(row):
    from wespeaker_like.training.schema import load_experiment_config

    device, mi_terms, eer, min_dcf = TABLE_I[row]
    cfg = load_experiment_config(ROOT / "egs" / "ffsvc2022" / "club" / "conf" / f"row_{row}.yaml")
    paper = cfg["paper"]["numbers"]["ffsvc2022_dev"]
    assert cfg["paper"]["p_target"] == 0.05 and (paper["eer"], paper["min_dcf"]) == (eer, min_dcf)
    objective = _meta_objective(cfg, {"spk": 155, "dev": 4})
    assert set(objective.estimators) == mi_terms and (objective.device_head is not None) == device
    assert set(objective.parameter_groups()) == {"main"} | {f"club_{t}" for t in mi_terms}
    assert objective.weights["speaker"] == 5.0 and objective.embedding_model().output == "x_s"
    weights = {"device": 10.0, "mi_s_d": 0.5, "mi_d_ys": 0.1, "mi_s_yd": 0.1}
    for term in mi_terms | ({"device"} if device else set()):
        assert objective.weights[term] == weights[term]
    assert cfg["dataset"]["sampler"]["speakers_per_batch"] * cfg["dataset"]["sampler"]["utts_per_speaker"] == 200
    assert (cfg["scheduler"]["cycle_epochs"], cfg["optim"]["lr"], cfg["trainer"]["epochs"]) == (4, 1.0e-5, 4)
    assert bool(cfg["init_from"]["path"]) == row.endswith("b")
    assert cfg["model"]["name"] == "mfa_conformer" and cfg["model"]["d_model"] == 256


def test_row_1_is_stage_a_scored_with_x():
    from wespeaker_like.training.schema import load_experiment_config

    cfg = load_experiment_config(ROOT / "egs" / "ffsvc2022" / "club" / "conf" / "row_1.yaml")
    paper = cfg["paper"]["numbers"]["ffsvc2022_dev"]
    assert cfg["paper"]["p_target"] == 0.05 and (paper["eer"], paper["min_dcf"]) == (12.09, 0.722)
    objective = _meta_objective(cfg, {"spk": 7205})
    assert objective.embedding_model() is objective.backbone and objective.decoupling is None
    assert cfg["dataset"]["sampler"]["speakers_per_batch"] == 200 and cfg["trainer"]["epochs"] == 50


def test_mini_proof_rows_share_one_budget_and_switch_their_terms():
    from wespeaker_like.training.schema import load_experiment_config

    conf = ROOT / "egs" / "speechocean762" / "club" / "conf"
    stage_a = load_experiment_config(conf / "stage_a.yaml")
    assert _meta_objective(stage_a, {"spk": 125}).decoupling is None
    expected = {"2b": (False, set()), "3b": (True, set()), "6b": (True, set(MI_TERMS)), "6b_low_mi": (True, set(MI_TERMS))}
    budgets = set()
    for row, (device, mi_terms) in expected.items():
        cfg = load_experiment_config(conf / f"{row}.yaml")
        objective = _meta_objective(cfg, {"spk": 125, "dev": 5})
        assert set(objective.estimators) == mi_terms and (objective.device_head is not None) == device
        assert cfg["init_from"]["key_map"] == {"backbone.": ""}
        budgets.add((str(cfg["dataset"]["sampler"]), cfg["trainer"]["epochs"], str(cfg["model"]),
                     cfg["optim"]["lr"]))
    assert budgets == {(str(stage_a["dataset"]["sampler"]), 2, str(stage_a["model"]), 3.0e-4)}
    assert stage_a["trainer"]["epochs"] == 4
    low_mi = load_experiment_config(conf / "6b_low_mi.yaml")["objective"]["weights"]
    six_b = load_experiment_config(conf / "6b.yaml")["objective"]["weights"]
    assert {term: low_mi[term] * 10 for term in MI_TERMS} == pytest.approx({term: six_b[term] for term in MI_TERMS})


def test_copy_conditions_label_each_stage2_copy(tmp_path):
    from wespeaker_like.bin import data_dir
    from wespeaker_like.data.kaldi_dir import DataDir, read_table
    from wespeaker_like.errors import InputError

    utt2uniq = {"u1": "u1", "u1-babble": "u1", "u1-reverb": "u1", "u2": "u2", "u2-music": "u2"}
    DataDir({"utt2spk": {u: "s" + u[1] for u in utt2uniq}, "utt2uniq": utt2uniq}).save(tmp_path / "d")
    assert data_dir.main(["copy_conditions", str(tmp_path / "d")]) == 0
    assert read_table(tmp_path / "d" / "utt2dev") == {"u1": "clean", "u1-babble": "babble", "u1-reverb": "reverb",
                                                      "u2": "clean", "u2-music": "music"}
    with pytest.raises(InputError, match="'u3-noise' is neither"):
        data_dir.copy_conditions({"u3-noise": "u2"}, tmp_path / "utt2uniq")
