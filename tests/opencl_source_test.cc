// The OpenCL probe against tests/fakes/fake_opencl.c (<build>/fakes/fake_opencl.so) and
// against this machine's real ICD loader.
#include "sources/opencl_source.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "util/strings.h"

#ifndef GREY_FAKE_LIB_DIR
#error "GREY_FAKE_LIB_DIR must name the directory holding fake_opencl.so"
#endif

namespace grey {
namespace {

const char* kFake = GREY_FAKE_LIB_DIR "/fake_opencl.so";

std::string joined(const std::vector<std::string>& notes) {
  std::string s;
  for (const auto& n : notes) s += "  [" + n + "]\n";
  return s;
}

class OpenclSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    unsetenv("FAKE_OPENCL_NO_PLATFORMS");
    unsetenv("FAKE_OPENCL_PCI");
    setenv("GREY_OPENCL_LIBRARY", kFake, 1);
    ctx_.loader = &loader_;
  }
  void TearDown() override { unsetenv("GREY_OPENCL_LIBRARY"); }
  SourceReport collect() { return make_opencl_source()->collect(ctx_); }

  DlLoader loader_;
  SourceContext ctx_;
};

TEST_F(OpenclSourceTest, NameAuthority) {
  auto s = make_opencl_source();
  EXPECT_EQ(s->name(), "opencl");
  EXPECT_EQ(s->authority(), 55);
}

TEST_F(OpenclSourceTest, GpuAndPoclCpuDevice) {
  SourceReport r = collect();
  EXPECT_EQ(r.source, "opencl");
  EXPECT_EQ(r.status, SourceStatus::ok) << joined(r.notes);
  EXPECT_EQ(r.what, kFake);
  EXPECT_GE(r.duration_ms, 0.0);
  EXPECT_TRUE(r.notes.empty()) << joined(r.notes);
  ASSERT_EQ(r.devices.size(), 2u);

  const Observation& gpu = r.devices[0];
  EXPECT_FALSE(gpu.software_reason.has_value());
  EXPECT_EQ(gpu.f.model, "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(gpu.f.vendor, "nvidia");
  EXPECT_EQ(gpu.f.pci_vendor_id, 0x10deu);
  EXPECT_EQ(gpu.f.opencl_version, "3.0");
  EXPECT_EQ(gpu.f.driver_version, "550.54.15");
  EXPECT_EQ(gpu.f.vram_total_mb, 81559);
  EXPECT_EQ(gpu.f.num_sm, 132);
  EXPECT_EQ(gpu.f.clock_mhz, 1980);
  EXPECT_EQ(gpu.f.bus_id, "0000:1b:00.0");
  EXPECT_EQ(gpu.f.tool_index, 0);
  EXPECT_FALSE(gpu.f.pci_device_id.has_value());
  EXPECT_TRUE(gpu.notes.empty()) << joined(gpu.notes);

  const Observation& cpu = r.devices[1];
  ASSERT_TRUE(cpu.software_reason.has_value());
  EXPECT_EQ(*cpu.software_reason, "OpenCL device type CPU (PoCL runs OpenCL kernels on the CPU)");
  EXPECT_EQ(cpu.f.model, "pthread-skylake-avx512-Intel(R) Xeon(R) Processor");
  EXPECT_EQ(cpu.f.opencl_version, "3.0");
  EXPECT_EQ(cpu.f.vram_total_mb, 7928);
  EXPECT_EQ(cpu.f.num_sm, 2);
  EXPECT_EQ(cpu.f.clock_mhz, 2100);
  EXPECT_EQ(cpu.f.tool_index, 1);
  // The processor's vendor (GenuineIntel, 0x8086) is not reported as a GPU vendor.
  EXPECT_FALSE(cpu.f.vendor.has_value());
  EXPECT_FALSE(cpu.f.pci_vendor_id.has_value());
  EXPECT_FALSE(cpu.f.bus_id.has_value());
}

TEST_F(OpenclSourceTest, AmdTopologyFallback) {
  setenv("FAKE_OPENCL_PCI", "amd", 1);
  SourceReport r = collect();
  ASSERT_EQ(r.devices.size(), 2u);
  // Bus 0xc3 comes back as a negative cl_char: it must not sign-extend.
  EXPECT_EQ(r.devices[0].f.bus_id, "0000:c3:00.0");
  EXPECT_EQ(r.devices[0].notes,
            std::vector<std::string>{"CL_DEVICE_TOPOLOGY_AMD carries no PCI domain; 0000 assumed"});
}

TEST_F(OpenclSourceTest, NvidiaBusSlotFallback) {
  setenv("FAKE_OPENCL_PCI", "nv", 1);
  SourceReport r = collect();
  ASSERT_EQ(r.devices.size(), 2u);
  EXPECT_EQ(r.devices[0].f.bus_id, "0001:1b:01.1");
  EXPECT_TRUE(r.devices[0].notes.empty()) << joined(r.devices[0].notes);
}

TEST_F(OpenclSourceTest, NvidiaWithoutDomain) {
  setenv("FAKE_OPENCL_PCI", "nv-nodomain", 1);
  SourceReport r = collect();
  ASSERT_EQ(r.devices.size(), 2u);
  EXPECT_EQ(r.devices[0].f.bus_id, "0000:1b:01.1");
  EXPECT_EQ(r.devices[0].notes,
            std::vector<std::string>{
                "CL_DEVICE_PCI_DOMAIN_ID_NV not supported; PCI domain 0000 assumed"});
}

TEST_F(OpenclSourceTest, NoPciQueryLeavesBusIdUnknownQuietly) {
  setenv("FAKE_OPENCL_PCI", "none", 1);
  SourceReport r = collect();
  ASSERT_EQ(r.devices.size(), 2u);
  EXPECT_FALSE(r.devices[0].f.bus_id.has_value());
  EXPECT_TRUE(r.devices[0].notes.empty()) << joined(r.devices[0].notes);
  EXPECT_EQ(r.devices[0].f.model, "NVIDIA H100 80GB HBM3");
}

TEST_F(OpenclSourceTest, NoPlatformsIsNoDevices) {
  setenv("FAKE_OPENCL_NO_PLATFORMS", "1", 1);
  SourceReport r = collect();
  EXPECT_EQ(r.status, SourceStatus::no_devices);
  EXPECT_TRUE(r.devices.empty());
  EXPECT_EQ(r.notes, std::vector<std::string>{
                         "clGetPlatformIDs failed: CL_PLATFORM_NOT_FOUND_KHR (-1001); no OpenCL "
                         "platform (ICD) is installed"});
}

TEST_F(OpenclSourceTest, MissingLibraryIsMissingWithDlerror) {
  const std::string path = "/nonexistent/dir/libOpenCL.so.1";
  setenv("GREY_OPENCL_LIBRARY", path.c_str(), 1);
  SourceReport r = collect();
  EXPECT_EQ(r.status, SourceStatus::missing);
  EXPECT_EQ(r.what, path);
  ASSERT_EQ(r.notes.size(), 1u);
  EXPECT_TRUE(starts_with(r.notes[0], path + ": ")) << r.notes[0];
  EXPECT_TRUE(contains(r.notes[0], "cannot open shared object file")) << r.notes[0];
}

TEST_F(OpenclSourceTest, NotAnOpenclLibraryIsFailed) {
  setenv("GREY_OPENCL_LIBRARY", GREY_FAKE_LIB_DIR "/fake_cuda.so", 1);
  SourceReport r = collect();
  EXPECT_EQ(r.status, SourceStatus::failed);
  ASSERT_FALSE(r.notes.empty());
  EXPECT_EQ(r.notes[0], std::string("clGetPlatformIDs not found in ") + GREY_FAKE_LIB_DIR +
                            "/fake_cuda.so; nothing can be read");
}

TEST_F(OpenclSourceTest, ReplayIsSkipped) {
  ctx_.replay_dir = "/tmp";
  SourceReport r = collect();
  EXPECT_EQ(r.status, SourceStatus::skipped);
  EXPECT_EQ(r.notes, std::vector<std::string>{"library probes do not run in replay"});
}

// The real ICD loader of this machine. On the dev VM only PoCL is installed (one CPU device):
// exactly that device must come back, marked as software. Elsewhere the probe must at least
// run cleanly and mark every CPU device.
TEST_F(OpenclSourceTest, RealIcdLoader) {
  unsetenv("GREY_OPENCL_LIBRARY");
  SourceReport r = collect();
  if (r.status == SourceStatus::missing) GTEST_SKIP() << "no libOpenCL.so.1: " << joined(r.notes);
  EXPECT_EQ(r.what, "libOpenCL.so.1");
  ASSERT_TRUE(r.status == SourceStatus::ok || r.status == SourceStatus::no_devices)
      << joined(r.notes);
  int software = 0;
  for (const auto& o : r.devices) {
    if (o.software_reason) ++software;
    if (o.f.model && starts_with(*o.f.model, "pthread-")) {
      EXPECT_TRUE(o.software_reason.has_value()) << *o.f.model;
    }
  }
  namespace fs = std::filesystem;
  std::error_code ec;
  std::vector<std::string> icds;
  for (const auto& e : fs::directory_iterator("/etc/OpenCL/vendors", ec)) {
    icds.push_back(e.path().filename().string());
  }
  if (icds == std::vector<std::string>{"pocl.icd"} && !std::getenv("OCL_ICD_VENDORS") &&
      !std::getenv("OCL_ICD_FILENAMES")) {
    ASSERT_EQ(r.devices.size(), 1u) << joined(r.notes);
    EXPECT_EQ(software, 1);
    EXPECT_TRUE(contains(*r.devices[0].software_reason, "PoCL"));
    EXPECT_EQ(r.devices[0].f.opencl_version.value_or(""), "3.0");
  }
}

}  // namespace
}  // namespace grey
