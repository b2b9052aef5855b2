#!/usr/bin/env bash
# speechocean762 (OpenSLR 101): the mini recipe, every stage from raw audio to EER.
# 125 training speakers, 125 test speakers, 9,726 trials; ECAPA-TDNN + AAM-softmax by default.
#
# Run from anywhere; relative paths given as options are taken from where you run it, outputs go
# to data/ and exp/ in this directory unless --data / --exp say otherwise:
#
#   bash egs/speechocean762/v1/run.sh --corpus_dir ../shared/data/speechocean762 \
#       --noise_dir ../shared/data/noise --trials ../shared/data/speechocean762/trials/test.trials
#   bash run.sh --stage 4 --stop-stage 4 --config conf/ecapa_c512.yaml --exp exp/c512
set -euo pipefail
recipe_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$recipe_dir/path.sh"
. "$recipe_dir/cmd.sh"

stage=0
stop_stage=7
corpus_dir=$recipe_dir/corpus/speechocean762  # downloaded here by stage 0 if missing
noise_dir=""             # folder with noise/ and music/ recordings (layout of ../shared/data/noise)
trials=""                # fixed trial list; empty: draw a seeded list from the test set
data=$recipe_dir/data
exp=""                   # experiment dir; default exp/<config name>
config=$recipe_dir/conf/ecapa_aam.yaml
nj=2                     # parallel jobs for stages 2, 3 and 5
num_rooms=200            # simulated rooms for reverberation
aug_types=reverb,noise,music,babble
speed_perturb=false      # add 0.9x / 1.1x copies as new speakers
num_gpus=0               # 0: train on the CPU (one process); N: torchrun with N GPU processes per node
num_nodes=1              # >1: one torchrun per node through $train_cmd JOB=1:N, c10d rendezvous on node 1
raw_audio=false          # true: train from data/train's audio, augmented on the fly (conf/ecapa_aam_raw.yaml)
pack_audio=false         # with raw_audio: stage 3 packs data/train's audio into wave arks (data/train_packed)
extract_device=cpu       # cpu | cuda | auto
mean_norm=true           # subtract the training-set mean embedding before cosine / AS-norm scoring
backends=cosine,asnorm,plda  # stage 6 back-ends, one score/result file and RESULTS.md row each
asnorm_top_n=300         # AS-norm cohort size (cohort: the clean training embeddings)
lda_dim=100              # PLDA back-end: LDA dimension (at most training speakers - 1; 0: no LDA)
calibrate=true           # stage 6: fit llr = a * score + b per back-end on development trials
calibration_trials=""    # development trials over data/train_clean; empty: draw a seeded list in stage 6
calibration_num_target=2000
calibration_num_nontarget=20000
results_md=$recipe_dir/RESULTS.md
report_stats=""          # comma-separated train.log means of the last epoch for the RESULTS row (stage 7)
seed=0
help_message="Usage: $0 [--stage N] [--stop-stage N] [--corpus_dir DIR] [--noise_dir DIR] [--trials FILE]
  [--config YAML] [--exp DIR] [--nj N] [--num_gpus N] [--num_nodes N] [--speed_perturb true|false]
  [--raw_audio true|false] [--pack_audio true|false] [--backends cosine,asnorm,plda] [--lda_dim N]
  [--calibrate true|false] [--calibration_trials FILE]"
. "$WESPEAKER_LIKE_ROOT/tools/parse_options.sh"
if $raw_audio && [ "$config" = "$recipe_dir/conf/ecapa_aam.yaml" ]; then
  config=$recipe_dir/conf/ecapa_aam_raw.yaml
fi

for backend in ${backends//,/ }; do
  case $backend in
    cosine|asnorm|plda) ;;
    *) echo "$0: unknown back-end '$backend' in --backends $backends (expected cosine, asnorm, plda)" >&2; exit 1 ;;
  esac
done

exp=${exp:-$recipe_dir/exp/$(basename "$config" .yaml)}
timings=$exp/stage_times
mkdir -p "$exp"
stage_start() { stage_t0=$(date +%s); echo "$(date '+%F %T') stage $1: $2"; }
stage_end() { echo "stage $1 $(( $(date +%s) - stage_t0 )) s" >> "$timings"; }

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  stage_start 0 "download"
  if [ -d "$corpus_dir" ]; then
    echo "$corpus_dir exists; skipping the download"
  else
    python3 -m wespeaker_like.bin.download_corpus speechocean762 --corpus_dir "$(dirname "$corpus_dir")"
  fi
  stage_end 0
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  stage_start 1 "data dirs and trials"
  python3 -m wespeaker_like.bin.prepare_corpus speechocean762 --src "$corpus_dir" --out "$data" \
    ${trials:+--trials "$trials"} --seed "$seed"
  stage_end 1
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  stage_start 2 "augmentation"
  if [ -z "$noise_dir" ]; then
    echo "$0: --noise_dir is required for stage 2 (a folder with noise/ and music/ recordings)" >&2
    exit 1
  fi
  python3 -m wespeaker_like.bin.simulate_rirs --out_dir "$data/rirs" --num_rooms "$num_rooms" --seed "$seed"
  python3 -m wespeaker_like.bin.make_noise_resources --src_dir "$noise_dir" --out_dir "$data/noise_res"
  src=$data/train
  if $raw_audio; then
    echo "raw audio: resources only; the training crops are augmented on the fly in stage 4"
  elif $speed_perturb; then
    python3 -m wespeaker_like.bin.speed_perturb_data_dir --src "$src" --out "$data/train_sp" \
      --audio_dir "$data/train_sp/audio" --factors 0.9,1.1 --nj "$nj" --combined_out "$data/train_sp_combined"
    src=$data/train_sp_combined
  fi
  if ! $raw_audio; then
    python3 -m wespeaker_like.bin.augment_data_dir --src "$src" --out "$data/train_aug" \
      --audio_dir "$data/train_aug/audio" --types "$aug_types" --rirs "$data/rirs" \
      --noise "$data/noise_res/noise" --music "$data/noise_res/music" --babble_from "$src" \
      --seed "$seed" --nj "$nj" --combined_out "$data/train_combined"
  fi
  stage_end 2
fi
train_set=train_combined  # clean (+ speed-perturbed) + augmented copies
raw_opts=()
if $raw_audio; then
  train_set=train  # its audio, augmented on the fly with the stage-2 resources
  raw_opts=(dataset.augment.resources.rirs="$data/rirs" dataset.augment.resources.noise="$data/noise_res/noise"
            dataset.augment.resources.music="$data/noise_res/music" dataset.augment.resources.speech="$data/train")
  if $speed_perturb; then raw_opts+=("dataset.speed_perturb=[0.9,1.1]"); fi
fi
raw_train_set=$train_set
if $raw_audio && $pack_audio; then train_set=train_packed; fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  if $raw_audio; then
    stage_start 3 "no features: training and extraction read the audio"
    if $pack_audio; then  # decode every recording once into wave arks; crops then read only their bytes
      $feat_cmd --num-threads 1 JOB=1:$nj "$data/$raw_train_set/log/pack_audio.JOB.log" \
        python3 -m wespeaker_like.bin.make_features --config "$config" --data_dir "$data/$raw_train_set" \
          --feat_dir "$data/$raw_train_set/wav_ark" --pack "$data/$train_set" --job JOB --num_jobs $nj
      python3 -m wespeaker_like.bin.make_features --config "$config" --data_dir "$data/$raw_train_set" \
        --feat_dir "$data/$raw_train_set/wav_ark" --pack "$data/$train_set" --num_jobs $nj --merge
    fi
  else
    stage_start 3 "features"
    make_features_sets.sh "$config" "$data" "$nj" $train_set test
  fi
  # The clean training utterances (for the mean embedding of stage 6) share those features or audio.
  subset_data_dir.sh --utt-list "$data/train/utt2spk" "$data/$train_set" "$data/train_clean"
  stage_end 3
fi

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  stage_start 4 "training ($config -> $exp)"
  train_launch.sh "$config" "$data/$train_set" "$exp" "$num_gpus" "$num_nodes" "${raw_opts[@]}"
  stage_end 4
fi

if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then
  stage_start 5 "embeddings"
  extract_source=feats
  if $raw_audio; then extract_source=audio; fi  # through the saved front-end, as in training
  extract_sets.sh "$exp" "$data" "$nj" "$extract_device" "$extract_source" test train_clean
  stage_end 5
fi

if [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then
  stage_start 6 "scoring: $backends"
  train_emb=$exp/embeddings/train_clean/xvector.scp
  calibration_opts=()
  rm -f "$exp/calibration.json"
  if $calibrate; then
    # Without a development set, the calibration trials come from the training speakers: their
    # scores separate better than unseen speakers' (and the AS-norm cohort and PLDA saw them), so
    # the calibrated LLRs are somewhat overconfident on the test set.
    if [ -z "$calibration_trials" ]; then
      calibration_trials=$exp/scores/calibration.trials
      python3 -m wespeaker_like.bin.data_dir make_trials --num-target "$calibration_num_target" \
        --num-nontarget "$calibration_num_nontarget" --seed "$seed" "$data/train_clean" "$calibration_trials"
    fi
    calibration_opts=(--calibration_trials "$calibration_trials" --calibration_embeddings "$train_emb")
  fi
  mean_opt=()
  if $mean_norm; then mean_opt=(--mean_embeddings "$train_emb"); fi
  for backend in ${backends//,/ }; do
    case $backend in
      cosine) backend_opts=("${mean_opt[@]}") ;;
      asnorm) backend_opts=("${mean_opt[@]}" --asnorm_cohort "$train_emb" --asnorm_top_n "$asnorm_top_n") ;;
      plda)   backend_opts=(--plda_train "$train_emb" --plda_utt2spk "$data/train_clean/utt2spk"
                            --lda_dim "$lda_dim" --plda_model "$exp/plda.npz") ;;
    esac
    # The cosine calibration is the experiment's (bin.infer reads it); the others stay beside their scores.
    if $calibrate && [ "$backend" = cosine ]; then backend_opts+=(--calibration "$exp/calibration.json"); fi
    python3 -m wespeaker_like.bin.score --backend "$backend" --embeddings "$exp/embeddings/test/xvector.scp" \
      --trials "$data/test/trials" --scores "$exp/scores/test.$backend.score" \
      --results "$exp/scores/test.$backend.result" "${backend_opts[@]}" "${calibration_opts[@]}" --p_target 0.01 0.05
  done
  stage_end 6
fi

if [ $stage -le 7 ] && [ $stop_stage -ge 7 ]; then
  stage_start 7 "report"
  tsne_opt=()  # one t-SNE plot: the embeddings are the same for every back-end
  for backend in ${backends//,/ }; do
    python3 -m wespeaker_like.bin.report --exp_dir "$exp" --name "speechocean762/$(basename "$exp")" \
      --backend "$backend" --scores "$exp/scores/test.$backend.score" --trials "$data/test/trials" \
      --embeddings "$exp/embeddings/test/xvector.scp" --utt2spk "$data/test/utt2spk" \
      --spk2gender "$data/test/spk2gender" --results_md "$results_md" "${tsne_opt[@]}" \
      ${report_stats:+--stats "$report_stats"}
    tsne_opt=(--no_tsne)
  done
  stage_end 7
  cat "$timings"
fi
