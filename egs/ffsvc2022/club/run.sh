#!/usr/bin/env bash
# FFSVC2022 CLUB recipe: pre-train on VoxCeleb1-dev + VoxCeleb2-dev (Stage A), fine-tune on the
# FFSVC2022 training set with speaker and device labels (Stage B), test on the FFSVC2022 dev trials.
# Run from the repository root or from this directory; relative paths given as options are taken
# from where you run it, defaults live in this directory.
#
# FFSVC is distributed on request (AISHELL/Zenodo): extract its archives under --ffsvc_dir as shipped
# (docs/corpora.md); stage 0 only fetches VoxCeleb, MUSAN and RIRS_NOISES.
#
#   bash run.sh --stage 0 --stop-stage 2 --ffsvc_dir /data/ffsvc [--archives_dir /data/archives]
set -euo pipefail
recipe_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$recipe_dir/path.sh"
. "$recipe_dir/cmd.sh"

stage=0
stop_stage=2
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
help_message="Usage: $0 [--stage N] [--stop-stage N] [--ffsvc_dir DIR] [--archives_dir DIR] ..."
. "$WESPEAKER_LIKE_ROOT/tools/parse_options.sh"

local=$recipe_dir/local
if [ -z "$ffsvc_dir" ]; then ffsvc_dir=$corpus_dir/ffsvc; fi

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

# Stage 3: features          (comes with the features issue)
# Stage 4: training, Stage A (vox1_dev + vox2_dev) and Stage B (ffsvc_train, utt2dev)  (training issue)
# Stage 5: embeddings        (comes with the extraction issue)
# Stage 6: scoring on $data/ffsvc2022_dev/trials/ffsvc2022_dev.kaldi (EER, minDCF P_tar=0.05)
# Stage 7: report (Table I)
