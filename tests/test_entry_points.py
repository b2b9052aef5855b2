"""Every wespeaker_like.bin script goes through bin/_entry.py: one error line, exit 1, both spellings."""

from __future__ import annotations

import importlib
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import wespeaker_like.bin
from conftest import ROOT, repo_env
from wespeaker_like.bin._entry import ArgumentParser

SCRIPTS = sorted(m.name for m in pkgutil.iter_modules(wespeaker_like.bin.__path__) if not m.name.startswith("_"))


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_script_main_is_wrapped_and_repeats_no_error_tail(name):
    module = importlib.import_module(f"wespeaker_like.bin.{name}")
    assert getattr(module.main, "entry_prog", None) == name
    source = Path(module.__file__).read_text()
    assert not re.search(r"except InputError.*\n(.*\n){0,2}\s+return 1", source)  # the wrapper's job
    assert "argparse.ArgumentParser(" not in source


@pytest.fixture
def bad_inputs(tmp_path):
    """A data dir whose utt2spk line 2 lacks the speaker, and other files with a bad line 2."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "wav.scp").write_text("u1 a.wav\nu2 b.wav\n")
    (data / "utt2spk").write_text("u1 s1\nu2\n")
    (data / "feats.scp").write_text(f"u1 {tmp_path}/f.ark:5\nu2 {tmp_path}/f.ark:9\n")
    (tmp_path / "xvector.scp").write_text(f"u1 {tmp_path}/x.ark:5\nu2 cat {tmp_path}/x.ark |\n")
    (tmp_path / "md5s").write_text(f"{'0' * 32}  a.tar.gz\nnot-a-checksum\n")
    (tmp_path / "trials").write_text("u1 u2 target\n")
    return tmp_path


# (script, arguments with {tmp} for the fixture dir, file named in the error, its line)
CASES = [
    ("data_dir", ["validate", "{tmp}/data"], "data/utt2spk", 2),
    ("score", ["--embeddings", "{tmp}/xvector.scp", "--trials", "{tmp}/trials", "--scores", "{tmp}/s"],
     "xvector.scp", 2),
    ("make_features", ["--data_dir", "{tmp}/data", "--feat_dir", "{tmp}/f", "--job", "1"], "data/utt2spk", 2),
    ("extract", ["--exp_dir", "{tmp}/exp", "--data_dir", "{tmp}/data", "--out_dir", "{tmp}/x", "--job", "1"],
     "data/utt2spk", 2),
    ("augment_data_dir", ["--src", "{tmp}/data", "--out", "{tmp}/aug", "--audio_dir", "{tmp}/audio",
                          "--types", "noise", "--noise", "{tmp}/noise"], "data/utt2spk", 2),
    ("speed_perturb_data_dir", ["--src", "{tmp}/data", "--out", "{tmp}/sp", "--audio_dir", "{tmp}/audio"],
     "data/utt2spk", 2),
    ("train", ["--config", str(ROOT / "tests/conf/tiny_ecapa.yaml"), "--train_data", "{tmp}/data",
               "--exp_dir", "{tmp}/exp"], "data/utt2spk", 2),
    ("download_corpus", ["speechocean762", "--corpus_dir", "{tmp}/corpus", "--checksums", "{tmp}/md5s"],
     "md5s", 2),
    ("prepare_corpus", ["speechocean762", "--src", "{tmp}/nowhere", "--out", "{tmp}/prep"], "nowhere", None),
    ("make_noise_resources", ["--src_dir", "{tmp}/nowhere", "--out_dir", "{tmp}/nr"], "nowhere/noise", None),
    ("report", ["--exp_dir", "{tmp}/nowhere", "--trials", "{tmp}/trials"], "nowhere", None),
    ("infer", ["--model", "{tmp}/nowhere", "compare", "{tmp}/a.wav", "{tmp}/b.wav"], "nowhere", None),
    ("export", ["--model", "{tmp}/nowhere", "--format", "torchscript"], "nowhere/config.yaml", None),
    ("mix_diagnostic", ["--vae_exp", "{tmp}/nowhere", "--data_dir", "{tmp}/data", "--out", "{tmp}/m.json"],
     "nowhere/config.yaml", None),
]


def test_cases_cover_every_script_with_input_files():
    assert {case[0] for case in CASES} == set(SCRIPTS) - {"simulate_rirs"}  # it reads no input file


def _dashed(argv):
    return [arg.replace("_", "-") if arg.startswith("--") else arg for arg in argv]


@pytest.mark.parametrize("spelling", ["underscore", "dash"])
@pytest.mark.parametrize("name, argv, where, line", CASES, ids=[case[0] for case in CASES])
def test_user_error_is_one_line_prog_path_line_message(bad_inputs, capsys, name, argv, where, line, spelling):
    module = importlib.import_module(f"wespeaker_like.bin.{name}")
    argv = [arg.format(tmp=bad_inputs) for arg in argv]
    if spelling == "dash":
        argv = _dashed(argv)
    assert module.main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    location = re.escape(f"{bad_inputs}/{where}") + (f":{line}" if line else "")
    assert re.fullmatch(rf"{name}: {location}: \S.*", err), err


def test_a_script_run_as_a_program_prints_no_traceback(bad_inputs):
    proc = subprocess.run([sys.executable, "-m", "wespeaker_like.bin.data_dir", "validate", f"{bad_inputs}/data"],
                          capture_output=True, text=True, env=repo_env(), cwd=ROOT, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr == f"data_dir: {bad_inputs}/data/utt2spk:2: expected '<key> <value>', got 'u2'\n"


def test_parser_takes_both_spellings_of_every_long_option():
    parser = ArgumentParser(prog="x")
    parser.add_argument("--num_jobs", type=int)
    parser.add_argument("--feat-dir")
    parser.add_argument("--seed", type=int)
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("run").add_argument("--max_len", type=int)
    args = parser.parse_args(["--num-jobs", "3", "--feat_dir=f", "--seed", "1", "run", "--max-len=7"])
    assert (args.num_jobs, args.feat_dir, args.seed, args.max_len) == (3, "f", 1, 7)
    args = parser.parse_args(["--num_jobs=4", "--feat-dir", "g", "run", "--max_len", "8"])
    assert (args.num_jobs, args.feat_dir, args.max_len) == (4, "g", 8)
    with pytest.raises(SystemExit):
        parser.parse_args(["--num__jobs", "1"])
