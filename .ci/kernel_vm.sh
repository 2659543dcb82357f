#!/usr/bin/env bash
# Kernel VM tests: install what they need on a fresh Debian machine, then run them.
#   bash .ci/kernel_vm.sh [VENV]        (VENV defaults to .venv; it must already hold riffpad's
#                                        dependencies, as .ci/run makes it)
# Boots a Debian kernel under QEMU (TCG) with virtme-ng and drives hid-tools' emulated
# DualSense through /dev/uhid. With CI=true a missing tool fails the tests instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${1:-.venv}"

export DEBIAN_FRONTEND=noninteractive
apt_pkgs=(qemu-system-x86 linux-image-amd64 busybox-static udev libevdev2)
missing=()
for p in "${apt_pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
  $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"
fi

[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q virtme-ng 'hid-tools==0.12' pyudev libevdev

# vng shells out to virtme-run, which lives in the venv.
export PATH="$(cd "$venv" && pwd)/bin:$PATH"
export RIFFPAD_VM_PYTHON="$(cd "$venv" && pwd)/bin/python"
"$venv/bin/python" -m pytest -m kernel_vm tests/integration/test_kernel_vm.py "${@:2}"
