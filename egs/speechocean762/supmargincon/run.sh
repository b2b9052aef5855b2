#!/usr/bin/env bash
# Paper 004 mini proof on speechocean762: AAM, AAM (second seed), AAM+SupCon, AAM+SupMarginCon and
# AAM+SupMarginCon+MI with one budget (conf/base.yaml), scored on the shared test trials; RESULTS.md
# gets EER, minDCF(0.01), minDCF(0.05), alignment and uniformity of the test embeddings, train time.
#
# Stages 0-3 (data, stage-2 copies, features) are v1's: this script runs ../v1/run.sh for them, and for
# training, extraction and scoring of each row (stages 4-6, v1's commands with this recipe's configs);
# stage 7 reports with --geometry. By default it reuses v1's data dir:
#
#   bash egs/speechocean762/supmargincon/run.sh                 # stages 4-7 on ../v1/data
#   bash egs/speechocean762/supmargincon/run.sh --stage 0 --corpus_dir ... --noise_dir ... --trials ...
#   bash run.sh --configs "aam aam_supmargincon_mi" --stage 7  # report two rows again
set -euo pipefail
recipe_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
v1=$recipe_dir/../v1
. "$v1/path.sh"

stage=4
stop_stage=7
data=$v1/data            # v1's data dir: train_combined (clean + 4 stage-2 copies), train_clean, test
exp=$recipe_dir/exp      # one experiment dir per row config: $exp/<config>
configs="aam aam_seed2 aam_supcon aam_supmargincon aam_supmargincon_mi"
corpus_dir=""            # stages 0-3 only: passed to v1's run.sh when given
noise_dir=""
trials=""
nj=2
num_gpus=0
extract_device=cpu
results_md=$recipe_dir/RESULTS.md
help_message="Usage: $0 [--stage N] [--stop-stage N] [--data DIR] [--exp DIR] [--configs \"aam ...\"]
  [--corpus_dir DIR --noise_dir DIR --trials FILE (stages 0-3)] [--nj N] [--num_gpus N] [--extract_device cpu|cuda]"
. "$WESPEAKER_LIKE_ROOT/tools/parse_options.sh"

if [ $stage -le 3 ] && [ $stop_stage -ge 0 ]; then
  bash "$v1/run.sh" --stage $stage --stop-stage $(( stop_stage < 3 ? stop_stage : 3 )) --data "$data" --nj $nj \
    ${corpus_dir:+--corpus_dir "$corpus_dir"} ${noise_dir:+--noise_dir "$noise_dir"} ${trials:+--trials "$trials"} \
    --exp "$exp/data_prep"
fi

for config in $configs; do
  if [ ! -f "$recipe_dir/conf/$config.yaml" ]; then
    echo "$0: no config $recipe_dir/conf/$config.yaml" >&2
    exit 1
  fi
  first=$(( stage > 4 ? stage : 4 ))
  last=$(( stop_stage < 6 ? stop_stage : 6 ))
  if [ $first -le $last ]; then
    bash "$v1/run.sh" --stage $first --stop-stage $last --data "$data" --config "$recipe_dir/conf/$config.yaml" \
      --exp "$exp/$config" --nj $nj --num_gpus $num_gpus --extract_device $extract_device
  fi
  if [ $stage -le 7 ] && [ $stop_stage -ge 7 ]; then
    python3 -m wespeaker_like.bin.report --exp_dir "$exp/$config" --name "speechocean762/supmargincon/$config" \
      --scores "$exp/$config/scores/test.score" --trials "$data/test/trials" \
      --embeddings "$exp/$config/embeddings/test/xvector.scp" --utt2spk "$data/test/utt2spk" \
      --spk2gender "$data/test/spk2gender" --results_md "$results_md" --geometry
  fi
done
