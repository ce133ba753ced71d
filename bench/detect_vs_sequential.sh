#!/usr/bin/env bash
# Whole-process comparison (issue 2): `grey-gpu-opt detect --json` against running the same
# tools this machine has one after another, and against each tool alone, in one hyperfine run.
# Usage: bench/detect_vs_sequential.sh [path/to/grey-gpu-opt]   (needs hyperfine; run under
# xvfb-run to include glxinfo). Writes bench/results/detect_vs_sequential.{md,json}.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-build/release/grey-gpu-opt}
mkdir -p bench/results
export GREY_CONFIG_DIR=$(mktemp -d)
tools=("lspci -vmm -nn -D -k" "lshw -json -C display" "vulkaninfo --summary" "clinfo --json" "glxinfo -B")
seq=""
for t in "${tools[@]}"; do seq+="$t >/dev/null 2>&1; "; done
cmds=("$BIN detect --json --no-save" "sh -c '$seq'")
for t in "${tools[@]}"; do cmds+=("$t"); done
hyperfine -N --warmup 2 --runs 10 -i --export-markdown bench/results/detect_vs_sequential.md \
  --export-json bench/results/detect_vs_sequential.json "${cmds[@]}" 2>/dev/null ||
  hyperfine --warmup 2 --runs 10 -i --export-markdown bench/results/detect_vs_sequential.md \
    --export-json bench/results/detect_vs_sequential.json "${cmds[@]}"
cat bench/results/detect_vs_sequential.md
/usr/bin/time -v "$BIN" detect --json --no-save 2>&1 >/dev/null | grep "Maximum resident"
