#!/usr/bin/env bash
# SDPN (Chen et al., ICASSP 2025) and DINO*: self-supervised training on unlabelled VoxCeleb2-dev,
# evaluation on the cleaned Vox1-O/E/H lists, EER and minDCF at P_target 0.05 (and 0.01), with the
# paper's numbers (the config's paper: block) printed beside ours. One config per row of the
# paper's Tables 1, 3 and 4: conf/README.md.
#
#   bash run.sh --archives_dir /data/voxceleb_archives --config conf/sdpn_mu0.1.yaml --num_gpus 4
#
# Stages 0-1 are egs/voxceleb/v2's (download, data dirs, trial lists); stage 2 makes only the
# MUSAN / RIRS_NOISES resource dirs (the views are augmented on the fly); there are no features
# (stage 3): the loader computes the log-mel front-end of the config from the audio.
set -euo pipefail
recipe_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$recipe_dir/../v2/path.sh"
. "$recipe_dir/../v2/cmd.sh"

stage=0
stop_stage=7
corpus_dir=$recipe_dir/corpus  # extracted corpora: voxceleb1/ voxceleb2/ musan/ RIRS_NOISES/
archives_dir=""                # official archives already on disk (stage 0)
checksums=""                   # md5sum-style file overriding the built-in MD5 sums (stage 0)
m4a=pipe                       # VoxCeleb2 AAC: pipe (ffmpeg in wav.scp) or convert (decode once to WAV)
data=$recipe_dir/data
config=$recipe_dir/conf/sdpn_mu0.1.yaml
exp=""                         # experiment dir; default exp/<config name>
train_set=vox2_dev             # unlabelled: utt2spk is not read by training
trials="vox1_O_cleaned vox1_E_cleaned vox1_H_cleaned"
num_gpus=4                     # torchrun processes per node (0: one CPU process)
num_nodes=1                    # > 1: one torchrun per node through $train_cmd (tools/train_launch.sh)
nj=4
extract_device=auto
results_md=$recipe_dir/RESULTS.md
train_opts=""                  # extra --set overrides for stage 4, e.g. "trainer.epochs=1"
seed=0
help_message="Usage: $0 [--stage N] [--stop-stage N] [--archives_dir DIR] [--config YAML] [--exp DIR] [--num_gpus N] [--num_nodes N]"
. "$WESPEAKER_LIKE_ROOT/tools/parse_options.sh"

exp=${exp:-$recipe_dir/exp/$(basename "$config" .yaml)}
mkdir -p "$exp"
trials_file() {  # vox1_O* are scored on vox1_test, vox1_E*/H* on all of VoxCeleb1
  case $1 in vox1_O*) echo "$data/vox1_test/trials/$1.kaldi" ;; *) echo "$data/vox1/trials/$1.kaldi" ;; esac
}

if [ $stage -le 1 ] && [ $stop_stage -ge 0 ]; then
  v2_stop=$(( stop_stage < 1 ? stop_stage : 1 ))
  bash "$recipe_dir/../v2/run.sh" --stage "$stage" --stop-stage "$v2_stop" --corpus_dir "$corpus_dir" \
    --archives_dir "$archives_dir" --checksums "$checksums" --data "$data" --m4a "$m4a" --nj "$nj"
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  python3 -m wespeaker_like.bin.prepare_corpus musan --src "$corpus_dir/musan" --out "$data" --nj "$nj"
  python3 -m wespeaker_like.bin.prepare_corpus rirs_noises --src "$corpus_dir/RIRS_NOISES" --out "$data" --nj "$nj"
fi

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  echo "training $config -> $exp"
  train_launch.sh "$config" "$data/$train_set" "$exp" "$num_gpus" "$num_nodes" \
    dataset.augment.resources.rirs="$data/rirs_noises/rirs" dataset.augment.resources.noise="$data/musan/noise" \
    dataset.augment.resources.music="$data/musan/music" dataset.augment.resources.speech="$data/musan/speech" \
    $train_opts
fi

if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then  # the teacher backbone, whole utterances
  extract_sets.sh "$exp" "$data" "$nj" "$extract_device" audio vox1
fi

if [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then  # plain cosine, as the reference
  for name in $trials; do
    python3 -m wespeaker_like.bin.score --embeddings "$exp/embeddings/vox1/xvector.scp" \
      --trials "$(trials_file "$name")" --scores "$exp/scores/$name.score" --results "$exp/scores/$name.result" \
      --p_target 0.01 0.05
  done
fi

if [ $stage -le 7 ] && [ $stop_stage -ge 7 ]; then
  for name in $trials; do
    python3 -m wespeaker_like.bin.report --exp_dir "$exp" --name "voxceleb/sdpn/$(basename "$exp")/$name" \
      --scores "$exp/scores/$name.score" --trials "$(trials_file "$name")" --results_md "$results_md" \
      --det_png "$exp/det_$name.png" --no_tsne --stats teacher_std,assign_entropy,protos_used \
      --paper_trials "${name%_cleaned}"
  done
fi
