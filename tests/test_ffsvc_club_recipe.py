"""The FFSVC2022 CLUB recipe (paper 000, egs/ffsvc2022/club), stages 0-7 on the miniature FFSVC,
VoxCeleb, MUSAN and RIRS_NOISES layouts of tests/corpora_fixtures.py (hand-extracted: stage 0 downloads
nothing): a tiny MFA-Conformer, one epoch of Stage A (Table I row 1) and of row 6b (all five terms)."""

import json
import shutil

import pytest
import torch

import corpora_fixtures as F
from conftest import ROOT, run_script
from wespeaker_like.data.kaldi_dir import read_table

TINY = ("model.num_blocks=1 model.d_model=16 model.heads=2 model.ffn_dim=16 model.kernel_size=3 model.embed_dim=8 "
        "model.attention_channels=4 objective.num_frames=40 dataset.num_workers=0 "
        "dataset.sampler.speakers_per_batch=2 trainer.epochs=1 trainer.amp=false trainer.average_last=1 "
        "trainer.num_threads=1 trainer.log_every=1")
ROWS = ("1", "6b")
DEVICES = {"ffsvc0001-F0001_001I1M_1_0001_normal": "I", "ffsvc0001-T0001_001PCML3M_recorded10_0005_slow": "PCM",
           "ffsvc0002-S0002_002PAD3M_1_0003_fast": "PAD", "ffsvc0002-T0002_002MIC_Tr2_0004_normal": "MIC"}


@pytest.fixture(autouse=True)
def need_ffmpeg():
    if shutil.which("ffmpeg") is None:
        pytest.fail("ffmpeg is not installed: VoxCeleb2 (AAC) needs it; apt-get install -y ffmpeg")


def table_rows(md_path, first_column):
    lines = md_path.read_text().splitlines()
    header = lines.index(next(line for line in lines if line.startswith(f"| {first_column}")))
    rows = []
    for line in lines[header + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows


def trained_weights(model_file, prefix=""):
    """The learned tensors of a final model (no BatchNorm running statistics), keys without ``prefix``."""
    state = torch.load(model_file, weights_only=True)["embedding"]
    return {k[len(prefix):]: v for k, v in state.items()
            if k.startswith(prefix) and "running_" not in k and "num_batches_tracked" not in k}


def max_difference(a, b):
    assert a.keys() == b.keys()
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


def test_ffsvc_club_recipe_stages_0_to_7(tmp_path):
    corpus = tmp_path / "corpus"
    F.make_ffsvc(corpus / "ffsvc")
    F.make_voxceleb_and_noises(corpus)
    data, exp = tmp_path / "data", tmp_path / "exp"
    run_script(["bash", ROOT / "egs/ffsvc2022/club/run.sh", "--nj", "1", "--corpus_dir", corpus, "--data", data,
                "--exp", exp, "--results_md", tmp_path / "RESULTS.md", "--probe_md", tmp_path / "DISENTANGLEMENT.md",
                "--rows", " ".join(ROWS), "--overrides", TINY], tmp_path, timeout=1800)

    # Stage B trains on the 4 clean utterances and their 4 copies each, a copy with its original's device.
    utt2dev = read_table(data / "ffsvc_train_combined" / "utt2dev")
    utt2uniq = read_table(data / "ffsvc_train_combined" / "utt2uniq")
    assert len(utt2dev) == 20 and set(utt2dev.values()) == {"I", "MIC", "PAD", "PCM"}
    assert all(utt2dev[utt] == DEVICES[utt2uniq[utt]] for utt in utt2dev)
    assert len(read_table(data / "ffsvc_train_combined" / "feats.scp")) == 20
    # Stage A trains on vox1_dev + vox2_dev: 2 + 2 speakers, 4 + 3 utterances.
    assert len(read_table(data / "vox_dev" / "feats.scp")) == 7
    assert len(set(read_table(data / "vox_dev" / "utt2spk").values())) == 4

    # Row 6b starts from Stage A (exp/row_1): its encoder is within a few Adam steps of 1e-5 of row 1's
    # (a fresh initialisation differs by far more than 1e-3).
    stage_a = trained_weights(exp / "row_1" / "final_model.pt")
    assert max_difference(trained_weights(exp / "row_6b" / "final_model.pt", "backbone."), stage_a) < 1e-3
    assert f"init_from {exp / 'row_1' / 'final_model.pt'}" in (exp / "row_6b" / "train.log").read_text()

    # Probe sets: the clean training utterances split by utterance, each with its copies, none on both sides.
    fit = set(read_table(data / "ffsvc_train_probe_fit" / "utt2spk"))
    held_out = set(read_table(data / "ffsvc_train_probe_held_out" / "utt2spk"))
    fit_originals, held_out_originals = {utt2uniq[u] for u in fit}, {utt2uniq[u] for u in held_out}
    assert fit | held_out == set(utt2dev) and len(fit) == len(held_out) == 10
    assert not fit_originals & held_out_originals and len(fit_originals) == 2
    for row in ROWS:
        row_exp = exp / f"row_{row}"
        assert set(read_table(row_exp / "embeddings" / "ffsvc2022_dev" / "xvector.scp")) == {
            "ffsvc0101-ffsvc22_dev_000000", "ffsvc0101-ffsvc22_dev_000001", "ffsvc0202-ffsvc22_dev_000002"}
        branches = ["x"] if row == "1" else ["x", "x_s", "x_d"]
        for branch in branches:
            assert set(read_table(row_exp / "embeddings" / "ffsvc_train_probe_held_out" / branch / "xvector.scp")) \
                == held_out
        probe_fit = row_exp / "embeddings" / "ffsvc_train_probe_fit"
        assert sorted(p.name for p in probe_fit.iterdir() if p.name != "log") == sorted(branches)
        # all branches from one pass through the network
        assert f"(branches {', '.join(branches)})" in (probe_fit / "log" / "extract_branches.1.log").read_text()

    # Table I beside the paper: P_target 0.05, our numbers from stage 6's result files.
    paper = {"1": ("12.09", "0.722"), "6b": ("6.95", "0.450")}
    rows = table_rows(tmp_path / "RESULTS.md", "experiment | paper table")
    assert [r[0] for r in rows] == [f"ffsvc2022/club/row_{row}" for row in ROWS]
    for row, cells in zip(ROWS, rows):
        result = json.loads((exp / f"row_{row}" / "scores" / "ffsvc2022_dev.result").read_text())
        assert cells[1] == "I" and cells[2].startswith(f"{row} (") and cells[3:5] == ["ffsvc2022_dev", "0.05"]
        assert cells[5:] == [f"{result['eer_percent']:.2f}", paper[row][0], f"{result['min_dcf']['0.05']:.3f}",
                             paper[row][1]]

    # Diagnostics: each device is one original, so the held-out devices never occur among the fitted
    # ones and every probe scores 0; row 1 has x only, and no MI(x_s; x_d).
    assert not {utt2dev[u] for u in fit} & {utt2dev[u] for u in held_out}
    probes = {r[0]: r[1:6] for r in table_rows(tmp_path / "DISENTANGLEMENT.md", "experiment")}
    assert set(probes) == {f"ffsvc2022/club/row_{row}" for row in ROWS}
    assert probes["ffsvc2022/club/row_1"][:3] == ["0.0", "-", "-"]
    cells = probes["ffsvc2022/club/row_6b"]
    assert cells[:3] == ["0.0", "0.0", "0.0"] and float(cells[3]) >= 0.0
    assert (exp / "row_6b" / "tsne_device.png").read_bytes()[:4] == b"\x89PNG"
