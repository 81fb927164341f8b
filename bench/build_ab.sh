#!/usr/bin/env bash
# Two builds of ncl_bench against each other, alternately A B, B A, A B ..., on the training step
# that `ncl train` runs by default (ncl_bench --default-only): each round's two step times and
# their ratio B / A, then the median ratio. The machines these sessions get change speed by up
# to 1.5× from one minute to the next, so a change of a few per cent shows only in the ratios of
# interleaved rounds, never in two runs made apart (docs/performance.md).
#
#   cp build/bench/ncl_bench /tmp/ncl_bench.before    # before the change; then rebuild
#   bench/build_ab.sh /tmp/ncl_bench.before build/bench/ncl_bench [set-transformer|dac]
#                     [ROUNDS (default 8)] [THREADS (default 2)]
#
# The Set Transformer's figure is the median of 30 steps of its N ∈ [300, 600) row; DAC's the
# mean of 10 steps over fixed batches. Run it on an otherwise idle machine.
set -euo pipefail

usage="usage: bench/build_ab.sh BENCH_A BENCH_B [set-transformer|dac] [ROUNDS] [THREADS]"
a=${1:?$usage}
b=${2:?$usage}
model=${3:-set-transformer}
rounds=${4:-8}
threads=${5:-2}
# row: a pattern of the default row; field: the step column, counted from the right
case "$model" in
  set-transformer) row='^B=10, N in \[300,600\)' field=4 steps=30 ;;
  dac)             row='^B=100' field=6 steps=20 ;;
  *) echo "$usage" >&2; exit 2 ;;
esac
for bench in "$a" "$b"; do
  [ -x "$bench" ] || { echo "build_ab: $bench is not an executable" >&2; exit 1; }
done

step_of() {  # the default row's step time of one run of ncl_bench $1
  "$1" --threads "$threads" --only "$model" --default-only --steps "$steps" |
    grep -E -e "$row" | head -1 | awk -v f="$field" '{v = $(NF - f); sub(/s$/, "", v); print v}'
}
ratios=()
for ((r = 1; r <= rounds; r++)); do
  # A first in odd rounds, B first in even ones: a machine that speeds up or slows down within
  # a round would otherwise favour one build every time.
  if ((r % 2)); then
    sa=$(step_of "$a")
    sb=$(step_of "$b")
  else
    sb=$(step_of "$b")
    sa=$(step_of "$a")
  fi
  [ -n "$sa" ] && [ -n "$sb" ] || { echo "build_ab: could not read a step time" >&2; exit 1; }
  ratio=$(/usr/bin/python3 -c "print(f'{$sb / $sa:.3f}')")
  ratios+=("$ratio")
  printf 'round %d: A %ss  B %ss  B/A %s\n' "$r" "$sa" "$sb" "$ratio"
done
/usr/bin/python3 -c "import statistics, sys; m = statistics.median(map(float, sys.argv[1:]));
print(f'$model, --threads $threads: median B/A over $rounds rounds: {m:.3f}')" "${ratios[@]}"
