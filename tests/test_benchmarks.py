"""The benchmark scripts that CI runs in a smoke mode, so that they never rot."""

import json
import subprocess

import numpy as np
import soundfile

from conftest import ROOT, repo_env
from wespeaker_like.data.kaldi_dir import DataDir


def test_gpu_check_smoke_runs_every_row(tmp_path):
    """benchmarks/gpu_check.sh --smoke on the CPU: every row of the GPU table runs (narrow models, a
    batch of 2) and is written to results.json / results.md; the figures mean nothing here."""
    rng = np.random.default_rng(0)
    wavs, utt2spk = {}, {}
    for spk in range(2):
        for k in range(2):
            utt = f"spk{spk}-utt{k}"
            path = tmp_path / "audio" / f"{utt}.wav"
            path.parent.mkdir(exist_ok=True)
            soundfile.write(str(path), rng.normal(0, 0.1, 16000).astype(np.float32), 16000)
            wavs[utt], utt2spk[utt] = str(path), f"spk{spk}"
    DataDir({"wav.scp": wavs, "utt2spk": utt2spk}).save(tmp_path / "data")
    out = tmp_path / "out"
    subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), str(out), "--smoke", "--time-limit", "1e9",
                    "--train-data", str(tmp_path / "data")], check=True, env=repo_env(), timeout=900)
    result = json.loads((out / "results.json").read_text())
    rows = result["rows"]
    assert [r for r in rows if r["status"] != "ok"] == []
    train = [r for r in rows if r["kind"] == "train"]
    # eager: 2 models x 3 precisions, plus channels-last for the 2-D CNN (ResNet34); compiled: fp32 only
    assert len(train) == (3 + 6) + (1 + 2)
    assert {(r["precision"], r["compile"], r["channels_last"]) for r in train if r["model"] == "resnet34_wespeaker"} \
        == {(p, False, cl) for p in ("fp32", "fp16", "bf16") for cl in (False, True)} \
        | {("fp32", True, False), ("fp32", True, True)}
    assert all(r["samples_per_s"] > 0 and r["peak_memory_mb"] > 0 for r in train)
    assert len([r for r in rows if r["kind"] == "extract" and r["rtf"] > 0]) == 4
    loader = [r for r in rows if r["kind"] == "loader"]
    assert [r["model"] for r in loader] == ["(loader alone)"] + ["ecapa_c512"] * 2 + ["resnet34_wespeaker"] * 2
    table = (out / "results.md").read_text()
    assert table.count("| ok |") == len(rows) and "### Training step fed by the data loader" in table


def test_bench_models_and_metrics_smoke():
    """The side-by-side scripts without a WeSpeaker tree (CI has none), at tiny sizes: they run and print
    their table rows, the FLOP count and the metrics."""
    bench = ROOT / "benchmarks"
    out = subprocess.run(["python3", str(bench / "bench_models.py"), "--models", "ecapa_c512,campplus", "--batch", "2",
                          "--frames", "40", "--classes", "20", "--iters", "1", "--warmup", "0", "--extract-batch", "1",
                          "--extract-seconds", "0.5", "--flops"],
                         check=True, env=repo_env(), capture_output=True, text=True, timeout=300).stdout
    rows = [line for line in out.splitlines() if line.startswith("| ecapa_c512 |") or line.startswith("| campplus |")]
    assert len(rows) == 2 and "6.19 M" in rows[0] and "7.18 M" in rows[1]
    assert out.count("training step: ours ") == 2 and "GFLOP per CPU second" in out
    out = subprocess.run(["python3", str(bench / "bench_metrics.py"), "--trials", "20000", "--repeats", "1"],
                         check=True, env=repo_env(), capture_output=True, text=True, timeout=300).stdout
    assert "| ours |" in out
