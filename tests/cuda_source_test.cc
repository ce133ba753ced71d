// The CUDA driver API probe against tests/fakes/fake_cuda.c (<build>/fakes/fake_cuda.so).
#include "sources/cuda_source.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "util/strings.h"

#ifndef GREY_FAKE_LIB_DIR
#error "GREY_FAKE_LIB_DIR must name the directory holding fake_cuda.so"
#endif

namespace grey {
namespace {

const char* kFake = GREY_FAKE_LIB_DIR "/fake_cuda.so";

std::string joined(const std::vector<std::string>& notes) {
  std::string s;
  for (const auto& n : notes) s += "  [" + n + "]\n";
  return s;
}

class CudaSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* v : {"FAKE_CUDA_DEVICES", "FAKE_CUDA_INIT_ERROR", "FAKE_CUDA_NO_CLOCK"}) {
      unsetenv(v);
    }
    setenv("GREY_CUDA_LIBRARY", kFake, 1);
    ctx_.loader = &loader_;
  }
  void TearDown() override { unsetenv("GREY_CUDA_LIBRARY"); }
  SourceReport collect() { return make_cuda_source()->collect(ctx_); }

  DlLoader loader_;
  SourceContext ctx_;
};

TEST_F(CudaSourceTest, NameAuthority) {
  auto s = make_cuda_source();
  EXPECT_EQ(s->name(), "cuda");
  EXPECT_EQ(s->authority(), 60);
}

TEST_F(CudaSourceTest, ReadsEveryFieldOfBothFakeDevices) {
  SourceReport r = collect();
  EXPECT_EQ(r.source, "cuda");
  EXPECT_EQ(r.status, SourceStatus::ok) << joined(r.notes);
  EXPECT_EQ(r.what, kFake);
  EXPECT_GE(r.duration_ms, 0.0);
  EXPECT_TRUE(r.notes.empty()) << joined(r.notes);
  ASSERT_EQ(r.devices.size(), 2u);

  const GpuFields& a = r.devices[0].f;
  EXPECT_EQ(a.vendor, "nvidia");
  EXPECT_EQ(a.model, "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(a.vram_total_mb, 81559);
  EXPECT_EQ(a.compute_capability, "9.0");
  EXPECT_EQ(a.num_sm, 132);
  EXPECT_EQ(a.memory_bus_width, 5120);
  EXPECT_EQ(a.clock_mhz, 1980);
  EXPECT_EQ(a.bus_id, "0000:1b:00.0");
  EXPECT_EQ(a.cuda_version, "12.4");
  EXPECT_EQ(a.tool_index, 0);
  // The CUDA driver API tells neither the PCI product id nor the driver version.
  EXPECT_FALSE(a.pci_device_id.has_value());
  EXPECT_FALSE(a.driver_version.has_value());
  EXPECT_FALSE(a.vram_free_mb.has_value());
  EXPECT_TRUE(r.devices[0].notes.empty()) << joined(r.devices[0].notes);

  const GpuFields& b = r.devices[1].f;
  EXPECT_EQ(b.vendor, "nvidia");
  EXPECT_EQ(b.model, "NVIDIA A100-SXM4-40GB");
  EXPECT_EQ(b.vram_total_mb, 40960);
  EXPECT_EQ(b.compute_capability, "8.0");
  EXPECT_EQ(b.num_sm, 108);
  EXPECT_EQ(b.memory_bus_width, 5120);
  EXPECT_EQ(b.clock_mhz, 1410);
  EXPECT_EQ(b.bus_id, "0000:41:00.0");
  EXPECT_EQ(b.cuda_version, "12.4");
  EXPECT_EQ(b.tool_index, 1);
  EXPECT_TRUE(r.devices[1].notes.empty()) << joined(r.devices[1].notes);
}

TEST_F(CudaSourceTest, OneDevice) {
  setenv("FAKE_CUDA_DEVICES", "1", 1);
  SourceReport r = collect();
  EXPECT_EQ(r.status, SourceStatus::ok);
  ASSERT_EQ(r.devices.size(), 1u);
  EXPECT_EQ(r.devices[0].f.model, "NVIDIA H100 80GB HBM3");
}

TEST_F(CudaSourceTest, ZeroDevicesIsNoDevices) {
  setenv("FAKE_CUDA_DEVICES", "0", 1);
  SourceReport r = collect();
  EXPECT_EQ(r.status, SourceStatus::no_devices);
  EXPECT_TRUE(r.devices.empty());
  EXPECT_EQ(r.notes, std::vector<std::string>{"cuDeviceGetCount reported 0 devices"});
}

TEST_F(CudaSourceTest, InitNoDeviceIsNoDevices) {
  setenv("FAKE_CUDA_INIT_ERROR", "100", 1);
  SourceReport r = collect();
  EXPECT_EQ(r.status, SourceStatus::no_devices);
  EXPECT_TRUE(r.devices.empty());
  EXPECT_EQ(r.notes, std::vector<std::string>{
                         "cuInit failed: CUDA_ERROR_NO_DEVICE (100): no CUDA-capable device is "
                         "detected"});
}

TEST_F(CudaSourceTest, InitDriverMismatchIsFailed) {
  setenv("FAKE_CUDA_INIT_ERROR", "803", 1);
  SourceReport r = collect();
  EXPECT_EQ(r.status, SourceStatus::failed);
  EXPECT_TRUE(r.devices.empty());
  EXPECT_EQ(r.notes, std::vector<std::string>{
                         "cuInit failed: CUDA_ERROR_SYSTEM_DRIVER_MISMATCH (803): system has "
                         "unsupported display driver / cuda driver combination"});
}

TEST_F(CudaSourceTest, InitErrorTheLibraryCannotNameFallsBackToOurTable) {
  // 35 is CUDA_ERROR_INSUFFICIENT_DRIVER; the fake's cuGetErrorName does not know it.
  setenv("FAKE_CUDA_INIT_ERROR", "35", 1);
  SourceReport r = collect();
  EXPECT_EQ(r.status, SourceStatus::failed);
  EXPECT_EQ(r.notes,
            std::vector<std::string>{"cuInit failed: CUDA_ERROR_INSUFFICIENT_DRIVER (35)"});
}

TEST_F(CudaSourceTest, AttributeFailureLeavesOnlyThatFieldUnknown) {
  setenv("FAKE_CUDA_NO_CLOCK", "1", 1);
  SourceReport r = collect();
  EXPECT_EQ(r.status, SourceStatus::ok);
  ASSERT_EQ(r.devices.size(), 2u);
  for (const auto& o : r.devices) {
    EXPECT_FALSE(o.f.clock_mhz.has_value());
    EXPECT_TRUE(o.f.num_sm.has_value());
    EXPECT_TRUE(o.f.bus_id.has_value());
    EXPECT_EQ(o.notes, std::vector<std::string>{
                           "cuDeviceGetAttribute(CU_DEVICE_ATTRIBUTE_CLOCK_RATE) failed: "
                           "CUDA_ERROR_INVALID_VALUE (1): invalid argument"});
  }
}

TEST_F(CudaSourceTest, MissingLibraryIsMissingWithDlerror) {
  const std::string path = "/nonexistent/dir/libcuda.so.1";
  setenv("GREY_CUDA_LIBRARY", path.c_str(), 1);
  SourceReport r = collect();
  EXPECT_EQ(r.status, SourceStatus::missing);
  EXPECT_EQ(r.what, path);
  ASSERT_EQ(r.notes.size(), 1u);
  EXPECT_TRUE(starts_with(r.notes[0], path + ": ")) << r.notes[0];
  EXPECT_TRUE(contains(r.notes[0], "cannot open shared object file")) << r.notes[0];
  EXPECT_EQ(r.notes[0].find(path, 1), std::string::npos) << "the path twice: " << r.notes[0];
}

TEST_F(CudaSourceTest, NotACudaLibraryIsFailed) {
  setenv("GREY_CUDA_LIBRARY", GREY_FAKE_LIB_DIR "/fake_nvml.so", 1);
  SourceReport r = collect();
  EXPECT_EQ(r.status, SourceStatus::failed);
  bool named = false;
  for (const auto& n : r.notes) {
    named |= n == std::string("cuInit not found in ") + GREY_FAKE_LIB_DIR +
                      "/fake_nvml.so; nothing can be read";
  }
  EXPECT_TRUE(named) << joined(r.notes);
}

TEST_F(CudaSourceTest, ReplayIsSkipped) {
  ctx_.replay_dir = "/tmp";
  SourceReport r = collect();
  EXPECT_EQ(r.status, SourceStatus::skipped);
  EXPECT_EQ(r.notes, std::vector<std::string>{"library probes do not run in replay"});
}

}  // namespace
}  // namespace grey
