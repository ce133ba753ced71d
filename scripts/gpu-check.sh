#!/usr/bin/env bash
# Real-hardware checks on a machine with an NVIDIA GPU. Run from the repository root after
# scripts/gpu-bundle.sh built out/gpu-bundle here (the GPU machine needs no build tools):
#   OUT=/some/dir scripts/gpu-check.sh
# It runs detect --json / --explain, capture, replays the capture, and compares every field
# detect shares with `nvidia-smi -q -x`, then the VRAM cap shim on the real driver (and PyTorch
# when installed). Everything goes to $OUT (default ./gpu-check-out).
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

log "labels --stdout (Node Feature Discovery feature file)"
"$G" labels --stdout 2>&1 | tee -a "$OUT/summary.txt"

log "daemon: dry run for ~4 s at 0.5 s ticks, metrics on 127.0.0.1:19862"
timeout -s TERM 4 "$G" start-daemon --interval 0.5 --metrics-listen 127.0.0.1:19862 \
  >"$OUT/daemon.out" 2>&1 &
sleep 2.5
if command -v curl >/dev/null; then
  curl -s http://127.0.0.1:19862/metrics | grep -E '^grey_gpu_(temperature|vram_used|power_watts|utilization)' |
    tee -a "$OUT/summary.txt"
  for probe in healthz readyz; do
    echo "/$probe: $(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:19862/$probe)" |
      tee -a "$OUT/summary.txt"
  done
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

log "VRAM cap shim (libgrey_cap.so) on the real driver: a 20 GiB cap through run --enforce-cap"
# The cap comes from the applied plan: a config override, a plan, an apply (env file and applied
# plan only: no device setting without --destructive).
printf 'per_process_vram_cap_mb: 20480\n' >"$OUT/state/config.yaml"
chmod 600 "$OUT/state/config.yaml"
"$G" plan --json >"$OUT/plan-cap.json" 2>>"$OUT/summary.txt"
grep -o '"per_process_vram_cap_mb": "[a-z ]*"' "$OUT/plan-cap.json" | head -n 1 | tee -a "$OUT/summary.txt"
"$G" apply --no-dry-run 2>&1 | grep -E "enforced by" | tee -a "$OUT/summary.txt"
P="$PWD/$B/shim_procaddr"
if [[ -x "$P" ]]; then
  log "driver API via cuGetProcAddress (as the CUDA runtime does), capped then plain"
  timeout 60 "$G" run --gpu 0 --enforce-cap -- "$P" dev 0 info total 0 alloc 19000 alloc 2000 \
    free 0 alloc 2000 info bench 10000 2>&1 | tee -a "$OUT/summary.txt"
  timeout 60 "$G" run --gpu 0 -- "$P" dev 0 info alloc 19000 alloc 2000 bench 10000 2>&1 |
    tee -a "$OUT/summary.txt"
fi
if python3 -c 'import torch' 2>/dev/null; then
  log "PyTorch under the shim (20 GiB cap) and plainly"
  for mode in cap plain; do
    flag=(); [[ $mode == cap ]] && flag=(--enforce-cap)
    echo "-- $mode" | tee -a "$OUT/summary.txt"
    timeout 120 "$G" run --gpu 0 "${flag[@]}" -- python3 "$B/gpu_cap_torch.py" main 2>&1 |
      tee -a "$OUT/summary.txt"
    PYTORCH_NO_CUDA_MEMORY_CACHING=1 timeout 120 "$G" run --gpu 0 "${flag[@]}" -- \
      python3 "$B/gpu_cap_torch.py" alloc 2>&1 | tee -a "$OUT/summary.txt"
  done
else
  echo "PyTorch is not installed on this machine: the PyTorch checks were skipped" |
    tee -a "$OUT/summary.txt"
fi
