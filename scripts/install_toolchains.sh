#!/usr/bin/env bash
# Install the MCU cross-toolchains, QEMU and host tools msfopt's target harness needs
# (Debian 12 "bookworm", run as root). Idempotent: packages already installed are skipped
# by apt. Quiet: only errors and a one-line summary are printed. Exits non-zero on failure.
#
#   sudo scripts/install_toolchains.sh            # minimal set (bare-metal, no libc)
#   MSFOPT_WITH_LIBC=1 scripts/install_toolchains.sh   # also newlib/picolibc (+~2 GB)
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "install_toolchains.sh: must run as root (apt-get install)" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install_toolchains.sh: apt-get not found (Debian 12 is required)" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive

PKGS=(
  # cross compilers (binutils-* are dependencies, listed for clarity)
  gcc-arm-none-eabi binutils-arm-none-eabi
  gcc-riscv64-unknown-elf binutils-riscv64-unknown-elf
  gcc-xtensa-lx106 binutils-xtensa-lx106
  # emulators: qemu-system-arm (Cortex-M), qemu-system-misc (riscv32, xtensa)
  qemu-system-arm qemu-system-misc
  # host side: native reference build, the QEMU TCG plugin (needs only gcc + libc headers:
  # the plugin declares its API by hand, no glib/qemu headers), reference instruction counts
  gcc libc6-dev binutils valgrind
  # Python venv support for the README's commands on a fresh Debian 12
  python3 python3-venv python3-pip
  # headless browser of the plan-report test (tests/test_report.py renders the page)
  chromium
)
if [ "${MSFOPT_WITH_LIBC:-0}" = "1" ]; then
  PKGS+=(libnewlib-arm-none-eabi picolibc-arm-none-eabi picolibc-riscv64-unknown-elf
         picolibc-xtensa-lx106-elf)
fi

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

log=$(mktemp)
trap 'rm -f "$log"' EXIT
if [ "${#missing[@]}" -gt 0 ]; then
  if ! apt-get update -qq >"$log" 2>&1; then
    cat "$log" >&2; echo "install_toolchains.sh: apt-get update failed" >&2; exit 1
  fi
  if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$log" 2>&1; then
    tail -n 30 "$log" >&2; echo "install_toolchains.sh: apt-get install failed" >&2; exit 1
  fi
fi

# Verify the tools the harness calls are on PATH.
fail=0
for t in arm-none-eabi-gcc arm-none-eabi-size arm-none-eabi-nm \
         riscv64-unknown-elf-gcc riscv64-unknown-elf-size riscv64-unknown-elf-nm \
         xtensa-lx106-elf-gcc xtensa-lx106-elf-size xtensa-lx106-elf-nm \
         qemu-system-arm qemu-system-riscv32 qemu-system-xtensa gcc size nm valgrind chromium; do
  if ! command -v "$t" >/dev/null 2>&1; then echo "install_toolchains.sh: missing $t" >&2; fail=1; fi
done
[ "$fail" -eq 0 ] || exit 1
echo "install_toolchains.sh: ok (${#missing[@]} package(s) installed)"
