#!/usr/bin/env bash
# Paper 002 (i-mix / l-mix AP, Kang et al., AAAI-W 2022): self-supervised training on unlabelled
# VoxCeleb2-dev, EER on VoxCeleb1-O (original veri_test.txt, 37,720 trials), with the paper's Table 2
# number (the config's paper: block) printed beside ours. One config per Table 2 row: conf/.
#
#   bash run.sh --archives_dir /data/voxceleb_archives --config conf/waveaug_cepsaug_lap_a0.5.yaml --num_gpus 4
#
# Stages 0-1 are egs/voxceleb/v2's (download, data dirs, trial lists); stage 2 makes only the
# MUSAN / RIRS_NOISES resource dirs (the segments are augmented on the fly); there are no features
# (stage 3): the loader computes the config's MFCCs from the audio. Stage 4 trains the VAE
# (conf/vae.yaml -> $vae_exp) first when the row is an l-AP one and the VAE is not trained yet,
# then the row, which loads the frozen VAE through init_from.path=$vae_exp.
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
config=$recipe_dir/conf/waveaug_cepsaug_lap_a0.5.yaml
vae_config=$recipe_dir/conf/vae.yaml
exp=""                         # experiment dir; default exp/<config name>
vae_exp=""                     # the VAE experiment of the l-AP rows; default exp/vae beside $exp
train_set=vox2_dev             # unlabelled: utt2spk is not read by training
trials="vox1_O"
num_gpus=4                     # torchrun processes per node (0: one CPU process)
num_nodes=1                    # > 1: one torchrun per node through $train_cmd (tools/train_launch.sh)
nj=4
extract_device=auto
results_md=$recipe_dir/RESULTS.md
train_opts=""                  # extra --set overrides for the row's training, e.g. "trainer.epochs=1"
vae_train_opts=""              # extra --set overrides for the VAE's training
seed=0
help_message="Usage: $0 [--stage N] [--stop-stage N] [--archives_dir DIR] [--config YAML] [--exp DIR] [--num_gpus N] [--num_nodes N]"
. "$WESPEAKER_LIKE_ROOT/tools/parse_options.sh"

exp=${exp:-$recipe_dir/exp/$(basename "$config" .yaml)}
mkdir -p "$exp"
vae_exp=${vae_exp:-$(dirname "$exp")/vae}
trials_file() {  # vox1_O* are scored on vox1_test, vox1_E*/H* on all of VoxCeleb1
  case $1 in vox1_O*) echo "$data/vox1_test/trials/$1.kaldi" ;; *) echo "$data/vox1/trials/$1.kaldi" ;; esac
}
eval_set() { case $1 in vox1_O*) echo vox1_test ;; *) echo vox1 ;; esac; }
eval_sets=$(for name in $trials; do eval_set "$name"; done | sort -u)

if [ $stage -le 1 ] && [ $stop_stage -ge 0 ]; then
  v2_stop=$(( stop_stage < 1 ? stop_stage : 1 ))
  bash "$recipe_dir/../v2/run.sh" --stage "$stage" --stop-stage "$v2_stop" --corpus_dir "$corpus_dir" \
    --archives_dir "$archives_dir" --checksums "$checksums" --data "$data" --m4a "$m4a" --nj "$nj"
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  python3 -m wespeaker_like.bin.prepare_corpus musan --src "$corpus_dir/musan" --out "$data" --nj "$nj"
  python3 -m wespeaker_like.bin.prepare_corpus rirs_noises --src "$corpus_dir/RIRS_NOISES" --out "$data" --nj "$nj"
fi

train() {  # train <config> <exp> "<overrides>" [key=value ...]: stage 4's launch with the augmentation resources
  local config=$1 exp=$2 overrides=$3; shift 3
  echo "training $config -> $exp"
  train_launch.sh "$config" "$data/$train_set" "$exp" "$num_gpus" "$num_nodes" \
    dataset.augment.resources.rirs="$data/rirs_noises/rirs" dataset.augment.resources.noise="$data/musan/noise" \
    dataset.augment.resources.music="$data/musan/music" dataset.augment.resources.speech="$data/musan/speech" \
    "$@" $overrides
}

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  mode=$(python3 -c 'import sys; from wespeaker_like.training.schema import load_experiment_config as load
print(load(sys.argv[1])["objective"].get("mode", ""))' "$config")
  vae_opts=()
  if [ "$mode" = lap ]; then
    if [ ! -f "$vae_exp/final_model.pt" ]; then train "$vae_config" "$vae_exp" "$vae_train_opts"; fi
    vae_opts=(init_from.path="$vae_exp")
  fi
  train "$config" "$exp" "$train_opts" "${vae_opts[@]}"
fi

if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then  # whole utterances, the loader's front-end
  extract_sets.sh "$exp" "$data" "$nj" "$extract_device" audio $eval_sets
fi

if [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then  # plain cosine on full utterances [D]
  for name in $trials; do
    python3 -m wespeaker_like.bin.score --embeddings "$exp/embeddings/$(eval_set "$name")/xvector.scp" \
      --trials "$(trials_file "$name")" --scores "$exp/scores/$name.score" --results "$exp/scores/$name.result" \
      --p_target 0.01 0.05
  done
fi

if [ $stage -le 7 ] && [ $stop_stage -ge 7 ]; then
  for name in $trials; do
    python3 -m wespeaker_like.bin.report --exp_dir "$exp" --name "voxceleb/ssl_ap/$(basename "$exp")/$name" \
      --scores "$exp/scores/$name.score" --trials "$(trials_file "$name")" --results_md "$results_md" \
      --det_png "$exp/det_$name.png" --no_tsne --stats w,b,uniform --paper_trials "$name"
  done
fi
