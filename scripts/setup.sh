#!/usr/bin/env bash
# Installs what the project needs from Debian packages (apt-get only). Safe to run twice:
# it installs only what is missing. Needs root (or sudo) when something is missing.
set -euo pipefail

BUILD_DEPS=(build-essential cmake ninja-build pkg-config g++ clang clang-format libclang-rt-14-dev
  nlohmann-json3-dev libyaml-cpp-dev libcli11-dev libspdlog-dev libfmt-dev libpugixml-dev
  libpci-dev libsystemd-dev libgtest-dev libgmock-dev libbenchmark-dev gcovr)
# The real tools the integration tests run (software renderers and PCI tools, no GPU needed).
TOOLS=(pciutils pci.ids lshw vulkan-tools mesa-vulkan-drivers clinfo pocl-opencl-icd
  ocl-icd-libopencl1 mesa-utils xvfb xauth hyperfine time jq
  prometheus chromium
  python3-jsonschema)  # tests/schema_test.cc: the standard JSON Schema validator
TOOLS+=(groff-base zsh fish)  # man page lint and shell completion tests (tests/manpage_test.cc)
TOOLS+=(python3-kubernetes python3-yaml)  # tests/deploy (kubectl >= 1.27 comes from Kubernetes' apt repository)
TOOLS+=(libdrm-common)  # /usr/share/libdrm/amdgpu.ids: AMD marketing names (src/sources/amdgpu_ids.cc)

want=("${BUILD_DEPS[@]}")
if [[ "${1:-}" != "--build-only" ]]; then want+=("${TOOLS[@]}"); fi

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
