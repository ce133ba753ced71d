#!/usr/bin/env bash
# plan cost (issue 3): `grey-gpu-opt plan` from a saved spec, whole process. The spec is the
# mixed-vendor machine replayed from two real captures in tests/fixtures (2× RTX 2070 from
# nvidia-smi -q -x, 6× MI100 from rocm-smi --json): 8 GPUs. Reports hyperfine's median and the
# peak RSS (GNU time) of the human and --json forms, and of `--version` for the start-up floor.
# Usage: bench/plan_bench.sh [build dir]
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-build/release}
BIN=$PWD/$B/grey-gpu-opt
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export GREY_CONFIG_DIR=$T/state
mkdir -p "$T/replay"
cp tests/fixtures/nvidia-smi-xml/nvidia-geforce-rtx2070-x2-590.44.01-telegraf.xml "$T/replay/nvidia-smi.xml"
cp tests/fixtures/rocm-smi/amd-instinct-mi100-x6-rocm5.7.1-json-telegraf.json "$T/replay/rocm-smi.json"
"$BIN" detect --replay "$T/replay" >/dev/null
echo "spec: $(grep -c '"index"' "$GREY_CONFIG_DIR/last_gpu_spec.json") GPU(s) saved"
hyperfine -N --warmup 5 --runs 100 --export-json "$T/h.json" \
  "$BIN plan" "$BIN plan --json" "$BIN --version" >/dev/null
python3 - "$T/h.json" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    print(f"{r['command'].split('/')[-1]:<28} median {r['median']*1000:6.2f} ms  mean {r['mean']*1000:6.2f} ± {r['stddev']*1000:.2f} ms")
PY
for args in "plan" "plan --json" "--version"; do
  # shellcheck disable=SC2086
  /usr/bin/time -f "%M" -o "$T/rss" "$BIN" $args >/dev/null 2>&1 || true
  echo "grey-gpu-opt $args: peak RSS $(cat "$T/rss") KB"
done
