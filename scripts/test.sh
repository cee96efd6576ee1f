#!/usr/bin/env bash
# Runs the whole test suite; from a clean clone on a fresh machine it first installs what the
# tests need: the Debian packages (apt-get only when one is missing) and .venv.
# The suite runs in a virtual X screen (xvfb-run) with a private D-Bus session bus; see
# tests/run-inside.sh for what it sets up there.
#
# Usage: scripts/test.sh [pytest args…]    e.g. scripts/test.sh tests/unit -x
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/setup.sh --system

status=0
xvfb-run -a -s "-screen 0 1280x800x24" \
  dbus-run-session -- bash tests/run-inside.sh "$@" || status=$?
echo "test.sh: exit $status after ${SECONDS} s"
exit "$status"
