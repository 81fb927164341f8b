#!/usr/bin/env bash
# Installs what ncl needs from Debian's archive (only what is missing) and builds it.
# Idempotent: with everything installed and built it only re-runs an incremental build.
#   scripts/setup.sh            install + configure + build (Release) into build/
#   NCL_BUILD_DIR=dir scripts/setup.sh   build somewhere else
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential cmake libopenblas-dev catch2 nlohmann-json3-dev libcli11-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi

build_dir="${NCL_BUILD_DIR:-build}"
if [ ! -f "$build_dir/CMakeCache.txt" ]; then
  cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release
fi
cmake --build "$build_dir" -j "$(nproc)"
