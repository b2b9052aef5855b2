"""Packaging: tools/install.sh on a plain and on an externally managed (PEP 668) Python, path.sh's
virtual environment, and `pip install` of pyproject.toml with its console command."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import ROOT


def install_sh(tmp_path: Path, python: str, marker: bool, *args: str) -> subprocess.CompletedProcess:
    stdlib = tmp_path / "stdlib"
    stdlib.mkdir(exist_ok=True)
    if marker:
        (stdlib / "EXTERNALLY-MANAGED").write_text("[externally-managed]\nError=use a venv\n")
    env = dict(os.environ, PYTHON=python, WESPEAKER_LIKE_STDLIB=str(stdlib), WESPEAKER_LIKE_VENV=str(tmp_path / "venv"))
    env.pop("VIRTUAL_ENV", None)
    return subprocess.run(["bash", str(ROOT / "tools" / "install.sh"), *args], env=env, capture_output=True,
                          text=True, timeout=300)


def pins(name: str) -> list:
    lines = (line.split("#")[0].strip() for line in (ROOT / name).read_text().splitlines())
    return [line for line in lines if line]


def test_plain_python_missing_packages_are_installed_with_pip(tmp_path):
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "bare")], check=True)
    bare = str(tmp_path / "bare" / "bin" / "python")
    done = install_sh(tmp_path, bare, False, "--dry-run")
    assert done.returncode == 0, done.stderr
    assert (f"would run: {bare} -m pip install --quiet --disable-pip-version-check -r {ROOT}/requirements.txt "
            f"-r {ROOT}/requirements-test.txt") in done.stdout
    assert "externally managed" not in done.stdout and not (tmp_path / "venv").exists()
    done = install_sh(tmp_path, sys.executable, False)  # this Python has everything: nothing to do
    assert done.returncode == 0 and "installing" not in done.stdout, done.stdout + done.stderr


def test_externally_managed_python_gets_a_venv_that_path_sh_activates(tmp_path):
    done = install_sh(tmp_path, sys.executable, True, "--dry-run")
    venv_python = tmp_path / "venv" / "bin" / "python"
    assert f"would run: {sys.executable} -m venv --system-site-packages {tmp_path / 'venv'}" in done.stdout
    assert f"would run: {venv_python} -m pip install" in done.stdout and not venv_python.exists()

    done = install_sh(tmp_path, sys.executable, True)
    assert done.returncode == 0, done.stderr
    assert "is externally managed (PEP 668)" in done.stdout and venv_python.is_file()
    assert "installing" not in done.stdout  # the system's packages are visible in the venv
    again = install_sh(tmp_path, sys.executable, True)
    assert again.returncode == 0 and again.stdout == "", again.stdout  # idempotent: the venv is reused

    env = dict(os.environ, WESPEAKER_LIKE_VENV=str(tmp_path / "venv"))
    env.pop("VIRTUAL_ENV", None)
    shell = subprocess.run(["bash", "-c", f'. "{ROOT}/path.sh" && command -v python && python -c '
                            '"import sys, wespeaker_like; print(sys.prefix, wespeaker_like.__file__)"'],
                           env=env, capture_output=True, text=True, check=True)
    which, prefix_and_file = shell.stdout.splitlines()
    assert which == str(tmp_path / "venv" / "bin" / "python")
    assert prefix_and_file == f"{tmp_path / 'venv'} {ROOT / 'wespeaker_like' / '__init__.py'}"


def test_pip_install_gives_the_package_its_pins_and_the_console_command(tmp_path):
    source = tmp_path / "src"
    shutil.copytree(ROOT / "wespeaker_like", source / "wespeaker_like",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "requirements.txt", "requirements-test.txt"):
        shutil.copy(ROOT / name, source / name)
    # Without a pip of its own the venv uses this Python's pip and setuptools (no download needed).
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(tmp_path / "venv")],
                   check=True)
    bin_dir = tmp_path / "venv" / "bin"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--disable-pip-version-check", str(source)], env=env, check=True, cwd=tmp_path,
                   capture_output=True)
    shutil.rmtree(source)  # the installed copy stands alone
    code = ("import importlib.metadata as m, wespeaker_like; print(wespeaker_like.__file__); "
            "print('|'.join(m.requires('wespeaker_like')))")
    shown = subprocess.run([str(bin_dir / "python"), "-c", code], env=env, cwd=tmp_path, capture_output=True,
                           text=True, check=True).stdout.splitlines()
    assert shown[0].startswith(str(tmp_path / "venv" / "lib"))
    requires = shown[1].split("|")
    assert [r for r in requires if "extra ==" not in r] == pins("requirements.txt")
    assert [r.split(";")[0].strip() for r in requires if "extra == \"test\"" in r] == pins("requirements-test.txt")
    helped = subprocess.run([str(bin_dir / "wespeaker-like-infer"), "--help"], env=env, cwd=tmp_path,
                            capture_output=True, text=True)
    assert helped.returncode == 0 and "{embed,compare}" in helped.stdout
