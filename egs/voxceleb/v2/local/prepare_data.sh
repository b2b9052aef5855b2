#!/usr/bin/env bash
# Stage 1: Kaldi data dirs vox1_dev, vox1_test, vox1 (+ Vox1-O/E/H trials) and vox2_dev.
# Usage: local/prepare_data.sh <corpus_dir> <data> <m4a: pipe|convert> <nj>
set -euo pipefail
corpus_dir=$1; data=$2; m4a=$3; nj=$4
python3 -m wespeaker_like.bin.prepare_corpus voxceleb1 --src "$corpus_dir/voxceleb1" --out "$data" --nj "$nj"
python3 -m wespeaker_like.bin.prepare_corpus voxceleb2 --src "$corpus_dir/voxceleb2" --out "$data" --m4a "$m4a" --nj "$nj"
# Vox1-E/H draw on all of VoxCeleb1, so VoxCeleb2-dev training must share no speaker with it.
python3 -m wespeaker_like.bin.prepare_corpus check_disjoint --train "$data/vox2_dev" --test "$data/vox1"
