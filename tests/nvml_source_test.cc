// The NVML probe against tests/fakes/fake_nvml.c (built as <build>/fakes/fake_nvml.so).
#include "sources/nvml_source.h"

#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "util/strings.h"

#ifndef GREY_FAKE_LIB_DIR
#error "GREY_FAKE_LIB_DIR must name the directory holding fake_nvml.so"
#endif

namespace grey {
namespace {

const char* kFake = GREY_FAKE_LIB_DIR "/fake_nvml.so";

bool has_note(const std::vector<std::string>& notes, const std::string& text) {
  for (const auto& n : notes) {
    if (n == text) return true;
  }
  return false;
}

std::string joined(const std::vector<std::string>& notes) {
  std::string s;
  for (const auto& n : notes) s += "  [" + n + "]\n";
  return s;
}

class NvmlSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* v : {"FAKE_NVML_GPUS", "FAKE_NVML_INIT_ERROR", "FAKE_NVML_HANG_INIT",
                          "FAKE_NVML_UNSUPPORTED_TEMP_THRESHOLDS", "FAKE_NVML_LOST_GPU"}) {
      unsetenv(v);
    }
    setenv("GREY_NVML_LIBRARY", kFake, 1);
    ctx_.loader = &loader_;
  }
  void TearDown() override { unsetenv("GREY_NVML_LIBRARY"); }

  SourceReport collect() { return make_nvml_source()->collect(ctx_); }

  // Counters the fake exports besides the NVML API.
  static int fake_counter(const char* sym) {
    void* h = dlopen(kFake, RTLD_NOW | RTLD_LOCAL);
    EXPECT_NE(h, nullptr) << dlerror();
    if (!h) return -1;
    auto fn = reinterpret_cast<int (*)()>(dlsym(h, sym));
    EXPECT_NE(fn, nullptr) << sym;
    int v = fn ? fn() : -1;
    dlclose(h);
    return v;
  }

  DlLoader loader_;
  SourceContext ctx_;
};

TEST_F(NvmlSourceTest, NameAuthority) {
  auto s = make_nvml_source();
  EXPECT_EQ(s->name(), "nvml");
  EXPECT_EQ(s->authority(), 100);
}

TEST_F(NvmlSourceTest, ReadsEveryFieldOfBothFakeGpus) {
  int inits = fake_counter("fake_nvml_init_count");
  int shutdowns = fake_counter("fake_nvml_shutdown_count");
  SourceReport r = collect();
  EXPECT_EQ(r.source, "nvml");
  EXPECT_EQ(r.status, SourceStatus::ok) << joined(r.notes);
  EXPECT_EQ(r.what, kFake);
  EXPECT_GE(r.duration_ms, 0.0);
  ASSERT_EQ(r.devices.size(), 2u);

  const GpuFields& a = r.devices[0].f;
  EXPECT_EQ(a.vendor, "nvidia");
  EXPECT_EQ(a.kernel_driver, "nvidia");
  EXPECT_EQ(a.model, "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(a.uuid, "GPU-3f2a7c1e-0000-4000-8000-000000000001");
  EXPECT_EQ(a.bus_id, "0000:1b:00.0");
  EXPECT_EQ(a.pci_vendor_id, 0x10deu);
  EXPECT_EQ(a.pci_device_id, 0x2330u);
  EXPECT_EQ(a.driver_version, "550.54.15");
  EXPECT_EQ(a.cuda_version, "12.4");
  EXPECT_EQ(a.vram_total_mb, 81559);
  // nvmlDeviceGetMemoryInfo_v2: "used" without the 64 MiB the driver reserves (v1 says 329),
  // as nvidia-smi reports it; free is the same either way.
  EXPECT_EQ(a.vram_used_mb, 265);
  EXPECT_EQ(a.vram_free_mb, 81230);
  EXPECT_EQ(a.compute_capability, "9.0");
  EXPECT_EQ(a.clock_mhz, 1980);
  EXPECT_EQ(a.memory_bus_width, 5120);
  EXPECT_EQ(a.pcie_gen, 5);
  EXPECT_EQ(a.pcie_width, 16);
  EXPECT_EQ(a.thermal.slowdown_c, 90);
  EXPECT_EQ(a.thermal.shutdown_c, 92);
  EXPECT_EQ(a.thermal.max_operating_c, 87);
  EXPECT_EQ(a.temperature_c, 34.0);
  EXPECT_EQ(a.power_limit_w, 700.0);
  EXPECT_EQ(a.power_limit_min_w, 200.0);
  EXPECT_EQ(a.power_limit_max_w, 700.0);
  EXPECT_EQ(a.power_limit_default_w, 700.0);
  EXPECT_DOUBLE_EQ(a.power_draw_w.value_or(-1), 69.85);
  EXPECT_EQ(a.mig_mode, false);
  EXPECT_EQ(a.persistence_mode, true);
  EXPECT_EQ(a.tool_index, 0);
  EXPECT_FALSE(a.utilization_pct.has_value());  // the fake has no nvmlDeviceGetUtilizationRates
  EXPECT_FALSE(a.num_sm.has_value());           // SM count is not in NVML
  EXPECT_FALSE(a.numa_node.has_value());
  EXPECT_TRUE(r.devices[0].notes.empty()) << joined(r.devices[0].notes);
  EXPECT_FALSE(r.devices[0].software_reason.has_value());

  const GpuFields& b = r.devices[1].f;
  EXPECT_EQ(b.vendor, "nvidia");
  EXPECT_EQ(b.kernel_driver, "nvidia");
  EXPECT_EQ(b.model, "NVIDIA A100-SXM4-40GB");
  EXPECT_EQ(b.uuid, "GPU-5b8d0c2a-0000-4000-8000-000000000002");
  EXPECT_EQ(b.bus_id, "0000:41:00.0");
  EXPECT_EQ(b.pci_vendor_id, 0x10deu);
  EXPECT_EQ(b.pci_device_id, 0x20b0u);
  EXPECT_EQ(b.driver_version, "550.54.15");
  EXPECT_EQ(b.cuda_version, "12.4");
  EXPECT_EQ(b.vram_total_mb, 40960);
  EXPECT_EQ(b.vram_used_mb, 0);
  EXPECT_EQ(b.vram_free_mb, 40960);
  EXPECT_EQ(b.compute_capability, "8.0");
  EXPECT_EQ(b.clock_mhz, 1410);
  EXPECT_EQ(b.memory_bus_width, 5120);
  EXPECT_EQ(b.pcie_gen, 4);
  EXPECT_EQ(b.pcie_width, 16);
  EXPECT_EQ(b.thermal.slowdown_c, 87);
  EXPECT_EQ(b.thermal.shutdown_c, 90);
  EXPECT_EQ(b.thermal.max_operating_c, 85);
  EXPECT_EQ(b.temperature_c, 29.0);
  EXPECT_EQ(b.power_limit_w, 400.0);
  EXPECT_EQ(b.power_limit_min_w, 100.0);
  EXPECT_EQ(b.power_limit_max_w, 400.0);
  EXPECT_EQ(b.power_limit_default_w, 400.0);
  EXPECT_DOUBLE_EQ(b.power_draw_w.value_or(-1), 55.12);
  EXPECT_EQ(b.mig_mode, true);
  EXPECT_EQ(b.persistence_mode, false);
  EXPECT_EQ(b.tool_index, 1);
  EXPECT_TRUE(r.devices[1].notes.empty()) << joined(r.devices[1].notes);

  // The one symbol the fake lacks is named; nothing else is reported.
  ASSERT_EQ(r.notes.size(), 1u) << joined(r.notes);
  EXPECT_EQ(r.notes[0], std::string("nvmlDeviceGetUtilizationRates not found in ") + kFake +
                            "; utilization unknown");

  // NVML was shut down after use.
  EXPECT_EQ(fake_counter("fake_nvml_init_count"), inits + 1);
  EXPECT_EQ(fake_counter("fake_nvml_shutdown_count"), shutdowns + 1);
}

TEST_F(NvmlSourceTest, MemoryFallsBackToV1WhenV2IsRefused) {
  setenv("FAKE_NVML_NO_MEMORY_V2", "1", 1);
  SourceReport r = collect();
  unsetenv("FAKE_NVML_NO_MEMORY_V2");
  ASSERT_EQ(r.devices.size(), 2u);
  EXPECT_EQ(r.devices[0].f.vram_total_mb, 81559);
  EXPECT_EQ(r.devices[0].f.vram_used_mb, 329);  // v1 counts the reserved memory as used
  EXPECT_EQ(r.devices[0].f.vram_free_mb, 81230);
}

// SPEC §9: with MIG on, GPU 0's MIG device handles become partitions (GI/CI ids, MIG UUID,
// the instance's own memory); the GPU count stays 2.
TEST_F(NvmlSourceTest, MigInstancesBecomePartitions) {
  setenv("FAKE_NVML_MIG", "1", 1);
  SourceReport r = collect();
  unsetenv("FAKE_NVML_MIG");
  ASSERT_EQ(r.devices.size(), 2u) << joined(r.devices[0].notes);
  const auto& f = r.devices[0].f;
  EXPECT_EQ(f.mig_mode, true);
  ASSERT_EQ(f.partitions.size(), 2u) << joined(r.devices[0].notes);
  EXPECT_EQ(f.partitions[0].gi_id, 1);
  EXPECT_EQ(f.partitions[0].ci_id, 0);
  EXPECT_EQ(f.partitions[0].memory_total_mb, 40192);
  EXPECT_EQ(f.partitions[1].gi_id, 2);
  EXPECT_EQ(f.partitions[1].memory_total_mb, 9856);
  EXPECT_EQ(f.partitions[1].uuid, "MIG-4f2a0000-0000-4000-8000-000000000001");
  EXPECT_TRUE(r.devices[1].f.partitions.empty());
  // MIG off (the default): no partitions.
  SourceReport off = collect();
  EXPECT_TRUE(off.devices[0].f.partitions.empty());
}

TEST_F(NvmlSourceTest, CudaVersionComesThroughTheUnversionedFallback) {
  // The fake exports only nvmlSystemGetCudaDriverVersion: the _v2 lookup must fall back.
  void* h = dlopen(kFake, RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(dlsym(h, "nvmlSystemGetCudaDriverVersion_v2"), nullptr);
  EXPECT_NE(dlsym(h, "nvmlSystemGetCudaDriverVersion"), nullptr);
  dlclose(h);
  SourceReport r = collect();
  ASSERT_FALSE(r.devices.empty());
  EXPECT_EQ(r.devices[0].f.cuda_version, "12.4");
}

TEST_F(NvmlSourceTest, ZeroGpusIsNoDevices) {
  setenv("FAKE_NVML_GPUS", "0", 1);
  SourceReport r = collect();
  EXPECT_EQ(r.status, SourceStatus::no_devices);
  EXPECT_TRUE(r.devices.empty());
  EXPECT_TRUE(has_note(r.notes, "nvmlDeviceGetCount_v2 reported 0 devices")) << joined(r.notes);
}

TEST_F(NvmlSourceTest, ThreeGpusAreDistinct) {
  setenv("FAKE_NVML_GPUS", "3", 1);
  SourceReport r = collect();
  ASSERT_EQ(r.devices.size(), 3u);
  EXPECT_EQ(r.devices[2].f.bus_id, "0000:42:00.0");
  EXPECT_EQ(r.devices[2].f.tool_index, 2);
  EXPECT_NE(r.devices[2].f.uuid, r.devices[1].f.uuid);
}

TEST_F(NvmlSourceTest, InitDriverNotLoaded) {
  int shutdowns = fake_counter("fake_nvml_shutdown_count");
  setenv("FAKE_NVML_INIT_ERROR", "9", 1);
  SourceReport r = collect();
  EXPECT_EQ(r.status, SourceStatus::failed);
  EXPECT_TRUE(r.devices.empty());
  ASSERT_EQ(r.notes.size(), 1u) << joined(r.notes);
  EXPECT_EQ(r.notes[0], "nvmlInit_v2 failed: NVML_ERROR_DRIVER_NOT_LOADED (9): Driver Not Loaded");
  // No shutdown without a successful init.
  EXPECT_EQ(fake_counter("fake_nvml_shutdown_count"), shutdowns);
}

TEST_F(NvmlSourceTest, InitVersionMismatch) {
  setenv("FAKE_NVML_INIT_ERROR", "18", 1);
  SourceReport r = collect();
  EXPECT_EQ(r.status, SourceStatus::failed);
  EXPECT_TRUE(has_note(r.notes,
                       "nvmlInit_v2 failed: NVML_ERROR_LIB_RM_VERSION_MISMATCH (18): "
                       "Driver/library version mismatch"))
      << joined(r.notes);
}

TEST_F(NvmlSourceTest, InitUnknownCode) {
  setenv("FAKE_NVML_INIT_ERROR", "4242", 1);
  SourceReport r = collect();
  EXPECT_EQ(r.status, SourceStatus::failed);
  EXPECT_TRUE(has_note(r.notes, "nvmlInit_v2 failed: unknown NVML error (4242): Unknown Error"))
      << joined(r.notes);
}

TEST_F(NvmlSourceTest, UnsupportedThresholdsLeaveThermalUnknownAndGoOn) {
  setenv("FAKE_NVML_UNSUPPORTED_TEMP_THRESHOLDS", "1", 1);
  SourceReport r = collect();
  EXPECT_EQ(r.status, SourceStatus::ok);
  ASSERT_EQ(r.devices.size(), 2u);
  for (const auto& o : r.devices) {
    EXPECT_TRUE(o.f.thermal.empty());
    EXPECT_EQ(o.notes.size(), 3u) << joined(o.notes);
    for (const char* k : {"SLOWDOWN", "SHUTDOWN", "GPU_MAX"}) {
      EXPECT_TRUE(has_note(o.notes, std::string("nvmlDeviceGetTemperatureThreshold(") + k +
                                        ") failed: NVML_ERROR_NOT_SUPPORTED (3): Not Supported"))
          << k << "\n"
          << joined(o.notes);
    }
    // Everything after the thresholds was still read.
    EXPECT_TRUE(o.f.temperature_c.has_value());
    EXPECT_TRUE(o.f.power_limit_w.has_value());
    EXPECT_TRUE(o.f.persistence_mode.has_value());
  }
}

TEST_F(NvmlSourceTest, LostGpuIsSkippedAndTheOtherIsRead) {
  setenv("FAKE_NVML_LOST_GPU", "0", 1);
  SourceReport r = collect();
  EXPECT_EQ(r.status, SourceStatus::ok);
  ASSERT_EQ(r.devices.size(), 1u);
  EXPECT_EQ(r.devices[0].f.model, "NVIDIA A100-SXM4-40GB");
  EXPECT_EQ(r.devices[0].f.tool_index, 1);
  EXPECT_TRUE(has_note(r.notes,
                       "nvmlDeviceGetHandleByIndex_v2(0) failed: NVML_ERROR_GPU_IS_LOST (15): GPU "
                       "is lost; device 0 skipped"))
      << joined(r.notes);
}

TEST_F(NvmlSourceTest, EveryGpuLostIsFailed) {
  setenv("FAKE_NVML_GPUS", "1", 1);
  setenv("FAKE_NVML_LOST_GPU", "0", 1);
  SourceReport r = collect();
  EXPECT_EQ(r.status, SourceStatus::failed);
  EXPECT_TRUE(r.devices.empty());
}

TEST_F(NvmlSourceTest, MissingLibraryIsMissingWithDlerror) {
  const std::string path = "/nonexistent/dir/libnvidia-ml.so.1";
  setenv("GREY_NVML_LIBRARY", path.c_str(), 1);
  SourceReport r = collect();
  EXPECT_EQ(r.status, SourceStatus::missing);
  EXPECT_EQ(r.what, path);
  ASSERT_EQ(r.notes.size(), 1u);
  EXPECT_TRUE(starts_with(r.notes[0], path + ": ")) << r.notes[0];
  EXPECT_TRUE(contains(r.notes[0], "cannot open shared object file")) << r.notes[0];
}

TEST_F(NvmlSourceTest, NotAnNvmlLibraryIsFailed) {
  // A loadable library without the NVML entry points (the fake CUDA driver).
  setenv("GREY_NVML_LIBRARY", GREY_FAKE_LIB_DIR "/fake_cuda.so", 1);
  SourceReport r = collect();
  EXPECT_EQ(r.status, SourceStatus::failed);
  EXPECT_TRUE(has_note(r.notes, std::string("nvmlInit_v2/nvmlInit not found in ") +
                                    GREY_FAKE_LIB_DIR "/fake_cuda.so; everything unknown"))
      << joined(r.notes);
}

TEST_F(NvmlSourceTest, ReplayIsSkipped) {
  ctx_.replay_dir = "/tmp";
  SourceReport r = collect();
  EXPECT_EQ(r.status, SourceStatus::skipped);
  EXPECT_TRUE(r.devices.empty());
  EXPECT_EQ(r.notes, std::vector<std::string>{"library probes do not run in replay"});
}

}  // namespace
}  // namespace grey
