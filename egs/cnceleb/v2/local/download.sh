#!/usr/bin/env bash
# Stage 0: fetch and extract the official archives of each corpus named (docs/corpora.md).
# Usage: local/download.sh <corpus_dir> <dl_dir|""> <archives_dir|""> <checksums|""> <corpus>...
set -euo pipefail
corpus_dir=$1; dl_dir=$2; archives_dir=$3; checksums=$4; shift 4
opts=(--corpus_dir "$corpus_dir")
if [ -n "$dl_dir" ]; then opts+=(--dl_dir "$dl_dir"); fi
if [ -n "$archives_dir" ]; then opts+=(--archives_dir "$archives_dir"); fi
if [ -n "$checksums" ]; then opts+=(--checksums "$checksums"); fi
for corpus in "$@"; do
  python3 -m wespeaker_like.bin.download_corpus "$corpus" "${opts[@]}"
done
