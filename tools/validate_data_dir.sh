#!/usr/bin/env bash
# Usage: validate_data_dir.sh [--no-wav] [--need <file>]... <data-dir>
# Checks that the files of a data dir agree, are sorted and spk2utt matches utt2spk; exit 1 naming the problem.
# Thin wrapper of `python -m wespeaker_like.bin.data_dir validate` (--help for details). Uses the
# package on PYTHONPATH, falling back to the checkout this script belongs to.
root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$root"
exec "${PYTHON:-python3}" -m wespeaker_like.bin.data_dir validate "$@"
