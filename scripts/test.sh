#!/usr/bin/env bash
# Runs the whole test suite; from a clean clone on a fresh machine it first installs what the
# tests need: the Debian packages (apt-get only when one is missing) and .venv.
# Lints with ruff, type-checks colabtray with mypy, then runs pytest in parallel processes
# (pytest-xdist, a test file per worker at a time). Each process gets a headless desktop of its
# own (tests/fixtures/headless_desktop.py): an X screen, a session bus and an unlocked keyring,
# and fresh home directories, so the run never touches the machine's own files or secrets.
# Fails if any of the three fails.
#
# Usage: scripts/test.sh [pytest args…]    e.g. scripts/test.sh tests/unit -x
#        COLABTRAY_TEST_WORKERS=0 scripts/test.sh …   runs every test in one process
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/setup.sh --system

lint_status=0
echo "test.sh: ruff check ."
.venv/bin/ruff check . || lint_status=$?

# The files and the settings are pyproject.toml's [tool.mypy].
type_status=0
echo "test.sh: mypy"
.venv/bin/mypy || type_status=$?

# The tests mostly wait on servers, kernels and timers: three workers keep two cores busy.
# A short base for tmp_path: the apps the tests start keep their control sockets under it, and
# only a short path leaves room for a UNIX socket's (deeper, they would use the loopback
# channel instead, which tests/unit/test_ipc_tcp.py covers).
base_temp="$(mktemp -d /tmp/ct.XXXXXX)"
trap 'rm -rf "$base_temp"' EXIT
test_status=0
.venv/bin/python -m pytest -n "${COLABTRAY_TEST_WORKERS:-3}" --dist loadfile \
  --basetemp "$base_temp" "$@" || test_status=$?
if ((test_status == 5)); then
  echo "test.sh: pytest collected no tests: that is a failure" >&2
  test_status=1
fi
if ((lint_status != 0)); then
  echo "test.sh: ruff check failed (exit $lint_status)" >&2
  ((test_status != 0)) || test_status=1
fi
if ((type_status != 0)); then
  echo "test.sh: mypy failed (exit $type_status)" >&2
  ((test_status != 0)) || test_status=1
fi
echo "test.sh: exit $test_status after ${SECONDS} s"
exit "$test_status"
