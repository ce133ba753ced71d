#!/usr/bin/env bash
# Daemon cost (issue 5): start-daemon at a 1 s interval against the fake NVML with 8 GPUs and 50
# processes, for SECONDS (default 300), then its CPU time and peak RSS; and, for comparison, the
# CPU cost of polling a fake `nvidia-smi --query-gpu` (which sleeps the published ~14 ms) once a
# second for the same time. Usage: bench/daemon_bench.sh [build dir] [seconds]
# (FAKE_NVML=path/to/fake_nvml.so; SKIP_BASELINE=1 leaves out the nvidia-smi loop.)
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-build/release}
SECS=${2:-300}
BIN=$B/grey-gpu-opt
FAKE=${FAKE_NVML:-build/lead/fakes/fake_nvml.so}
case $FAKE in /*) ;; *) FAKE=$PWD/$FAKE ;; esac
T=$(mktemp -d)
export GREY_CONFIG_DIR=$T/state GREY_SYSFS_ROOT=$T/sys GREY_PROC_ROOT=$T/proc
export GREY_NVML_LIBRARY=$FAKE FAKE_NVML_GPUS=8 FAKE_NVML_SCRIPT=$T/script
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
# Per tick, from the tick_stats events (CLOCK_PROCESS_CPUTIME_ID, so not limited to the 10 ms
# of /proc/<pid>/stat): the process's whole CPU between the first and the last event divided by
# the ticks between them (start-up and the first ticks excluded; threads and the time between
# ticks included), and the largest single tick after the first window.
jq -rs '[.[] | select(.event == "tick_stats") | .details] as $s
  | if ($s | length) < 2 then "per tick: fewer than two tick_stats events"
    else "per tick after tick \($s[0].ticks): \(((($s[-1].cpu_seconds_total - $s[0].cpu_seconds_total) * 1000 / ($s[-1].ticks - $s[0].ticks)) * 1000 | round) / 1000) ms CPU on average (process total / ticks), tick CPU avg \(([$s[1:][] | .cpu_ms_avg] | add / length * 1000 | round) / 1000) ms, max \([$s[1:][] | .cpu_ms_max] | max) ms; first window (start-up) max \($s[0].cpu_ms_max) ms; RSS at the last event \($s[-1].rss_bytes / 1048576 * 10 | round / 10) MiB" end' \
  "$GREY_CONFIG_DIR/logs/daemon.jsonl"
if [ -n "${SKIP_BASELINE:-}" ]; then rm -rf "$T"; exit 0; fi
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
