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
