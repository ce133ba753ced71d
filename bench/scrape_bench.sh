#!/usr/bin/env bash
# /metrics scrape cost with pod attribution (issue 12): start-daemon --interval 1 --dry-run
# against the fake NVML with 8 GPUs and PROCS (default 1000) processes per GPU
# (FAKE_NVML_PROCS_PER_GPU), a fake /proc tree in which every one of those pids lives in a pod
# (the cgroup v2 line of a containerd container under the systemd driver, NSpid, start time;
# PODS pods, default 1000, each with one container "main" and one process per GPU) and the
# kubelet's log directory for every pod (--pod-log-root). With MODE=nopods the /proc tree and the
# log directory are left out (every pod label empty; the baseline).
# Once every process series carries its pod label, SCRAPES (default 300) sequential scrapes,
# each on a new connection, timed at the client from connect to the end of the reply; then the
# daemon's peak RSS (VmHWM of /proc/<pid>/status) and, from its log, how many ticks overran
# while it was being scraped back to back for HAMMER_S (default 5) seconds (scraping must never
# block a tick: the scrape reads a snapshot the tick publishes).
# Usage: bench/scrape_bench.sh [build dir] [procs per GPU] [scrapes]   (MODE=pods|nopods,
#        FAKE_NVML=path/to/fake_nvml.so, HAMMER_S=seconds)
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-build/release}
PROCS=${2:-1000}
SCRAPES=${3:-300}
MODE=${MODE:-pods}
HAMMER_S=${HAMMER_S:-5}
BIN=$B/grey-gpu-opt
FAKE=${FAKE_NVML:-$B/fakes/fake_nvml.so}
case $FAKE in /*) ;; *) FAKE=$PWD/$FAKE ;; esac
T=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$T"
}
trap cleanup EXIT
export GREY_CONFIG_DIR=$T/state GREY_NVML_LIBRARY=$FAKE FAKE_NVML_GPUS=8
export FAKE_NVML_PROCS_PER_GPU=$PROCS FAKE_NVML_SCRIPT=$T/script
export GREY_CUDA_LIBRARY=/nonexistent/libcuda.so.1 GREY_OPENCL_LIBRARY=/nonexistent/libOpenCL.so.1
mkdir -p "$T/sys/class/drm" "$T/proc" "$T/log/pods"
for g in 0 1 2 3 4 5 6 7; do echo "tick 0 $g 60 1000 50 200000"; done >"$T/script"
if [ "$MODE" = pods ]; then
  # The fake NVML's pids: 100000 + 10000 * gpu + i. Pod i % PODS holds process i of every GPU.
  python3 - "$T" "$PROCS" "${PODS:-1000}" <<'EOF'
import os, sys
t, procs, pods = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def w(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
for k in range(pods):
    uid = "%08x-b240-4dec-9a45-%012x" % (0x55c60000 + k, k)
    w("%s/log/pods/bench_worker-%d_%s/main/0.log" % (t, k, uid), "")
for g in range(8):
    for i in range(procs):
        pid = 100000 + 10000 * g + i
        k = i % pods
        uid = "%08x-b240-4dec-9a45-%012x" % (0x55c60000 + k, k)
        cid = "%016x" % k * 4
        d = "%s/proc/%d" % (t, pid)
        w(d + "/stat", "%d (worker) S 1 %d %d 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 %d "
          "12345678 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 3 0 0 0 0 0\n"
          % (pid, pid, pid, 5000 + pid))
        w(d + "/cgroup", "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod%s"
          ".slice/cri-containerd-%s.scope\n" % (uid.replace("-", "_"), cid))
        w(d + "/status", "Name:\tworker\nUid:\t1000\t1000\t1000\t1000\nTgid:\t%d\n"
          "NSpid:\t%d\t%d\nPPid:\t1\n" % (pid, pid, 1 + g))
EOF
fi
ROOTS=(--procfs-root "$T/proc" --sysfs-root "$T/sys" --pod-log-root "$T/log/pods")
PATH=/nonexistent "$BIN" "${ROOTS[@]}" detect --timeout 3 >/dev/null 2>&1 || true
"$BIN" "${ROOTS[@]}" start-daemon --interval 1 --dry-run --metrics-listen 127.0.0.1:0 \
  >"$T/daemon.out" 2>&1 &
pid=$!
port=
for _ in $(seq 1 300); do
  port=$(sed -n 's/^Metrics on .*(port \([0-9]*\))$/\1/p' "$T/daemon.out")
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { cat "$T/daemon.out"; echo "the daemon did not start its metrics server"; exit 1; }

python3 - "$port" "$SCRAPES" "$PROCS" "$MODE" "$pid" "$T/state/logs/daemon.jsonl" "$HAMMER_S" <<'EOF'
import json, re, socket, sys, time

port, scrapes, procs = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
mode, dpid, log, hammer_s = sys.argv[4], int(sys.argv[5]), sys.argv[6], float(sys.argv[7])
addr = ("127.0.0.1", port)

def get():
    t0 = time.perf_counter()
    s = socket.create_connection(addr, timeout=10)
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: bench\r\n\r\n")
    chunks = []
    while True:
        c = s.recv(1 << 20)
        if not c:
            break
        chunks.append(c)
    s.close()
    dt = (time.perf_counter() - t0) * 1000
    data = b"".join(chunks)
    if not data.startswith(b"HTTP/1.1 200 "):
        raise SystemExit("bad reply: %r" % data[:80])
    return dt, data

want = 8 * procs
end = time.monotonic() + 120
while True:
    _, body = get()
    series = [l for l in body.split(b"\n") if l.startswith(b"grey_process_vram_used_bytes{")]
    in_pods = [l for l in series if not re.search(rb'pod=""', l)]
    if len(series) >= want and (mode != "pods" or len(in_pods) >= want):
        break
    if time.monotonic() > end:
        raise SystemExit("after 120 s: %d process series, %d in pods (want %d)"
                         % (len(series), len(in_pods), want))
    time.sleep(0.5)

def ticks():
    _, b = get()
    m = re.search(rb"^grey_daemon_ticks_total (\S+)$", b, re.M)
    return float(m.group(1))

for _ in range(5):
    get()
ms = sorted(get()[0] for _ in range(scrapes))
p = lambda q: ms[min(len(ms) - 1, int(q * len(ms)))]
print("mode %s: 8 GPUs x %d processes (%d series in pods), reply %d bytes"
      % (mode, procs, len(in_pods), len(body)))
print("scrape at the client, n=%d: p50 %.2f ms  p99 %.2f ms  max %.2f ms"
      % (scrapes, p(0.50), p(0.99), ms[-1]))

def overruns():
    """Overrun events so far: [tick_ms of each] (how long the overrunning tick itself took)."""
    out = []
    try:
        with open(log) as f:
            for line in f:
                if '"tick overrun"' in line:
                    out.append(json.loads(line).get("details", {}).get("tick_ms"))
    except (OSError, ValueError):
        pass
    return out

def tick_ms():
    _, b = get()
    m = re.search(rb'^grey_daemon_tick_duration_seconds\{source="total"\} (\S+)$', b, re.M)
    return float(m.group(1)) * 1000 if m else float("nan")

print("last tick before the scrapes took %.1f ms" % tick_ms())

o0, t0, w0 = len(overruns()), ticks(), time.monotonic()
n = 0
while time.monotonic() - w0 < hammer_s:
    get()
    n += 1
t1, w1 = ticks(), time.monotonic()
over = overruns()[o0:]
print("back-to-back scrapes for %.1f s: %d scrapes, %.0f ticks at --interval 1, %d tick overruns%s"
      % (w1 - w0, n, t1 - t0, len(over),
         " (the overrunning ticks took %s ms)" % over if over else ""))
with open("/proc/%d/status" % dpid) as f:
    st = dict(l.split(":", 1) for l in f if ":" in l)
print("daemon peak RSS (VmHWM) %s, now (VmRSS) %s"
      % (st["VmHWM"].strip(), st["VmRSS"].strip()))
EOF
