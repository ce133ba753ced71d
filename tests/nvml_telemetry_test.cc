// NVML telemetry through the collector, against tests/fakes/fake_nvml.c (its script, its
// blocking temperature call, its set-calls).
#include <dirent.h>
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include "telemetry/telemetry.h"
#include "test_util.h"
#include "util/strings.h"

#ifndef GREY_FAKE_LIB_DIR
#error "GREY_FAKE_LIB_DIR must name the directory holding fake_nvml.so"
#endif

namespace grey {
namespace {

using namespace std::chrono_literals;
using test::TempDir;
using test::write_file;
using Clock = std::chrono::steady_clock;

const char* kFake = GREY_FAKE_LIB_DIR "/fake_nvml.so";

// The fake's own entry points (same handle as the collector's: same path).
template <typename F>
F fake_fn(const char* name) {
  void* h = dlopen(kFake, RTLD_NOW | RTLD_LOCAL);
  EXPECT_NE(h, nullptr) << dlerror();
  if (!h) return nullptr;
  auto f = reinterpret_cast<F>(dlsym(h, name));
  EXPECT_NE(f, nullptr) << name;
  return f;  // the handle stays open: the fake's state lives as long as the test binary
}

int thread_count() {
  int n = 0;
  DIR* d = opendir("/proc/self/task");
  if (!d) return -1;
  while (dirent* e = readdir(d))
    if (e->d_name[0] != '.') ++n;
  closedir(d);
  return n;
}

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
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

class NvmlTelemetryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* v :
         {"FAKE_NVML_GPUS", "FAKE_NVML_INIT_ERROR", "FAKE_NVML_HANG_INIT",
          "FAKE_NVML_UNSUPPORTED_TEMP_THRESHOLDS", "FAKE_NVML_LOST_GPU", "FAKE_NVML_SCRIPT",
          "FAKE_NVML_BLOCK_TEMP_AT_TICK", "FAKE_NVML_RECORD", "FAKE_NVML_DENY_SETS"})
      unsetenv(v);
    setenv("GREY_NVML_LIBRARY", kFake, 1);
    fake_fn<void (*)()>("fake_nvml_reset")();
    fs_ = std::make_shared<RootedFs>(tmp_ / "sys", tmp_ / "proc");
  }
  void TearDown() override {
    for (const char* v : {"GREY_NVML_LIBRARY", "FAKE_NVML_SCRIPT", "FAKE_NVML_BLOCK_TEMP_AT_TICK",
                          "FAKE_NVML_RECORD", "FAKE_NVML_DENY_SETS", "FAKE_NVML_HANG_INIT"})
      unsetenv(v);
  }
  std::unique_ptr<TelemetryCollector> make(const std::vector<GpuSpec>& specs = {},
                                           std::chrono::milliseconds deadline = 2000ms) {
    return std::make_unique<TelemetryCollector>(fs_, std::make_shared<DlLoader>(), nullptr, specs,
                                                deadline);
  }

  TempDir tmp_;
  std::shared_ptr<RootedFs> fs_;
};

TEST_F(NvmlTelemetryTest, BuiltInValuesOfBothGpus) {
  auto c = make();
  TelemetrySnapshot s = c->sample();
  ASSERT_EQ(s.gpus.size(), 2u) << joined(s.notes);
  EXPECT_FALSE(s.timestamp.empty());
  EXPECT_TRUE(ends_with(s.timestamp, "Z"));
  EXPECT_TRUE(s.source_ms.count("nvml"));
  const GpuSample& a = s.gpus[0];
  EXPECT_EQ(a.backend, "nvml");
  EXPECT_FALSE(a.stale);
  EXPECT_EQ(a.index, 0);
  EXPECT_EQ(a.bus_id, "0000:1b:00.0");
  EXPECT_EQ(a.uuid, "GPU-3f2a7c1e-0000-4000-8000-000000000001");
  EXPECT_EQ(a.vram_total_mb, 81559);
  EXPECT_EQ(a.vram_used_mb, 329 - 64);  // _v2: the 64 MiB the fake reserves are not "used"
  EXPECT_EQ(a.temperature_c, 34.0);
  EXPECT_DOUBLE_EQ(a.power_w.value_or(-1), 69.85);
  EXPECT_EQ(a.power_limit_w, 700.0);
  EXPECT_EQ(a.power_limit_min_w, 200.0);
  EXPECT_EQ(a.power_limit_max_w, 700.0);
  EXPECT_EQ(a.persistence_mode, true);
  EXPECT_FALSE(a.utilization_pct);  // the default fake exports no nvmlDeviceGetUtilizationRates
  EXPECT_TRUE(a.notes.empty()) << joined(a.notes);
  const GpuSample& b = s.gpus[1];
  EXPECT_EQ(b.bus_id, "0000:41:00.0");
  EXPECT_EQ(b.vram_total_mb, 40960);
  EXPECT_EQ(b.vram_used_mb, 0);
  EXPECT_EQ(b.temperature_c, 29.0);
  EXPECT_EQ(b.power_limit_w, 400.0);
  EXPECT_EQ(b.persistence_mode, false);
  EXPECT_TRUE(s.processes.empty());
  EXPECT_TRUE(has_note(s.notes, "nvmlDeviceGetUtilizationRates not found in")) << joined(s.notes);
  // Symbol notes come once, not every sample.
  TelemetrySnapshot s2 = c->sample();
  EXPECT_FALSE(has_note(s2.notes, "nvmlDeviceGetUtilizationRates")) << joined(s2.notes);
  EXPECT_EQ(s2.gpus.size(), 2u);
}

TEST_F(NvmlTelemetryTest, InitOnceShutdownInDestructor) {
  auto inits = fake_fn<int (*)()>("fake_nvml_init_count");
  auto shutdowns = fake_fn<int (*)()>("fake_nvml_shutdown_count");
  int i0 = inits(), s0 = shutdowns();
  {
    auto c = make();
    for (int i = 0; i < 3; ++i) EXPECT_EQ(c->sample().gpus.size(), 2u);
    EXPECT_EQ(inits(), i0 + 1);
    EXPECT_EQ(shutdowns(), s0);
  }
  EXPECT_EQ(shutdowns(), s0 + 1);
}

TEST_F(NvmlTelemetryTest, ScriptDrivesTemperatureAndAProcessGrowingPastItsCap) {
  std::string script = tmp_ / "script.txt";
  write_file(script,
             "# tick T gpu temp_c used_mib util_pct power_mw\n"
             "tick 0 0 40 1000 10 100000\n"
             "tick 2 0 85 5000 90 650000\n"
             "tick 4 0 60 2000 20 200000\n"
             "proc 0 0 4242 500 trainer\n"
             "proc 3 0 4242 9000 trainer\n"
             "proc 5 0 4242 -1 trainer\n"
             "proc 1 1 77 300 eval\n"
             "putil 1 0 4242 75\n");
  setenv("FAKE_NVML_SCRIPT", script.c_str(), 1);
  auto c = make();
  const double temps[] = {40, 40, 85, 85, 60, 60};
  const int64_t used[] = {1000 - 64, 1000 - 64, 5000 - 64, 5000 - 64, 2000 - 64, 2000 - 64};
  const double power[] = {100, 100, 650, 650, 200, 200};
  for (int tick = 0; tick < 6; ++tick) {
    TelemetrySnapshot s = c->sample();
    ASSERT_EQ(s.gpus.size(), 2u) << "tick " << tick << joined(s.notes);
    EXPECT_EQ(s.gpus[0].temperature_c, temps[tick]) << "tick " << tick;
    EXPECT_EQ(s.gpus[0].vram_used_mb, used[tick]) << "tick " << tick;
    EXPECT_DOUBLE_EQ(s.gpus[0].power_w.value_or(-1), power[tick]) << "tick " << tick;
    EXPECT_EQ(s.gpus[1].temperature_c, 29.0);  // no script line: the built-in value
    const ProcessSample* trainer = nullptr;
    const ProcessSample* eval = nullptr;
    for (const auto& p : s.processes) {
      if (p.pid == 4242) trainer = &p;
      if (p.pid == 77) eval = &p;
    }
    if (tick < 5) {
      ASSERT_TRUE(trainer) << "tick " << tick;
      EXPECT_EQ(trainer->vram_mb, tick < 3 ? 500 : 9000) << "tick " << tick;
      EXPECT_EQ(trainer->command, "trainer");  // no /proc/4242 here: NVML's name
      EXPECT_EQ(trainer->gpu_bus_id, "0000:1b:00.0");
      EXPECT_EQ(trainer->gpu_index, 0);
      EXPECT_EQ(trainer->backend, "nvml");
      // Tick 0: NOT_FOUND (no sample) is unknown, not idle 0%; from tick 1 the scripted 75 %.
      if (tick == 0)
        EXPECT_FALSE(trainer->utilization_pct) << "no sample is not 0%";
      else
        EXPECT_EQ(trainer->utilization_pct, 75.0) << "tick " << tick;
    } else {
      EXPECT_FALSE(trainer) << "the process is gone at tick 5";
    }
    if (tick >= 1) {
      ASSERT_TRUE(eval) << "tick " << tick;
      EXPECT_EQ(eval->gpu_index, 1);
      EXPECT_EQ(eval->vram_mb, 300);
    } else {
      EXPECT_FALSE(eval);
    }
  }
}

TEST_F(NvmlTelemetryTest, ProcessIdentityFromProc) {
  std::string script = tmp_ / "script.txt";
  write_file(script, "proc 0 0 4242 500 trainer\n");
  write_file(tmp_ / "proc/4242/comm", "python3\n");
  write_file(tmp_ / "proc/4242/status", "Name:\tpython3\nUid:\t0\t0\t0\t0\n");
  setenv("FAKE_NVML_SCRIPT", script.c_str(), 1);
  auto c = make();
  TelemetrySnapshot s = c->sample();
  ASSERT_EQ(s.processes.size(), 1u);
  EXPECT_EQ(s.processes[0].command, "python3");
  EXPECT_EQ(s.processes[0].user, "root");
}

// A pid listed in consecutive samples keeps the identity read when it appeared (no /proc
// reads per tick); once it leaves the list it is read afresh when it comes back.
TEST_F(NvmlTelemetryTest, ProcessIdentityIsReadOncePerAppearance) {
  std::string script = tmp_ / "script.txt";
  write_file(script,
             "proc 0 0 4242 500 trainer\n"
             "proc 2 0 4242 -1 trainer\n"
             "proc 3 0 4242 700 trainer\n");
  write_file(tmp_ / "proc/4242/comm", "python3\n");
  write_file(tmp_ / "proc/4242/status", "Name:\tpython3\nUid:\t0\t0\t0\t0\n");
  setenv("FAKE_NVML_SCRIPT", script.c_str(), 1);
  auto c = make();
  TelemetrySnapshot s0 = c->sample();  // tick 0: read from /proc
  ASSERT_EQ(s0.processes.size(), 1u);
  EXPECT_EQ(s0.processes[0].command, "python3");
  write_file(tmp_ / "proc/4242/comm", "other\n");
  TelemetrySnapshot s1 = c->sample();  // tick 1: still listed, not read again
  ASSERT_EQ(s1.processes.size(), 1u);
  EXPECT_EQ(s1.processes[0].command, "python3");
  EXPECT_EQ(s1.processes[0].user, "root");
  EXPECT_TRUE(c->sample().processes.empty());  // tick 2: gone
  TelemetrySnapshot s3 = c->sample();          // tick 3: back (a new process): read afresh
  ASSERT_EQ(s3.processes.size(), 1u);
  EXPECT_EQ(s3.processes[0].command, "other");
  EXPECT_EQ(s3.processes[0].vram_mb, 700);
}

TEST_F(NvmlTelemetryTest, SetCallsAreStoredRecordedAndReadBack) {
  std::string rec = tmp_ / "record.txt";
  setenv("FAKE_NVML_RECORD", rec.c_str(), 1);
  using SetLimit = int (*)(void*, unsigned);
  using SetMode = int (*)(void*, int);
  using Handle = int (*)(unsigned, void**);
  auto handle = fake_fn<Handle>("nvmlDeviceGetHandleByIndex_v2");
  auto set_limit = fake_fn<SetLimit>("nvmlDeviceSetPowerManagementLimit");
  auto set_mode = fake_fn<SetMode>("nvmlDeviceSetPersistenceMode");
  void* d1 = nullptr;
  ASSERT_EQ(handle(1, &d1), 0);
  EXPECT_EQ(set_limit(d1, 250000), 0);
  EXPECT_EQ(set_limit(d1, 50000), 2);  // below the 100 W minimum: refused, not recorded
  EXPECT_EQ(set_mode(d1, 1), 0);
  auto c = make();
  TelemetrySnapshot s = c->sample();
  ASSERT_EQ(s.gpus.size(), 2u);
  EXPECT_EQ(s.gpus[1].power_limit_w, 250.0);
  EXPECT_EQ(s.gpus[1].persistence_mode, true);
  EXPECT_EQ(s.gpus[0].power_limit_w, 700.0);
  setenv("FAKE_NVML_DENY_SETS", "1", 1);
  EXPECT_EQ(set_limit(d1, 300000), 4);  // NVML_ERROR_NO_PERMISSION
  EXPECT_EQ(c->sample().gpus[1].power_limit_w, 250.0);
  EXPECT_EQ(test::read_file(rec),
            "set nvmlDeviceSetPowerManagementLimit 1 250000\n"
            "set nvmlDeviceSetPersistenceMode 1 1\n"
            "denied nvmlDeviceSetPowerManagementLimit 1 300000\n");
}

TEST_F(NvmlTelemetryTest, SpecsGiveIndicesByBusId) {
  GpuSpec a;
  a.index = 5;
  a.f.vendor = "nvidia";
  a.f.bus_id = "0000:41:00.0";
  auto c = make({a});
  TelemetrySnapshot s = c->sample();
  ASSERT_EQ(s.gpus.size(), 2u);
  EXPECT_EQ(s.gpus[0].index, 5);
  EXPECT_EQ(s.gpus[0].bus_id, "0000:41:00.0");
  EXPECT_EQ(s.gpus[1].index, 6);
  EXPECT_EQ(s.gpus[1].bus_id, "0000:1b:00.0");
  EXPECT_TRUE(has_note(s.gpus[1].notes, "not in the saved GPU spec (bus 0000:1b:00.0)"));
}

TEST_F(NvmlTelemetryTest, MissingLibraryNotedOnceAndNoGpus) {
  setenv("GREY_NVML_LIBRARY", "/nonexistent/libnvidia-ml.so.1", 1);
  auto c = make();
  TelemetrySnapshot s = c->sample();
  EXPECT_TRUE(s.gpus.empty());
  EXPECT_TRUE(has_note(s.notes, "NVML unavailable: /nonexistent/libnvidia-ml.so.1: "))
      << joined(s.notes);
  EXPECT_FALSE(has_note(c->sample().notes, "NVML unavailable"));
}

TEST_F(NvmlTelemetryTest, InitErrorIsUnavailable) {
  setenv("FAKE_NVML_INIT_ERROR", "9", 1);
  auto c = make();
  TelemetrySnapshot s = c->sample();
  unsetenv("FAKE_NVML_INIT_ERROR");
  EXPECT_TRUE(s.gpus.empty());
  EXPECT_TRUE(
      has_note(s.notes, "NVML unavailable: nvmlInit_v2 failed: NVML_ERROR_DRIVER_NOT_LOADED (9)"))
      << joined(s.notes);
}

// The stuck-call tests leave a thread blocked in the fake for the rest of the binary's life
// (that is what a stuck driver call does); they come last.
TEST_F(NvmlTelemetryTest, ZStuckCallMarksStaleWithinTheDeadlineWithoutPileUp) {
  setenv("FAKE_NVML_BLOCK_TEMP_AT_TICK", "2", 1);
  auto c = make({}, 600ms);
  for (int tick = 0; tick < 2; ++tick) {
    TelemetrySnapshot s = c->sample();
    ASSERT_EQ(s.gpus.size(), 2u);
    EXPECT_FALSE(s.gpus[0].stale);
  }
  int threads = thread_count();
  auto t0 = Clock::now();
  TelemetrySnapshot s = c->sample();  // tick 2: GPU 0's temperature call never returns
  double waited = ms_since(t0);
  EXPECT_GE(waited, 590.0);
  ASSERT_EQ(s.gpus.size(), 2u);
  for (const auto& g : s.gpus) {
    EXPECT_TRUE(g.stale);
    EXPECT_EQ(g.backend, "nvml");
    EXPECT_FALSE(g.temperature_c);
    EXPECT_FALSE(g.vram_used_mb);
    EXPECT_TRUE(has_note(g.notes, "NVML did not answer within 600 ms")) << joined(g.notes);
  }
  EXPECT_EQ(s.gpus[0].bus_id, "0000:1b:00.0");  // the GPUs known from the last answer
  EXPECT_EQ(s.gpus[1].uuid, "GPU-5b8d0c2a-0000-4000-8000-000000000002");
  EXPECT_TRUE(has_note(s.notes, "NVML did not answer within 600 ms"));
  // Later samples: stale at once, and no new thread per sample.
  for (int i = 0; i < 5; ++i) {
    TelemetrySnapshot l = c->sample();
    ASSERT_EQ(l.gpus.size(), 2u);
    EXPECT_TRUE(l.gpus[0].stale);
    EXPECT_TRUE(has_note(l.notes, "(its previous call is still running)")) << joined(l.notes);
  }
  EXPECT_EQ(thread_count(), threads);
  // Destroying the collector with a stuck worker returns (it would hang joining it).
  c.reset();
}

TEST_F(NvmlTelemetryTest, ZHungInitMarksSpecGpusStale) {
  setenv("FAKE_NVML_HANG_INIT", "1", 1);
  GpuSpec a;
  a.index = 0;
  a.f.vendor = "nvidia";
  a.f.bus_id = "0000:1b:00.0";
  a.f.uuid = "GPU-x";
  auto c = make({a}, 200ms);
  TelemetrySnapshot s = c->sample();
  ASSERT_EQ(s.gpus.size(), 1u);
  EXPECT_TRUE(s.gpus[0].stale);
  EXPECT_EQ(s.gpus[0].bus_id, "0000:1b:00.0");
  EXPECT_EQ(s.gpus[0].uuid, "GPU-x");
  EXPECT_EQ(s.gpus[0].index, 0);
  // A stuck NVML is not "unavailable": no nvidia-smi fallback is attempted (no runner needed).
  EXPECT_FALSE(s.source_ms.count("nvidia-smi"));
}

// SPEC §9: while every NVIDIA GPU of the spec is runtime-suspended, NVML is never
// initialised (nvmlInit attaches every GPU, which wakes them); the collector reads only
// runtime_status and reports them suspended. Once they wake by themselves they are sampled
// through NVML again.
TEST_F(NvmlTelemetryTest, SuspendedNvidiaGpusAreNotWokenAndAreSampledAfterTheyWake) {
  auto inits = fake_fn<int (*)()>("fake_nvml_init_count");
  int i0 = inits();
  std::vector<GpuSpec> specs(2);
  const char* buses[] = {"0000:1b:00.0", "0000:41:00.0"};
  for (int k = 0; k < 2; ++k) {
    specs[k].index = k;
    specs[k].f.vendor = "nvidia";
    specs[k].f.bus_id = buses[k];
  }
  auto status = [&](const std::string& v) {
    for (const char* b : buses)
      write_file(tmp_ / ("sys/bus/pci/devices/" + std::string(b) + "/power/runtime_status"),
                 v + "\n");
  };
  status("suspended");
  auto c = make(specs);
  for (int round = 0; round < 2; ++round) {
    TelemetrySnapshot s = c->sample();
    EXPECT_EQ(inits(), i0) << "nvmlInit was called while every NVIDIA GPU slept";
    EXPECT_FALSE(s.source_ms.count("nvml"));
    ASSERT_EQ(s.gpus.size(), 2u) << joined(s.notes);
    for (const auto& g : s.gpus) {
      EXPECT_EQ(g.power_state, "suspended");
      EXPECT_FALSE(g.vram_used_mb);
      EXPECT_FALSE(g.stale);
    }
  }
  status("active");
  TelemetrySnapshot s = c->sample();
  EXPECT_EQ(inits(), i0 + 1);
  ASSERT_EQ(s.gpus.size(), 2u) << joined(s.notes);
  EXPECT_EQ(s.gpus[0].backend, "nvml");
  EXPECT_EQ(s.gpus[0].vram_total_mb, 81559);
  EXPECT_NE(s.gpus[0].power_state, "suspended");
}

}  // namespace
}  // namespace grey
