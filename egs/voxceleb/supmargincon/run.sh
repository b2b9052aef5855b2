#!/usr/bin/env bash
# Paper 004 (SupMarginCon + MI) on VoxCeleb: train on VoxCeleb2-dev with 0.9x / 1.1x speed copies as
# new speakers (3 x 5,994 classes) and reverb/noise/music/babble copies; evaluate on the cleaned
# Vox1-O/E/H lists, minDCF at P_target 0.01. One config per paper-table row in conf/ (README.md).
# Stages 0-2 are egs/voxceleb/v2's (called, with the speed copies between its stages 1 and 2).
#
#   bash run.sh --archives_dir /data/voxceleb_archives --config conf/table1_eres2netv2_ours.yaml --num_gpus 8
#   bash run.sh --stage 4 --config conf/table4_eres2netv2_aam_mi.yaml --num_gpus 8
set -euo pipefail
recipe_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$recipe_dir/path.sh"
. "$recipe_dir/cmd.sh"

stage=0
stop_stage=7
corpus_dir=$recipe_dir/corpus  # extracted corpora: voxceleb1/ voxceleb2/ musan/ RIRS_NOISES/
dl_dir=""                      # where stage 0 downloads to (default <corpus_dir>/archives)
archives_dir=""                # official archives already on disk, used in place
checksums=""                   # md5sum-style file overriding the built-in MD5 sums
data=$recipe_dir/data
exp=""                         # experiment dir; default exp/<config name>
config=$recipe_dir/conf/table1_eres2netv2_ours.yaml
overrides=""                   # config overrides for training, space-separated key=value (no spaces inside)
nj=8
m4a=pipe                       # VoxCeleb2 AAC: pipe (ffmpeg in wav.scp) or convert (decode once to WAV)
aug_types=reverb,noise,music,babble
aug_num_utts=""                # keep this many random augmented copies (empty: one per type and utterance)
trials="vox1_O_cleaned vox1_E_cleaned vox1_H_cleaned"
num_gpus=0                     # 0: one CPU process; N: torchrun with N GPU processes per node
num_nodes=1
extract_device=cpu             # cpu | cuda | auto
results_md=$recipe_dir/RESULTS.md
seed=0
help_message="Usage: $0 [--stage N] [--stop-stage N] [--corpus_dir DIR] [--archives_dir DIR] [--config YAML]
  [--exp DIR] [--overrides 'key=value ...'] [--num_gpus N] [--trials 'vox1_O_cleaned ...']"
. "$WESPEAKER_LIKE_ROOT/tools/parse_options.sh"

v2=$recipe_dir/../v2/run.sh
exp=${exp:-$recipe_dir/exp/$(basename "$config" .yaml)}
train_set=vox2_dev_sp_combined  # clean + speed copies + their augmented copies
eval_set=vox1                   # all of VoxCeleb1: the utterances of every Vox1-O/E/H trial

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  bash "$v2" --stage 0 --stop_stage 0 --corpus_dir "$corpus_dir" --dl_dir "$dl_dir" --archives_dir "$archives_dir" \
    --checksums "$checksums"
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  bash "$v2" --stage 1 --stop_stage 1 --corpus_dir "$corpus_dir" --data "$data" --m4a "$m4a" --nj "$nj"
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  python3 -m wespeaker_like.bin.speed_perturb_data_dir --src "$data/vox2_dev" --out "$data/vox2_dev_sp_copies" \
    --audio_dir "$data/vox2_dev_sp_copies/audio" --factors 0.9,1.1 --nj "$nj" --combined_out "$data/vox2_dev_sp"
  bash "$v2" --stage 2 --stop_stage 2 --corpus_dir "$corpus_dir" --data "$data" --train_set vox2_dev_sp \
    --aug_types "$aug_types" --aug_num_utts "$aug_num_utts" --seed "$seed" --nj "$nj"
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

trial_file() {  # Vox1-O lists live with vox1_test, Vox1-E/H with vox1
  case $1 in vox1_O*) echo "$data/vox1_test/trials/$1.kaldi" ;; *) echo "$data/vox1/trials/$1.kaldi" ;; esac
}

if [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then
  for name in $trials; do
    python3 -m wespeaker_like.bin.score --embeddings "$exp/embeddings/$eval_set/xvector.scp" \
      --trials "$(trial_file "$name")" --scores "$exp/scores/$name.score" --p_target 0.01
  done
fi

if [ $stage -le 7 ] && [ $stop_stage -ge 7 ]; then
  tsne=(--embeddings "$exp/embeddings/$eval_set/xvector.scp" --utt2spk "$data/$eval_set/utt2spk")
  if [ -f "$data/$eval_set/spk2gender" ]; then tsne+=(--spk2gender "$data/$eval_set/spk2gender"); fi
  for name in $trials; do
    python3 -m wespeaker_like.bin.report --exp_dir "$exp" --name "voxceleb/$(basename "$exp") $name" \
      --trials "$(trial_file "$name")" --scores "$exp/scores/$name.score" --det_png "$exp/det_$name.png" \
      --paper_trials "${name%_cleaned}" --results_md "$results_md" "${tsne[@]}"
    tsne=(--no_tsne)  # one t-SNE plot of the evaluation embeddings is enough
  done
fi
