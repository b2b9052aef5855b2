"""The paper-004 recipes (egs/voxceleb/supmargincon, egs/cnceleb/supmargincon), stages 0-7 on the
miniature corpora of tests/corpora_fixtures.py (hand-extracted layout: stage 0 downloads nothing),
with a tiny ECAPA-TDNN and two epochs of the paper's method ("Ours") given through --overrides."""

import json
import shutil

import pytest

import corpora_fixtures as F
from conftest import ROOT, run_script
from wespeaker_like.data.kaldi_dir import read_table

TINY = ("model.channels=[16,16,16,16,48] model.embed_dim=16 model.se_channels=8 model.attention_channels=8 "
        "objective.num_frames=40 objective.mi.critic_hidden=8 dataset.num_workers=0 dataset.sampler.batch_size=4 "
        "trainer.epochs=2 trainer.amp=false trainer.average_last=1 trainer.num_threads=1 trainer.log_every=1 "
        "scheduler.warmup_epochs=0.5")


def run_recipe(recipe, tmp_path, *options):
    return run_script(["bash", ROOT / "egs" / recipe / "supmargincon" / "run.sh", "--nj", "1",
                       "--corpus_dir", tmp_path / "corpus", "--data", tmp_path / "data", "--exp", tmp_path / "exp",
                       "--results_md", tmp_path / "RESULTS.md", "--overrides", TINY, *options],
                      tmp_path, timeout=1800).stdout


def paper_rows(results_md):
    lines = results_md.read_text().splitlines()
    header = lines.index(next(line for line in lines if line.startswith("| experiment | paper table")))
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines[header + 2:] if line.startswith("|")]


@pytest.fixture(autouse=True)
def need_ffmpeg():
    if shutil.which("ffmpeg") is None:
        pytest.fail("ffmpeg is not installed: VoxCeleb2 (AAC) needs it; apt-get install -y ffmpeg")


def test_voxceleb_recipe_stages_0_to_7(tmp_path):
    corpus = tmp_path / "corpus"
    F.make_voxceleb_and_noises(corpus)
    out = run_recipe("voxceleb", tmp_path, "--config", ROOT / "egs/voxceleb/supmargincon/conf/table1_ecapa_tdnn_ours.yaml",
                     "--aug_num_utts", "2", "--trials", "vox1_O_cleaned vox1_E_cleaned vox1_H")
    assert "found in its official extracted layout" in out
    data, exp = tmp_path / "data", tmp_path / "exp"
    # Speed copies are new speakers: 2 VoxCeleb2 speakers -> 6 classes, 3 utterances -> 9, + 2 augmented.
    speakers = set(read_table(data / "vox2_dev_sp" / "utt2spk").values())
    assert speakers == {f"{p}{s}" for p in ("", "sp0.9-", "sp1.1-") for s in ("id00012", "id00015")}
    assert len(read_table(data / "vox2_dev_sp_combined" / "feats.scp")) == 11
    assert torch_num_classes(exp) == 6
    assert len(read_table(exp / "embeddings" / "vox1" / "xvector.scp")) == 8
    rows = paper_rows(tmp_path / "RESULTS.md")
    assert [r[3] for r in rows] == ["vox1_O", "vox1_E", "vox1_H"]
    assert [r[4] for r in rows] == ["0.01"] * 3  # the paper block's P_target
    assert [r[6] for r in rows] == ["0.74", "0.83", "1.63"] and [r[8] for r in rows] == ["0.096", "0.103", "0.166"]
    for row, name in zip(rows, ("vox1_O_cleaned", "vox1_E_cleaned", "vox1_H")):
        result = json.loads((exp / "scores" / f"{name}.result").read_text())
        assert row[1:3] == ["I", "ECAPA-TDNN, Ours (eq.8)"] and row[5] == f"{result['eer_percent']:.2f}"
        assert row[7] == f"{result['min_dcf']['0.01']:.3f}"
        assert (exp / f"det_{name}.png").read_bytes()[:4] == b"\x89PNG"
    assert (exp / "tsne.png").is_file()


def test_cnceleb_recipe_stages_0_to_7_with_averaged_enrollment(tmp_path):
    corpus = tmp_path / "corpus"
    F.make_cnceleb(corpus)
    F.make_musan(corpus / "musan")
    F.make_rirs_noises(corpus / "RIRS_NOISES")
    run_recipe("cnceleb", tmp_path, "--config", ROOT / "egs/cnceleb/supmargincon/conf/table2_ecapa_tdnn_ours.yaml",
               "--enroll_mode", "average", "--aug_types", "noise,reverb", "--aug_num_utts", "2")
    data, exp = tmp_path / "data", tmp_path / "exp"
    assert torch_num_classes(exp) == 3  # CN-Celeb1 dev id00000, id00001 + CN-Celeb2 id10000
    embedded = read_table(exp / "embeddings" / "cnceleb1_eval" / "xvector.scp")
    assert "id00800-enroll" not in embedded and "id00800-speech-01-001" in embedded  # averaged at scoring
    scores = (exp / "scores" / "cnceleb1_eval.score").read_text().splitlines()
    assert [s.split()[:2] for s in scores][0] == ["id00800-enroll", "id00800-singing-01-005"] and len(scores) == 4
    (row,) = paper_rows(tmp_path / "RESULTS.md")
    result = json.loads((exp / "scores" / "cnceleb1_eval.result").read_text())
    assert row[1:4] == ["II", "ECAPA-TDNN, Ours (eq.8)", "cnceleb1_eval"]
    assert row[4:] == ["0.01", f"{result['eer_percent']:.2f}", "7.45", f"{result['min_dcf']['0.01']:.3f}", "0.413"]


def torch_num_classes(exp):
    import torch

    return torch.load(exp / "final_model.pt", weights_only=True)["num_classes"]["spk"]
