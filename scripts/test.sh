#!/usr/bin/env bash
# Install, build and run the whole test suite with every gate (warnings are errors in every
# build here: -DGREY_WERROR=ON):
#   1. clang-format clean, and the include layers (scripts/check-layers.py)
#   2. GCC Release build of the library, the tool and the shim, and the .deb made from it
#      (scripts/package.sh), checked: lintian, dpkg -i, the installed binary run against the
#      fake drivers, systemd-analyze verify, dpkg --purge (scripts/check-package.sh)
#   3. the other build types, the library, the tool and the shim (see build_type below)
#   4. the suite under AddressSanitizer + UndefinedBehaviorSanitizer with gcov (GCC Debug), and
#      line coverage of the library >= 80% (gcovr)
#   5. the VRAM cap shim's wrappers and accounting under ThreadSanitizer
#   6. every libFuzzer target built with clang and run briefly
# Run as root on a fresh Debian 12 machine (setup installs what is missing); step 2 installs and
# removes the package, so run it on a throwaway machine (CI's). GREY_ALL_BUILD_TYPES=1 builds
# every build type with both compilers in step 3.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
JOBS=${JOBS:-$(nproc)}
FUZZ_SECONDS=${FUZZ_SECONDS:-5}
export GTEST_COLOR=no
# ccache, when installed, makes a rerun on the same machine cheap (a fresh one gets no hits).
if command -v ccache >/dev/null; then
  export CMAKE_C_COMPILER_LAUNCHER=ccache CMAKE_CXX_COMPILER_LAUNCHER=ccache
fi
SECONDS=0
step() { echo "== $* (at ${SECONDS}s)"; }

scripts/setup.sh --test

step "clang-format"
mapfile -t files < <(git ls-files -- 'src/*.cc' 'src/*.h' 'tests/*.cc' 'tests/*.h' 'tests/*.c' \
  'fuzz/*.cc' 'bench/*.cc' 'shim/*.cc' 'shim/*.h' 2>/dev/null || true)
if ((${#files[@]} == 0)); then
  mapfile -t files < <(find src tests fuzz bench shim -name '*.cc' -o -name '*.h' -o -name '*.c' | grep -v fixtures)
fi
clang-format --dry-run --Werror "${files[@]}"

step "layers (no include up a layer or sideways)"
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

step "GCC Release build (-Werror) and the .deb"
GREY_WERROR=ON JOBS=$JOBS scripts/package.sh build/release
step "the .deb: lintian, install, run, systemd-analyze verify, purge"
scripts/check-package.sh build/release/package/grey-gpu-opt_*.deb

# Every build type builds warning-free with GCC 12 and clang 14 (-Werror). Each type is built
# once somewhere in this command, the tests only in the ASan build:
#   GCC    Release: step 2. Debug: the ASan build (step 4: Debug's -g plus instrumentation).
#          RelWithDebInfo (-O2 -g) and MinSizeRel (-Os): here, the library, the tool and the
#          shim; GCC's flow warnings (-Wmaybe-uninitialized, -Wrestrict, ...) depend on the
#          optimizer, so each level is compiled.
#   clang  all four types: clang's warnings come from its front end, which -O and -g do not
#          change, only the preprocessor, and nothing in src/ or shim/ depends on NDEBUG (no
#          assert, no #ifdef NDEBUG; the only difference between Debug and the others). The fuzz
#          build (step 6) compiles the library with clang, so here clang compiles what it does
#          not: the tool's main.cc and the shim.
# GREY_ALL_BUILD_TYPES=1 builds the library, the tool and the shim in all eight combinations.
build_type() {
  local cc=$1 cxx=$2 type=$3 dir=build/types/$1-$3
  shift 3
  local targets=("$@")
  ((${#targets[@]})) || targets=(grey-gpu-opt grey_cap)
  CC=$cc CXX=$cxx cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE="$type" -DGREY_TESTS=OFF \
    -DGREY_WERROR=ON >/dev/null
  local t0=$SECONDS
  cmake --build "$dir" -j "$JOBS" --target "${targets[@]}" >"$dir/build.log" 2>&1 ||
    { cat "$dir/build.log"; echo "$cc $type build failed"; exit 1; }
  echo "  $cc $type (${targets[*]}): $((SECONDS - t0)) s"
}
step "the other build types (-Werror)"
# What lets one clang type stand for all four (above): nothing depends on NDEBUG.
if grep -rnE '(^|[^_a-z])assert *\(|NDEBUG' src shim; then
  echo "src/ or shim/ uses assert or NDEBUG: build clang Debug too (GREY_ALL_BUILD_TYPES=1)"
  exit 1
fi
if [[ "${GREY_ALL_BUILD_TYPES:-0}" == 1 ]]; then
  for type in Debug Release RelWithDebInfo MinSizeRel; do
    build_type gcc g++ "$type"
    build_type clang clang++ "$type"
  done
else
  build_type gcc g++ RelWithDebInfo
  build_type gcc g++ MinSizeRel
  build_type clang clang++ Release CMakeFiles/grey-gpu-opt.dir/src/cli/main.cc.o grey_cap
fi

step "the whole suite under ASan + UBSan, with coverage (-Werror)"
cmake -S . -B build/asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DGREY_SANITIZE=ON -DGREY_COVERAGE=ON \
  -DGREY_WERROR=ON >/dev/null
cmake --build build/asan -j "$JOBS"
find build/asan -name '*.gcda' -delete
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
run_with_display ctest --test-dir build/asan --output-on-failure -j "$JOBS"
gcovr -r "$ROOT" --object-directory build/asan --filter "$ROOT/src/" --filter "$ROOT/shim/" \
  --exclude "$ROOT/src/cli/main.cc" --exclude-throw-branches --gcov-ignore-parse-errors \
  --print-summary --fail-under-line 80 -o build/asan/coverage.txt
tail -n 3 build/asan/coverage.txt

step "the VRAM cap shim's accounting under ThreadSanitizer"
scripts/tsan-shim.sh

step "fuzz (libFuzzer, ${FUZZ_SECONDS}s per target; clang, -Werror)"
CC=clang CXX=clang++ cmake -S . -B build/fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DGREY_FUZZ=ON -DGREY_TESTS=OFF -DGREY_WERROR=ON >/dev/null
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
echo "all gates passed in ${SECONDS}s"
