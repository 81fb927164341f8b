#!/usr/bin/env bash
# Sets up (scripts/setup.sh) and runs the whole test suite with ctest. GPU tests carry the
# [cuda] tag and skip themselves on machines without a device.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
ctest --test-dir "${NCL_BUILD_DIR:-build}" --output-on-failure -j "$(nproc)"
