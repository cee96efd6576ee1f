#!/usr/bin/env bash
# The inside of scripts/test.sh: runs in its virtual X session (xvfb-run) with a private D-Bus
# session bus (dbus-run-session). Gives the run fresh home directories of its own and an
# unlocked Secret Service keyring, so it never touches the machine's own files or secrets;
# lints with ruff; runs pytest with the given arguments. Fails if either fails.
#
# Usage (from scripts/test.sh): bash tests/run-inside.sh [pytest args…]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ -z "${DISPLAY:-}" || -z "${DBUS_SESSION_BUS_ADDRESS:-}" ]]; then
  echo "run-inside: needs an X display and a session bus; run scripts/test.sh instead" >&2
  exit 2
fi

run_dir="$(mktemp -d -t colabtray-test.XXXXXX)"
background_pids=()
# shellcheck disable=SC2317 # reached through the EXIT trap
cleanup() {
  local pid
  for pid in "${background_pids[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$run_dir"
}
trap cleanup EXIT

export XDG_DATA_HOME="$run_dir/data"
export XDG_CONFIG_HOME="$run_dir/config"
export XDG_STATE_HOME="$run_dir/state"
export XDG_CACHE_HOME="$run_dir/cache"
export XDG_RUNTIME_DIR="$run_dir/runtime"
export IPYTHONDIR="$run_dir/ipython"
export JUPYTER_RUNTIME_DIR="$run_dir/jupyter-runtime"
export COLABTRAY_CONFIG_DIR="$run_dir/colabtray-config"
export COLABTRAY_STATE_DIR="$run_dir/colabtray-state"
export QT_QPA_PLATFORM=xcb
mkdir -p "$XDG_DATA_HOME" "$XDG_CONFIG_HOME" "$XDG_STATE_HOME" "$XDG_CACHE_HOME"
mkdir -m 0700 "$XDG_RUNTIME_DIR"

# The real OS keyring: gnome-keyring's Secret Service on this session bus, its login keyring
# created in $XDG_DATA_HOME and unlocked with a throwaway password.
printf %s some-pass |
  gnome-keyring-daemon --foreground --unlock --components=secrets >"$run_dir/keyring.env" &
background_pids+=("$!")
for _ in $(seq 100); do
  if dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
    org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null |
    grep -q 'boolean true'; then
    break
  fi
  sleep 0.1
done
while IFS= read -r line; do # the environment it prints, if any (GNOME_KEYRING_CONTROL=…)
  if [[ "$line" =~ ^[A-Z_][A-Z0-9_]*= ]]; then
    export "${line?}"
  fi
done <"$run_dir/keyring.env"
if ! .venv/bin/python -c '
import sys, keyring
backend = keyring.get_keyring()
print(f"run-inside: keyring backend: {backend}")
sys.exit("SecretService" not in type(backend).__module__)'; then
  echo "run-inside: keyring does not use the Secret Service; is gnome-keyring installed?" >&2
  exit 1
fi

lint_status=0
echo "run-inside: ruff check ."
.venv/bin/ruff check . || lint_status=$?

test_status=0
.venv/bin/python -m pytest "$@" || test_status=$?
if ((test_status == 5)); then
  echo "run-inside: pytest collected no tests: that is a failure" >&2
  test_status=1
fi

if ((lint_status != 0)); then
  echo "run-inside: ruff check failed (exit $lint_status)" >&2
fi
if ((test_status == 0 && lint_status != 0)); then
  exit 1
fi
exit "$test_status"
