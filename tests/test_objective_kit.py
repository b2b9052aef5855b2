"""The objective contract: the two proof objectives of ``objective_kit`` through the real trainer.

For each: a mid-epoch kill and resume ends bit-identical, two gloo ranks of B/2 equal one rank of B,
an inactive group's parameters do not move, and extraction uses ``embedding_model()``.
"""

import subprocess
import sys

import pytest
import torch

import objective_kit
from conftest import ROOT, make_feature_data_dir, repo_env
from test_trainer import train_until_killed
from wespeaker_like.bin import extract, train
from wespeaker_like.objectives import build_objective
from wespeaker_like.training.schema import load_experiment_config

KIT = sorted(objective_kit.KIT_CONFIGS)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_feature_data_dir(tmp_path_factory.mktemp("kit") / "data")


def kit_config(tmp_path, name):
    path = tmp_path / f"{name}.yaml"
    path.write_text(objective_kit.KIT_CONFIGS[name])
    return path


def run(config, data, exp, *overrides):
    return train.main(["--config", str(config), "--train_data", str(data), "--exp_dir", str(exp),
                       "--set", *overrides])


def objective_state(exp, name="epoch_003.pt"):
    return torch.load(exp / "checkpoints" / name, weights_only=True)["objective"]


def initial_state(config):
    cfg = load_experiment_config(config)
    train.seed_everything(cfg["seed"])
    return build_objective(cfg["objective"], cfg["model"], {"spk": 4}).state_dict()


@pytest.mark.parametrize("name", KIT)
def test_kill_and_resume_is_bit_identical(data, tmp_path, monkeypatch, name):
    config = kit_config(tmp_path, name)
    assert run(config, data, tmp_path / "straight") == 0
    train_until_killed(lambda: run(config, data, tmp_path / "resumed"), monkeypatch)  # at epoch 2, batch 1
    assert run(config, data, tmp_path / "resumed") == 0
    assert "step 4" in (tmp_path / "resumed" / "train.log").read_text()
    straight, resumed = objective_state(tmp_path / "straight"), objective_state(tmp_path / "resumed")
    assert straight.keys() == resumed.keys()
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key


@pytest.mark.parametrize("name", KIT)
def test_two_ranks_of_half_batch_equal_one_rank(data, tmp_path, name):
    config = kit_config(tmp_path, name)
    assert run(config, data, tmp_path / "one", "trainer.keep_checkpoints=3") == 0
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         str(ROOT / "tests" / "kit_train.py"), "--config", str(config), "--train_data", str(data),
         "--exp_dir", str(tmp_path / "two"), "--set", "dataset.sampler.batch_size=4",
         "trainer.keep_checkpoints=3"],
        capture_output=True, text=True, env=repo_env(), cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "parameters agree across 2 ranks" in (tmp_path / "two" / "train.log").read_text()
    one, two = objective_state(tmp_path / "one"), objective_state(tmp_path / "two")
    initial = initial_state(config)
    for key in one:
        if key.startswith(objective_kit.NOISE_DRIVEN.get(name, ())):
            continue
        if key.startswith(objective_kit.UNMOVED.get(name, ())):
            assert torch.equal(one[key], initial[key]) and torch.equal(two[key], initial[key]), key
            continue
        assert torch.allclose(one[key], two[key], rtol=0, atol=1e-6), key
        assert not torch.equal(one[key], initial[key]) or key.startswith("unused."), key
    if name == "kit_two_optimizers":
        for exp in ("one", "two"):
            after_epoch_1 = objective_state(tmp_path / exp, "epoch_001.pt")
            for key in ("aux.weight", "aux.bias", "backbone.frame.weight", "unused.weight", "unused.bias"):
                assert torch.equal(after_epoch_1[key], initial[key]), (exp, key)  # inactive, hooked, no grad
            assert not torch.equal(after_epoch_1["head.weight"], initial["head.weight"])
        assert torch.equal(two["unused.weight"], initial["unused.weight"])  # no zero-filled grads, no decay


def test_extraction_uses_the_ema_teacher(data, tmp_path):
    config = kit_config(tmp_path, "kit_ema_teacher")
    exp = tmp_path / "exp"
    assert run(config, data, exp, "trainer.epochs=2") == 0
    state = torch.load(exp / "checkpoints" / "epoch_002.pt", weights_only=True)["objective"]
    model, _ = extract.load_embedding_model(exp)
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[f"teacher.0.{key}"]), key
    assert not torch.equal(state["teacher.0.out.weight"], state["student.0.out.weight"])


def test_ema_teacher_update_follows_the_formula():
    from wespeaker_like.training.ema import EmaTeacher

    student, teacher = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    ema = EmaTeacher(teacher, student, 0.996, {"name": "warmup_cosine", "final_lr": 1.0})
    ema.start(total_epochs=4)
    assert ema.momentum_at(0.0) == pytest.approx(0.996)
    assert ema.momentum_at(2.0) == pytest.approx(0.998)
    assert ema.momentum_at(4.0) == pytest.approx(1.0)
    before = teacher.weight.detach().clone()
    assert ema.update(2.0) == pytest.approx(0.998)
    expected = 0.998 * before + 0.002 * student.weight.detach()
    assert torch.allclose(teacher.weight, expected, atol=1e-7)
    assert not teacher.weight.requires_grad
