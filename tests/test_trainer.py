"""The trainer: learning, exact resume after an interruption, and torchrun data parallelism."""

import subprocess
import sys

import pytest
import torch

from conftest import ROOT, TINY_TRAIN_CONFIG, make_feature_data_dir, repo_env
from wespeaker_like.bin import train
from wespeaker_like.objectives import build_objective
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


def train_until_killed(run, monkeypatch, at="step_0000004.pt"):
    """Call ``run()`` with the trainer killed right after it saved checkpoint ``at``."""
    real_save = trainer_module.Trainer.save

    def save_then_die(self, name):
        real_save(self, name)
        if name == at:
            raise KeyboardInterrupt("simulated kill after a mid-epoch checkpoint")

    with monkeypatch.context() as patch:
        patch.setattr(trainer_module.Trainer, "save", save_then_die)
        with pytest.raises(KeyboardInterrupt):
            run()


def test_resume_after_interruption_gives_identical_model(setup, tmp_path, monkeypatch):
    data, config = setup
    assert run_train(config, data, tmp_path / "straight") == 0
    straight = final_weights(tmp_path / "straight")

    train_until_killed(lambda: run_train(config, data, tmp_path / "resumed"), monkeypatch)
    assert not (tmp_path / "resumed" / "final_model.pt").exists()
    assert run_train(config, data, tmp_path / "resumed") == 0
    log = (tmp_path / "resumed" / "train.log").read_text()
    assert "resumed from" in log and "step 4" in log
    resumed = final_weights(tmp_path / "resumed")
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key
    # the final model averages the last two epochs
    assert torch.load(tmp_path / "resumed" / "final_model.pt", weights_only=True)["averaged"] == [
        "epoch_002.pt", "epoch_003.pt"]


def test_rerun_of_a_finished_experiment_keeps_its_final_model(setup, tmp_path):
    data, config = setup
    exp = tmp_path / "exp"
    assert run_train(config, data, exp) == 0
    final = exp / "final_model.pt"
    written = final.stat().st_mtime_ns
    assert run_train(config, data, exp) == 0
    assert final.stat().st_mtime_ns == written
    assert "training had finished: " + str(final) + " kept" in (exp / "train.log").read_text()
    final.unlink()  # a finished run without its final model writes it again
    assert run_train(config, data, exp) == 0 and final.is_file()


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


def test_new_run_over_another_runs_checkpoints_is_refused_unless_starting_over(setup, tmp_path):
    data, config = setup
    exp = tmp_path / "exp"
    assert run_train(config, data, exp) == 0  # 3 epochs, keeps epoch_002 and epoch_003
    (exp / "checkpoints" / "latest").unlink()
    old_config = (exp / "config.yaml").read_text()
    assert run_train(config, data, exp, "trainer.epochs=1") == 1
    log = (exp / "train.log").read_text()
    assert "holds checkpoints of another run (epoch_002.pt, epoch_003.pt" in log and "--start_over" in log
    assert (exp / "config.yaml").read_text() == old_config
    assert train.main(["--config", str(config), "--train_data", str(data), "--exp_dir", str(exp), "--start_over",
                       "--set", "trainer.epochs=1"]) == 0
    assert torch.load(exp / "final_model.pt", weights_only=True)["averaged"] == ["epoch_001.pt"]
    assert sorted(p.name for p in (exp / "checkpoints.old.1").glob("epoch_*.pt")) == ["epoch_002.pt", "epoch_003.pt"]


def test_diverging_weights_stop_with_the_step_named(setup, tmp_path):
    data, config = setup
    exp = tmp_path / "exp"
    assert run_train(config, data, exp, "optim.lr=1e30", "scheduler.warmup_epochs=0.0") == 1
    log = (exp / "train.log").read_text()
    assert "Traceback" not in log
    assert "not finite after step" in log or "is nan at step" in log
    assert not (exp / "final_model.pt").exists()


def test_nan_features_end_in_one_message(setup, tmp_path):
    import numpy as np

    from wespeaker_like.data.scp import load_matrix, read_scp
    from wespeaker_like.features.ark import ArkScpWriter

    data, config = setup
    feats = read_scp(data / "feats.scp")
    with ArkScpWriter(data / "nan.ark", data / "feats.scp") as writer:
        for utt, ref in feats.items():
            writer.write(utt, np.full_like(load_matrix(ref, data / "feats.scp", utt), np.nan))
    exp = tmp_path / "exp"
    assert run_train(config, data, exp) == 1
    assert "train ERROR loss of group 'main' is nan at step 1" in (exp / "train.log").read_text()


def test_too_few_utterances_for_one_batch(setup, tmp_path):
    data, config = setup
    assert run_train(config, data, tmp_path / "exp", "dataset.sampler.batch_size=100") == 1
    log = (tmp_path / "exp" / "train.log").read_text()
    assert f"{data}: 24 training utterances cannot fill one batch of 100" in log


def test_an_epoch_without_batches_is_an_error_not_an_untrained_model(setup, tmp_path, monkeypatch):
    from wespeaker_like.dataset import samplers

    data, config = setup
    monkeypatch.setattr(samplers.RandomBatchSampler, "epoch_batches", lambda self, rng: [])
    exp = tmp_path / "exp"
    assert run_train(config, data, exp) == 1
    assert "epoch 1: the batch sampler (RandomBatchSampler) gives no batch" in (exp / "train.log").read_text()
    assert not (exp / "final_model.pt").exists()


def test_damaged_latest_checkpoint_falls_back_to_the_previous_one(setup, tmp_path, monkeypatch):
    data, config = setup
    assert run_train(config, data, tmp_path / "straight") == 0
    train_until_killed(lambda: run_train(config, data, tmp_path / "resumed"), monkeypatch)
    ckpt_dir = tmp_path / "resumed" / "checkpoints"
    latest = ckpt_dir / "step_0000004.pt"
    latest.write_bytes(latest.read_bytes()[:1000])  # truncated
    (ckpt_dir / ".epoch_002.k1ll3d.tmp.pt").write_bytes(b"partial")  # temp file of the killed save
    assert run_train(config, data, tmp_path / "resumed") == 0
    log = (tmp_path / "resumed" / "train.log").read_text()
    assert f"{latest}: is not a readable checkpoint" in log and "falling back to the previous checkpoint" in log
    assert "resumed from " + str(ckpt_dir / "epoch_001.pt") in log
    assert not (ckpt_dir / ".epoch_002.k1ll3d.tmp.pt").exists()
    straight, resumed = final_weights(tmp_path / "straight"), final_weights(tmp_path / "resumed")
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key


def test_corrupt_or_mismatched_final_model_is_named_at_extraction(setup, tmp_path):
    from wespeaker_like.bin.extract import load_embedding_model
    from wespeaker_like.errors import InputError

    data, config = setup
    exp = tmp_path / "exp"
    assert run_train(config, data, exp, "trainer.epochs=1") == 0
    final = exp / "final_model.pt"
    good = final.read_bytes()
    final.write_bytes(good[: len(good) // 2])
    with pytest.raises(InputError, match=f"{final}: is not a readable checkpoint"):
        load_embedding_model(exp)
    final.write_bytes(good)
    saved = exp / "config.yaml"
    saved.write_text(saved.read_text().replace("embed_dim: 16", "embed_dim: 24"))
    with pytest.raises(InputError, match=r"final_model.pt: '.*' has shape \(16.*\) but the model built from "
                                         rf"{saved} expects \(24"):
        load_embedding_model(exp)


def test_feature_dimension_mismatch_names_both_sides(setup, tmp_path):
    data, config = setup  # 20-d features
    exp = tmp_path / "exp"
    assert run_train(config, data, exp, "model.feat_dim=24") == 1
    assert (f"model.feat_dim is 24 but {data / 'feats.scp'} holds 20-d features (utterance spk0-utt0)"
            in (exp / "train.log").read_text())


def test_resume_with_other_training_data_is_refused(setup, tmp_path):
    import shutil

    data, config = setup
    exp = tmp_path / "exp"
    assert run_train(config, data, exp, "trainer.epochs=1") == 0
    other = shutil.copytree(data, tmp_path / "other")
    assert run_train(config, other, exp, "trainer.epochs=1") == 1
    assert f"was trained on {data.resolve()}, not on --train_data {other.resolve()}" in (exp / "train.log").read_text()


def test_init_from_a_trained_model_with_another_head_freezes_then_unfreezes(setup, tmp_path):
    data, config = setup
    assert run_train(config, data, tmp_path / "source", "trainer.epochs=1") == 0
    source = final_weights(tmp_path / "source")
    exp = tmp_path / "finetune"
    assert run_train(config, data, exp, "trainer.epochs=2", "trainer.keep_checkpoints=3",
                     "objective.loss={name: softmax}", f"init_from.path={tmp_path / 'source'}",
                     "init_from.freeze={backbone.: 1}") == 0
    log = (exp / "train.log").read_text()
    assert "init_from " + str(tmp_path / "source" / "final_model.pt") in log
    assert "not initialised: head.linear.bias, head.linear.weight; unused from the source: none" in log
    after = [torch.load(exp / "checkpoints" / f"epoch_00{e}.pt", weights_only=True)["objective"] for e in (1, 2)]
    params = [name for name, _ in build_objective(
        {"name": "classification", "loss": {"name": "softmax"}, "num_frames": 30},
        {"name": "ecapa_tdnn", "feat_dim": 20, "embed_dim": 16, "channels": [16, 16, 16, 16, 48],
         "se_channels": 8, "attention_channels": 8}, {"spk": 4}).backbone.named_parameters()]
    assert len(params) > 20
    for name in params:
        assert torch.equal(after[0][f"backbone.{name}"], source[name]), name  # frozen for epoch 1
    changed = [name for name in params if not torch.equal(after[1][f"backbone.{name}"], source[name])]
    assert changed == params  # unfrozen in epoch 2
    assert torch.load(exp / "final_model.pt", weights_only=True)["label_maps"] == {
        "spk": {"spk0": 0, "spk1": 1, "spk2": 2, "spk3": 3}}

    assert run_train(config, data, tmp_path / "bad", f"init_from.path={tmp_path / 'source'}",
                     "init_from.key_map={decoupler.: ''}") == 1
    assert "init_from.key_map 'decoupler.' <- '': no weight of the source matches" in (
        tmp_path / "bad" / "train.log").read_text()


def test_sync_batchnorm_option_converts_only_for_several_gpu_ranks():
    from wespeaker_like.training.distributed import DistContext, maybe_sync_batchnorm

    def model():
        return torch.nn.Sequential(torch.nn.Conv1d(2, 4, 1), torch.nn.BatchNorm1d(4))

    def count(module):
        return sum(isinstance(m, torch.nn.SyncBatchNorm) for m in module.modules())

    plain = model()
    assert maybe_sync_batchnorm(plain, True, DistContext()) is plain and count(plain) == 0
    assert count(maybe_sync_batchnorm(model(), False, DistContext(world_size=2))) == 0
    gpu_ranks = DistContext(world_size=2, device=torch.device("cuda", 0))
    converted = maybe_sync_batchnorm(plain, True, gpu_ranks)
    assert count(converted) == 1 and converted[1].weight is plain[1].weight
    with pytest.raises(ValueError, match="needs GPU processes"):
        maybe_sync_batchnorm(model(), True, DistContext(world_size=2))


def test_compiled_backbone_trains_like_the_eager_one(setup, tmp_path, monkeypatch):
    """``trainer.compile: true`` runs the backbone through torch.compile (here dynamo's graph capture
    with the "eager" backend: no code generation in the test suite) with the eager weights and
    checkpoints: the final model equals the uncompiled run's to float tolerance."""
    from wespeaker_like.training import compile as compile_module

    data, config = setup
    assert run_train(config, data, tmp_path / "eager", "trainer.epochs=1") == 0
    monkeypatch.setattr(compile_module, "BACKEND", "eager")
    assert run_train(config, data, tmp_path / "compiled", "trainer.epochs=1", "trainer.compile=true") == 0
    log = (tmp_path / "compiled" / "train.log").read_text()
    assert "torch.compile (eager) of the backbone ECAPA" in log and "failed" not in log
    eager, compiled = final_weights(tmp_path / "eager"), final_weights(tmp_path / "compiled")
    assert eager.keys() == compiled.keys()
    for key in eager:
        torch.testing.assert_close(compiled[key], eager[key], rtol=1e-5, atol=1e-6)


def test_failed_compilation_falls_back_to_eager(setup, tmp_path, monkeypatch):
    """A compiler that fails (say, no C++ compiler for inductor) is logged once and the run trains in
    eager mode: the same final model, bit for bit, as a run without ``trainer.compile``."""
    from wespeaker_like.training import compile as compile_module

    def broken_compile(fn, **options):
        def run(*args, **kwargs):
            raise RuntimeError("InductorError: C++ compile error\n(details)")
        return run

    data, config = setup
    assert run_train(config, data, tmp_path / "eager", "trainer.epochs=1") == 0
    monkeypatch.setattr(compile_module.torch, "compile", broken_compile)
    assert run_train(config, data, tmp_path / "fallback", "trainer.epochs=1", "trainer.compile=true") == 0
    log = (tmp_path / "fallback" / "train.log").read_text()
    assert log.count("torch.compile of ECAPA_TDNN failed, training it in eager mode: RuntimeError: "
                     "InductorError: C++ compile error") == 1
    eager, fallback = final_weights(tmp_path / "eager"), final_weights(tmp_path / "fallback")
    assert all(torch.equal(eager[key], fallback[key]) for key in eager)
