#!/usr/bin/env bash
# One-command GPU speed check (benchmarks/gpu_check.py; at most 10 minutes on one GPU).
#
#   benchmarks/gpu_check.sh OUT_DIR [gpu_check.py options]     # e.g. --workers 12 --augment ...
#   benchmarks/gpu_check.sh OUT_DIR --smoke                    # tiny CPU run (CI: tests/test_benchmarks.py)
#
# Without --train-data, the loader rows read the shared speechocean762 training audio
# (../shared/data/speechocean762/train) when it is there; the results are OUT_DIR/results.{json,md}.
set -euo pipefail
if [ $# -lt 1 ] || [[ "$1" == -* ]]; then
  echo "usage: $0 OUT_DIR [gpu_check.py options]" >&2
  exit 2
fi
out=$1
shift
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$root/path.sh"
mkdir -p "$out"
extra=()
corpus="$root/../shared/data/speechocean762"
if [[ " $* " != *" --train-data "* ]] && [ -f "$corpus/train/wav.scp" ]; then
  # the corpus lists its audio relative to its root: a copy of the data dir with absolute paths
  python3 - "$corpus" "$out/train_data" <<'PY'
import sys
from pathlib import Path

from wespeaker_like.data.kaldi_dir import DataDir

corpus, dest = Path(sys.argv[1]), Path(sys.argv[2])
data = DataDir.load(corpus / "train")
data.tables["wav.scp"] = {u: str((corpus / p).resolve()) for u, p in data.tables["wav.scp"].items()}
data.save(dest)
PY
  extra=(--train-data "$out/train_data")
fi
# the limit is 600 s; gpu_check.py stops starting rows after its --time-limit (540 s by default)
exec timeout 600 python3 "$root/benchmarks/gpu_check.py" --out "$out" "${extra[@]}" "$@"
