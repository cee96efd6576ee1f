#!/usr/bin/env bash
# Shows colabtray working with no Google account and no network: sets up .venv, then runs it
# against the local emulator of Google sign-in and Colab, until Ctrl-C.
#
# Usage: scripts/demo.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

die() {
  echo "demo: $*" >&2
  exit 1
}

show() {
  echo "\$ $*"
  "$@"
}

# Until the tray exists: start the emulator, assign a runtime with the CLI, show the status,
# and keep the emulator up for the reader to try more commands.
emulator_demo() {
  local demo_dir log
  demo_dir="$(mktemp -d -t colabtray-demo.XXXXXX)"
  log="$demo_dir/emulator.log"
  # The demo's settings and state stay out of the user's own.
  export COLABTRAY_CONFIG_DIR="$demo_dir/config" COLABTRAY_STATE_DIR="$demo_dir/state"

  # Its own session, so that Ctrl-C reaches only this script, which then stops it once, with
  # SIGINT (the trap - makes a background job take SIGINT again).
  (trap - INT && exec setsid .venv/bin/colabtray emulator) >"$log" 2>&1 &
  emulator_pid=$!
  trap stop_emulator EXIT
  trap 'exit 130' INT TERM

  for _ in $(seq 600); do
    grep -qx '# colabtray emulator ready' "$log" && break
    kill -0 "$emulator_pid" 2>/dev/null || { cat "$log" >&2; die "the emulator exited"; }
    sleep 0.1
  done
  grep -qx '# colabtray emulator ready' "$log" || die "the emulator was not ready in 60 s"
  local exports
  exports="$(grep -E '^export COLABTRAY_[A-Z0-9_]+=' "$log" || true)"
  eval "$exports"

  show .venv/bin/colabtray new --gpu T4
  show .venv/bin/colabtray status
  cat <<EOF

The colabtray emulator is running (its log: $log).
To use it from another terminal in this folder:

$exports
  .venv/bin/colabtray status
  .venv/bin/colabtray new --gpu T4
  .venv/bin/colabtray --help

Press Ctrl-C here to stop it.
EOF
  wait "$emulator_pid"
}

emulator_pid=""
# shellcheck disable=SC2317 # reached through the EXIT trap
stop_emulator() {
  [[ -n "$emulator_pid" ]] || return 0
  if kill -0 "$emulator_pid" 2>/dev/null; then
    echo "demo: stopping the emulator"
    kill -INT "$emulator_pid" 2>/dev/null || true
    for _ in $(seq 150); do
      kill -0 "$emulator_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -TERM "$emulator_pid" 2>/dev/null || true
  fi
  wait "$emulator_pid" 2>/dev/null || true
  emulator_pid=""
}

scripts/setup.sh
emulator_demo # once the tray exists: exec .venv/bin/colabtray --demo
