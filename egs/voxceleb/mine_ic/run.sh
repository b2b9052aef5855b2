#!/usr/bin/env bash
# Paper 001 (Kwon et al., Interspeech 2020): MINE disentanglement with identity-change training on
# VoxCeleb2-dev, evaluated on VoxCeleb1-O (the original veri_test.txt, the paper's list, and the
# cleaned one), EER with the paper's number beside ours, and the within/between-speaker cosine
# distances of the test embeddings. One config per row of the paper's Tables 1 and 2: conf/README.md.
#
#   bash run.sh --archives_dir /data/voxceleb_archives --config conf/table2_mi_ic.yaml --num_gpus 4
#
# Stage 0 fetches VoxCeleb1 and 2 only and stage 1 is egs/voxceleb/v2's (data dirs, trial lists).
# The paper uses no augmentation (no stage 2), and the loader computes the STFT input and the log-mel
# target from the audio (no stage 3).
set -euo pipefail
recipe_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$recipe_dir/../v2/path.sh"
. "$recipe_dir/../v2/cmd.sh"

stage=0
stop_stage=7
corpus_dir=$recipe_dir/corpus  # extracted corpora: voxceleb1/ voxceleb2/
dl_dir=""                      # where stage 0 downloads to (default <corpus_dir>/archives)
archives_dir=""                # official archives already on disk, used in place
checksums=""                   # md5sum-style file overriding the built-in MD5 sums
m4a=pipe                       # VoxCeleb2 AAC: pipe (ffmpeg in wav.scp) or convert (decode once to WAV)
data=$recipe_dir/data
config=$recipe_dir/conf/table2_mi_ic.yaml
exp=""                         # experiment dir; default exp/<config name>
overrides=""                   # config overrides for training, space-separated key=value (no spaces inside)
trials="vox1_O vox1_O_cleaned"  # the paper's number is for vox1_O (veri_test.txt)
num_gpus=0                     # 0: one CPU process; N: torchrun with N GPU processes per node
num_nodes=1
nj=8
extract_device=cpu             # cpu | cuda | auto
results_md=$recipe_dir/RESULTS.md
help_message="Usage: $0 [--stage N] [--stop-stage N] [--corpus_dir DIR] [--archives_dir DIR] [--config YAML]
  [--exp DIR] [--overrides 'key=value ...'] [--num_gpus N] [--trials 'vox1_O vox1_O_cleaned']"
. "$WESPEAKER_LIKE_ROOT/tools/parse_options.sh"

v2=$recipe_dir/../v2/run.sh
exp=${exp:-$recipe_dir/exp/$(basename "$config" .yaml)}
train_set=vox2_dev
eval_set=vox1_test  # the utterances of the Vox1-O lists

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then  # no MUSAN / RIRS_NOISES: the paper uses no augmentation
  python3 -m wespeaker_like.bin.download_corpus voxceleb1 voxceleb2 --corpus_dir "$corpus_dir" \
    --dl_dir "$dl_dir" --archives_dir "$archives_dir" --checksums "$checksums"
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  bash "$v2" --stage 1 --stop_stage 1 --corpus_dir "$corpus_dir" --data "$data" --m4a "$m4a" --nj "$nj"
fi

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  train_launch.sh "$config" "$data/$train_set" "$exp" "$num_gpus" "$num_nodes" $overrides
fi

if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then  # f_spk of whole utterances, through the saved STFT front-end
  extract_sets.sh "$exp" "$data" "$nj" "$extract_device" audio $eval_set
fi

if [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then  # plain cosine, as the paper
  for name in $trials; do
    python3 -m wespeaker_like.bin.score --embeddings "$exp/embeddings/$eval_set/xvector.scp" \
      --trials "$data/vox1_test/trials/$name.kaldi" --scores "$exp/scores/$name.score" --p_target 0.01
  done
fi

if [ $stage -le 7 ] && [ $stop_stage -ge 7 ]; then
  for name in $trials; do
    paper=()
    if [ "$name" = vox1_O ]; then paper=(--paper_trials vox1_O); fi  # the paper reports no cleaned-list number
    python3 -m wespeaker_like.bin.report --exp_dir "$exp" --name "voxceleb/mine_ic/$(basename "$exp") $name" \
      --trials "$data/vox1_test/trials/$name.kaldi" --scores "$exp/scores/$name.score" --det_png "$exp/det_$name.png" \
      --embeddings "$exp/embeddings/$eval_set/xvector.scp" --utt2spk "$data/$eval_set/utt2spk" --intra_class \
      --no_tsne --results_md "$results_md" "${paper[@]}"
  done
fi
