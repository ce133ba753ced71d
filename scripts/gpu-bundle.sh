#!/usr/bin/env bash
# Builds grey-gpu-opt here and bundles it with the shared libraries it links (except the C
# runtime itself) into out/gpu-bundle/, so it runs on a GPU machine that lacks our Debian
# packages. Usage: scripts/gpu-bundle.sh   (then carry out/gpu-bundle to the GPU machine)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --build-only
cmake -S . -B build/gpu -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGREY_TESTS=OFF >/dev/null
cmake --build build/gpu --target grey-gpu-opt grey_cap
# The shim's driver-API test program, built against the fake driver but run on the real one.
gcc -O2 -Wall -Wextra -Ishim tests/shim/shim_procaddr.c -ldl -o build/gpu/shim_procaddr
rm -rf out/gpu-bundle
mkdir -p out/gpu-bundle/lib
cp build/gpu/grey-gpu-opt build/gpu/shim/libgrey_cap.so build/gpu/shim_procaddr out/gpu-bundle/
cp scripts/gpu-check.sh scripts/gpu_compare.py scripts/gpu_cap_torch.py out/gpu-bundle/
ldd build/gpu/grey-gpu-opt | awk '/=> \// {print $3}' | while read -r lib; do
  case "$(basename "$lib")" in
    libc.so.*|libm.so.*|libpthread.so.*|libdl.so.*|librt.so.*|ld-linux*) ;;
    *) cp -L "$lib" out/gpu-bundle/lib/ ;;
  esac
done
# libpci looks names up in pci.ids; ship Debian's copy.
if [[ -f /usr/share/misc/pci.ids ]]; then cp /usr/share/misc/pci.ids out/gpu-bundle/; fi
du -sh out/gpu-bundle
