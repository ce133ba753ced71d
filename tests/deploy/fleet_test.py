#!/usr/bin/env python3
"""A fleet on one machine: 8 daemons (the real binary, each with the fake NVML library and
its own state directory, standing for 8 nodes) scraped by a real Prometheus through file
service discovery, with deploy/prometheus/grey-gpu-opt.rules.yml loaded; everything is
checked through Prometheus' HTTP API:
- all 8 targets up with their `node` label, 2 GPUs each;
- every rule evaluates without error on the real series (e.g. no many-to-many matching);
- the hot GPU of node-3 and the process over its cap on node-5 (and nothing else) put
  GreyGpuAboveCooldownThreshold and GreyProcessAboveVramCap into pending;
- node-8's daemon stopped (SIGTERM, exit 0) turns its `up` to 0 and GreyDaemonDown pending.

Run: GREY_BINARY=build/dev/grey-gpu-opt GREY_FAKE_NVML=build/dev/fakes/fake_nvml.so \
     python3 tests/deploy/fleet_test.py   (exit 77: skipped, the reason printed)
     add --keep to leave the fleet running until Ctrl-C (prints the Prometheus URL)."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deploy_util as du  # noqa: E402

BINARY = os.environ.get("GREY_BINARY", "")
FAKE_NVML = os.environ.get("GREY_FAKE_NVML", "")
NODES = 8
HOT_NODE, HOG_NODE, STOPPED_NODE = "node-3", "node-5", "node-8"
LIMIT_S = 180
CONFIG = "per_process_vram_cap_mb: 1000\ncooldown_threshold_c: 80\nresume_threshold_c: 65\n"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def script_for(node):
    gpu0_temp = 90 if node == HOT_NODE else 50
    lines = ["tick 0 0 %d 1000 10 100000" % gpu0_temp, "tick 0 1 45 0 0 60000",
             "proc 0 0 4242 %d trainer" % (1500 if node == HOG_NODE else 500)]
    return "\n".join(lines) + "\n"


class Fleet:
    def __init__(self, tmp):
        self.tmp = tmp
        self.daemons = {}  # node -> (Popen, port)
        self.prom = None
        self.prom_port = None

    def start_daemon(self, node):
        d = os.path.join(self.tmp, node)
        for sub in ("state", "sys/class/drm", "proc", "bin"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        os.chmod(os.path.join(d, "state"), 0o700)
        with open(os.path.join(d, "state", "config.yaml"), "w") as f:
            f.write(CONFIG)
        os.chmod(os.path.join(d, "state", "config.yaml"), 0o600)
        with open(os.path.join(d, "script.txt"), "w") as f:
            f.write(script_for(node))
        port = free_port()
        env = {"PATH": os.path.join(d, "bin"), "HOME": d,
               "GREY_CONFIG_DIR": os.path.join(d, "state"),
               "GREY_NVML_LIBRARY": FAKE_NVML,
               "GREY_CUDA_LIBRARY": "/nonexistent/libcuda.so.1",
               "GREY_OPENCL_LIBRARY": "/nonexistent/libOpenCL.so.1",
               "FAKE_NVML_SCRIPT": os.path.join(d, "script.txt"),
               "FAKE_NVML_RECORD": os.path.join(d, "nvml-record.txt")}
        argv = [BINARY, "--procfs-root=" + os.path.join(d, "proc"),
                "--sysfs-root=" + os.path.join(d, "sys"), "start-daemon", "--interval=1",
                "--dry-run", "--metrics-listen=127.0.0.1:%d" % port]
        with open(os.path.join(d, "daemon.log"), "w") as log:
            p = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=True,
                                 preexec_fn=du.die_with_parent)
        self.daemons[node] = (p, port)

    def start_prometheus(self):
        targets = [{"targets": ["127.0.0.1:%d" % port], "labels": {"node": node}}
                   for node, (_p, port) in sorted(self.daemons.items())]
        sd = os.path.join(self.tmp, "targets.json")
        with open(sd, "w") as f:
            json.dump(targets, f)
        # deploy/prometheus/prometheus-file-sd.yml, with 1 s intervals, our target file and
        # the rule file by its absolute path.
        conf = du.load_yaml(os.path.join(os.path.dirname(du.RULES), "prometheus-file-sd.yml"))
        conf["global"].update(scrape_interval="1s", evaluation_interval="1s")
        conf["rule_files"] = [os.path.join(os.path.dirname(du.RULES), f)
                              for f in conf["rule_files"]]
        job = conf["scrape_configs"][0]
        job["scrape_timeout"] = "1s"
        job["file_sd_configs"][0].update(files=[sd], refresh_interval="1s")
        cfg = os.path.join(self.tmp, "prometheus.yml")
        with open(cfg, "w") as f:
            json.dump(conf, f)  # JSON is YAML
        self.prom_port = free_port()
        with open(os.path.join(self.tmp, "prometheus.log"), "w") as log:
            self.prom = subprocess.Popen(
                [shutil.which("prometheus"), "--config.file=" + cfg,
                 "--storage.tsdb.path=" + os.path.join(self.tmp, "data"),
                 "--web.listen-address=127.0.0.1:%d" % self.prom_port],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=du.die_with_parent)

    def api(self, path, **params):
        url = "http://127.0.0.1:%d/api/v1/%s" % (self.prom_port, path)
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                return json.loads(r.read())
        except (urllib.error.URLError, ConnectionError, socket.timeout, ValueError):
            return None

    def query(self, expr):
        j = self.api("query", query=expr)
        if not j or j.get("status") != "success":
            return None
        return j["data"]["result"]

    def wait_for(self, what, fn, limit=LIMIT_S):
        deadline = time.monotonic() + limit
        last = None
        while time.monotonic() < deadline:
            last = fn()
            if last:
                return last
            if self.prom.poll() is not None:
                break
            time.sleep(0.5)
        raise AssertionError("timed out waiting for %s (last: %r)\n%s"
                             % (what, last, du.read_text(os.path.join(self.tmp,
                                                                      "prometheus.log"))[-3000:]))

    def stop_daemon(self, node):
        p, _port = self.daemons[node]
        p.send_signal(signal.SIGTERM)
        try:
            return p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            return None

    def close(self):
        for p, _port in self.daemons.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        if self.prom and self.prom.poll() is None:
            self.prom.send_signal(signal.SIGTERM)
        for p in [p for p, _ in self.daemons.values()] + ([self.prom] if self.prom else []):
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def series_nodes(result, *labels):
    return sorted(tuple(r["metric"].get(k, "") for k in labels) for r in result)


class FleetOnOneMachine(du.unittest.TestCase):
    def test_eight_daemons_one_prometheus_and_the_alerts(self):
        with tempfile.TemporaryDirectory() as tmp:
            fleet = Fleet(tmp)
            try:
                self.run_fleet(fleet)
            finally:
                fleet.close()

    def run_fleet(self, fleet):
        t0 = time.monotonic()
        nodes = ["node-%d" % i for i in range(1, NODES + 1)]
        for node in nodes:
            fleet.start_daemon(node)
        fleet.start_prometheus()
        up = fleet.wait_for("8 targets up with 2 GPUs each", lambda: (
            fleet.query('count(up{job="grey-gpu-opt"} == 1) == %d' % NODES) and
            fleet.query('count(grey_gpu_temperature_celsius{job="grey-gpu-opt"}) == %d'
                        % (2 * NODES))))
        self.assertTrue(up)
        t_up = time.monotonic() - t0
        per_node = fleet.query('count by (node) (grey_gpu_sample_stale{job="grey-gpu-opt"})')
        self.assertEqual({r["metric"]["node"]: r["value"][1] for r in per_node},
                         {n: "2" for n in nodes})

        # The alerts that should be pending (every `for` is minutes long), and only those.
        def pending():
            r = fleet.query('ALERTS{alertstate="pending"}')
            names = {a["metric"]["alertname"] for a in r or []}
            if {"GreyGpuAboveCooldownThreshold", "GreyProcessAboveVramCap"} <= names:
                return r
            return None
        alerts = fleet.wait_for("the two pending alerts", pending)
        got = sorted((a["metric"]["alertname"], a["metric"].get("node"), a["metric"].get("gpu"),
                      a["metric"].get("pid", "")) for a in alerts)
        self.assertEqual(got, [("GreyGpuAboveCooldownThreshold", HOT_NODE, "0", ""),
                               ("GreyProcessAboveVramCap", HOG_NODE, "0", "4242")])

        # Every rule evaluates cleanly against the real series.
        rules = fleet.api("rules")
        self.assertEqual(rules["status"], "success")
        evaluated = 0
        for g in rules["data"]["groups"]:
            for r in g["rules"]:
                self.assertEqual(r.get("health"), "ok", "%s: %s" % (r["name"], r.get("lastError")))
                evaluated += 1
        self.assertEqual(evaluated, len([r for g in du.load_yaml(du.RULES)["groups"]
                                         for r in g["rules"]]))

        # One daemon stops: it exits 0, its target goes down, GreyDaemonDown is pending.
        self.assertEqual(fleet.stop_daemon(STOPPED_NODE), 0)
        down = fleet.wait_for("GreyDaemonDown pending for " + STOPPED_NODE, lambda: fleet.query(
            'ALERTS{alertname="GreyDaemonDown",alertstate="pending"}'))
        self.assertEqual(series_nodes(down, "node"), [(STOPPED_NODE,)])
        self.assertEqual(fleet.query('count(up{job="grey-gpu-opt"} == 1)')[0]["value"][1],
                         str(NODES - 1))

        rss = fleet.query('sum(grey_daemon_resident_memory_bytes{job="grey-gpu-opt"})')
        scrape = fleet.query('max(scrape_duration_seconds{job="grey-gpu-opt"})')
        samples = fleet.query('sum(scrape_samples_scraped{job="grey-gpu-opt"})')
        print("MEASURED fleet: %d daemons up and ingested %.1f s after start; %.1f MiB resident "
              "in all; slowest scrape %.1f ms; %s samples per scrape round"
              % (NODES, t_up, float(rss[0]["value"][1]) / 2**20,
                 float(scrape[0]["value"][1]) * 1000, samples[0]["value"][1]))


def keep_running():
    tmp = tempfile.mkdtemp(prefix="grey-fleet-")
    fleet = Fleet(tmp)

    def interrupt(_sig, _frame):
        raise KeyboardInterrupt

    # Ctrl-C, and SIGTERM too (a background job may have SIGINT ignored): stop everything.
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    try:
        for i in range(1, NODES + 1):
            fleet.start_daemon("node-%d" % i)
        fleet.start_prometheus()
        print("Prometheus: http://127.0.0.1:%d  (files under %s; Ctrl-C stops everything)"
              % (fleet.prom_port, tmp))
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        fleet.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    missing = du.need_yaml() + du.need_tool("prometheus", "prometheus")
    if not BINARY or not os.access(BINARY, os.X_OK):
        missing.append("GREY_BINARY (the built grey-gpu-opt) is not set or not executable")
    if not FAKE_NVML or not os.path.exists(FAKE_NVML):
        missing.append("GREY_FAKE_NVML (tests' fake_nvml.so) is not set or missing")
    if "--keep" in sys.argv:
        du.skip_unless(missing)
        keep_running()
        sys.exit(0)
    du.main(missing)
