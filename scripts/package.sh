#!/usr/bin/env bash
# Builds the Debian package with CPack: a Release build (GCC unless CC/CXX say otherwise) of
# grey-gpu-opt and libgrey_cap.so, laid out as cmake/GreyInstall.cmake says below /usr (the unit
# in /lib/systemd/system, the zsh completion in Debian's vendor-completions), its Depends taken
# from the shared libraries they link (dpkg-shlibdeps). Prints the .deb's path last.
#   scripts/package.sh [BUILD_DIR]     default build/package
# GREY_WERROR=ON makes warnings errors (scripts/test.sh); JOBS sets the build's parallelism.
# scripts/check-package.sh DEB checks the result (lintian, install, run, remove).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build/package}
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGREY_TESTS=OFF \
  -DGREY_WERROR="${GREY_WERROR:-OFF}" -DCMAKE_INSTALL_PREFIX=/usr \
  -DGREY_SYSTEMD_UNITDIR=/lib/systemd/system \
  -DGREY_ZSH_COMPLETIONDIR=share/zsh/vendor-completions >/dev/null
cmake --build "$BUILD" -j "${JOBS:-$(nproc)}"
rm -f "$BUILD"/package/*.deb
(cd "$BUILD" && cpack -G DEB)
deb=$(ls "$BUILD"/package/*.deb)
dpkg-deb -I "$deb" | sed -n '/Package:/,/Description:/p'
echo "$deb"
