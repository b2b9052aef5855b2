#!/usr/bin/env bash
# Usage: subset_data_dir.sh [--utt-list <file> | --spk-list <file> | --first <n> | --random <n> [--seed <s>]] <src> <dest>
# Copies the selected utterances (and their speakers) of a data dir into <dest>.
# Thin wrapper of `python -m wespeaker_like.bin.data_dir subset` (--help for details). Uses the
# package on PYTHONPATH, falling back to the checkout this script belongs to.
root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$root"
exec "${PYTHON:-python3}" -m wespeaker_like.bin.data_dir subset "$@"
