#!/usr/bin/env python3
"""deploy/kubernetes/: every kustomization renders with `kubectl kustomize`; every rendered
object deserializes into the typed Kubernetes models (Debian's python3-kubernetes) with no
unknown field; the ServiceMonitor and PrometheusRule (CRDs, no typed model) have only fields
of the prometheus-operator CRDs; and the DaemonSets keep the properties SPEC §8 asks for.

Run: python3 tests/deploy/kustomize_test.py  (exit 77: skipped, the reason printed)."""

import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deploy_util as du  # noqa: E402

# ---- typed models ------------------------------------------------------------------------

CORE_KINDS = {
    ("v1", "Namespace"): "V1Namespace",
    ("v1", "ServiceAccount"): "V1ServiceAccount",
    ("v1", "Service"): "V1Service",
    ("apps/v1", "DaemonSet"): "V1DaemonSet",
    ("scheduling.k8s.io/v1", "PriorityClass"): "V1PriorityClass",
}
CRD_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor"),
             ("monitoring.coreos.com/v1", "PrometheusRule")}


def strict_check(data, type_name, path, errors):
    """Walks `data` along the python3-kubernetes model `type_name`: every key must be a field
    of the model (the client's own deserializer silently drops unknown ones) and every leaf
    must have the model's type."""
    from kubernetes import client
    if type_name.startswith("list["):
        if not isinstance(data, list):
            errors.append("%s: expected a list, got %r" % (path, data))
            return
        for i, item in enumerate(data):
            strict_check(item, type_name[5:-1], "%s[%d]" % (path, i), errors)
        return
    m = re.match(r"dict\(([^,]*), (.*)\)$", type_name)
    if m:
        if not isinstance(data, dict):
            errors.append("%s: expected a map, got %r" % (path, data))
            return
        for k, v in data.items():
            strict_check(v, m.group(2), "%s.%s" % (path, k), errors)
        return
    prim = {"str": str, "bool": bool, "float": (int, float), "datetime": str, "date": str}
    if type_name == "int":
        if not isinstance(data, int) or isinstance(data, bool):
            errors.append("%s: expected an integer, got %r" % (path, data))
        return
    if type_name in prim:
        if not isinstance(data, prim[type_name]):
            errors.append("%s: expected %s, got %r" % (path, type_name, data))
        return
    if type_name == "object":  # IntOrString, Quantity, raw
        return
    cls = getattr(client, type_name)
    if not isinstance(data, dict):
        errors.append("%s: expected an object (%s), got %r" % (path, type_name, data))
        return
    by_json = {v: k for k, v in cls.attribute_map.items()}
    for k, v in data.items():
        if k not in by_json:
            errors.append("%s.%s: not a field of %s" % (path, k, type_name))
            continue
        strict_check(v, cls.openapi_types[by_json[k]], "%s.%s" % (path, k), errors)


def deserialize(obj, type_name):
    """The client's own deserializer (required fields, enum checks of the model setters)."""
    from kubernetes import client

    class Response:  # what ApiClient.deserialize reads
        data = json.dumps(obj)

    return client.ApiClient().deserialize(Response(), type_name)


# ---- prometheus-operator CRDs --------------------------------------------------------------
# Field names and types as in the prometheus-operator CRDs (monitoring.coreos.com/v1,
# monitoring.coreos.com_servicemonitors.yaml and _prometheusrules.yaml of operator 0.93.0),
# only the subset this project may use; anything else is reported as unknown.

DURATION = ("re", r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?"
                  r"(([0-9]+)s)?(([0-9]+)ms)?)$")
STR_MAP = ("map", "str")
LABEL_SELECTOR = {
    "matchLabels": STR_MAP,
    "matchExpressions": [{"key": "str", "operator": "str", "values": ["str"],
                          "__required__": ["key", "operator"]}],
}
RELABEL = {
    "sourceLabels": ["str"], "separator": "str", "targetLabel": "str", "regex": "str",
    "modulus": "int", "replacement": "str",
    "action": ("enum", ["replace", "Replace", "keep", "Keep", "drop", "Drop", "hashmod",
                        "HashMod", "labelmap", "LabelMap", "labeldrop", "LabelDrop",
                        "labelkeep", "LabelKeep", "lowercase", "Lowercase", "uppercase",
                        "Uppercase", "keepequal", "KeepEqual", "dropequal", "DropEqual"]),
}
ENDPOINT = {
    "port": "str", "targetPort": "intorstr", "path": "str",
    "scheme": ("enum", ["http", "https", "HTTP", "HTTPS"]),
    "interval": DURATION, "scrapeTimeout": DURATION, "honorLabels": "bool",
    "honorTimestamps": "bool", "relabelings": [RELABEL], "metricRelabelings": [RELABEL],
}
SERVICE_MONITOR_SPEC = {
    "endpoints": [ENDPOINT], "selector": LABEL_SELECTOR,
    "namespaceSelector": {"any": "bool", "matchNames": ["str"]},
    "jobLabel": "str", "targetLabels": ["str"], "podTargetLabels": ["str"],
    "sampleLimit": "int", "attachMetadata": {"node": "bool"},
    "__required__": ["endpoints", "selector"],
}
RULE = {
    "alert": "str", "record": "str", "expr": "intorstr", "for": DURATION,
    "keep_firing_for": DURATION, "labels": STR_MAP, "annotations": STR_MAP,
    "__required__": ["expr"],
}
PROMETHEUS_RULE_SPEC = {
    "groups": [{"name": "str", "interval": DURATION, "limit": "int", "rules": [RULE],
                "__required__": ["name"]}],
}


def schema_check(data, schema, path, errors):
    if isinstance(schema, list):
        if not isinstance(data, list):
            errors.append("%s: expected a list" % path)
            return
        for i, item in enumerate(data):
            schema_check(item, schema[0], "%s[%d]" % (path, i), errors)
    elif isinstance(schema, dict):
        if not isinstance(data, dict):
            errors.append("%s: expected an object" % path)
            return
        for k in schema.get("__required__", []):
            if k not in data:
                errors.append("%s.%s: required" % (path, k))
        for k, v in data.items():
            if k not in schema or k == "__required__":
                errors.append("%s.%s: not a field of the CRD" % (path, k))
            else:
                schema_check(v, schema[k], "%s.%s" % (path, k), errors)
    elif isinstance(schema, tuple) and schema[0] == "map":
        if not isinstance(data, dict):
            errors.append("%s: expected a map" % path)
            return
        for k, v in data.items():
            schema_check(v, schema[1], "%s.%s" % (path, k), errors)
    elif isinstance(schema, tuple) and schema[0] == "enum":
        if data not in schema[1]:
            errors.append("%s: %r is not one of %s" % (path, data, schema[1]))
    elif isinstance(schema, tuple) and schema[0] == "re":
        if not isinstance(data, str) or not re.match(schema[1], data):
            errors.append("%s: %r is not a duration" % (path, data))
    elif schema == "str":
        if not isinstance(data, str):
            errors.append("%s: expected a string, got %r" % (path, data))
    elif schema == "bool":
        if not isinstance(data, bool):
            errors.append("%s: expected a boolean, got %r" % (path, data))
    elif schema == "int":
        if not isinstance(data, int) or isinstance(data, bool):
            errors.append("%s: expected an integer, got %r" % (path, data))
    elif schema == "intorstr":
        if not isinstance(data, (int, str)) or isinstance(data, bool):
            errors.append("%s: expected an integer or a string, got %r" % (path, data))
    else:
        raise AssertionError("bad schema at " + path)


def check_crd(obj):
    errors = []
    kind = obj["kind"]
    for k in obj:
        if k not in ("apiVersion", "kind", "metadata", "spec"):
            errors.append("%s.%s: not a field" % (kind, k))
    strict_check(obj.get("metadata"), "V1ObjectMeta", kind + ".metadata", errors)
    spec = SERVICE_MONITOR_SPEC if kind == "ServiceMonitor" else PROMETHEUS_RULE_SPEC
    if "spec" not in obj:
        errors.append(kind + ".spec: required")
    else:
        schema_check(obj["spec"], spec, kind + ".spec", errors)
    if kind == "PrometheusRule":
        for g in obj.get("spec", {}).get("groups", []):
            for r in g.get("rules", []):
                if ("alert" in r) == ("record" in r):
                    errors.append("PrometheusRule: a rule needs exactly one of alert and record")
    return errors


# ---- helpers on rendered objects -----------------------------------------------------------

def container(ds):
    cs = ds["spec"]["template"]["spec"]["containers"]
    assert len(cs) == 1, "one container per agent pod"
    return cs[0]


def mounts_by_path(ds):
    c = container(ds)
    vols = {v["name"]: v for v in ds["spec"]["template"]["spec"].get("volumes", [])}
    out = {}
    for m in c.get("volumeMounts", []):
        out[m["mountPath"]] = (m, vols[m["name"]])
    return out


def matches(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


class Render(du.unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.rendered = {rel: du.render(rel) for rel in du.kustomizations()}

    def test_every_kustomization_renders_distinct_named_objects(self):
        self.assertIn("base", self.rendered)
        self.assertIn(os.path.join("overlays", "enforce"), self.rendered)
        for rel, objs in self.rendered.items():
            self.assertTrue(objs, rel + " renders nothing")
            seen = set()
            for o in objs:
                key = (o.get("kind"), o.get("metadata", {}).get("namespace"),
                       o.get("metadata", {}).get("name"))
                self.assertTrue(all(key[i] for i in (0, 2)), "%s: %r" % (rel, o)[:200])
                self.assertNotIn(key, seen, rel)
                seen.add(key)

    def test_objects_deserialize_into_typed_models_without_unknown_fields(self):
        for rel, objs in self.rendered.items():
            for o in objs:
                key = (o.get("apiVersion"), o.get("kind"))
                if key in CRD_KINDS:
                    continue
                self.assertIn(key, CORE_KINDS, "%s: unexpected kind %s" % (rel, key))
                errors = []
                strict_check(o, CORE_KINDS[key], "%s:%s" % (rel, key[1]), errors)
                self.assertEqual(errors, [])
                model = deserialize(o, CORE_KINDS[key])
                self.assertEqual(model.metadata.name, o["metadata"]["name"])

    def test_the_strict_check_finds_unknown_and_mistyped_fields(self):
        # The check above must be able to fail: a misspelt field and a wrong type.
        ds = du.objects_of(self.rendered["base"], "DaemonSet")[0]
        bad = json.loads(json.dumps(ds))
        bad["spec"]["template"]["spec"]["hostPid"] = True
        container(bad)["securityContext"]["readOnlyRootFileSystem"] = True
        container(bad)["ports"][0]["containerPort"] = "9862"
        errors = []
        strict_check(bad, "V1DaemonSet", "ds", errors)
        self.assertEqual(len(errors), 3, errors)
        self.assertTrue(any("hostPid: not a field" in e for e in errors), errors)

    def test_servicemonitor_and_prometheusrule_have_only_crd_fields(self):
        found = set()
        for rel, objs in self.rendered.items():
            for o in objs:
                if (o.get("apiVersion"), o.get("kind")) in CRD_KINDS:
                    found.add(o["kind"])
                    self.assertEqual(check_crd(o), [], rel)
        self.assertEqual(found, {"ServiceMonitor", "PrometheusRule"})
        # ...and the check can fail.
        sm = du.objects_of(self.rendered["base"], "ServiceMonitor")[0]
        bad = json.loads(json.dumps(sm))
        bad["spec"]["endpoints"][0]["scrapeInterval"] = "15s"
        bad["spec"]["endpoints"][0]["interval"] = "15 s"
        bad["spec"]["endpoints"][0]["relabelings"][0]["action"] = "rename"
        self.assertEqual(len(check_crd(bad)), 3, check_crd(bad))

    def test_monitoring_daemonset(self):
        objs = self.rendered["base"]
        dss = du.objects_of(objs, "DaemonSet")
        self.assertEqual(len(dss), 1)
        ds = dss[0]
        pod = ds["spec"]["template"]["spec"]
        c = container(ds)
        self.assertTrue(pod.get("hostPID"))
        self.assertFalse(pod.get("hostNetwork", False))
        self.assertFalse(pod.get("automountServiceAccountToken", True))
        # Monitoring: unprivileged, read-only root, every capability dropped, none added.
        sc = c["securityContext"]
        self.assertIs(sc.get("privileged"), False)
        self.assertIs(sc.get("allowPrivilegeEscalation"), False)
        self.assertIs(sc.get("readOnlyRootFilesystem"), True)
        self.assertEqual(sc["capabilities"].get("drop"), ["ALL"])
        self.assertNotIn("add", sc["capabilities"])
        self.assertIn("--dry-run", c["args"])
        self.assertNotIn("--no-dry-run", c["args"])
        self.assertNotIn("--consent", c["args"])
        # Host /proc and /sys read-only under /host; features.d and /var/log/pods hostPaths.
        mp = mounts_by_path(ds)
        for mount_path, host_path, ro in [
                ("/host/proc", "/proc", True), ("/host/sys", "/sys", True),
                ("/var/log/pods", "/var/log/pods", True),
                ("/etc/kubernetes/node-feature-discovery/features.d",
                 "/etc/kubernetes/node-feature-discovery/features.d", False),
                ("/var/lib/grey-gpu-opt", "/var/lib/grey-gpu-opt", False)]:
            self.assertIn(mount_path, mp)
            m, v = mp[mount_path]
            self.assertEqual(v.get("hostPath", {}).get("path"), host_path, mount_path)
            self.assertEqual(bool(m.get("readOnly", False)), ro, mount_path)
        # Metrics port, probes on /healthz and /readyz through it.
        self.assertEqual([(p["name"], p["containerPort"]) for p in c["ports"]], [("metrics", 9862)])
        self.assertTrue(any(a.endswith(":9862") for a in c["args"]
                            if a.startswith("--metrics-listen")), c["args"])
        self.assertEqual(c["livenessProbe"]["httpGet"], {"path": "/healthz", "port": "metrics"})
        self.assertEqual(c["readinessProbe"]["httpGet"], {"path": "/readyz", "port": "metrics"})
        self.assertIn(c["startupProbe"]["httpGet"]["path"], ("/readyz", "/healthz"))
        # Requests and limits, for CPU and memory.
        for part in ("requests", "limits"):
            self.assertEqual(set(c["resources"][part]), {"cpu", "memory"}, part)
        # Tolerations for tainted GPU nodes; a priority class and service account that exist.
        keys = {t.get("key") for t in pod.get("tolerations", []) if t.get("operator") == "Exists"}
        self.assertTrue({"nvidia.com/gpu", "amd.com/gpu"} <= keys, keys)
        pcs = [p["metadata"]["name"] for p in du.objects_of(objs, "PriorityClass")]
        self.assertIn(pod.get("priorityClassName"), pcs)
        sas = [s["metadata"]["name"] for s in du.objects_of(objs, "ServiceAccount")]
        self.assertIn(pod.get("serviceAccountName"), sas)
        # The image is the one deploy/container/Containerfile builds (its ENTRYPOINT).
        self.assertEqual(c["command"], ["/usr/local/bin/grey-gpu-opt"])

    def test_service_and_servicemonitor_reach_every_agent(self):
        for rel in ("base", os.path.join("overlays", "enforce")):
            objs = self.rendered[rel]
            svc = du.objects_of(objs, "Service")[0]
            sm = du.objects_of(objs, "ServiceMonitor")[0]
            ns = {d["metadata"].get("namespace") for d in du.objects_of(objs, "DaemonSet")}
            self.assertEqual(ns, {svc["metadata"]["namespace"]}, rel)
            for ds in du.objects_of(objs, "DaemonSet"):
                labels = ds["spec"]["template"]["metadata"]["labels"]
                self.assertTrue(matches(svc["spec"]["selector"], labels), rel)
                port = container(ds)["ports"][0]
                self.assertTrue(any(p["targetPort"] in (port["name"], port["containerPort"])
                                    for p in svc["spec"]["ports"]), rel)
            self.assertTrue(matches(sm["spec"]["selector"]["matchLabels"], svc["metadata"]["labels"]))
            self.assertIn(svc["metadata"]["namespace"], sm["spec"]["namespaceSelector"]["matchNames"])
            self.assertEqual([e["port"] for e in sm["spec"]["endpoints"]],
                             [p["name"] for p in svc["spec"]["ports"]])
            # The alerts need a `node` target label.
            rl = sm["spec"]["endpoints"][0]["relabelings"]
            self.assertIn({"sourceLabels": ["__meta_kubernetes_pod_node_name"],
                           "targetLabel": "node", "action": "replace"}, rl)

    def test_no_operator_overlay_has_no_crd_objects(self):
        objs = self.rendered[os.path.join("overlays", "no-operator")]
        kinds = sorted(o["kind"] for o in objs)
        self.assertEqual(kinds, ["DaemonSet", "Namespace", "PriorityClass", "Service",
                                 "ServiceAccount"])
        base = {(o["kind"], o["metadata"]["name"]): o for o in self.rendered["base"]}
        for o in objs:
            self.assertEqual(o, base[(o["kind"], o["metadata"]["name"])])

    def test_enforce_overlay_enforces_only_on_granted_nodes(self):
        objs = self.rendered[os.path.join("overlays", "enforce")]
        dss = {d["metadata"]["name"]: d for d in du.objects_of(objs, "DaemonSet")}
        self.assertEqual(set(dss), {"grey-gpu-opt", "grey-gpu-opt-enforce"})
        mon, enf = dss["grey-gpu-opt"], dss["grey-gpu-opt-enforce"]
        # Disjoint selectors: neither controller adopts the other's pods.
        self.assertFalse(matches(mon["spec"]["selector"]["matchLabels"],
                                 enf["spec"]["template"]["metadata"]["labels"]))
        self.assertFalse(matches(enf["spec"]["selector"]["matchLabels"],
                                 mon["spec"]["template"]["metadata"]["labels"]))
        # Exactly one of them per node: NotIn on one, the node selector on the other.
        terms = mon["spec"]["template"]["spec"]["affinity"]["nodeAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
        self.assertIn({"key": "grey-gpu-opt/enforce", "operator": "NotIn", "values": ["true"]},
                      terms[0]["matchExpressions"])
        self.assertEqual(enf["spec"]["template"]["spec"]["nodeSelector"],
                         {"grey-gpu-opt/enforce": "true"})
        self.assertNotIn("affinity", enf["spec"]["template"]["spec"])
        c = container(enf)
        self.assertIn("--no-dry-run", c["args"])
        self.assertIn("--consent", c["args"])
        self.assertNotIn("--dry-run", c["args"])
        sc = c["securityContext"]
        self.assertIs(sc.get("privileged"), False)
        self.assertIs(sc.get("allowPrivilegeEscalation"), False)
        self.assertIs(sc.get("readOnlyRootFilesystem"), True)
        self.assertEqual(sc["capabilities"]["drop"], ["ALL"])
        self.assertEqual(sorted(sc["capabilities"]["add"]),
                         ["DAC_READ_SEARCH", "KILL", "SYS_ADMIN", "SYS_PTRACE"])
        mp = mounts_by_path(enf)
        self.assertTrue(mp["/host/proc"][0].get("readOnly"))
        self.assertFalse(mp["/host/sys"][0].get("readOnly", False))
        self.assertEqual(container(mon)["securityContext"]["capabilities"], {"drop": ["ALL"]})
        # Both run the same image.
        self.assertEqual(c["image"], container(mon)["image"])


if __name__ == "__main__":
    du.main(du.need_yaml() + du.need_kustomize() + du.need_kubernetes())
