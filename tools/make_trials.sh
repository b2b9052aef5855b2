#!/usr/bin/env bash
# Usage: make_trials.sh --seed <s> --num-target <n> --num-nontarget <n> <data-dir> <trials>
# Draws a reproducible '<enroll> <test> target|nontarget' list from the data dir's utt2spk.
# Thin wrapper of `python -m wespeaker_like.bin.data_dir make_trials` (--help for details). Uses the
# package on PYTHONPATH, falling back to the checkout this script belongs to.
root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$root"
exec "${PYTHON:-python3}" -m wespeaker_like.bin.data_dir make_trials "$@"
