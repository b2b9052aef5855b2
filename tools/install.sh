#!/usr/bin/env bash
# Installs what wespeaker_like needs; safe to run again (does nothing when all is in place).
#   Python packages of requirements.txt and requirements-test.txt (pip), ffmpeg (Debian; only VoxCeleb2's AAC
#   needs it).
# Where the Python refuses `pip install` (PEP 668: an EXTERNALLY-MANAGED file in its stdlib directory, as on
# current Debian and Ubuntu) the packages go into a virtual environment, .venv in the repository, which
# path.sh then activates.
#
#   tools/install.sh [--dry-run]     --dry-run: say what would be installed, change nothing
# Environment: PYTHON (default python3); WESPEAKER_LIKE_VENV (default <repo>/.venv);
# WESPEAKER_LIKE_STDLIB (where to look for EXTERNALLY-MANAGED; default the Python's own stdlib directory).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=${PYTHON:-python3}
venv=${WESPEAKER_LIKE_VENV:-$root/.venv}
dry_run=false
case "${1:-}" in
  --dry-run) dry_run=true ;;
  "") ;;
  *) echo "usage: tools/install.sh [--dry-run]" >&2; exit 2 ;;
esac

run() {  # run a command, or only print it with --dry-run
  if $dry_run; then echo "install.sh: would run: $*"; else "$@"; fi
}

if [ -x "$venv/bin/python" ]; then
  python=$venv/bin/python
else
  stdlib=${WESPEAKER_LIKE_STDLIB:-$("$python" -c 'import sysconfig; print(sysconfig.get_path("stdlib"))')}
  if [ -f "$stdlib/EXTERNALLY-MANAGED" ]; then
    echo "install.sh: $python is externally managed (PEP 668); using the virtual environment $venv"
    # System site packages stay visible: what the distribution installed is not downloaded again.
    run "$python" -m venv --system-site-packages "$venv"
    python=$venv/bin/python
  fi
fi

missing=()
for requirements in "$root/requirements.txt" "$root/requirements-test.txt"; do
  if ! $dry_run || [ -x "$python" ] || command -v "$python" >/dev/null; then
    "$python" - "$requirements" <<'PY' 2>/dev/null || missing+=(-r "$requirements")
import sys
from importlib.metadata import version, PackageNotFoundError
for line in open(sys.argv[1]):
    line = line.split("#")[0].strip()
    if not line:
        continue
    name, _, wanted = line.partition("==")
    try:
        if version(name).split("+")[0] != wanted:
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
PY
  else  # the virtual environment a dry run did not create
    missing+=(-r "$requirements")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install.sh: installing Python packages (pip install ${missing[*]})"
  run "$python" -m pip install --quiet --disable-pip-version-check "${missing[@]}"
fi

if ! command -v ffmpeg >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "install.sh: installing ffmpeg (apt-get)"
    run apt-get update -qq && DEBIAN_FRONTEND=noninteractive run apt-get install -y -qq ffmpeg
  else
    echo "install.sh: warning: ffmpeg not found and cannot be installed here (needed for VoxCeleb2 .m4a)" >&2
  fi
fi
