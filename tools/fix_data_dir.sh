#!/usr/bin/env bash
# Usage: fix_data_dir.sh <data-dir>
# Keeps the utterances present in every file, sorts, regenerates spk2utt; old files go to <data-dir>/.backup/.
# Thin wrapper of `python -m wespeaker_like.bin.data_dir fix` (--help for details). Uses the
# package on PYTHONPATH, falling back to the checkout this script belongs to.
root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$root"
exec "${PYTHON:-python3}" -m wespeaker_like.bin.data_dir fix "$@"
