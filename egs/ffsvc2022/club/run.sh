#!/usr/bin/env bash
# FFSVC2022 CLUB recipe: pre-train on VoxCeleb1-dev + VoxCeleb2-dev (Stage A), fine-tune on the
# FFSVC2022 training set with speaker and device labels (Stage B), test on the FFSVC2022 dev trials.
# Run from the repository root or from this directory; relative paths given as options are taken
# from where you run it, defaults live in this directory.
#
# FFSVC is distributed on request (AISHELL/Zenodo): extract its archives under --ffsvc_dir as shipped
# (docs/corpora.md); stage 0 only fetches VoxCeleb, MUSAN and RIRS_NOISES.
#
#   bash run.sh --ffsvc_dir /data/ffsvc [--archives_dir /data/archives] --num_gpus 2
#   bash run.sh --stage 3 --rows "2b 6b" --pretrained_exp ../../voxceleb/v2/exp/mfa_conformer
#
# Experiments: <exp>/row_1 is Stage A (the row-1 model, scored with x), <exp>/row_<n><a|b> the Stage B
# rows; "b" rows start from <exp>/row_1 through init_from. With --pretrained_exp DIR, Stage A is not
# trained: <exp>/row_1 links DIR's final_model.pt and config.yaml.
set -euo pipefail
recipe_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$recipe_dir/path.sh"
. "$recipe_dir/cmd.sh"

stage=0
stop_stage=7
corpus_dir=$recipe_dir/corpus  # extracted corpora: voxceleb1/ voxceleb2/ musan/ RIRS_NOISES/
ffsvc_dir=""                   # FFSVC root (default <corpus_dir>/ffsvc)
dl_dir=""                      # where stage 0 downloads to (default <corpus_dir>/archives)
archives_dir=""                # official archives already on disk, used in place
checksums=""                   # md5sum-style file overriding the built-in MD5 sums
data=$recipe_dir/data
nj=4
use_voxceleb=true              # prepare VoxCeleb1/2 dev for the Stage-A pre-training
m4a=pipe                       # VoxCeleb2 AAC: pipe (ffmpeg in wav.scp) or convert (decode once to WAV)
device_label=device            # utt2dev: device (I/PAD/PCM/MIC...) or device_distance (PCM_5M, I_0.25M, ...)
min_duration=1.0               # drop FFSVC training utterances shorter than this (seconds)
train_set=ffsvc_train
aug_types=reverb,noise,music,babble
aug_num_utts=""                # keep this many random augmented copies (empty: one per type and utterance)
seed=0
exp=$recipe_dir/exp
rows="1 2a 2b 3a 3b 4a 4b 5a 5b 6a 6b"  # Table I rows (conf/row_<row>.yaml) trained, scored and reported
pretrained_exp=""              # an existing VoxCeleb experiment used as Stage A (stage 4a is then skipped)
overrides=""                   # config overrides for every training, space-separated key=value (no spaces inside)
num_gpus=0                     # 0: one CPU process; N: torchrun with N GPU processes per node
num_nodes=1
extract_device=cpu             # cpu | cuda | auto
probe_utts=4000                # clean training utterances drawn for the device probe (half fit, half held out)
results_md=$recipe_dir/RESULTS.md
probe_md=$recipe_dir/DISENTANGLEMENT.md
help_message="Usage: $0 [--stage N] [--stop-stage N] [--ffsvc_dir DIR] [--archives_dir DIR] [--rows \"1 2a ... 6b\"]
  [--pretrained_exp DIR] [--exp DIR] [--overrides 'key=value ...'] [--num_gpus N] [--probe_utts N] ..."
. "$WESPEAKER_LIKE_ROOT/tools/parse_options.sh"

local=$recipe_dir/local
if [ -z "$ffsvc_dir" ]; then ffsvc_dir=$corpus_dir/ffsvc; fi
stage_a_set=vox_dev            # vox1_dev + vox2_dev
eval_set=ffsvc2022_dev
stage_a=$exp/row_1             # the Stage A experiment (Table I row 1)
stage_a_needed=false           # row 1 or a "b" row asks for Stage A
for row in $rows; do
  if [ ! -f "$recipe_dir/conf/row_$row.yaml" ]; then
    echo "$0: --rows: no row '$row' (expected some of 1 2a 2b 3a 3b 4a 4b 5a 5b 6a 6b: conf/row_<row>.yaml)" >&2
    exit 1
  fi
  case $row in 1|*b) stage_a_needed=true ;; esac
done
train_stage_a=false
if $stage_a_needed && [ -z "$pretrained_exp" ]; then
  train_stage_a=true
  if ! $use_voxceleb; then
    echo "$0: --rows '$rows' needs Stage A: train it on VoxCeleb (--use_voxceleb true) or give --pretrained_exp DIR" >&2
    exit 1
  fi
fi

# Stage 0: download VoxCeleb/MUSAN/RIRS_NOISES (FFSVC has no public download: checked to exist).
if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  if [ ! -d "$ffsvc_dir" ]; then
    echo "$0: FFSVC not found at $ffsvc_dir (expected its archives extracted there: FFSVC2020 wav/train/," \
         "wav/dev/, supplementary/, the FFSVC2022 dev/ffsvc22_dev_*.wav, dev_meta_list, trials_dev_keys;" \
         "see docs/corpora.md)" >&2
    exit 1
  fi
  corpora=(musan rirs_noises)
  if $use_voxceleb; then corpora=(voxceleb1 voxceleb2 "${corpora[@]}"); fi
  python3 -m wespeaker_like.bin.download_corpus "${corpora[@]}" --corpus_dir "$corpus_dir" \
    --dl_dir "$dl_dir" --archives_dir "$archives_dir" --checksums "$checksums"
fi

# Stage 1: data dirs with speaker and device labels, and the FFSVC2022 dev trials.
if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  bash "$local/prepare_data.sh" "$corpus_dir" "$ffsvc_dir" "$data" "$device_label" "$min_duration" \
    "$use_voxceleb" "$m4a" "$nj"
fi

# Stage 2: MUSAN/RIRS_NOISES resources, then reverb/noise/music/babble copies of the FFSVC training set.
if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  augment_with_musan_rirs.sh "$corpus_dir" "$data" "$train_set" "$aug_types" "$aug_num_utts" "$seed" "$nj"
fi

# Stage 3: log-mel features (the configs' front-end) of the Stage B training set (clean + stage-2
# copies), the FFSVC2022 dev set and, when Stage A is trained here, vox1_dev + vox2_dev combined.
if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  sets=(${train_set}_combined $eval_set)
  if $train_stage_a; then
    python3 -m wespeaker_like.bin.data_dir combine "$data/$stage_a_set" "$data/vox1_dev" "$data/vox2_dev"
    sets+=($stage_a_set)
  fi
  make_features_sets.sh "$recipe_dir/conf/stage_a.yaml" "$data" "$nj" "${sets[@]}"
fi

# Stage 4a: Stage A, the encoder pre-trained on VoxCeleb with the speaker loss on x (conf/row_1.yaml
# = stage_a.yaml + the paper's row-1 numbers), or --pretrained_exp linked in its place.
if [ $stage -le 4 ] && [ $stop_stage -ge 4 ] && $stage_a_needed; then
  if [ -n "$pretrained_exp" ]; then
    pretrained_exp=$(cd "$pretrained_exp" && pwd)
    for file in final_model.pt config.yaml; do
      if [ ! -f "$pretrained_exp/$file" ]; then
        echo "$0: --pretrained_exp $pretrained_exp has no $file (expected a finished experiment)" >&2
        exit 1
      fi
    done
    if [ -f "$stage_a/final_model.pt" ] && [ ! -L "$stage_a/final_model.pt" ]; then
      echo "$0: $stage_a holds a Stage A model trained here; move it away to use --pretrained_exp instead" >&2
      exit 1
    fi
    mkdir -p "$stage_a"
    ln -sfn "$pretrained_exp/final_model.pt" "$stage_a/final_model.pt"
    ln -sfn "$pretrained_exp/config.yaml" "$stage_a/config.yaml"
    echo "Stage A: $stage_a -> $pretrained_exp"
  else
    train_launch.sh "$recipe_dir/conf/row_1.yaml" "$data/$stage_a_set" "$stage_a" "$num_gpus" "$num_nodes" $overrides
  fi
fi

# Stage 4b: Stage B, each selected row on the FFSVC training set with speaker and device labels
# (utt2dev; 100 speakers x 2 utterances a batch, METHODS.md 1.5); "b" rows start from Stage A.
if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  for row in $rows; do
    if [ "$row" = 1 ]; then continue; fi
    init=()
    case $row in *b) init=(init_from.path="$stage_a") ;; esac
    train_launch.sh "$recipe_dir/conf/row_$row.yaml" "$data/${train_set}_combined" "$exp/row_$row" \
      "$num_gpus" "$num_nodes" "${init[@]}" $overrides
  done
fi

# Stage 5: embeddings of the FFSVC2022 dev set (x for row 1, x_s for the others: the configs'
# eval_embedding), and x / x_s / x_d of the two device-probe sets: --probe_utts clean training
# utterances drawn at random, every other one with its stage-2 copies to the fitting set, the others
# with theirs to the held-out set, so no utterance (nor a copy of it) is on both sides.
if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then
  probe=$data/${train_set}_probe
  num_utts=$(wc -l < "$data/$train_set/utt2spk")
  python3 -m wespeaker_like.bin.data_dir subset --random $(( probe_utts < num_utts ? probe_utts : num_utts )) \
    --seed "$seed" "$data/$train_set" "$probe"
  for split in fit:1 held_out:0; do
    awk -v r="${split#*:}" 'NR == FNR { if (FNR % 2 == r) keep[$1] = 1; next } ($2 in keep) { print $1 }' \
      "$probe/utt2spk" "$data/${train_set}_combined/utt2uniq" > "$probe/${split%:*}.list"
    python3 -m wespeaker_like.bin.data_dir subset --utt-list "$probe/${split%:*}.list" \
      "$data/${train_set}_combined" "${probe}_${split%:*}"
  done
  for row in $rows; do
    extract_sets.sh "$exp/row_$row" "$data" "$nj" "$extract_device" auto $eval_set
    branches=x,x_s,x_d
    if [ "$row" = 1 ]; then branches=x; fi  # no decoupling block in Stage A
    extract_sets.sh --branch $branches "$exp/row_$row" "$data" "$nj" "$extract_device" auto \
      ${train_set}_probe_fit ${train_set}_probe_held_out
  done
fi

# Stage 6: cosine scoring of the FFSVC2022 dev trials, EER and minDCF at P_target 0.05 (and 0.01).
if [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then
  for row in $rows; do
    python3 -m wespeaker_like.bin.score --embeddings "$exp/row_$row/embeddings/$eval_set/xvector.scp" \
      --trials "$data/$eval_set/trials/$eval_set.kaldi" --scores "$exp/row_$row/scores/$eval_set.score" \
      --results "$exp/row_$row/scores/$eval_set.result" --p_target 0.05 0.01
  done
fi

# Stage 7: Table I (ours beside the paper's numbers) in --results_md, DET and t-SNE plots, and the
# disentanglement diagnostics (device probe on x / x_s / x_d, MI(x_s; x_d)) in --probe_md.
if [ $stage -le 7 ] && [ $stop_stage -ge 7 ]; then
  for row in $rows; do
    row_exp=$exp/row_$row
    config=()  # a linked --pretrained_exp has no paper block: row 1's numbers come from conf/row_1.yaml
    if [ -L "$row_exp/config.yaml" ]; then config=(--config "$recipe_dir/conf/row_1.yaml"); fi
    python3 -m wespeaker_like.bin.report --exp_dir "$row_exp" --name "ffsvc2022/club/row_$row" "${config[@]}" \
      --trials "$data/$eval_set/trials/$eval_set.kaldi" --scores "$row_exp/scores/$eval_set.score" \
      --embeddings "$row_exp/embeddings/$eval_set/xvector.scp" --utt2spk "$data/$eval_set/utt2spk" \
      --results_md "$results_md" --paper_trials $eval_set \
      --probe_train "$row_exp/embeddings/${train_set}_probe_fit" \
      --probe_test "$row_exp/embeddings/${train_set}_probe_held_out" \
      --probe_labels "$data/${train_set}_combined/utt2dev" --probe_md "$probe_md"
  done
fi
