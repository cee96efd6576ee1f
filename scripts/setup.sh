#!/usr/bin/env bash
# Sets up a checkout for development: .venv at the repository root, made with the machine's
# python3 (3.11 or newer), with colabtray installed editable and its emulator, test and bundle
# (PyInstaller) extras, so that .venv/bin/colabtray exists. Safe to run again.
#
# Usage: scripts/setup.sh [--system]
#   --system  first install the Debian packages the tests need (apt-get runs only when one is
#             missing; sudo only when not root). scripts/test.sh passes it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# What the test session needs from Debian (docs/testing-notes.md §2): a virtual screen
# and input, Qt's xcb libraries, a tray host, notification daemons, the Secret Service keyring,
# a session bus, a browser, desktop-file-validate for the desktop entries, and OpenSSH's sshd
# (the emulator's runtimes run it per SSH connection; no system sshd service is started:
# containers' policy-rc.d forbids it, and nothing here needs one) with ssh, scp and rsync. Never
# keyrings.alt: with it keyring silently picks a plaintext file instead of the real keyring.
# tmux: the emulator's /colab/tty runs bash inside it, as Colab does.
SYSTEM_PACKAGES=(
  xvfb xauth xdotool x11-apps imagemagick
  libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libxkbcommon-x11-0
  trayer dunst notification-daemon gnome-keyring dbus-x11
  chromium chromium-driver
  desktop-file-utils
  openssh-server openssh-client rsync
  tmux
)

install_system_packages() {
  local package missing=()
  for package in "${SYSTEM_PACKAGES[@]}"; do
    if [[ "$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null)" != installed ]]; then
      missing+=("$package")
    fi
  done
  if ((${#missing[@]} == 0)); then
    echo "setup: Debian packages: all present"
    return
  fi
  local sudo=()
  ((EUID == 0)) || sudo=(sudo)
  echo "setup: Debian packages: installing ${missing[*]}"
  # No service may start during the install (openssh-server would start a system sshd):
  # a policy-rc.d that denies every start, unless the machine has one (containers do).
  local policy=/usr/sbin/policy-rc.d made_policy=0 status=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
    "${sudo[@]}" chmod 755 "$policy"
    made_policy=1
  fi
  "${sudo[@]}" apt-get update -qq || status=$?
  if ((status == 0)); then
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 "${missing[@]}" \
      >/dev/null || status=$?
  fi
  if ((made_policy)); then
    "${sudo[@]}" rm -f "$policy"
  fi
  return "$status"
}

# pip with only its errors (-qq hides the build backend's warnings), minus the machine pip
# config's harmless "Location '…' is ignored" warnings.
pip_quietly() {
  .venv/bin/python -m pip "$@" 2>&1 | { grep -v "^WARNING: Location '.*' is ignored" || true; }
}

case "${1:-}" in
  "") ;;
  --system) install_system_packages ;;
  *) echo "usage: $0 [--system]" >&2; exit 2 ;;
esac

if [[ ! -x .venv/bin/python ]]; then
  if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "setup: colabtray needs Python 3.11 or newer; python3 is $(python3 --version)" >&2
    exit 1
  fi
  echo "setup: creating .venv with $(python3 --version)"
  python3 -m venv .venv
fi
pip_quietly install -qq --upgrade pip
pip_quietly install -qq -e '.[emulator,test,bundle]'
if [[ ! -x .venv/bin/colabtray ]]; then
  echo "setup: .venv/bin/colabtray is missing after the install" >&2
  exit 1
fi
echo "setup: .venv ready"
