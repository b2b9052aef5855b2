#!/usr/bin/env bash
# Stage 3 of the recipes: the config's features of each data dir, in <nj> jobs through $feat_cmd
# (default run.pl), merged into <data>/<set>/feats.scp. A rerun skips finished jobs.
#
# Usage: make_features_sets.sh <config.yaml> <data> <nj> <set> [<set> ...]
set -euo pipefail
if [ $# -lt 4 ]; then
  sed -n '2,5p' "$0" >&2
  exit 1
fi
config=$1; data=$2; nj=$3; shift 3
feat_cmd=${feat_cmd:-run.pl}
for set in "$@"; do
  $feat_cmd --num-threads 1 JOB=1:$nj "$data/$set/log/make_features.JOB.log" \
    python3 -m wespeaker_like.bin.make_features --config "$config" --data_dir "$data/$set" \
      --feat_dir "$data/$set/feats" --job JOB --num_jobs "$nj"
  python3 -m wespeaker_like.bin.make_features --config "$config" --data_dir "$data/$set" \
    --feat_dir "$data/$set/feats" --num_jobs "$nj" --merge
done
