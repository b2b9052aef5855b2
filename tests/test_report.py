"""Stage 7: RESULTS.md row (append / replace), config summary, DET and t-SNE PNGs via the CLI."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import kaldiio
import numpy as np
import pytest

from wespeaker_like.bin import report
from wespeaker_like.bin.report import (
    COLUMNS, format_duration, read_train_time, summarise_config, update_results_table,
)
from wespeaker_like.data.trials import Trial, write_trials
from wespeaker_like.scoring.metrics import compute_eer, compute_min_dcf
from wespeaker_like.scoring.plots import select_by_speaker
from wespeaker_like.scoring.scores import write_scores

REPO = Path(__file__).resolve().parents[1]


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk; asserts the file is a PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def table_rows(text: str) -> list[list[str]]:
    rows = [line for line in text.splitlines() if line.startswith("|")]
    return [[c.strip() for c in line.strip("|").split("|")] for line in rows[2:]]


# ----------------------------------------------------------------------------- table editing

def test_results_table_create_append_replace():
    row_a = ["exp_a", "cosine", "tdnn", "5.00", "0.500", "0.300", "1m 00s", "2024-01-01"]
    row_b = ["exp_b", "cosine", "ecapa", "4.00", "0.400", "0.200", "?", "2024-01-02"]
    text = update_results_table("", row_a)
    assert text.startswith("# Results\n")
    assert table_rows(text) == [row_a]
    text = update_results_table(text, row_b)
    assert table_rows(text) == [row_a, row_b]
    new_a = ["exp_a", "cosine", "tdnn", "3.00", "0.300", "0.100", "2m 00s", "2024-01-03"]
    text = update_results_table(text, new_a)
    assert table_rows(text) == [new_a, row_b]  # replaced in place, order kept
    plda_a = ["exp_a", "plda", "tdnn", "2.50", "0.250", "0.090", "2m 00s", "2024-01-03"]
    text = update_results_table(text, plda_a)
    assert table_rows(text) == [new_a, plda_a, row_b]  # beside its experiment's other back-ends
    new_plda_a = plda_a[:3] + ["2.40"] + plda_a[4:]
    assert table_rows(update_results_table(text, new_plda_a)) == [new_a, new_plda_a, row_b]


def test_a_measurement_table_keyed_by_experiment_replaces_the_rerun_row():
    columns = ["experiment", "probe x", "probe x_s", "date"]
    text = update_results_table("", ["club/2b", "91.0", "60.0", "d1"], columns, key=1)
    text = update_results_table(text, ["club/6b", "90.0", "40.0", "d1"], columns, key=1)
    text = update_results_table(text, ["club/2b", "92.5", "58.0", "d2"], columns, key=1)
    assert table_rows(text) == [["club/2b", "92.5", "58.0", "d2"], ["club/6b", "90.0", "40.0", "d1"]]


def test_results_table_without_backend_column_becomes_cosine_rows():
    old = ("# Results\n\n| experiment | config | EER % | minDCF(0.01) | minDCF(0.05) | train time | date |\n"
           "|---|---|---|---|---|---|---|\n| so/ecapa | ecapa_tdnn | 6.63 | 0.553 | 0.402 | 25m 37s | 2026-12-01 |\n"
           "\nNotes.\n")
    text = update_results_table(old, ["so/ecapa", "asnorm", "ecapa_tdnn", "6.10", "0.5", "0.4", "25m 37s", "d"])
    assert "| " + " | ".join(COLUMNS) + " |" in text and "|---|---|---|---|---|---|---|---|" in text
    assert table_rows(text) == [["so/ecapa", "cosine", "ecapa_tdnn", "6.63", "0.553", "0.402", "25m 37s", "2026-12-01"],
                                ["so/ecapa", "asnorm", "ecapa_tdnn", "6.10", "0.5", "0.4", "25m 37s", "d"]]
    assert text.endswith("\nNotes.\n")


def test_results_table_keeps_surrounding_text_and_escapes_pipes():
    header = "| " + " | ".join(COLUMNS) + " |"
    before = "# My results\n\nSome notes.\n\n" + header + "\n|---|---|---|---|---|---|---|---|\n" \
             "| old | cosine | x | 1.00 | 0.1 | 0.1 | ? | d |\n\nFooter line.\n"
    text = update_results_table(before, ["a|b", "plda", "c", "1", "2", "3", "4", "5"])
    assert text.startswith("# My results\n\nSome notes.\n\n")
    assert text.endswith("| a\\|b | plda | c | 1 | 2 | 3 | 4 | 5 |\n\nFooter line.\n")
    again = update_results_table(text, ["a|b", "plda", "c", "9", "2", "3", "4", "5"])
    assert again.count("a\\|b") == 1 and "| 9 |" in again


def test_config_summary_and_durations(tmp_path):
    config = {"model": {"name": "ecapa_tdnn", "embed_dim": 192, "channels": 512},
              "loss": {"name": "aam_softmax", "margin": 0.2}, "train": {"epochs": 40}}
    assert summarise_config(config) == "ecapa_tdnn, emb 192, aam_softmax, 40 ep"
    assert summarise_config({"model": "tdnn", "objective": {"name": "club"}}) == "tdnn, club"
    club_6b = {"model": "ecapa_tdnn", "objective": {"name": "club", "weights": {"speaker": 5.0, "device": 10.0, "mi_s_d": 0.5,
                                                                    "mi_d_ys": 0.0}}}
    assert summarise_config(club_6b) == "ecapa_tdnn, club (speaker 5 device 10 mi_s_d 0.5)"
    # The layout bin/train.py saves: objective.loss, trainer.epochs.
    saved = {"model": {"name": "campplus", "embed_dim": 512},
             "objective": {"name": "classification", "loss": {"name": "aam", "margin": 0.2}},
             "trainer": {"epochs": 80, "grad_clip": 0.0}}
    assert summarise_config(saved) == "campplus, emb 512, classification/aam, 80 ep"
    assert summarise_config({}) == "?"
    assert format_duration(45) == "45s"
    assert format_duration(754) == "12m 34s"
    assert format_duration(7530) == "2h 05m"
    assert format_duration(None) == "?"
    (tmp_path / "train_time").write_text("train_time_seconds 123.5\n")
    assert read_train_time(tmp_path) == 123.5
    assert read_train_time(tmp_path / "nowhere") is None


def test_select_by_speaker_keeps_whole_speakers():
    utt2spk = {f"s{i // 5}_u{i}": f"s{i // 5}" for i in range(50)}  # 10 speakers x 5
    utts = sorted(utt2spk)
    kept = select_by_speaker(utts, utt2spk, 23, seed=1)
    assert len(kept) == 20  # 4 whole speakers
    speakers = {utt2spk[u] for u in kept}
    assert all(sum(utt2spk[u] == s for u in kept) == 5 for s in speakers)
    assert kept == [u for u in utts if u in set(kept)]
    assert select_by_speaker(utts, utt2spk, 100) == utts


# ----------------------------------------------------------------------------- CLI end to end

@pytest.fixture
def experiment(tmp_path):
    """An exp dir with config, train_time, embeddings and scores of 10 speakers x 6 utterances."""
    rng = np.random.default_rng(0)
    exp = tmp_path / "exp" / "ecapa_run"
    data = tmp_path / "data"
    data.mkdir(parents=True)
    (exp / "scores").mkdir(parents=True)
    speakers = [f"spk{i:02d}" for i in range(10)]
    centres = {s: rng.normal(size=32) for s in speakers}
    embeddings = {f"{s}-u{j}": (centres[s] + 0.9 * rng.normal(size=32)).astype(np.float32)
                  for s in speakers for j in range(6)}
    (exp / "embeddings" / "test").mkdir(parents=True)
    scp = exp / "embeddings" / "test" / "xvector.scp"
    kaldiio.save_ark(str(scp.with_suffix(".ark")), embeddings, scp=str(scp))
    (data / "utt2spk").write_text("".join(f"{u} {u.split('-')[0]}\n" for u in embeddings))
    (data / "spk2gender").write_text("".join(f"{s} {'mf'[i % 2]}\n" for i, s in enumerate(speakers)))
    keys = sorted(embeddings)
    trials = [Trial(a, b, a[:5] == b[:5]) for i, a in enumerate(keys) for b in keys[i + 1::3]]
    write_trials(data / "trials", trials)
    unit = {k: v / np.linalg.norm(v) for k, v in embeddings.items()}
    scores = np.array([float(unit[t.enroll] @ unit[t.test]) for t in trials])
    write_scores(exp / "scores" / "test.cosine.score", trials, scores)
    (exp / "config.yaml").write_text("model:\n  name: ecapa_tdnn\n  embed_dim: 192\n"
                                     "loss:\n  name: aam_softmax\ntrain:\n  epochs: 12\n")
    (exp / "train_time").write_text("3725\n")
    labels = [t.is_target for t in trials]
    return {"exp": exp, "data": data, "scores": np.round(scores, 6), "labels": labels}


def report_args(experiment, results_md, *extra):
    data = experiment["data"]
    args = ["--exp_dir", experiment["exp"], "--trials", data / "trials",
            "--utt2spk", data / "utt2spk", "--spk2gender", data / "spk2gender",
            "--results_md", results_md, *extra]
    return [str(a) for a in args]


def run_report(experiment, results_md, *extra):
    """The CLI as a user runs it (a subprocess: slow imports, so used once)."""
    return subprocess.run([sys.executable, "-m", "wespeaker_like.bin.report",
                           *report_args(experiment, results_md, *extra)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)


def report_in_process(capsys, experiment, results_md, *extra):
    """``report.main`` in this process: returns (exit code, stdout, stderr)."""
    code = report.main(report_args(experiment, results_md, *extra))
    out, err = capsys.readouterr()
    return code, out, err


def test_report_cli_writes_row_and_plots_and_replaces_row(experiment, tmp_path, capsys):
    results_md = tmp_path / "RESULTS.md"
    proc = run_report(experiment, results_md, "--name", "row1", "--tsne_iterations", "250")
    assert proc.returncode == 0, proc.stderr
    exp = experiment["exp"]
    for png in ("det.png", "tsne.png"):
        width, height = png_size(exp / png)
        assert 400 <= width <= 3000 and 400 <= height <= 3000, (png, width, height)
    assert png_size(exp / "tsne.png")[0] > png_size(exp / "tsne.png")[1]  # two panels side by side

    eer = 100 * compute_eer(experiment["scores"], experiment["labels"])[0]
    dcf01 = compute_min_dcf(experiment["scores"], experiment["labels"], 0.01).min_dcf
    dcf05 = compute_min_dcf(experiment["scores"], experiment["labels"], 0.05).min_dcf
    rows = table_rows(results_md.read_text())
    assert len(rows) == 1
    name, backend, config, eer_cell, dcf01_cell, dcf05_cell, train_time, date = rows[0]
    assert backend == "cosine"
    assert (name, config) == ("row1", "ecapa_tdnn, emb 192, aam_softmax, 12 ep")
    assert eer_cell == f"{eer:.2f}" and 0 < eer < 50
    assert (dcf01_cell, dcf05_cell) == (f"{dcf01:.3f}", f"{dcf05:.3f}")
    assert train_time == "1h 02m"
    assert len(date) == 10

    # Same name again (time given on the command line, no t-SNE): the row is replaced.
    code, _, err = report_in_process(capsys, experiment, results_md, "--name", "row1",
                                     "--train_time_seconds", "90", "--no_tsne")
    assert code == 0, err
    rows = table_rows(results_md.read_text())
    assert len(rows) == 1 and rows[0][6] == "1m 30s"

    # A new name (default: exp dir name) adds a second row.
    code, _, err = report_in_process(capsys, experiment, results_md, "--no_tsne")
    assert code == 0, err
    assert [r[0] for r in table_rows(results_md.read_text())] == ["row1", "ecapa_run"]


def test_report_tolerates_missing_config_and_time(experiment, tmp_path, capsys):
    (experiment["exp"] / "config.yaml").unlink()
    (experiment["exp"] / "train_time").unlink()
    results_md = tmp_path / "R.md"
    code, _, err = report_in_process(capsys, experiment, results_md, "--no_tsne", "--name", "bare")
    assert code == 0, err
    assert "config.yaml: not found" in err and "train_time: not found" in err
    row = table_rows(results_md.read_text())[0]
    assert row[2] == "?" and row[6] == "?"


def test_report_missing_scores_names_file(experiment, tmp_path, capsys):
    (experiment["exp"] / "scores" / "test.cosine.score").unlink()
    code, _, err = report_in_process(capsys, experiment, tmp_path / "R.md", "--no_tsne")
    assert code == 1
    assert "test.cosine.score: score file not found" in err
    assert not (tmp_path / "R.md").exists()


def test_report_sets_our_numbers_beside_the_papers(experiment, tmp_path, capsys):
    config = experiment["exp"] / "config.yaml"
    config.write_text(config.read_text() + "paper:\n  table: I\n  row: ECAPA-TDNN, Ours (eq.8)\n"
                      "  numbers: {vox1_O: {eer: 0.74, min_dcf: 0.096}, vox1_E: {eer: 0.83, min_dcf: 0.103}}\n")
    results_md = tmp_path / "R.md"
    code, _, err = report_in_process(capsys, experiment, results_md, "--no_tsne", "--name", "ours O",
                                     "--paper_trials", "vox1_O")
    assert code == 0, err
    code, _, err = report_in_process(capsys, experiment, results_md, "--no_tsne", "--name", "ours E",
                                     "--paper_trials", "vox1_E")
    assert code == 0, err
    eer = 100 * compute_eer(experiment["scores"], experiment["labels"])[0]
    dcf01 = compute_min_dcf(experiment["scores"], experiment["labels"], 0.01).min_dcf
    text = results_md.read_text()
    assert "| experiment | paper table | paper row | trials | P_target | EER % | paper EER % | minDCF |" in text
    rows = [r for r in table_rows(text) if r[0].startswith("ours")]
    assert [r[0] for r in rows] == ["ours O", "ours E", "ours O", "ours E"]  # the usual table, then the paper's
    assert rows[2] == ["ours O", "I", "ECAPA-TDNN, Ours (eq.8)", "vox1_O", "0.01", f"{eer:.2f}", "0.74",
                       f"{dcf01:.3f}", "0.096"]
    assert rows[3][3:] == ["vox1_E", "0.01", f"{eer:.2f}", "0.83", f"{dcf01:.3f}", "0.103"]

    code, _, err = report_in_process(capsys, experiment, results_md, "--no_tsne", "--paper_trials", "vox1_H")
    assert code == 1 and "config.yaml: paper.numbers has no {eer, min_dcf} for trials 'vox1_H' " \
                          "(given: vox1_E, vox1_O)" in err


def test_report_geometry_columns_follow_the_formulas(experiment, tmp_path, capsys):
    """``--geometry``: alignment over same-speaker pairs, uniformity over all pairs of the normalised
    test embeddings, in a table of its own columns."""
    import kaldiio as kio

    results_md = tmp_path / "R.md"
    code, _, err = report_in_process(capsys, experiment, results_md, "--no_tsne", "--geometry")
    assert code == 0, err
    header = [c.strip() for c in results_md.read_text().splitlines()[2].strip("|").split("|")]
    assert header == report.results_columns(report.GEOMETRY_CELLS)
    row = table_rows(results_md.read_text())[0]
    embeddings = dict(kio.load_scp(str(experiment["exp"] / "embeddings" / "test" / "xvector.scp")))
    keys = sorted(embeddings)
    unit = {k: embeddings[k] / np.linalg.norm(embeddings[k]) for k in keys}
    same, every = [], []
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            distance = float(np.sum((unit[a] - unit[b]) ** 2))
            every.append(np.exp(-2 * distance))
            if a.split("-")[0] == b.split("-")[0]:
                same.append(distance)
    assert row[6] == f"{np.mean(same):.3f}" and row[7] == f"{np.log(np.mean(every)):.3f}"  # after back-end, config, EER, 2 minDCFs
    code, _, err = report_in_process(capsys, {**experiment, "data": experiment["data"]}, results_md, "--no_tsne",
                                     "--geometry", "--embeddings", str(tmp_path / "absent.scp"))
    assert code == 1


def test_report_skips_the_tsne_of_fewer_than_four_embeddings(tmp_path, capsys):
    exp, data = tmp_path / "exp", tmp_path / "data"
    (exp / "embeddings").mkdir(parents=True)
    data.mkdir()
    embeddings = {"a-1": np.array([1.0, 0.0], np.float32), "a-2": np.array([0.9, 0.1], np.float32),
                  "b-1": np.array([0.0, 1.0], np.float32)}
    scp = exp / "embeddings" / "xvector.scp"
    kaldiio.save_ark(str(scp.with_suffix(".ark")), embeddings, scp=str(scp))
    (data / "utt2spk").write_text("a-1 a\na-2 a\nb-1 b\n")
    trials = [Trial("a-1", "a-2", True), Trial("a-1", "b-1", False)]
    write_trials(data / "trials", trials)
    write_scores(exp / "scores.txt", trials, np.array([0.99, 0.0]))
    code = report.main([str(a) for a in ("--exp_dir", exp, "--trials", data / "trials", "--scores", exp / "scores.txt",
                                         "--embeddings", scp, "--utt2spk", data / "utt2spk",
                                         "--results_md", tmp_path / "R.md")])
    err = capsys.readouterr().err
    assert code == 0 and f"no t-SNE plot: {scp} has 3 embeddings, t-SNE needs at least 4" in err
    assert table_rows((tmp_path / "R.md").read_text())[0][3] == "0.00" and not (exp / "tsne.png").exists()


def test_report_intra_class_columns_are_the_mean_cosine_distances(experiment, tmp_path, capsys):
    """``--intra_class``: mean 1 − cos over same-speaker pairs and over different-speaker pairs of the
    test embeddings, and their ratio, after the geometry columns when both are asked for."""
    import kaldiio as kio

    results_md = tmp_path / "R.md"
    code, _, err = report_in_process(capsys, experiment, results_md, "--no_tsne", "--geometry", "--intra_class")
    assert code == 0, err
    header = [c.strip() for c in results_md.read_text().splitlines()[2].strip("|").split("|")]
    assert header == report.COLUMNS[:6] + report.GEOMETRY_CELLS + report.INTRA_CLASS_CELLS + report.COLUMNS[6:]
    row = table_rows(results_md.read_text())[0]
    embeddings = dict(kio.load_scp(str(experiment["exp"] / "embeddings" / "test" / "xvector.scp")))
    keys = sorted(embeddings)
    within, between = [], []
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            x, y = embeddings[a].astype(np.float64), embeddings[b].astype(np.float64)
            distance = 1.0 - float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y)))
            (within if a.split("-")[0] == b.split("-")[0] else between).append(distance)
    assert row[8:11] == [f"{np.mean(within):.3f}", f"{np.mean(between):.3f}",
                         f"{np.mean(within) / np.mean(between):.3f}"]
    assert float(row[10]) < 1.0  # the fixture's speakers form clusters
