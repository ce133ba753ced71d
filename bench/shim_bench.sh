#!/usr/bin/env bash
# Cost of the VRAM cap shim (issue 6) per cuMemAlloc_v2 + cuMemFree_v2 pair, measured against the
# fake driver (tests/fakes/fake_cuda.c), so what is left is the shim's own work: the driver
# entry points fetched through cuGetProcAddress as the CUDA runtime does (tests/shim/
# shim_procaddr.c), 300k pairs of 1..64 MiB, 5 runs each: no shim, the shim without a cap
# (pass-through), the shim with a cap. Builds everything at -O2 into a temporary directory.
# Usage: bench/shim_bench.sh [pairs]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-300000}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
mkdir -p "$T/lib"
gcc -O2 -fPIC -shared -Wl,-soname,libcuda.so.1 -Wl,-Bsymbolic tests/fakes/fake_cuda.c -pthread \
  -o "$T/lib/libcuda.so.1"
gcc -O2 -Ishim tests/shim/shim_procaddr.c -ldl -o "$T/shim_procaddr"
g++ -std=c++20 -O2 -fPIC -shared -fvisibility=hidden -Ishim shim/grey_cap.cc shim/cap_accounting.cc \
  -ldl -pthread -static-libstdc++ -static-libgcc -Wl,--exclude-libs,ALL \
  -Wl,--version-script=shim/exports.map -o "$T/libgrey_cap.so"
export LD_LIBRARY_PATH=$T/lib
one() { "$@" "$T/shim_procaddr" dev 0 bench "$N" | sed -n 's/.*ns_per_pair=//p'; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
base=$(for _ in 1 2 3 4 5; do one env; done | median)
pass=$(for _ in 1 2 3 4 5; do one env LD_PRELOAD="$T/libgrey_cap.so"; done | median)
capd=$(for _ in 1 2 3 4 5; do one env LD_PRELOAD="$T/libgrey_cap.so" GREY_VRAM_CAP_MB=70000; done | median)
echo "alloc+free pair, fake driver, median of 5 x $N: no shim ${base} ns; shim without a cap ${pass} ns; shim with a cap ${capd} ns (shim's own cost $(echo "$capd - $base" | bc) ns per pair)"
