#!/usr/bin/env bash
# Shows colabtray working with no Google account and no network: sets up .venv, then runs
# the tray against the local emulator of Google sign-in and Colab (colabtray --demo).
# Quit from the tray menu (or Ctrl-C here); that stops the emulator and its runtimes too.
# The demo keeps its accounts and state in demo/ folders of its own; yours are untouched.
#
# Usage: scripts/demo.sh [--headless] [-v]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/setup.sh
exec .venv/bin/colabtray --demo "$@"
