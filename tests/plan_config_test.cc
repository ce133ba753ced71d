// config.yaml overrides: the SPEC §7 example, a table of bad configs with their messages,
// merging two files, typo suggestions, and the checks that need the device (via build_plan).
#include <gtest/gtest.h>

#include "plan/config.h"
#include "test_util.h"

namespace grey {
namespace {

const std::string kFile = "/home/u/.grey_optimizer/config.yaml";

TEST(PlanConfig, SpecExampleParses) {
  ConfigResult r = parse_config_text(
      "per_process_vram_cap_mb: 60000\n"
      "gpus:\n"
      "  \"1\": {cooldown_threshold_c: 80, resume_threshold_c: 68}\n"
      "  \"GPU-3f2a7c1e-abcd\": {recommended_batch_size: 64}\n",
      kFile);
  ASSERT_TRUE(r.ok) << r.errors.front();
  ASSERT_EQ(r.overrides.global.size(), 1u);
  EXPECT_EQ(r.overrides.global[0].field, "per_process_vram_cap_mb");
  EXPECT_EQ(std::get<int64_t>(r.overrides.global[0].value), 60000);
  EXPECT_EQ(r.overrides.global[0].line, 1);
  EXPECT_EQ(r.overrides.global[0].file, kFile);
  ASSERT_EQ(r.overrides.per_gpu.size(), 2u);
  const auto& g1 = r.overrides.per_gpu.at("1");
  ASSERT_EQ(g1.size(), 2u);
  EXPECT_EQ(g1[0].field, "cooldown_threshold_c");
  EXPECT_EQ(std::get<int64_t>(g1[1].value), 68);
  EXPECT_EQ(g1[0].line, 3);
  EXPECT_EQ(std::get<int64_t>(r.overrides.per_gpu.at("GPU-3f2a7c1e-abcd")[0].value), 64);
  EXPECT_FALSE(r.overrides.mode);
}

TEST(PlanConfig, EveryFieldWithAGoodValue) {
  ConfigResult r = parse_config_text(
      "mode: aggressive\n"
      "per_process_vram_cap_mb: 1000\n"
      "recommended_batch_size: 65536\n"
      "tensor_chunk_size_mb: 1\n"
      "cooldown_threshold_c: 110\n"
      "resume_threshold_c: 30\n"
      "fair_scheduling_policy: priority_based\n"
      "placement_policy: null\n"
      "preemptive_throttle: false\n"
      "power_limit_w: 250.5\n"
      "max_concurrent_kernels: 128\n"
      "fairness_weight_per_process: 0.5\n"
      "utilization_heatmap_enabled: true\n"
      "gpus:\n"
      "  0:\n"
      "    placement_policy: least_loaded_free_vram\n"
      "    power_limit_w: 300\n",
      kFile);
  ASSERT_TRUE(r.ok) << r.errors.front();
  EXPECT_EQ(r.overrides.mode, PlanMode::kAggressive);
  EXPECT_EQ(r.overrides.global.size(), 12u);
  EXPECT_TRUE(std::holds_alternative<std::monostate>(r.overrides.global[6].value));
  EXPECT_EQ(std::get<double>(r.overrides.global[8].value), 250.5);
  EXPECT_EQ(std::get<bool>(r.overrides.global[11].value), true);
  EXPECT_EQ(r.overrides.per_gpu.at("0").size(), 2u);
}

TEST(PlanConfig, EmptyOrCommentOnlyMeansNoOverrides) {
  for (const char* t : {"", "\n\n", "# nothing here\n", "---\n", "~\n"}) {
    ConfigResult r = parse_config_text(t, kFile);
    EXPECT_TRUE(r.ok) << t;
    EXPECT_TRUE(r.overrides.global.empty());
    EXPECT_TRUE(r.overrides.per_gpu.empty());
  }
}

struct Bad {
  const char* text;
  std::vector<std::string> expect;  // every one must be in the (first) message
};

const Bad kBad[] = {
    {"per_proces_vram_cap_mb: 6000\n",
     {":1:", "unknown key per_proces_vram_cap_mb", "6000", "did you mean per_process_vram_cap_mb?",
      "Allowed keys:"}},
    {"recommended_batch_size: 0\n",
     {":1:", "recommended_batch_size = 0 is not allowed", "an integer from 1 to 65536"}},
    {"recommended_batch_size: 70000\n", {"recommended_batch_size = 70000", "from 1 to 65536"}},
    {"recommended_batch_size: \"64\"\n",
     {"recommended_batch_size = \"64\" (a string) is not allowed", "an integer"}},
    {"recommended_batch_size: 64.0\n", {"64.0 is not allowed", "an integer from 1 to 65536"}},
    {"cooldown_threshold_c: 120\n", {"cooldown_threshold_c = 120", "from 30 to 110"}},
    {"resume_threshold_c: 20\n", {"resume_threshold_c = 20", "from 30 to 110"}},
    {"cooldown_threshold_c: 75\nresume_threshold_c: 80\n",
     {":2:", "resume_threshold_c = 80 is not allowed", "below cooldown_threshold_c = 75",
      "at most 74"}},
    {"fair_scheduling_policy: fifo\n",
     {"fair_scheduling_policy = fifo (a string)", "one of round_robin, priority_based"}},
    {"placement_policy: packed\n", {"placement_policy = packed", "least_loaded_free_vram or null"}},
    {"preemptive_throttle: yes\n", {"preemptive_throttle = yes (a string)", "true or false"}},
    {"utilization_heatmap_enabled: 1\n", {"utilization_heatmap_enabled = 1", "true or false"}},
    {"power_limit_w: -5\n", {"power_limit_w = -5", "a positive number of watts"}},
    {"power_limit_w: fast\n", {"power_limit_w = fast (a string)"}},
    {"max_concurrent_kernels: 0\n", {"max_concurrent_kernels = 0", "from 1 to 128"}},
    {"fairness_weight_per_process: 0\n",
     {"fairness_weight_per_process = 0", "greater than 0 and at most 100"}},
    {"tensor_chunk_size_mb: 0\n", {"tensor_chunk_size_mb = 0", "at least 1"}},
    {"per_process_vram_cap_mb: 1.5\n",
     {"per_process_vram_cap_mb = 1.5", "an integer number of MiB"}},
    {"per_process_vram_cap_mb: [1, 2]\n", {"per_process_vram_cap_mb = a list is not allowed"}},
    {"mode: turbo\n", {"mode = turbo", "safe or aggressive"}},
    {"estimated_reclaimed_mb: 5\n", {"estimated_reclaimed_mb = 5", "measured", "cannot be set"}},
    {"gpus:\n  \"0\": {mode: safe}\n", {"gpus.0.mode", "only be set at the top level"}},
    {"gpus:\n  \"0\": {cooldwn_threshold_c: 80}\n",
     {":2:", "unknown key gpus.0.cooldwn_threshold_c", "did you mean cooldown_threshold_c?"}},
    {"gpus:\n  \"1\": {recommended_batch_size: -1}\n",
     {"gpus.1.recommended_batch_size = -1", "from 1 to 65536"}},
    {"gpus: [1, 2]\n", {"gpus = a list", "a mapping from GPU index"}},
    {"gpus:\n  \"0\": 5\n", {"gpus.0 = 5", "a mapping of plan fields"}},
    {"gpus:\n  \"-1\": {recommended_batch_size: 8}\n", {"gpus.-1 is not a valid GPU index"}},
    {"gpus:\n  \"0\": {gpus: {}}\n", {"cannot be nested"}},
    {"- recommended_batch_size: 8\n",
     {":1:", "the top level is a list", "a mapping of plan field"}},
    {"just text\n", {"the top level is just text"}},
    {"recommended_batch_size: [1,\n  b: c\n", {"invalid YAML at line", "column"}},
    {"recommended_batch_size: 8\n power_limit_w: 2\n",
     {"invalid YAML at line 2, column", "illegal map value"}},
    {"recommended_batch_size: 8\nrecommended_batch_size: 16\n",
     {":2:", "appears twice (lines 1 and 2)"}},
    {"zzzzzz: 1\n", {"unknown key zzzzzz", "Allowed keys: mode, gpus, per_process_vram_cap_mb"}},
};

TEST(PlanConfig, BadConfigsNameFileKeyValueAndWhatIsAllowed) {
  for (const auto& b : kBad) {
    ConfigResult r = parse_config_text(b.text, kFile);
    EXPECT_FALSE(r.ok) << b.text;
    ASSERT_FALSE(r.errors.empty()) << b.text;
    const std::string& m = r.errors.front();
    EXPECT_EQ(m.rfind(kFile, 0), 0u) << m;
    for (const auto& e : b.expect)
      EXPECT_NE(m.find(e), std::string::npos) << "want: " << e << "\ngot:  " << m;
    EXPECT_TRUE(r.overrides.global.empty());
    EXPECT_TRUE(r.overrides.per_gpu.empty());
  }
}

TEST(PlanConfig, FarFetchedKeysGetNoSuggestion) {
  ConfigResult r = parse_config_text("zzzzzz: 1\n", kFile);
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.errors[0].find("did you mean"), std::string::npos) << r.errors[0];
}

TEST(PlanConfig, AllErrorsAreReported) {
  ConfigResult r = parse_config_text("recommended_batch_size: 0\nmode: x\nbogus: 1\n", kFile);
  EXPECT_EQ(r.errors.size(), 3u);
}

TEST(PlanConfig, Levenshtein) {
  EXPECT_EQ(levenshtein("", ""), 0u);
  EXPECT_EQ(levenshtein("kitten", "sitting"), 3u);
  EXPECT_EQ(levenshtein("abc", ""), 3u);
  EXPECT_EQ(nearest_key("recomended_batch_size", config_keys()), "recommended_batch_size");
  EXPECT_EQ(nearest_key("MODE", config_keys()), "mode");
  EXPECT_EQ(nearest_key("power_limit", config_keys()), "power_limit_w");
  EXPECT_EQ(nearest_key("banana", config_keys()), "");
}

TEST(PlanConfig, MergeTopWinsPerSection) {
  ConfigResult a = parse_config_text(
      "mode: safe\nrecommended_batch_size: 8\ntensor_chunk_size_mb: 600\n"
      "gpus: {\"1\": {cooldown_threshold_c: 70}}\n",
      "a.yaml");
  ConfigResult b = parse_config_text(
      "mode: aggressive\nrecommended_batch_size: 16\ngpus: {\"1\": {cooldown_threshold_c: 75}}\n",
      "b.yaml");
  ASSERT_TRUE(a.ok && b.ok);
  PlanOverrides m = a.overrides;
  merge_overrides(m, b.overrides);
  EXPECT_EQ(m.mode, PlanMode::kAggressive);
  EXPECT_EQ(m.mode_file, "b.yaml");
  ASSERT_EQ(m.global.size(), 2u);
  EXPECT_EQ(m.global[0].field, "tensor_chunk_size_mb");
  EXPECT_EQ(m.global[1].file, "b.yaml");
  EXPECT_EQ(std::get<int64_t>(m.global[1].value), 16);
  ASSERT_EQ(m.per_gpu.at("1").size(), 1u);
  EXPECT_EQ(std::get<int64_t>(m.per_gpu.at("1")[0].value), 75);
}

TEST(PlanConfig, LoadConfigFile) {
  test::TempDir d;
  test::write_file(d / "c.yaml", "recommended_batch_size: 0\n");
  ConfigResult r = load_config_file(d / "c.yaml");
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.errors[0].rfind(d / "c.yaml:1:", 0), 0u) << r.errors[0];
  r = load_config_file(d / "nope.yaml");
  ASSERT_FALSE(r.ok);
  EXPECT_NE(r.errors[0].find("nope.yaml: cannot read the config file"), std::string::npos)
      << r.errors[0];
  test::write_file(d / "big.yaml", std::string(2u << 20, '#'));
  r = load_config_file(d / "big.yaml");
  ASSERT_FALSE(r.ok);
  EXPECT_NE(r.errors[0].find("larger than 1 MiB"), std::string::npos);
}

GpuSpec rtx4080s() {
  GpuSpec s;
  s.f.vendor = "nvidia";
  s.f.model = "NVIDIA GeForce RTX 4080 SUPER";
  s.f.vram_total_mb = 16376;
  s.f.power_limit_default_w = 320;
  s.f.power_limit_min_w = 150;
  s.f.power_limit_max_w = 400;
  s.f.thermal.slowdown_c = 90;
  s.detection_sources = {"nvidia-smi", "nvml", "sysfs"};
  return s;
}

TEST(PlanConfig, DeviceChecksThroughThePlanner) {
  struct Case {
    const char* text;
    std::string expect;
  };
  const Case cases[] = {
      {"per_process_vram_cap_mb: 20000\n", "at most 16376 MiB, the VRAM this GPU reports"},
      {"gpus: {\"0\": {power_limit_w: 401}}\n", "from 150 W to 400 W"},
      {"cooldown_threshold_c: 89\n", "at most 88 °C"},
      {"resume_threshold_c: 90\n", "must be below cooldown_threshold_c 83"},
  };
  for (const auto& c : cases) {
    ConfigResult r = parse_config_text(c.text, kFile);
    ASSERT_TRUE(r.ok) << c.text;
    PlanInput in;
    in.specs = {rtx4080s()};
    in.overrides = r.overrides;
    PlanOutcome o = build_plan(in);
    EXPECT_FALSE(o.ok) << c.text;
    ASSERT_FALSE(o.errors.empty());
    EXPECT_NE(o.errors[0].find(c.expect), std::string::npos) << o.errors[0];
  }
  ConfigResult r = parse_config_text("per_process_vram_cap_mb: 16376\npower_limit_w: 400\n", kFile);
  PlanInput in;
  in.specs = {rtx4080s()};
  in.overrides = r.overrides;
  PlanOutcome o = build_plan(in);
  ASSERT_TRUE(o.ok);
  EXPECT_EQ(o.plan.gpus[0].per_process_vram_cap_mb, 16376);
  EXPECT_EQ(o.plan.gpus[0].power_limit_w, 400.0);
}

TEST(PlanConfig, NeverThrowsOnOddInput) {
  for (std::string t :
       {std::string("\0\1\2", 3), std::string("{{{{{{{{{{"), std::string(5000, '['),
        std::string("&a [*a]"), std::string("? [a]\n: b\n"), std::string("gpus: {? [x] : {}}\n"),
        std::string("!!binary x: 1"), std::string("\xff\xfe: 1")}) {
    ConfigResult r = parse_config_text(t, kFile);
    EXPECT_FALSE(r.ok && !r.overrides.global.empty());
  }
}

}  // namespace
}  // namespace grey

namespace grey {
namespace {

TEST(PlanConfig, DaemonSwitchIsAcceptedAndValidated) {
  auto ok = parse_config_text("signal_over_cap: true\n", "c.yaml");
  EXPECT_TRUE(ok.errors.empty());
  auto bad = parse_config_text("signal_over_cap: maybe\n", "c.yaml");
  ASSERT_EQ(bad.errors.size(), 1u);
  EXPECT_NE(bad.errors[0].find("allowed: true or false"), std::string::npos);
  auto nested = parse_config_text("gpus:\n  \"0\": {signal_over_cap: true}\n", "c.yaml");
  ASSERT_EQ(nested.errors.size(), 1u);
  EXPECT_NE(nested.errors[0].find("top level"), std::string::npos);
}

}  // namespace
}  // namespace grey

#include "plan/plan_io.h"
#include "util/strings.h"

namespace grey {
namespace {

bool is_valid_utf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    size_t len = utf8_sequence_length(s, i);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

// Issue 11: a gpus: key of invalid UTF-8 went raw into a note, the YAML writer replaced the
// byte, and the plan read back differed from the plan written.
TEST(PlanConfig, InvalidUtf8KeyBecomesReplacementCharacterAndThePlanRoundTrips) {
  ConfigResult r = parse_config_text("gpus: {\"\xf2\": {}}", "fuzz.yaml");
  ASSERT_TRUE(r.ok);
  PlanInput in;
  GpuSpec a = rtx4080s();
  a.index = 0;
  in.specs = {a};
  in.overrides = r.overrides;
  PlanOutcome o = build_plan(in);
  ASSERT_TRUE(o.ok);
  bool seen = false;
  for (const auto& n : o.plan.notes) {
    EXPECT_TRUE(is_valid_utf8(n)) << n;
    if (n.find("gpus.\xef\xbf\xbd in fuzz.yaml") != std::string::npos) seen = true;
  }
  EXPECT_TRUE(seen);
  std::string e;
  auto back = plan_from_yaml_text(plan_to_yaml(o.plan), &e);
  ASSERT_TRUE(back) << e;
  EXPECT_EQ(*back, o.plan);
  auto back_json = plan_from_json_text(plan_to_json_text(o.plan), &e);
  ASSERT_TRUE(back_json) << e;
  EXPECT_EQ(*back_json, o.plan);
}

TEST(PlanConfig, EveryPlanStringIsValidUtf8WhateverTheInputBytes) {
  // Bytes from a config file name, a config key, a process command and a device field.
  PlanInput in;
  GpuSpec a = rtx4080s();
  a.f.model = std::string("RTX \xc0\xaf");
  a.detection_sources = {"nvml\xff"};
  in.specs = {a};
  in.overrides.global.push_back(
      FieldOverride{"recommended_batch_size", int64_t{64}, "/tmp/c\xfe.yaml", 2});
  in.overrides.per_gpu["GPU-\xe2\x82"].push_back(
      FieldOverride{"recommended_batch_size", int64_t{32}, "x.yaml", 1});
  TelemetryWindow w;
  w.duration_s = 1;
  w.samples.push_back({PlanProcessSample{1, "py\x80", "u", 0, 1000, 0.0},
                       PlanProcessSample{2, "py\x80", "u", 0, 1000, 0.0}});
  in.telemetry = w;
  PlanOutcome o = build_plan(in);
  ASSERT_TRUE(o.ok);
  std::string all;
  for (const auto& n : o.plan.notes) all += n + "\n";
  for (const auto& [k, v] : o.plan.gpus[0].rationale) all += k + v + "\n";
  all += *o.plan.gpus[0].model;
  EXPECT_TRUE(is_valid_utf8(all)) << all;
  EXPECT_NE(all.find("/tmp/c\xef\xbf\xbd.yaml"), std::string::npos) << all;
  EXPECT_NE(all.find("py\xef\xbf\xbd"), std::string::npos) << all;
  std::string e;
  auto back = plan_from_yaml_text(plan_to_yaml(o.plan), &e);
  ASSERT_TRUE(back) << e;
  EXPECT_EQ(*back, o.plan);
}

// ---- validate_plan: a plan file gets the checks a config gets ----

GpuSpec spec0() {
  GpuSpec s = rtx4080s();
  s.index = 0;
  s.f.bus_id = "0000:01:00.0";
  s.f.uuid = "GPU-1";
  return s;
}

Plan planned(PlanMode m) {
  PlanInput in;
  in.specs = {spec0()};
  in.mode = m;
  PlanOutcome o = build_plan(in);
  EXPECT_TRUE(o.ok);
  return o.plan;
}

TEST(PlanConfig, ThePlannersOwnPlansAreValid) {
  for (PlanMode m : {PlanMode::kSafe, PlanMode::kAggressive}) {
    EXPECT_TRUE(validate_plan(planned(m), {spec0()}, "p.yaml").empty());
    EXPECT_TRUE(validate_plan(planned(m), {}, "p.yaml").empty());
  }
  // Odd devices too: tiny VRAM (chunk at its 512 MiB minimum), no range, unknown vendor.
  GpuSpec tiny = spec0(), norange = spec0(), unknown;
  tiny.f.vram_total_mb = 256;
  norange.index = 1;
  norange.f.bus_id = "0000:02:00.0";
  norange.f.uuid = "GPU-2";
  norange.f.power_limit_min_w.reset();
  norange.f.power_limit_max_w.reset();
  unknown.index = 2;
  for (PlanMode m : {PlanMode::kSafe, PlanMode::kAggressive}) {
    PlanInput in;
    in.specs = {tiny, norange, unknown};
    in.mode = m;
    PlanOutcome o = build_plan(in);
    ASSERT_TRUE(o.ok);
    auto errs = validate_plan(o.plan, in.specs, "p.yaml");
    EXPECT_TRUE(errs.empty()) << errs.front();
  }
}

TEST(PlanConfig, ValidatePlanNamesFileKeyRealValueAndAllowedRange) {
  struct Case {
    void (*edit)(GpuPlan&);
    std::string expect;
  };
  const Case cases[] = {
      {[](GpuPlan& g) { g.per_process_vram_cap_mb = -5; },
       "p.yaml: gpus[0].per_process_vram_cap_mb = -5 is not allowed; allowed: 1 to 16376 (MiB)"},
      {[](GpuPlan& g) { g.per_process_vram_cap_mb = INT64_MAX; },
       "per_process_vram_cap_mb = 9223372036854775807 is not allowed; allowed: 1 to 16376"},
      {[](GpuPlan& g) { g.tensor_chunk_size_mb = 0; }, "tensor_chunk_size_mb = 0"},
      {[](GpuPlan& g) { g.recommended_batch_size = 65537; },
       "recommended_batch_size = 65537 is not allowed; allowed: 1 to 65536"},
      {[](GpuPlan& g) { g.cooldown_threshold_c = 500; },
       "cooldown_threshold_c = 500 is not allowed; allowed: 30 to 88 (°C), 2 °C under the 90 °C"},
      {[](GpuPlan& g) { g.resume_threshold_c = 20; }, "resume_threshold_c = 20"},
      {[](GpuPlan& g) { g.resume_threshold_c = g.cooldown_threshold_c; },
       "allowed: below cooldown_threshold_c = 88, so at most 87"},
      {[](GpuPlan& g) { g.power_limit_w = 1e308; },
       "power_limit_w = 1e+308 is not allowed; allowed: from 150 to 400 (W), the range GPU 0 "
       "reports, or null"},
      {[](GpuPlan& g) { g.power_limit_w = 149.5; }, "power_limit_w = 149.5 is not allowed"},
      {[](GpuPlan& g) { g.power_limit_w = -1; }, "power_limit_w = -1 is not allowed"},
      {[](GpuPlan& g) { g.placement_policy = "everywhere"; }, "placement_policy = \"everywhere\""},
      {[](GpuPlan& g) { g.max_concurrent_kernels = 0; }, "max_concurrent_kernels = 0"},
      {[](GpuPlan& g) { g.fairness_weight_per_process = 1e9; },
       "fairness_weight_per_process = 1000000000 is not allowed"},
      {[](GpuPlan& g) { g.dedup_buffer_count = -1; }, "dedup_buffer_count = -1"},
      {[](GpuPlan& g) { g.index = 999; },
       "gpus[0].index = 999 is not allowed; allowed: a GPU of the saved specs (index 0)"},
      {[](GpuPlan& g) { g.index = -1; }, "gpus[0].index = -1 is not allowed; allowed: 0 to"},
  };
  for (const auto& c : cases) {
    Plan p = planned(PlanMode::kAggressive);
    c.edit(p.gpus[0]);
    auto errs = validate_plan(p, {spec0()}, "p.yaml");
    ASSERT_EQ(errs.size(), 1u) << c.expect;
    EXPECT_NE(errs[0].find(c.expect), std::string::npos) << errs[0];
  }
  // Without saved specs the static ranges still hold.
  Plan p = planned(PlanMode::kSafe);
  p.gpus[0].per_process_vram_cap_mb = INT64_MAX;
  p.gpus[0].power_limit_w = 1e308;
  auto errs = validate_plan(p, {}, "p.yaml");
  ASSERT_EQ(errs.size(), 2u);
  EXPECT_NE(errs[0].find("allowed: 1 to 8796093022207 (MiB)"), std::string::npos) << errs[0];
  EXPECT_NE(errs[1].find("power_limit_w = 1e+308 is not allowed; allowed: a positive number of "
                         "watts below 1000000"),
            std::string::npos)
      << errs[1];
  // An index the saved specs give another GPU.
  Plan moved = planned(PlanMode::kSafe);
  GpuSpec other = spec0();
  other.index = 1;
  other.f.bus_id = "0000:02:00.0";
  other.f.uuid = "GPU-2";
  moved.gpus[0].index = 1;
  errs = validate_plan(moved, {spec0(), other}, "p.yaml");
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_NE(errs[0].find("gpus[0].index = 1 is not allowed; allowed: 0, the index the saved specs "
                         "give 0000:01:00.0"),
            std::string::npos)
      << errs[0];
  // Two entries for one GPU.
  Plan twice = planned(PlanMode::kSafe);
  twice.gpus.push_back(twice.gpus[0]);
  errs = validate_plan(twice, {spec0()}, "p.yaml");
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_NE(errs[0].find("gpus[1].index = 0 is not allowed; allowed: one entry per GPU"),
            std::string::npos)
      << errs[0];
}

TEST(PlanConfig, HugeValuesAreShownAsTheyAreNotWrapped) {
  // A config's power limit of 1e308 is refused by the static check with its text; a planner
  // error about a huge double shows its real value.
  ConfigResult r = parse_config_text("power_limit_w: 1e308\n", kFile);
  ASSERT_FALSE(r.ok);
  EXPECT_NE(r.errors[0].find("power_limit_w = 1e308 is not allowed"), std::string::npos);
  PlanInput in;
  in.specs = {spec0()};
  in.overrides.global.push_back(FieldOverride{"power_limit_w", 1e300, "c.yaml", 1});
  PlanOutcome o = build_plan(in);
  ASSERT_FALSE(o.ok);
  EXPECT_NE(o.errors[0].find("power_limit_w = 1e+300 (global)"), std::string::npos) << o.errors[0];
  // A cap above what a byte count can hold is refused even when the VRAM is unknown.
  r = parse_config_text("per_process_vram_cap_mb: 9223372036854775807\n", kFile);
  EXPECT_FALSE(r.ok);
  GpuSpec novram = spec0();
  novram.f.vram_total_mb.reset();
  in.specs = {novram};
  in.overrides.global = {FieldOverride{"per_process_vram_cap_mb", INT64_MAX, "c.yaml", 1}};
  o = build_plan(in);
  ASSERT_FALSE(o.ok);
  EXPECT_NE(o.errors[0].find("at most 8796093022207 MiB"), std::string::npos) << o.errors[0];
}

}  // namespace
}  // namespace grey
