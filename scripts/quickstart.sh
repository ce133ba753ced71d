#!/usr/bin/env bash
# Install, build, and run the main job: detect every GPU on this machine, plan safe settings
# for them, and show what `apply` would do (a dry run: nothing changes). Installs only what
# that needs (build dependencies and the detection tools); scripts/test.sh installs the rest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DGREY_TESTS=OFF >/dev/null
cmake --build build
./build/grey-gpu-opt detect --explain
./build/grey-gpu-opt plan
./build/grey-gpu-opt apply
