#!/usr/bin/env bash
# Paper 000 (CLUB) mini proof on speechocean762: the stage-2 condition of each training copy
# (clean / reverb / noise / music / babble) plays the device. Stage A pre-trains the encoder with the
# speaker loss only; rows 2b (speaker loss), 3b (+ device loss) and 6b (all five terms of eq. 21)
# fine-tune that same Stage A model with one budget. Reported: EER / minDCF on the test trials and
# a linear device probe (fit on part of the training copies, tested on other utterances' copies)
# on x, x_s and x_d, with the Gaussian MI(x_s; x_d) (both tables in RESULTS.md).
#
# Stages 0-3 (data, stage-2 copies, features) are v1's, run there first; this script reads its data dir:
#
#   bash egs/speechocean762/club/run.sh                        # stages 4-7 on ../v1/data
#   bash egs/speechocean762/club/run.sh --stage 7 --configs "2b 6b"
set -euo pipefail
recipe_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
v1=$recipe_dir/../v1
. "$v1/path.sh"
. "$v1/cmd.sh"

stage=4
stop_stage=7
data=$v1/data            # v1's data dir: train_combined (clean + 4 stage-2 copies), train_clean, test
exp=$recipe_dir/exp      # $exp/data (the device-labelled copies), $exp/stage_a, $exp/<row>
configs="2b 3b 6b"       # Stage B rows, each fine-tuned from $exp/stage_a
nj=2
extract_device=cpu
results_md=$recipe_dir/RESULTS.md
probe_md=$results_md     # the probe table goes under the results table
help_message="Usage: $0 [--stage N] [--stop-stage N] [--data DIR] [--exp DIR] [--configs \"2b 3b 6b\"] [--nj N]"
. "$WESPEAKER_LIKE_ROOT/tools/parse_options.sh"

# Path arguments are taken from where the script is run; make them absolute before any cd.
data=$(cd "$data" && pwd)
mkdir -p "$exp"; exp=$(cd "$exp" && pwd)
labelled=$exp/data/train_dev

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  # utt2dev from utt2uniq and each copy's id suffix; probe sets: the copies of every 10th original
  # (train) and of others (test), so a probed utterance never has a copy on the other side.
  python3 -m wespeaker_like.bin.data_dir subset --first "$(wc -l < "$data/train_combined/utt2spk")" \
    "$data/train_combined" "$labelled"
  python3 -m wespeaker_like.bin.data_dir copy_conditions "$labelled"
  for split in probe_train:0 probe_test:5; do
    awk -v r="${split#*:}" '$1 == $2 { n++; if (n % 10 == r) keep[$1] = 1 }
         { uniq[$1] = $2 } END { for (u in uniq) if (uniq[u] in keep) print u }' \
      "$labelled/utt2uniq" | sort > "$exp/data/${split%:*}.list"
    python3 -m wespeaker_like.bin.data_dir subset --utt-list "$exp/data/${split%:*}.list" "$labelled" \
      "$exp/data/${split%:*}"
  done
  for config in stage_a $configs; do
    init=()
    if [ "$config" != stage_a ]; then init=(init_from.path="$exp/stage_a"); fi
    echo "$(date '+%F %T') training $config -> $exp/$config (progress: $exp/$config/train.log)"
    python3 -m wespeaker_like.bin.train --config "$recipe_dir/conf/$config.yaml" --train_data "$labelled" \
      --exp_dir "$exp/$config" --set trainer.device=cpu "${init[@]}"
  done
fi

if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then
  for config in stage_a $configs; do
    extract_sets.sh "$exp/$config" "$data" $nj "$extract_device" auto test train_clean
    branches=x,x_s,x_d
    if [ "$config" = stage_a ]; then branches=x; fi  # no decoupling block
    extract_sets.sh --branch $branches "$exp/$config" "$exp/data" $nj "$extract_device" auto probe_train probe_test
  done
fi

if [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then
  for config in stage_a $configs; do
    python3 -m wespeaker_like.bin.score --embeddings "$exp/$config/embeddings/test/xvector.scp" \
      --trials "$data/test/trials" --scores "$exp/$config/scores/test.cosine.score" \
      --results "$exp/$config/scores/test.result" \
      --mean_embeddings "$exp/$config/embeddings/train_clean/xvector.scp" --p_target 0.01 0.05
  done
fi

if [ $stage -le 7 ] && [ $stop_stage -ge 7 ]; then
  for config in stage_a $configs; do
    python3 -m wespeaker_like.bin.report --exp_dir "$exp/$config" --name "speechocean762/club/$config" \
      --scores "$exp/$config/scores/test.cosine.score" --trials "$data/test/trials" \
      --embeddings "$exp/$config/embeddings/test/xvector.scp" --utt2spk "$data/test/utt2spk" \
      --spk2gender "$data/test/spk2gender" --results_md "$results_md" \
      --probe_train "$exp/$config/embeddings/probe_train" --probe_test "$exp/$config/embeddings/probe_test" \
      --probe_labels "$labelled/utt2dev" --probe_md "$probe_md"
  done
fi
