#!/usr/bin/env bash
# Paper 002 mini proof on speechocean762 (issue 14): self-supervised AP, i-AP and l-AP (alpha 0.5,
# waveaug + cepsaug, same budget and seed) on v1's data dirs: raw audio of data/train, augmented on
# the fly with data/rirs and data/noise_res. Training labels are unused. Run v1's stages 0-3 first
# with --raw_audio true (they make data/train, data/test, data/train_clean and the resources).
#
#   bash egs/speechocean762/ssl_ap/run.sh --data egs/speechocean762/v1/data [--configs "ap lap_a0.5"]
#
# Stage 4 first trains the VAE (conf/vae.yaml -> exp/vae) when a configured row needs it (lap_*),
# then each row runs v1's stages 4-7 (training, embeddings, cosine scoring, report); a lap row gets
# the VAE through init_from (a derived config exp/<row>.yaml that includes conf/<row>.yaml).
# Stage 8: the Fig. 6 diagnostic (distance of i-mix / l-mix samples from the line between their two
# inputs in MFCC space) on data/test with the trained VAE -> exp/mix_diagnostic.json.
set -euo pipefail
recipe_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$recipe_dir/../v1/path.sh"

stage=4
stop_stage=8
data=$recipe_dir/../v1/data
exp_root=$recipe_dir/exp
configs="ap iap_a0.5 lap_a0.5"   # conf/<name>.yaml, one experiment each
results_md=$recipe_dir/RESULTS.md
nj=2
diagnostic_alpha=0.5
diagnostic_pairs=256
help_message="Usage: $0 [--stage N] [--stop-stage N] [--data DIR] [--exp_root DIR] [--configs \"a b\"] [--results_md FILE]"
. "$WESPEAKER_LIKE_ROOT/tools/parse_options.sh"
data=$(cd "$data" && pwd)
mkdir -p "$exp_root"
exp_root=$(cd "$exp_root" && pwd)
vae_exp=$exp_root/vae

needs_vae=false
for name in $configs; do case $name in lap*) needs_vae=true ;; esac; done
if [ $stage -le 4 ] && [ $stop_stage -ge 4 ] && { $needs_vae || [ $stop_stage -ge 8 ]; }; then
  echo "$0: VAE pre-training (conf/vae.yaml -> $vae_exp)"
  train_launch.sh "$recipe_dir/conf/vae.yaml" "$data/train" "$vae_exp" 0 1
fi

for name in $configs; do
  config=$recipe_dir/conf/$name.yaml
  case $name in
    lap*)
      config=$exp_root/$name.yaml
      printf 'include: %s\ninit_from: {path: %s}\n' "$recipe_dir/conf/$name.yaml" "$vae_exp" > "$config" ;;
  esac
  bash "$recipe_dir/../v1/run.sh" --stage "$stage" --stop-stage "$(( stop_stage < 7 ? stop_stage : 7 ))" \
    --raw_audio true --config "$config" --exp "$exp_root/$name" --data "$data" --nj "$nj" \
    --results_md "$results_md" --report_stats w,b,uniform --backends cosine --calibrate false
done

if [ $stage -le 8 ] && [ $stop_stage -ge 8 ]; then
  python3 -m wespeaker_like.bin.mix_diagnostic --vae_exp "$vae_exp" --data_dir "$data/test" \
    --out "$exp_root/mix_diagnostic.json" --alpha "$diagnostic_alpha" --num_pairs "$diagnostic_pairs"
fi
