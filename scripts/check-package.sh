#!/usr/bin/env bash
# Checks the .deb that scripts/package.sh built, as scripts/test.sh runs it (as root, on a
# throwaway CI machine: it installs the package into the system and removes it again):
#   1. lintian: no errors (warnings and info are shown)
#   2. dpkg -i, then the installed /usr/bin/grey-gpu-opt: --version, detect --json against the
#      fake NVML, and run --enforce-cap of a CUDA program against the fake CUDA driver, with the
#      installed /usr/lib/grey-gpu-opt/libgrey_cap.so found from the binary (no GREY_CAP_SHIM)
#   3. systemd-analyze verify of the installed unit
#   4. dpkg --purge, and nothing of the package is left: every path it shipped that was not
#      there before is gone again
# Usage: scripts/check-package.sh DEB
set -euo pipefail
cd "$(dirname "$0")/.."
DEB=$(realpath "$1")
PKG=grey-gpu-opt

if [[ $(id -u) -ne 0 ]]; then
  echo "check-package: needs root (it installs $DEB with dpkg -i)" >&2
  exit 1
fi
if dpkg-query -W -f='${Status}' "$PKG" 2>/dev/null | grep -q "installed"; then
  echo "check-package: $PKG is installed already; not touching it (dpkg --purge $PKG first)" >&2
  exit 1
fi

WORK=$(mktemp -d)
installed=0
cleanup() {
  if ((installed)); then dpkg --purge "$PKG" >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "-- lintian"
# --fail-on error: a warning is shown, an error fails.
lintian --fail-on error --display-info "$DEB"

# The package's paths (dpkg-deb -c: "./usr/bin/grey-gpu-opt"), and which of them exist now.
dpkg-deb -c "$DEB" | awk '{print $6}' | sed -e 's|^\./|/|' -e 's|/$||' | grep -v '^$' |
  grep -v '^/$' >"$WORK/paths"
: >"$WORK/absent-before"
while read -r p; do
  [[ -e "$p" || -L "$p" ]] || echo "$p" >>"$WORK/absent-before"
done <"$WORK/paths"

echo "-- dpkg -i"
installed=1
dpkg -i "$DEB"
dpkg -L "$PKG" | grep -E '/(bin/grey-gpu-opt|libgrey_cap\.so|grey-gpu-opt\.service)$'

# The fakes, built here without any instrumentation: the fake NVML (two GPUs, GPU 0 81559 MiB),
# the fake CUDA driver as libcuda.so.1, and a CUDA program linked against it.
mkdir -p "$WORK/lib" "$WORK/state" "$WORK/sys/class/drm" "$WORK/proc"
cc -O1 -shared -fPIC tests/fakes/fake_nvml.c -o "$WORK/fake_nvml.so" -lpthread
cc -O1 -shared -fPIC -Wl,-Bsymbolic tests/fakes/fake_cuda.c -o "$WORK/lib/libcuda.so.1" \
  -lpthread -ldl
cc -O1 -Ishim -Itests/shim tests/shim/shim_direct.c "$WORK/lib/libcuda.so.1" \
  -Wl,-rpath,"$WORK/lib" -o "$WORK/shim_direct"

# A clean environment: nothing of this shell's (no GREY_CAP_SHIM, no LD_PRELOAD).
G=(env -i PATH=/usr/bin:/bin LD_LIBRARY_PATH="$WORK/lib" GREY_CONFIG_DIR="$WORK/state"
  GREY_SYSFS_ROOT="$WORK/sys" GREY_PROC_ROOT="$WORK/proc" GREY_NVML_LIBRARY="$WORK/fake_nvml.so"
  GREY_CUDA_LIBRARY=/nonexistent/libcuda.so.1 GREY_OPENCL_LIBRARY=/nonexistent/libOpenCL.so.1
  CUDA_MPS_PIPE_DIRECTORY="$WORK/mps" /usr/bin/grey-gpu-opt)

echo "-- grey-gpu-opt --version"
version=$("${G[@]}" --version)
echo "$version"
want=$(dpkg-deb -f "$DEB" Version)
[[ "$version" == *"$want"* ]] || { echo "--version does not say $want" >&2; exit 1; }

echo "-- grey-gpu-opt detect --json"
"${G[@]}" detect --json --timeout 3 >"$WORK/detect.json"
python3 - "$WORK/detect.json" <<'PY'
import json, sys
gpus = json.load(open(sys.argv[1]))
assert isinstance(gpus, list) and len(gpus) == 2, gpus
assert gpus[0]["vendor"] == "nvidia" and gpus[0]["vram_total_mb"] == 81559, gpus[0]
print("  %d GPUs: %s" % (len(gpus), ", ".join(g["model"] for g in gpus)))
PY

echo "-- grey-gpu-opt run --enforce-cap"
"${G[@]}" plan >/dev/null
"${G[@]}" apply --no-dry-run >/dev/null
"${G[@]}" run --gpu 0 --enforce-cap -- /usr/bin/env >"$WORK/env.out" 2>"$WORK/env.err"
grep -qx 'LD_PRELOAD=/usr/lib/grey-gpu-opt/libgrey_cap.so' "$WORK/env.out" ||
  { cat "$WORK/env.out" "$WORK/env.err"; echo "the installed shim was not preloaded" >&2; exit 1; }
cat "$WORK/env.err"
# 75% of 81559 MiB = 61169 MiB: the program sees the capped total and cannot allocate past it.
"${G[@]}" run --gpu 0 --enforce-cap -- "$WORK/shim_direct" dev 0 info alloc 60000 alloc 2000 \
  >"$WORK/cuda.out" 2>"$WORK/cuda.err"
cat "$WORK/cuda.out"
grep -q "total=$((61169 << 20))\$" "$WORK/cuda.out" &&
  grep -q "alloc rc=0 slot=0" "$WORK/cuda.out" && grep -q "alloc rc=2 slot=-1" "$WORK/cuda.out" ||
  { cat "$WORK/cuda.err"; echo "the cap did not hold under the installed shim" >&2; exit 1; }

echo "-- systemd-analyze verify"
unit=$(dpkg -L "$PKG" | grep '/grey-gpu-opt\.service$')
grep '^ExecStart=' "$unit"
grep -q '^ExecStart=/usr/bin/grey-gpu-opt ' "$unit"
systemd-analyze verify "$unit" 2>&1 | tee "$WORK/verify.txt"
if grep -q 'grey-gpu-opt' "$WORK/verify.txt"; then
  echo "systemd-analyze verify complained about the unit" >&2
  exit 1
fi

echo "-- dpkg --purge"
dpkg --purge "$PKG"
installed=0
if dpkg-query -W -f='${Status}' "$PKG" 2>/dev/null | grep -q "installed"; then
  echo "$PKG is still installed" >&2
  exit 1
fi
left=0
while read -r p; do
  if [[ -e "$p" || -L "$p" ]]; then
    echo "left behind: $p" >&2
    left=1
  fi
done <"$WORK/absent-before"
for f in /var/lib/dpkg/info/"$PKG".*; do
  if [[ -e "$f" ]]; then
    echo "left behind: $f" >&2
    left=1
  fi
done
((left == 0)) || exit 1
echo "package check passed: $(basename "$DEB") ($(wc -l <"$WORK/absent-before") paths added and removed)"
