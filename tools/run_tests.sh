#!/usr/bin/env bash
# Installs what is missing, then runs the test suite (extra arguments go to pytest).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/tools/install.sh"
. "$root/path.sh"
cd "$root"
exec python3 -m pytest -q "$@" tests
