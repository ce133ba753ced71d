#include <gtest/gtest.h>

#include <string>

#include "sources/parsers.h"
#include "test_util.h"

namespace grey {
namespace {

bool any_note_contains(const std::vector<std::string>& notes, const std::string& needle) {
  for (const auto& n : notes) {
    if (n.find(needle) != std::string::npos) return true;
  }
  return false;
}

const char* const kTable = "xpu-smi/intel-ponte-vecchio-0x020a-discovery-doc-xpumanager.txt";
const char* const kJson = "xpu-smi/intel-ponte-vecchio-0x020a-discovery-j-doc-xpumanager.json";
const char* const kDump = "xpu-smi/intel-flex170-0x56c0-x2-discovery-dump-csv-doc-xpumanager.csv";
const char* const kDetail = "handmade/xpu-smi-discovery-d-detailed-doc.txt";
const char* const kWide = "handmade/xpu-smi-discovery-dump-wide-handmade.csv";

TEST(XpuSmi, DiscoveryTablePonteVecchio) {
  ParseResult r = parse_xpu_smi(test::read_fixture(kTable));
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u);
  const auto& f = r.devices[0].f;
  EXPECT_EQ(f.tool_index, 0);
  EXPECT_EQ(f.model, "Intel(R) Graphics [0x020a]");
  EXPECT_EQ(f.vendor, "intel");
  EXPECT_EQ(f.uuid, "00000000-0000-0000-0000-020a00008086");
  EXPECT_EQ(f.bus_id, "0000:4d:00.0");
  EXPECT_FALSE(f.kernel_driver);
  EXPECT_FALSE(f.vram_total_mb);
  EXPECT_FALSE(f.clock_mhz);
  EXPECT_FALSE(f.pci_device_id);
}

TEST(XpuSmi, DiscoveryJsonPonteVecchio) {
  ParseResult r = parse_xpu_smi(test::read_fixture(kJson));
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u);
  const auto& f = r.devices[0].f;
  EXPECT_EQ(f.tool_index, 0);
  EXPECT_EQ(f.model, "Intel(R) Graphics [0x020a]");
  EXPECT_EQ(f.vendor, "intel");
  EXPECT_EQ(f.pci_device_id, 0x020au);
  EXPECT_EQ(f.bus_id, "0000:4d:00.0");
  EXPECT_EQ(f.uuid, "00000000-0000-0000-0000-020a00008086");
}

TEST(XpuSmi, DumpCsvFlex170) {
  ParseResult r = parse_xpu_smi(test::read_fixture(kDump));
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    const auto& o = r.devices[i];
    EXPECT_EQ(o.f.tool_index, i);
    EXPECT_EQ(o.f.model, "Intel(R) Graphics [0x56c0]");
    EXPECT_EQ(o.f.vendor, "intel");
    // Core Clock Rate is Level Zero coreClockRate, not documented as the max: note only.
    EXPECT_FALSE(o.f.clock_mhz);
    EXPECT_TRUE(any_note_contains(o.notes, "2050 MHz"));
  }
}

TEST(XpuSmi, DiscoveryDetailedTable) {
  ParseResult r = parse_xpu_smi(test::read_fixture(kDetail));
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u);
  const auto& o = r.devices[0];
  EXPECT_EQ(o.f.tool_index, 0);
  EXPECT_EQ(o.f.model, "Intel(R) Graphics [0x020a]");
  EXPECT_EQ(o.f.bus_id, "0000:4d:00.0");
  EXPECT_EQ(o.f.driver_version, "16929133");
  EXPECT_EQ(o.f.pcie_gen, 4);
  EXPECT_EQ(o.f.pcie_width, 16);
  EXPECT_EQ(o.f.vram_total_mb, 32768);
  EXPECT_EQ(o.f.memory_bus_width, 128);
  EXPECT_FALSE(o.f.num_sm);  // EUs are not SMs/CUs
  EXPECT_TRUE(any_note_contains(o.notes, "512 execution units"));
  EXPECT_TRUE(any_note_contains(o.notes, "1400 MHz"));
  EXPECT_FALSE(o.f.clock_mhz);
  EXPECT_FALSE(o.f.uuid && o.f.uuid->empty());
}

TEST(XpuSmi, DumpCsvWideMapsByHeader) {
  ParseResult r = parse_xpu_smi(test::read_fixture(kWide));
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 2u);
  EXPECT_EQ(r.devices[0].f.bus_id, "0000:4d:00.0");
  EXPECT_EQ(r.devices[1].f.bus_id, "0000:b3:00.0");
  for (const auto& o : r.devices) {
    EXPECT_EQ(o.f.model, "Intel(R) Data Center GPU Flex 170");
    EXPECT_EQ(o.f.pci_device_id, 0x56c0u);
    EXPECT_EQ(o.f.pci_vendor_id, 0x8086u);
    EXPECT_EQ(o.f.vendor, "intel");
    EXPECT_EQ(o.f.vram_total_mb, 14248);
    EXPECT_EQ(o.f.pcie_gen, 4);
    EXPECT_EQ(o.f.pcie_width, 16);
    EXPECT_EQ(o.f.driver_version, "I915_23.10.72_PSB_230810.17");
    EXPECT_FALSE(o.f.memory_bus_width);  // "" = unknown
  }
}

TEST(XpuSmi, DetailedJsonSingleObject) {
  const char* t = R"({"device_id": 1, "device_name": "Intel(R) Data Center GPU Max 1550",
    "pci_bdf_address": "0000:9a:00.0", "pci_device_id": "0xbd5", "pci_vendor_id": "0x8086",
    "memory_physical_size_byte": "137438953472", "pcie_generation": "5",
    "pcie_max_link_width": "16", "driver_version": "1.3.27191", "core_clock_rate_mhz": "1600",
    "device_function_type": "virtual", "memory_bus_width": "unknown"})";
  ParseResult r = parse_xpu_smi(t);
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u);
  const auto& o = r.devices[0];
  EXPECT_EQ(o.f.tool_index, 1);
  EXPECT_EQ(o.f.bus_id, "0000:9a:00.0");
  EXPECT_EQ(o.f.pci_device_id, 0x0bd5u);
  EXPECT_EQ(o.f.vram_total_mb, 131072);
  EXPECT_EQ(o.f.pcie_gen, 5);
  EXPECT_EQ(o.f.pcie_width, 16);
  EXPECT_EQ(o.f.driver_version, "1.3.27191");
  EXPECT_FALSE(o.f.memory_bus_width);
  EXPECT_TRUE(any_note_contains(o.notes, "virtual function"));
  EXPECT_TRUE(any_note_contains(o.notes, "1600 MHz"));
}

TEST(XpuSmi, TableTwoDevicesAndWrappedValue) {
  const char* t =
      "+-----------+------------------------------------------+\n"
      "| Device ID | Device Information                       |\n"
      "+-----------+------------------------------------------+\n"
      "| 0         | Device Name: Intel(R) Data Center GPU    |\n"
      "|           |   Flex 170                               |\n"
      "|           | PCI BDF Address: 0000:4D:00.0            |\n"
      "|           | Function Type: physical                  |\n"
      "+-----------+------------------------------------------+\n"
      "| 1         | Device Name: Intel(R) Data Center GPU    |\n"
      "|           |   Flex 170                               |\n"
      "|           | PCI BDF Address: 0000:b3:00.0            |\n"
      "|           | PCI Device ID: [REDACTED]                |\n"
      "+-----------+------------------------------------------+\n";
  ParseResult r = parse_xpu_smi(t);
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 2u);
  EXPECT_EQ(r.devices[0].f.model, "Intel(R) Data Center GPU Flex 170");
  EXPECT_EQ(r.devices[0].f.bus_id, "0000:4d:00.0");
  EXPECT_EQ(r.devices[1].f.tool_index, 1);
  EXPECT_EQ(r.devices[1].f.bus_id, "0000:b3:00.0");
  EXPECT_FALSE(r.devices[1].f.pci_device_id);  // "[REDACTED]" is a missing marker
}

TEST(XpuSmi, NoDeviceAndErrors) {
  ParseResult n = parse_xpu_smi("No device discovered\n");
  EXPECT_TRUE(n.recognized);
  EXPECT_TRUE(n.devices.empty());
  EXPECT_TRUE(any_note_contains(n.notes, "No device discovered"));

  ParseResult e = parse_xpu_smi("Error: Level Zero Initialization Error\n");
  EXPECT_FALSE(e.recognized);
  EXPECT_TRUE(any_note_contains(e.notes, "xpu-smi reported: Error: Level Zero Initialization"));

  ParseResult j = parse_xpu_smi(R"({"error": "Level Zero Initialization Error", "errno": 3})");
  EXPECT_FALSE(j.recognized);
  EXPECT_TRUE(any_note_contains(j.notes, "Level Zero Initialization Error"));

  ParseResult emptylist = parse_xpu_smi(R"({"device_list": []})");
  EXPECT_TRUE(emptylist.recognized);
  EXPECT_TRUE(emptylist.devices.empty());
}

TEST(XpuSmi, EmptyGarbageForeign) {
  ParseResult e = parse_xpu_smi("");
  EXPECT_FALSE(e.recognized);
  EXPECT_TRUE(any_note_contains(e.notes, "empty"));
  ParseResult g = parse_xpu_smi(std::string("\x00\x01\xff garbage\n|||\n", 15));
  EXPECT_FALSE(g.recognized);
  EXPECT_TRUE(g.devices.empty());
  ParseResult c = parse_xpu_smi("a,b,c\n1,2,3\n");
  EXPECT_FALSE(c.recognized);
  ParseResult f = parse_xpu_smi(R"({"period": {"duration": 1.0}})");
  EXPECT_FALSE(f.recognized);
  ParseResult bad = parse_xpu_smi("{\"device_list\": [");
  EXPECT_FALSE(bad.recognized);
}

TEST(XpuSmi, HugeDeviceCountsAreCapped) {
  std::string csv = "Device ID,Device Name\n";
  for (int i = 0; i < 3000; ++i) csv += std::to_string(i) + ",\"Intel(R) Graphics\"\n";
  ParseResult r = parse_xpu_smi(csv);
  ASSERT_TRUE(r.recognized);
  EXPECT_EQ(r.devices.size(), 1024u);
  EXPECT_TRUE(any_note_contains(r.notes, "more than 1024"));
}

}  // namespace
}  // namespace grey
