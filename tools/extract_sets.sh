#!/usr/bin/env bash
# Stage 5 of the recipes: embeddings of each data dir into <exp>/embeddings/<set>/xvector.scp, in
# <nj> jobs through $extract_cmd (default run.pl), from feats.scp or the audio (<source>).
# With --branch x|x_s|x_d (a decoupling block's outputs; x alone for a one-output network), that
# branch into <exp>/embeddings/<set>/<branch>/xvector.scp, the layout of report.py's --probe_*.
#
# Usage: extract_sets.sh [--branch B] <exp> <data> <nj> <device: cpu|cuda|auto> <source: feats|audio|auto> <set> [<set> ...]
set -euo pipefail
branch=()
if [ "${1:-}" = --branch ]; then
  branch=(--branch "$2"); shift 2
fi
if [ $# -lt 6 ]; then
  sed -n '2,7p' "$0" >&2
  exit 1
fi
exp=$1; data=$2; nj=$3; device=$4; source=$5; shift 5
extract_cmd=${extract_cmd:-run.pl}
for set in "$@"; do
  out=$exp/embeddings/$set${branch[1]:+/${branch[1]}}
  $extract_cmd JOB=1:$nj "$out/log/extract.JOB.log" \
    python3 -m wespeaker_like.bin.extract --exp_dir "$exp" --data_dir "$data/$set" \
      --out_dir "$out" --job JOB --num_jobs "$nj" --device "$device" --source "$source" "${branch[@]}"
  python3 -m wespeaker_like.bin.extract --exp_dir "$exp" --data_dir "$data/$set" \
    --out_dir "$out" --num_jobs "$nj" --source "$source" --merge "${branch[@]}"
done
