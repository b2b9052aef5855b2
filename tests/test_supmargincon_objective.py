"""The ``supmargincon`` objective (paper 004): switches, terms against their formulas, k-per-speaker batches.

The trainer contract (kill/resume, 2 ranks = 1 rank) runs in ``test_objective_kit.py`` (its
``supmargincon`` kit config, every term on).
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import objective_kit  # noqa: F401  (registers kit_mlp)
from test_contrastive_losses import naive_sup_margin_con
from wespeaker_like.dataset.samplers import SpeakerBalancedBatchSampler
from wespeaker_like.losses import gaussian_infonce
from wespeaker_like.objectives import build_objective

MODEL = {"name": "kit_mlp", "feat_dim": 6, "hidden": 10, "embed_dim": 5}
OFF = {"loss": None, "contrastive": None, "mi": None}


def objective(**options):
    torch.manual_seed(0)
    return build_objective({"name": "supmargincon", "num_frames": 12, **options}, MODEL, {"spk": 4})


def batch_of(speakers, seed=1):
    gen = torch.Generator().manual_seed(seed)
    size = len(speakers)
    return {"views": [torch.randn(size, 12, 6, generator=gen, dtype=torch.float64) for _ in range(2)],
            "labels": {"spk": torch.tensor(speakers)}}


def embeddings(obj, batch):
    with torch.no_grad():
        return obj.backbone.forward_with_frontend(torch.cat(batch["views"]))


@pytest.mark.parametrize("row, options, terms", [
    ("aam", {**OFF, "loss": {"name": "aam"}}, {"classifier"}),
    ("aam_mi", {**OFF, "loss": {"name": "aam"}, "mi": {"weight": 0.1}}, {"classifier", "mi"}),
    ("aam_supcon", {**OFF, "loss": {"name": "aam"}, "contrastive": {"name": "supcon"}}, {"classifier", "contrastive"}),
    ("ours", {}, {"classifier", "contrastive", "mi"}),
    ("simclr", {**OFF, "contrastive": {"name": "supcon", "positives": "instance"}}, {"contrastive"}),
    ("supcon_mi", {**OFF, "contrastive": {"name": "supcon"}, "mi": {"weight": 0.1}}, {"contrastive", "mi"}),
])
def test_each_table_row_switches_its_terms(row, options, terms):
    obj = objective(**options).double()
    result = obj.losses(batch_of([0, 0, 1, 2, 3]))
    assert set(result["terms"]) == terms, row
    assert (obj.mi_estimator is not None) == ("mi" in terms) and (obj.projection is not None) == ("contrastive" in terms)
    assert {"align", "uniform"} <= set(result["stats"])
    if "contrastive" in terms:
        assert obj.contrastive["margin"] == (0.2 if row == "ours" else 0.0)


def test_views_are_the_original_and_the_augmented_same_crop():
    original, augmented = objective(views={"augment": "noisy"}).views
    assert (original.num_frames, original.augment, original.position) == (12, None, "independent")
    assert (augmented.num_frames, augmented.augment, augmented.position, augmented.relative_to) == (12, "noisy", "same", 0)
    assert objective().views[1].augment == "copy"


def test_nothing_to_train_and_unknown_options_are_errors():
    with pytest.raises(ValueError, match="nothing trains"):
        objective(**OFF)
    with pytest.raises(ValueError, match="unknown key .contrastive.temprature."):
        objective(contrastive={"name": "supmargincon", "temprature": 0.1})
    with pytest.raises(ValueError, match="positives"):
        objective(contrastive={"positives": "utterance"})


@pytest.mark.parametrize("positives", ["speaker", "instance"])
def test_k_per_speaker_batch_extra_utterances_are_positives_not_negatives(positives):
    """A speaker-balanced batch (2 utterances x 3 speakers): with ``speaker`` positives every other
    view of the speaker is a positive (3 per anchor), with ``instance`` only the other view."""
    sampler = SpeakerBalancedBatchSampler(["a", "a", "b", "b", "c", "c", "d"], speakers_per_batch=3,
                                          utts_per_speaker=2, seed=0)
    indices = [i for i, _ in next(iter(sampler))]
    speakers = [[0, 0, 1, 1, 2, 2, 3][i] for i in indices]
    assert sorted(speakers) == [0, 0, 1, 1, 2, 2]
    contrastive = {"name": "supmargincon", "temperature": 0.1, "margin": 0.2, "margin_type": "cos",
                   "denominator": "this_pos+negatives", "positives": positives}
    obj = objective(**{**OFF, "contrastive": contrastive}, projection="identity").double()
    batch = batch_of(speakers)
    z = F.normalize(embeddings(obj, batch)[0], dim=1).numpy()
    labels = np.tile(speakers, 2) if positives == "speaker" else np.tile(np.arange(6), 2)
    want = naive_sup_margin_con(z, labels, 0.1, 0.2, "cos", "this_pos+negatives")
    got = obj.losses(batch)["terms"]["contrastive"].item()
    assert got == pytest.approx(want, rel=1e-9)
    other = naive_sup_margin_con(z, np.tile(np.arange(6), 2) if positives == "speaker" else np.tile(speakers, 2),
                                 0.1, 0.2, "cos", "this_pos+negatives")
    assert abs(got - other) > 1e-3  # the positive sets really differ


def test_mi_term_is_minus_weight_times_both_views_estimates():
    mi = {"weight": 0.5, "rho": 0.2, "sigma": 0.0, "positive_term": True}
    obj = objective(**{**OFF, "loss": {"name": "aam"}, "mi": mi}).double()
    batch = batch_of([0, 1, 2, 3])
    emb, low = embeddings(obj, batch)
    with torch.no_grad():
        want = -0.5 * sum(gaussian_infonce(e, obj.mi_estimator.critic_mean(h), 0.2)
                          for e, h in zip(emb.chunk(2), low.chunk(2)))
        assert obj.losses(batch)["terms"]["mi"].item() == pytest.approx(want.item(), rel=1e-9)


def test_noise_reaches_every_loss_only_with_noise_embedding():
    batch = batch_of([0, 1, 2, 3])
    values = {}
    for noisy in (False, True):
        obj = objective(mi={"weight": 0.1, "sigma": 0.5, "noise_embedding": noisy}).double()
        obj.on_progress(0.25)
        values[noisy] = obj.losses(batch)["terms"]
        obj.on_progress(0.25)
        assert obj.losses(batch)["terms"]["classifier"] == values[noisy]["classifier"]  # noise fixed per step
    clean = objective(mi=None).double().losses(batch)["terms"]
    assert values[False]["classifier"] == clean["classifier"] and values[False]["contrastive"] == clean["contrastive"]
    assert values[True]["classifier"] != clean["classifier"]
    assert values[True]["mi"] == values[False]["mi"]  # the MI term always uses z = e + σε


def test_alignment_and_uniformity_of_the_two_views():
    obj = objective().double()
    batch = batch_of([0, 1, 2, 3])
    emb = F.normalize(embeddings(obj, batch)[0], dim=1)
    stats = obj.losses(batch)["stats"]
    first, second = emb.chunk(2)
    assert stats["align"] == pytest.approx(((first - second) ** 2).sum(1).mean().item(), rel=1e-9)
    pairs = [math.exp(-2 * ((emb[i] - emb[j]) ** 2).sum().item()) for i in range(8) for j in range(i + 1, 8)]
    assert stats["uniform"] == pytest.approx(math.log(sum(pairs) / len(pairs)), rel=1e-9)


def test_margin_schedule_ramps_the_classifier_margin():
    obj = objective(loss={"name": "aam", "margin": 0.3}, margin_schedule={"start_epoch": 0, "end_epoch": 2,
                                                                            "kind": "linear"})
    obj.on_progress(1.0)
    assert obj.head.margin == pytest.approx(0.15)
    obj.on_progress(3.0)
    assert obj.head.margin == pytest.approx(0.3)


def test_builds_on_the_meta_device():
    """Config tests build every row's objective without allocating (``torch.device('meta')``)."""
    with torch.device("meta"):
        obj = build_objective({"name": "supmargincon"}, {"name": "ecapa_tdnn", "feat_dim": 80, "embed_dim": 192,
                                                         "channels": [1024] * 4 + [3072]}, {"spk": 5994})
    assert obj.head.weight.is_meta and obj.mi_estimator.critic_mean[0].in_features == 1024


MINI_ROWS = {  # config: (seed, contrastive name, contrastive margin, MI on)
    "aam": (42, None, None, False),
    "aam_seed2": (43, None, None, False),
    "aam_supcon": (42, "supcon", 0.0, False),
    "aam_supmargincon": (42, "supmargincon", 0.2, False),
    "aam_supmargincon_mi": (42, "supmargincon", 0.2, True),
}


def test_mini_proof_configs_share_one_budget_and_switch_their_rows():
    from conftest import ROOT
    from wespeaker_like.training.schema import load_experiment_config

    conf = ROOT / "egs" / "speechocean762" / "supmargincon" / "conf"
    assert sorted(p.stem for p in conf.glob("*.yaml")) == sorted(["base", *MINI_ROWS])
    budget = None
    for row, (seed, contrastive, margin, mi) in MINI_ROWS.items():
        cfg = load_experiment_config(conf / f"{row}.yaml")
        with torch.device("meta"):
            obj = build_objective(cfg["objective"], cfg["model"], {"spk": 125})
        assert cfg["seed"] == seed and obj.head.margin == 0.2 and (obj.mi is not None) == mi, row
        assert (obj.contrastive or {}).get("name") == contrastive and (obj.contrastive or {}).get("margin") == margin
        assert [v.augment for v in obj.views] == [None, "copy"] and cfg["dataset"]["originals_only"]
        shared = (cfg["model"], cfg["dataset"], cfg["optim"], cfg["scheduler"], cfg["trainer"],
                  cfg["objective"]["num_frames"], cfg["objective"]["loss"])
        assert budget is None or shared == budget, row
        budget = shared
    assert budget[1]["sampler"]["batch_size"] == 64 and budget[5] == 150
    assert 2500 // 64 * budget[4]["epochs"] == 234  # about 230 steps of the 2,500 clean utterances
