# Puts the repository's package and tools/ on PYTHONPATH/PATH (sourced by run.sh).
. "$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)/path.sh"
