"""Paper 001 (issue 13): MINE disentanglement with identity-change training. The decoder's layout,
each loss against its formula, the MINE bound against the reference fixture, the parameters each
Phase II step may move, and the phase switch through the trainer with an exact resume."""

import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import PARITY_DIR
from test_dataset import make_audio_data_dir
from test_trainer import train_until_killed
from wespeaker_like.bin import train
from wespeaker_like.features.frontends import build_frontend
from wespeaker_like.losses.margin import uniform_cross_entropy
from wespeaker_like.losses.mutual_information import donsker_varadhan
from wespeaker_like.models.spectrogram_decoder import SpectrogramDecoder
from wespeaker_like.models.statistics_network import StatisticsNetwork
from wespeaker_like.objectives import build_objective
from wespeaker_like.objectives.mine_ic import ADAPTATION, INTRA_CLASS

MODEL = {"name": "thin_resnet34", "feat_dim": 40, "embed_dim": 16, "widths": [8, 8, 8, 8], "num_blocks": [1, 1, 1, 1],
         "pooling": "TAP", "freq_reduce": "mean", "se_reduction": 0}
DECODER = {"num_mel_bins": 16, "fc_dims": [16, 16], "channels": [8, 8, 8, 8, 8, 4, 4, 4, 4, 1]}


def mine_ic(**options):
    torch.manual_seed(0)
    spec = {"name": "mine_ic", "num_frames": 30, "statistics_hidden": 8, "decoder": DECODER, **options}
    return build_objective(spec, MODEL, {"spk": 4})


def batch(seed=0):
    gen = torch.Generator().manual_seed(seed)
    views = [torch.randn(8, 30, 40, generator=gen), torch.randn(8, 30, 40, generator=gen),
             torch.randn(8, 30, 16, generator=gen), torch.randn(8, 30, 16, generator=gen)]
    return {"views": views, "labels": {"spk": torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])}}


class Recorder:
    """Adam over every parameter, the objective's pre-step hook, and the parameter names each step moved;
    ``train=False`` only records the losses."""

    def __init__(self, objective, train=True):
        self.objective, self.train = objective, train
        self.optimizer = torch.optim.Adam(objective.parameters(), lr=1e-2)
        self.moved, self.losses = [], []

    def is_active(self, group):
        return True

    def step(self, group, loss):
        self.losses.append(loss.item())
        if not self.train:
            return
        before = {n: p.detach().clone() for n, p in self.objective.named_parameters()}
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.objective.before_optimizer_step(group, 0.0)
        self.optimizer.step()
        self.moved.append({n for n, p in self.objective.named_parameters() if not torch.equal(before[n], p)})


def names(objective, *modules):
    return {n for n, _ in objective.named_parameters() if n.split(".")[0] in modules}


def test_decoder_output_is_the_shape_of_the_logmel_target_of_300_frames():
    logmel = build_frontend({"type": "logmel", "num_mel_bins": 64, "n_fft": 512, "norm": "cmvn"})
    stft = build_frontend({"type": "stft", "n_fft": 512, "norm": "cmvn"})
    crop = torch.randn(stft.num_samples(300))
    target, spectrum = logmel(crop), stft(crop)
    assert target.shape == (300, 64) and spectrum.shape == (300, 257)
    decoder = SpectrogramDecoder(1024).eval()
    assert decoder(torch.randn(2, 1024)).shape == (2, *target.shape)
    assert decoder.first_shape == (512, 4, 19)  # 4 x 19 -> 4 up-samplings -> 64 x 304, cropped to 300 frames
    convs = [m for m in decoder.deconv if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [m.stride[0] for m in convs] == [1, 2, 1, 2, 1, 2, 1, 2, 1]
    assert [m.out_channels for m in convs] == [256, 256, 128, 128, 64, 64, 32, 32, 1]
    assert sum(isinstance(m, torch.nn.Linear) for m in decoder.fc) == 3
    with pytest.raises(ValueError, match="upsample_layers"):
        SpectrogramDecoder(8, channels=[4, 1], upsample_layers=[1])


def test_donsker_varadhan_bound_matches_the_mine_fixture():
    fixture = np.load(PARITY_DIR / "mine.npz")
    joint = torch.tensor(fixture["T0"], requires_grad=True)
    marginal = torch.tensor(fixture["T1"], requires_grad=True)
    value = donsker_varadhan(joint, marginal)
    value.backward()
    np.testing.assert_allclose(value.item(), fixture["value"], rtol=1e-12)
    np.testing.assert_allclose(joint.grad.numpy(), fixture["grad_T0"], rtol=1e-12)
    np.testing.assert_allclose(marginal.grad.numpy(), fixture["grad_T1"], rtol=1e-12)
    # the same bound recomputed from the formula, on marginal scores large enough to need the log-sum-exp
    scores = torch.tensor([[800.0], [790.0]])
    assert donsker_varadhan(torch.zeros(2), scores).item() == pytest.approx(-(800 + math.log((1 + math.exp(-10)) / 2)))


def test_statistics_bound_squashes_the_scores_and_caps_the_mine_bound():
    torch.manual_seed(0)
    free = StatisticsNetwork(3, 3, hidden=8)
    bounded = StatisticsNetwork(3, 3, hidden=8, bound=2.0)
    bounded.load_state_dict(free.state_dict())
    u, v = 50 * torch.randn(16, 3), 50 * torch.randn(16, 3)
    raw = free(u, v)
    assert torch.allclose(bounded(u, v), 2.0 * torch.tanh(raw / 2.0)) and bounded(u, v).abs().max() <= 2.0
    assert donsker_varadhan(bounded(u, v), bounded(v, u)).item() <= 4.0


def test_uniform_cross_entropy_is_the_mean_negative_log_probability():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.5]])
    probabilities = torch.softmax(logits, dim=1)
    expected = -(torch.log(probabilities).sum(1) / 3).mean()
    assert uniform_cross_entropy(logits).item() == pytest.approx(expected.item(), rel=1e-6)
    assert uniform_cross_entropy(logits[1:]).item() == pytest.approx(math.log(3), rel=1e-6)  # uniform: log C


def expected_terms(objective, batch_, symmetric=True):
    """Every term from its formula, on the objective's own modules (train mode: batch statistics)."""
    a, a2, mel_a, mel_a2 = batch_["views"]
    speakers = batch_["labels"]["spk"].repeat(2)
    with torch.no_grad():
        crops, targets = torch.cat([a, a2]), torch.cat([mel_a, mel_a2])
        f_spk, f_res = objective.speaker_encoder(crops), objective.residual_encoder(crops)
        decoder = objective.decoder
        recon = ((decoder(torch.cat([f_spk, f_res], 1)) - targets) ** 2).mean()
        linear = objective.speaker_head.linear
        log_p = torch.log_softmax(f_spk @ linear.weight.T + linear.bias, dim=1)
        speaker = -log_p[torch.arange(16), speakers].mean()
        adv = -(torch.log_softmax(f_res @ linear.weight.T + linear.bias, dim=1).sum(1) / 4).mean()
        t = objective.statistics

        def dv(joint, marginal):
            return joint.mean() - torch.log(torch.exp(marginal).mean())

        s_a, s_a2, r_a, r_a2 = f_spk[:8], f_spk[8:], f_res[:8], f_res[8:]
        mi = -(dv(t(s_a, s_a2), t(s_a, r_a)) + dv(t(s_a2, s_a), t(s_a2, r_a2 if symmetric else r_a)))
        mean_spk = torch.stack([(s_a[i] + s_a[i ^ 1]) / 2 for i in range(8)])
        swapped = decoder(torch.cat([mean_spk, r_a], 1))
        per_pair = [((swapped[i] - mel_a[i]) ** 2).mean() + ((swapped[i + 1] - mel_a[i + 1]) ** 2).mean()
                    for i in range(0, 8, 2)]
        ic = torch.stack(per_pair).mean()
    return {"recon": recon, "speaker": speaker, "adv": adv, "mi": mi, "ic": ic}


@pytest.mark.parametrize("symmetric", [True, False])
def test_each_loss_is_its_formula_and_the_loss_their_weighted_sum(symmetric):
    weights = {"speaker": 1.0, "mi": 0.3, "adv": 0.2, "recon": 0.1, "ic": 0.7}
    objective = mine_ic(use_adv=True, mine_symmetric_res=symmetric, weights=weights)
    expected = expected_terms(objective, batch(), symmetric)
    objective.on_progress(0.5)
    phase1 = objective.training_step(batch(), Recorder(objective, train=False))
    for term in ("recon", "speaker", "adv", "mi"):
        assert phase1[term] == pytest.approx(expected[term].item(), rel=1e-5, abs=1e-6), term
    assert phase1["loss"] == pytest.approx(sum(weights[k] * expected[k].item() for k in ("recon", "speaker", "adv", "mi")),
                                           rel=1e-5)
    objective.on_progress(30.0)
    phase2 = objective.training_step(batch(), Recorder(objective, train=False))
    assert phase2["intra_class_ic"] == pytest.approx(expected["ic"].item(), rel=1e-5)
    assert phase2["intra_class_loss"] == pytest.approx(
        0.7 * expected["ic"].item() + 0.3 * expected["mi"].item() + 0.2 * expected["adv"].item(), rel=1e-5)
    assert phase2["adaptation_loss"] == pytest.approx(
        0.1 * expected["recon"].item() + expected["speaker"].item() + 0.3 * expected["mi"].item(), rel=1e-5)


def test_adversarial_term_trains_the_residual_encoder_only():
    objective = mine_ic(use_adv=True, use_mi=False)
    f_res = objective.residual_encoder(batch()["views"][0])
    objective.adversarial(f_res).backward()
    assert objective.speaker_head.linear.weight.grad is None
    assert objective.residual_encoder.seg_1.weight.grad.abs().sum() > 0


def test_phase_one_step_trains_everything():
    objective = mine_ic(use_adv=True)
    recorder = Recorder(objective)
    objective.on_progress(0.0)
    objective.training_step(batch(), recorder)
    assert recorder.moved == [{n for n, _ in objective.named_parameters()}]


@pytest.mark.parametrize("keep", [True, False])
def test_each_phase_two_step_changes_only_its_own_parameters(keep):
    objective = mine_ic(use_adv=True, phase1_epochs=2, phase2_alternation=2, phase2_speaker_loss=keep,
                        phase2_disentanglement=keep)
    objective.on_progress(1.99)
    assert objective.phase == "phase1"
    objective.on_progress(2.0)
    recorder = Recorder(objective)
    objective.training_step(batch(), recorder)
    extra = {"statistics"} if keep else set()
    intra_class = names(objective, "decoder", "residual_encoder", *extra)
    adaptation = names(objective, "decoder", "speaker_encoder", *extra, *({"speaker_head"} if keep else set()))
    assert recorder.moved == [intra_class, adaptation] * 2
    assert set(objective.trainable_modules(INTRA_CLASS)) == {"decoder", "residual_encoder", *extra}
    assert set(objective.trainable_modules(ADAPTATION)) == {n.split(".")[0] for n in adaptation}


def test_rows_without_identity_change_stay_in_phase_one_and_ic_needs_speaker_pairs():
    objective = mine_ic(use_ic=False, phase1_epochs=1)
    objective.on_progress(5.0)
    recorder = Recorder(objective)
    values = objective.training_step(batch(), recorder)
    assert values["phase"] == 1.0 and len(recorder.moved) == 1
    bad = batch()
    bad["labels"]["spk"] = torch.tensor([0, 1, 0, 1, 2, 3, 2, 3])
    with pytest.raises(ValueError, match="utts_per_speaker: 2"):
        mine_ic().training_step(bad, Recorder(mine_ic()))
    with pytest.raises(ValueError, match="unknown key 'decoder.depth'"):
        mine_ic(decoder={"depth": 3})
    with pytest.raises(ValueError, match="num_mel_bins"):
        wrong = batch()
        wrong["views"][2] = wrong["views"][2][:, :, :8]
        mine_ic().training_step(wrong, Recorder(mine_ic()))


MINE_IC_CONFIG = """\
seed: 11
features: {type: stft, n_fft: 512, norm: cmvn}
dataset:
  num_workers: 0
  source: audio
  frontends: {logmel: {type: logmel, n_fft: 512, num_mel_bins: 16, norm: cmvn}}
  sampler: {name: speaker_balanced, speakers_per_batch: 2, utts_per_speaker: 2}
model: {name: thin_resnet34, feat_dim: 257, embed_dim: 16, widths: [8, 8, 8, 8], num_blocks: [1, 1, 1, 1],
        pooling: TAP, freq_reduce: mean, se_reduction: 0}
objective: {name: mine_ic, num_frames: 30, use_adv: true, statistics_hidden: 8, phase1_epochs: 1,
            decoder: {num_mel_bins: 16, fc_dims: [16, 16], channels: [8, 8, 8, 8, 8, 4, 4, 4, 4, 1]}}
optim: {name: adam, lr: 1.0e-3}
scheduler: {name: step, step_epochs: 1, gamma: 0.5}
trainer: {epochs: 3, log_every: 1, checkpoint_every_steps: 2, keep_checkpoints: 2, average_last: 1,
          num_threads: 1, device: cpu}
"""


def logged_phases(exp):
    """{(epoch, step): phase} of every batch line of train.log (a resumed run logs the steps after the kill again)."""
    lines = re.findall(r"epoch (\d+) batch \S+ step (\d+) lr \S+ phase (\S+)", (exp / "train.log").read_text())
    return {(int(epoch), int(step)): float(phase) for epoch, step, phase in lines}


def test_phase_switch_at_the_configured_epoch_survives_a_resume(tmp_path, monkeypatch):
    data = make_audio_data_dir(tmp_path / "data")
    config = tmp_path / "mine_ic.yaml"
    config.write_text(MINE_IC_CONFIG)

    def run(exp):
        return train.main(["--config", str(config), "--train_data", str(data), "--exp_dir", str(exp)])

    assert run(tmp_path / "straight") == 0
    train_until_killed(lambda: run(tmp_path / "resumed"), monkeypatch, at="step_0000004.pt")  # epoch 2: Phase II
    assert run(tmp_path / "resumed") == 0
    assert "resumed from" in (tmp_path / "resumed" / "train.log").read_text()
    for exp in ("straight", "resumed"):
        phases = logged_phases(tmp_path / exp)
        assert {epoch for epoch, _ in phases} == {1, 2, 3}
        assert all(phase == (1.0 if epoch == 1 else 2.0) for (epoch, _), phase in phases.items()), phases
    straight, resumed = (torch.load(tmp_path / e / "checkpoints" / "epoch_003.pt", weights_only=True)["objective"]
                         for e in ("straight", "resumed"))
    assert straight.keys() == resumed.keys() and any(k.startswith("statistics.") for k in straight)
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key
