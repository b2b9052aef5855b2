#!/usr/bin/env bash
# Usage: combine_data.sh [--skip-fix] <dest> <src1> <src2> ...
# Writes the union of data dirs to <dest> (files present in all of them; ids must not collide).
# Thin wrapper of `python -m wespeaker_like.bin.data_dir combine` (--help for details). Uses the
# package on PYTHONPATH, falling back to the checkout this script belongs to.
root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$root"
exec "${PYTHON:-python3}" -m wespeaker_like.bin.data_dir combine "$@"
