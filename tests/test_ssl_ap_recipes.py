"""The paper-002 recipes: every Table 2 row config (and the VAE's) loads and has its row's switches
and number; egs/voxceleb/ssl_ap stages 0-7 (VAE stage included) on the miniature VoxCeleb; the
speechocean762 mini configs share one budget and seed."""

import json

import pytest

from conftest import ROOT, run_script
from test_sdpn_recipe import corpus  # noqa: F401  (the miniature VoxCeleb fixture)
from wespeaker_like.objectives import build_objective
from wespeaker_like.training.schema import load_experiment_config

VOX = ROOT / "egs" / "voxceleb" / "ssl_ap"
MINI = ROOT / "egs" / "speechocean762" / "ssl_ap"

# (config, augmentation, objective mode, alpha, EER %) of Table 2 (METHODS.md §3.6)
ROWS = [
    ("waveaug_ap.yaml", "waveaug", "ap", None, 11.6384),
    ("waveaug_iap_a0.5.yaml", "waveaug", "iap", 0.5, 11.9618),
    ("waveaug_iap_a1.yaml", "waveaug", "iap", 1.0, 11.2407),
    ("waveaug_iap_a32.yaml", "waveaug", "iap", 32.0, 11.8240),
    ("waveaug_lap_a0.5.yaml", "waveaug", "lap", 0.5, 11.8876),
    ("waveaug_lap_a1.yaml", "waveaug", "lap", 1.0, 10.7741),
    ("waveaug_lap_a32.yaml", "waveaug", "lap", 32.0, 11.7179),
    ("waveaug_cepsaug_ap.yaml", "waveaug+cepsaug", "ap", None, 11.6013),
    ("waveaug_cepsaug_iap_a0.5.yaml", "waveaug+cepsaug", "iap", 0.5, 10.6257),
    ("waveaug_cepsaug_iap_a1.yaml", "waveaug+cepsaug", "iap", 1.0, 10.9279),
    ("waveaug_cepsaug_iap_a32.yaml", "waveaug+cepsaug", "iap", 32.0, 12.1633),
    ("waveaug_cepsaug_lap_a0.5.yaml", "waveaug+cepsaug", "lap", 0.5, 10.4931),
    ("waveaug_cepsaug_lap_a1.yaml", "waveaug+cepsaug", "lap", 1.0, 10.5408),
    ("waveaug_cepsaug_lap_a32.yaml", "waveaug+cepsaug", "lap", 32.0, 11.8399),
]
LITERATURE = [("literature_fast_resnet34_ap_waveaug.yaml", "voxceleb_unsupervised", 11.60),
              ("literature_fast_resnet34_ap_noaug.yaml", None, 25.37)]
VAE_SPEC = {"name": "conv_vae", "feat_dim": 40, "num_frames": 180, "latent_dim": 64, "out_act": "linear"}
MODE_NAMES = {"ap": "AP", "iap": "i-AP", "lap": "l-AP"}


def test_every_table_row_has_one_config():
    assert len(ROWS) == 14 and len({(r[1], r[2], r[3]) for r in ROWS}) == 14
    expected = ["base.yaml", "vae.yaml"] + [r[0] for r in ROWS] + [r[0] for r in LITERATURE]
    assert sorted(p.name for p in (VOX / "conf").glob("*.yaml")) == sorted(expected)


@pytest.mark.parametrize("name,augmentation,mode,alpha,eer", ROWS, ids=[r[0] for r in ROWS])
def test_row_config_matches_its_row(name, augmentation, mode, alpha, eer):
    cfg = load_experiment_config(VOX / "conf" / name)
    objective = cfg["objective"]
    assert objective["name"] == "ssl_ap" and objective["mode"] == mode
    if alpha is not None:
        assert objective["alpha"] == alpha
    assert objective["augment"] == "voxceleb_unsupervised"  # waveaug in every row
    assert bool(objective["ceps_aug"]) == (augmentation == "waveaug+cepsaug")
    assert objective["lam_per_sample"] and not objective["lam_max"] and not objective["keep_plain_ap"]
    if mode == "lap":
        assert objective["vae"] == VAE_SPEC and cfg["init_from"]["key_map"] == {"vae.": ""}
    else:
        assert "vae" not in objective and not cfg["init_from"]["path"]
    row = f"{augmentation}, {MODE_NAMES[mode]}" + (f", alpha={alpha:g}" if alpha is not None else "")
    assert cfg["paper"]["table"] == "Table 2" and cfg["paper"]["row"] == row
    assert cfg["paper"]["numbers"] == {"vox1_O": {"eer": eer, "min_dcf": None}}
    # the shared paper settings (METHODS.md §3.1-3.5)
    assert cfg["features"]["type"] == "mfcc" and cfg["features"]["num_ceps"] == 40
    assert cfg["model"] == {"name": "ecapa_tdnn", "feat_dim": 40, "embed_dim": 192,
                            "channels": [512, 512, 512, 512, 1536]}
    assert objective["num_frames"] == 180 and objective["loss"] == {"init_w": 10.0, "init_b": -5.0}
    assert cfg["optim"] == {"name": "adam", "lr": 1.0e-3}
    assert cfg["scheduler"] == {"name": "step", "step_epochs": 5, "gamma": 0.95}
    assert cfg["trainer"]["epochs"] == 150 and cfg["dataset"]["sampler"]["batch_size"] * 4 == 200
    built = build_objective(objective, cfg["model"], {})
    assert built.label_names == () and [v.num_frames for v in built.views] == [180, 180]
    assert built.views[1].position == "disjoint"


@pytest.mark.parametrize("name,augment,eer", LITERATURE, ids=[r[0] for r in LITERATURE])
def test_literature_baseline_configs(name, augment, eer):
    cfg = load_experiment_config(VOX / "conf" / name)
    assert cfg["model"] == {"name": "fast_resnet34", "feat_dim": 40, "embed_dim": 512}
    assert cfg["features"]["type"] == "fbank" and cfg["features"]["num_mel_bins"] == 40
    assert cfg["objective"]["mode"] == "ap" and cfg["objective"]["augment"] == augment
    assert cfg["paper"]["numbers"]["vox1_O"]["eer"] == eer


def test_vae_config():
    cfg = load_experiment_config(VOX / "conf" / "vae.yaml")
    assert cfg["model"] == VAE_SPEC and cfg["objective"] == {"name": "vae", "num_frames": 180, "kl_tolerance": None}
    assert cfg["optim"] == {"name": "adam", "lr": 1.0e-3} and cfg["trainer"]["epochs"] == 100
    assert cfg["dataset"]["augment"] == {}  # clean segments
    built = build_objective(cfg["objective"], cfg["model"], {})
    assert built.embedding_model().latent_dim == 64


@pytest.mark.parametrize("name,mode", [("ap.yaml", "ap"), ("iap_a0.5.yaml", "iap"), ("lap_a0.5.yaml", "lap")])
def test_mini_configs_share_budget_and_seed(name, mode):
    cfg = load_experiment_config(MINI / "conf" / name)
    assert cfg["objective"]["mode"] == mode and cfg["objective"]["ceps_aug"] is True
    assert cfg["objective"]["augment"] == "voxceleb_unsupervised"
    assert cfg["objective"].get("alpha", 0.5) == 0.5
    base = load_experiment_config(MINI / "conf" / "base.yaml")
    for section in ("model", "optim", "scheduler", "trainer", "dataset", "features", "seed"):
        assert cfg[section] == base[section], section
    vae = load_experiment_config(MINI / "conf" / "vae.yaml")
    if mode == "lap":
        assert cfg["objective"]["vae"] == dict(vae["model"])


TINY_ROW = ["model.channels=[8,8,8,8,24]", "model.embed_dim=16", "model.se_channels=4", "model.attention_channels=4",
            "objective.num_frames=40", "objective.vae.num_frames=40", "objective.vae.latent_dim=8",
            "dataset.sampler.batch_size=3", "dataset.num_workers=0", "trainer.epochs=2",
            "trainer.checkpoint_every_steps=0", "trainer.log_every=1", "trainer.num_threads=1"]
TINY_VAE = ["model.num_frames=40", "model.latent_dim=8", "objective.num_frames=40", "dataset.sampler.batch_size=3",
            "dataset.num_workers=0", "trainer.epochs=2", "trainer.checkpoint_every_steps=0", "trainer.log_every=1",
            "trainer.num_threads=1"]


def test_voxceleb_ssl_ap_stages_0_to_7_with_the_vae_stage(corpus, tmp_path):
    exp = tmp_path / "exp" / "lap"
    cmd = ["bash", str(VOX / "run.sh"), "--corpus_dir", str(corpus), "--data", str(tmp_path / "data"),
           "--config", str(VOX / "conf" / "waveaug_cepsaug_lap_a0.5.yaml"), "--exp", str(exp), "--num_gpus", "0",
           "--nj", "1", "--extract_device", "cpu", "--results_md", str(tmp_path / "RESULTS.md"),
           "--train_opts", " ".join(TINY_ROW), "--vae_train_opts", " ".join(TINY_VAE)]
    run_script(cmd, tmp_path, timeout=900)
    vae_log = (tmp_path / "exp" / "vae" / "train.log").read_text()
    assert "3 utterances, {} classes" in vae_log and "epoch 2 done" in vae_log and "reconstruction" in vae_log
    log = (exp / "train.log").read_text()
    assert "init_from" in log and "epoch 2 done" in log and " mix " in log
    scores = (exp / "scores" / "vox1_O.score").read_text().splitlines()
    result = json.loads((exp / "scores" / "vox1_O.result").read_text())
    assert len(scores) == result["num_trials"] > 0
    table = (tmp_path / "RESULTS.md").read_text()
    assert "| vox1_O |" in table and table.rstrip().endswith("| – |")  # the paper gives no minDCF
    assert f"| {result['eer_percent']:.2f} | 10.49 |" in table
