#!/usr/bin/env bash
# ncl on a lent GPU machine that has CUDA, CMake and a compiler but no package archive (the
# device machines of docs/gpu.md): the build's Debian packages are downloaded here, travel with
# the tree in .kit/ (ignored by git), and are unpacked there under build-gpu/kit, never into /.
#
#   scripts/gpu.sh fetch        here: apt-get download the packages into .kit/debs (about 13 MB)
#   scripts/gpu.sh build        there: unpack .kit/debs into build-gpu/kit, build Release with
#                               CUDA (sm_90) into build-gpu/
#   scripts/gpu.sh check        there: build, then the [cuda] tests and ncl_bench --device cuda
#   scripts/gpu.sh run CMD...   there: build, then CMD with the kit's libraries on the library path
#
# Logs go to $OUT when it is set (the device tool's folder that comes back), else to gpu-out/.
set -euo pipefail
cd "$(dirname "$0")/.."

kit=.kit
debs=(catch2 libcli11-dev libgfortran5 libopenblas-dev libopenblas-pthread-dev libopenblas0
      libopenblas0-pthread nlohmann-json3-dev)
build_dir=build-gpu
out="${OUT:-gpu-out}"

fetch() {
  mkdir -p "$kit/debs"
  (cd "$kit/debs" && apt-get download "${debs[@]}")
  ls -l "$kit/debs"
}

# The kit's libraries first: OpenBLAS (pthread flavour, as scripts/setup.sh installs it) and
# the libgfortran it links against.
kit_root() { echo "$PWD/$build_dir/kit"; }  # unpacked beside the build, so .kit stays small to carry
library_path() {
  local root
  root="$(kit_root)"
  echo "$root/usr/lib/x86_64-linux-gnu/openblas-pthread:$root/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
}

build() {
  local root
  root="$(kit_root)"
  [ -d "$kit/debs" ] || { echo "gpu.sh: no $kit/debs; run 'scripts/gpu.sh fetch' on a machine with apt first" >&2; exit 1; }
  if [ ! -d "$root/usr" ]; then
    mkdir -p "$root"
    for deb in "$kit"/debs/*.deb; do
      if command -v dpkg-deb >/dev/null; then dpkg-deb -x "$deb" "$root"
      else  # not a Debian-based image: a .deb is an ar archive around data.tar.*
        local member tmp
        member=$(ar t "$deb" | grep '^data\.tar')
        tmp=$(mktemp -d)
        (cd "$tmp" && ar x "$OLDPWD/$deb" "$member")
        tar -xf "$tmp/$member" -C "$root"
        rm -rf "$tmp"
      fi
    done
  fi
  mkdir -p "$out"
  { uname -a; g++ --version | head -1; cmake --version | head -1; nvcc --version | tail -1
    nvidia-smi -L || true; nproc; } 2>&1 | tee "$out/machine.txt"
  if [ ! -f "$build_dir/CMakeCache.txt" ]; then
    cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DNCL_CUDA=ON \
      -DCMAKE_PREFIX_PATH="$root/usr" \
      -DCMAKE_LIBRARY_PATH="$root/usr/lib/x86_64-linux-gnu/openblas-pthread" \
      -DNCL_CBLAS_INCLUDE="$root/usr/include/x86_64-linux-gnu/openblas-pthread" \
      2>&1 | tee "$out/configure.log"
  fi
  cmake --build "$build_dir" -j "$(nproc)" 2>&1 | tail -n 40 | tee "$out/build.log"
}

check() {
  build
  export LD_LIBRARY_PATH
  LD_LIBRARY_PATH="$(library_path)"
  set +e
  "$build_dir/tests/ncl_tests" "[cuda]" 2>&1 | tee "$out/cuda-tests.log" | tail -n 30
  local tests=${PIPESTATUS[0]}
  "$build_dir/bench/ncl_bench" --device cuda 2>&1 | tee "$out/bench-cuda.txt"
  set -e
  echo "gpu.sh check: [cuda] tests exit $tests" | tee -a "$out/machine.txt"
  if grep -q "assertions: *0 |" "$out/cuda-tests.log"; then  # every test skipped itself
    echo "gpu.sh check: the [cuda] tests asserted nothing: no usable CUDA device" | tee -a "$out/machine.txt" >&2
    return 1
  fi
  return "$tests"
}

case "${1:-}" in
  fetch) fetch ;;
  build) build ;;
  check) check ;;
  run)
    shift
    [ $# -gt 0 ] || { echo "gpu.sh run: give a command" >&2; exit 2; }
    mkdir -p "$out"
    build >"$out/build-run.log" 2>&1 || { tail -n 30 "$out/build-run.log" >&2; exit 1; }
    LD_LIBRARY_PATH="$(library_path)" exec "$@"
    ;;
  *) sed -n '2,11p' "$0" >&2; exit 2 ;;
esac
