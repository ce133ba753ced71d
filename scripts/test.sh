#!/usr/bin/env bash
# Install, build and run the whole test suite with every gate:
#   1. clang-format clean, and the include layers (scripts/check-layers.py)
#   2. -Wall -Wextra -Werror build, full suite
#   3. the suite under AddressSanitizer + UndefinedBehaviorSanitizer with gcov, and line
#      coverage of the library >= 80% (gcovr)
#   4. the VRAM cap shim's wrappers and accounting under ThreadSanitizer
#   5. every libFuzzer target built with clang and run briefly
# Run as root on a fresh Debian 12 machine (setup installs what is missing).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
JOBS=${JOBS:-$(nproc)}
FUZZ_SECONDS=${FUZZ_SECONDS:-5}
export GTEST_COLOR=no

scripts/setup.sh

echo "== clang-format"
mapfile -t files < <(git ls-files -- 'src/*.cc' 'src/*.h' 'tests/*.cc' 'tests/*.h' 'tests/*.c' \
  'fuzz/*.cc' 'bench/*.cc' 'shim/*.cc' 'shim/*.h' 2>/dev/null || true)
if ((${#files[@]} == 0)); then
  mapfile -t files < <(find src tests fuzz bench shim -name '*.cc' -o -name '*.h' -o -name '*.c' | grep -v fixtures)
fi
clang-format --dry-run --Werror "${files[@]}"

echo "== layers (no include up a layer or sideways)"
python3 scripts/check-layers.py --self-test
python3 scripts/check-layers.py

# The display the glxinfo integration test uses (software rendering under Xvfb).
run_with_display() {
  if [[ -z "${DISPLAY:-}" ]] && command -v xvfb-run >/dev/null; then
    xvfb-run -a -s "-screen 0 1024x768x24" "$@"
  else
    "$@"
  fi
}

echo "== optimized build of the library and the tool (-O2 -Werror)"
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGREY_TESTS=OFF >/dev/null
cmake --build build/release -j "$JOBS"

echo "== the whole suite under ASan + UBSan, with coverage (-Werror)"
cmake -S . -B build/asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DGREY_SANITIZE=ON -DGREY_COVERAGE=ON >/dev/null
cmake --build build/asan -j "$JOBS"
find build/asan -name '*.gcda' -delete
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
run_with_display ctest --test-dir build/asan --output-on-failure -j "$JOBS"
gcovr -r "$ROOT" --object-directory build/asan --filter "$ROOT/src/" --filter "$ROOT/shim/" \
  --exclude "$ROOT/src/cli/main.cc" --exclude-throw-branches --gcov-ignore-parse-errors \
  --print-summary --fail-under-line 80 -o build/asan/coverage.txt
tail -n 3 build/asan/coverage.txt

echo "== the VRAM cap shim's accounting under ThreadSanitizer"
scripts/tsan-shim.sh

echo "== fuzz (libFuzzer, ${FUZZ_SECONDS}s per target)"
CC=clang CXX=clang++ cmake -S . -B build/fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DGREY_FUZZ=ON -DGREY_TESTS=OFF >/dev/null
mapfile -t fuzz_targets < <(cd fuzz && ls *_fuzz.cc | sed 's/\.cc$//')
cmake --build build/fuzz -j "$JOBS" --target "${fuzz_targets[@]}"
# Seeded from the real captures (fuzz/seeds.txt); the writable corpus comes first, so libFuzzer
# adds what it finds there and never into tests/fixtures or fuzz/seeds.
source fuzz/seed_inputs.sh
mkdir -p build/fuzz/seeds
for f in build/fuzz/fuzz/*_fuzz; do
  name=$(basename "$f")
  mkdir -p build/fuzz/corpus/"$name"
  nseeds=$(fuzz_seed_list "$name" build/fuzz/seeds/"$name".list)
  seed_flag=()
  ((nseeds > 0)) && seed_flag=(-seed_inputs=@build/fuzz/seeds/"$name".list)
  "$f" -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 -timeout=10 "${seed_flag[@]}" \
    build/fuzz/corpus/"$name" >build/fuzz/"$name".log 2>&1 ||
    { tail -n 40 build/fuzz/"$name".log; echo "fuzz target $name failed"; exit 1; }
  echo "  $name: $(grep -o 'Done [0-9]* runs' build/fuzz/"$name".log | tail -n1), $nseeds seed(s)"
done
echo "all gates passed"
