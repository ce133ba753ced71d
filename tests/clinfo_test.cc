// Tests for parse_clinfo: every fixture under tests/fixtures/clinfo (facts from SOURCES.md), the
// captures of this machine under tests/fixtures/local (PoCL CPU device, no platforms), the
// hand-written layouts under tests/fixtures/handmade, and bad input.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "detect/detector.h"
#include "sources/parsers.h"
#include "test_util.h"

namespace grey {
namespace {

using test::read_fixture;

bool any_note_contains(const std::vector<std::string>& notes, const std::string& needle) {
  for (const auto& n : notes)
    if (n.find(needle) != std::string::npos) return true;
  return false;
}

size_t gpu_count(const ParseResult& r) {
  size_t n = 0;
  for (const auto& d : r.devices)
    if (!d.software_reason) ++n;
  return n;
}

// ---------------------------------------------------------------- tests/fixtures/clinfo

TEST(Clinfo, IntelArcA380JsonFromLact) {
  auto r = parse_clinfo(read_fixture("clinfo/intel-arc-a380-clinfo--json-lact.json"));
  ASSERT_TRUE(r.recognized);
  // Two platforms; rusticl has no devices: exactly the Arc.
  ASSERT_EQ(r.devices.size(), 1u);
  const auto& d = r.devices[0];
  EXPECT_FALSE(d.software_reason.has_value());
  EXPECT_EQ(d.f.tool_index, 0);
  EXPECT_EQ(d.f.model, "Intel(R) Arc(TM) A380 Graphics");
  EXPECT_EQ(d.f.vendor, "intel");
  EXPECT_EQ(d.f.pci_vendor_id, 0x8086u);  // CL_DEVICE_VENDOR_ID 32902
  EXPECT_EQ(d.f.pci_device_id, 0x56a5u);  // CL_DEVICE_ID_INTEL 22181
  EXPECT_EQ(d.f.vram_total_mb, 5783);     // 6064541696 B
  EXPECT_EQ(d.f.num_sm, 128);
  EXPECT_EQ(d.f.clock_mhz, 2450);
  EXPECT_EQ(d.f.driver_version, "25.48.36300");
  EXPECT_EQ(d.f.bus_id, "0000:0a:00.0");
  EXPECT_EQ(d.f.opencl_version, "3.0");
  // CL_DEVICE_HOST_UNIFIED_MEMORY is false: no shared-memory note.
  EXPECT_FALSE(any_note_contains(d.notes, "shared system memory"));
}

// ---------------------------------------------------------------- local captures (no GPU)

void expect_one_pocl_cpu(const ParseResult& r) {
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u);
  EXPECT_EQ(gpu_count(r), 0u);
  const auto& d = r.devices[0];
  EXPECT_EQ(d.software_reason, "OpenCL CPU device (PoCL)");
  EXPECT_EQ(d.f.model, "pthread-skylake-avx512-Intel(R) Xeon(R) Processor");
  EXPECT_EQ(d.f.tool_index, 0);
  EXPECT_EQ(d.f.num_sm, 2);
  EXPECT_EQ(d.f.clock_mhz, 2100);
  EXPECT_EQ(d.f.opencl_version, "3.0");
  EXPECT_FALSE(d.f.vram_total_mb.has_value());   // a CPU's global memory is not VRAM
  EXPECT_FALSE(d.f.driver_version.has_value());  // PoCL 3.1 is no GPU driver
  EXPECT_FALSE(d.f.bus_id.has_value());
}

TEST(Clinfo, LocalPlainPoclIsOneSoftwareDevice) {
  expect_one_pocl_cpu(parse_clinfo(read_fixture("local/clinfo-pocl-debian12-vm-no-gpu.txt")));
}

TEST(Clinfo, LocalRawPoclIsOneSoftwareDevice) {
  expect_one_pocl_cpu(parse_clinfo(read_fixture("local/clinfo-raw-pocl-debian12-vm-no-gpu.txt")));
}

TEST(Clinfo, LocalJsonPoclIsOneSoftwareDevice) {
  expect_one_pocl_cpu(parse_clinfo(read_fixture("local/clinfo-json-pocl-debian12-vm-no-gpu.json")));
}

TEST(Clinfo, LocalNoPlatformsInAllThreeForms) {
  for (const char* f : {"local/clinfo-no-platforms-debian12-vm-no-gpu.txt",
                        "local/clinfo-raw-no-platforms-debian12-vm-no-gpu.txt",
                        "local/clinfo-json-no-platforms-debian12-vm-no-gpu.json"}) {
    auto r = parse_clinfo(read_fixture(f));
    EXPECT_TRUE(r.recognized) << f;
    EXPECT_TRUE(r.devices.empty()) << f;
    EXPECT_TRUE(any_note_contains(r.notes, "no OpenCL platforms")) << f;
  }
}

// ---------------------------------------------------------------- hand-written layouts

TEST(Clinfo, HandmadePlainNvidiaAndAmdRocm) {
  auto r = parse_clinfo(read_fixture("handmade/clinfo-nvidia-amd-rocm.txt"));
  ASSERT_TRUE(r.recognized);
  // The "NULL platform behavior" section repeats Device Name lines: not devices.
  ASSERT_EQ(r.devices.size(), 2u);
  EXPECT_EQ(gpu_count(r), 2u);

  const auto& nv = r.devices[0];
  EXPECT_EQ(nv.f.model, "NVIDIA GeForce RTX 3070");
  EXPECT_EQ(nv.f.vendor, "nvidia");
  EXPECT_EQ(nv.f.pci_vendor_id, 0x10deu);
  EXPECT_EQ(nv.f.bus_id, "0000:01:00.0");
  EXPECT_EQ(nv.f.driver_version, "550.54.15");
  EXPECT_EQ(nv.f.opencl_version, "3.0");
  EXPECT_EQ(nv.f.num_sm, 46);
  EXPECT_EQ(nv.f.clock_mhz, 1725);
  EXPECT_EQ(nv.f.compute_capability, "8.6");
  EXPECT_EQ(nv.f.vram_total_mb, 7973);  // 8361017344 B
  EXPECT_EQ(nv.f.tool_index, 0);

  const auto& amd = r.devices[1];
  EXPECT_EQ(amd.f.model, "AMD Radeon RX 6800 XT");  // board name over "gfx1030"
  EXPECT_EQ(amd.f.compute_capability, "gfx1030");
  EXPECT_EQ(amd.f.vendor, "amd");
  EXPECT_EQ(amd.f.pci_device_id, 0x73bfu);
  EXPECT_EQ(amd.f.bus_id, "0000:0c:00.0");
  EXPECT_EQ(amd.f.opencl_version, "2.0");
  EXPECT_EQ(amd.f.num_sm, 36);
  EXPECT_EQ(amd.f.clock_mhz, 2575);
  EXPECT_EQ(amd.f.vram_total_mb, 16368);
  EXPECT_FALSE(amd.f.driver_version.has_value());
  EXPECT_TRUE(any_note_contains(amd.notes, "3614.0"));
  EXPECT_EQ(amd.f.tool_index, 0);  // first device of its platform
}

// CL_DEVICE_TOPOLOGY_AMD's bus is a signed cl_char: clinfo before Oblomov/clinfo PR #4 printed
// a bus of 0xc1 as "ffffffc1" (PR text: "86:00.0 was shown as ffffff86:00.0").
TEST(Clinfo, AmdTopologySignExtendedBus) {
  std::string text = read_fixture("handmade/clinfo-nvidia-amd-rocm.txt");
  const std::string from = "PCI-E, 0c:00.0";
  size_t at = text.find(from);
  ASSERT_NE(at, std::string::npos);
  for (const auto& [shown, bus] :
       std::vector<std::pair<std::string, std::string>>{{"PCI-E, ffffffc1:00.0", "0000:c1:00.0"},
                                                        {"PCI-E, ffffff86:00.0", "0000:86:00.0"},
                                                        {"PCI-E, 0000:c1:00.0", "0000:c1:00.0"},
                                                        {"PCI-E, c1:00.0", "0000:c1:00.0"}}) {
    std::string t = text;
    t.replace(at, from.size(), shown);
    auto r = parse_clinfo(t);
    ASSERT_EQ(r.devices.size(), 2u) << shown;
    EXPECT_EQ(r.devices[1].f.bus_id, bus) << shown;
  }
  // The same GPU on two OpenCL platforms (Mesa's rusticl with cl_khr_pci_bus_info, the AMD
  // ICD with the sign-extended topology) is one GPU: the merge matches them by PCI location.
  {
    std::string t = text;
    t.replace(at, from.size(), "PCI-E, ffffffc1:00.0");
    auto amd_icd = parse_clinfo(t).devices.at(1);
    Observation rusticl = amd_icd;
    rusticl.f.model = "AMD Radeon RX 6800 XT (radeonsi, navi21, LLVM 15.0.6, DRM 3.49)";
    rusticl.f.bus_id = "0000:c1:00.0";
    SourceReport rep;
    rep.source = "clinfo";
    rep.status = SourceStatus::ok;
    rep.devices = {amd_icd, rusticl};
    auto g = merge_reports({rep}, {{"clinfo", 40}}, nullptr, "T");
    EXPECT_EQ(g.size(), 1u);
  }
  // A sign-extended value below 0x80 is not a sign extension: not a bus.
  std::string t = text;
  t.replace(at, from.size(), "PCI-E, ffffff41:00.0");
  auto r = parse_clinfo(t);
  ASSERT_EQ(r.devices.size(), 2u);
  EXPECT_NE(r.devices[1].f.bus_id, "0000:41:00.0");
}

TEST(Clinfo, HandmadeRawTwoMesaPlatformsAndNvidiaIntegers) {
  auto r = parse_clinfo(read_fixture("handmade/clinfo-raw-nvidia-mesa-two-platforms.txt"));
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 4u);
  EXPECT_EQ(gpu_count(r), 3u);

  EXPECT_EQ(r.devices[0].f.bus_id, "0000:07:00.0");
  EXPECT_EQ(r.devices[1].f.bus_id, "0000:0f:00.0");
  EXPECT_EQ(r.devices[1].f.tool_index, 1);
  for (int i = 0; i < 2; ++i) {
    const auto& d = r.devices[static_cast<size_t>(i)];
    EXPECT_EQ(d.f.model, "NVIDIA A100-SXM4-40GB");
    EXPECT_EQ(d.f.driver_version, "535.104.05");
    EXPECT_EQ(d.f.compute_capability, "8.0");
    EXPECT_EQ(d.f.num_sm, 108);
    EXPECT_EQ(d.f.clock_mhz, 1410);
    EXPECT_EQ(d.f.vram_total_mb, 40339);
  }
  const auto& clover = r.devices[2];
  EXPECT_EQ(clover.f.vendor, "amd");
  EXPECT_EQ(clover.f.vram_total_mb, 8192);
  EXPECT_FALSE(clover.f.driver_version.has_value());
  EXPECT_TRUE(any_note_contains(clover.notes, "Clover"));
  EXPECT_FALSE(clover.software_reason.has_value());

  const auto& rusticl = r.devices[3];
  EXPECT_EQ(rusticl.f.model, "llvmpipe (LLVM 15.0.7, 256 bits)");
  ASSERT_TRUE(rusticl.software_reason.has_value());
  EXPECT_NE(rusticl.software_reason->find("CPU"), std::string::npos);
  EXPECT_FALSE(rusticl.f.clock_mhz.has_value());  // 0 MHz is "unknown", not 0
  EXPECT_FALSE(rusticl.f.vram_total_mb.has_value());
}

// ---------------------------------------------------------------- inline variants

TEST(Clinfo, IntegratedGpuWithUnifiedMemoryKeepsMemoryWithNote) {
  auto r = parse_clinfo(
      "Number of platforms   1\n  Platform Name   Intel(R) OpenCL HD Graphics\n"
      "  Platform Name   Intel(R) OpenCL HD Graphics\nNumber of devices   1\n"
      "  Device Name     Intel(R) UHD Graphics 630 [0x3e92]\n  Device Vendor   Intel(R) "
      "Corporation\n"
      "  Device Vendor ID   0x8086\n  Device Version   OpenCL 3.0 NEO \n"
      "  Driver Version   23.17.26241.33\n  Device Type   GPU\n"
      "  Device PCI bus info (KHR)   PCI-E, 0000:00:02.0\n"
      "  Global memory size   26724073472 (24.89GiB)\n"
      "  Unified memory for Host and Device   Yes\n");
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u);
  const auto& d = r.devices[0];
  EXPECT_EQ(d.f.bus_id, "0000:00:02.0");
  EXPECT_EQ(d.f.vram_total_mb, 25486);
  EXPECT_TRUE(any_note_contains(d.notes, "global memory is shared system memory"));
  EXPECT_EQ(d.f.driver_version, "23.17.26241.33");
  EXPECT_FALSE(d.software_reason.has_value());
}

TEST(Clinfo, PoclCudaGpuIsAGpu) {
  auto r = parse_clinfo(
      "Number of platforms  1\n  Platform Name   Portable Computing Language\n"
      "  Platform Name   Portable Computing Language\nNumber of devices  2\n"
      "  Device Name   cpu-haswell-AMD Ryzen 7\n  Device Type   CPU\n"
      "  Device Name   NVIDIA Tegra X1\n  Device Vendor ID   0x10de\n"
      "  Device Version   OpenCL 3.0 PoCL HSTR: CUDA-sm_53\n  Driver Version   6.0\n"
      "  Device Type   GPU\n  Max compute units   1\n");
  ASSERT_EQ(r.devices.size(), 2u);
  EXPECT_EQ(r.devices[0].software_reason, "OpenCL CPU device (PoCL)");
  EXPECT_FALSE(r.devices[1].software_reason.has_value());
  EXPECT_FALSE(r.devices[1].f.driver_version.has_value());  // PoCL's version, not NVIDIA's
  EXPECT_EQ(r.devices[1].f.tool_index, 1);
}

TEST(Clinfo, AcceleratorIsNotAGpu) {
  auto r = parse_clinfo(
      "#PLATFORMS 1\n[FPGA/*]  CL_PLATFORM_NAME  Intel(R) FPGA Emulation Platform for OpenCL(TM)\n"
      "[FPGA/0]  CL_DEVICE_NAME  Intel(R) FPGA Emulation Device\n"
      "[FPGA/0]  CL_DEVICE_TYPE  CL_DEVICE_TYPE_ACCELERATOR\n");
  ASSERT_EQ(r.devices.size(), 1u);
  ASSERT_TRUE(r.devices[0].software_reason.has_value());
  EXPECT_NE(r.devices[0].software_reason->find("accelerator"), std::string::npos);
}

TEST(Clinfo, JsonValuesAsStringsNumbersOrObjects) {
  auto r = parse_clinfo(R"({"platforms":[{"CL_PLATFORM_NAME":"NVIDIA CUDA"}],
    "devices":[{"online":[{"CL_DEVICE_NAME":"NVIDIA H100 PCIe","CL_DEVICE_VENDOR_ID":"0x10de",
      "CL_DEVICE_VERSION":"OpenCL 3.0 CUDA","CL_DRIVER_VERSION":"550.54.15",
      "CL_DEVICE_TYPE":"CL_DEVICE_TYPE_GPU","CL_DEVICE_GLOBAL_MEM_SIZE":"85031714816",
      "CL_DEVICE_MAX_COMPUTE_UNITS":114,"CL_DEVICE_MAX_CLOCK_FREQUENCY":1755,
      "CL_DEVICE_PCI_BUS_INFO_KHR":"PCI-E, 0000:C1:00.0",
      "CL_DEVICE_HOST_UNIFIED_MEMORY":false}]}]})");
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u);
  const auto& d = r.devices[0];
  EXPECT_EQ(d.f.pci_vendor_id, 0x10deu);
  EXPECT_EQ(d.f.vram_total_mb, 81092);  // 85031714816 B, floored
  EXPECT_EQ(d.f.num_sm, 114);
  EXPECT_EQ(d.f.bus_id, "0000:c1:00.0");
  EXPECT_EQ(d.f.driver_version, "550.54.15");
  EXPECT_FALSE(d.software_reason.has_value());
}

TEST(Clinfo, JsonDeviceTypeRawBitmask) {
  auto r = parse_clinfo(R"({"platforms":[{}],"devices":[{"online":[
    {"CL_DEVICE_NAME":"cpu dev","CL_DEVICE_TYPE":{"raw":2}},
    {"CL_DEVICE_NAME":"gpu dev","CL_DEVICE_TYPE":{"raw":5},"CL_DEVICE_GLOBAL_MEM_SIZE":1073741824}
  ]}]})");
  ASSERT_EQ(r.devices.size(), 2u);
  EXPECT_TRUE(r.devices[0].software_reason.has_value());
  EXPECT_FALSE(r.devices[1].software_reason.has_value());
  EXPECT_EQ(r.devices[1].f.vram_total_mb, 1024);
  EXPECT_EQ(r.devices[1].f.tool_index, 1);
}

TEST(Clinfo, PlatformWithZeroDevices) {
  auto r = parse_clinfo(
      "Number of platforms  1\n  Platform Name  rusticl\n\n  Platform Name  rusticl\n"
      "Number of devices  0\n");
  EXPECT_TRUE(r.recognized);
  EXPECT_TRUE(r.devices.empty());
  EXPECT_TRUE(any_note_contains(r.notes, "no OpenCL devices"));
}

// ---------------------------------------------------------------- bad input

TEST(Clinfo, EmptyIsNotRecognized) {
  auto r = parse_clinfo("");
  EXPECT_FALSE(r.recognized);
  EXPECT_TRUE(any_note_contains(r.notes, "output is empty"));
}

TEST(Clinfo, ErrorTextIsNotRecognizedAndQuoted) {
  auto r = parse_clinfo(
      "clinfo: error while loading shared libraries: libOpenCL.so.1: cannot open shared object "
      "file: No such file or directory\n");
  EXPECT_FALSE(r.recognized);
  EXPECT_TRUE(r.devices.empty());
  EXPECT_TRUE(any_note_contains(r.notes, "libOpenCL.so.1"));
}

TEST(Clinfo, BadJsonIsNotRecognized) {
  for (const char* s : {"{", "{\"platforms\": 3}", "{\"x\": []}", "[1,2]"}) {
    auto r = parse_clinfo(s);
    EXPECT_FALSE(r.recognized) << s;
    EXPECT_TRUE(r.devices.empty()) << s;
    EXPECT_FALSE(r.notes.empty()) << s;
  }
  std::string deep(100000, '[');
  auto r = parse_clinfo("{\"platforms\":" + deep);
  EXPECT_FALSE(r.recognized);
}

}  // namespace
}  // namespace grey
