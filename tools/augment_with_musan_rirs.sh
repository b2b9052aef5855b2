#!/usr/bin/env bash
# Stage 2 of the recipes that train on a standard corpus: MUSAN and RIRS_NOISES resource dirs, then
# Kaldi-style reverb / noise (SNR 0-15) / music (5-15) / babble (3-7 speakers, 13-20) copies of
# <data>/<train_set>, combined with the clean set into <data>/<train_set>_combined.
#
# Usage: augment_with_musan_rirs.sh <corpus_dir> <data> <train_set> <types> <num_utts|""> <seed> <nj>
#   <corpus_dir> holds musan/ and RIRS_NOISES/; <num_utts> keeps that many random copies ("" = all).
set -euo pipefail
if [ $# -ne 7 ]; then
  sed -n '2,7p' "$0" >&2
  exit 1
fi
corpus_dir=$1; data=$2; train_set=$3; types=$4; num_utts=$5; seed=$6; nj=$7
python3 -m wespeaker_like.bin.prepare_corpus musan --src "$corpus_dir/musan" --out "$data" --nj "$nj"
python3 -m wespeaker_like.bin.prepare_corpus rirs_noises --src "$corpus_dir/RIRS_NOISES" --out "$data" --nj "$nj"
extra=()
if [ -n "$num_utts" ]; then extra+=(--num_utts "$num_utts"); fi
python3 -m wespeaker_like.bin.augment_data_dir --src "$data/$train_set" --out "$data/${train_set}_aug" \
  --audio_dir "$data/${train_set}_aug/audio" --types "$types" \
  --rirs "$data/rirs_noises/rirs" --noise "$data/musan/noise" --music "$data/musan/music" \
  --babble_from "$data/musan/speech" --noise_snrs 0:15 --music_snrs 5:15 --babble_snrs 13:20 \
  --num_babble 3:7 --seed "$seed" --nj "$nj" --combined_out "$data/${train_set}_combined" "${extra[@]}"
