# parse_options.sh: Kaldi-style command-line options for recipe scripts (bash).
#
# Source it after the script has set its defaults:
#
#     stage=0
#     stop_stage=100
#     use_gpu=true
#     config=conf/ecapa.yaml
#     help_message="Usage: $0 [options] [<data-dir>]"
#     . tools/parse_options.sh
#
# Then `--stop-stage 4`, `--stop_stage 4` and `--stop-stage=4` all set stop_stage=4.
#   * An option sets the variable of the same name (dashes read as underscores); that variable
#     must already be defined (possibly as empty), otherwise it is an error (exit 1).
#   * A variable whose current value is true or false only accepts true or false; one whose
#     current value is an integer (stage=0, nj=4) only accepts an integer, and one holding a
#     decimal number (lr=0.1) only a number.
#   * `--help` / `-h` prints $help_message (if set) and every option with its current value
#     (the lowercase, non-exported variables defined so far), then exits 0.
#   * Options end at the first argument not starting with `--` (or after `--`). A script that
#     takes positional arguments says so by setting positional_usage (e.g. "<data-dir>") before
#     sourcing; they are then left in "$@" for it to check. Otherwise any leftover argument is
#     an error, and so is an option after a positional argument (`run.sh extra --stage 9` would
#     otherwise silently drop --stage).
#   * Unlike Kaldi's, `--config` is an ordinary option (recipes use it for a YAML file).
# Works under `set -euo pipefail`. Internal names start with __po_ and are unset at the end.

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  echo "parse_options.sh: source this file from a bash script ('. tools/parse_options.sh'), do not run it" >&2
  exit 1
fi

__po_die() {
  echo "$0: $1" >&2
  exit 1
}

__po_print_help() {
  if [ -n "${help_message:-}" ]; then
    printf '%s\n' "$help_message"
  fi
  echo "Options (current values):"
  local __po_var __po_declared
  for __po_var in $(compgen -A variable); do
    [[ $__po_var =~ ^[a-z][a-z0-9_]*$ && $__po_var != help_message && $__po_var != positional_usage ]] || continue
    __po_declared=$(declare -p "$__po_var")
    # Skip exported variables (environment) and arrays: neither is a recipe option.
    [[ $__po_declared =~ ^declare\ -[^\ ]*[xaA] ]] && continue
    if [ -n "${!__po_var}" ]; then
      printf '  --%s %s\n' "${__po_var//_/-}" "${!__po_var}"
    else
      printf '  --%s ""\n' "${__po_var//_/-}"
    fi
  done
}

__po_after_double_dash=false
while [ $# -gt 0 ]; do
  case "$1" in
    --)
      shift
      __po_after_double_dash=true
      break ;;
    -h|--help)
      __po_print_help
      exit 0 ;;
    --?*=*)
      __po_option=${1%%=*}
      __po_value=${1#*=}
      shift ;;
    --?*)
      __po_option=$1
      [ $# -ge 2 ] || __po_die "option $1 needs a value"
      __po_value=$2
      shift 2 ;;
    *)
      break ;;
  esac
  __po_name=${__po_option#--}
  __po_name=${__po_name//-/_}
  if ! [[ $__po_name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || [[ $__po_name == __po_* ]]; then
    __po_die "invalid option '$__po_option' (expected --name or --name=value)"
  fi
  if ! [[ -v $__po_name ]]; then
    __po_die "invalid option $__po_option: this script has no variable '$__po_name' (see $0 --help)"
  fi
  __po_declared=$(declare -p "$__po_name")
  if [[ $__po_declared =~ ^declare\ -[^\ ]*[aA] ]]; then
    __po_die "option $__po_option: '$__po_name' is an array and cannot be set from the command line"
  fi
  if [[ $__po_declared =~ ^declare\ -[^\ ]*r ]]; then
    __po_die "option $__po_option: '$__po_name' is read-only"
  fi
  if [[ ${!__po_name} == true || ${!__po_name} == false ]] && [[ $__po_value != true && $__po_value != false ]]; then
    __po_die "option $__po_option expects true or false, got '$__po_value'"
  fi
  if [[ ${!__po_name} =~ ^-?[0-9]+$ ]] && ! [[ $__po_value =~ ^-?[0-9]+$ ]]; then
    __po_die "option $__po_option expects an integer, got '$__po_value'"
  fi
  if [[ ${!__po_name} =~ ^-?[0-9]*\.[0-9]+([eE][-+]?[0-9]+)?$ ]] &&
     ! [[ $__po_value =~ ^-?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$ ]]; then
    __po_die "option $__po_option expects a number, got '$__po_value'"
  fi
  printf -v "$__po_name" '%s' "$__po_value"
done

if [ -z "${positional_usage:-}" ] && [ $# -gt 0 ]; then
  __po_die "unexpected argument '$1': this script takes only options (see $0 --help)"
fi
for __po_value in "$@"; do
  if [[ $__po_after_double_dash == false && $__po_value == --?* ]]; then
    __po_die "option $__po_value comes after the positional argument '$1'; put options first"
  fi
done

unset -v __po_option __po_name __po_value __po_declared __po_after_double_dash
unset -f __po_die __po_print_help
