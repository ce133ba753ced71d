#!/usr/bin/env bash
# Installs what the project needs from Debian packages (apt-get only). Safe to run twice:
# it installs only what is missing. Needs root (or sudo) when something is missing.
#   scripts/setup.sh               the main job (scripts/quickstart.sh): build dependencies and
#                                  the tools detection runs
#   scripts/setup.sh --build-only  only the build dependencies (scripts/gpu-bundle.sh)
#   scripts/setup.sh --test        everything the test command (scripts/test.sh) needs as well
set -euo pipefail

# Building grey-gpu-opt and libgrey_cap.so (-DGREY_TESTS=OFF).
BUILD_DEPS=(build-essential cmake ninja-build pkg-config g++
  nlohmann-json3-dev libyaml-cpp-dev libcli11-dev libpugixml-dev libpci-dev libsystemd-dev)
# The tools `detect` runs when they are there (each is optional; a missing one is reported).
DETECT_TOOLS=(pciutils pci.ids lshw vulkan-tools clinfo ocl-icd-libopencl1 mesa-utils
  libdrm-common)  # libdrm-common: amdgpu.ids, AMD marketing names
# Test command only: the suite, the sanitizer/fuzz builds (clang), coverage, the software
# renderers and the display the integration tests use (no GPU needed), the benchmarks' tools,
# the .deb checks (lintian, systemd-analyze).
TEST_DEPS=(clang clang-format libclang-rt-14-dev libgtest-dev libgmock-dev libbenchmark-dev gcovr
  lintian systemd)
TOOLS=(mesa-vulkan-drivers pocl-opencl-icd xvfb xauth hyperfine time jq
  prometheus chromium
  python3-jsonschema)  # tests/schema_test.cc: the standard JSON Schema validator
TOOLS+=(groff-base zsh fish)  # man page lint and shell completion tests (tests/manpage_test.cc)
TOOLS+=(python3-kubernetes python3-yaml)  # tests/deploy

want=("${BUILD_DEPS[@]}")
case "${1:-}" in
  --build-only) ;;
  --test) want+=("${DETECT_TOOLS[@]}" "${TEST_DEPS[@]}" "${TOOLS[@]}") ;;
  "") want+=("${DETECT_TOOLS[@]}") ;;
  *)
    echo "usage: $0 [--build-only | --test]" >&2
    exit 2
    ;;
esac

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]} == 0)); then
  echo "setup: all ${#want[@]} packages present"
  exit 0
fi
echo "setup: installing ${missing[*]}"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
