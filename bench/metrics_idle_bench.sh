#!/usr/bin/env bash
# /metrics under idle clients (issue 11): start-daemon with --metrics-listen against the fake
# NVML (8 GPUs, 50 processes), then SCRAPES (default 200) sequential scrapes, each on a new
# connection, timed from connect to the end of the reply: with no other client, and with IDLE
# (default 100) idle clients (connected, sending nothing) plus SLOW (default 20) clients that
# sent half a request line. Scrapes are 20 ms apart, so the run spans several of the server's
# 2 s client deadlines; the harness reopens every client the server closes at once, so that many
# are connected throughout. Prints p50/p99/max per case.
# Usage: bench/metrics_idle_bench.sh [build dir] [scrapes] [idle] [slow]
# (FAKE_NVML=path/to/fake_nvml.so)
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-build/release}
SCRAPES=${2:-200}
IDLE=${3:-100}
SLOW=${4:-20}
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
export GREY_CONFIG_DIR=$T/state GREY_SYSFS_ROOT=$T/sys GREY_PROC_ROOT=$T/proc
export GREY_NVML_LIBRARY=$FAKE FAKE_NVML_GPUS=8 FAKE_NVML_SCRIPT=$T/script
mkdir -p "$T/sys/class/drm" "$T/proc"
{
  for g in 0 1 2 3 4 5 6 7; do echo "tick 0 $g 60 1000 50 200000"; done
  for p in $(seq 1 50); do echo "proc 0 $((p % 8)) $((10000 + p)) $((100 + p)) worker$p"; done
} >"$T/script"
PATH=/nonexistent "$BIN" detect --timeout 3 >/dev/null 2>&1
"$BIN" start-daemon --interval 1 --metrics-listen 127.0.0.1:0 >"$T/daemon.out" 2>&1 &
pid=$!
port=
for _ in $(seq 1 100); do
  port=$(sed -n 's/^Metrics on .*(port \([0-9]*\))$/\1/p' "$T/daemon.out")
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { cat "$T/daemon.out"; echo "the daemon did not start its metrics server"; exit 1; }

python3 - "$port" "$SCRAPES" "$IDLE" "$SLOW" <<'EOF'
import selectors, socket, sys, threading, time

port, scrapes, idle, slow = (int(a) for a in sys.argv[1:5])
addr = ("127.0.0.1", port)

failed = 0

def scrape():
    """Milliseconds for one scrape; None (counted) when it failed or took over 10 s."""
    global failed
    try:
        return scrape_once()
    except OSError:
        failed += 1
        return None

def scrape_once():
    t0 = time.perf_counter()
    s = socket.create_connection(addr, timeout=10)
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: bench\r\n\r\n")
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    dt = (time.perf_counter() - t0) * 1000
    if not data.startswith(b"HTTP/1.1 200 "):
        raise SystemExit("bad reply: %r" % data[:80])
    time.sleep(0.02)  # spread over a few of the server's 2 s client deadlines; not timed
    return dt

class Crowd(threading.Thread):
    """Keeps `idle` silent and `slow` half-request clients connected, reopening closed ones.
    Connects are non-blocking: a server that does not accept cannot stall the harness."""
    def __init__(self, idle, slow):
        super().__init__(daemon=True)
        self.sel = selectors.DefaultSelector()
        self.stop = threading.Event()
        self.reopened = 0
        self.connected = 0
        self.lock = threading.Lock()
        for i in range(idle):
            self.open(b"")
        for i in range(slow):
            self.open(b"GET /metr")
    def open(self, first):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(addr)
        self.sel.register(s, selectors.EVENT_WRITE, first)
    def close_one(self, s):
        self.sel.unregister(s)
        s.close()
    def run(self):
        while not self.stop.is_set():
            for key, mask in self.sel.select(0.05):
                s, first = key.fileobj, key.data
                if mask & selectors.EVENT_WRITE:
                    if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
                        self.close_one(s)
                        self.open(first)
                        continue
                    if first:
                        s.send(first)
                    self.sel.modify(s, selectors.EVENT_READ, first)
                    with self.lock:
                        self.connected += 1
                    continue
                try:
                    if s.recv(4096):
                        continue
                except OSError:
                    pass
                self.close_one(s)
                with self.lock:
                    self.connected -= 1
                self.reopened += 1
                self.open(first)
    def wait_connected(self, n, limit_s=10):
        end = time.monotonic() + limit_s
        while time.monotonic() < end:
            with self.lock:
                if self.connected >= n:
                    return n
            time.sleep(0.01)
        return self.connected
    def close(self):
        self.stop.set()
        self.join()
        for key in list(self.sel.get_map().values()):
            key.fileobj.close()

def report(label, ms, extra=""):
    global failed
    ok = sorted(m for m in ms if m is not None)
    if not ok:
        print("%-40s n=%d: every scrape failed or timed out (10 s)%s" % (label, len(ms), extra))
    else:
        p = lambda q: ok[min(len(ok) - 1, int(q * len(ok)))]
        print("%-40s n=%d p50 %.2f ms  p99 %.2f ms  max %.2f ms, %d failed or timed out (10 s)%s"
              % (label, len(ms), p(0.50), p(0.99), ok[-1], failed, extra))
    failed = 0

for _ in range(5):
    scrape()  # warm-up
report("no other client:", [scrape() for _ in range(scrapes)])
crowd = Crowd(idle, slow)
crowd.start()
up = crowd.wait_connected(idle + slow)
ms = [scrape() for _ in range(scrapes)]
crowd.close()
report("%d idle + %d slow clients connected:" % (idle, slow), ms,
       "  (%d of them connected before the first scrape; %d closed by the server and reopened)"
       % (up, crowd.reopened))
EOF
