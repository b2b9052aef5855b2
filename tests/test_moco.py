"""The MoCo objective: its queue InfoNCE against the formula, the queue update, and an exact resume
(queue, write position and key encoder included) through the real trainer."""

import math

import pytest
import torch

from conftest import make_feature_data_dir
from test_trainer import train_until_killed
from wespeaker_like.bin import train
from wespeaker_like.objectives import build_objective
from wespeaker_like.losses.contrastive import queue_infonce

MODEL = {"name": "ecapa_tdnn", "feat_dim": 20, "embed_dim": 16, "channels": [16, 16, 16, 16, 48],
         "se_channels": 8, "attention_channels": 8}
CONFIG = """\
seed: 11
dataset: {num_workers: 0, sampler: {name: random, batch_size: 8}}
model: {name: ecapa_tdnn, feat_dim: 20, embed_dim: 16, channels: [16, 16, 16, 16, 48], se_channels: 8, attention_channels: 8}
objective: {name: moco, num_frames: 30, queue_size: 20, momentum: 0.99, temperature: 0.07,
            views: {augment: null, position: independent}}
optim: {name: sgd, lr: 0.05, momentum: 0.9}
scheduler: {name: warmup_exponential, final_lr: 0.01, warmup_epochs: 0.5}
trainer: {epochs: 3, log_every: 1, checkpoint_every_steps: 2, keep_checkpoints: 2, average_last: 1, num_threads: 1,
          device: cpu}
"""


class RecordingUpdater:
    def __init__(self):
        self.losses = []

    def step(self, group, loss):
        assert group == "main"
        self.losses.append(loss)

    def is_active(self, group):
        return True


def test_queue_infonce_follows_the_formula():
    gen = torch.Generator().manual_seed(0)
    q = torch.nn.functional.normalize(torch.randn(5, 8, generator=gen, dtype=torch.float64), dim=1)
    k = torch.nn.functional.normalize(torch.randn(5, 8, generator=gen, dtype=torch.float64), dim=1)
    queue = torch.nn.functional.normalize(torch.randn(8, 7, generator=gen, dtype=torch.float64), dim=0)
    t = 0.07
    expected = 0.0
    for i in range(5):
        pos = math.exp(float(q[i] @ k[i]) / t)
        neg = sum(math.exp(float(q[i] @ queue[:, j]) / t) for j in range(7))
        expected += -math.log(pos / (pos + neg)) / 5
    assert queue_infonce(q, k, queue, t).item() == pytest.approx(expected, rel=1e-10)


def test_step_enqueues_the_keys_and_wraps_around():
    torch.manual_seed(0)
    objective = build_objective({"name": "moco", "num_frames": 30, "queue_size": 12}, MODEL, {"spk": 3})
    objective.eval()  # BatchNorm with running statistics: the key encoder's output is reproducible
    assert objective.views[1].position == "same" and objective.views[1].augment == "copy"
    for p in objective.key.parameters():
        assert not p.requires_grad
    before = objective.queue.clone()
    updater = RecordingUpdater()
    views = [torch.randn(8, 30, 20), torch.randn(8, 30, 20)]
    objective.training_step({"views": views, "labels": {"spk": torch.zeros(8, dtype=torch.long)}}, updater)
    keys = objective.key(views[1])[0]
    assert torch.allclose(objective.queue[:, :8], keys.T, atol=1e-6)
    assert torch.equal(objective.queue[:, 8:], before[:, 8:])
    assert int(objective.queue_position) == 8
    queries = objective.query(views[0])[0]
    assert updater.losses[0].item() == pytest.approx(queue_infonce(queries, keys, before, 0.07).item(), rel=1e-5)
    objective.training_step({"views": views, "labels": {"spk": torch.zeros(8, dtype=torch.long)}}, updater)
    assert int(objective.queue_position) == 4  # 16 keys in a queue of 12
    assert torch.allclose(objective.queue[:, 8:], keys[:4].T, atol=1e-6)
    assert torch.allclose(objective.queue[:, :4], keys[4:].T, atol=1e-6)


def test_mi_term_follows_the_estimator_on_both_views():
    from wespeaker_like.losses.mutual_information import gaussian_infonce, injected_noise

    torch.manual_seed(1)
    mi = {"weight": 0.1, "rho": 0.05, "sigma": 0.1, "critic_hidden": 8}
    objective = build_objective({"name": "moco", "num_frames": 30, "queue_size": 12, "mi": mi}, MODEL, {"spk": 3})
    objective.eval()
    objective.on_progress(0.25)
    updater = RecordingUpdater()
    views = [torch.randn(6, 30, 20), torch.randn(6, 30, 20)]
    values = objective.training_step({"views": views, "labels": {"spk": torch.zeros(6, dtype=torch.long)}}, updater)
    embedding, low_level = objective.query.backbone.forward_with_frontend(torch.cat(views))
    noisy = embedding + injected_noise(objective.noise_seed, 0.25, 0.1, 2, 6, 16, embedding)
    means = objective.mi_estimator.critic_mean(low_level)
    expected = -0.1 * sum(gaussian_infonce(noisy[v * 6:(v + 1) * 6], means[v * 6:(v + 1) * 6], 0.05)
                          for v in range(2))
    assert values["mi"] == pytest.approx(expected.item(), rel=1e-5)
    assert values["loss"] == pytest.approx(values["moco"] + values["mi"], rel=1e-6)
    updater.losses[0].backward()
    assert all(p.grad is not None for p in objective.mi_estimator.parameters())


@pytest.mark.parametrize("mi", [False, True], ids=["moco", "moco_mi"])
def test_kill_and_resume_is_bit_identical(tmp_path, monkeypatch, mi):
    data = make_feature_data_dir(tmp_path / "data")
    config = tmp_path / "moco.yaml"
    with_mi = "views: {augment: null, position: independent}, mi: {weight: 0.1, critic_hidden: 8}}"
    config.write_text(CONFIG.replace("views: {augment: null, position: independent}}", with_mi) if mi else CONFIG)

    def run(exp):
        return train.main(["--config", str(config), "--train_data", str(data), "--exp_dir", str(exp)])

    assert run(tmp_path / "straight") == 0
    train_until_killed(lambda: run(tmp_path / "resumed"), monkeypatch)
    assert run(tmp_path / "resumed") == 0
    assert "resumed from" in (tmp_path / "resumed" / "train.log").read_text()
    straight, resumed = (torch.load(tmp_path / exp / "checkpoints" / "epoch_003.pt", weights_only=True)["objective"]
                         for exp in ("straight", "resumed"))
    assert straight.keys() == resumed.keys() and {"queue", "queue_position"} <= set(straight)
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key
    assert int(straight["queue_position"]) == (3 * 3 * 8) % 20  # 24 utterances, batch 8, 3 epochs
    assert not torch.equal(straight["key.projection.weight"], straight["query.projection.weight"])  # EMA lags
