#!/usr/bin/env bash
# Usage: spk2utt_to_utt2spk.pl [<spk2utt>] > <utt2spk>
# Reads spk2utt (a file or stdin), writes utt2spk (C-sorted) to stdout.
# Thin wrapper of `python -m wespeaker_like.bin.data_dir spk2utt_to_utt2spk` (--help for details). Uses the
# package on PYTHONPATH, falling back to the checkout this script belongs to.
root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$root"
exec "${PYTHON:-python3}" -m wespeaker_like.bin.data_dir spk2utt_to_utt2spk "$@"
