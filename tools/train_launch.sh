#!/usr/bin/env bash
# Stage 4 of the recipes: bin.train through torchrun and $train_cmd (default run.pl): one CPU
# process with <num_gpus> 0, else <num_gpus> GPU processes per node; <num_nodes> > 1 runs one
# torchrun per node (array job) that meet through <exp>/rendezvous (tools/torchrun_node.sh).
# Arguments after <num_nodes> are more config overrides (key=value, as after bin.train's --set).
#
# Usage: train_launch.sh <config.yaml> <train_data> <exp> <num_gpus> <num_nodes> [key=value ...]
set -euo pipefail
if [ $# -lt 5 ]; then
  sed -n '2,7p' "$0" >&2
  exit 1
fi
config=$1; train_data=$2; exp=$3; num_gpus=$4; num_nodes=$5; shift 5
train_cmd=${train_cmd:-run.pl}
if [ "$num_gpus" -gt 0 ]; then
  procs=$num_gpus; device=cuda; gpu_opt="--gpu $num_gpus"
else
  procs=1; device=cpu; gpu_opt=""
fi
args=(-m wespeaker_like.bin.train --config "$config" --train_data "$train_data" --exp_dir "$exp"
      --set trainer.device=$device "$@")
mkdir -p "$exp"
if [ "$num_nodes" -gt 1 ]; then
  # One task per node; node 1 announces its address in $exp/rendezvous (shared file system).
  rm -f "$exp/rendezvous"
  echo "progress: $exp/train.log (per node: $exp/log/train.node.N.log)"
  $train_cmd $gpu_opt --max-jobs-run "$num_nodes" JOB=1:$num_nodes "$exp/log/train.node.JOB.log" \
    torchrun_node.sh JOB "$num_nodes" "$procs" "$exp/rendezvous" "${args[@]}"
else
  echo "progress: $exp/log/train.log"
  $train_cmd $gpu_opt "$exp/log/train.log" torchrun --standalone --nnodes=1 --nproc_per_node=$procs "${args[@]}"
fi
