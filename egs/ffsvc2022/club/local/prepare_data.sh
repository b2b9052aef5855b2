#!/usr/bin/env bash
# Stage 1: ffsvc_train (FFSVC2020 train+dev+supplementary, >= min_duration, utt2dev) and
# ffsvc2022_dev (+ trials/ffsvc2022_dev.kaldi); with use_voxceleb=true also vox1_dev and vox2_dev
# for the Stage-A pre-training (and vox1_test with Vox1-O trials).
# Usage: local/prepare_data.sh <corpus_dir> <ffsvc_dir> <data> <device_label> <min_duration> <use_voxceleb> <m4a> <nj>
set -euo pipefail
corpus_dir=$1; ffsvc_dir=$2; data=$3; device_label=$4; min_duration=$5; use_voxceleb=$6; m4a=$7; nj=$8
python3 -m wespeaker_like.bin.prepare_corpus ffsvc --src "$ffsvc_dir" --out "$data" \
  --device_label "$device_label" --min_duration "$min_duration" --nj "$nj"
if $use_voxceleb; then
  python3 -m wespeaker_like.bin.prepare_corpus voxceleb1 --src "$corpus_dir/voxceleb1" --out "$data" \
    --trials vox1_O,vox1_O_cleaned --nj "$nj"
  python3 -m wespeaker_like.bin.prepare_corpus voxceleb2 --src "$corpus_dir/voxceleb2" --out "$data" --m4a "$m4a" --nj "$nj"
fi
