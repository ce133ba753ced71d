// `grey-gpu-opt detect` end to end through the built binary: fake tools on PATH (a hang, garbage,
// a non-zero exit), fake sysfs trees, the fake NVML library, replay directories built from the
// real captures, capture -> replay, and the real tools of this machine (no GPU here).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "test_util.h"
#include "util/runner.h"

namespace grey {
namespace {

using namespace std::chrono_literals;
using test::read_fixture;
using test::TempDir;
using test::write_file;
namespace fs = std::filesystem;

struct Cli {
  TempDir tmp;
  std::string bin_dir = tmp / "bin";
  std::string state = tmp / "state";
  std::string sys = tmp / "sys";
  std::map<std::string, std::string> env;

  Cli() {
    fs::create_directories(bin_dir);
    fs::create_directories(sys + "/class/drm");
    env = {{"PATH", bin_dir},
           {"GREY_CONFIG_DIR", state},
           {"GREY_SYSFS_ROOT", sys},
           {"GREY_PROC_ROOT", tmp / "proc"},
           {"GREY_NVML_LIBRARY", "/nonexistent/libnvidia-ml.so.1"},
           {"GREY_CUDA_LIBRARY", "/nonexistent/libcuda.so.1"},
           {"GREY_OPENCL_LIBRARY", "/nonexistent/libOpenCL.so.1"}};
  }
  // A fake tool: prints `file` for the given first argument pattern, else `fallback`.
  void tool_cat(const std::string& name, const std::string& content, int exit_code = 0) {
    std::string data = tmp / ("data-" + name);
    write_file(data, content);
    write_file(bin_dir + "/" + name,
               "#!/bin/sh\n/bin/cat '" + data + "'\nexit " + std::to_string(exit_code) + "\n",
               0755);
  }
  void tool_script(const std::string& name, const std::string& body) {
    write_file(bin_dir + "/" + name, "#!/bin/sh\n" + body + "\n", 0755);
  }
  CommandResult run(const std::vector<std::string>& args, std::chrono::milliseconds limit = 60s) {
    return test::run_grey(args, env, limit);
  }
  nlohmann::json json(const std::vector<std::string>& args) {
    auto r = run(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    try {
      return nlohmann::json::parse(r.out);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "not JSON: " << e.what() << "\n" << r.out;
      return nlohmann::json();
    }
  }
};

TEST(CliDetect, NoToolsNoSysfsMeansNoGpuAndAValidEmptyArray) {
  Cli c;
  auto r = c.run({"detect", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out), nlohmann::json::array());
  EXPECT_NE(r.err.find("no GPU found"), std::string::npos) << r.err;
  struct stat st;
  ASSERT_EQ(::stat((c.state + "/last_gpu_spec.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  ASSERT_EQ(::stat(c.state.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700);
}

TEST(CliDetect, FakeNvidiaSmiXmlGivesTheGpuWithNullsForUnknowns) {
  Cli c;
  c.tool_cat("nvidia-smi", read_fixture("nvidia-smi-xml/nvidia-tesla-t4-515.105.01-telegraf.xml"));
  auto j = c.json({"detect", "--json", "--no-save"});
  ASSERT_EQ(j.size(), 1u) << j.dump(2);
  EXPECT_EQ(j[0]["vendor"], "nvidia");
  EXPECT_EQ(j[0]["model"], "Tesla T4");
  EXPECT_EQ(j[0]["device_id"], "0000:00:1e.0");
  EXPECT_EQ(j[0]["pci_id"], "10de:1eb8");
  EXPECT_EQ(j[0]["driver"], "515.105.01");
  EXPECT_EQ(j[0]["vram_total_mb"], 15360);
  EXPECT_TRUE(j[0]["opengl_version"].is_null());
  EXPECT_TRUE(j[0]["numa_node"].is_null() || j[0]["numa_node"].is_number());
  EXPECT_EQ(j[0]["detection_sources"], nlohmann::json::array({"nvidia-smi"}));
  struct stat st;
  EXPECT_NE(::stat((c.state + "/last_gpu_spec.json").c_str(), &st), 0) << "--no-save wrote a file";
}

TEST(CliDetect, HangingGarbageAndFailingToolsDoNotStopDetection) {
  Cli c;
  c.tool_script("nvidia-smi", "/bin/sleep 1000");  // hangs forever
  c.tool_cat("lspci", std::string("\x00\xff\x13garbage\n\x7f", 13));
  c.tool_cat("rocm-smi", "ERROR: rocm-smi failed\n", 3);
  c.tool_cat("clinfo", "Number of platforms                               0\n");
  c.tool_cat("lshw",
             read_fixture("lshw/amd-radeon-hd5770-full-tree-athlon64-nforce4-lshw-octology.txt"));
  auto r = c.run({"detect", "--explain", "--timeout", "1", "--no-save"}, 30s);
  EXPECT_FALSE(r.timed_out) << "the 1 s deadline did not end detection";
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("[nvidia-smi] timed out"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[rocm-smi] failed"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("exit code 3"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[lspci]"), std::string::npos);
  EXPECT_NE(r.out.find("[nvml] missing"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("/nonexistent/libnvidia-ml.so.1"), std::string::npos) << r.out;
  // lshw's HD 5770 still made it through.
  EXPECT_NE(r.out.find("Juniper XT"), std::string::npos) << r.out;
}

TEST(CliDetect, BlockedNvmlLibraryCallIsAbandonedAtTheDeadline) {
  Cli c;
  c.env["GREY_NVML_LIBRARY"] = std::string(GREY_FAKE_LIB_DIR) + "/fake_nvml.so";
  c.env["FAKE_NVML_HANG_INIT"] = "1";
  c.tool_cat("nvidia-smi", read_fixture("nvidia-smi-xml/nvidia-tesla-t4-515.105.01-telegraf.xml"));
  auto r = c.run({"detect", "--json", "--explain", "--timeout", "1", "--no-save"}, 30s);
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("[nvml] timed out"), std::string::npos) << r.err;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0]["model"], "Tesla T4");
}

TEST(CliDetect, FakeNvmlMergesWithNvidiaSmiByBusId) {
  Cli c;
  c.env["GREY_NVML_LIBRARY"] = std::string(GREY_FAKE_LIB_DIR) + "/fake_nvml.so";
  auto j = c.json({"detect", "--json", "--no-save"});
  ASSERT_EQ(j.size(), 2u) << j.dump(2);
  for (auto& g : j) {
    EXPECT_EQ(g["vendor"], "nvidia");
    EXPECT_EQ(g["kernel_driver"], "nvidia");
    EXPECT_TRUE(g["vram_total_mb"].is_number());
    EXPECT_EQ(g["detection_sources"][0], "nvml");
  }
}

// SPEC §9: an NVIDIA GPU whose power/runtime_status says suspended.
void nvidia_card(const std::string& sys, const std::string& status) {
  std::string dev = sys + "/class/drm/card0/device";
  write_file(dev + "/uevent",
             "DRIVER=nvidia\nPCI_CLASS=30000\nPCI_ID=10DE:2330\nPCI_SLOT_NAME=0000:01:00.0\n");
  write_file(dev + "/class", "0x030000\n");
  write_file(dev + "/vendor", "0x10de\n");
  write_file(dev + "/device", "0x2330\n");
  write_file(dev + "/power/runtime_status", status + "\n");
}

TEST(CliDetect, EverySuspendedNvidiaGpuMeansNvmlIsNeverInitialised) {
  Cli c;
  nvidia_card(c.sys, "suspended");
  std::string calls = c.tmp / "nvml-calls";
  c.env["GREY_NVML_LIBRARY"] = std::string(GREY_FAKE_LIB_DIR) + "/fake_nvml.so";
  c.env["FAKE_NVML_CALLS"] = calls;
  auto r = c.run({"detect", "--json", "--explain", "--no-save"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(fs::exists(calls)) << "nvmlInit_v2 was called for a suspended GPU";
  EXPECT_NE(r.err.find("[nvml] skipped"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("0000:01:00.0 is runtime-suspended"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("[lspci] skipped"), std::string::npos) << r.err;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j.size(), 1u) << j.dump(2);
  EXPECT_EQ(j[0]["power_state"], "suspended");
  EXPECT_EQ(j[0]["vendor"], "nvidia");
}

TEST(CliDetect, AnActiveNvidiaGpuIsProbedWithNvml) {
  Cli c;
  nvidia_card(c.sys, "active");
  std::string calls = c.tmp / "nvml-calls";
  c.env["GREY_NVML_LIBRARY"] = std::string(GREY_FAKE_LIB_DIR) + "/fake_nvml.so";
  c.env["FAKE_NVML_CALLS"] = calls;
  auto r = c.run({"detect", "--json", "--no-save"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(calls));
  auto j = nlohmann::json::parse(r.out);
  bool active = false;
  for (const auto& g : j) active = active || g["power_state"] == "active";
  EXPECT_TRUE(active) << j.dump(2);
}

std::string replay_dir(const TempDir& t, const std::map<std::string, std::string>& files) {
  std::string d = t / "replay";
  for (const auto& [name, fixture] : files) write_file(d + "/" + name, read_fixture(fixture));
  fs::create_directories(d);
  return d;
}

TEST(CliDetect, ReplayTenGpusFromTheTable) {
  Cli c;
  auto d = replay_dir(
      c.tmp, {{"nvidia-smi.txt", "nvidia-smi-table/nvidia-a40-x10-550.127.05-thamada.txt"}});
  auto j = c.json({"detect", "--json", "--replay", d});
  ASSERT_EQ(j.size(), 10u);
  EXPECT_EQ(j[0]["device_id"], "0000:4f:00.0");
  EXPECT_EQ(j[9]["device_id"], "0000:d6:00.0");
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(j[i]["index"], i);
    EXPECT_EQ(j[i]["vram_total_mb"], 46068);
    EXPECT_EQ(j[i]["driver"], "550.127.05");
  }
}

// SPEC §9: the H200 in MIG mode is one GPU; its 5 MIG instances are partitions that take
// GI/CI/memory from the table and profile/UUID from nvidia-smi -L (the same real capture).
TEST(CliDetect, ReplayMigInstancesArePartitionsOfOneGpu) {
  Cli c;
  auto d = replay_dir(
      c.tmp,
      {{"nvidia-smi.txt", "nvidia-smi-table/nvidia-h200-mig-5-devices-590.48.01-idle-nge.txt"},
       {"nvidia-smi-L.txt", "nvidia-smi-L/nvidia-h200-mig-5-devices-590.48.01-nge.txt"}});
  auto j = c.json({"detect", "--json", "--replay", d});
  ASSERT_EQ(j.size(), 1u) << j.dump(1);
  EXPECT_EQ(j[0]["mig_mode"], true);
  EXPECT_EQ(j[0]["uuid"], "GPU-00000000-0000-0000-0000-000000000000");
  auto p = j[0]["partitions"];
  ASSERT_EQ(p.size(), 5u) << j.dump(1);
  EXPECT_EQ(p[0]["kind"], "mig");
  EXPECT_EQ(p[0]["gi_id"], 2);
  EXPECT_EQ(p[1]["ci_id"], 1);
  EXPECT_EQ(p[1]["profile"], "2c.3g.71gb");
  EXPECT_EQ(p[2]["memory_total_mb"], 33280);
  EXPECT_EQ(p[2]["profile"], "2g.35gb");
  EXPECT_EQ(p[4]["gi_id"], 10);
  EXPECT_EQ(p[4]["uuid"], "MIG-00000004-0000-0000-0000-000000000004");
  EXPECT_TRUE(j[0]["compute_partition"].is_null());
}

TEST(CliDetect, ReplayMixedVendorsOnOneMachine) {
  Cli c;
  auto d = replay_dir(
      c.tmp, {{"nvidia-smi.xml", "nvidia-smi-xml/nvidia-geforce-rtx2070-x2-590.44.01-telegraf.xml"},
              {"rocm-smi.json", "rocm-smi/amd-instinct-mi100-x6-rocm5.7.1-json-telegraf.json"}});
  auto j = c.json({"detect", "--json", "--replay", d});
  ASSERT_EQ(j.size(), 8u) << j.dump(1);
  int nv = 0, amd = 0;
  for (auto& g : j) {
    nv += g["vendor"] == "nvidia";
    amd += g["vendor"] == "amd";
  }
  EXPECT_EQ(nv, 2);
  EXPECT_EQ(amd, 6);
}

TEST(CliDetect, ReplaySysfsFixtureAndLspciMergeIntoOneRecord) {
  Cli c;
  std::string d = c.tmp / "replay";
  fs::create_directories(d + "/sys/class/drm");
  fs::copy(test::fixture_path("sysfs/amd-radeon-rx-vega56-lact/card0"), d + "/sys/class/drm/card0",
           fs::copy_options::recursive);
  write_file(
      d + "/lspci.txt",
      "Slot:\t0000:0b:00.0\nClass:\tVGA compatible controller [0300]\nVendor:\tAdvanced Micro "
      "Devices, Inc. [AMD/ATI] [1002]\nDevice:\tVega 10 XL/XT [Radeon RX Vega 56/64] [687f]\n"
      "Driver:\tamdgpu\n\n");
  auto j = c.json({"detect", "--json", "--replay", d});
  ASSERT_EQ(j.size(), 1u) << j.dump(1);
  EXPECT_EQ(j[0]["vendor"], "amd");
  EXPECT_EQ(j[0]["device_id"], "0000:0b:00.0");
  EXPECT_EQ(j[0]["vram_total_mb"], 8176);
  EXPECT_EQ(j[0]["kernel_driver"], "amdgpu");
  EXPECT_EQ(j[0]["detection_sources"], nlohmann::json::array({"sysfs", "lspci"}));
  // Every field with a value names the source whose value won; a field nobody reported has
  // none.
  const auto& fsrc = j[0]["field_sources"];
  EXPECT_EQ(fsrc["vram_total_mb"], "sysfs");
  EXPECT_EQ(fsrc["device_id"], "sysfs");
  for (const auto& [key, value] : j[0].items()) {
    if (key == "thermal_limits" || key == "index" || key == "notes" || key == "pci_bandwidth" ||
        key.rfind("detection_", 0) == 0 || key == "field_sources" || key == "schema_version")
      continue;
    bool no_value = value.is_null() || (value.is_array() && value.empty());  // partitions: []
    EXPECT_EQ(no_value, !fsrc.contains(key)) << key << " = " << value.dump();
  }
  auto explain = c.run({"detect", "--explain", "--replay", d, "--no-save"});
  EXPECT_NE(explain.out.find("fields from sysfs: "), std::string::npos) << explain.out;
}

TEST(CliDetect, CaptureThenReplayGivesTheSameGpus) {
  Cli c;
  c.tool_cat("nvidia-smi",
             read_fixture("nvidia-smi-xml/nvidia-geforce-rtx2070-x2-590.44.01-telegraf.xml"));
  fs::copy(test::fixture_path("sysfs/intel-tigerlake-igpu-xe-lact/card0"),
           c.sys + "/class/drm/card0", fs::copy_options::recursive);
  std::string cap = c.tmp / "cap";
  auto r = c.run({"capture", cap});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("captured"), std::string::npos);
  auto manifest = nlohmann::json::parse(test::read_file(cap + "/manifest.json"));
  EXPECT_FALSE(manifest["commands"].empty());
  EXPECT_TRUE(fs::exists(cap + "/nvidia-smi.xml"));
  EXPECT_TRUE(fs::exists(cap + "/sys/class/drm/card0/device/uevent"));
  auto live = c.json({"detect", "--json", "--no-save"});
  auto replayed = c.json({"detect", "--json", "--no-save", "--replay", cap});
  ASSERT_EQ(live.size(), 3u) << live.dump(1);
  ASSERT_EQ(replayed.size(), live.size());
  for (size_t i = 0; i < live.size(); ++i) {
    EXPECT_EQ(live[i]["device_id"], replayed[i]["device_id"]);
    EXPECT_EQ(live[i]["model"], replayed[i]["model"]);
    EXPECT_EQ(live[i]["vram_total_mb"], replayed[i]["vram_total_mb"]);
  }
}

TEST(CliDetect, RealToolsOfThisMachineFindNoGpuAndExplainTheSoftwareDevices) {
  Cli c;
  c.env["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin";
  c.env["GREY_SYSFS_ROOT"] = "/sys";
  c.env.erase("GREY_OPENCL_LIBRARY");
  if (fs::exists("/dev/nvidia0") || fs::exists("/dev/dri/renderD128"))
    GTEST_SKIP() << "this machine has a GPU";
  auto r = c.run({"detect", "--json", "--explain", "--no-save", "--timeout", "20"}, 60s);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out), nlohmann::json::array());
  if (fs::exists("/usr/bin/vulkaninfo")) {
    EXPECT_NE(r.err.find("llvmpipe"), std::string::npos) << r.err;
  }
  if (fs::exists("/usr/bin/clinfo")) {
    EXPECT_NE(r.err.find("PoCL"), std::string::npos) << r.err;
  }
  if (getenv("DISPLAY") && fs::exists("/usr/bin/glxinfo")) {
    EXPECT_NE(r.err.find("[glxinfo] ok"), std::string::npos) << r.err;
  }
  EXPECT_NE(r.err.find("Seen and ignored"), std::string::npos);
}

TEST(CliDetect, BadUsage) {
  Cli c;
  EXPECT_EQ(c.run({"detect", "--timeout", "-1"}).exit_code, 2);
  EXPECT_EQ(c.run({"detect", "--replay", c.tmp / "nope"}).exit_code, 2);
  EXPECT_EQ(c.run({"frobnicate"}).exit_code, 2);
  auto v = c.run({"--version"});
  EXPECT_EQ(v.exit_code, 0);
  EXPECT_NE(v.out.find("grey-gpu-opt 0."), std::string::npos);
  auto h = c.run({"detect", "--help"});
  EXPECT_EQ(h.exit_code, 0);
  EXPECT_NE(h.out.find("--replay"), std::string::npos);
}

TEST(CliDetect, HumanTableAndVerbose) {
  Cli c;
  c.tool_cat("nvidia-smi", read_fixture("nvidia-smi-xml/nvidia-tesla-t4-515.105.01-telegraf.xml"));
  auto r = c.run({"detect", "-v", "--no-save"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("Tesla T4"), std::string::npos);
  EXPECT_NE(r.out.find("BUS ID"), std::string::npos);
  EXPECT_NE(r.err.find("sources ("), std::string::npos);
}

TEST(CliDetect, StateDirSymlinkIsRefused) {
  Cli c;
  fs::create_directories(c.tmp / "real");
  fs::create_directory_symlink(c.tmp / "real", c.state);
  auto r = c.run({"detect"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("symbolic link"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace grey
