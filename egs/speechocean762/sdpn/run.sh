#!/usr/bin/env bash
# SDPN mini proof on speechocean762 (issue 11): stages 4-7 of the v1 recipe (training, embeddings,
# cosine scoring, report) for each row, on v1's data dirs: raw audio of data/train, augmented on the
# fly with data/rirs and data/noise_res. Training labels are unused. Run v1's stages 0-3 first with
# --raw_audio true (they make data/train, data/test, data/train_clean and the resources).
#
#   bash egs/speechocean762/sdpn/run.sh --data egs/speechocean762/v1/data [--configs "sdpn_mu0 dino"]
set -euo pipefail
recipe_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$recipe_dir/../v1/path.sh"

stage=4
stop_stage=7
data=$recipe_dir/../v1/data
exp_root=$recipe_dir/exp
configs="sdpn_mu0 sdpn_mu0.1 dino"   # conf/<name>.yaml, one experiment each, same budget and seed
results_md=$recipe_dir/RESULTS.md
nj=2
help_message="Usage: $0 [--stage N] [--stop-stage N] [--data DIR] [--exp_root DIR] [--configs \"a b\"] [--results_md FILE]"
. "$WESPEAKER_LIKE_ROOT/tools/parse_options.sh"
data=$(cd "$data" && pwd)

for name in $configs; do
  bash "$recipe_dir/../v1/run.sh" --stage "$stage" --stop-stage "$stop_stage" --raw_audio true \
    --config "$recipe_dir/conf/$name.yaml" --exp "$exp_root/$name" --data "$data" --nj "$nj" \
    --results_md "$results_md" --report_stats teacher_std,assign_entropy,protos_used --backends cosine --calibrate false
done
