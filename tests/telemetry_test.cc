// The sysfs telemetry backend on copies of the real sysfs fixtures, the nvidia-smi fallback
// (a fake nvidia-smi on PATH, run by a PosixRunner), the collector's backend order, JSON.
#include "telemetry/telemetry.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "test_util.h"
#include "util/strings.h"

#ifndef GREY_FAKE_LIB_DIR
#error "GREY_FAKE_LIB_DIR must name the directory holding fake_nvml.so"
#endif

namespace grey {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using test::TempDir;
using test::write_file;

// <fixture>/cardN -> <root>/class/drm/cardN (as tests/sysfs_source_test.cc installs them).
void install_fixture(const std::string& root, const std::string& name) {
  fs::path src = test::fixture_path("sysfs/" + name);
  ASSERT_TRUE(fs::is_directory(src)) << src;
  fs::create_directories(fs::path(root) / "class/drm");
  for (const auto& e : fs::directory_iterator(src)) {
    std::string n = e.path().filename().string();
    if (n == "kfd") continue;
    fs::copy(e.path(), fs::path(root) / "class/drm" / n, fs::copy_options::recursive);
  }
}

bool has_note(const std::vector<std::string>& notes, const std::string& needle) {
  for (const auto& n : notes)
    if (n.find(needle) != std::string::npos) return true;
  return false;
}

std::string joined(const std::vector<std::string>& notes) {
  std::string s;
  for (const auto& n : notes) s += "  [" + n + "]\n";
  return s;
}

std::vector<GpuSample> sysfs_sample(const std::string& fixture, uint64_t now = 1) {
  TempDir t;
  install_fixture(t.path(), fixture);
  SysfsTelemetry s(std::make_shared<RootedFs>(t.path(), t / "proc"));
  return s.sample(now).gpus;
}

TEST(SysfsTelemetry, Vega56) {
  auto v = sysfs_sample("amd-radeon-rx-vega56-lact");
  ASSERT_EQ(v.size(), 1u);
  const GpuSample& g = v[0];
  EXPECT_EQ(g.backend, "sysfs");
  EXPECT_FALSE(g.stale);
  EXPECT_EQ(g.bus_id, "0000:0b:00.0");
  EXPECT_EQ(g.vram_used_mb, 15);  // 16613376 B
  EXPECT_EQ(g.vram_total_mb, 8176);
  EXPECT_EQ(g.temperature_c, 38.0);  // temp1 "edge"
  EXPECT_EQ(g.utilization_pct, 0.0);
  EXPECT_EQ(g.power_w, 8.0);  // power1_average
  EXPECT_EQ(g.power_limit_w, 260.0);
  EXPECT_EQ(g.power_limit_max_w, 390.0);
  EXPECT_FALSE(g.power_limit_min_w);  // power1_cap_min reads 0: not reported
  EXPECT_FALSE(g.persistence_mode);
  EXPECT_FALSE(g.uuid);
  EXPECT_TRUE(g.notes.empty()) << joined(g.notes);
}

TEST(SysfsTelemetry, Rx9070xtLoweredCapAndNoVramFiles) {
  auto v = sysfs_sample("amd-radeon-rx9070xt-lact");
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].bus_id, "0000:0f:00.0");
  EXPECT_FALSE(v[0].vram_used_mb);  // no mem_info_vram_* files: unknown, not 0
  EXPECT_FALSE(v[0].vram_total_mb);
  EXPECT_EQ(v[0].temperature_c, 42.0);
  EXPECT_EQ(v[0].power_w, 55.0);
  EXPECT_EQ(v[0].power_limit_w, 120.0);
  EXPECT_EQ(v[0].power_limit_max_w, 340.0);
  EXPECT_EQ(v[0].utilization_pct, 3.0);
}

TEST(SysfsTelemetry, Rx7900xtxNulPaddedFiles) {
  auto v = sysfs_sample("amd-radeon-rx7900xtx-no-vram-files-lact");
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].bus_id, "0000:03:00.0");
  EXPECT_FALSE(v[0].vram_total_mb);
  EXPECT_EQ(v[0].temperature_c, 53.0);
  EXPECT_EQ(v[0].power_w, 68.0);
  EXPECT_EQ(v[0].power_limit_w, 290.0);
  EXPECT_EQ(v[0].power_limit_max_w, 333.0);
  EXPECT_EQ(v[0].utilization_pct, 3.0);
}

TEST(SysfsTelemetry, PhoenixApuAverageBeforeInput) {
  auto v = sysfs_sample("amd-phoenix-apu-lact");
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].bus_id, "0000:64:00.0");
  EXPECT_EQ(v[0].vram_total_mb, 4096);
  EXPECT_EQ(v[0].vram_used_mb, 1213);  // 1272893440 B
  EXPECT_EQ(v[0].temperature_c, 25.0);
  EXPECT_DOUBLE_EQ(v[0].power_w.value_or(-1), 3.103);  // power1_average, not power1_input
  EXPECT_FALSE(v[0].power_limit_w);
}

TEST(SysfsTelemetry, R7240NoBusyNoPower) {
  auto v = sysfs_sample("amd-radeon-r7-240-lact");
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].vram_total_mb, 2048);
  EXPECT_EQ(v[0].temperature_c, 52.0);
  EXPECT_FALSE(v[0].utilization_pct);
  EXPECT_FALSE(v[0].power_w);
}

TEST(SysfsTelemetry, IntelA380PowerFromEnergyNeedsTwoSamples) {
  TempDir t;
  install_fixture(t.path(), "intel-arc-a380-i915-lact");
  SysfsTelemetry s(std::make_shared<RootedFs>(t.path(), t / "proc"));
  auto v = s.sample(1'000'000'000).gpus;
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].bus_id, "0000:0b:00.0");
  EXPECT_EQ(v[0].temperature_c, 55.0);
  EXPECT_EQ(v[0].power_limit_w, 55.0);  // power1_max (PL1)
  EXPECT_FALSE(v[0].power_limit_max_w);
  EXPECT_FALSE(v[0].power_w);
  EXPECT_TRUE(has_note(v[0].notes, "energy1_input needs a second sample")) << joined(v[0].notes);
  EXPECT_FALSE(v[0].vram_total_mb);
  // 20 J more, 2 s later: 10 W.
  std::string energy = t / "class/drm/card1/device/hwmon/hwmon1/energy1_input";
  write_file(energy, std::to_string(25637161804ull + 20'000'000) + "\n");
  v = s.sample(3'000'000'000).gpus;
  ASSERT_EQ(v.size(), 1u);
  EXPECT_NEAR(v[0].power_w.value_or(-1), 10.0, 1e-9);
  EXPECT_TRUE(v[0].notes.empty()) << joined(v[0].notes);
  // A counter that went backwards (driver reload): unknown, said so.
  write_file(energy, "5\n");
  v = s.sample(4'000'000'000).gpus;
  EXPECT_FALSE(v[0].power_w);
  EXPECT_TRUE(has_note(v[0].notes, "went backwards"));
}

TEST(SysfsTelemetry, IntelIgpusWithoutHwmon) {
  for (const char* f : {"intel-tigerlake-igpu-xe-lact", "intel-cometlake-igpu-i915-lact"}) {
    auto v = sysfs_sample(f);
    ASSERT_EQ(v.size(), 1u) << f;
    EXPECT_EQ(v[0].bus_id, "0000:00:02.0") << f;
    EXPECT_FALSE(v[0].temperature_c) << f;
    EXPECT_FALSE(v[0].power_w) << f;
    EXPECT_FALSE(v[0].vram_used_mb) << f;
  }
}

TEST(SysfsTelemetry, NvidiaAndVirtualCardsAreSkipped) {
  TempDir t;
  write_file(t / "class/drm/card0/device/uevent", "DRIVER=nvidia\nPCI_SLOT_NAME=0000:01:00.0\n");
  write_file(t / "class/drm/card1/device/uevent",
             "DRIVER=virtio-pci\nPCI_ID=1AF4:1050\nPCI_SLOT_NAME=0000:00:02.0\n");
  write_file(t / "class/drm/card1-Virtual-1/status", "connected\n");
  SysfsTelemetry s(std::make_shared<RootedFs>(t.path(), t / "proc"));
  EXPECT_TRUE(s.sample(1).gpus.empty());
  SysfsTelemetry none(std::make_shared<RootedFs>(t / "nothing", t / "proc"));
  EXPECT_TRUE(none.sample(1).gpus.empty());
}

// ---- nvidia-smi fallback ---------------------------------------------------------------------

// SPEC §9: card0 (a Vega 56) runtime-suspended beside an awake copy of it as card1: card0 is
// reported suspended without its mem_info_*, gpu_busy_percent or hwmon files being opened,
// card1 is sampled in full, and the fdinfo scanner reads no /proc fdinfo while card0 sleeps.
// After card0 wakes by itself it is sampled normally.
TEST(SysfsTelemetry, SuspendedCardIsNotWokenAndItsNeighbourIsSampled) {
  TempDir t;
  fs::path src = test::fixture_path("sysfs/amd-radeon-rx-vega56-lact/card0");
  fs::create_directories(t / "class/drm");
  fs::copy(src, t / "class/drm/card0", fs::copy_options::recursive);
  fs::copy(src, t / "class/drm/card1", fs::copy_options::recursive);
  write_file(t / "class/drm/card1/device/uevent",
             "DRIVER=amdgpu\nPCI_CLASS=30000\nPCI_ID=1002:687F\nPCI_SLOT_NAME=0000:0c:00.0\n");
  write_file(t / "class/drm/card0/device/power/runtime_status", "suspended\n");
  write_file(t / "class/drm/card1/device/power/runtime_status", "active\n");
  write_file(t / "proc/100/fdinfo/3", "drm-driver:\tamdgpu\ndrm-pdev:\t0000:0c:00.0\n");
  RootedFs rooted(t.path(), t / "proc");
  auto rec = std::make_shared<RecordingFs>(rooted);
  SysfsTelemetry s(rec);
  BackendSample b = s.sample(1);
  ASSERT_EQ(b.gpus.size(), 2u);
  EXPECT_EQ(b.gpus[0].power_state, "suspended");
  EXPECT_FALSE(b.gpus[0].vram_total_mb);
  EXPECT_FALSE(b.gpus[0].temperature_c);
  EXPECT_EQ(b.gpus[1].power_state, "active");
  EXPECT_TRUE(b.gpus[1].vram_total_mb);
  EXPECT_TRUE(b.gpus[1].temperature_c);
  for (const char* w : {"hwmon", "mem_info_", "gpu_busy_percent", "pp_"})
    EXPECT_FALSE(rec->touched(std::string("/sys/class/drm/card0/device/") + w)) << w;
  EXPECT_TRUE(rec->touched("/sys/class/drm/card1/device/hwmon"));

  FdinfoScanner scanner(rec);
  BackendSample f = scanner.sample(1);
  EXPECT_TRUE(f.processes.empty());
  EXPECT_FALSE(rec->touched("/proc"));
  ASSERT_EQ(f.notes.size(), 1u);
  EXPECT_NE(f.notes[0].find("card0 is runtime-suspended"), std::string::npos) << f.notes[0];

  write_file(t / "class/drm/card0/device/power/runtime_status", "active\n");
  BackendSample woke = s.sample(2);
  ASSERT_EQ(woke.gpus.size(), 2u);
  EXPECT_EQ(woke.gpus[0].power_state, "active");
  EXPECT_TRUE(woke.gpus[0].vram_total_mb);
  scanner.sample(2);
  EXPECT_TRUE(rec->touched("/proc"));
}

TEST(SmiParse, GpuQuery) {
  std::vector<std::string> notes;
  auto v = parse_smi_gpu_query(
      "0, 00000000:01:00.0, GPU-aaaa, 1474, 16376, 45, 7, 83.12, 320.00, Enabled\n"
      "1, 00000000:02:00.0, [N/A], 0, 8192, 33, [N/A], [N/A], [Not Supported], Disabled\n"
      "garbage line\n",
      notes);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].index, 0);
  EXPECT_EQ(v[0].bus_id, "0000:01:00.0");
  EXPECT_EQ(v[0].uuid, "GPU-aaaa");
  EXPECT_EQ(v[0].vram_used_mb, 1474);
  EXPECT_EQ(v[0].vram_total_mb, 16376);
  EXPECT_EQ(v[0].temperature_c, 45.0);
  EXPECT_EQ(v[0].utilization_pct, 7.0);
  EXPECT_DOUBLE_EQ(v[0].power_w.value_or(-1), 83.12);
  EXPECT_EQ(v[0].power_limit_w, 320.0);
  EXPECT_EQ(v[0].persistence_mode, true);
  EXPECT_EQ(v[0].backend, "nvidia-smi");
  EXPECT_FALSE(v[1].uuid);
  EXPECT_FALSE(v[1].utilization_pct);
  EXPECT_FALSE(v[1].power_w);
  EXPECT_FALSE(v[1].power_limit_w);
  EXPECT_EQ(v[1].persistence_mode, false);
  EXPECT_TRUE(has_note(notes, "fields instead of 10 ignored: garbage line"));

  notes.clear();
  EXPECT_TRUE(parse_smi_gpu_query(test::read_fixture("nvidia-smi-table/error-couldnt-communicate-"
                                                     "with-driver-gcp-compute-gpu-installation-pr18"
                                                     ".txt"),
                                  notes)
                  .empty());
  EXPECT_TRUE(has_note(notes, "nvidia-smi reported: NVIDIA-SMI has failed")) << joined(notes);
  notes.clear();
  EXPECT_TRUE(parse_smi_gpu_query("", notes).empty());
}

TEST(SmiParse, AppsQuery) {
  std::vector<std::string> notes;
  auto v = parse_smi_apps_query(
      "gpu_bus_id, pid, process_name, used_gpu_memory [MiB]\n"
      "00000000:01:00.0, 4242, /usr/bin/python3, 1200 MiB\n"
      "00000000:01:00.0, 77, /opt/odd, name/worker, [N/A]\n",
      notes);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].pid, 4242);
  EXPECT_EQ(v[0].command, "python3");
  EXPECT_EQ(v[0].gpu_bus_id, "0000:01:00.0");
  EXPECT_EQ(v[0].vram_mb, 1200);
  EXPECT_EQ(v[0].backend, "nvidia-smi");
  EXPECT_EQ(v[1].command, "worker");  // "/opt/odd, name/worker": the comma is part of the name
  EXPECT_FALSE(v[1].vram_mb);
  // The real capture of an idle H100: header only, no processes, no notes.
  notes.clear();
  EXPECT_TRUE(parse_smi_apps_query(
                  test::read_fixture(
                      "nvidia-smi-csv/nvidia-h100-query-compute-apps-header-only-no-rows-nge.csv"),
                  notes)
                  .empty());
  EXPECT_TRUE(notes.empty()) << joined(notes);
}

// A fake nvidia-smi on PATH that logs its arguments.
class SmiFallbackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    old_path_ = getenv("PATH") ? getenv("PATH") : "";
    std::string bin = t_ / "bin";
    log_ = t_ / "smi.log";
    write_file(
        bin + "/nvidia-smi",
        "#!/bin/sh\n"
        "echo \"$@\" >> '" +
            log_ +
            "'\n"
            "case \"$1\" in\n"
            "  --query-gpu=*) echo '0, 00000000:01:00.0, GPU-4080, 1474, 16376, 45, 7, 83.12, "
            "320.00, Enabled' ;;\n"
            "  --query-compute-apps=*) printf 'gpu_bus_id, pid, process_name, used_gpu_memory "
            "[MiB]\\n00000000:01:00.0, 4242, /usr/bin/python3, 1200 MiB\\n' ;;\n"
            "  *) exit 2 ;;\n"
            "esac\n",
        0755);
    setenv("PATH", (bin + ":" + old_path_).c_str(), 1);
    fs_ = std::make_shared<RootedFs>(t_ / "sys", t_ / "proc");
  }
  void TearDown() override {
    setenv("PATH", old_path_.c_str(), 1);
    unsetenv("GREY_NVML_LIBRARY");
  }
  TelemetrySnapshot sample_with(const char* nvml, const std::vector<GpuSpec>& specs) {
    setenv("GREY_NVML_LIBRARY", nvml, 1);
    TelemetryCollector c(fs_, std::make_shared<DlLoader>(), std::make_shared<PosixRunner>(), specs,
                         5000ms);
    return c.sample();
  }
  bool smi_ran() const { return fs::exists(log_); }

  TempDir t_;
  std::string old_path_, log_;
  std::shared_ptr<RootedFs> fs_;
};

TEST_F(SmiFallbackTest, RunsWhenNoLibraryAndNoSysfsAnswers) {
  TelemetrySnapshot s = sample_with("/nonexistent/libnvidia-ml.so.1", {});
  ASSERT_TRUE(smi_ran());
  EXPECT_EQ(test::read_file(log_),
            "--query-gpu=index,pci.bus_id,uuid,memory.used,memory.total,temperature.gpu,"
            "utilization.gpu,power.draw,power.limit,persistence_mode "
            "--format=csv,noheader,nounits\n"
            "--query-compute-apps=gpu_bus_id,pid,process_name,used_gpu_memory --format=csv\n");
  ASSERT_EQ(s.gpus.size(), 1u) << joined(s.notes);
  EXPECT_EQ(s.gpus[0].backend, "nvidia-smi");
  EXPECT_EQ(s.gpus[0].bus_id, "0000:01:00.0");
  EXPECT_EQ(s.gpus[0].vram_used_mb, 1474);
  EXPECT_EQ(s.gpus[0].temperature_c, 45.0);
  EXPECT_EQ(s.gpus[0].persistence_mode, true);
  EXPECT_GT(s.gpus[0].collect_ms, 0.0);
  ASSERT_EQ(s.processes.size(), 1u);
  EXPECT_EQ(s.processes[0].pid, 4242);
  EXPECT_EQ(s.processes[0].command, "python3");
  EXPECT_EQ(s.processes[0].vram_mb, 1200);
  EXPECT_EQ(s.processes[0].gpu_index, 0);
  EXPECT_EQ(s.processes[0].backend, "nvidia-smi");
  EXPECT_TRUE(s.source_ms.count("nvidia-smi"));
  EXPECT_TRUE(has_note(s.notes, "NVML unavailable"));
}

TEST_F(SmiFallbackTest, RunsForAnUnansweredNvidiaSpecBesideAnAmdCard) {
  install_fixture(t_ / "sys", "amd-radeon-rx-vega56-lact");
  GpuSpec amd, nv;
  amd.index = 0;
  amd.f.vendor = "amd";
  amd.f.bus_id = "0000:0b:00.0";
  nv.index = 1;
  nv.f.vendor = "nvidia";
  nv.f.bus_id = "0000:01:00.0";
  TelemetrySnapshot s = sample_with("/nonexistent/libnvidia-ml.so.1", {amd, nv});
  EXPECT_TRUE(smi_ran());
  ASSERT_EQ(s.gpus.size(), 2u) << joined(s.notes);
  EXPECT_EQ(s.gpus[0].index, 0);
  EXPECT_EQ(s.gpus[0].backend, "sysfs");
  EXPECT_EQ(s.gpus[1].index, 1);
  EXPECT_EQ(s.gpus[1].backend, "nvidia-smi");
  ASSERT_EQ(s.processes.size(), 1u);
  EXPECT_EQ(s.processes[0].gpu_index, 1);
}

TEST_F(SmiFallbackTest, NotRunWhenNvmlAnswers) {
  TelemetrySnapshot s = sample_with(GREY_FAKE_LIB_DIR "/fake_nvml.so", {});
  EXPECT_FALSE(smi_ran());
  EXPECT_EQ(s.gpus.size(), 2u);
  for (const auto& g : s.gpus) EXPECT_EQ(g.backend, "nvml");
  EXPECT_FALSE(s.source_ms.count("nvidia-smi"));
}

TEST_F(SmiFallbackTest, NotRunWhenSysfsAnswersEveryGpu) {
  install_fixture(t_ / "sys", "amd-radeon-rx-vega56-lact");
  GpuSpec amd;
  amd.index = 2;
  amd.f.vendor = "amd";
  amd.f.bus_id = "0000:0b:00.0";
  amd.f.uuid = "amd-uuid";
  TelemetrySnapshot s = sample_with("/nonexistent/libnvidia-ml.so.1", {amd});
  EXPECT_FALSE(smi_ran());
  ASSERT_EQ(s.gpus.size(), 1u);
  EXPECT_EQ(s.gpus[0].index, 2);  // the spec's index, matched by bus id
  EXPECT_EQ(s.gpus[0].uuid, "amd-uuid");
  EXPECT_EQ(s.gpus[0].temperature_c, 38.0);
  EXPECT_TRUE(s.source_ms.count("sysfs"));
  EXPECT_TRUE(s.source_ms.count("fdinfo"));
}

TEST_F(SmiFallbackTest, NoSpecsAndSysfsAnswersIsEnough) {
  install_fixture(t_ / "sys", "intel-arc-a380-i915-lact");
  TelemetrySnapshot s = sample_with("/nonexistent/libnvidia-ml.so.1", {});
  EXPECT_FALSE(smi_ran());
  ASSERT_EQ(s.gpus.size(), 1u);
  EXPECT_EQ(s.gpus[0].index, 0);
}

TEST_F(SmiFallbackTest, FailingNvidiaSmiIsANote) {
  write_file(t_ / "bin/nvidia-smi",
             "#!/bin/sh\necho 'NVIDIA-SMI has failed because it couldn'\"'\"'t communicate with "
             "the NVIDIA driver.'\nexit 9\n",
             0755);
  TelemetrySnapshot s = sample_with("/nonexistent/libnvidia-ml.so.1", {});
  EXPECT_TRUE(s.gpus.empty());
  EXPECT_TRUE(has_note(s.notes, "nvidia-smi --query-gpu: exit code 9")) << joined(s.notes);
}

TEST_F(SmiFallbackTest, SpecGpuAnsweredByNoBackendIsNoted) {
  fs::remove(t_ / "bin/nvidia-smi");
  GpuSpec nv;
  nv.index = 0;
  nv.f.vendor = "nvidia";
  nv.f.bus_id = "0000:01:00.0";
  TelemetrySnapshot s = sample_with("/nonexistent/libnvidia-ml.so.1", {nv});
  EXPECT_TRUE(s.gpus.empty());
  EXPECT_TRUE(has_note(s.notes, "not found on PATH")) << joined(s.notes);
  EXPECT_TRUE(has_note(s.notes, "GPU 0 (0000:01:00.0) of the spec: no telemetry backend answered"))
      << joined(s.notes);
}

TEST(TelemetryJson, NullsForUnknownAndEveryField) {
  TelemetrySnapshot s;
  s.timestamp = "2026-01-01T00:00:00.000Z";
  GpuSample g;
  g.index = 1;
  g.bus_id = "0000:01:00.0";
  g.temperature_c = 50;
  g.backend = "sysfs";
  s.gpus.push_back(g);
  ProcessSample p;
  p.pid = 9;
  p.command = "x";
  p.vram_mb = 3;
  p.backend = "fdinfo";
  s.processes.push_back(p);
  s.source_ms["sysfs"] = 1.5;
  nlohmann::json j = to_json(s);
  EXPECT_EQ(j["timestamp"], "2026-01-01T00:00:00.000Z");
  EXPECT_EQ(j["gpus"][0]["index"], 1);
  EXPECT_EQ(j["gpus"][0]["temperature_c"], 50.0);
  EXPECT_TRUE(j["gpus"][0]["vram_used_mb"].is_null());
  EXPECT_TRUE(j["gpus"][0]["persistence_mode"].is_null());
  EXPECT_EQ(j["gpus"][0]["stale"], false);
  EXPECT_TRUE(j["gpus"][0]["power_state"].is_null());
  EXPECT_EQ(j["gpus"][0].size(), 17u);
  EXPECT_EQ(j["processes"][0]["vram_mb"], 3);
  EXPECT_TRUE(j["processes"][0]["utilization_pct"].is_null());
  EXPECT_TRUE(j["processes"][0]["gpu_index"].is_null());
  EXPECT_EQ(j["source_ms"]["sysfs"], 1.5);
}

}  // namespace
// ---- One backend interface -------------------------------------------------------------------

// Answers the nvidia-smi fallback's two queries; records them.
class SmiRunner : public Runner {
 public:
  CommandResult run(const std::vector<std::string>& argv, const RunOptions& opt) override {
    calls.push_back(argv);
    timeouts.push_back(opt.timeout);
    CommandResult r;
    r.started = true;
    r.exit_code = 0;
    if (argv.size() > 1 && starts_with(argv[1], "--query-gpu="))
      r.out = "0, 00000000:01:00.0, GPU-1, 1474, 8192, 45, 3, 20.5, 170.00, Enabled\n";
    else
      r.out =
          "gpu_bus_id, pid, process_name, used_gpu_memory [MiB]\n"
          "00000000:01:00.0, 4242, /usr/bin/python3, 1200 MiB\n";
    return r;
  }
  std::vector<std::vector<std::string>> calls;
  std::vector<std::chrono::milliseconds> timeouts;
};

TEST(TelemetryBackend, EveryBackendAnswersThroughTheOneInterface) {
  TempDir t;
  install_fixture(t / "sys", "amd-radeon-rx-vega56-lact");
  auto fs = std::make_shared<RootedFs>(t / "sys", t / "proc");
  auto runner = std::make_shared<SmiRunner>();
  setenv("GREY_NVML_LIBRARY", "/nonexistent/libnvidia-ml.so.1", 1);
  std::vector<std::unique_ptr<TelemetryBackend>> backends;
  backends.push_back(std::make_unique<NvmlTelemetry>(std::make_shared<DlLoader>(), fs));
  backends.push_back(std::make_unique<SysfsTelemetry>(fs));
  backends.push_back(std::make_unique<FdinfoScanner>(fs));
  backends.push_back(std::make_unique<NvidiaSmiTelemetry>(runner, fs, 1500ms));
  std::vector<std::string> names;
  std::map<std::string, BackendSample> got;
  for (auto& b : backends) {
    names.push_back(b->name());
    got[b->name()] = b->sample(1);
  }
  unsetenv("GREY_NVML_LIBRARY");
  EXPECT_EQ(names, (std::vector<std::string>{"nvml", "sysfs", "fdinfo", "nvidia-smi"}));
  // NVML: not there, so unavailable, and the note says why.
  EXPECT_FALSE(got["nvml"].available);
  EXPECT_TRUE(got["nvml"].gpus.empty());
  ASSERT_FALSE(got["nvml"].notes.empty());
  EXPECT_TRUE(starts_with(got["nvml"].notes[0], "NVML unavailable: /nonexistent/libnvidia-ml.so.1"))
      << got["nvml"].notes[0];
  // sysfs: the Vega 56.
  EXPECT_TRUE(got["sysfs"].available);
  ASSERT_EQ(got["sysfs"].gpus.size(), 1u);
  EXPECT_EQ(got["sysfs"].gpus[0].backend, "sysfs");
  // fdinfo: no /proc here, no processes.
  EXPECT_TRUE(got["fdinfo"].available);
  EXPECT_TRUE(got["fdinfo"].processes.empty());
  // nvidia-smi: both queries under the one deadline.
  EXPECT_TRUE(got["nvidia-smi"].available);
  ASSERT_EQ(got["nvidia-smi"].gpus.size(), 1u);
  EXPECT_EQ(got["nvidia-smi"].gpus[0].bus_id, "0000:01:00.0");
  ASSERT_EQ(got["nvidia-smi"].processes.size(), 1u);
  EXPECT_EQ(got["nvidia-smi"].processes[0].pid, 4242);
  ASSERT_EQ(runner->calls.size(), 2u);
  EXPECT_EQ(runner->timeouts[0], 1500ms);
  EXPECT_LE(runner->timeouts[1], 1500ms);
}

TEST(TelemetryBackend, NvidiaSmiThatCannotStartIsUnavailable) {
  class NotFound : public Runner {
   public:
    CommandResult run(const std::vector<std::string>&, const RunOptions&) override {
      CommandResult r;
      r.error = "not found on PATH";
      return r;
    }
  };
  TempDir t;
  NvidiaSmiTelemetry b(std::make_shared<NotFound>(),
                       std::make_shared<RootedFs>(t / "sys", t / "proc"), 1000ms);
  BackendSample s = b.sample(1);
  EXPECT_FALSE(s.available);
  EXPECT_TRUE(s.gpus.empty());
  ASSERT_EQ(s.notes.size(), 1u);
  EXPECT_EQ(s.notes[0], "nvidia-smi --query-gpu: not found on PATH");
}

}  // namespace grey
