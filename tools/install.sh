#!/usr/bin/env bash
# Installs what wespeaker_like needs; safe to run again (does nothing when all is in place).
#   Python packages of requirements.txt (pip), ffmpeg (Debian; only VoxCeleb2's AAC needs it).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=${PYTHON:-python3}

if ! "$python" - "$root/requirements.txt" <<'PY' 2>/dev/null
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
then
  echo "install.sh: installing Python packages from requirements.txt"
  "$python" -m pip install --quiet --disable-pip-version-check -r "$root/requirements.txt"
fi

if ! command -v ffmpeg >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "install.sh: installing ffmpeg (apt-get)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null
  else
    echo "install.sh: warning: ffmpeg not found and cannot be installed here (needed for VoxCeleb2 .m4a)" >&2
  fi
fi
