#!/usr/bin/env bash
# Longer fuzzing than CI's few seconds (issue 11): builds every libFuzzer target with clang (the
# flags scripts/test.sh uses), runs each for FUZZ_SECONDS seeded from the real captures
# (fuzz/seeds.txt), and prints one row per target: seeds, executions, exec/s, corpus size and
# findings (a crash, leak, timeout or OOM: libFuzzer's exit status and the artifacts it wrote).
# Goal: at least FUZZ_MIN_EXECS executions per target (default 1,000,000) with no finding.
#
# Usage: bench/fuzz_bench.sh [target ...]            (default: every fuzz/*_fuzz.cc)
#   FUZZ_SECONDS=60     seconds per target
#   FUZZ_PARALLEL=1     targets run at once (each one process)
#   FUZZ_MIN_EXECS=1000000
#   FUZZ_BENCH_DIR=build/fuzz/bench   corpora (kept between runs, so later runs go deeper),
#                                     logs, findings and results.txt
#   JOBS=$(nproc)       build parallelism
# Exit status: 0 when no target found anything, 1 otherwise (the goal column is reported only).
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_PARALLEL=${FUZZ_PARALLEL:-1}
FUZZ_MIN_EXECS=${FUZZ_MIN_EXECS:-1000000}
OUT=${FUZZ_BENCH_DIR:-build/fuzz/bench}
JOBS=${JOBS:-$(nproc)}
if command -v ccache >/dev/null; then
  export CMAKE_C_COMPILER_LAUNCHER=${CMAKE_C_COMPILER_LAUNCHER:-ccache}
  export CMAKE_CXX_COMPILER_LAUNCHER=${CMAKE_CXX_COMPILER_LAUNCHER:-ccache}
fi

if (($# > 0)); then
  targets=("$@")
else
  mapfile -t targets < <(cd fuzz && ls *_fuzz.cc | sed 's/\.cc$//')
fi
echo "== building ${#targets[@]} fuzz target(s) with clang (build/fuzz)" >&2
CC=clang CXX=clang++ cmake -S . -B build/fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DGREY_FUZZ=ON -DGREY_TESTS=OFF >/dev/null
cmake --build build/fuzz -j "$JOBS" --target "${targets[@]}" >&2

source fuzz/seed_inputs.sh
mkdir -p "$OUT"/corpus "$OUT"/seeds "$OUT"/findings "$OUT"/logs

run_one() {
  local name=$1 nseeds rc=0
  mkdir -p "$OUT"/corpus/"$name"
  nseeds=$(fuzz_seed_list "$name" "$OUT"/seeds/"$name".list)
  local -a seed_flag=()
  ((nseeds > 0)) && seed_flag=(-seed_inputs=@"$OUT"/seeds/"$name".list)
  rm -f "$OUT"/findings/"$name"-*
  # The writable corpus first: libFuzzer adds new inputs there only.
  build/fuzz/fuzz/"$name" -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 \
    -rss_limit_mb=2048 -timeout=10 -artifact_prefix="$OUT"/findings/"$name"- "${seed_flag[@]}" \
    "$OUT"/corpus/"$name" >"$OUT"/logs/"$name".log 2>&1 || rc=$?
  echo "$nseeds $rc" >"$OUT"/logs/"$name".rc
}

echo "== fuzzing each target for ${FUZZ_SECONDS}s, ${FUZZ_PARALLEL} at a time" >&2
running=0
for t in "${targets[@]}"; do
  run_one "$t" &
  running=$((running + 1))
  if ((running >= FUZZ_PARALLEL)); then
    wait -n || true
    running=$((running - 1))
  fi
done
wait || true

found=0
{
  printf '%-24s %6s %12s %10s %8s %-9s %s\n' target seeds executions exec/s corpus ">=goal" findings
  total=0
  for t in "${targets[@]}"; do
    log="$OUT"/logs/"$t".log
    read -r nseeds rc <"$OUT"/logs/"$t".rc
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -n1)
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -n1)
    corpus=$(find "$OUT"/corpus/"$t" -type f | wc -l)
    mapfile -t art < <(find "$OUT"/findings -name "$t-*" -type f)
    what="none"
    if ((rc != 0 || ${#art[@]} > 0)); then
      found=1
      what="exit $rc:"
      for a in "${art[@]}"; do what+=" $(basename "$a")"; done
      [[ ${#art[@]} -eq 0 ]] && what+=" see $log"
    fi
    goal=no
    [[ -n "${execs:-}" && "$execs" -ge "$FUZZ_MIN_EXECS" ]] && goal=yes
    total=$((total + ${execs:-0}))
    printf '%-24s %6s %12s %10s %8s %-9s %s\n' "$t" "$nseeds" "${execs:-?}" "${rate:-?}" "$corpus" \
      "$goal" "$what"
  done
  echo "total executions: $total in ${#targets[@]} target(s) x ${FUZZ_SECONDS}s ($(nproc) CPU(s), ${FUZZ_PARALLEL} at a time; goal ${FUZZ_MIN_EXECS} each)"
} >"$OUT"/results.txt
cat "$OUT"/results.txt
exit "$found"
