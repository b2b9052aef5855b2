"""tools/parse_options.sh: Kaldi-style options for recipe scripts."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

PARSE_OPTIONS = Path(__file__).resolve().parents[1] / "tools" / "parse_options.sh"

SCRIPT = """#!/bin/bash
set -euo pipefail
stage=0
stop_stage=100
use_gpu=true
config=conf/ecapa.yaml
note=
lr=0.1
help_message="Usage: $0 [options] <data-dir>"
positional_usage="<data-dir>"
. {parse_options}
printf 'stage=%s\\nstop_stage=%s\\nuse_gpu=%s\\nconfig=%s\\nnote=%s\\n' \\
    "$stage" "$stop_stage" "$use_gpu" "$config" "$note"
for arg in "$@"; do printf 'arg=%s\\n' "$arg"; done
echo "leaked=$(compgen -A variable __po_ | tr '\\n' ' ')$(compgen -A function __po_ | tr '\\n' ' ')"
"""


@pytest.fixture()
def script(tmp_path: Path) -> Path:
    path = tmp_path / "run.sh"
    path.write_text(SCRIPT.format(parse_options=PARSE_OPTIONS))
    return path


def run(script: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(script), *args], capture_output=True, text=True, timeout=30)


def values(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stderr
    out = {}
    for line in result.stdout.splitlines():
        key, _, value = line.partition("=")
        if key == "arg":
            out.setdefault("args", []).append(value)
        else:
            out[key] = value
    return out


def test_defaults_are_kept_without_options(script):
    got = values(run(script))
    assert got["stage"] == "0" and got["stop_stage"] == "100" and got["config"] == "conf/ecapa.yaml"
    assert "args" not in got


def test_dashed_underscored_and_equals_spellings(script):
    got = values(run(script, "--stop-stage", "4", "--stage=2", "--use_gpu", "false"))
    assert (got["stop_stage"], got["stage"], got["use_gpu"]) == ("4", "2", "false")
    assert values(run(script, "--stop_stage=7"))["stop_stage"] == "7"


def test_config_is_an_ordinary_option(script):
    got = values(run(script, "--config", "conf/resnet.yaml"))
    assert got["config"] == "conf/resnet.yaml"


def test_values_with_spaces_and_shell_characters_are_taken_literally(script):
    got = values(run(script, "--note", "a  b $HOME * ; `x`", "--config=x=y"))
    assert got["note"] == "a  b $HOME * ; `x`"
    assert got["config"] == "x=y"


def test_empty_default_accepts_a_value_and_empty_value(script):
    assert values(run(script, "--note", "hello"))["note"] == "hello"
    assert values(run(script, "--note", "hello", "--note", ""))["note"] == ""


def test_positional_arguments_are_left_in_place(script):
    got = values(run(script, "--stage", "3", "data/train", "two words", "-x"))
    assert got["stage"] == "3"
    assert got["args"] == ["data/train", "two words", "-x"]


def test_option_after_a_positional_argument_is_an_error(script):
    result = run(script, "--stage", "3", "data/train", "--stage", "9")
    assert result.returncode == 1 and result.stdout == ""
    assert "option --stage comes after the positional argument 'data/train'; put options first" in result.stderr


def test_positional_argument_is_an_error_without_positional_usage(tmp_path):
    path = tmp_path / "s.sh"
    path.write_text(f"stage=0\n. {PARSE_OPTIONS}\necho body\n")
    result = run(path, "--stage", "2", "extra")
    assert result.returncode == 1 and result.stdout == ""
    assert "unexpected argument 'extra': this script takes only options" in result.stderr


@pytest.mark.parametrize("option, value, expected", [
    ("--stage", "abc", "an integer"), ("--stage", "1.5", "an integer"), ("--stage", "", "an integer"),
    ("--stop-stage", "4x", "an integer"), ("--lr", "fast", "a number"), ("--lr", "1e-3x", "a number")])
def test_numeric_option_rejects_other_values(script, option, value, expected):
    result = run(script, f"{option}={value}")
    assert result.returncode == 1 and result.stdout == ""
    assert f"option {option} expects {expected}, got '{value}'" in result.stderr


def test_numeric_options_accept_numbers(script):
    got = values(run(script, "--stage", "-1", "--stop-stage=12", "--lr", "2e-3"))
    assert (got["stage"], got["stop_stage"]) == ("-1", "12")
    assert values(run(script, "--lr", "3"))["stage"] == "0"


def test_double_dash_ends_options(script):
    got = values(run(script, "--stage", "1", "--", "--stop-stage", "2"))
    assert got["stage"] == "1" and got["stop_stage"] == "100"
    assert got["args"] == ["--stop-stage", "2"]


def test_internal_names_do_not_leak(script):
    assert values(run(script, "--stage", "1"))["leaked"] == ""


def test_unknown_option_is_an_error(script):
    result = run(script, "--stgae", "3")
    assert result.returncode == 1
    assert "invalid option --stgae" in result.stderr and "'stgae'" in result.stderr
    assert result.stdout == ""


def test_missing_value_is_an_error(script):
    result = run(script, "--stage")
    assert result.returncode == 1
    assert "option --stage needs a value" in result.stderr


@pytest.mark.parametrize("value", ["yes", "1", "True", ""])
def test_boolean_option_rejects_other_values(script, value):
    result = run(script, "--use-gpu", value)
    assert result.returncode == 1
    assert "expects true or false" in result.stderr


def test_bad_option_names_are_errors(script):
    for bad in ("--1abc", "--a.b", "--__po_name"):
        result = run(script, bad, "x")
        assert result.returncode == 1, bad
        assert "invalid option" in result.stderr


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_prints_message_and_current_values(script, flag):
    result = run(script, "--stage", "5", flag, "--never-parsed", "x")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Usage: ") and lines[0].endswith("[options] <data-dir>")
    assert "  --stage 5" in lines
    assert "  --stop-stage 100" in lines
    assert "  --use-gpu true" in lines
    assert "  --config conf/ecapa.yaml" in lines
    assert '  --note ""' in lines
    assert not any("help-message" in line or "PATH" in line for line in lines)
    assert "stage=" not in result.stdout  # exited before the script body


def test_help_without_help_message(tmp_path):
    path = tmp_path / "s.sh"
    path.write_text(f"nj=4\n. {PARSE_OPTIONS}\necho body\n")
    result = run(path, "--help")
    assert result.returncode == 0
    assert result.stdout.splitlines()[0] == "Options (current values):"
    assert "  --nj 4" in result.stdout.splitlines()


def test_array_variables_cannot_be_set(tmp_path):
    path = tmp_path / "s.sh"
    path.write_text(f"sets=(a b)\n. {PARSE_OPTIONS}\necho body\n")
    result = run(path, "--sets", "c")
    assert result.returncode == 1
    assert "array" in result.stderr


def test_running_instead_of_sourcing_is_an_error():
    result = subprocess.run(["bash", str(PARSE_OPTIONS), "--stage", "1"], capture_output=True, text=True)
    assert result.returncode == 1
    assert "source this file" in result.stderr


RECIPES = sorted((PARSE_OPTIONS.parents[1] / "egs").glob("*/*/run.sh"))


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda path: path.parent.parent.name)
def test_recipe_rejects_bad_stage_and_stray_arguments_before_doing_anything(recipe, tmp_path):
    from conftest import repo_env

    safe = ["--data", str(tmp_path / "data")]
    if "\nexp=" in recipe.read_text():
        safe += ["--exp", str(tmp_path / "exp")]
    bad_stage = subprocess.run(["bash", str(recipe), *safe, "--stage=abc"], capture_output=True, text=True,
                               timeout=60, env=repo_env(), cwd=tmp_path)
    assert bad_stage.returncode == 1, bad_stage.stderr
    assert "option --stage expects an integer, got 'abc'" in bad_stage.stderr
    assert "integer expression expected" not in bad_stage.stderr
    stray = subprocess.run(["bash", str(recipe), *safe, "--stop-stage", "-1", "extra", "--stage", "9"],
                           capture_output=True, text=True, timeout=60, env=repo_env(), cwd=tmp_path)
    assert stray.returncode == 1, stray.stderr
    assert "unexpected argument 'extra'" in stray.stderr
    assert list(tmp_path.iterdir()) == []  # nothing was run or created
