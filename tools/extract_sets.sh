#!/usr/bin/env bash
# Stage 5 of the recipes: embeddings of each data dir into <exp>/embeddings/<set>/xvector.scp, in
# <nj> jobs through $extract_cmd (default run.pl), from feats.scp or the audio (<source>).
# With --branch x,x_s,x_d (a decoupling block's outputs; x alone for a one-output network), each
# branch into <exp>/embeddings/<set>/<branch>/xvector.scp (the layout of report.py's --probe_*), all
# from one pass through the network.
#
# Usage: extract_sets.sh [--branch B[,B...]] <exp> <data> <nj> <device: cpu|cuda|auto> <source: feats|audio|auto> <set> [<set> ...]
set -euo pipefail
branch=()
log_name=extract
if [ "${1:-}" = --branch ]; then
  branch=(--branch "$2"); log_name=extract_branches; shift 2
fi
if [ $# -lt 6 ]; then
  sed -n '2,8p' "$0" >&2
  exit 1
fi
exp=$1; data=$2; nj=$3; device=$4; source=$5; shift 5
extract_cmd=${extract_cmd:-run.pl}
for set in "$@"; do
  out=$exp/embeddings/$set
  $extract_cmd JOB=1:$nj "$out/log/$log_name.JOB.log" \
    python3 -m wespeaker_like.bin.extract --exp_dir "$exp" --data_dir "$data/$set" \
      --out_dir "$out" --job JOB --num_jobs "$nj" --device "$device" --source "$source" "${branch[@]}"
  python3 -m wespeaker_like.bin.extract --exp_dir "$exp" --data_dir "$data/$set" \
    --out_dir "$out" --num_jobs "$nj" --source "$source" --merge "${branch[@]}"
done
