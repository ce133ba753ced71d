// Tests for parse_vulkaninfo: every fixture under tests/fixtures/vulkaninfo (facts from
// SOURCES.md), the captures of this machine under tests/fixtures/local, the hand-written
// layouts under tests/fixtures/handmade, and bad input.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

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

// ---------------------------------------------------------------- tests/fixtures/vulkaninfo

TEST(Vulkaninfo, AmdRx6600XtProprietarySummaryFragment) {
  auto r = parse_vulkaninfo(read_fixture(
      "vulkaninfo/amd-rx6600xt-amdgpu-pro-summary-devices-section-fragment-nixgl-issue153.txt"));
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u);
  const auto& d = r.devices[0];
  EXPECT_FALSE(d.software_reason.has_value());
  EXPECT_EQ(d.f.tool_index, 0);
  EXPECT_EQ(d.f.model, "AMD Radeon RX 6600 XT");
  EXPECT_EQ(d.f.vendor, "amd");
  EXPECT_EQ(d.f.pci_vendor_id, 0x1002u);
  EXPECT_EQ(d.f.pci_device_id, 0x73ffu);
  EXPECT_EQ(d.f.vulkan_version, "1.3.260");
  // AMD proprietary prints its Vulkan driver version (2.0.279): a note, never driver_version.
  EXPECT_FALSE(d.f.driver_version.has_value());
  EXPECT_TRUE(any_note_contains(d.notes, "2.0.279"));
  EXPECT_TRUE(any_note_contains(d.notes, "AMD proprietary driver"));
  // The summary has no memory heaps and no PCI bus info.
  EXPECT_FALSE(d.f.vram_total_mb.has_value());
  EXPECT_FALSE(d.f.bus_id.has_value());
  // deviceUUID of AMD's driver is not a GPU UUID; only NVIDIA's is kept.
  EXPECT_FALSE(d.f.uuid.has_value());
}

// ---------------------------------------------------------------- local captures (no GPU)

void expect_one_lavapipe(const ParseResult& r) {
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u);
  EXPECT_EQ(gpu_count(r), 0u);
  const auto& d = r.devices[0];
  ASSERT_TRUE(d.software_reason.has_value());
  EXPECT_NE(d.software_reason->find("CPU"), std::string::npos) << *d.software_reason;
  EXPECT_NE(d.software_reason->find("lavapipe"), std::string::npos) << *d.software_reason;
  EXPECT_EQ(d.f.model, "llvmpipe (LLVM 15.0.6, 256 bits)");
  EXPECT_EQ(d.f.vulkan_version, "1.3.230");
  EXPECT_EQ(d.f.tool_index, 0);
  EXPECT_FALSE(d.f.driver_version.has_value());
  EXPECT_FALSE(d.f.pci_vendor_id.has_value());  // 0x10005 is a Khronos id, not PCI
  EXPECT_FALSE(d.f.vram_total_mb.has_value());
}

TEST(Vulkaninfo, LocalSummaryLavapipeIsOneSoftwareDevice) {
  expect_one_lavapipe(
      parse_vulkaninfo(read_fixture("local/vulkaninfo-summary-llvmpipe-debian12-vm-no-gpu.txt")));
}

TEST(Vulkaninfo, LocalSummaryWithStderrMergedIsOneSoftwareDevice) {
  auto r = parse_vulkaninfo(
      read_fixture("local/vulkaninfo-summary-stderr-merged-llvmpipe-debian12-vm-no-gpu.txt"));
  expect_one_lavapipe(r);
}

TEST(Vulkaninfo, LocalFullLavapipeIsOneSoftwareDevice) {
  auto r = parse_vulkaninfo(read_fixture("local/vulkaninfo-full-llvmpipe-debian12-vm-no-gpu.txt"));
  expect_one_lavapipe(r);
  // The CPU device's 2 GiB heap is host memory: never VRAM.
  EXPECT_FALSE(r.devices[0].f.vram_total_mb.has_value());
}

TEST(Vulkaninfo, LocalNoDriverIsAnErrorNotADevice) {
  auto r = parse_vulkaninfo(
      read_fixture("local/vulkaninfo-summary-no-driver-error-debian12-vm-no-gpu.txt"));
  EXPECT_FALSE(r.recognized);
  EXPECT_TRUE(r.devices.empty());
  EXPECT_TRUE(any_note_contains(r.notes, "Cannot create Vulkan instance."));
  EXPECT_TRUE(any_note_contains(r.notes, "ERROR_INCOMPATIBLE_DRIVER"));
}

// ---------------------------------------------------------------- hand-written layouts

TEST(Vulkaninfo, HandmadeSummaryThreeDevicesSpaceIndented) {
  auto r = parse_vulkaninfo(
      read_fixture("handmade/vulkaninfo-summary-nvidia-intel-llvmpipe-spaces.txt"));
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 3u);
  EXPECT_EQ(gpu_count(r), 2u);

  const auto& nv = r.devices[0];
  EXPECT_EQ(nv.f.tool_index, 0);
  EXPECT_EQ(nv.f.model, "NVIDIA GeForce RTX 3070");
  EXPECT_EQ(nv.f.vendor, "nvidia");
  EXPECT_EQ(nv.f.pci_vendor_id, 0x10deu);
  EXPECT_EQ(nv.f.pci_device_id, 0x2484u);
  EXPECT_EQ(nv.f.vulkan_version, "1.3.277");
  EXPECT_EQ(nv.f.driver_version, "550.54.15");
  EXPECT_EQ(nv.f.uuid, "GPU-5b2d6c8e-1a3f-4c2b-9e7d-0f1a2b3c4d5e");
  EXPECT_FALSE(nv.software_reason.has_value());
  EXPECT_FALSE(nv.f.vram_total_mb.has_value());

  const auto& intel = r.devices[1];
  EXPECT_EQ(intel.f.tool_index, 1);
  EXPECT_EQ(intel.f.model, "Intel(R) Xe Graphics (TGL GT2)");
  EXPECT_EQ(intel.f.vendor, "intel");
  EXPECT_EQ(intel.f.pci_device_id, 0x9a49u);
  EXPECT_FALSE(intel.f.driver_version.has_value());  // Mesa version, not a GPU driver
  EXPECT_TRUE(any_note_contains(intel.notes, "23.2.1"));
  EXPECT_FALSE(intel.software_reason.has_value());
  EXPECT_FALSE(intel.f.uuid.has_value());

  const auto& sw = r.devices[2];
  EXPECT_EQ(sw.f.tool_index, 2);
  ASSERT_TRUE(sw.software_reason.has_value());
  EXPECT_NE(sw.software_reason->find("CPU"), std::string::npos);
}

TEST(Vulkaninfo, HandmadeFullTwoGpusHeapsAndPciBusInfo) {
  auto r = parse_vulkaninfo(read_fixture("handmade/vulkaninfo-full-amd-nvidia-excerpt.txt"));
  ASSERT_TRUE(r.recognized);
  // "GPU id" lines of the Layers / Presentable Surfaces sections are not devices.
  ASSERT_EQ(r.devices.size(), 2u);

  const auto& amd = r.devices[0];
  EXPECT_EQ(amd.f.tool_index, 0);
  EXPECT_EQ(amd.f.model, "AMD Radeon RX 6800 XT (RADV NAVI21)");
  EXPECT_EQ(amd.f.vendor, "amd");
  EXPECT_EQ(amd.f.pci_device_id, 0x73bfu);
  EXPECT_EQ(amd.f.bus_id, "0000:0c:00.0");
  EXPECT_EQ(amd.f.vulkan_version, "1.3.255");
  EXPECT_FALSE(amd.f.driver_version.has_value());
  EXPECT_TRUE(any_note_contains(amd.notes, "radv"));
  // RADV splits VRAM into an invisible and a visible device-local heap: their sum.
  EXPECT_EQ(amd.f.vram_total_mb, 16384);

  const auto& nv = r.devices[1];
  EXPECT_EQ(nv.f.tool_index, 1);
  EXPECT_EQ(nv.f.model, "NVIDIA GeForce RTX 3070");
  EXPECT_EQ(nv.f.bus_id, "0000:c1:00.0");  // pciBus = 193 (decimal)
  EXPECT_EQ(nv.f.vulkan_version, "1.3.277");
  EXPECT_EQ(nv.f.driver_version, "550.54.15");
  EXPECT_EQ(nv.f.uuid, "GPU-5b2d6c8e-1a3f-4c2b-9e7d-0f1a2b3c4d5e");
  // The 246 MiB BAR heap overlaps VRAM: the largest device-local heap is the VRAM.
  EXPECT_EQ(nv.f.vram_total_mb, 8192);
  EXPECT_EQ(gpu_count(r), 2u);
}

TEST(Vulkaninfo, HandmadeOldLayoutRawPackedDriverVersion) {
  auto r = parse_vulkaninfo(read_fixture("handmade/vulkaninfo-full-old-1.1-nvidia-excerpt.txt"));
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u);
  const auto& d = r.devices[0];
  EXPECT_EQ(d.f.model, "GeForce GTX 1080");
  EXPECT_EQ(d.f.pci_device_id, 0x1b80u);
  EXPECT_EQ(d.f.vulkan_version, "1.1.104");
  EXPECT_EQ(d.f.driver_version, "418.56");
  EXPECT_EQ(d.f.vram_total_mb, 8192);
  EXPECT_FALSE(d.f.bus_id.has_value());
  EXPECT_FALSE(d.software_reason.has_value());
}

// ---------------------------------------------------------------- value forms (inline)

TEST(Vulkaninfo, ApiVersionTakesTheDottedFormWhereverItIs) {
  auto r = parse_vulkaninfo(
      "Devices:\n========\nGPU0:\n\tapiVersion = 4206847 (1.3.255)\n\tvendorID = 0x1002\n"
      "\tdeviceType = PHYSICAL_DEVICE_TYPE_DISCRETE_GPU\n\tdeviceName = X\n");
  ASSERT_EQ(r.devices.size(), 1u);
  EXPECT_EQ(r.devices[0].f.vulkan_version, "1.3.255");

  r = parse_vulkaninfo("GPU0:\n\tapiVersion = 4206847\n\tdeviceName = X\n");
  ASSERT_EQ(r.devices.size(), 1u);
  EXPECT_EQ(r.devices[0].f.vulkan_version, "1.3.255");  // decoded VK_MAKE_API_VERSION
}

TEST(Vulkaninfo, NvidiaDriverVersionForms) {
  auto nv = [](const std::string& dv, const std::string& extra = "") {
    auto r = parse_vulkaninfo("GPU0:\n\tdriverVersion = " + dv +
                              "\n\tvendorID = 0x10de\n\tdeviceName = NVIDIA T\n" + extra);
    EXPECT_EQ(r.devices.size(), 1u);
    return r.devices.empty() ? std::optional<std::string>() : r.devices[0].f.driver_version;
  };
  EXPECT_EQ(nv("2307752896 (0x898d83c0)"), "550.54.15");  // older summary: raw + hex
  EXPECT_EQ(nv("550.54.15.0 (2307752896)"), "550.54.15");
  EXPECT_EQ(nv("550.54.15"), "550.54.15");
  EXPECT_EQ(nv("470.57.2.0"), "470.57.02");  // NVIDIA patch numbers are two digits
  EXPECT_EQ(nv("595.80.0.0"), "595.80");
  EXPECT_EQ(nv("1.2.3", "\tdriverInfo = 535.104.05\n"), "535.104.05");  // driverInfo wins
  // nouveau / NVK: Mesa version, not NVIDIA's.
  EXPECT_EQ(nv("24.1.0", "\tdriverID = DRIVER_ID_MESA_NVK\n\tdriverName = NVK\n"), std::nullopt);
}

TEST(Vulkaninfo, IntegratedHeapIsSharedMemoryNotVram) {
  auto r = parse_vulkaninfo(
      "GPU0:\nVkPhysicalDeviceProperties:\n\tvendorID = 0x8086\n"
      "\tdeviceType = PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU\n\tdeviceName = Intel(R) UHD 630\n"
      "VkPhysicalDeviceMemoryProperties:\n=================\nmemoryHeaps: count = 1\n"
      "\tmemoryHeaps[0]:\n\t\tsize   = 12884901888 (0x300000000) (12.00 GiB)\n"
      "\t\tflags: count = 1\n\t\t\tMEMORY_HEAP_DEVICE_LOCAL_BIT\n");
  ASSERT_EQ(r.devices.size(), 1u);
  EXPECT_FALSE(r.devices[0].f.vram_total_mb.has_value());
  EXPECT_TRUE(any_note_contains(r.devices[0].notes, "12288 MiB is shared system memory"));
}

TEST(Vulkaninfo, HeapWithoutDeviceLocalFlagIsNotVram) {
  auto r = parse_vulkaninfo(
      "GPU0:\n\tvendorID = 0x10de\n\tdeviceType = PHYSICAL_DEVICE_TYPE_DISCRETE_GPU\n"
      "\tdeviceName = N\nmemoryHeaps: count = 1\n\tmemoryHeaps[0]:\n"
      "\t\tsize   = 8589934592 (0x200000000) (8.00 GiB)\n\t\tflags:\n\t\t\tNone\n");
  ASSERT_EQ(r.devices.size(), 1u);
  EXPECT_FALSE(r.devices[0].f.vram_total_mb.has_value());
}

TEST(Vulkaninfo, DeviceSectionWithoutGpuHeaderUsesGpuIdLine) {
  auto r = parse_vulkaninfo(
      "Device Properties and Extensions:\n==================\n"
      "GPU id : 3 (NVIDIA A10)\nVkPhysicalDeviceProperties:\n===========\n"
      "\tvendorID = 0x10de\n\tdeviceName = NVIDIA A10\n"
      "VkPhysicalDeviceProperties:\n===========\n\tvendorID = 0x1002\n\tdeviceName = AMD X\n");
  ASSERT_EQ(r.devices.size(), 2u);
  EXPECT_EQ(r.devices[0].f.tool_index, 3);
  EXPECT_EQ(r.devices[0].f.model, "NVIDIA A10");
  EXPECT_EQ(r.devices[1].f.model, "AMD X");
}

TEST(Vulkaninfo, SoftwareRenderersByNameDriverOrVendor) {
  auto one = [](const std::string& body) {
    auto r = parse_vulkaninfo("GPU0:\n" + body);
    EXPECT_EQ(r.devices.size(), 1u);
    return r.devices.empty() ? std::optional<std::string>() : r.devices[0].software_reason;
  };
  auto sw =
      one("\tvendorID = 0x1ae0\n\tdeviceType = PHYSICAL_DEVICE_TYPE_CPU\n"
          "\tdeviceName = SwiftShader Device (Subzero)\n");
  ASSERT_TRUE(sw);
  EXPECT_NE(sw->find("SwiftShader"), std::string::npos);
  EXPECT_TRUE(one("\tdeviceName = llvmpipe (LLVM 17)\n\tdeviceType = OTHER\n"));
  EXPECT_TRUE(one("\tdeviceName = odd\n\tdriverID = DRIVER_ID_MESA_LLVMPIPE\n"));
  EXPECT_TRUE(one("\tdeviceName = odd\n\tvendorID = 0x10005\n"));
  EXPECT_FALSE(
      one("\tdeviceName = AMD Radeon RX 7900 XTX (RADV NAVI31)\n\tvendorID = 0x1002\n"
          "\tdeviceType = PHYSICAL_DEVICE_TYPE_DISCRETE_GPU\n"));
}

// ---------------------------------------------------------------- bad input

TEST(Vulkaninfo, EmptyIsNotRecognized) {
  for (const char* s : {"", "   \n\t\n"}) {
    auto r = parse_vulkaninfo(s);
    EXPECT_FALSE(r.recognized);
    EXPECT_TRUE(r.devices.empty());
    EXPECT_TRUE(any_note_contains(r.notes, "output is empty"));
  }
}

TEST(Vulkaninfo, OtherTextIsNotRecognized) {
  auto r = parse_vulkaninfo("bash: vulkaninfo: command not found\n");
  EXPECT_FALSE(r.recognized);
  EXPECT_TRUE(r.devices.empty());
  EXPECT_TRUE(any_note_contains(r.notes, "not vulkaninfo output"));
}

TEST(Vulkaninfo, BannerWithoutDevicesIsRecognizedEmpty) {
  auto r =
      parse_vulkaninfo("==========\nVULKANINFO\n==========\n\nVulkan Instance Version: 1.3.239\n");
  EXPECT_TRUE(r.recognized);
  EXPECT_TRUE(r.devices.empty());
  EXPECT_TRUE(any_note_contains(r.notes, "no physical devices"));
}

TEST(Vulkaninfo, ManyDeviceBlocksAreCapped) {
  std::string s;
  for (int i = 0; i < 500; ++i) s += "GPU" + std::to_string(i) + ":\n\tdeviceName = D\n";
  auto r = parse_vulkaninfo(s);
  EXPECT_TRUE(r.recognized);
  EXPECT_EQ(r.devices.size(), 64u);
  EXPECT_TRUE(any_note_contains(r.notes, "ignored"));
}

}  // namespace
}  // namespace grey
