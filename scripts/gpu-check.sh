#!/usr/bin/env bash
# Real-hardware checks on a machine with an NVIDIA GPU. Run from the repository root after
# scripts/gpu-bundle.sh built out/gpu-bundle here (the GPU machine needs no build tools):
#   OUT=/some/dir scripts/gpu-check.sh
# It runs detect --json / --explain, capture, replays the capture, and compares every field
# detect shares with `nvidia-smi -q -x`. Everything goes to $OUT (default ./gpu-check-out).
set -uo pipefail
cd "$(dirname "$0")/.."
B=${BUNDLE:-out/gpu-bundle}
OUT=${OUT:-gpu-check-out}
mkdir -p "$OUT"
export LD_LIBRARY_PATH="$PWD/$B/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export GREY_CONFIG_DIR="$OUT/state"
G="$PWD/$B/grey-gpu-opt"
log() { echo "== $*" | tee -a "$OUT/summary.txt"; }

log "machine: $(uname -srm); $(nproc) cpus"
log "nvidia-smi: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>&1 | head -n 3)"
"$G" --version | tee -a "$OUT/summary.txt"

log "detect --json (timed)"
start=$(date +%s.%N)
"$G" detect --json --explain >"$OUT/detect.json" 2>"$OUT/detect-explain.txt"
rc=$?
end=$(date +%s.%N)
echo "exit $rc, wall $(echo "$end - $start" | bc 2>/dev/null || echo '?') s" | tee -a "$OUT/summary.txt"
"$G" detect -v --no-save >"$OUT/detect-table.txt" 2>"$OUT/detect-verbose.txt"
cat "$OUT/detect-table.txt" "$OUT/detect-verbose.txt" | tee -a "$OUT/summary.txt"

log "peak RSS of detect"
/usr/bin/time -v "$G" detect --json --no-save >/dev/null 2>"$OUT/time-v.txt" &&
  grep -E "Maximum resident|Elapsed" "$OUT/time-v.txt" | tee -a "$OUT/summary.txt"

log "capture + replay"
"$G" capture "$OUT/capture" | tee -a "$OUT/summary.txt"
"$G" detect --json --no-save --replay "$OUT/capture" >"$OUT/replay.json" 2>>"$OUT/summary.txt"

log "plan (safe and aggressive) from the saved spec"
"$G" plan >"$OUT/plan-safe.txt" 2>&1; echo "plan exit $?" | tee -a "$OUT/summary.txt"
"$G" plan --mode aggressive --json >"$OUT/plan-aggressive.json" 2>>"$OUT/summary.txt"
head -n 40 "$OUT/plan-safe.txt" | tee -a "$OUT/summary.txt"

log "daemon: dry run for ~4 s at 0.5 s ticks, metrics on 127.0.0.1:19835"
timeout -s TERM 4 "$G" start-daemon --interval 0.5 --metrics-listen 127.0.0.1:19835 \
  >"$OUT/daemon.out" 2>&1 &
sleep 2.5
if command -v curl >/dev/null; then
  curl -s http://127.0.0.1:19835/metrics | grep -E '^grey_gpu_(temperature|vram_used|power_watts|utilization)' |
    tee -a "$OUT/summary.txt"
fi
"$G" status | tee -a "$OUT/summary.txt"
wait
echo "daemon exit: see daemon.out" | tee -a "$OUT/summary.txt"
tail -n 5 "$OUT/state/logs/daemon.jsonl" | tee -a "$OUT/summary.txt"

log "nvidia-smi -q -x"
nvidia-smi -q -x >"$OUT/nvidia-smi.xml" 2>&1
nvidia-smi >"$OUT/nvidia-smi.txt" 2>&1

log "compare detect with nvidia-smi -q -x"
if command -v python3 >/dev/null; then
  python3 "$B/gpu_compare.py" "$OUT/detect.json" "$OUT/nvidia-smi.xml" "$OUT/replay.json" |
    tee -a "$OUT/summary.txt"
else
  echo "python3 missing: comparison skipped" | tee -a "$OUT/summary.txt"
fi
