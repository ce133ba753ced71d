// Plan <-> YAML and JSON: exact round trips, the SPEC §7 field set, and load_plan_file errors.
#include "plan/plan_io.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <set>

#include "test_util.h"

namespace grey {
namespace {

GpuSpec spec(int index, const std::string& vendor, std::optional<int64_t> vram) {
  GpuSpec s;
  s.index = index;
  s.f.vendor = vendor;
  s.f.model = "NVIDIA H100 80GB HBM3";
  s.f.bus_id = "0000:1b:00.0";
  s.f.uuid = "GPU-3f2a7c1e-0000";
  s.f.vram_total_mb = vram;
  s.f.num_sm = 132;
  s.f.power_limit_default_w = 215;  // 90% = 193.5
  s.f.power_limit_min_w = 100;
  s.f.power_limit_max_w = 300;
  s.f.thermal.slowdown_c = 87;
  s.detection_sources = {"nvml", "nvidia-smi", "sysfs", "cuda"};
  return s;
}

Plan build(std::vector<GpuSpec> specs, PlanMode m, std::optional<TelemetryWindow> tel = {},
           PlanOverrides ov = {}) {
  PlanInput in;
  in.specs = std::move(specs);
  in.mode = m;
  in.telemetry = std::move(tel);
  in.overrides = std::move(ov);
  in.generated_at = "2026-11-26T15:00:00Z";
  PlanOutcome o = build_plan(in);
  EXPECT_TRUE(o.ok);
  return o.plan;
}

std::vector<Plan> sample_plans() {
  std::vector<Plan> v;
  v.push_back(build({spec(0, "nvidia", 81559)}, PlanMode::kSafe));
  v.push_back(build({}, PlanMode::kSafe));
  // Multi-GPU, aggressive, measured, overridden, with awkward strings.
  GpuSpec a = spec(0, "nvidia", 81559), b = spec(1, "amd", std::nullopt),
          c = spec(2, "unknown", 2048);
  b.f.model = "null";
  c.f.model = "1.5";
  c.f.uuid = "~";
  a.f.model = "Weird: \"quoted\" name, #hash, {brace} [x] & * ! | > ' % @ ` ü 中文\ttab";
  b.f.bus_id.reset();
  TelemetryWindow w;
  w.duration_s = 12.5;
  for (int t = 0; t < 2; ++t)
    w.samples.push_back({PlanProcessSample{1, "python", "u", 0, 1000, 0.0},
                         PlanProcessSample{2, "python", "u", 0, 1010, 0.0},
                         PlanProcessSample{3, "python", "u", 0, 1020, 3.0}});
  PlanOverrides ov;
  ov.global.push_back(FieldOverride{"fairness_weight_per_process", 0.1, "c.yaml", 1});
  ov.per_gpu["2"].push_back(FieldOverride{"placement_policy", std::monostate{}, "c.yaml", 3});
  v.push_back(build({a, b, c}, PlanMode::kAggressive, w, ov));
  return v;
}

TEST(PlanIo, YamlRoundTripIsExact) {
  for (const Plan& p : sample_plans()) {
    std::string y = plan_to_yaml(p);
    std::string e;
    auto back = plan_from_yaml_text(y, &e);
    ASSERT_TRUE(back) << e << "\n" << y;
    EXPECT_EQ(*back, p) << y;
    EXPECT_EQ(plan_to_yaml(*back), y);
  }
}

TEST(PlanIo, JsonRoundTripIsExact) {
  for (const Plan& p : sample_plans()) {
    std::string j = plan_to_json_text(p);
    std::string e;
    auto back = plan_from_json_text(j, &e);
    ASSERT_TRUE(back) << e << "\n" << j;
    EXPECT_EQ(*back, p) << j;
    EXPECT_EQ(plan_to_json_text(*back), j);
  }
}

TEST(PlanIo, YamlAndJsonAgree) {
  for (const Plan& p : sample_plans()) {
    std::string e;
    auto a = plan_from_yaml_text(plan_to_yaml(p), &e);
    auto b = plan_from_json_text(plan_to_json_text(p), &e);
    ASSERT_TRUE(a && b);
    EXPECT_EQ(*a, *b);
  }
}

TEST(PlanIo, FieldSetAndOrderOfSpec7) {
  Plan p = sample_plans()[0];
  auto j = plan_to_json(p);
  std::vector<std::string> top;
  for (auto it = j.begin(); it != j.end(); ++it) top.push_back(it.key());
  EXPECT_EQ(top,
            (std::vector<std::string>{"schema_version", "mode", "generated_at", "gpu_specs_hash",
                                      "confidence_overall", "notes", "gpus"}));
  std::vector<std::string> gk;
  for (auto it = j["gpus"][0].begin(); it != j["gpus"][0].end(); ++it) gk.push_back(it.key());
  EXPECT_EQ(gk, (std::vector<std::string>{"index",
                                          "device_id",
                                          "uuid",
                                          "model",
                                          "per_process_vram_cap_mb",
                                          "recommended_batch_size",
                                          "tensor_chunk_size_mb",
                                          "cooldown_threshold_c",
                                          "resume_threshold_c",
                                          "fair_scheduling_policy",
                                          "placement_policy",
                                          "preemptive_throttle",
                                          "power_limit_w",
                                          "max_concurrent_kernels",
                                          "fairness_weight_per_process",
                                          "utilization_heatmap_enabled",
                                          "estimated_reclaimed_mb",
                                          "dedup_buffer_count",
                                          "compression_ratio",
                                          "confidence",
                                          "rationale",
                                          "provenance",
                                          "enforcement"}));
  EXPECT_EQ(j["schema_version"], 1);
  EXPECT_EQ(j["mode"], "safe");
  EXPECT_EQ(j["gpus"][0]["per_process_vram_cap_mb"], 61169);
  EXPECT_TRUE(j["gpus"][0]["placement_policy"].is_null());
  EXPECT_TRUE(j["gpus"][0]["power_limit_w"].is_null());
  // Not measured: null, never a made-up 0 / 0 / 1.0 (issue 10).
  for (const char* f : {"estimated_reclaimed_mb", "dedup_buffer_count", "compression_ratio"})
    EXPECT_TRUE(j["gpus"][0][f].is_null()) << f;
  EXPECT_EQ(j["gpus"][0]["rationale"]["compression_ratio"],
            "null: not measured: no process telemetry was given.");
  EXPECT_EQ(j["gpus"][0]["rationale"].begin().key(), "per_process_vram_cap_mb");
}

// Issue 10: not-measured dedup/reclaim fields are null in YAML and JSON and read back as null;
// measured ones read back as numbers.
TEST(PlanIo, UnmeasuredFieldsAreNullAndReadBack) {
  Plan p = sample_plans()[0];
  const GpuPlan& g = p.gpus[0];
  ASSERT_FALSE(g.estimated_reclaimed_mb);
  std::string y = plan_to_yaml(p);
  for (const char* f : {"estimated_reclaimed_mb", "dedup_buffer_count", "compression_ratio"})
    EXPECT_NE(y.find(std::string(f) + ": null"), std::string::npos) << f << "\n" << y;
  std::string e;
  auto back = plan_from_yaml_text(y, &e);
  ASSERT_TRUE(back) << e;
  EXPECT_FALSE(back->gpus[0].dedup_buffer_count);
  EXPECT_FALSE(back->gpus[0].compression_ratio);
  auto jback = plan_from_json_text(plan_to_json_text(p), &e);
  ASSERT_TRUE(jback) << e;
  EXPECT_EQ(*jback, p);
  // The measured plan keeps its numbers.
  Plan m = sample_plans()[2];
  ASSERT_TRUE(m.gpus[0].dedup_buffer_count);
  auto mback = plan_from_yaml_text(plan_to_yaml(m), &e);
  ASSERT_TRUE(mback) << e;
  EXPECT_EQ(mback->gpus[0].dedup_buffer_count, m.gpus[0].dedup_buffer_count);
  EXPECT_EQ(mback->gpus[0].compression_ratio, m.gpus[0].compression_ratio);
}

TEST(PlanIo, NoGpuPlanIsValidYaml) {
  Plan p = sample_plans()[1];
  std::string y = plan_to_yaml(p);
  EXPECT_NE(y.find("gpus: []"), std::string::npos) << y;
  YAML::Node n = YAML::Load(y);
  EXPECT_EQ(n["confidence_overall"].as<double>(), 0.0);
  EXPECT_EQ(n["gpus"].size(), 0u);
  EXPECT_EQ(n["schema_version"].as<int>(), 1);
  EXPECT_GE(n["notes"].size(), 1u);
}

TEST(PlanIo, YamlIsReadableByOtherTools) {
  Plan p = sample_plans()[2];
  YAML::Node n = YAML::Load(plan_to_yaml(p));
  EXPECT_EQ(n["mode"].as<std::string>(), "aggressive");
  EXPECT_EQ(n["gpus"][0]["power_limit_w"].as<double>(), 193.5);
  EXPECT_EQ(n["gpus"][0]["cooldown_threshold_c"].as<int>(), 85);  // 88 clamped to 87-2
  EXPECT_EQ(n["gpus"][1]["model"].as<std::string>(), "null");
  EXPECT_EQ(n["gpus"][1]["device_id"].IsNull(), true);
  EXPECT_EQ(n["gpus"][0]["provenance"]["estimated_reclaimed_mb"].as<std::string>(), "measured");
}

// Strings a device may report (quotes, backslashes, control bytes, non-ASCII, invalid UTF-8)
// come back from the YAML as they went in (invalid bytes as U+FFFD); so do keys that are not
// simple names.
TEST(PlanIo, YamlQuotesEveryStringSafely) {
  const std::string odd =
      "A \"quoted\" \\ name:\n\ttab\x01\x7f # not a comment, {not: a map} - µ°C";
  Plan p = sample_plans()[2];
  p.gpus[0].model = odd;
  p.gpus[0].uuid = std::string("GPU-\xff\xfe-bad");
  p.notes = {odd, "null", "true", "- dash", ""};
  p.gpus[0].rationale["0"] = "key that reads as a number";
  p.gpus[0].rationale["on"] = "key that reads as a boolean";
  p.gpus[0].rationale["two words"] = "key with a space";
  std::string y = plan_to_yaml(p);
  YAML::Node n = YAML::Load(y);
  EXPECT_EQ(n["gpus"][0]["model"].as<std::string>(), odd) << y;
  EXPECT_EQ(n["gpus"][0]["uuid"].as<std::string>(), "GPU-\xef\xbf\xbd\xef\xbf\xbd-bad");
  ASSERT_EQ(n["notes"].size(), 5u);
  EXPECT_EQ(n["notes"][0].as<std::string>(), odd);
  EXPECT_EQ(n["notes"][1].as<std::string>(), "null");
  EXPECT_FALSE(n["notes"][1].IsNull());
  EXPECT_EQ(n["notes"][2].as<std::string>(), "true");
  EXPECT_EQ(n["notes"][3].as<std::string>(), "- dash");
  EXPECT_EQ(n["notes"][4].as<std::string>(), "");
  EXPECT_EQ(n["gpus"][0]["rationale"]["0"].as<std::string>(), "key that reads as a number");
  EXPECT_EQ(n["gpus"][0]["rationale"]["on"].as<std::string>(), "key that reads as a boolean");
  EXPECT_EQ(n["gpus"][0]["rationale"]["two words"].as<std::string>(), "key with a space");
  EXPECT_NE(y.find("\"on\": "), std::string::npos) << y;
  EXPECT_NE(y.find("\\x01"), std::string::npos) << y;
  // And our own loader reads the same plan back.
  std::string e;
  auto back = plan_from_yaml_text(y, &e);
  ASSERT_TRUE(back) << e;
  EXPECT_EQ(back->gpus[0].model, odd);
  EXPECT_EQ(back->notes, p.notes);
}

TEST(PlanIo, LoadPlanFileByName) {
  test::TempDir d;
  Plan p = sample_plans()[2];
  test::write_file(d / "p.yaml", plan_to_yaml(p));
  test::write_file(d / "p.yml", plan_to_yaml(p));
  test::write_file(d / "p.json", plan_to_json_text(p));
  for (const char* f : {"p.yaml", "p.yml", "p.json"}) {
    std::string e;
    auto q = load_plan_file(d / f, &e);
    ASSERT_TRUE(q) << f << ": " << e;
    EXPECT_EQ(*q, p);
  }
  std::string e;
  EXPECT_FALSE(load_plan_file(d / "missing.yaml", &e));
  EXPECT_NE(e.find("missing.yaml"), std::string::npos) << e;
}

TEST(PlanIo, BadPlanFilesSayWhatIsWrong) {
  std::string good = plan_to_json_text(sample_plans()[0]);
  struct Case {
    std::string text;
    bool json;
    std::string expect;
  };
  auto replace = [&](const std::string& from, const std::string& to) {
    std::string s = good;
    s.replace(s.find(from), from.size(), to);
    return s;
  };
  const Case cases[] = {
      {"{", true, "parse error"},
      {"[]", true, "expected a mapping at the top level"},
      {replace("\"schema_version\": 1", "\"schema_version\": 2"), true, "not supported"},
      {replace("\"mode\": \"safe\"", "\"mode\": \"turbo\""), true, "plan.mode"},
      {replace("\"per_process_vram_cap_mb\": 61169", "\"per_process_vram_cap_mb\": \"x\""), true,
       "plan.gpus[0].per_process_vram_cap_mb: expected an integer"},
      {replace("\"cooldown_threshold_c\": 83,", ""), true,
       "plan.gpus[0]: missing key \"cooldown_threshold_c\""},
      {replace("\"per_process_vram_cap_mb\": \"derived\"",
               "\"per_process_vram_cap_mb\": \"guess\""),
       true, "is not one of measured"},
      {replace("\"per_process_vram_cap_mb\": \"advisory env\"",
               "\"per_process_vram_cap_mb\": \"magic\""),
       true, "is not one of advisory env"},
      {"a: [1,\n b: c", false, "invalid YAML at line 2"},
      {"- 1\n- 2\n", false, "expected a mapping at the top level"},
      {"", false, "expected a mapping"},
  };
  for (const auto& c : cases) {
    std::string e;
    auto p = c.json ? plan_from_json_text(c.text, &e) : plan_from_yaml_text(c.text, &e);
    EXPECT_FALSE(p) << c.expect;
    EXPECT_NE(e.find(c.expect), std::string::npos) << "got: " << e;
  }
  test::TempDir d;
  test::write_file(d / "last_plan.yaml", "gpus: {\n");
  std::string e;
  EXPECT_FALSE(load_plan_file(d / "last_plan.yaml", &e));
  EXPECT_NE(e.find(d / "last_plan.yaml"), std::string::npos) << e;
  EXPECT_NE(e.find("grey-gpu-opt plan"), std::string::npos) << e;
}

TEST(PlanIo, AliasBombIsRefused) {
  std::string y = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  char prev = 'a';
  for (char c = 'b'; c <= 'p'; ++c) {
    y += std::string(1, c) + ": &" + c + " [";
    for (int i = 0; i < 10; ++i) y += std::string(i ? ", *" : "*") + prev;
    y += "]\n";
    prev = c;
  }
  std::string e;
  EXPECT_FALSE(plan_from_yaml_text(y, &e));
  EXPECT_NE(e.find("too large"), std::string::npos) << e;
}

TEST(PlanIo, FormatForPath) {
  EXPECT_EQ(plan_format_for_path("a.yaml"), "yaml");
  EXPECT_EQ(plan_format_for_path("a.YML"), "yaml");
  EXPECT_EQ(plan_format_for_path("/x/a.Json"), "json");
  EXPECT_EQ(plan_format_for_path("a.txt"), std::nullopt);
  EXPECT_EQ(plan_format_for_path("yaml"), std::nullopt);
}

// A plan file holding bytes that are not UTF-8 (hand-edited, or written by an older version)
// reads back with U+FFFD in their place, the rule of every plan string: what is read then
// writes and reads back equal.
TEST(PlanIo, InvalidUtf8InAPlanFileBecomesReplacementCharacter) {
  std::string y = plan_to_yaml(sample_plans()[0]);
  size_t at = y.find("notes:\n  - \"");
  ASSERT_NE(at, std::string::npos) << y;
  y.insert(at + 12, "bad \xf2 byte ");
  at = y.find("rationale:\n");
  ASSERT_NE(at, std::string::npos);
  y.insert(at + 11, "      \"k\xff\": \"v\xc0\xaf\"\n");
  std::string e;
  auto p = plan_from_yaml_text(y, &e);
  ASSERT_TRUE(p) << e << y;
  EXPECT_EQ(p->notes[0].rfind("bad \xef\xbf\xbd byte ", 0), 0u) << p->notes[0];
  EXPECT_EQ(p->gpus[0].rationale.at("k\xef\xbf\xbd"), "v\xef\xbf\xbd\xef\xbf\xbd");
  auto again = plan_from_yaml_text(plan_to_yaml(*p), &e);
  ASSERT_TRUE(again) << e;
  EXPECT_EQ(*again, *p);
}

}  // namespace
}  // namespace grey
