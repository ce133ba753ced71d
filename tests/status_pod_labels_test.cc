// `status` says why /metrics' pod labels are empty (issue 12: dcgm-exporter's most-reported
// problem is these labels coming out empty, with no way to tell why). The daemon's status file
// carries pod_labels (how many GPU processes are in a pod, and the identity notes of those that
// are not); `status` prints them.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "daemon/daemon.h"
#include "daemon/daemon_status.h"
#include "test_util.h"

namespace grey {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::TempDir;
using test::write_file;

constexpr const char* kCid = "2032491dcae31e6746f47daa0ac74564f2843a1bd847c5e6c4eb501ca132ac36";
constexpr const char* kPodDir = "ml_trainer-0_55c6c714-b240-4dec-9a45-57b61696ab6e";

std::string stat_text(int pid, uint64_t start) {
  return std::to_string(pid) + " (python3) S 1 " + std::to_string(pid) +
         " 1 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 " + std::to_string(start) +
         " 12345678 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 3 0 0 0 0 0\n";
}

// The daemon on the fake NVML: pid 4242 in pod ml/trainer-0, pid 4343 a host service, pid 4444
// gone from /proc. The status file and `status` name 4343 and 4444 with the reason.
TEST(StatusPodLabels, DaemonRecordsAndStatusPrintsWhyPodLabelsAreEmpty) {
  TempDir t;
  std::string state = t / "state", sys = t / "sys";
  fs::create_directories(sys + "/class/drm");
  fs::create_directories(t / "bin");
  fs::create_directories(state);
  ::chmod(state.c_str(), 0700);
  std::map<std::string, std::string> env = {
      {"GREY_CONFIG_DIR", state},
      {"GREY_SYSFS_ROOT", sys},
      {"GREY_PROC_ROOT", t / "proc"},
      {"GREY_NVML_LIBRARY", std::string(GREY_FAKE_LIB_DIR) + "/fake_nvml.so"},
      {"GREY_CUDA_LIBRARY", "/nonexistent/libcuda.so.1"},
      {"GREY_OPENCL_LIBRARY", "/nonexistent/libOpenCL.so.1"},
      {"FAKE_NVML_RECORD", t / "nvml-record.txt"},
      {"FAKE_NVML_SCRIPT", t / "script.txt"}};
  write_file(t / "script.txt",
             "tick 0 0 50 1000 10 100000\nproc 0 0 4242 500 trainer\n"
             "proc 0 0 4343 300 bench\nproc 0 1 4444 200 gone\n");
  write_file(t / "proc/4242/stat", stat_text(4242, 1000));
  write_file(t / "proc/4242/cgroup",
             std::string("0::/kubepods.slice/kubepods-burstable.slice/"
                         "kubepods-burstable-pod55c6c714_b240_4dec_9a45_57b61696ab6e.slice/"
                         "cri-containerd-") +
                 kCid + ".scope\n");
  write_file(t / "proc/4242/status", "Name:\tpython3\nNSpid:\t4242\t1\n");
  write_file(t / "proc/4343/stat", stat_text(4343, 2000));
  write_file(t / "proc/4343/cgroup", "0::/system.slice/bench.service\n");
  write_file(t / "proc/4343/status", "Name:\tbench\nNSpid:\t4343\n");
  fs::create_directories(t / ("log/pods/" + std::string(kPodDir) + "/trainer"));
  auto detect_env = env;
  detect_env["PATH"] = t / "bin";
  auto d = test::run_grey({"detect", "--timeout", "3"}, detect_env);
  ASSERT_EQ(d.exit_code, 0) << d.err;
  for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
  DaemonOptions o;
  o.interval_s = 0.05;
  o.state_dir = state;
  o.sysfs_root = sys;
  o.procfs_root = t / "proc";
  o.pod_log_root = t / "log/pods";
  o.max_ticks = 3;
  std::ostringstream out, err;
  int rc = run_daemon(o, out, err);
  for (const auto& [k, v] : env) ::unsetenv(k.c_str());
  ASSERT_EQ(rc, 0) << err.str();

  DaemonStatusView v = read_daemon_status(state);
  ASSERT_TRUE(v.status) << v.status_error;
  const json& pl = (*v.status)["pod_labels"];
  ASSERT_TRUE(pl.is_object()) << v.status->dump();
  EXPECT_EQ(pl["processes"], 3);
  EXPECT_EQ(pl["in_pod"], 1);
  ASSERT_EQ(pl["without_pod"].size(), 2u) << pl.dump();
  std::map<int, std::string> why;
  for (const auto& p : pl["without_pod"]) {
    ASSERT_FALSE(p["notes"].empty()) << p.dump();
    why[p["pid"].get<int>()] = p["notes"].dump();
  }
  EXPECT_NE(why[4343].find("not in a container"), std::string::npos) << why[4343];
  EXPECT_FALSE(why[4444].empty());

  std::string text = render_daemon_status(v, 0);
  EXPECT_NE(text.find("Pod labels: 1 of 3 GPU processes in a pod; why the others have none:"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("  pid 4343 (bench): "), std::string::npos) << text;
  EXPECT_NE(text.find("not in a container (cgroup /system.slice/bench.service)"), std::string::npos)
      << text;
  EXPECT_NE(text.find("  pid 4444 (gone): "), std::string::npos) << text;
}

// More processes without a pod than the file lists: the rest are counted; all in pods: one line.
TEST(StatusPodLabels, RenderCountsTheUnlistedAndIsQuietWhenAllAreInPods) {
  DaemonStatusView v;
  json without = json::array();
  for (int i = 0; i < 10; ++i)
    without.push_back({{"pid", 100 + i}, {"command", "w"}, {"notes", {"no pod log directory"}}});
  v.status = json{{"pod_labels", {{"processes", 25}, {"in_pod", 3}, {"without_pod", without}}}};
  std::string text = render_daemon_status(v, 0);
  EXPECT_NE(text.find("Pod labels: 3 of 25 GPU processes in a pod; why the others have none:\n"
                      "  pid 100 (w): no pod log directory\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("  (12 more)\n"), std::string::npos) << text;

  v.status =
      json{{"pod_labels", {{"processes", 2}, {"in_pod", 2}, {"without_pod", json::array()}}}};
  text = render_daemon_status(v, 0);
  EXPECT_NE(text.find("Pod labels: 2 of 2 GPU processes in a pod\n"), std::string::npos) << text;
  EXPECT_EQ(text.find("why the others"), std::string::npos) << text;
}

}  // namespace
}  // namespace grey
