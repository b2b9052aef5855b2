#!/usr/bin/env bash
# VoxCeleb v2: train on VoxCeleb2-dev, evaluate on Vox1-O/E/H (original and cleaned lists).
# Run from the repository root or from this directory; relative paths given as options are taken
# from where you run it, defaults live in this directory.
#
#   bash run.sh --stage 0 --stop-stage 2 [--archives_dir /data/voxceleb_archives] [--m4a convert]
set -euo pipefail
recipe_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$recipe_dir/path.sh"
. "$recipe_dir/cmd.sh"

stage=0
stop_stage=2
corpus_dir=$recipe_dir/corpus  # extracted corpora: voxceleb1/ voxceleb2/ musan/ RIRS_NOISES/
dl_dir=""                      # where stage 0 downloads to (default <corpus_dir>/archives)
archives_dir=""                # official archives already on disk, used in place
checksums=""                   # md5sum-style file overriding the built-in MD5 sums
data=$recipe_dir/data
nj=4
m4a=pipe                       # VoxCeleb2 AAC: pipe (ffmpeg in wav.scp) or convert (decode once to WAV)
train_set=vox2_dev
aug_types=reverb,noise,music,babble
aug_num_utts=""                # keep this many random augmented copies (empty: one per type and utterance)
seed=0
help_message="Usage: $0 [--stage N] [--stop-stage N] [--corpus_dir DIR] [--archives_dir DIR] ..."
. "$WESPEAKER_LIKE_ROOT/tools/parse_options.sh"

local=$recipe_dir/local

# Stage 0: download (skipped for archives already extracted; --archives_dir for archives on disk).
if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  python3 -m wespeaker_like.bin.download_corpus voxceleb1 voxceleb2 musan rirs_noises --corpus_dir "$corpus_dir" \
    --dl_dir "$dl_dir" --archives_dir "$archives_dir" --checksums "$checksums"
fi

# Stage 1: data dirs and the official trial lists.
if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  bash "$local/prepare_data.sh" "$corpus_dir" "$data" "$m4a" "$nj"
fi

# Stage 2: MUSAN/RIRS_NOISES resources, then reverb/noise/music/babble copies of the training set.
if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  augment_with_musan_rirs.sh "$corpus_dir" "$data" "$train_set" "$aug_types" "$aug_num_utts" "$seed" "$nj"
fi

# Stage 3: features          (comes with the features issue)
# Stage 4: training          (comes with the training issue)
# Stage 5: embeddings        (comes with the extraction issue)
# Stage 6: scoring on Vox1-O/E/H: $data/vox1_test/trials/vox1_O*.kaldi, $data/vox1/trials/vox1_{E,H}*.kaldi
# Stage 7: report
