"""Stage 7 disentanglement diagnostics: the Gaussian MI estimate against its closed form, the linear
device probe on separable and uninformative embeddings, and report.py's probe table and plot."""

import kaldiio
import numpy as np
import pytest

from test_report import experiment, png_size, report_in_process, table_rows  # noqa: F401  (fixture)
from wespeaker_like.bin.report import PROBE_COLUMNS
from wespeaker_like.scoring.disentanglement import gaussian_mutual_information, linear_probe_accuracy


def test_gaussian_mutual_information_matches_the_closed_form():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(50000, 3))
    rho = 0.6
    b = rho * a + np.sqrt(1 - rho ** 2) * rng.normal(size=(50000, 3))
    expected = -1.5 * np.log(1 - rho ** 2)  # 3 independent pairs, each −½ log(1 − ρ²)
    assert gaussian_mutual_information(a, b) == pytest.approx(expected, abs=0.01)
    assert gaussian_mutual_information(a, rng.normal(size=(50000, 2))) == pytest.approx(0.0, abs=2e-3)
    with pytest.raises(ValueError, match="same rows"):
        gaussian_mutual_information(a, b[:10])


def test_probe_reads_a_linearly_coded_label_and_not_noise():
    rng = np.random.default_rng(1)
    devices = np.array(["phone", "array", "tablet"])[rng.integers(0, 3, 600)]
    offset = {"phone": 0.0, "array": 6.0, "tablet": 12.0}  # 6 noise std apart: Bayes accuracy ~0.99
    x = rng.normal(size=(600, 8))
    coded = x.copy()
    coded[:, 2] += [offset[d] for d in devices]
    assert linear_probe_accuracy(coded[:400], devices[:400], coded[400:], devices[400:]) > 0.95
    chance = max(np.mean(devices[400:] == d) for d in offset)
    assert linear_probe_accuracy(x[:400], devices[:400], x[400:], devices[400:]) < chance + 0.1


def _write_branches(root, embeddings_by_branch):
    for branch, table in embeddings_by_branch.items():
        (root / branch).mkdir(parents=True)
        scp = root / branch / "xvector.scp"
        kaldiio.save_ark(str(scp.with_suffix(".ark")), table, scp=str(scp))


def test_report_writes_the_probe_row_and_the_device_tsne(experiment, tmp_path, capsys):  # noqa: F811
    rng = np.random.default_rng(2)
    utts = [f"utt{i:03d}" for i in range(120)]
    devices = {u: ["phone", "array"][i % 2] for i, u in enumerate(utts)}
    base = {u: rng.normal(size=6).astype(np.float32) for u in utts}
    coded = {u: v + np.float32(4.0 * (devices[u] == "phone")) for u, v in base.items()}
    for split, part in (("train", utts[:80]), ("test", utts[80:])):
        _write_branches(tmp_path / "probe" / split, {"x": {u: coded[u] for u in part},
                                                     "x_s": {u: base[u] for u in part},
                                                     "x_d": {u: coded[u] for u in part}})
    (tmp_path / "utt2dev").write_text("".join(f"{u} {d}\n" for u, d in devices.items()))
    probe_md = tmp_path / "DISENTANGLEMENT.md"
    code, out, _ = report_in_process(capsys, experiment, tmp_path / "RESULTS.md", "--probe_train",
                                     tmp_path / "probe" / "train", "--probe_test", tmp_path / "probe" / "test",
                                     "--probe_labels", tmp_path / "utt2dev", "--probe_md", probe_md,
                                     "--tsne_iterations", "250")
    assert code == 0
    (row,) = table_rows(probe_md.read_text())
    cells = dict(zip(PROBE_COLUMNS, row))
    assert float(cells["probe x"]) == 100.0 and float(cells["probe x_d"]) == 100.0
    assert float(cells["probe x_s"]) < 80.0 and float(cells["chance"]) == 50.0
    base_s = np.stack([base[u] for u in utts[80:]]).astype(np.float64)
    coded_d = np.stack([coded[u] for u in utts[80:]]).astype(np.float64)
    assert float(cells["MI(x_s; x_d) nats"]) == pytest.approx(gaussian_mutual_information(base_s, coded_d), abs=1e-3)
    assert png_size(experiment["exp"] / "tsne_device.png")[0] > 0
