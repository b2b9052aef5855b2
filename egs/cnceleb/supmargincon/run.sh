#!/usr/bin/env bash
# Paper 004 (SupMarginCon + MI) on CN-Celeb: train on CN-Celeb1 dev + CN-Celeb2 (2,793 speakers) with
# reverb/noise/music/babble copies; evaluate on the official CN-Celeb1 eval trials, enrollment by the
# corpus's concatenated utterance (concat) or by averaging the embeddings of its enroll.map utterances
# (average); minDCF at P_target 0.01. One config per Table II row in conf/ (README.md).
# Stages 0-2 are egs/cnceleb/v2's (called).
#
#   bash run.sh --archives_dir /data/cnceleb_archives --config conf/table2_eres2netv2_ours.yaml --num_gpus 8
set -euo pipefail
recipe_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$recipe_dir/path.sh"
. "$recipe_dir/cmd.sh"

stage=0
stop_stage=7
corpus_dir=$recipe_dir/corpus  # extracted corpora: CN-Celeb_flac/ CN-Celeb2_flac/ musan/ RIRS_NOISES/
dl_dir=""                      # where stage 0 downloads to (default <corpus_dir>/archives)
archives_dir=""                # official archives already on disk, used in place
checksums=""                   # md5sum-style file overriding the built-in MD5 sums
data=$recipe_dir/data
exp=""                         # experiment dir; default exp/<config name>
config=$recipe_dir/conf/table2_eres2netv2_ours.yaml
overrides=""                   # config overrides for training, space-separated key=value (no spaces inside)
nj=8
enroll_mode=concat             # concat: one (concatenated) enrollment utterance; average: mean of embeddings
aug_types=reverb,noise,music,babble
aug_num_utts=""                # keep this many random augmented copies (empty: one per type and utterance)
num_gpus=0                     # 0: one CPU process; N: torchrun with N GPU processes per node
num_nodes=1
extract_device=cpu             # cpu | cuda | auto
results_md=$recipe_dir/RESULTS.md
seed=0
help_message="Usage: $0 [--stage N] [--stop-stage N] [--corpus_dir DIR] [--archives_dir DIR] [--config YAML]
  [--exp DIR] [--overrides 'key=value ...'] [--num_gpus N] [--enroll_mode concat|average]"
. "$WESPEAKER_LIKE_ROOT/tools/parse_options.sh"

v2=$recipe_dir/../v2/run.sh
exp=${exp:-$recipe_dir/exp/$(basename "$config" .yaml)}
train_set=cnceleb_train_combined  # clean + augmented copies
eval_set=cnceleb1_eval            # enrollment and test utterances, trials/CNC-Eval.kaldi, enroll.map

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  bash "$v2" --stage 0 --stop_stage 0 --corpus_dir "$corpus_dir" --dl_dir "$dl_dir" --archives_dir "$archives_dir" \
    --checksums "$checksums"
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 1 ]; then
  first=$(( stage > 1 ? stage : 1 )); last=$(( stop_stage < 2 ? stop_stage : 2 ))
  bash "$v2" --stage "$first" --stop_stage "$last" --corpus_dir "$corpus_dir" --data "$data" \
    --enroll_mode "$enroll_mode" --train_set cnceleb_train --aug_types "$aug_types" --aug_num_utts "$aug_num_utts" \
    --seed "$seed" --nj "$nj"
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  make_features_sets.sh "$config" "$data" "$nj" $train_set $eval_set
fi

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  train_launch.sh "$config" "$data/$train_set" "$exp" "$num_gpus" "$num_nodes" $overrides
fi

if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then
  extract_sets.sh "$exp" "$data" "$nj" "$extract_device" feats $eval_set
fi

trials=$data/$eval_set/trials/CNC-Eval.kaldi
if [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then
  # concat mode: every enrollment id has its own embedding; average mode: the mean of its utterances'
  python3 -m wespeaker_like.bin.score --embeddings "$exp/embeddings/$eval_set/xvector.scp" --trials "$trials" \
    --enroll_map "$data/$eval_set/enroll.map" --scores "$exp/scores/$eval_set.score" --p_target 0.01
fi

if [ $stage -le 7 ] && [ $stop_stage -ge 7 ]; then
  python3 -m wespeaker_like.bin.report --exp_dir "$exp" --name "cnceleb/$(basename "$exp") $enroll_mode" \
    --trials "$trials" --scores "$exp/scores/$eval_set.score" --paper_trials "$eval_set" --results_md "$results_md" \
    --embeddings "$exp/embeddings/$eval_set/xvector.scp" --utt2spk "$data/$eval_set/utt2spk"
fi
