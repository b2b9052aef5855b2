"""The SDPN recipes: every row config of the paper's Tables 1, 3, 4 loads and has its row's switches
and numbers; egs/voxceleb/sdpn stages 0-7 on the miniature VoxCeleb; the speechocean762 mini configs."""

import json

import pytest

import corpora_fixtures as F
from conftest import ROOT, run_script
from wespeaker_like.objectives import build_objective
from wespeaker_like.training.schema import load_experiment_config

VOX = ROOT / "egs" / "voxceleb" / "sdpn"
MINI = ROOT / "egs" / "speechocean762" / "sdpn"
WAV_SPEC = {"prob": 0.2, "time_width": [0, 10], "freq_width": [0, 6]}

# (config, table rows, objective switches, paper numbers vox1_O/E/H: (EER %, minDCF 0.05)) from
# METHODS.md §4.6; rows with the same setting share a config.
ROWS = [
    ("dino.yaml", ["Table 1: DINO*"], {"name": "dino", "num_global": 2, "num_local": 4, "out_dim": 65536},
     [(2.65, 0.202), (2.74, 0.188), (5.02, 0.304)]),
    ("sdpn_mu0.yaml", ["Table 1: SDPN (mu=0)", "Table 3: mu=0"], {"dr_weight": 0.0, "use_prototypes": True},
     [(2.13, 0.170), (2.12, 0.150), (4.15, 0.263)]),
    ("sdpn_wo_pro.yaml", ["Table 1: SDPN w/o PRO"], {"use_prototypes": False, "dr_weight": 0.0},
     [(3.76, 0.278), (3.93, 0.271), (7.28, 0.436)]),
    ("sdpn_wo_pro2.yaml", ["Table 1: SDPN w/o PRO-2"],
     {"use_prototypes": False, "dr_weight": 0.0, "head.hidden_dim": 2080},
     [(3.75, 0.274), (3.90, 0.270), (7.22, 0.433)]),
    ("sdpn_mu0.1.yaml", ["Table 1: SDPN w/ DR (mu=0.1)", "Table 3: mu=0.1", "Table 4: Wav+Spec"],
     {"dr_weight": 0.1, "augment": "sdpn", "spec_augment": WAV_SPEC},
     [(1.80, 0.139), (1.99, 0.131), (3.62, 0.219)]),
    ("sdpn_mu0.05.yaml", ["Table 3: mu=0.05"], {"dr_weight": 0.05}, [(1.94, 0.134), (2.02, 0.132), (3.67, 0.227)]),
    ("sdpn_mu0.2.yaml", ["Table 3: mu=0.2"], {"dr_weight": 0.2}, [(1.95, 0.157), (2.08, 0.136), (3.74, 0.223)]),
    ("sdpn_aug_none.yaml", ["Table 4: none"], {"dr_weight": 0.1, "augment": None, "spec_augment": None},
     [(3.62, 0.268), (4.34, 0.266), (6.99, 0.407)]),
    ("sdpn_aug_wav.yaml", ["Table 4: WavAug"], {"dr_weight": 0.1, "augment": "sdpn", "spec_augment": None},
     [(1.88, 0.153), (2.06, 0.139), (3.72, 0.228)]),
    ("sdpn_aug_spec.yaml", ["Table 4: SpecAug"], {"dr_weight": 0.1, "augment": None, "spec_augment": WAV_SPEC},
     [(4.27, 0.317), (5.03, 0.309), (7.69, 0.447)]),
]


def get(tree, dotted):
    for key in dotted.split("."):
        tree = tree[key]
    return tree


def test_every_table_row_has_one_config():
    rows = [row for _, table_rows, _, _ in ROWS for row in table_rows]
    assert len(rows) == len(set(rows)) == 5 + 4 + 4  # Tables 1, 3 and 4
    assert sorted(p.name for p in (VOX / "conf").glob("*.yaml")) == sorted(["base.yaml"] + [r[0] for r in ROWS])


@pytest.mark.parametrize("name,rows,switches,paper", ROWS, ids=[r[0] for r in ROWS])
def test_row_config_matches_its_row(name, rows, switches, paper):
    cfg = load_experiment_config(VOX / "conf" / name)
    objective = cfg["objective"]
    for key, value in switches.items():
        assert get(objective, key) == value, key
    assert cfg["paper"]["row"] == " = ".join(rows) and cfg["paper"]["p_target"] == 0.05
    numbers = cfg["paper"]["numbers"]
    assert [(numbers[k]["eer"], numbers[k]["min_dcf"]) for k in ("vox1_O", "vox1_E", "vox1_H")] == paper
    # the shared paper settings (METHODS.md §4.1-4.4)
    assert cfg["model"]["embed_dim"] == 512 and cfg["model"]["channels"] == [1024, 1024, 1024, 1024, 3072]
    assert (objective["global_frames"], objective["local_frames"], objective["num_local"]) == (400, 200, 4)
    assert objective["head"]["hidden_dim"] in (2048, 2080) and objective["momentum"] == 0.996
    assert cfg["features"]["type"] == "logmel" and cfg["features"]["norm"] == "instance"
    assert cfg["optim"]["lr"] == 0.4 and cfg["optim"]["weight_decay"] == 5.0e-5
    assert cfg["trainer"]["epochs"] == 150 and cfg["dataset"]["sampler"]["batch_size"] == 96
    if objective["name"] == "sdpn":
        assert objective["num_prototypes"] == 1024 and objective["loss"]["memax_weight"] == 1.0
        assert (objective["loss"]["teacher_temperature"], objective["loss"]["sharpen_temperature"]) == (0.1, 0.25)


@pytest.mark.parametrize("name,dr_weight,objective", [("sdpn_mu0.yaml", 0.0, "sdpn"), ("sdpn_mu0.1.yaml", 0.1, "sdpn"),
                                                      ("dino.yaml", None, "dino")])
def test_mini_configs_load_and_build(name, dr_weight, objective):
    cfg = load_experiment_config(MINI / "conf" / name)
    assert cfg["objective"]["name"] == objective and cfg["objective"].get("dr_weight") == dr_weight
    built = build_objective(cfg["objective"], cfg["model"], {})
    assert built.label_names == () and len(built.views) == (6 if objective == "dino" else 5)
    base = load_experiment_config(MINI / "conf" / "base.yaml")
    for section in ("model", "optim", "scheduler", "trainer", "dataset", "features", "seed"):
        assert cfg[section] == base[section], section  # same budget and seed for every row


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return F.make_voxceleb_and_noises(tmp_path_factory.mktemp("vox") / "corpus")


TINY_SDPN = ["model.channels=[8,8,8,8,24]", "model.embed_dim=16", "model.se_channels=4",
             "model.attention_channels=4", "objective.global_frames=60", "objective.local_frames=30",
             "objective.head.hidden_dim=16", "objective.head.out_dim=8", "objective.num_prototypes=12",
             "dataset.sampler.batch_size=3", "dataset.num_workers=0", "trainer.epochs=2",
             "trainer.sync_batchnorm=false", "trainer.checkpoint_every_steps=0", "trainer.log_every=1",
             "trainer.num_threads=1"]


def test_voxceleb_sdpn_stages_0_to_7(corpus, tmp_path):
    exp = tmp_path / "exp"
    cmd = ["bash", str(VOX / "run.sh"), "--corpus_dir", str(corpus), "--data", str(tmp_path / "data"),
           "--config", str(VOX / "conf" / "sdpn_mu0.1.yaml"), "--exp", str(exp), "--num_gpus", "0", "--nj", "1",
           "--extract_device", "cpu", "--results_md", str(tmp_path / "RESULTS.md"), "--train_opts", " ".join(TINY_SDPN),
           "--trials", "vox1_O_cleaned vox1_E_cleaned vox1_H"]  # the miniature H_cleaned list has no nontarget
    run_script(cmd, tmp_path, timeout=900)
    assert not (tmp_path / "data" / "vox2_dev_aug").exists()  # augmented on the fly, no stage-2 copies
    log = (exp / "train.log").read_text()
    assert "3 utterances, {} classes" in log and "epoch 2 done" in log and "koleo" in log
    for name, trials in (("vox1_O_cleaned", 2), ("vox1_E_cleaned", 2), ("vox1_H", 2)):
        scores = (exp / "scores" / f"{name}.score").read_text().splitlines()
        assert len(scores) == trials
        assert json.loads((exp / "scores" / f"{name}.result").read_text())["num_trials"] == trials
    table = (tmp_path / "RESULTS.md").read_text()
    assert "| vox1_O | 0.05 |" in table and "| 1.80 |" in table and "| 0.139 |" in table  # beside the paper's
    assert "| vox1_H | 0.05 |" in table and "| 3.62 |" in table and "| 0.219 |" in table
    for name in ("vox1_O_cleaned", "vox1_E_cleaned", "vox1_H"):
        assert f"voxceleb/sdpn/exp/{name}" in table
    assert "end: teacher_std" in table and "protos_used" in table
