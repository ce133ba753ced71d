#!/usr/bin/env bash
# ThreadSanitizer check of the VRAM cap shim (shim/): tests/shim/shim_threads.cc with the shim's
# wrappers and accounting linked in (GREY_CAP_NO_DLSYM: the TSan runtime cannot live with a
# replaced dlsym, and an instrumented LD_PRELOAD library cannot load before it) over the fake
# driver tests/fakes/fake_cuda.c, 16 threads allocating and freeing against a 1000 MiB cap.
# Exits non-zero on a data race (halt_on_error) or when the cap was broken. Needs g++ only.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=$(mktemp -d /tmp/grey-tsan-shim.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
mkdir -p "$OUT/lib"

CXX=${CXX:-g++}
CC=${CC:-gcc}
FLAGS=(-O1 -g -fsanitize=thread -Wall -Wextra -Werror)

"$CC" "${FLAGS[@]}" -fPIC -shared -Wl,-soname,libcuda.so.1 -Wl,-Bsymbolic \
  tests/fakes/fake_cuda.c -pthread -o "$OUT/lib/libcuda.so.1"
"$CXX" -std=c++20 "${FLAGS[@]}" -DGREY_CAP_NO_DLSYM -Ishim \
  tests/shim/shim_threads.cc shim/grey_cap.cc shim/cap_accounting.cc \
  -L"$OUT/lib" -l:libcuda.so.1 -Wl,-rpath,"$OUT/lib" -pthread -ldl -o "$OUT/shim_threads"

env -u LD_PRELOAD GREY_VRAM_CAP_MB=1000 TSAN_OPTIONS="halt_on_error=1 exitcode=66" \
  timeout 60 "$OUT/shim_threads" 16 2000
echo "tsan-shim: OK"
