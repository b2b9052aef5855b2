"""The trainer: learning, exact resume after an interruption, and torchrun data parallelism."""

import subprocess
import sys

import pytest
import torch

from conftest import ROOT, TINY_TRAIN_CONFIG, make_feature_data_dir, repo_env
from wespeaker_like.bin import train
from wespeaker_like.training import trainer as trainer_module


@pytest.fixture
def setup(tmp_path):
    data = make_feature_data_dir(tmp_path / "data")
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY_TRAIN_CONFIG)
    return data, config


def run_train(config, data, exp, *overrides):
    return train.main(["--config", str(config), "--train_data", str(data), "--exp_dir", str(exp),
                       "--set", *overrides])


def final_weights(exp):
    return torch.load(exp / "final_model.pt", weights_only=True)["embedding"]


def test_resume_after_interruption_gives_identical_model(setup, tmp_path, monkeypatch):
    data, config = setup
    assert run_train(config, data, tmp_path / "straight") == 0
    straight = final_weights(tmp_path / "straight")

    real_save = trainer_module.Trainer.save
    def save_then_die(self, name):
        real_save(self, name)
        if name == "step_0000004.pt":
            raise KeyboardInterrupt("simulated kill after a mid-epoch checkpoint")
    monkeypatch.setattr(trainer_module.Trainer, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        run_train(config, data, tmp_path / "resumed")
    assert not (tmp_path / "resumed" / "final_model.pt").exists()
    monkeypatch.setattr(trainer_module.Trainer, "save", real_save)
    assert run_train(config, data, tmp_path / "resumed") == 0
    log = (tmp_path / "resumed" / "train.log").read_text()
    assert "resumed from" in log and "step 4" in log
    resumed = final_weights(tmp_path / "resumed")
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key
    # the final model averages the last two epochs
    assert torch.load(tmp_path / "resumed" / "final_model.pt", weights_only=True)["averaged"] == [
        "epoch_002.pt", "epoch_003.pt"]


def test_training_reduces_the_loss(setup, tmp_path):
    data, config = setup
    assert run_train(config, data, tmp_path / "exp", "trainer.epochs=6") == 0
    epochs = [line for line in (tmp_path / "exp" / "train.log").read_text().splitlines() if "done: loss" in line]
    first, last = (float(line.split("loss ")[1].split()[0]) for line in (epochs[0], epochs[-1]))
    assert len(epochs) == 6 and last < 0.7 * first


def test_changed_config_with_old_checkpoints_is_refused(setup, tmp_path):
    data, config = setup
    assert run_train(config, data, tmp_path / "exp", "trainer.epochs=1") == 0
    assert run_train(config, data, tmp_path / "exp", "trainer.epochs=2") == 1


def test_unknown_config_key_exits_with_file_and_line(setup, tmp_path):
    data, config = setup
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY_TRAIN_CONFIG.replace("trainer: {epochs: 3", "trainer: {epoch: 3"))
    proc = subprocess.run([sys.executable, "-m", "wespeaker_like.bin.train", "--config", str(bad),
                           "--train_data", str(data), "--exp_dir", str(tmp_path / "exp")],
                          capture_output=True, text=True, env=repo_env(), cwd=ROOT)
    assert proc.returncode == 1
    assert f"{bad}:8: 'trainer.epoch': unknown config key" in proc.stderr


def test_torchrun_two_cpu_processes_stay_in_sync(setup, tmp_path):
    data, config = setup
    exp = tmp_path / "ddp"
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "-m", "wespeaker_like.bin.train", "--config", str(config), "--train_data", str(data),
         "--exp_dir", str(exp), "--set", "trainer.epochs=2", "trainer.device=cpu"],
        capture_output=True, text=True, env=repo_env(), cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = (exp / "train.log").read_text()
    assert "2 ranks" in log and "parameters agree across 2 ranks" in log
    # 24 utterances / (8 per batch × 2 ranks) = 1 step per epoch on each rank
    assert "batch 1/1 step 2" in log
