"""SDPN and DINO* objectives (issue 11): model parts, the training step against the loss formulas,
the EMA teacher through the trainer, parameter groups (no decay, per-tensor clipping), exact
resume, unlabelled data, and the report helpers the recipes use."""

import math
import shutil

import pytest
import torch
import torch.nn.functional as F

import objective_kit  # noqa: F401  (registers the kit_mlp backbone)
from conftest import make_feature_data_dir
from test_trainer import train_until_killed
from wespeaker_like.bin import extract, report, train
from wespeaker_like.data.kaldi_dir import DataDir
from wespeaker_like.errors import InputError
from wespeaker_like.losses.self_distillation import KoLeoLoss, sinkhorn_knopp
from wespeaker_like.models.projection import ProjectionHead, Prototypes
from wespeaker_like.objectives import build_objective
from wespeaker_like.training.ema import EmaTeacher
from wespeaker_like.training.schema import load_experiment_config
from wespeaker_like.training.step_groups import StepGroup, group_specs

KIT_MODEL = {"name": "kit_mlp", "feat_dim": 20, "hidden": 32, "embed_dim": 16}
TINY = {"global_frames": 40, "local_frames": 20, "head": {"hidden_dim": 32, "out_dim": 8}}
SDPN_CONFIG = """\
seed: 7
dataset: {num_workers: 0, sampler: {name: random, batch_size: 8}}
model: {name: kit_mlp, feat_dim: 20, hidden: 32, embed_dim: 16}
objective: {name: sdpn, global_frames: 40, local_frames: 20, spec_augment: {prob: 0.5},
            head: {hidden_dim: 32, out_dim: 8}, num_prototypes: 12, dr_weight: 0.1}
optim: {name: sgd, lr: 8.0, momentum: 0.9, weight_decay: 1.0e-2}
scheduler: {name: warmup_cosine, final_lr: 1.0e-3, warmup_epochs: 1}
step_groups: {main: {weight_decay_scheduler: {name: warmup_cosine, final_lr: 0.05}}}
trainer: {epochs: 3, log_every: 1, checkpoint_every_steps: 2, keep_checkpoints: 2, average_last: 1, num_threads: 1,
          device: cpu}
"""
DINO_OBJECTIVE = ("objective={name: dino, global_frames: 40, local_frames: 20, spec_augment: {prob: 0.5}, "
                  "head: {hidden_dim: 32, out_dim: 8}, out_dim: 12}")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_feature_data_dir(tmp_path_factory.mktemp("sdpn") / "data")


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "sdpn.yaml"
    path.write_text(SDPN_CONFIG)
    return path


def run(config, data, exp, *overrides):
    return train.main(["--config", str(config), "--train_data", str(data), "--exp_dir", str(exp),
                       "--set", *overrides])


class Recorder:
    """An updater that back-propagates and remembers the loss."""

    def step(self, group, loss):
        assert group == "main"
        self.loss = loss
        loss.backward()

    def is_active(self, group):
        return True


def tiny(name="sdpn", **options):
    torch.manual_seed(0)
    return build_objective({"name": name, **TINY, **options}, KIT_MODEL, {})


def random_batch(objective, batch=6):
    torch.manual_seed(1)
    return {"views": [torch.randn(batch, view.num_frames, 20) for view in objective.views], "labels": {}}


# ---------------------------------------------------------------------------------------- model parts

def test_projection_head_layout_and_prototype_cosines():
    head = ProjectionHead(16, hidden_dim=32, out_dim=8, num_layers=3)
    kinds = [type(m).__name__ for m in head.mlp]
    assert kinds == ["Linear", "BatchNorm1d", "GELU", "Linear", "BatchNorm1d", "GELU", "Linear"]
    assert all(torch.equal(m.bias, torch.zeros_like(m.bias)) for m in head.mlp if isinstance(m, torch.nn.Linear))
    z = head(torch.randn(5, 16))
    assert z.shape == (5, 8) and torch.allclose(z.norm(dim=1), torch.ones(5))
    prototypes = Prototypes(12, 8)
    assert prototypes.weight.abs().max() <= 1 / math.sqrt(8)
    x = torch.randn(5, 8)
    expected = torch.tensor([[float(a @ c / (a.norm() * c.norm())) for c in prototypes.weight.detach()] for a in x])
    assert torch.allclose(prototypes(x), expected, atol=1e-6)


def test_parameter_counts_match_the_paper():
    """METHODS.md §4.1/4.6: SDPN 57.29 M (teacher + student + prototypes), w/o PRO 57.03 M, w/o PRO-2
    adds 0.31 M (hidden 2080), DINO* about 90.7 M (paper 90.68)."""
    model = {"name": "ecapa_tdnn", "feat_dim": 80, "embed_dim": 512, "channels": [1024, 1024, 1024, 1024, 3072],
             "mfa_bn": True, "attention_bn": True, "padding_mode": "reflect"}

    def millions(spec):
        with torch.device("meta"):
            objective = build_objective(spec, model, {})
        return sum(p.numel() for p in objective.parameters()) / 1e6

    assert millions({"name": "sdpn"}) == pytest.approx(57.29, abs=0.005)
    assert millions({"name": "sdpn", "use_prototypes": False}) == pytest.approx(57.03, abs=0.005)
    assert millions({"name": "sdpn", "use_prototypes": False, "head": {"hidden_dim": 2080}}) \
        == pytest.approx(57.03 + 0.31, abs=0.005)
    assert millions({"name": "dino"}) == pytest.approx(90.68, abs=0.15)


def test_views_follow_the_paper():
    sdpn = build_objective({"name": "sdpn", "augment": "sdpn", "spec_augment": {"prob": 0.2}}, KIT_MODEL, {})
    glob, *local = sdpn.views
    assert (glob.num_frames, glob.augment, glob.spec_augment) == (400, None, None)
    assert len(local) == 4 and {(v.num_frames, v.augment) for v in local} == {(200, "sdpn")}
    masks = {v.spec_augment for v in local}
    assert len(masks) == 1 and next(iter(masks)).group is not None and next(iter(masks)).prob == 0.2
    assert next(iter(masks)).time_width == (0, 10) and next(iter(masks)).freq_width == (0, 6)
    dino = build_objective({"name": "dino", "out_dim": 16}, KIT_MODEL, {})
    assert [v.num_frames for v in dino.views] == [400, 400, 200, 200, 200, 200]
    assert sdpn.label_names == () and dino.label_names == ()


# ---------------------------------------------------------------------------------------- training step

def test_sdpn_step_is_the_formula_and_the_teacher_gets_no_gradient():
    objective = tiny(num_prototypes=12, dr_weight=0.1)
    batch = random_batch(objective)
    updater = Recorder()
    values = objective.training_step(batch, updater)
    with torch.no_grad():
        t = F.normalize(objective.teacher.head(objective.teacher.backbone(batch["views"][0])), dim=1)
        c = F.normalize(objective.prototypes.weight, dim=1)
        targets = sinkhorn_knopp(t @ c.T, 0.1 * 0.25, 3)
    prototypes = objective.prototypes.weight.detach().clone().requires_grad_(True)
    embedding = objective.student.backbone(torch.cat(batch["views"][1:]))
    z = F.normalize(objective.student.head(embedding), dim=1)
    log_p = F.log_softmax(z @ F.normalize(prototypes, dim=1).T / 0.1, dim=1)
    ce = -(targets.repeat(4, 1) * log_p).sum(1).mean()
    mean_p = log_p.exp().mean(0)
    memax = (mean_p * mean_p.log()).sum() + math.log(12)
    koleo = sum(KoLeoLoss()(chunk) for chunk in embedding.chunk(4))
    expected = ce + memax + 0.1 * koleo
    expected.backward()
    assert updater.loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert values["koleo"] == pytest.approx(koleo.item(), rel=1e-5)
    assert torch.allclose(objective.prototypes.weight.grad, prototypes.grad, atol=1e-6)
    assert all(p.grad is None and not p.requires_grad for p in objective.teacher.parameters())
    for key in ("teacher_std", "assign_entropy", "protos_used"):
        assert math.isfinite(values[key])
    assert 0 < values["protos_used"] <= 6 / 12


def test_sdpn_switches_change_the_loss_as_the_rows_say():
    batch = random_batch(tiny())
    without_dr = tiny(dr_weight=0.0).training_step(batch, Recorder())
    assert "koleo" not in without_dr
    no_prototypes = tiny(use_prototypes=False)
    assert no_prototypes.prototypes is None
    updater = Recorder()
    no_prototypes.training_step(batch, updater)
    assert updater.loss.requires_grad  # logits = the 8 head outputs: the loss checks (4B, 8) vs (B, 8)
    paper_literal = tiny(loss={"memax_weight": 0.0}).training_step(batch, Recorder())
    official = tiny(loss={"memax_weight": 1.0}).training_step(batch, Recorder())
    assert official["loss"] == pytest.approx(paper_literal["loss"] + official["memax"], rel=1e-5)


def test_unknown_head_or_loss_key_is_named(config, data, tmp_path, capsys):
    with pytest.raises(ValueError, match="unknown key 'loss.tau'"):
        tiny(loss={"tau": 0.1})
    with pytest.raises(ValueError, match="unknown key 'head.in_dim'"):
        tiny("dino", head={"in_dim": 3}, out_dim=12)
    assert run(config, data, tmp_path / "exp", "objective.loss={sharpen: 0.25}") != 0
    assert f"{config}:4: 'objective': unknown key 'loss.sharpen'" in capsys.readouterr().err


def test_dino_step_centres_the_teacher():
    objective = tiny("dino", out_dim=12)
    assert torch.count_nonzero(objective.loss.center) == 0
    batch = random_batch(objective)
    updater = Recorder()
    values = objective.training_step(batch, updater)
    assert torch.count_nonzero(objective.loss.center) > 0
    assert values["teacher_temperature"] == pytest.approx(0.04)
    assert all(p.grad is None for p in objective.teacher.parameters())
    assert objective.student.last_layer.weight.grad is not None
    objective.before_optimizer_step("main", 0.5)  # inside freeze_last_layer (1 epoch): no update
    assert objective.student.last_layer.weight.grad is None
    updater = Recorder()
    objective.training_step(batch, updater)
    objective.before_optimizer_step("main", 1.0)
    assert objective.student.last_layer.weight.grad is not None


# ---------------------------------------------------------------------------------------- trainer integration

def test_prototypes_get_no_weight_decay_and_clipping_is_per_tensor(config):
    cfg = load_experiment_config(config)
    objective = build_objective(cfg["objective"], cfg["model"], {})
    specs = group_specs(objective, cfg)
    group = StepGroup("main", objective.parameter_groups()["main"], specs["main"], 3, 8, False, "cpu")
    group.set_progress(0.5)
    assert group.base_lr == pytest.approx(8.0 * 8 / 256)  # LR scaled by global batch / 256
    weight = objective.student.head.mlp[0].weight
    bias = objective.student.head.mlp[0].bias
    before = {name: p.detach().clone() for name, p in (("proto", objective.prototypes.weight), ("w", weight),
                                                       ("b", bias))}
    for p in group.params:
        p.grad = torch.zeros_like(p)
    group.optimizer.step()
    assert torch.equal(objective.prototypes.weight, before["proto"]) and torch.equal(bias, before["b"])
    lr = group.optimizer.param_groups[0]["lr"]
    decay = group.optimizer.param_groups[0]["weight_decay"]
    assert decay > 0 and torch.allclose(weight, before["w"] * (1 - lr * decay))
    for i, p in enumerate(group.params):
        p.grad = torch.full_like(p, 100.0 if i % 2 else 1e-4)
    small = [p.grad.clone() for p in group.params]
    group.clip()
    for i, p in enumerate(group.params):
        if i % 2:
            assert p.grad.norm().item() == pytest.approx(3.0, rel=1e-5)
        else:
            assert torch.equal(p.grad, small[i])  # each tensor on its own: small ones are untouched
    assert not any(id(p) in {id(q) for q in objective.teacher.parameters()} for p in group.params)


def test_teacher_moves_only_by_the_scheduled_ema(config, data, tmp_path):
    exp = tmp_path / "exp"
    assert run(config, data, exp, "trainer.epochs=1", "trainer.checkpoint_every_steps=1") == 0
    first = torch.load(exp / "checkpoints" / "step_0000001.pt", weights_only=True)["objective"]
    second = torch.load(exp / "checkpoints" / "step_0000002.pt", weights_only=True)["objective"]
    ema = EmaTeacher(torch.nn.Linear(1, 1), torch.nn.Linear(1, 1), 0.996, {"name": "warmup_cosine", "final_lr": 1.0})
    ema.start(1)
    momentum = ema.momentum_at(1 / 3)  # the second of 3 batches
    assert 0.996 < momentum < 1
    params = [k for k in first if k.startswith("teacher.") and not any(
        b in k for b in ("running_mean", "running_var", "num_batches_tracked"))]
    assert params
    for key in params:
        student = second["student." + key[len("teacher."):]]
        expected = momentum * first[key] + (1 - momentum) * student
        assert torch.allclose(second[key], expected, atol=1e-6), key
    moved = [k for k in params if not torch.equal(first[k], second[k])]
    assert moved


@pytest.mark.parametrize("objective", ["sdpn", "dino"])
def test_kill_and_resume_is_bit_identical(config, data, tmp_path, monkeypatch, objective):
    overrides = [DINO_OBJECTIVE] if objective == "dino" else []
    assert run(config, data, tmp_path / "straight", *overrides) == 0
    train_until_killed(lambda: run(config, data, tmp_path / "resumed", *overrides), monkeypatch)
    assert run(config, data, tmp_path / "resumed", *overrides) == 0
    assert "resumed from" in (tmp_path / "resumed" / "train.log").read_text()
    straight, resumed = (torch.load(tmp_path / exp / "checkpoints" / "epoch_003.pt", weights_only=True)["objective"]
                         for exp in ("straight", "resumed"))
    assert straight.keys() == resumed.keys() and any(k.startswith("teacher.") for k in straight)
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key


def test_unlabelled_data_dir_trains_and_extraction_uses_the_teacher(config, data, tmp_path):
    unlabelled = tmp_path / "unlabelled"
    shutil.copytree(data, unlabelled)
    (unlabelled / "utt2spk").unlink()
    (unlabelled / "spk2utt").unlink()
    exp = tmp_path / "exp"
    assert run(config, unlabelled, exp, "trainer.epochs=1") == 0
    log = (exp / "train.log").read_text()
    assert "24 utterances, {} classes" in log and "teacher_std" in log and "protos_used" in log
    state = torch.load(exp / "checkpoints" / "epoch_001.pt", weights_only=True)["objective"]
    model, _ = extract.load_embedding_model(exp)
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[f"teacher.backbone.{key}"]), key


def test_data_dir_without_utt2spk_needs_a_listing_or_labels(data, tmp_path):
    shutil.copytree(data, tmp_path / "d")
    (tmp_path / "d" / "utt2spk").unlink()
    with pytest.raises(InputError, match="utt2spk"):
        DataDir.load(tmp_path / "d")
    loaded = DataDir.load(tmp_path / "d", need_speakers=False)
    assert loaded.utt2spk == {u: u for u in DataDir.load(data).utts}


# ---------------------------------------------------------------------------------------- report helpers

def test_report_reads_the_last_epoch_means(tmp_path):
    log = tmp_path / "train.log"
    log.write_text("x train INFO epoch 1 done: loss 7.0000 teacher_std 0.0500 (10 s training so far)\n"
                   "x train INFO epoch 2 batch 1/3 step 4 lr 0.1 loss 6.0\n"
                   "x train INFO epoch 2 done: loss 6.5000 teacher_std 0.0712 protos_used 0.2500 (20 s training so far)\n")
    means = report.last_epoch_means(log)
    assert means == {"loss": 6.5, "teacher_std": 0.0712, "protos_used": 0.25}
    assert report.format_stats(means, ["teacher_std", "protos_used"], log) == "end: teacher_std 0.0712, protos_used 0.25"
    assert report.last_epoch_means(tmp_path / "absent.log") == {}
