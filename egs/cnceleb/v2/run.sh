#!/usr/bin/env bash
# CN-Celeb v2: train on CN-Celeb1 dev + CN-Celeb2, evaluate on the official CN-Celeb1 eval trials.
# Run from the repository root or from this directory; relative paths given as options are taken
# from where you run it, defaults live in this directory.
#
#   bash run.sh --stage 0 --stop-stage 2 [--archives_dir /data/cnceleb_archives] [--enroll_mode average]
set -euo pipefail
recipe_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$recipe_dir/path.sh"
. "$recipe_dir/cmd.sh"

stage=0
stop_stage=2
corpus_dir=$recipe_dir/corpus  # extracted corpora: CN-Celeb_flac/ CN-Celeb2_flac/ musan/ RIRS_NOISES/
dl_dir=""                      # where stage 0 downloads to (default <corpus_dir>/archives)
archives_dir=""                # official archives already on disk, used in place
checksums=""                   # md5sum-style file overriding the built-in MD5 sums
data=$recipe_dir/data
nj=4
enroll_mode=concat             # concat: one (concatenated) enrollment utterance; average: mean of embeddings
combine_short=0.0              # >0: also write cnceleb_train_comb with segments of at least this many seconds
train_set=cnceleb_train        # cnceleb_train_comb when combine_short > 0
aug_types=reverb,noise,music,babble
aug_num_utts=""                # keep this many random augmented copies (empty: one per type and utterance)
speed_perturb=false            # also write speed-perturbed copies (0.9, 1.1; new speakers sp<f>-<spk>)
seed=0
help_message="Usage: $0 [--stage N] [--stop-stage N] [--corpus_dir DIR] [--archives_dir DIR] ..."
. "$WESPEAKER_LIKE_ROOT/tools/parse_options.sh"

local=$recipe_dir/local

# Stage 0: download (skipped for archives already extracted; --archives_dir for archives on disk).
if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  python3 -m wespeaker_like.bin.download_corpus cnceleb musan rirs_noises --corpus_dir "$corpus_dir" \
    --dl_dir "$dl_dir" --archives_dir "$archives_dir" --checksums "$checksums"
fi

# Stage 1: data dirs, enrollment handling and the official trial list.
if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  bash "$local/prepare_data.sh" "$corpus_dir" "$data" "$enroll_mode" "$combine_short" "$nj"
fi

# Stage 2: MUSAN/RIRS_NOISES resources, reverb/noise/music/babble copies (and optional speed copies).
if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  augment_with_musan_rirs.sh "$corpus_dir" "$data" "$train_set" "$aug_types" "$aug_num_utts" "$seed" "$nj"
  if $speed_perturb; then
    python3 -m wespeaker_like.bin.speed_perturb_data_dir --src "$data/$train_set" --out "$data/${train_set}_sp" \
      --audio_dir "$data/${train_set}_sp/audio" --factors 0.9,1.1 --nj "$nj"
  fi
fi

# Stage 3: features          (comes with the features issue)
# Stage 4: training          (comes with the training issue)
# Stage 5: embeddings        (comes with the extraction issue; enrollment ids per $data/cnceleb1_eval/enroll.map)
# Stage 6: scoring on $data/cnceleb1_eval/trials/CNC-Eval.kaldi
# Stage 7: report
