#!/usr/bin/env python3
"""A fleet on one machine: 8 daemons (the real binary, each with its own state directory, fake
/proc tree and pod log directory, standing for 8 nodes) scraped by a real Prometheus through
file service discovery, with deploy/prometheus/grey-gpu-opt.rules.yml loaded (a copy whose
`for:` durations are cut to seconds for the alerts this test waits for; the shipped file is
not changed); everything is checked through Prometheus' HTTP API:
- mixed vendors: six nodes have 2 NVIDIA GPUs each (the fake NVML library), node-4 an Intel
  Arc A380 and node-7 an AMD Vega 56 (sysfs trees from tests/fixtures/sysfs, no NVML);
- processes in pods: node-2's two processes are in pod ml/trainer-0 and node-6's first in
  pod ml/trainer-1 (real-format cgroup lines, the kubelet's pod log layout), node-6's second
  is a host process (pod label empty);
- the recording rules: GPUs and VRAM per vendor, VRAM per pod across nodes;
- every rule evaluates without error on the real series (e.g. no many-to-many matching);
- the hot GPU of node-3 and the process over its cap on node-5 (and nothing else) FIRE
  GreyGpuAboveCooldownThreshold and GreyProcessAboveVramCap;
- every PromQL expression of the Grafana dashboard succeeds, the fleet and pod panels with data;
- node-8's daemon stopped (SIGTERM, exit 0) turns its `up` to 0 and GreyDaemonDown fires for
  node-8 alone.
Every wait is bounded polling of the API (LIMIT_S each, generous for a loaded 2-core machine);
everything listens on 127.0.0.1 and is stopped at the end (and dies with this process).

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
# Nodes without NVIDIA GPUs: a sysfs tree from tests/fixtures/sysfs (the card's directory).
SYSFS_NODES = {"node-4": "intel-arc-a380-i915-lact/card1",
               "node-7": "amd-radeon-rx-vega56-lact/card0"}
FIXTURES = os.path.join(du.REPO, "tests", "fixtures", "sysfs")
MIB = 2**20
# The fake NVML's GPU 0 uses this much on every NVIDIA node (the `tick` lines below).
NVML_GPU0_USED_MIB = 1000
# Pods: node -> [(pid, gpu, MiB, command, pod or None for a host process)].
POD_UID = {"trainer-0": "55c6c714-b240-4dec-9a45-57b61696ab6e",
           "trainer-1": "a5c1f8d5-1919-434d-add7-4afaafdaef89"}
CONTAINER_ID = {"trainer-0": "2032491dcae31e6746f47daa0ac74564f2843a1b0b2b6a0b6e6e1a0c4bd6e7f1",
                "trainer-1": "9f4b3c2a1d0e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a"}
PROCESSES = {"node-2": [(4242, 0, 500, "trainer", "trainer-0"),
                        (4243, 1, 300, "trainer", "trainer-0")],
             "node-5": [(4242, 0, 1500, "trainer", None)],
             "node-6": [(5151, 0, 700, "trainer", "trainer-1"),
                        (5152, 1, 200, "bench", None)]}
OTHER_NODES_PROCESS = (4242, 0, 500, "trainer", None)
# Alerts this test waits to FIRE: their `for:` in the test copy of the rules.
SHORT_FOR = {"GreyGpuAboveCooldownThreshold": "3s", "GreyProcessAboveVramCap": "3s",
             "GreyDaemonDown": "10s"}
LIMIT_S = 180
CONFIG = "per_process_vram_cap_mb: 1000\ncooldown_threshold_c: 80\nresume_threshold_c: 65\n"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def processes_of(node):
    if node in SYSFS_NODES:
        return []
    return PROCESSES.get(node, [OTHER_NODES_PROCESS])


def script_for(node):
    gpu0_temp = 90 if node == HOT_NODE else 50
    lines = ["tick 0 0 %d %d 10 100000" % (gpu0_temp, NVML_GPU0_USED_MIB),
             "tick 0 1 45 0 0 60000"]
    lines += ["proc 0 %d %d %d %s" % (gpu, pid, mib, cmd)
              for pid, gpu, mib, cmd, _pod in processes_of(node)]
    return "\n".join(lines) + "\n"


def write(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def fake_proc_and_pod_logs(d, node):
    """/proc/<pid>/{stat,cgroup,status} for each process of `node` (a pod's: the cgroup v2
    line of a containerd container under the systemd driver, its namespaced pid 1), and the
    kubelet's log directory <d>/log/pods/ml_<pod>_<uid>/trainer/ for each pod."""
    os.makedirs(os.path.join(d, "log", "pods"), exist_ok=True)
    for pid, _gpu, _mib, cmd, pod in processes_of(node):
        base = os.path.join(d, "proc", str(pid))
        write(os.path.join(base, "stat"),
              "%d (%s) S 1 %d %d 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 %d 12345678 300 "
              "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 3 0 0 0 0 0\n"
              % (pid, cmd, pid, pid, 1000 + pid))
        if pod:
            uid = POD_UID[pod]
            cgroup = ("0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod%s"
                      ".slice/cri-containerd-%s.scope\n" % (uid.replace("-", "_"),
                                                             CONTAINER_ID[pod]))
            nspid = "%d\t1" % pid
            write(os.path.join(d, "log", "pods", "ml_%s_%s" % (pod, uid), "trainer", "0.log"),
                  "")
        else:
            cgroup = "0::/system.slice/%s.service\n" % cmd
            nspid = "%d" % pid
        write(os.path.join(base, "cgroup"), cgroup)
        write(os.path.join(base, "status"),
              "Name:\t%s\nTgid:\t%d\nNSpid:\t%s\nPPid:\t1\n" % (cmd, pid, nspid))


def test_rules(tmp):
    """The shipped rule file with SHORT_FOR's `for:` durations (and nothing else changed)."""
    import yaml
    rules = du.load_yaml(du.RULES)
    for g in rules["groups"]:
        for r in g["rules"]:
            if r.get("alert") in SHORT_FOR:
                r["for"] = SHORT_FOR[r["alert"]]
    path = os.path.join(tmp, "rules.yml")
    with open(path, "w") as f:
        yaml.safe_dump(rules, f)
    return path


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
        fake_proc_and_pod_logs(d, node)
        if node in SYSFS_NODES:
            src = os.path.join(FIXTURES, SYSFS_NODES[node])
            shutil.copytree(src, os.path.join(d, "sys", "class", "drm", os.path.basename(src)))
        port = free_port()
        env = {"PATH": os.path.join(d, "bin"), "HOME": d,
               "GREY_CONFIG_DIR": os.path.join(d, "state"),
               "GREY_NVML_LIBRARY": ("/nonexistent/libnvidia-ml.so.1" if node in SYSFS_NODES
                                     else FAKE_NVML),
               "GREY_CUDA_LIBRARY": "/nonexistent/libcuda.so.1",
               "GREY_OPENCL_LIBRARY": "/nonexistent/libOpenCL.so.1",
               "FAKE_NVML_SCRIPT": os.path.join(d, "script.txt"),
               "FAKE_NVML_RECORD": os.path.join(d, "nvml-record.txt")}
        argv = [BINARY, "--procfs-root=" + os.path.join(d, "proc"),
                "--sysfs-root=" + os.path.join(d, "sys"),
                "--pod-log-root=" + os.path.join(d, "log", "pods"), "start-daemon", "--interval=1",
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
        self.assertion_rules = test_rules(self.tmp)
        conf["rule_files"] = [self.assertion_rules]
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
        gpus = {n: 1 if n in SYSFS_NODES else 2 for n in nodes}
        procs = sum(len(processes_of(n)) for n in nodes)
        # Up, every GPU with a reading, every process in, and the recording rules evaluated.
        up = fleet.wait_for("8 targets up, all GPUs and processes in", lambda: (
            fleet.query('count(up{job="grey-gpu-opt"} == 1) == %d' % NODES) and
            fleet.query('count(grey_gpu_temperature_celsius{job="grey-gpu-opt"}) == %d'
                        % sum(gpus.values())) and
            fleet.query('count(grey_process_vram_used_bytes{job="grey-gpu-opt"}) == %d'
                        % procs) and
            fleet.query('count(pod:grey_process_vram_used_bytes:sum) == 2')))
        self.assertTrue(up)
        t_up = time.monotonic() - t0
        per_node = fleet.query('count by (node) (grey_gpu_sample_stale{job="grey-gpu-opt"})')
        self.assertEqual({r["metric"]["node"]: r["value"][1] for r in per_node},
                         {n: str(g) for n, g in gpus.items()})

        # Fleet totals (recording rules): GPUs per vendor, VRAM in use per vendor.
        def by_vendor(expr):
            return {r["metric"].get("vendor", ""): float(r["value"][1])
                    for r in fleet.query(expr) or []}
        nvidia_nodes = NODES - len(SYSFS_NODES)
        want_gpus = {"nvidia": 2 * nvidia_nodes, "amd": 1, "intel": 1}
        # (The Intel Arc fixture has no VRAM files: no VRAM reading for Intel.)
        fleet.wait_for("GPUs per vendor " + repr(want_gpus), lambda: (
            (by_vendor("vendor:grey_gpus:count"),
             sorted(by_vendor("vendor:grey_gpu_vram_used_bytes:sum")))
            == (want_gpus, ["amd", "nvidia"])))
        vram = by_vendor("vendor:grey_gpu_vram_used_bytes:sum")
        # The fake NVML's used memory (its v2 call subtracts the reserved part) summed here over
        # the raw series, node by node; at least each node's GPU 0 of the script.
        raw = fleet.query('grey_gpu_vram_used_bytes{job="grey-gpu-opt",vendor="nvidia"}')
        self.assertEqual(len(raw), 2 * nvidia_nodes)
        self.assertEqual(vram["nvidia"], sum(float(r["value"][1]) for r in raw))
        self.assertGreater(vram["nvidia"], nvidia_nodes * NVML_GPU0_USED_MIB * MIB * 0.9)
        # The Vega 56 fixture's mem_info_vram_used (bytes; the daemon keeps whole MiB).
        self.assertEqual(vram["amd"], int(du.read_text(os.path.join(
            FIXTURES, SYSFS_NODES["node-7"], "device", "mem_info_vram_used"))) // MIB * MIB)

        # Pod attribution: labels on node-2's and node-6's processes, VRAM per pod.
        pr = fleet.query('grey_process_vram_used_bytes{job="grey-gpu-opt",'
                         'node=~"node-2|node-6"}')
        got = sorted((r["metric"]["node"], r["metric"]["pid"], r["metric"].get("namespace", ""),
                      r["metric"].get("pod", ""), r["metric"].get("container", ""))
                     for r in pr)
        self.assertEqual(got, [("node-2", "4242", "ml", "trainer-0", "trainer"),
                               ("node-2", "4243", "ml", "trainer-0", "trainer"),
                               ("node-6", "5151", "ml", "trainer-1", "trainer"),
                               ("node-6", "5152", "", "", "")])
        per_pod = {(r["metric"]["namespace"], r["metric"]["pod"]): float(r["value"][1])
                   for r in fleet.query("pod:grey_process_vram_used_bytes:sum")}
        self.assertEqual(per_pod, {("ml", "trainer-0"): 800 * MIB,
                                   ("ml", "trainer-1"): 700 * MIB})
        ns = fleet.query('sum by (namespace) (pod:grey_process_vram_used_bytes:sum)')
        self.assertEqual([(r["metric"]["namespace"], float(r["value"][1])) for r in ns],
                         [("ml", 1500 * MIB)])

        # The alerts that should FIRE (their `for:` cut to seconds in the test copy), and only
        # those fire.
        want = [("GreyGpuAboveCooldownThreshold", HOT_NODE, "0", ""),
                ("GreyProcessAboveVramCap", HOG_NODE, "0", "4242")]

        def firing():
            r = fleet.query('ALERTS{alertstate="firing"}')
            names = {a["metric"]["alertname"] for a in r or []}
            return r if {w[0] for w in want} <= names else None
        alerts = fleet.wait_for("the two alerts firing", firing)
        got = sorted((a["metric"]["alertname"], a["metric"].get("node"), a["metric"].get("gpu"),
                      a["metric"].get("pid", "")) for a in alerts)
        self.assertEqual(got, want)

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

        # Every query of the Grafana dashboard succeeds on this Prometheus; the fleet overview
        # and per-pod panels have data.
        with_data = set()
        for pid, title, ref, expr in du.dashboard_queries():
            j = fleet.api("query", query=expr)
            self.assertTrue(j and j.get("status") == "success",
                            "panel %d %r %s: %s -> %r" % (pid, title, ref, expr, j))
            if j["data"]["result"]:
                with_data.add(title)
        for title in ("Fleet: GPUs per vendor", "Fleet: GPU memory in use per vendor",
                      "Fleet: GPU memory in use per node", "GPU memory per pod (all nodes)",
                      "GPU memory per pod and container, by node",
                      "GPU processes outside any pod, by node"):
            self.assertIn(title, with_data)

        # One daemon stops: it exits 0, its target goes down, GreyDaemonDown fires for it alone.
        self.assertEqual(fleet.stop_daemon(STOPPED_NODE), 0)
        down = fleet.wait_for("GreyDaemonDown firing for " + STOPPED_NODE, lambda: fleet.query(
            'ALERTS{alertname="GreyDaemonDown",alertstate="firing"}'))
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
