"""Shared helpers for the deploy/ tests (run by CTest, see tests/CMakeLists.txt).

Each test script is a unittest module run as a program. When a tool it needs is missing
(kubectl, promtool, Debian's python3-kubernetes or python3-yaml) it prints why and exits 77,
which CTest reports as "Skipped" (SKIP_RETURN_CODE), never as passed.
"""

import os
import re
import shutil
import subprocess
import sys
import unittest

SKIP = 77
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEPLOY = os.path.join(REPO, "deploy")
KUSTOMIZE_ROOT = os.path.join(DEPLOY, "kubernetes")
RULES = os.path.join(DEPLOY, "prometheus", "grey-gpu-opt.rules.yml")
RULE_TESTS = os.path.join(DEPLOY, "prometheus", "grey-gpu-opt.rules.test.yml")
DASHBOARD = os.path.join(DEPLOY, "grafana", "grey-gpu-opt.json")
CONTAINERFILE = os.path.join(DEPLOY, "container", "Containerfile")

# Every deadline for a tool we run (seconds): a hung tool fails the test, never hangs it.
TOOL_TIMEOUT = 120


def skip_unless(missing):
    """Exit 77 with the reasons when `missing` (a list of sentences) is not empty."""
    if missing:
        for why in missing:
            print("SKIP: " + why)
        sys.stdout.flush()
        sys.exit(SKIP)


def need_yaml():
    try:
        import yaml  # noqa: F401
    except ImportError:
        return ["python3-yaml is not installed (Debian package python3-yaml)"]
    return []


def need_tool(name, package):
    if shutil.which(name) is None:
        return ["%s is not on PATH (Debian package %s)" % (name, package)]
    return []


def need_kustomize():
    """kubectl with a built-in kustomize v5 or later (the manifests use `labels` and `patches`
    with a label selector). Debian 12's own kubernetes-client (1.20) carries kustomize 2.0."""
    missing = need_tool("kubectl", "kubectl, from the Kubernetes apt repository")
    if missing:
        return missing
    try:
        r = run(["kubectl", "version", "--client", "-o", "json"], timeout=60)
        import json
        v = json.loads(r.stdout).get("kustomizeVersion", "")
    except (ValueError, OSError, subprocess.SubprocessError):
        v = ""
    m = re.match(r"v(\d+)\.", v)
    if not m or int(m.group(1)) < 5:
        return ["kubectl's built-in kustomize is %r, older than v5 (Debian 12's "
                "kubernetes-client 1.20 has 2.0.3); install kubectl 1.27 or later" % v]
    return []


def need_kubernetes():
    try:
        import kubernetes.client  # noqa: F401
    except ImportError:
        return ["python3-kubernetes is not installed for %s (Debian package python3-kubernetes)"
                % sys.executable]
    return []


def run(argv, timeout=TOOL_TIMEOUT, **kw):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=timeout, **kw)


def kustomizations():
    """Every directory under deploy/kubernetes with a kustomization.yaml, relative paths."""
    out = []
    for root, _dirs, files in os.walk(KUSTOMIZE_ROOT):
        if "kustomization.yaml" in files:
            out.append(os.path.relpath(root, KUSTOMIZE_ROOT))
    return sorted(out)


def render(rel):
    """`kubectl kustomize` of one kustomization: the list of objects (dicts)."""
    import yaml
    r = run(["kubectl", "kustomize", os.path.join(KUSTOMIZE_ROOT, rel)])
    if r.returncode != 0:
        raise AssertionError("kubectl kustomize %s failed (%d):\n%s" % (rel, r.returncode, r.stderr))
    return [d for d in yaml.safe_load_all(r.stdout) if d is not None]


def objects_of(objs, kind):
    return [o for o in objs if o.get("kind") == kind]


def load_yaml(path):
    import yaml
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def dashboard_queries():
    """Every panel query of deploy/grafana/grey-gpu-opt.json as (panel id, title, refId,
    PromQL), Grafana's multi-value variables ($node, $namespace) replaced by the regex that
    "All" selects."""
    import json
    with open(DASHBOARD, encoding="utf-8") as f:
        dash = json.load(f)
    out = []
    for p in dash["panels"]:
        for t in p.get("targets", []):
            expr = t["expr"].replace("$namespace", ".*").replace("$node", ".*")
            out.append((p["id"], p["title"], t["refId"], expr))
    return out


def die_with_parent():
    """preexec_fn for the processes a test starts: SIGTERM when the test process dies (a
    test killed on timeout leaves no daemon or Prometheus behind)."""
    import ctypes
    import signal
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def read_text(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def main(missing):
    """Skip (77) when something is missing, else run the module's tests."""
    skip_unless(missing)
    unittest.main(verbosity=2)
