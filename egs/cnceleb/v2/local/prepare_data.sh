#!/usr/bin/env bash
# Stage 1: cnceleb1_dev, cnceleb2, cnceleb_train (+ cnceleb_train_comb), cnceleb1_{enroll,test,eval}
# with the official trials (cnceleb1_eval/trials/CNC-Eval.kaldi) and enroll.map.
# Usage: local/prepare_data.sh <corpus_dir> <data> <enroll_mode: concat|average> <combine_short seconds, 0=off> <nj>
set -euo pipefail
corpus_dir=$1; data=$2; enroll_mode=$3; combine_short=$4; nj=$5
python3 -m wespeaker_like.bin.prepare_corpus cnceleb --src "$corpus_dir" --out "$data" \
  --enroll_mode "$enroll_mode" --combine_short "$combine_short" --nj "$nj"
