#!/usr/bin/env bash
# The same-run comparison of spec/performance.md ("How to measure"): ncl's training step as
# `ncl train` runs it by default (ncl_bench --default-only) against our PyTorch peer
# (../shared/peers), alternately A, B, A, B ..., then each round's ratio and their median.
#
#   bench/peer_ab.sh set-transformer|set-transformer-500|dac|ncp [ROUNDS (default 3)]
#
# Each round runs ncl_bench (20 steps after warm-up; DAC 10) and then the peer script (25 steps
# after 5 warm-up steps), both with the machine's 2 cores. ncl's figure is the step of the
# default micro-batch row (the median for the Set Transformer, the mean over fixed batches for
# DAC and NCP, whose N varies); the peer's is its median. Peak RSS: the peer's whole process
# (/usr/bin/time -v; importing torch alone is 239 MiB), and ncl_bench's (the benchmark process,
# with its test matrices: measure `ncl train` with /usr/bin/time -v for the README's figure).
# Needs python3-torch libopenblas0-pthread time (Debian): for benchmarks only, never for CI.
# Run it on an otherwise idle machine; build first (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

usage="usage: bench/peer_ab.sh set-transformer|set-transformer-500|dac|ncp [ROUNDS]"
model=${1:?$usage}
rounds=${2:-3}
bench=${NCL_BUILD_DIR:-build}/bench/ncl_bench
peers=../shared/peers
# section: ncl_bench --only; row: a pattern of ncl's row; field: the step column, from the right
case "$model" in
  set-transformer)     section=set-transformer row='\[300,600\) --micro-batch' field=4
                       peer=("$peers/set_transformer.py") ;;
  set-transformer-500) section=set-transformer row='N = 500 --micro-batch' field=4
                       peer=("$peers/set_transformer.py" --N 500) ;;
  dac)                 section=dac row='--micro-batch' field=6 peer=("$peers/dac.py") ;;
  ncp)                 section=ncp row='--micro-batch' field=7 peer=("$peers/ncp.py" --impl vec) ;;
  *) echo "$usage" >&2; exit 2 ;;
esac
[ -x "$bench" ] || { echo "peer_ab: $bench not built; HINT: scripts/setup.sh" >&2; exit 1; }
[ -f "${peer[0]}" ] || { echo "peer_ab: ${peer[0]} not found (../shared/peers)" >&2; exit 1; }
/usr/bin/python3 -c 'import torch' 2>/dev/null ||
  { echo "peer_ab: no torch; HINT: apt-get install python3-torch libopenblas0-pthread time" >&2; exit 1; }

log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT
ratios=()
for ((r = 1; r <= rounds; r++)); do
  "$bench" --threads 2 --only "$section" --default-only >"$log/ncl.txt"
  ncl_s=$(grep -E -e "$row" "$log/ncl.txt" | head -1 | awk -v f="$field" '{v = $(NF - f); sub(/s$/, "", v); print v}')
  ncl_rss=$(awk '/peak RSS \(whole process\)/ {print $(NF - 1)}' "$log/ncl.txt")
  LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-pthread \
    /usr/bin/time -v /usr/bin/python3 "${peer[@]}" >"$log/peer.txt" 2>"$log/peer.err"
  peer_s=$(sed -n 's/.*median_s_per_step=\([0-9.e-]*\).*/\1/p' "$log/peer.txt")
  peer_rss=$(awk -F: '/Maximum resident set size/ {printf "%.0f", $2 / 1024}' "$log/peer.err")
  [ -n "$ncl_s" ] && [ -n "$peer_s" ] || { echo "peer_ab: could not read a step time" >&2; exit 1; }
  ratio=$(/usr/bin/python3 -c "print(f'{$ncl_s / $peer_s:.3f}')")
  ratios+=("$ratio")
  printf 'round %d: ncl %ss (peak RSS %s MiB)  peer %ss (peak RSS %s MiB)  ratio %s\n' \
    "$r" "$ncl_s" "$ncl_rss" "$peer_s" "$peer_rss" "$ratio"
done
/usr/bin/python3 -c "import statistics, sys; print(f'$model: median ratio ncl / PyTorch peer over $rounds rounds: {statistics.median(map(float, sys.argv[1:])):.2f}')" "${ratios[@]}"
