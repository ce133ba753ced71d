// The install layout (SPEC §10, cmake/GreyInstall.cmake): PREFIX/bin/grey-gpu-opt finds
// PREFIX/lib/grey-gpu-opt/libgrey_cap.so relative to its own location, with no GREY_CAP_SHIM;
// and the example config that `cmake --install` and the .deb ship (deploy/config.example.yaml)
// is one that `plan --config` accepts.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "enforce/cap_mechanisms.h"
#include "plan/config.h"
#include "plan/plan_io.h"
#include "test_util.h"

namespace grey {
namespace {

namespace fs = std::filesystem;
using test::TempDir;
using test::write_file;

const std::string kBinary = GREY_BINARY;
// The build tree's shim, beside the binary (shim/CMakeLists.txt).
const std::string kBuiltShim = fs::path(kBinary).parent_path() / "shim/libgrey_cap.so";
const std::string kExample = std::string(GREY_TEST_SOURCE_DIR) + "/../deploy/config.example.yaml";

// GREY_CAP_SHIM unset for one test, restored after.
struct NoShimEnv {
  std::string saved;
  bool had = false;
  NoShimEnv() {
    if (const char* v = std::getenv("GREY_CAP_SHIM")) {
      had = true;
      saved = v;
    }
    ::unsetenv("GREY_CAP_SHIM");
  }
  ~NoShimEnv() {
    if (had) ::setenv("GREY_CAP_SHIM", saved.c_str(), 1);
  }
};

TEST(InstallLayout, TheShimIsFoundInLibGreyGpuOptBesideTheBinsDirectory) {
  NoShimEnv no_env;
  TempDir t;
  fs::create_directories(t / "usr/bin");
  fs::create_directories(t / "usr/lib/grey-gpu-opt");
  write_file(t / "usr/bin/grey-gpu-opt", "", 0755);
  write_file(t / "usr/lib/grey-gpu-opt/libgrey_cap.so", "", 0644);
  std::vector<std::string> searched;
  std::string found = find_cap_shim(t / "usr/bin/grey-gpu-opt", &searched);
  EXPECT_EQ(found, fs::canonical(t / "usr/lib/grey-gpu-opt/libgrey_cap.so").string());
  ASSERT_FALSE(searched.empty());
  EXPECT_EQ(searched.back(), t / "usr/bin/../lib/grey-gpu-opt/libgrey_cap.so");

  // One beside the binary still comes first (a bundle: scripts/gpu-bundle.sh).
  write_file(t / "usr/bin/libgrey_cap.so", "", 0644);
  EXPECT_EQ(find_cap_shim(t / "usr/bin/grey-gpu-opt", nullptr),
            fs::canonical(t / "usr/bin/libgrey_cap.so").string());
}

TEST(InstallLayout, NotFoundListsTheInstallDirectory) {
  NoShimEnv no_env;
  TempDir t;
  fs::create_directories(t / "opt/bin");
  std::vector<std::string> searched;
  EXPECT_EQ(find_cap_shim(t / "opt/bin/grey-gpu-opt", &searched), "");
  EXPECT_NE(
      std::find(searched.begin(), searched.end(), t / "opt/bin/../lib/grey-gpu-opt/libgrey_cap.so"),
      searched.end());
}

// The built binary and shim copied into an installed layout under a prefix: `run --enforce-cap`
// preloads PREFIX/lib/grey-gpu-opt/libgrey_cap.so, found from the binary's own location.
TEST(InstallLayout, AnInstalledBinaryRunsItsChildUnderTheInstalledShim) {
  ASSERT_TRUE(fs::exists(kBuiltShim)) << kBuiltShim;
  TempDir t;
  const std::string prefix = t / "prefix";
  fs::create_directories(prefix + "/bin");
  fs::create_directories(prefix + "/lib/grey-gpu-opt");
  fs::copy_file(kBinary, prefix + "/bin/grey-gpu-opt");
  fs::copy_file(kBuiltShim, prefix + "/lib/grey-gpu-opt/libgrey_cap.so");
  fs::create_directories(t / "sys/class/drm");
  fs::create_directories(t / "proc");
  const std::map<std::string, std::string> env = {
      {"PATH", "/usr/bin:/bin"},
      {"GREY_CONFIG_DIR", t / "state"},
      {"GREY_SYSFS_ROOT", t / "sys"},
      {"GREY_PROC_ROOT", t / "proc"},
      {"GREY_NVML_LIBRARY", std::string(GREY_FAKE_LIB_DIR) + "/fake_nvml.so"},
      {"GREY_CUDA_LIBRARY", "/nonexistent/libcuda.so.1"},
      {"GREY_OPENCL_LIBRARY", "/nonexistent/libOpenCL.so.1"},
      {"CUDA_MPS_PIPE_DIRECTORY", t / "mps"},
      {"GREY_CAP_SHIM", ""}};
  auto run = [&](const std::vector<std::string>& args) {
    std::vector<std::string> argv{prefix + "/bin/grey-gpu-opt"};
    argv.insert(argv.end(), args.begin(), args.end());
    RunOptions o;
    o.timeout = std::chrono::seconds(60);
    o.extra_env = env;
    PosixRunner r;
    return r.run(argv, o);
  };
  ASSERT_EQ(run({"detect", "--timeout", "3"}).exit_code, 0);
  auto p = run({"plan"});
  ASSERT_EQ(p.exit_code, 0) << p.err;
  auto a = run({"apply", "--no-dry-run"});
  ASSERT_EQ(a.exit_code, 0) << a.out << a.err;
  auto r = run({"run", "--gpu", "0", "--enforce-cap", "--", "/usr/bin/env"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string installed = fs::canonical(prefix + "/lib/grey-gpu-opt/libgrey_cap.so");
  EXPECT_NE(r.out.find(installed + "\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("GREY_VRAM_CAP_MB=61169\n"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("enforced by: shim (" + installed), std::string::npos) << r.err;
}

TEST(ExampleConfig, PlanConfigAcceptsItAndUsesItsValues) {
  ASSERT_TRUE(fs::exists(kExample)) << kExample;
  TempDir t;
  fs::create_directories(t / "sys/class/drm");
  fs::create_directories(t / "proc");
  const std::map<std::string, std::string> env = {
      {"PATH", "/usr/bin:/bin"},
      {"GREY_CONFIG_DIR", t / "state"},
      {"GREY_SYSFS_ROOT", t / "sys"},
      {"GREY_PROC_ROOT", t / "proc"},
      {"GREY_NVML_LIBRARY", std::string(GREY_FAKE_LIB_DIR) + "/fake_nvml.so"},
      {"GREY_CUDA_LIBRARY", "/nonexistent/libcuda.so.1"},
      {"GREY_OPENCL_LIBRARY", "/nonexistent/libOpenCL.so.1"}};
  ASSERT_EQ(test::run_grey({"detect", "--timeout", "3"}, env).exit_code, 0);
  // A copy of our own: --config refuses a file others may write, and a checkout's umask is not
  // ours to know.
  fs::copy_file(kExample, t / "config.yaml");
  fs::permissions(t / "config.yaml", fs::perms(0644));
  auto r = test::run_grey({"plan", "--config", t / "config.yaml", "--json"}, env);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string error;
  auto plan = plan_from_json_text(r.out, &error);
  ASSERT_TRUE(plan) << error;
  ASSERT_FALSE(plan->gpus.empty());
  for (const auto& g : plan->gpus) {
    EXPECT_EQ(g.recommended_batch_size, 32);
    EXPECT_EQ(g.provenance.at("recommended_batch_size"), "config");
    EXPECT_EQ(g.provenance.at("utilization_heatmap_enabled"), "config");
  }
}

// Its commented per-GPU block, uncommented, is a valid config too (what it shows is right).
TEST(ExampleConfig, ItsCommentedPerGpuBlockParsesWhenUncommented) {
  std::string text = test::read_file(kExample);
  size_t at = text.find("# gpus:");
  ASSERT_NE(at, std::string::npos);
  std::string head = text.substr(0, at), tail = text.substr(at), out;
  size_t pos = 0;
  while (pos < tail.size()) {
    size_t nl = tail.find('\n', pos);
    std::string line = tail.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    if (line.rfind("# ", 0) == 0) line = line.substr(2);
    out += line + "\n";
    if (nl == std::string::npos) break;
    pos = nl + 1;
  }
  ConfigResult c = parse_config_text(head + out, "config.example.yaml");
  EXPECT_TRUE(c.ok) << (c.errors.empty() ? "" : c.errors[0]);
  EXPECT_NE(out.find("gpus:\n"), std::string::npos) << out;
}

}  // namespace
}  // namespace grey
