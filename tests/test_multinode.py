"""Multi-node training: one torchrun per node through a launcher, c10d rendezvous on node 1."""

import os
import socket
import subprocess

from conftest import ROOT, TINY_TRAIN_CONFIG, make_feature_data_dir, repo_env
from test_launchers import FAKE_SBATCH, TEST_SLURM_CONF, launch

FAKE_TORCHRUN = """#!/bin/bash
# Fake torchrun: records its arguments, one per line, in a file per invocation.
printf '%s\\n' "$@" > "$FAKE_TORCHRUN_DIR/torchrun.$$"
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_nodes_on_one_machine_train_together_through_run_pl(tmp_path):
    data = make_feature_data_dir(tmp_path / "data")
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY_TRAIN_CONFIG)
    exp = tmp_path / "exp"
    exp.mkdir()
    env = dict(repo_env(), RDZV_HOST="127.0.0.1", RDZV_PORT=str(free_port()), RDZV_WAIT="120")
    proc = subprocess.run(
        ["run.pl", "--max-jobs-run", "2", "JOB=1:2", str(exp / "log/train.node.JOB.log"),
         "torchrun_node.sh", "JOB", "2", "1", str(exp / "rendezvous"), "-m", "wespeaker_like.bin.train",
         "--config", str(config), "--train_data", str(data), "--exp_dir", str(exp),
         "--set", "trainer.epochs=2", "trainer.device=cpu"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=400)
    logs = "".join((exp / f"log/train.node.{n}.log").read_text() for n in (1, 2) if (exp / f"log/train.node.{n}.log").exists())
    assert proc.returncode == 0, proc.stderr[-2000:] + logs[-3000:]
    assert "node 1 of 2, 1 processes, c10d rendezvous at 127.0.0.1:" in logs
    assert "node 2 of 2" in logs
    log = (exp / "train.log").read_text()
    assert "2 ranks" in log and "parameters agree across 2 ranks" in log
    assert (exp / "final_model.pt").is_file()


def test_slurm_pl_launches_one_torchrun_per_node_with_the_rendezvous(tmp_path):
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    for name, text in (("sbatch", FAKE_SBATCH), ("torchrun", FAKE_TORCHRUN)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    (tmp_path / "slurm.conf").write_text(TEST_SLURM_CONF)
    env = {"PATH": f"{bin_dir}:{ROOT / 'tools'}:{os.environ['PATH']}", "FAKE_RECORD": str(bin_dir / "record"),
           "FAKE_TORCHRUN_DIR": str(bin_dir), "RDZV_HOST": "node-a"}
    result = launch(tmp_path, "slurm.pl", "--config", "slurm.conf", "--gpu", "4", "--max-jobs-run", "2",
                    "JOB=1:2", "exp/log/train.node.JOB.log", "torchrun_node.sh", "JOB", "2", "4",
                    "exp/rendezvous", "-m", "wespeaker_like.bin.train", "--exp_dir", "exp", env=env)
    assert result.returncode == 0, result.stderr
    assert "--array=1-2%2" in (bin_dir / "record").read_text().splitlines()
    runs = sorted(path.read_text().splitlines() for path in bin_dir.glob("torchrun.*"))
    assert len(runs) == 2
    common = ["--nnodes=2", "--nproc_per_node=4", "--rdzv_backend=c10d", "--rdzv_endpoint=node-a:29400",
              "--rdzv_id=exp"]
    assert runs == [common + ["--rdzv_conf=is_host=0", "-m", "wespeaker_like.bin.train", "--exp_dir", "exp"],
                    common + ["--rdzv_conf=is_host=1", "-m", "wespeaker_like.bin.train", "--exp_dir", "exp"]]
