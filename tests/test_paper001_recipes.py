"""The paper-001 recipes (issue 13): the ten VoxCeleb configs match their rows of Tables 1 and 2, the
mini-proof rows share one budget, and egs/voxceleb/mine_ic runs stages 0-7 on the miniature corpus
of tests/corpora_fixtures.py with a tiny model given through --overrides."""

import json
import shutil

import pytest
import torch

import corpora_fixtures as F
from conftest import ROOT, run_script
from wespeaker_like.data.kaldi_dir import read_table
from wespeaker_like.objectives import build_objective
from wespeaker_like.training.schema import load_experiment_config

CONF = ROOT / "egs" / "voxceleb" / "mine_ic" / "conf"
# row -> (objective, speaker loss, use_adv, use_mi, use_ic, epochs, paper table, paper EER %)  [METHODS.md §2.5]
ROWS = {
    "table1_chung_softmax_contrastive": ("club_pretrain", "softmax", None, None, None, 30, "Table 1", 5.04),
    "table1_xie_softmax": ("classification", "softmax", None, None, None, 30, "Table 1", 5.02),
    "table1_tai_softmax": ("mine_ic", "softmax", True, False, False, 30, "Table 1", 3.83),
    "table1_proposed_softmax": ("mine_ic", "softmax", False, True, True, 50, "Table 1", 3.18),
    "table1_proposed_am": ("mine_ic", "aam", False, True, True, 50, "Table 1", 2.54),
    "table2_adv": ("mine_ic", "softmax", True, False, False, 30, "Table 2", 3.83),
    "table2_adv_mi": ("mine_ic", "softmax", True, True, False, 30, "Table 2", 3.71),
    "table2_mi": ("mine_ic", "softmax", False, True, False, 30, "Table 2", 3.81),
    "table2_adv_ic": ("mine_ic", "softmax", True, False, True, 50, "Table 2", 3.59),
    "table2_mi_ic": ("mine_ic", "softmax", False, True, True, 50, "Table 2", 3.18),
}


def meta_objective(cfg, classes=5994):
    with torch.device("meta"):
        return build_objective(cfg["objective"], cfg["model"], {"spk": classes})


def test_every_row_has_a_config():
    assert sorted(p.stem for p in CONF.glob("*.yaml")) == sorted([*ROWS, "base"])


@pytest.mark.parametrize("row", sorted(ROWS))
def test_voxceleb_configs_load_and_match_their_rows(row):
    name, loss, adv, mi, ic, epochs, table, eer = ROWS[row]
    cfg = load_experiment_config(CONF / f"{row}.yaml")
    assert cfg["objective"]["name"] == name and cfg["trainer"]["epochs"] == epochs
    assert cfg["paper"]["table"] == table and cfg["paper"]["numbers"] == {"vox1_O": {"eer": eer, "min_dcf": None}}
    assert cfg["model"]["name"] == "thin_resnet34" and cfg["model"]["pooling"] == "TAP"
    assert (cfg["model"]["feat_dim"], cfg["model"]["embed_dim"]) == (257, 512)
    assert cfg["features"]["type"] == "stft" and cfg["features"]["n_fft"] == 512
    assert (cfg["optim"]["name"], cfg["optim"]["lr"], cfg["scheduler"]["step_epochs"]) == ("adam", 1.0e-3, 10)
    sampler = cfg["dataset"]["sampler"]
    assert (sampler["name"], sampler["speakers_per_batch"], sampler["utts_per_speaker"]) == ("speaker_balanced", 32, 2)
    objective = meta_objective(cfg)
    head = objective.head if name == "classification" else objective.speaker_head
    assert type(head).__name__ == {"softmax": "Softmax", "aam": "AAMSoftmax"}[loss]
    if name != "mine_ic":
        return
    assert (objective.use_adv, objective.use_mi, objective.use_ic) == (adv, mi, ic)
    assert (objective.statistics is not None) == mi and (not mi or objective.statistics.bound == 5.0)
    assert objective.weights == {"speaker": 1.0, "mi": 0.1, "adv": 0.1, "recon": 0.1, "ic": 0.1}
    assert objective.phase1_epochs == 30 and objective.views[0].num_frames == 300
    assert objective.decoder.num_mel_bins == 64 and objective.decoder.first_shape == (512, 4, 19)
    assert cfg["dataset"]["frontends"]["logmel"]["num_mel_bins"] == 64
    if loss == "aam":
        assert (head.margin, head.scale) == (0.2, 30.0)


def test_mini_proof_rows_share_one_budget_and_switch_their_terms():
    conf = ROOT / "egs" / "speechocean762" / "mine_ic" / "conf"
    budgets = set()
    expected = {"encoder_only": None, "phase1_mi": (True, False), "phase2_mi_ic": (True, True)}
    for row, switches in expected.items():
        cfg = load_experiment_config(conf / f"{row}.yaml")
        objective = meta_objective(cfg, classes=125)
        if switches is None:
            assert cfg["objective"]["name"] == "classification"
        else:
            assert (objective.use_mi, objective.use_ic, objective.use_adv) == (*switches, False)
        budgets.add((cfg["seed"], str(cfg["dataset"]["sampler"]), cfg["trainer"]["epochs"], str(cfg["model"]),
                     cfg["optim"]["lr"], cfg["objective"]["num_frames"]))
    assert len(budgets) == 1


# one batch an epoch: the miniature VoxCeleb2 has one speaker with two utterances (a pair)
TINY = ("model.widths=[8,8,8,8] model.num_blocks=[1,1,1,1] model.embed_dim=16 model.se_reduction=0 "
        "objective.num_frames=40 objective.statistics_hidden=8 objective.decoder.fc_dims=[16,16] "
        "objective.decoder.channels=[8,8,8,8,8,4,4,4,4,1] objective.phase1_epochs=1 dataset.num_workers=0 "
        "dataset.sampler.speakers_per_batch=1 trainer.epochs=2 trainer.log_every=1 trainer.num_threads=1")


@pytest.fixture(autouse=True)
def need_ffmpeg(request):
    if "recipe" in request.node.name and shutil.which("ffmpeg") is None:
        pytest.fail("ffmpeg is not installed: VoxCeleb2 (AAC) needs it; apt-get install -y ffmpeg")


def test_voxceleb_recipe_stages_0_to_7(tmp_path):
    corpus = tmp_path / "corpus"
    F.make_voxceleb1(corpus / "voxceleb1")
    F.make_voxceleb2(corpus / "voxceleb2")
    run_script(["bash", ROOT / "egs" / "voxceleb" / "mine_ic" / "run.sh", "--nj", "1", "--corpus_dir", corpus,
                "--data", tmp_path / "data", "--exp", tmp_path / "exp", "--results_md", tmp_path / "RESULTS.md",
                "--config", CONF / "table2_mi_ic.yaml", "--overrides", TINY], tmp_path, timeout=1800)
    exp = tmp_path / "exp"
    log = (exp / "train.log").read_text()
    assert "epoch 1 done: phase 1.0000" in log and "epoch 2 done: phase 2.0000" in log
    embedded = read_table(exp / "embeddings" / "vox1_test" / "xvector.scp")
    assert set(embedded) == set(read_table(tmp_path / "data" / "vox1_test" / "utt2spk"))
    lines = (tmp_path / "RESULTS.md").read_text().splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| experiment | paper table"))
    (paper,) = [[c.strip() for c in line.strip("|").split("|")] for line in lines[header + 2:] if line.startswith("|")]
    result = json.loads((exp / "scores" / "vox1_O.result").read_text())
    assert paper[1:4] == ["Table 2", "L_s, L_r, L_mi, L_ic", "vox1_O"]
    assert paper[5:] == [f"{result['eer_percent']:.2f}", "3.18", f"{result['min_dcf']['0.01']:.3f}", "–"]
    rows = [line for line in lines if line.startswith("| voxceleb/mine_ic/exp ") and "| cosine |" in line]
    assert len(rows) == 2 and all(len(r.strip("|").split("|")) == 11 for r in rows)  # + 3 intra-class cells
    within, between, ratio = (float(c) for c in rows[0].strip("|").split("|")[6:9])
    # (the tiny model's embeddings may all but coincide: the cells are 3-decimal roundings, checked
    # against a direct computation in test_report; here that the recipe fills them consistently)
    assert within >= 0 and between >= 0 and (between < 0.01 or ratio == pytest.approx(within / between, abs=2e-3))
