#!/usr/bin/env bash
# Stage 5 of the recipes: embeddings of each data dir into <exp>/embeddings/<set>/xvector.scp, in
# <nj> jobs through $extract_cmd (default run.pl), from feats.scp or the audio (<source>).
#
# Usage: extract_sets.sh <exp> <data> <nj> <device: cpu|cuda|auto> <source: feats|audio|auto> <set> [<set> ...]
set -euo pipefail
if [ $# -lt 6 ]; then
  sed -n '2,5p' "$0" >&2
  exit 1
fi
exp=$1; data=$2; nj=$3; device=$4; source=$5; shift 5
extract_cmd=${extract_cmd:-run.pl}
for set in "$@"; do
  $extract_cmd JOB=1:$nj "$exp/embeddings/$set/log/extract.JOB.log" \
    python3 -m wespeaker_like.bin.extract --exp_dir "$exp" --data_dir "$data/$set" \
      --out_dir "$exp/embeddings/$set" --job JOB --num_jobs "$nj" --device "$device" --source "$source"
  python3 -m wespeaker_like.bin.extract --exp_dir "$exp" --data_dir "$data/$set" \
    --out_dir "$exp/embeddings/$set" --num_jobs "$nj" --source "$source" --merge
done
