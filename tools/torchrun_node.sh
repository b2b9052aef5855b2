#!/usr/bin/env bash
# One node of a multi-node training run, launched once per node by $train_cmd (run.pl, queue.pl or
# slurm.pl with JOB=1:<num_nodes>):
#
#   torchrun_node.sh <node> <num_nodes> <nproc_per_node> <rendezvous_file> <torchrun arguments...>
#
# Node 1 writes its host name to <rendezvous_file> (on a file system every node sees) and hosts the
# c10d rendezvous store there; the other nodes wait for the file and join. Environment:
#   RDZV_HOST  the address node 1 announces (default: its host name; 127.0.0.1 for nodes on one machine)
#   RDZV_PORT  the store's port (default 29400)
#   RDZV_WAIT  seconds the other nodes wait for the file (default 3600)
set -euo pipefail
if [ $# -lt 5 ]; then
  echo "usage: $0 <node> <num_nodes> <nproc_per_node> <rendezvous_file> <torchrun arguments...>" >&2
  exit 1
fi
node=$1; num_nodes=$2; nproc=$3; rdzv_file=$4; shift 4
for value in "$node" "$num_nodes" "$nproc"; do
  [[ "$value" =~ ^[1-9][0-9]*$ ]] || { echo "$0: expected a positive integer, got '$value'" >&2; exit 1; }
done
port=${RDZV_PORT:-29400}
if [ "$node" -eq 1 ]; then
  host=${RDZV_HOST:-$(hostname)}
  echo "$host:$port" > "$rdzv_file.tmp.$$" && mv "$rdzv_file.tmp.$$" "$rdzv_file"
  is_host=1
else
  waited=0
  until [ -s "$rdzv_file" ]; do
    if [ "$waited" -ge "${RDZV_WAIT:-3600}" ]; then
      echo "$0: node $node: node 1 did not write $rdzv_file within $waited s" >&2
      exit 1
    fi
    sleep 1; waited=$((waited + 1))
  done
  is_host=0
fi
endpoint=$(cat "$rdzv_file")
echo "$0: node $node of $num_nodes, $nproc processes, c10d rendezvous at $endpoint" >&2
exec torchrun --nnodes="$num_nodes" --nproc_per_node="$nproc" --rdzv_backend=c10d \
  --rdzv_endpoint="$endpoint" --rdzv_id="$(basename "$(dirname "$rdzv_file")")" \
  --rdzv_conf="is_host=$is_host" "$@"
