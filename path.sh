# Source from anywhere: puts this repository's package and tools/ on the paths (no symlinks needed).
WESPEAKER_LIKE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export WESPEAKER_LIKE_ROOT
# The virtual environment tools/install.sh made where the system Python is externally managed (PEP 668).
WESPEAKER_LIKE_VENV="${WESPEAKER_LIKE_VENV:-$WESPEAKER_LIKE_ROOT/.venv}"
if [ -f "$WESPEAKER_LIKE_VENV/bin/activate" ] && [ "${VIRTUAL_ENV:-}" != "$WESPEAKER_LIKE_VENV" ]; then
  . "$WESPEAKER_LIKE_VENV/bin/activate"
fi
export PATH="$WESPEAKER_LIKE_ROOT/tools:$PATH"
export PYTHONPATH="$WESPEAKER_LIKE_ROOT${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
export LC_ALL=C
# glibc returning freed memory to the OS costs PyTorch CPU training dearly on small VMs
# (1.5x slower ECAPA training, benchmarks/README.md); keep freed memory in the process instead.
export MALLOC_MMAP_MAX_=${MALLOC_MMAP_MAX_:-0}
export MALLOC_TRIM_THRESHOLD_=${MALLOC_TRIM_THRESHOLD_:-100000000000}
# OpenMP threads that spin while waiting collapse throughput when another job holds a core;
# passive waiting costs nothing on free cores (benchmarks/README.md).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
