// enforce/env_export.h: the variables a plan exports and the env file's renderings and parser,
// tested as a library (apply, env and run use them; see cli_apply_test for the commands).
#include "enforce/env_export.h"

#include <gtest/gtest.h>

#include <vector>

namespace grey {
namespace {

GpuPlan gpu(int index, std::optional<int64_t> cap, const std::string& bus) {
  GpuPlan p;
  p.index = index;
  p.device_id = bus;
  p.per_process_vram_cap_mb = cap;
  p.recommended_batch_size = 64;
  p.tensor_chunk_size_mb = 1024;
  p.cooldown_threshold_c = 83;
  p.resume_threshold_c = 70;
  return p;
}

GpuSpec spec(const std::string& bus, int64_t vram) {
  GpuSpec s;
  s.f.bus_id = bus;
  s.f.vram_total_mb = vram;
  return s;
}

TEST(EnvExport, GpuEnvironmentCarriesTheCapInEveryFrameworksUnit) {
  auto env = gpu_environment(gpu(0, 7680, "0000:01:00.0"), 10240);
  EXPECT_EQ(env.at("GREY_VRAM_CAP_MB"), "7680");
  EXPECT_EQ(env.at("CUPY_GPU_MEMORY_LIMIT"), std::to_string(int64_t{7680} * 1024 * 1024));
  EXPECT_EQ(env.at("XLA_PYTHON_CLIENT_MEM_FRACTION"), "0.75");
  EXPECT_EQ(env.at("GREY_COOLDOWN_C"), "83");
  EXPECT_EQ(env.at("GREY_RESUME_C"), "70");
  EXPECT_EQ(env.at("GREY_BATCH_SIZE"), "64");
  EXPECT_EQ(env.at("GREY_TENSOR_CHUNK_MB"), "1024");
  EXPECT_EQ(env.at("GREY_SCHEDULING_POLICY"), "round_robin");
  EXPECT_EQ(env.at("XLA_PYTHON_CLIENT_PREALLOCATE"), "false");
  EXPECT_EQ(env.at("TF_FORCE_GPU_ALLOW_GROWTH"), "true");
  // The fraction is rounded down: a framework never gets more than the cap.
  EXPECT_EQ(gpu_environment(gpu(0, 1000, "b"), 3000).at("XLA_PYTHON_CLIENT_MEM_FRACTION"), "0.33");
}

TEST(EnvExport, UnknownVramOrCapLeavesThoseVariablesOut) {
  auto no_total = gpu_environment(gpu(0, 7680, "b"), std::nullopt);
  EXPECT_EQ(no_total.count("XLA_PYTHON_CLIENT_MEM_FRACTION"), 0u);
  EXPECT_EQ(no_total.at("GREY_VRAM_CAP_MB"), "7680");
  EXPECT_EQ(gpu_environment(gpu(0, 7680, "b"), 0).count("XLA_PYTHON_CLIENT_MEM_FRACTION"), 0u);
  auto no_cap = gpu_environment(gpu(0, std::nullopt, "b"), 10240);
  EXPECT_EQ(no_cap.count("GREY_VRAM_CAP_MB"), 0u);
  EXPECT_EQ(no_cap.count("CUPY_GPU_MEMORY_LIMIT"), 0u);
  EXPECT_EQ(no_cap.count("XLA_PYTHON_CLIENT_MEM_FRACTION"), 0u);
  // A cap whose byte count would overflow gets no CuPy limit.
  auto huge = gpu_environment(gpu(0, kMibMax + 1, "b"), std::nullopt);
  EXPECT_EQ(huge.count("CUPY_GPU_MEMORY_LIMIT"), 0u);
}

TEST(EnvExport, PlanEnvironmentIsTheTightestGpuPlusOnePrefixPerGpu) {
  Plan p;
  p.mode = PlanMode::kAggressive;
  p.gpus = {gpu(0, 9000, "0000:01:00.0"), gpu(1, 3000, "0000:02:00.0")};
  std::vector<GpuSpec> specs = {spec("0000:01:00.0", 10000), spec("0000:02:00.0", 4000)};
  auto env = plan_environment(p, specs);
  EXPECT_EQ(env.at("GREY_VRAM_CAP_MB"), "3000");                // GPU 1, the most constrained
  EXPECT_EQ(env.at("XLA_PYTHON_CLIENT_MEM_FRACTION"), "0.75");  // 3000 of GPU 1's 4000
  EXPECT_EQ(env.at("GREY_GPU0_VRAM_CAP_MB"), "9000");
  EXPECT_EQ(env.at("GREY_GPU1_VRAM_CAP_MB"), "3000");
  EXPECT_EQ(env.count("GREY_GPU0_PYTHON_CLIENT_MEM_FRACTION"), 0u);  // only GREY_* is prefixed
  EXPECT_EQ(env.at("GREY_PLAN_MODE"), "aggressive");
  // One GPU: no per-GPU prefixes.
  p.gpus.pop_back();
  EXPECT_EQ(plan_environment(p, specs).count("GREY_GPU0_VRAM_CAP_MB"), 0u);
  EXPECT_TRUE(plan_environment(Plan{}, specs).empty());
}

TEST(EnvExport, RenderedFileParsesBackToTheSameVariables) {
  std::map<std::string, std::string> env = {
      {"A", "it's"}, {"B", "multi\nline"}, {"C", ""}, {"D", "$(x) `y` \\"}};
  EnvFile f = parse_env_file("# grey-gpu-opt apply\n\n" + render_env(env, "sh"), "env");
  ASSERT_TRUE(f.ok) << f.error;
  EXPECT_EQ(f.vars, env);
}

TEST(EnvExport, ParserRefusesWhatApplyNeverWrites) {
  const std::vector<std::string> refused = {"export A=unquoted\n",
                                            "A='x'\n",
                                            "export A='x'\nexport A='y'\n",
                                            "export A='open\n",
                                            "export 1A='x'\n",
                                            "export A='x' ; rm -rf /\n",
                                            std::string("export A='\0'\n", 13)};
  for (const std::string& bad : refused) {
    EnvFile f = parse_env_file(bad, "envfile");
    EXPECT_FALSE(f.ok) << bad;
    EXPECT_TRUE(f.vars.empty()) << bad;
    EXPECT_EQ(f.error.rfind("envfile:", 0), 0u) << f.error;
  }
  EnvFile second_line = parse_env_file("export A='x'\nexport B=y\n", "e");
  EXPECT_EQ(second_line.error.rfind("e:2:", 0), 0u) << second_line.error;
}

}  // namespace
}  // namespace grey
