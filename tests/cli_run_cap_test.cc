// `run --enforce-cap` end to end through the built binary: the fake NVML gives the spec and the
// plan (GPU 0: 81559 MiB, safe cap 75% = 61169 MiB), the fake CUDA driver (shim-tests/lib/
// libcuda.so.1, same 81559 MiB device 0) runs under the real libgrey_cap.so from the build
// tree, and the plan/apply/run reports name the mechanism that backs the cap.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "cli/apply_cmd.h"
#include "cli/detect_cmd.h"
#include "test_util.h"
#include "util/runner.h"

namespace grey {
namespace {

using json = nlohmann::json;
using test::TempDir;
using test::write_file;
namespace fs = std::filesystem;

const std::string kShimTests = GREY_SHIM_TEST_DIR;
constexpr long long kCapMiB = 61169;  // 75% of 81559 MiB, rounded down

struct Cli {
  TempDir tmp;
  std::string state = tmp / "state";
  std::string sys = tmp / "sys";
  std::map<std::string, std::string> env;
  Cli() {
    fs::create_directories(sys + "/class/drm");
    fs::create_directories(tmp / "proc");
    env = {{"PATH", "/usr/bin:/bin"},
           {"GREY_CONFIG_DIR", state},
           {"GREY_SYSFS_ROOT", sys},
           {"GREY_PROC_ROOT", tmp / "proc"},
           {"GREY_NVML_LIBRARY", std::string(GREY_FAKE_LIB_DIR) + "/fake_nvml.so"},
           {"FAKE_NVML_RECORD", tmp / "nvml-record.txt"},
           {"GREY_CUDA_LIBRARY", "/nonexistent/libcuda.so.1"},
           {"GREY_OPENCL_LIBRARY", "/nonexistent/libOpenCL.so.1"},
           {"CUDA_MPS_PIPE_DIRECTORY", tmp / "mps"},
           {"LD_LIBRARY_PATH", kShimTests + "/lib"}};
  }
  CommandResult run(const std::vector<std::string>& args) { return test::run_grey(args, env); }
  void applied() {
    ASSERT_EQ(run({"detect", "--timeout", "3"}).exit_code, 0);
    auto p = run({"plan"});
    ASSERT_EQ(p.exit_code, 0) << p.err;
    auto a = run({"apply", "--no-dry-run"});
    ASSERT_EQ(a.exit_code, 0) << a.out << a.err;
  }
};

std::string cap_tier_of(const json& plan, int gpu) {
  for (const auto& g : plan["gpus"])
    if (g["index"] == gpu) return g["enforcement"]["per_process_vram_cap_mb"].get<std::string>();
  return "?";
}

TEST(CliRunCap, PlanAndApplyNameTheShimWhenItIsInstalled) {
  Cli c;
  c.applied();
  auto p = c.run({"plan", "--json"});
  ASSERT_EQ(p.exit_code, 0) << p.err;
  json j = json::parse(p.out);
  EXPECT_EQ(cap_tier_of(j, 0), "shim") << p.out;
  std::string why = j["gpus"][0]["rationale"]["per_process_vram_cap_mb"];
  EXPECT_NE(why.find("run --enforce-cap"), std::string::npos) << why;
  EXPECT_NE(why.find("libgrey_cap.so at /"), std::string::npos) << why;
  auto a = c.run({"apply"});
  EXPECT_NE(a.out.find("enforced by: shim for programs started with `grey-gpu-opt run "
                       "--enforce-cap`"),
            std::string::npos)
      << a.out;

  // Without the shim the cap is advisory, and saying otherwise would be a lie.
  c.env["GREY_CAP_SHIM"] = c.tmp / "nowhere/libgrey_cap.so";
  j = json::parse(c.run({"plan", "--json"}).out);
  EXPECT_EQ(cap_tier_of(j, 0), "advisory env");
  a = c.run({"apply"});
  EXPECT_NE(a.out.find("enforced by: advisory env"), std::string::npos) << a.out;
}

TEST(CliRunCap, TheChildRunsUnderTheShimWithThePlansCap) {
  Cli c;
  c.applied();
  auto r = c.run({"run", "--gpu", "0", "--enforce-cap", "--", "/usr/bin/env"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("GREY_VRAM_CAP_MB=" + std::to_string(kCapMiB) + "\n"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("LD_PRELOAD=/"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("libgrey_cap.so\n"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("CUDA_MPS_PINNED_DEVICE_MEM_LIMIT"), std::string::npos);
  EXPECT_NE(r.err.find("run: per-process VRAM cap " + std::to_string(kCapMiB) +
                       " MiB on GPU 0 enforced by: shim ("),
            std::string::npos)
      << r.err;

  // A CUDA program: the driver reports the capped total, and allocating past it fails.
  r = c.run({"run", "--gpu", "0", "--enforce-cap", "--", kShimTests + "/shim_direct", "dev", "0",
             "info", "alloc", "60000", "alloc", "2000", "alloc", "1000", "used", "0"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const unsigned long long cap_bytes = static_cast<unsigned long long>(kCapMiB) << 20;
  EXPECT_NE(r.out.find("total=" + std::to_string(cap_bytes) + "\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("alloc rc=0 slot=0\nalloc rc=2 slot=-1\nalloc rc=0 slot=1\n"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("used bytes=" + std::to_string(61000ULL << 20) + "\n"), std::string::npos)
      << r.out;

  // The same program without --enforce-cap sees the whole device.
  r = c.run({"run", "--gpu", "0", "--", kShimTests + "/shim_direct", "dev", "0", "info", "alloc",
             "62000"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("total=" + std::to_string(81559ULL << 20) + "\n"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("alloc rc=0 slot=0\n"), std::string::npos) << r.out;
}

TEST(CliRunCap, MpsAndDmemAreFoundAndReported) {
  Cli c;
  c.applied();
  write_file(c.tmp / "mps/control", "");
  fs::create_directories(c.sys + "/fs/cgroup");
  write_file(c.sys + "/fs/cgroup/cgroup.controllers", "cpuset cpu io memory dmem pids\n");
  write_file(c.sys + "/fs/cgroup/dmem.capacity", "nvidia/0000:1b:00.0/vidmem 85520809984\n");
  auto r = c.run({"run", "--gpu", "0", "--enforce-cap", "--", "/usr/bin/env"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("CUDA_MPS_PINNED_DEVICE_MEM_LIMIT=0=" + std::to_string(kCapMiB) + "M\n"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.err.find("enforced by: mps (CUDA_MPS_PINNED_DEVICE_MEM_LIMIT"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("+ shim ("), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("dmem controller is available (1 region(s)"), std::string::npos) << r.err;
  json j = json::parse(c.run({"plan", "--json"}).out);
  EXPECT_EQ(cap_tier_of(j, 0), "mps");

  // An MPS control daemon found only as a process (its pipe elsewhere): programs started from
  // here would not be its clients, so it is reported but does not back the cap.
  fs::remove(c.tmp / "mps/control");
  write_file(c.tmp / "proc/4242/comm", "nvidia-cuda-mps\n");
  r = c.run({"run", "--gpu", "0", "--enforce-cap", "--", "/usr/bin/env"});
  EXPECT_NE(r.err.find("enforced by: shim ("), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("an MPS control daemon runs (process 4242, nvidia-cuda-mps)"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.out.find("CUDA_MPS_PINNED_DEVICE_MEM_LIMIT"), std::string::npos) << r.out;
}

std::map<std::string, std::string> g_exec_env;
std::vector<std::string> g_exec_argv;
int record_exec(const std::vector<std::string>& argv,
                const std::map<std::string, std::string>& env) {
  g_exec_argv = argv;
  g_exec_env = env;
  return 0;
}

// Whatever this process has in LD_PRELOAD stays first (a sanitizer runtime must), the shim goes
// after it. In this process, with the exec recorded: a grey-gpu-opt started with another
// library preloaded would itself refuse to run under ASan.
TEST(CliRunCap, TheShimGoesAfterWhatIsPreloadedAlready) {
  Cli c;
  c.applied();
  GlobalOptions g;
  g.state_dir = c.state;
  g.sysfs_root = c.sys;
  g.procfs_root = c.tmp / "proc";
  RunCliOptions o;
  o.gpu = "0";
  o.enforce_cap = true;
  o.command = {"/usr/bin/env"};
  const std::string shim = kShimTests + "/../shim/libgrey_cap.so";
  ::setenv("GREY_CAP_SHIM", shim.c_str(), 1);
  const char* before = std::getenv("LD_PRELOAD");
  const std::string saved = before ? before : "";
  const bool had = before != nullptr;
  ::setenv("LD_PRELOAD", "/opt/first.so", 1);
  std::ostringstream err;
  int rc = run_run_command(g, o, err, record_exec);
  if (had)
    ::setenv("LD_PRELOAD", saved.c_str(), 1);
  else
    ::unsetenv("LD_PRELOAD");
  ::unsetenv("GREY_CAP_SHIM");
  ASSERT_EQ(rc, 0) << err.str();
  EXPECT_EQ(g_exec_argv, o.command);
  EXPECT_EQ(g_exec_env["LD_PRELOAD"], "/opt/first.so:" + shim);
  EXPECT_EQ(g_exec_env["GREY_VRAM_CAP_MB"], std::to_string(kCapMiB));

  // A path LD_PRELOAD cannot hold (it splits on spaces and colons) is refused.
  fs::create_directories(c.tmp / "a dir");
  fs::copy_file(shim, c.tmp / "a dir/libgrey_cap.so");
  ::setenv("GREY_CAP_SHIM", (c.tmp / "a dir/libgrey_cap.so").c_str(), 1);
  std::ostringstream err2;
  EXPECT_EQ(run_run_command(g, o, err2, record_exec), 1);
  ::unsetenv("GREY_CAP_SHIM");
  EXPECT_NE(err2.str().find("contains a space or a colon"), std::string::npos) << err2.str();
}

TEST(CliRunCap, ClearErrorsWhenTheCapCannotBeEnforced) {
  Cli c;
  c.applied();
  c.env["GREY_CAP_SHIM"] = c.tmp / "nowhere/libgrey_cap.so";
  auto r = c.run({"run", "--gpu", "0", "--enforce-cap", "--", "/usr/bin/env"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("libgrey_cap.so not found (looked at " + c.tmp / "nowhere/libgrey_cap.so"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.out, "");  // nothing ran

  // An AMD card: the shim is for CUDA programs.
  Cli amd;
  amd.env["GREY_NVML_LIBRARY"] = "/nonexistent/libnvidia-ml.so.1";
  fs::copy(test::fixture_path("sysfs/amd-radeon-rx-vega56-lact/card0"),
           amd.sys + "/class/drm/card0", fs::copy_options::recursive);
  amd.applied();
  r = amd.run({"run", "--enforce-cap", "--", "/usr/bin/env"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("is amd; libgrey_cap.so caps CUDA programs (NVIDIA) only"),
            std::string::npos)
      << r.err;
  json j = json::parse(amd.run({"plan", "--json"}).out);
  EXPECT_EQ(cap_tier_of(j, 0), "advisory env");
}

}  // namespace
}  // namespace grey
