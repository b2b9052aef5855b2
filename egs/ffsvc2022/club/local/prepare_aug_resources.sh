#!/usr/bin/env bash
# Stage 2 resources: $data/musan/{noise,music,speech} and $data/rirs_noises/{simulated,real,rirs}.
# Usage: local/prepare_aug_resources.sh <corpus_dir> <data> <nj>
set -euo pipefail
corpus_dir=$1; data=$2; nj=$3
python3 -m wespeaker_like.bin.prepare_corpus musan --src "$corpus_dir/musan" --out "$data" --nj "$nj"
python3 -m wespeaker_like.bin.prepare_corpus rirs_noises --src "$corpus_dir/RIRS_NOISES" --out "$data" --nj "$nj"
