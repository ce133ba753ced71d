#!/usr/bin/env python3
"""deploy/prometheus/: `promtool check rules` accepts the rule file and the groups embedded in
the rendered PrometheusRule (which must equal the file's), `promtool test rules` passes, and
every alert has a unit test that sees it fire and one that sees it stay silent.

Run: python3 tests/deploy/prometheus_rules_test.py  (exit 77: skipped, the reason printed)."""

import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deploy_util as du  # noqa: E402


class Rules(du.unittest.TestCase):
    def promtool(self, *args, cwd=None):
        return du.run(["promtool"] + list(args), cwd=cwd)

    def test_promtool_check_rules_on_the_rule_file(self):
        r = self.promtool("check", "rules", du.RULES)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("SUCCESS", r.stdout)

    def test_prometheusrule_embeds_the_rule_file_and_promtool_accepts_it(self):
        import yaml
        want = du.load_yaml(du.RULES)
        for rel in du.kustomizations():
            for pr in du.objects_of(du.render(rel), "PrometheusRule"):
                self.assertEqual(pr["spec"], want,
                                 "%s: PrometheusRule spec differs from %s; copy the groups over"
                                 % (rel, du.RULES))
                with tempfile.NamedTemporaryFile("w", suffix=".yml") as f:
                    yaml.safe_dump(pr["spec"], f)
                    f.flush()
                    r = self.promtool("check", "rules", f.name)
                    self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_promtool_check_rules_can_fail(self):
        # A broken expression is refused: the checks above are not vacuous.
        with tempfile.NamedTemporaryFile("w", suffix=".yml") as f:
            f.write("groups:\n  - name: g\n    rules:\n      - alert: A\n"
                    "        expr: grey_gpu_sample_stale ==\n")
            f.flush()
            self.assertNotEqual(self.promtool("check", "rules", f.name).returncode, 0)

    def test_promtool_test_rules(self):
        r = self.promtool("test", "rules", os.path.basename(du.RULE_TESTS),
                          cwd=os.path.dirname(du.RULE_TESTS))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("SUCCESS", r.stdout)

    def test_every_alert_has_a_firing_and_a_silent_unit_test(self):
        rules = du.load_yaml(du.RULES)
        alerts = [r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r]
        self.assertGreaterEqual(len(alerts), 5)
        tests = du.load_yaml(du.RULE_TESTS)
        self.assertEqual(tests["rule_files"], [os.path.basename(du.RULES)])
        fires, silent = set(), set()
        for t in tests["tests"]:
            for a in t.get("alert_rule_test", []):
                (fires if a.get("exp_alerts") else silent).add(a["alertname"])
        for a in alerts:
            self.assertIn(a, fires, "no unit test sees %s fire" % a)
            self.assertIn(a, silent, "no unit test sees %s stay silent" % a)
        # Every alert has a severity and a summary and description.
        for g in rules["groups"]:
            for r in [r for r in g["rules"] if "alert" in r]:
                self.assertIn(r["labels"].get("severity"), ("warning", "critical"), r["alert"])
                self.assertTrue({"summary", "description"} <= set(r["annotations"]), r["alert"])

    def test_every_recording_rule_has_a_unit_test(self):
        # The fleet recording rules (vendor, node and pod totals): each is the expression of a
        # promql_expr_test with expected samples.
        rules = du.load_yaml(du.RULES)
        records = [r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r]
        self.assertTrue({"vendor:grey_gpus:count", "vendor:grey_gpu_vram_used_bytes:sum",
                         "pod:grey_process_vram_used_bytes:sum"} <= set(records), records)
        tested = {e["expr"] for t in du.load_yaml(du.RULE_TESTS)["tests"]
                  for e in t.get("promql_expr_test", []) if e.get("exp_samples")}
        for r in records:
            self.assertIn(r, tested, "no unit test evaluates the recording rule %s" % r)

    def test_a_wrong_recording_rule_fails_its_unit_test(self):
        # Mutation: per-pod VRAM that keeps processes outside any pod (pod="") must fail.
        import yaml
        rules = du.load_yaml(du.RULES)
        for g in rules["groups"]:
            for r in g["rules"]:
                if r.get("record") == "pod:grey_process_vram_used_bytes:sum":
                    r["expr"] = r["expr"].replace(',pod!=""', "")
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, os.path.basename(du.RULES)), "w") as f:
                yaml.safe_dump(rules, f)
            with open(du.RULE_TESTS) as src, open(os.path.join(d, "t.yml"), "w") as dst:
                dst.write(src.read())
            r = self.promtool("test", "rules", "t.yml", cwd=d)
            self.assertNotEqual(r.returncode, 0, r.stdout)
            self.assertIn("pod:grey_process_vram_used_bytes:sum", r.stdout + r.stderr)

    def test_example_prometheus_configs(self):
        # promtool check config on deploy/prometheus/prometheus-*.yml (each loads the rule
        # file next to it). Debian's Prometheus is built without Kubernetes service discovery:
        # there the kubernetes_sd_configs block is swapped for static_configs so that the
        # rest (the job, its relabelling, the rule file) is still checked.
        import yaml
        d = os.path.dirname(du.RULES)
        for name in ("prometheus-file-sd.yml", "prometheus-kubernetes.yml"):
            conf = du.load_yaml(os.path.join(d, name))
            self.assertEqual(conf["scrape_configs"][0]["job_name"], "grey-gpu-opt", name)
            r = self.promtool("check", "config", name, cwd=d)
            if r.returncode != 0 and "kubernetes_sd_configs not found" in r.stdout + r.stderr:
                print("NOTE %s: this promtool has no Kubernetes service discovery; checked with "
                      "static_configs in its place" % name)
                for job in conf["scrape_configs"]:
                    if job.pop("kubernetes_sd_configs", None) is not None:
                        job["static_configs"] = [{"targets": ["127.0.0.1:9862"]}]
                with tempfile.NamedTemporaryFile("w", suffix=".yml", dir=None) as f:
                    conf["rule_files"] = [os.path.join(d, x) for x in conf["rule_files"]]
                    yaml.safe_dump(conf, f)
                    f.flush()
                    r = self.promtool("check", "config", f.name)
            self.assertEqual(r.returncode, 0, name + "\n" + r.stdout + r.stderr)
            self.assertIn("SUCCESS: 1 rule files found", r.stdout, name)
        # The in-cluster job keeps only the agents' metrics port and sets `node`.
        job = du.load_yaml(os.path.join(d, "prometheus-kubernetes.yml"))["scrape_configs"][0]
        self.assertIn({"source_labels": ["__meta_kubernetes_pod_node_name"],
                       "target_label": "node"}, job["relabel_configs"])

    def test_dashboard_queries_are_valid_promql(self):
        # Each panel query of deploy/grafana/grey-gpu-opt.json (Grafana's $node variable
        # replaced by a regex) as a recording rule: promtool parses every one.
        import json
        import yaml
        with open(du.DASHBOARD) as f:
            dash = json.load(f)
        ids = [p["id"] for p in dash["panels"]]
        self.assertEqual(len(ids), len(set(ids)), "panel ids repeat")
        for p in dash["panels"]:
            self.assertTrue(p.get("targets"), p["title"])
        rules = [{"record": "dashboard:panel%d:%s" % (pid, ref), "expr": expr}
                 for pid, _title, ref, expr in du.dashboard_queries()]
        self.assertFalse([r for r in rules if "$" in r["expr"]], "a dashboard variable is left")
        with tempfile.NamedTemporaryFile("w", suffix=".yml") as f:
            yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, f)
            f.flush()
            r = self.promtool("check", "rules", f.name)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn("%d rules found" % len(rules), r.stdout)

    def test_a_wrong_rule_fails_its_unit_test(self):
        # Mutation: the GPU-disappeared alert without its "daemon is up" guard fires for a
        # node whose daemon is gone; its unit test must catch that.
        import yaml
        rules = du.load_yaml(du.RULES)
        for g in rules["groups"]:
            for r in g["rules"]:
                if r.get("alert") == "GreyGpuDisappeared":
                    r["expr"] = r["expr"].replace('(up{job="grey-gpu-opt"} == 1)',
                                                  'up{job="grey-gpu-opt"}')
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, os.path.basename(du.RULES)), "w") as f:
                yaml.safe_dump(rules, f)
            with open(du.RULE_TESTS) as src, open(os.path.join(d, "t.yml"), "w") as dst:
                dst.write(src.read())
            r = self.promtool("test", "rules", "t.yml", cwd=d)
            self.assertNotEqual(r.returncode, 0, r.stdout)
            self.assertIn("GPU-d", r.stdout + r.stderr)


if __name__ == "__main__":
    du.main(du.need_yaml() + du.need_tool("promtool", "prometheus") +
            du.need_kustomize())
