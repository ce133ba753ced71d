// `plan` end to end through run_plan_command with a temporary state directory (and, in the
// CMake build, through the built binary with GREY_CONFIG_DIR).
#include "cli/plan_cmd.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "detect/spec_store.h"
#include "plan/plan_io.h"
#include "test_util.h"

namespace grey {
namespace {

GpuSpec h100(int index = 0) {
  GpuSpec s;
  s.index = index;
  s.f.vendor = "nvidia";
  s.f.model = "NVIDIA H100 80GB HBM3";
  s.f.bus_id = "0000:00:09.0";
  s.f.uuid = "GPU-00000000-0000-0000-0000-000000000000";
  s.f.vram_total_mb = 81559;
  s.f.power_limit_w = 700;
  s.f.power_limit_default_w = 700;
  s.f.power_limit_min_w = 200;
  s.f.power_limit_max_w = 700;
  s.f.num_sm = 132;
  s.detection_sources = {"nvidia-smi", "nvml", "sysfs", "lspci"};
  s.detection_timestamp = "2026-01-01T00:00:00Z";
  return s;
}

struct CmdRun {
  int rc = -1;
  std::string out, err;
};

struct Fixture {
  test::TempDir dir;
  GlobalOptions g;
  int detect_calls = 0;
  std::vector<GpuSpec> detect_result;
  Fixture() { g.state_dir = dir / "state"; }
  void save(const std::vector<GpuSpec>& specs) { ASSERT_EQ(save_specs(g.state_dir, specs), ""); }
  CmdRun run(PlanCliOptions o, bool with_detector = true) {
    if (with_detector)
      o.detector = [this](const GlobalOptions&, const std::optional<std::string>& replay) {
        EXPECT_FALSE(replay);
        ++detect_calls;
        DetectionResult r;
        r.gpus = detect_result;
        if (r.gpus.empty()) r.notes.push_back("no GPU found");
        return r;
      };
    std::ostringstream out, err;
    CmdRun r;
    r.rc = run_plan_command(g, o, out, err);
    r.out = out.str();
    r.err = err.str();
    return r;
  }
  std::string last_plan() const { return g.state_dir + "/last_plan.yaml"; }
  bool exists(const std::string& p) const {
    struct stat st;
    return ::stat(p.c_str(), &st) == 0;
  }
};

Plan load(const std::string& path) {
  std::string e;
  auto p = load_plan_file(path, &e);
  EXPECT_TRUE(p) << e;
  return p.value_or(Plan{});
}

TEST(PlanCmd, SavedSpecHumanTableAndLastPlan) {
  Fixture f;
  f.save({h100()});
  PlanCliOptions explain;
  explain.explain = true;
  CmdRun r = f.run(explain);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(f.detect_calls, 0);
  EXPECT_NE(r.out.find("Plan: safe mode, 1 GPU"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("GPU 0: NVIDIA H100 80GB HBM3 at 0000:00:09.0"), std::string::npos);
  EXPECT_NE(r.out.find("61169 MiB"), std::string::npos);
  EXPECT_NE(r.out.find("75% of the 81559 MiB this GPU reports"), std::string::npos);
  EXPECT_NE(r.out.find("advisory env"), std::string::npos);
  EXPECT_EQ(r.err.find("warning"), std::string::npos) << r.err;
  ASSERT_TRUE(f.exists(f.last_plan()));
  struct stat st;
  ASSERT_EQ(::stat(f.last_plan().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  Plan p = load(f.last_plan());
  EXPECT_EQ(p.mode, PlanMode::kSafe);
  ASSERT_EQ(p.gpus.size(), 1u);
  EXPECT_EQ(p.gpus[0].per_process_vram_cap_mb, 61169);
  EXPECT_EQ(p.gpu_specs_hash, gpu_specs_hash({h100()}));
  // No process telemetry: the dedup/reclaim fields print as null (not measured), never 0 / 1.0,
  // and come back null from last_plan.yaml.
  EXPECT_NE(r.out.find("null (not measured)"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find(" 0 MiB"), std::string::npos) << r.out;
  EXPECT_FALSE(p.gpus[0].estimated_reclaimed_mb);
  EXPECT_FALSE(p.gpus[0].compression_ratio);
}

TEST(PlanCmd, JsonOutputAggressive) {
  Fixture f;
  f.save({h100()});
  PlanCliOptions o;
  o.mode = "aggressive";
  o.json = true;
  CmdRun r = f.run(o);
  ASSERT_EQ(r.rc, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["mode"], "aggressive");
  EXPECT_EQ(j["gpus"][0]["per_process_vram_cap_mb"], 73403);
  EXPECT_EQ(j["gpus"][0]["power_limit_w"], 630.0);
  EXPECT_EQ(j["gpus"][0]["recommended_batch_size"], 256);
  for (const char* f : {"estimated_reclaimed_mb", "dedup_buffer_count", "compression_ratio"})
    EXPECT_TRUE(j["gpus"][0][f].is_null()) << f;
  EXPECT_EQ(load(f.last_plan()), *plan_from_json_text(r.out, nullptr));
}

TEST(PlanCmd, OutputBySuffix) {
  Fixture f;
  f.save({h100()});
  for (const char* name : {"p.yaml", "p.yml", "p.JSON"}) {
    PlanCliOptions o;
    o.output = f.dir / name;
    CmdRun r = f.run(o);
    ASSERT_EQ(r.rc, 0) << r.err;
    Plan written = load(f.dir / name);
    EXPECT_EQ(written, load(f.last_plan())) << name;
    std::string text = test::read_file(f.dir / name);
    EXPECT_EQ(text[0] == '{', std::string(name) == "p.JSON") << name;
  }
  PlanCliOptions o;
  o.output = f.dir / "p.txt";
  ::unlink(f.last_plan().c_str());
  CmdRun r = f.run(o);
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find(".yaml, .yml or .json"), std::string::npos) << r.err;
  EXPECT_FALSE(f.exists(f.dir / "p.txt"));
  EXPECT_FALSE(f.exists(f.last_plan()));
}

TEST(PlanCmd, BadModeIsUsageError) {
  Fixture f;
  f.save({h100()});
  PlanCliOptions o;
  o.mode = "turbo";
  CmdRun r = f.run(o);
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("--mode must be safe or aggressive"), std::string::npos);
  EXPECT_FALSE(f.exists(f.last_plan()));
}

TEST(PlanCmd, CorruptSavedSpecSuggestsDetect) {
  Fixture f;
  f.save({h100()});
  test::write_file(f.g.state_dir + "/last_gpu_spec.json", "[{\"index\": ", 0600);
  CmdRun r = f.run({});
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("corrupt"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("grey-gpu-opt detect"), std::string::npos) << r.err;
  EXPECT_EQ(f.detect_calls, 0);
  EXPECT_FALSE(f.exists(f.last_plan()));
  // --detect does not read the corrupt file.
  f.detect_result = {h100()};
  PlanCliOptions o;
  o.detect = true;
  r = f.run(o);
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(f.detect_calls, 1);
}

TEST(PlanCmd, NoSavedSpecDetectsFirstAndSaves) {
  Fixture f;
  f.detect_result = {h100(0), h100(1)};
  f.detect_result[1].f.bus_id = "0000:00:0a.0";
  f.detect_result[1].f.uuid = "GPU-1";
  CmdRun r = f.run({});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(f.detect_calls, 1);
  EXPECT_NE(r.err.find("detecting GPUs first"), std::string::npos);
  LoadedSpecs ls = load_specs(f.g.state_dir);
  ASSERT_TRUE(ls.ok) << ls.error;
  EXPECT_EQ(ls.specs.size(), 2u);
  Plan p = load(f.last_plan());
  ASSERT_EQ(p.gpus.size(), 2u);
  EXPECT_EQ(p.gpus[0].placement_policy, "least_loaded_free_vram");
  // The second run uses the saved spec.
  r = f.run({});
  EXPECT_EQ(r.rc, 0);
  EXPECT_EQ(f.detect_calls, 1);
  // --detect detects again.
  PlanCliOptions o;
  o.detect = true;
  r = f.run(o);
  EXPECT_EQ(f.detect_calls, 2);
}

TEST(PlanCmd, NoSavedSpecAndNoDetector) {
  Fixture f;
  CmdRun r = f.run({}, false);
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("run `grey-gpu-opt detect` first"), std::string::npos) << r.err;
}

TEST(PlanCmd, NoGpuIsAValidEmptyPlanWithAWarning) {
  Fixture f;
  PlanCliOptions o;
  o.json = true;
  CmdRun r = f.run(o);
  ASSERT_EQ(r.rc, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_TRUE(j["gpus"].is_array());
  EXPECT_TRUE(j["gpus"].empty());
  EXPECT_EQ(j["confidence_overall"], 0.0);
  EXPECT_NE(r.err.find("warning: the plan's confidence is 0.0"), std::string::npos) << r.err;
  EXPECT_NE(test::read_file(f.last_plan()).find("gpus: []"), std::string::npos);
}

TEST(PlanCmd, LowConfidenceWarns) {
  Fixture f;
  GpuSpec s = h100();
  s.detection_sources = {"lspci"};
  s.f.vram_total_mb.reset();
  f.save({s});
  PlanCliOptions explain;
  explain.explain = true;
  CmdRun r = f.run(explain);
  ASSERT_EQ(r.rc, 0);
  EXPECT_NE(r.err.find("below 0.5"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("Unknown: no source reported"), std::string::npos);
}

TEST(PlanCmd, StateConfigThenCliConfigOnTop) {
  Fixture f;
  f.save({h100()});
  test::write_file(f.g.state_dir + "/config.yaml",
                   "mode: aggressive\nrecommended_batch_size: 64\ntensor_chunk_size_mb: 4096\n",
                   0600);
  test::write_file(f.dir / "extra.yaml", "recommended_batch_size: 96\n");
  PlanCliOptions o;
  o.config_file = f.dir / "extra.yaml";
  o.json = true;
  CmdRun r = f.run(o);
  ASSERT_EQ(r.rc, 0) << r.err;
  Plan p = *plan_from_json_text(r.out, nullptr);
  EXPECT_EQ(p.mode, PlanMode::kAggressive);
  EXPECT_EQ(p.gpus[0].recommended_batch_size, 96);
  EXPECT_EQ(p.gpus[0].tensor_chunk_size_mb, 4096);
  EXPECT_EQ(p.gpus[0].provenance.at("recommended_batch_size"), "config");
  EXPECT_EQ(p.gpus[0].confidence.at("tensor_chunk_size_mb"), 1.0);
  EXPECT_NE(p.gpus[0].rationale.at("recommended_batch_size").find("extra.yaml:1"),
            std::string::npos);
  bool mode_note = false;
  for (const auto& n : p.notes)
    mode_note |= n.find("mode aggressive is set in") != std::string::npos;
  EXPECT_TRUE(mode_note);
  // --mode wins over the config's mode.
  o.mode = "safe";
  r = f.run(o);
  ASSERT_EQ(r.rc, 0);
  EXPECT_EQ(plan_from_json_text(r.out, nullptr)->mode, PlanMode::kSafe);
}

TEST(PlanCmd, BadConfigWritesNothing) {
  Fixture f;
  f.save({h100()});
  struct Case {
    std::string state_cfg, cli_cfg;
    std::vector<std::string> expect;
  };
  const Case cases[] = {
      {"recomended_batch_size: 8\n",
       "",
       {"config.yaml:1", "recomended_batch_size", "did you mean recommended_batch_size?",
        "nothing was written"}},
      {"",
       "cooldown_threshold_c: 200\n",
       {"extra.yaml:1", "cooldown_threshold_c = 200", "from 30 to 110"}},
      {"",
       "per_process_vram_cap_mb: 90000\n",
       {"extra.yaml:1", "at most 81559 MiB", "nothing was written"}},
      {"", "power_limit_w: 800\n", {"power_limit_w = 800", "from 200 W to 700 W"}},
      {"gpus: {\"0\": {resume_threshold_c: 85}}\n", "", {"must be below cooldown_threshold_c"}},
      {"a: [\n", "", {"config.yaml: invalid YAML at line"}},
  };
  for (const auto& c : cases) {
    ::unlink((f.g.state_dir + "/config.yaml").c_str());
    ::unlink(f.last_plan().c_str());
    if (!c.state_cfg.empty()) test::write_file(f.g.state_dir + "/config.yaml", c.state_cfg, 0600);
    PlanCliOptions o;
    if (!c.cli_cfg.empty()) {
      test::write_file(f.dir / "extra.yaml", c.cli_cfg);
      o.config_file = f.dir / "extra.yaml";
    }
    o.output = f.dir / "out.json";
    CmdRun r = f.run(o);
    EXPECT_EQ(r.rc, 2) << c.state_cfg << c.cli_cfg;
    for (const auto& e : c.expect)
      EXPECT_NE(r.err.find(e), std::string::npos) << e << "\n" << r.err;
    EXPECT_TRUE(r.out.empty());
    EXPECT_FALSE(f.exists(f.last_plan()));
    EXPECT_FALSE(f.exists(f.dir / "out.json"));
  }
  ::unlink((f.g.state_dir + "/config.yaml").c_str());
  PlanCliOptions o;
  o.config_file = f.dir / "missing.yaml";
  CmdRun r = f.run(o);
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("missing.yaml: cannot read the config file"), std::string::npos) << r.err;
}

TEST(PlanCmd, UnwritableOutputFails) {
  Fixture f;
  f.save({h100()});
  PlanCliOptions o;
  o.output = f.dir / "no/such/dir/p.yaml";
  CmdRun r = f.run(o);
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("cannot write"), std::string::npos) << r.err;
}

#ifdef GREY_BINARY
// The built binary: `plan --json` with GREY_CONFIG_DIR, then a bad config (exit 2).
CmdRun run_binary(const std::string& state, const std::string& args) {
  std::string cmd =
      "GREY_CONFIG_DIR='" + state + "' '" GREY_BINARY "' " + args + " 2>'" + state + "/stderr.txt'";
  CmdRun r;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int st = ::pclose(p);
  r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  r.err = test::read_file(state + "/stderr.txt");
  return r;
}

TEST(PlanBinary, EndToEnd) {
  test::TempDir d;
  std::string state = d / "state";
  ASSERT_EQ(save_specs(state, {h100()}), "");
  CmdRun r = run_binary(state, "plan --mode aggressive --json");
  ASSERT_EQ(r.rc, 0) << r.err;
  auto p = plan_from_json_text(r.out, nullptr);
  ASSERT_TRUE(p) << r.out;
  EXPECT_EQ(p->gpus.at(0).per_process_vram_cap_mb, 73403);
  EXPECT_EQ(load(state + "/last_plan.yaml"), *p);
  r = run_binary(state, "plan --output '" + (d / "p.yaml") + "'");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(load(d / "p.yaml").mode, PlanMode::kSafe);
  test::write_file(d / "bad.yaml", "recommended_batch_size: 0\n");
  r = run_binary(state, "plan --config '" + (d / "bad.yaml") + "'");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("recommended_batch_size = 0"), std::string::npos) << r.err;
}
#endif

// Without --explain: one summary row per group of identical GPUs, no rationale; with it, every
// field's rationale once per group.
TEST(PlanCmd, SummaryRowPerGroupAndRationaleOnlyWithExplain) {
  Fixture f;
  std::vector<GpuSpec> eight;
  for (int i = 0; i < 8; ++i) {
    GpuSpec s = h100(i);
    s.f.bus_id = "0000:0" + std::to_string(i) + ":00.0";
    s.f.uuid = "GPU-" + std::to_string(i);
    eight.push_back(s);
  }
  f.save(eight);
  CmdRun r = f.run({});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out.find("75% of the 81559 MiB this GPU reports"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("fair_scheduling_policy"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--explain"), std::string::npos) << r.out;
  size_t lines = std::count(r.out.begin(), r.out.end(), '\n');
  EXPECT_LE(lines, 12u) << r.out;
  // The one row: indices 0-7, the cap, batch, chunk, temperatures, enforcement, confidence.
  std::istringstream in(r.out);
  std::string line, row;
  while (std::getline(in, line))
    if (line.rfind("0-7 ", 0) == 0) row = line;
  ASSERT_FALSE(row.empty()) << r.out;
  EXPECT_NE(row.find("NVIDIA H100 80GB HBM3"), std::string::npos) << row;
  EXPECT_NE(row.find("61169 MiB"), std::string::npos) << row;
  EXPECT_NE(row.find("°C"), std::string::npos) << row;

  PlanCliOptions explain;
  explain.explain = true;
  CmdRun e = f.run(explain);
  ASSERT_EQ(e.rc, 0) << e.err;
  EXPECT_NE(e.out.find("GPUs 0-7 (8 identical): NVIDIA H100 80GB HBM3"), std::string::npos)
      << e.out;
  EXPECT_NE(e.out.find("75% of the 81559 MiB this GPU reports"), std::string::npos) << e.out;
  for (const char* field : kPlanFields) EXPECT_NE(e.out.find(field), std::string::npos) << field;

  // A GPU that differs gets its own row.
  eight[3].f.vram_total_mb = 40960;
  f.save(eight);
  CmdRun m = f.run({});
  ASSERT_EQ(m.rc, 0) << m.err;
  EXPECT_NE(m.out.find("\n0-2,4-7 "), std::string::npos) << m.out;
  EXPECT_NE(m.out.find("\n3 "), std::string::npos) << m.out;
}

}  // namespace
}  // namespace grey
