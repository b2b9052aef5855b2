#!/usr/bin/env bash
# Paper 001 (MINE + identity change) mini proof on speechocean762 (issue 13, item 5): stages 4-7 of
# the v1 recipe (training, embeddings, cosine scoring, report) for each row, on v1's data dirs: the
# raw audio of data/train, not augmented (the paper uses none). The encoders read a log-magnitude
# STFT and the decoder reconstructs a 64-band log-mel of the same crop, so training reads audio.
# Run v1's stages 0-3 first with --raw_audio true (they make data/train, data/test, data/train_clean).
# Stage 7 adds the mean within- and between-speaker cosine distances of the test embeddings and
# their ratio to each RESULTS.md row (report.py --intra_class).
#
#   bash egs/speechocean762/mine_ic/run.sh --data egs/speechocean762/v1/data [--configs "phase1_mi phase2_mi_ic"]
set -euo pipefail
recipe_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$recipe_dir/../v1/path.sh"

stage=4
stop_stage=7
data=$recipe_dir/../v1/data
exp_root=$recipe_dir/exp
configs="encoder_only phase1_mi phase2_mi_ic"   # conf/<name>.yaml, one experiment each, same budget and seed
results_md=$recipe_dir/RESULTS.md
nj=2
help_message="Usage: $0 [--stage N] [--stop-stage N] [--data DIR] [--exp_root DIR] [--configs \"a b\"] [--results_md FILE]"
. "$WESPEAKER_LIKE_ROOT/tools/parse_options.sh"
data=$(cd "$data" && pwd)

for name in $configs; do
  exp=$exp_root/$name
  if [ "$stage" -le 6 ]; then  # v1's training, embeddings (through the saved STFT front-end) and cosine scores
    bash "$recipe_dir/../v1/run.sh" --stage "$stage" --stop-stage "$(( stop_stage < 6 ? stop_stage : 6 ))" \
      --raw_audio true --config "$recipe_dir/conf/$name.yaml" --exp "$exp" --data "$data" --nj "$nj" \
      --backends cosine --calibrate false
  fi
  if [ "$stage" -le 7 ] && [ "$stop_stage" -ge 7 ]; then  # v1's report plus the intra-class distances
    python3 -m wespeaker_like.bin.report --exp_dir "$exp" --name "speechocean762/mine_ic/$name" \
      --scores "$exp/scores/test.cosine.score" --trials "$data/test/trials" \
      --embeddings "$exp/embeddings/test/xvector.scp" --utt2spk "$data/test/utt2spk" \
      --spk2gender "$data/test/spk2gender" --results_md "$results_md" --intra_class
  fi
done
