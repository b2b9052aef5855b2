#!/usr/bin/env bash
# Usage: utt2spk_to_spk2utt.pl [<utt2spk>] > <spk2utt>
# Reads utt2spk (a file or stdin), writes spk2utt (C-sorted) to stdout.
# Thin wrapper of `python -m wespeaker_like.bin.data_dir utt2spk_to_spk2utt` (--help for details). Uses the
# package on PYTHONPATH, falling back to the checkout this script belongs to.
root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$root"
exec "${PYTHON:-python3}" -m wespeaker_like.bin.data_dir utt2spk_to_spk2utt "$@"
