#!/usr/bin/env bash
# Daemon cost (issue 5): start-daemon at a 1 s interval against the fake NVML with 8 GPUs and 50
# processes, for SECONDS (default 300), then its CPU time and peak RSS; and, for comparison, the
# CPU cost of polling a fake `nvidia-smi --query-gpu` (which sleeps the published ~14 ms) once a
# second for the same time. Usage: bench/daemon_bench.sh [build dir] [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-build/release}
SECS=${2:-300}
BIN=$B/grey-gpu-opt
FAKE=${FAKE_NVML:-build/lead/fakes/fake_nvml.so}
T=$(mktemp -d)
export GREY_CONFIG_DIR=$T/state GREY_SYSFS_ROOT=$T/sys GREY_PROC_ROOT=$T/proc
export GREY_NVML_LIBRARY=$PWD/$FAKE FAKE_NVML_GPUS=8 FAKE_NVML_SCRIPT=$T/script
mkdir -p "$T/sys/class/drm" "$T/proc"
{
  for g in 0 1 2 3 4 5 6 7; do echo "tick 0 $g 60 1000 50 200000"; done
  for p in $(seq 1 50); do echo "proc 0 $((p % 8)) $((10000 + p)) $((100 + p)) worker$p"; done
} >"$T/script"
PATH=/nonexistent "$BIN" detect --timeout 3 >/dev/null 2>&1
"$BIN" start-daemon --interval 1 >"$T/daemon.out" 2>&1 &
pid=$!
sleep "$SECS"
read -r ut st < <(awk '{print $14, $15}' /proc/$pid/stat)
hwm=$(awk '/VmHWM/ {print $2, $3}' /proc/$pid/status)
kill -TERM $pid; wait $pid || true
tck=$(getconf CLK_TCK)
cpu=$(echo "scale=3; ($ut + $st) / $tck" | bc)
ticks=$(grep -c '"event":"tick_stats"' "$GREY_CONFIG_DIR/logs/daemon.jsonl" || true)
echo "daemon: ${SECS} s at 1 s, 8 fake GPUs, 50 processes: CPU ${cpu} s ($(echo "scale=3; 100 * $cpu / $SECS" | bc)% of one core), peak RSS $hwm, tick_stats events $ticks"
# Baseline: a fake nvidia-smi that sleeps 14 ms, spawned once a second.
mkdir -p "$T/bin"
printf '#!/bin/sh\nsleep 0.014\necho "0, 00000000:01:00.0, 1000, 81559, 60, 50, 200.00, 700.00"\n' >"$T/bin/nvidia-smi"
chmod +x "$T/bin/nvidia-smi"
export T SECS
/usr/bin/time -f "%U %S" -o "$T/base.time" bash -c 'for _ in $(seq 1 "$SECS"); do "$T/bin/nvidia-smi" --query-gpu=index,pci.bus_id,memory.used,memory.total,temperature.gpu,utilization.gpu,power.draw,power.limit --format=csv,noheader,nounits >/dev/null; sleep 1; done'
read -r bu bs <"$T/base.time"
bcpu=$(echo "scale=3; $bu + $bs" | bc)
echo "baseline: a fake nvidia-smi (sleeps 14 ms) polled each second, ${SECS} polls: CPU ${bcpu} s ($(echo "scale=3; 100 * $bcpu / $SECS" | bc)% of one core), plus 14 ms of wall latency per poll"
rm -rf "$T"
