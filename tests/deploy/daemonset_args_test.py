#!/usr/bin/env python3
"""The DaemonSets' command lines against the real binary.

For every rendered DaemonSet (base, and the enforce overlay's two):
- every root the arguments name (--procfs-root, --sysfs-root, and --labels-dir and
  --pod-log-root or their defaults, GREY_CONFIG_DIR) lies on a volume mount from the
  matching hostPath, read-only where nothing is written; every hostPath mount is named by one;
- the binary (GREY_BINARY) runs with exactly those arguments and environment, each path
  mapped to what the pod would see there (this host's /proc and /sys, temporary directories
  for the writable hostPaths) and --metrics-listen moved to a free loopback port: its own
  parser accepts them (no validation-only mode exists, so the daemon really starts, with the
  fake NVML library, ticks, serves /metrics, and stops cleanly with exit 0 on SIGTERM);
- the metric and label names the alerts and the Grafana dashboard use are in that /metrics.

Run: GREY_BINARY=build/dev/grey-gpu-opt GREY_FAKE_NVML=build/dev/fakes/fake_nvml.so \
     python3 tests/deploy/daemonset_args_test.py   (exit 77: skipped, the reason printed)."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deploy_util as du  # noqa: E402

BINARY = os.environ.get("GREY_BINARY", "")
FAKE_NVML = os.environ.get("GREY_FAKE_NVML", "")
FEATURES_D = "/etc/kubernetes/node-feature-discovery/features.d"
# Path-valued options: the host path each must come from, and the default when not given.
ROOT_FLAGS = {
    "--procfs-root": ("/proc", None),
    "--sysfs-root": ("/sys", None),
    "--labels-dir": (FEATURES_D, None),
    "--pod-log-root": ("/var/log/pods", "/var/log/pods"),
}
ROOT_ENV = {"GREY_CONFIG_DIR": "/var/lib/grey-gpu-opt"}
# Target labels Prometheus adds (the ServiceMonitor sets `node`).
TARGET_LABELS = {"job", "instance", "node"}
STARTUP_LIMIT_S = 120

FAKE_SCRIPT = ("tick 0 0 50 1000 10 100000\n"
               "proc 0 0 4242 1500 trainer\n"
               "putil 0 0 4242 35\n")
CONFIG = "per_process_vram_cap_mb: 1000\n"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http_get(port, path):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=5) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")
    except (urllib.error.URLError, ConnectionError, socket.timeout):
        return None, ""


def parse_options(args):
    """`--name=value` options and bare words, in order. Every option with a value must use the
    `=` form in the manifests, so that this needs no table of which options take values."""
    opts, words = {}, []
    for a in args:
        if a.startswith("--") and "=" in a:
            k, v = a.split("=", 1)
            opts[k] = v
        else:
            words.append(a)
    return opts, words


def families(body):
    """Metric family name -> set of label names, from an exposition text."""
    out = {}
    for line in body.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? ", line)
        if not m:
            continue
        labels = set(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="', m.group(3) or ""))
        out.setdefault(m.group(1), set()).update(labels)
    return out


def binary_accepts(option):
    r = du.run([BINARY, "start-daemon", "--help"])
    return re.search(r"(^|\s)%s[\s=,]" % re.escape(option), r.stdout + r.stderr) is not None


class DaemonSetArgs(du.unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.daemonsets = []
        for rel in ("base", os.path.join("overlays", "enforce")):
            for ds in du.objects_of(du.render(rel), "DaemonSet"):
                cls.daemonsets.append(("%s:%s" % (rel, ds["metadata"]["name"]), ds))
        cls.scraped = {}

    # ---- the roots and the mounts ----------------------------------------------------------

    def mounts(self, ds):
        pod = ds["spec"]["template"]["spec"]
        vols = {v["name"]: v for v in pod.get("volumes", [])}
        c = pod["containers"][0]
        return [(m, vols[m["name"]]) for m in c.get("volumeMounts", [])]

    def mount_for(self, ds, path):
        """The volume mount a container path lies on (the longest mountPath prefix)."""
        best = None
        for m, v in self.mounts(ds):
            mp = m["mountPath"].rstrip("/")
            if path == mp or path.startswith(mp + "/"):
                if best is None or len(mp) > len(best[0]["mountPath"].rstrip("/")):
                    best = (m, v)
        return best

    def roots(self, ds):
        """(what, container path, host path it must come from, written?) for every root."""
        c = ds["spec"]["template"]["spec"]["containers"][0]
        opts, _ = parse_options(c["args"])
        out = []
        for flag, (host, default) in ROOT_FLAGS.items():
            value = opts.get(flag, default)
            if value is not None:
                out.append((flag, value, host, flag == "--labels-dir"))
        env = {e["name"]: e.get("value") for e in c.get("env", [])}
        for name, host in ROOT_ENV.items():
            self.assertIn(name, env)
            out.append((name, env[name], host, True))
        return out

    def test_every_root_is_a_mount_of_the_right_host_path(self):
        labels_dir_known = binary_accepts("--labels-dir")
        for name, ds in self.daemonsets:
            c = ds["spec"]["template"]["spec"]["containers"][0]
            opts, _ = parse_options(c["args"])
            self.assertIn("--procfs-root", opts, name)
            self.assertIn("--sysfs-root", opts, name)
            enforcing = "--no-dry-run" in c["args"]
            used = set()
            for what, path, host, written in self.roots(ds):
                mv = self.mount_for(ds, path)
                self.assertIsNotNone(mv, "%s: %s=%s is on no volume mount" % (name, what, path))
                m, v = mv
                self.assertIn("hostPath", v, "%s: %s" % (name, what))
                rel = os.path.relpath(path, m["mountPath"])
                want = os.path.normpath(os.path.join(v["hostPath"]["path"], rel))
                self.assertEqual(want, host, "%s: %s=%s is the host's %s, not %s"
                                 % (name, what, path, want, host))
                ro = bool(m.get("readOnly", False))
                if written:
                    self.assertFalse(ro, "%s: %s must be writable" % (name, what))
                elif what != "--sysfs-root" or not enforcing:
                    # Read-only, except /sys where enforcement writes power limits.
                    self.assertTrue(ro, "%s: %s must be read-only" % (name, what))
                used.add(m["mountPath"])
            for m, v in self.mounts(ds):
                if "hostPath" not in v or m["mountPath"] in used:
                    continue
                if v["hostPath"]["path"] == FEATURES_D and not labels_dir_known:
                    # The NFD features.d mount waits for `start-daemon --labels-dir`, which
                    # this binary does not have yet; once it has, this test demands the arg.
                    print("NOTE %s: %s mounted for --labels-dir, which %s does not accept yet"
                          % (name, FEATURES_D, BINARY))
                    continue
                self.fail("%s: hostPath %s is mounted at %s but no argument names it%s"
                          % (name, v["hostPath"]["path"], m["mountPath"],
                             " (add --labels-dir=%s to the args of "
                             "deploy/kubernetes/agent/daemonset.yaml and "
                             "overlays/enforce/enforcing/enforce.yaml, and to the CMD of "
                             "deploy/container/Containerfile)" % FEATURES_D
                             if v["hostPath"]["path"] == FEATURES_D else ""))

    def test_the_mount_check_can_fail(self):
        name, ds = self.daemonsets[0]
        bad = json.loads(json.dumps(ds))
        c = bad["spec"]["template"]["spec"]["containers"][0]
        c["args"] = [a.replace("--procfs-root=/host/proc", "--procfs-root=/host/prc")
                     for a in c["args"]]
        with self.assertRaises(AssertionError):
            self.daemonsets, saved = [(name, bad)], self.daemonsets
            try:
                self.test_every_root_is_a_mount_of_the_right_host_path()
            finally:
                self.daemonsets = saved

    # ---- the binary runs with those arguments ----------------------------------------------

    def start(self, ds, tmp, extra=()):
        """Runs the container's command line as the pod would, mapped onto this host."""
        pod = ds["spec"]["template"]["spec"]
        c = pod["containers"][0]
        local = {}  # container mount path -> path here
        for m, v in self.mounts(ds):
            hp = v.get("hostPath", {}).get("path")
            if hp in ("/proc", "/sys") and m.get("readOnly"):
                local[m["mountPath"]] = hp  # the pod sees this host's own, read-only
            else:
                d = os.path.join(tmp, "mnt" + m["mountPath"])
                os.makedirs(d, mode=0o755, exist_ok=True)
                os.chmod(d, 0o755)  # what kubelet's DirectoryOrCreate makes
                local[m["mountPath"]] = d

        def mapped(path):
            for mp in sorted(local, key=len, reverse=True):
                if path == mp or path.startswith(mp.rstrip("/") + "/"):
                    return local[mp] + path[len(mp.rstrip("/")):]
            return path

        port = free_port()
        args = []
        for a in c["args"]:
            if a.startswith("--metrics-listen="):
                a = "--metrics-listen=127.0.0.1:%d" % port
            elif a.startswith("--") and "=" in a:
                k, v = a.split("=", 1)
                a = k + "=" + (mapped(v) if v.startswith("/") else v)
            args.append(a)
        env = {}
        for e in c.get("env", []):
            v = e.get("value", "")
            env[e["name"]] = mapped(v) if v.startswith("/") else v
        state = env["GREY_CONFIG_DIR"]
        with open(os.path.join(state, "config.yaml"), "w") as f:
            f.write(CONFIG)
        os.chmod(os.path.join(state, "config.yaml"), 0o600)
        os.makedirs(os.path.join(tmp, "bin"), exist_ok=True)
        with open(os.path.join(tmp, "script.txt"), "w") as f:
            f.write(FAKE_SCRIPT)
        env.update({
            "PATH": os.path.join(tmp, "bin"),  # no vendor tool: NVML (the fake) and sysfs
            "HOME": tmp,
            "GREY_NVML_LIBRARY": FAKE_NVML,
            "GREY_CUDA_LIBRARY": "/nonexistent/libcuda.so.1",
            "GREY_OPENCL_LIBRARY": "/nonexistent/libOpenCL.so.1",
            "FAKE_NVML_SCRIPT": os.path.join(tmp, "script.txt"),
            "FAKE_NVML_RECORD": os.path.join(tmp, "nvml-record.txt"),
        })
        argv = [mapped(x) if x.startswith("/") and x != c["command"][0] else x
                for x in c["command"]]
        argv[0] = BINARY
        with open(os.path.join(tmp, "daemon.out"), "w") as out, \
                open(os.path.join(tmp, "daemon.err"), "w") as err:
            p = subprocess.Popen(argv + args + list(extra), env=env, stdin=subprocess.DEVNULL,
                                 stdout=out, stderr=err, start_new_session=True,
                                 preexec_fn=du.die_with_parent)
        return p, port, argv + args

    def stop(self, p):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        try:
            return p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            return None

    def run_daemon(self, ds):
        """Starts the daemon as the pod would, waits until it has ticked twice and shows GPU
        readings, reads /metrics and the probes, stops it. Returns what it saw."""
        with tempfile.TemporaryDirectory() as tmp:
            p, port, argv = self.start(ds, tmp)
            body, ticks = "", 0
            deadline = time.monotonic() + STARTUP_LIMIT_S
            try:
                while time.monotonic() < deadline and p.poll() is None:
                    status, body = http_get(port, "/metrics")
                    m = re.search(r"^grey_daemon_ticks_total (\S+)$", body, re.M)
                    ticks = float(m.group(1)) if m and status == 200 else 0
                    if ticks >= 2 and "grey_gpu_temperature_celsius{" in body:
                        break
                    time.sleep(0.2)
                probes = {path: http_get(port, path)[0] for path in ("/healthz", "/readyz")}
            finally:
                rc = self.stop(p)
            err = du.read_text(os.path.join(tmp, "daemon.err"))
        return {"argv": argv, "ticks": ticks, "rc": rc, "err": err, "body": body,
                "probes": probes}

    def runs(self):
        if not DaemonSetArgs.scraped:
            for name, ds in self.daemonsets:
                DaemonSetArgs.scraped[name] = self.run_daemon(ds)
        return DaemonSetArgs.scraped

    def test_the_binary_runs_with_each_daemonsets_arguments(self):
        for name, ds in self.daemonsets:
            r = self.runs()[name]
            with self.subTest(ds=name):
                body = r["body"]
                self.assertGreaterEqual(r["ticks"], 2, "%s\n%s\n%s"
                                        % (r["argv"], r["err"], body[-2000:]))
                self.assertEqual(r["rc"], 0, "%s: exit %s after SIGTERM\n%s"
                                 % (r["argv"], r["rc"], r["err"]))
                if set(r["probes"].values()) == {404}:
                    print("NOTE %s: this binary serves no /healthz or /readyz yet" % name)
                else:
                    self.assertEqual(r["probes"], {"/healthz": 200, "/readyz": 200}, name)
                fams = families(body)
                rss = float(re.search(r"^grey_daemon_resident_memory_bytes (\S+)$", body,
                                      re.M).group(1))
                tick = float(re.search(r'^grey_daemon_tick_duration_seconds\{source="total"\} '
                                       r"(\S+)$", body, re.M).group(1))
                print("MEASURED %s: resident memory %.1f MiB, last tick %.1f ms, %d families"
                      % (name, rss / 2**20, tick * 1000, len(fams)))
                # The memory request covers what the daemon uses (here: two fake GPUs).
                req = ds["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]
                self.assertTrue(req["memory"].endswith("Mi"))
                # A sanitizer build (the test command's ASan+UBSan suite) keeps shadow memory
                # and quarantine: its RSS says nothing about the shipped binary's.
                if os.environ.get("GREY_SANITIZED", "0") != "1":
                    self.assertLess(rss, int(req["memory"][:-2]) * 2**20, name)

    def test_the_parser_refuses_an_unknown_option_with_these_arguments(self):
        # Control: the run above is a real parse; the same line plus a bad option exits 2
        # before it starts (so a wrong option in the manifests would fail that test).
        name, ds = self.daemonsets[0]
        with tempfile.TemporaryDirectory() as tmp:
            p, _port, argv = self.start(ds, tmp, extra=["--no-such-option=1"])
            try:
                rc = p.wait(timeout=60)
            finally:
                self.stop(p)
            err = du.read_text(os.path.join(tmp, "daemon.err"))
            self.assertEqual(rc, 2, err)
            self.assertIn("--no-such-option", err)

    # ---- names the alerts and the dashboard use ---------------------------------------------

    def scrape(self):
        return families(next(iter(self.runs().values()))["body"])

    def test_alerts_and_dashboard_use_only_names_from_the_real_metrics(self):
        fams = self.scrape()
        all_labels = set().union(*fams.values()) | TARGET_LABELS
        exprs, label_refs = [], set()
        rules = du.load_yaml(du.RULES)
        records = {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}
        for g in rules["groups"]:
            for r in g["rules"]:
                exprs.append(r["expr"])
                for text in r.get("annotations", {}).values():
                    label_refs |= set(re.findall(r"\$labels\.([a-zA-Z_]\w*)", text))
        with open(du.DASHBOARD) as f:
            dash = json.load(f)
        for p in dash["panels"]:
            for t in p.get("targets", []):
                exprs.append(t["expr"])
                label_refs |= set(re.findall(r"\{\{\s*([a-zA-Z_]\w*)\s*\}\}",
                                             t.get("legendFormat", "")))
        for v in dash["templating"]["list"]:
            if v.get("type") == "query":
                exprs.append(v["definition"])
        self.assertTrue(exprs)
        for e in exprs:
            # grey_* names outside recording rules' "level:metric:operation" names
            for metric in re.findall(r"(?<![\w:])(grey_[a-z0-9_]+)(?![\w:])", e):
                self.assertIn(metric, fams, "%r names %s, which /metrics does not have"
                              % (e, metric))
            for rec in re.findall(r"\b([a-z_]+:grey_[a-z0-9_]+:[a-z0-9_]+)", e):
                self.assertIn(rec, records, "%r names %s, which no recording rule records"
                              % (e, rec))
            for group in re.findall(r"\b(?:on|by|ignoring|group_left|group_right)\s*\(([^)]*)\)",
                                    e):
                for label in re.findall(r"[a-zA-Z_]\w*", group):
                    label_refs.add(label)
            for label in re.findall(r"label_values\([^,]*,\s*([a-zA-Z_]\w*)\)", e):
                label_refs.add(label)
        self.assertEqual(label_refs - all_labels, set())

    def test_promtool_check_metrics_on_the_real_output(self):
        if du.need_tool("promtool", "prometheus"):
            self.skipTest("promtool not installed (Debian package prometheus)")
        body = next(iter(self.runs().values()))["body"]
        self.assertIn("grey_gpu_temperature_celsius{", body)
        r = subprocess.run(["promtool", "check", "metrics"], input=body, text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


if __name__ == "__main__":
    missing = du.need_yaml() + du.need_kustomize()
    if not BINARY or not os.access(BINARY, os.X_OK):
        missing.append("GREY_BINARY (the built grey-gpu-opt) is not set or not executable")
    if not FAKE_NVML or not os.path.exists(FAKE_NVML):
        missing.append("GREY_FAKE_NVML (tests' fake_nvml.so) is not set or missing")
    du.main(missing)
