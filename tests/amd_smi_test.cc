// amd-smi parsers against the captures in tests/fixtures/amd-smi (facts from
// tests/fixtures/SOURCES.md) and the documented shapes in tests/fixtures/handmade/amd-smi-*.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
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

// --- Captures -----------------------------------------------------------------------------------

TEST(AmdSmiText, ListOfThreeGpusWithSingleSpaceSeparators) {
  ParseResult r =
      parse_amd_smi_text(read_fixture("amd-smi/mi300x-x8-list-truncated-after-3-rocm-blog.txt"));
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 3u);
  const char* bdf[] = {"0000:05:00.0", "0000:26:00.0", "0000:46:00.0"};
  const char* uuid[] = {"afff74a1-0000-1000-8054-e92b0a5d57c8",
                        "0aff74a1-0000-1000-805b-ce698de95724",
                        "97ff74a1-0000-1000-8065-fa81273af9ce"};
  for (int i = 0; i < 3; ++i) {
    const GpuFields& f = r.devices[i].f;
    SCOPED_TRACE(i);
    EXPECT_EQ(f.tool_index, i);
    EXPECT_EQ(f.bus_id, bdf[i]);
    EXPECT_EQ(f.uuid, uuid[i]);
    EXPECT_FALSE(f.model.has_value());
    EXPECT_FALSE(f.vram_total_mb.has_value());
    EXPECT_EQ(f.vendor, "amd");
  }
}

TEST(AmdSmiText, StaticAsicAndBusSections) {
  ParseResult r = parse_amd_smi_text(
      read_fixture("amd-smi/mi300x-static-gpu0-asic-bus-truncated-rocm-blog.txt"));
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u);
  const GpuFields& f = r.devices[0].f;
  EXPECT_EQ(f.tool_index, 0);
  EXPECT_EQ(f.model, "MI300X-O");  // as printed, not a guessed marketing name
  EXPECT_EQ(f.pci_vendor_id, 0x1002u);
  EXPECT_EQ(f.pci_device_id, 0x74a1u);
  EXPECT_EQ(f.bus_id, "0000:05:00.0");
  EXPECT_EQ(f.pcie_width, 16);
  EXPECT_EQ(f.pcie_gen, 5);  // 32 GT/s, "Gen 5"
  EXPECT_EQ(f.vendor, "amd");
  EXPECT_FALSE(f.vram_total_mb.has_value());  // VRAM section cut by the author
}

TEST(AmdSmiJson, JqVramFragmentStillYieldsVram) {
  ParseResult r = parse_amd_smi_json(
      read_fixture("amd-smi/mi300x-static-json-gpu0-vram-jq-fragment-rocm-blog.json"));
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u);
  const Observation& o = r.devices[0];
  EXPECT_EQ(o.f.vram_total_mb, 196592);
  EXPECT_FALSE(o.f.model.has_value());
  EXPECT_FALSE(o.f.bus_id.has_value());
  EXPECT_FALSE(o.f.tool_index.has_value());
  EXPECT_FALSE(o.f.vendor.has_value());
  EXPECT_TRUE(any_note_contains(o.notes, "fragment"));
  EXPECT_TRUE(any_note_contains(r.notes, "fragment"));
}

// --- Documented shapes (tests/fixtures/handmade) -------------------------------------------------

// SPEC §9: amd-smi's "partition" section. No real capture of it is at hand; the test adds
// the section (key names of amd-smi static --json) to the documented MI210 shape.
TEST(AmdSmiJson, PartitionModes) {
  auto j = nlohmann::json::parse(read_fixture("handmade/amd-smi-static-json-gpu-data-mi210.json"));
  EXPECT_FALSE(parse_amd_smi_json(j.dump()).devices.at(0).f.compute_partition);
  j["gpu_data"][0]["partition"] = {
      {"compute_partition", "CPX"}, {"memory_partition", "NPS4"}, {"partition_id", 0}};
  auto r = parse_amd_smi_json(j.dump());
  ASSERT_EQ(r.devices.size(), 1u);
  EXPECT_EQ(r.devices[0].f.compute_partition, "CPX");
  EXPECT_EQ(r.devices[0].f.memory_partition, "NPS4");
  j["gpu_data"][0]["partition"] = {{"compute_partition", "N/A"}, {"memory_partition", "N/A"}};
  r = parse_amd_smi_json(j.dump());
  EXPECT_FALSE(r.devices.at(0).f.compute_partition);
  EXPECT_FALSE(r.devices.at(0).f.memory_partition);
}

TEST(AmdSmiJson, GpuDataWrapperWithValueUnitObjects) {
  ParseResult r =
      parse_amd_smi_json(read_fixture("handmade/amd-smi-static-json-gpu-data-mi210.json"));
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u);
  const Observation& o = r.devices[0];
  const GpuFields& f = o.f;
  EXPECT_EQ(f.tool_index, 0);
  EXPECT_EQ(f.model, "AMD Instinct MI210");
  EXPECT_EQ(f.pci_vendor_id, 0x1002u);
  EXPECT_EQ(f.pci_device_id, 0x740fu);
  EXPECT_EQ(f.num_sm, 104);
  EXPECT_EQ(f.compute_capability, "gfx90a");
  EXPECT_EQ(f.pcie_gen, 4);
  EXPECT_EQ(f.pcie_width, 16);
  EXPECT_EQ(f.power_limit_w, 300.0);
  EXPECT_EQ(f.power_limit_max_w, 300.0);
  EXPECT_EQ(f.power_limit_min_w, 0.0);
  EXPECT_EQ(f.thermal.slowdown_c, 99);
  EXPECT_EQ(f.thermal.shutdown_c, 99);
  EXPECT_EQ(f.kernel_driver, "amdgpu");
  EXPECT_EQ(f.driver_version, "6.14.0-24-generic");
  EXPECT_TRUE(any_note_contains(o.notes, "kernel banner"));
  EXPECT_EQ(f.numa_node, 1);
  EXPECT_EQ(f.vram_total_mb, 65520);
  EXPECT_EQ(f.memory_bus_width, 4096);
  EXPECT_EQ(f.clock_mhz, 1700);
  EXPECT_FALSE(f.bus_id.has_value());  // not in this document
}

TEST(AmdSmiJson, OlderTopLevelArrayAndStringValues) {
  // Older releases: a top-level array, values printed as strings with units.
  ParseResult r = parse_amd_smi_json(R"J([
    {"gpu": 0, "asic": {"market_name": "AMD Instinct MI300X", "vendor_id": "0x1002", "device_id": "0x74a1"},
     "bus": {"bdf": "0000:41:00.0", "max_pcie_speed": "32 GT/s", "max_pcie_width": 16},
     "driver": {"name": "amdgpu", "version": "6.10.5"},
     "vram": {"type": "HBM3", "size": "196608 MB"},
     "limit": {"max_power": "750 W", "socket_power": "750 W",
               "slowdown_edge_temperature": "N/A", "slowdown_hotspot_temperature": "100 \u00b0C"}},
    {"gpu": 3, "asic": {"market_name": "AMD Radeon PRO W7800"},
     "bus": {"bdf": "0000:42:00.0", "max_pcie_speed": "16000 MT/s"},
     "vram": {"size": {"value": 34359738368, "unit": "B"}}}])J");
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 2u);
  EXPECT_EQ(r.devices[0].f.tool_index, 0);
  EXPECT_EQ(r.devices[0].f.model, "AMD Instinct MI300X");
  EXPECT_EQ(r.devices[0].f.bus_id, "0000:41:00.0");
  EXPECT_EQ(r.devices[0].f.pcie_gen, 5);
  EXPECT_EQ(r.devices[0].f.vram_total_mb, 196608);
  EXPECT_EQ(r.devices[0].f.power_limit_w, 750.0);
  EXPECT_EQ(r.devices[0].f.driver_version, "6.10.5");
  EXPECT_EQ(r.devices[0].f.thermal.slowdown_c, 100);  // hotspot when edge is N/A
  EXPECT_EQ(r.devices[1].f.tool_index, 3);
  EXPECT_EQ(r.devices[1].f.vram_total_mb, 32768);
  EXPECT_EQ(r.devices[1].f.pcie_gen, 4);
  EXPECT_EQ(r.devices[1].f.pci_device_id, std::nullopt);
}

TEST(AmdSmiJson, ListAndMetricDocuments) {
  ParseResult list = parse_amd_smi_json(
      R"J([{"gpu": 0, "bdf": "0000:05:00.0", "uuid": "afff74a1-0000-1000-8054-e92b0a5d57c8", "kfd_id": 1, "node_id": 2}])J");
  ASSERT_EQ(list.devices.size(), 1u);
  EXPECT_EQ(list.devices[0].f.bus_id, "0000:05:00.0");
  EXPECT_EQ(list.devices[0].f.uuid, "afff74a1-0000-1000-8054-e92b0a5d57c8");

  ParseResult metric = parse_amd_smi_json(R"J({"gpu_data": [{"gpu": 1,
      "usage": {"gfx_activity": {"value": 37, "unit": "%"}},
      "power": {"socket_power": {"value": 234, "unit": "W"}},
      "temperature": {"edge": {"value": "N/A", "unit": "C"}, "hotspot": {"value": 51, "unit": "C"}},
      "mem_usage": {"total_vram": {"value": 196592, "unit": "MB"}, "used_vram": {"value": 283, "unit": "MB"},
                    "free_vram": {"value": 196309, "unit": "MB"}}}]})J");
  ASSERT_EQ(metric.devices.size(), 1u);
  const GpuFields& f = metric.devices[0].f;
  EXPECT_EQ(f.tool_index, 1);
  EXPECT_EQ(f.utilization_pct, 37);
  EXPECT_EQ(f.power_draw_w, 234.0);
  EXPECT_EQ(f.temperature_c, 51.0);
  EXPECT_EQ(f.vram_total_mb, 196592);
  EXPECT_EQ(f.vram_used_mb, 283);
  EXPECT_EQ(f.vram_free_mb, 196309);
}

TEST(AmdSmiJson, CpuOnlyAndForeignDocuments) {
  ParseResult cpu = parse_amd_smi_json(R"J([{"cpu": 0, "smu": {"fw_version": "85.90.0"}}])J");
  EXPECT_TRUE(cpu.recognized);
  EXPECT_TRUE(cpu.devices.empty());
  EXPECT_TRUE(any_note_contains(cpu.notes, "no GPU"));

  ParseResult rocm =
      parse_amd_smi_json(read_fixture("rocm-smi/amd-radeon-vega10-xt-json-telegraf.json"));
  EXPECT_FALSE(rocm.recognized);
  EXPECT_TRUE(rocm.devices.empty());

  ParseResult nums = parse_amd_smi_json("[1, 2, 3]");
  EXPECT_FALSE(nums.recognized);

  ParseResult deep = parse_amd_smi_json(std::string(100000, '[') + std::string(100000, ']'));
  EXPECT_FALSE(deep.recognized);
}

TEST(AmdSmiText, StaticWithPpt0LimitsAndCpuBlock) {
  ParseResult r =
      parse_amd_smi_text(read_fixture("handmade/amd-smi-static-mi300a-ppt0-limits.txt"));
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u);  // "CPU: 0" is no GPU
  const Observation& o = r.devices[0];
  const GpuFields& f = o.f;
  EXPECT_EQ(f.model, "AMD Instinct MI300A");  // asic MARKET_NAME wins over BOARD PRODUCT_NAME
  EXPECT_EQ(f.pci_device_id, 0x74a0u);
  EXPECT_EQ(f.num_sm, 228);
  EXPECT_EQ(f.compute_capability, "gfx942");
  EXPECT_EQ(f.bus_id, "0000:01:00.0");
  EXPECT_EQ(f.pcie_gen, 5);
  EXPECT_EQ(f.pcie_width, 16);
  EXPECT_EQ(f.power_limit_max_w, 550.0);
  EXPECT_EQ(f.power_limit_min_w, 0.0);
  EXPECT_FALSE(f.power_limit_w.has_value());  // SOCKET_POWER_LIMIT: 0 W
  EXPECT_TRUE(any_note_contains(o.notes, "0 W"));
  EXPECT_EQ(f.thermal.slowdown_c, 100);
  EXPECT_EQ(f.thermal.shutdown_c, 110);
  EXPECT_EQ(f.kernel_driver, "amdgpu");
  EXPECT_EQ(f.driver_version, "6.19.4");
  EXPECT_EQ(f.numa_node, 0);
  EXPECT_EQ(f.vram_total_mb, 96432);
  EXPECT_EQ(f.memory_bus_width, 8192);
  EXPECT_EQ(f.clock_mhz, 2100);  // top SYS level, not the 1300 MHz MEM level
}

TEST(AmdSmiText, LegacyStaticWithUnindentedSections) {
  ParseResult r =
      parse_amd_smi_text(read_fixture("handmade/amd-smi-static-legacy-flat-sections-mi300a.txt"));
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 2u);
  EXPECT_EQ(r.devices[0].f.model, "MI300A");
  EXPECT_EQ(r.devices[0].f.pci_device_id, 0x74a0u);
  EXPECT_EQ(r.devices[0].f.bus_id, "0000:01:00.0");
  EXPECT_EQ(r.devices[0].f.pcie_width, 16);  // MAX_PCIE_LANES
  EXPECT_EQ(r.devices[0].f.pcie_gen, 5);
  EXPECT_EQ(r.devices[0].f.power_limit_max_w, 550.0);
  EXPECT_FALSE(r.devices[0].f.power_limit_w.has_value());  // CURRENT_POWER: 0 W
  EXPECT_EQ(r.devices[0].f.driver_version, "6.5.2");       // DRIVER_VERSION
  EXPECT_EQ(r.devices[0].f.vram_total_mb, 96432);          // VRAM_SIZE_MB
  EXPECT_EQ(r.devices[0].f.thermal.slowdown_c, 100);
  EXPECT_EQ(r.devices[1].f.tool_index, 1);
  EXPECT_EQ(r.devices[1].f.bus_id, "0001:01:00.0");
  EXPECT_EQ(r.devices[1].f.numa_node, 1);
}

TEST(AmdSmiText, MonitorTableWithXcpAndVramUsage) {
  ParseResult r = parse_amd_smi_text(read_fixture("handmade/amd-smi-monitor-mi300x-cpx.txt"));
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 4u);
  const GpuFields& a = r.devices[0].f;
  EXPECT_EQ(a.tool_index, 0);
  EXPECT_EQ(a.power_draw_w, 183.0);
  EXPECT_EQ(a.temperature_c, 49.0);
  EXPECT_EQ(a.utilization_pct, 0);
  EXPECT_EQ(a.vram_total_mb, 196608);
  EXPECT_EQ(a.vram_used_mb, 307);
  for (int i = 1; i < 4; ++i) {
    const GpuFields& f = r.devices[i].f;
    EXPECT_EQ(f.tool_index, i);
    EXPECT_FALSE(f.power_draw_w.has_value());
    EXPECT_FALSE(f.temperature_c.has_value());
    EXPECT_EQ(f.vram_total_mb, 49152);  // "0.5/ 48.0 GB"
    EXPECT_EQ(f.vram_used_mb, 512);
  }
}

TEST(AmdSmiText, MonitorPutmOlderColumnNames) {
  ParseResult r = parse_amd_smi_text(read_fixture("handmade/amd-smi-monitor-putm-mi300x-x8.txt"));
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 8u);
  const double power[] = {182, 143, 117, 116, 118, 118, 116, 118};
  const double temp[] = {42, 40, 41, 40, 42, 39, 41, 40};
  const int util[] = {83, 13, 0, 1, 0, 0, 0, 0};
  for (int i = 0; i < 8; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(r.devices[i].f.tool_index, i);
    EXPECT_EQ(r.devices[i].f.power_draw_w, power[i]);
    EXPECT_EQ(r.devices[i].f.temperature_c, temp[i]);
    EXPECT_EQ(r.devices[i].f.utilization_pct, util[i]);
  }
}

TEST(AmdSmiText, MetricSections) {
  ParseResult r = parse_amd_smi_text(
      "GPU: 0\n"
      "    USAGE:\n"
      "        GFX_ACTIVITY: 100 %\n"
      "        VCN_ACTIVITY: [0 %, 0 %, 0 %, 0 %]\n"
      "    POWER:\n"
      "        SOCKET_POWER: 234 W\n"
      "        GFX_VOLTAGE: N/A mV\n"
      "    CLOCK:\n"
      "        GFX_0:\n"
      "            CLK: 2102 MHz\n"
      "            MAX_CLK: 2102 MHz\n"
      "    TEMPERATURE:\n"
      "        EDGE: N/A\n"
      "        HOTSPOT: 55 \u00b0C\n"
      "        MEM: 44 \u00b0C\n"
      " \n");
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u);
  const GpuFields& f = r.devices[0].f;
  EXPECT_EQ(f.utilization_pct, 100);
  EXPECT_EQ(f.power_draw_w, 234.0);
  EXPECT_EQ(f.clock_mhz, 2102);
  EXPECT_EQ(f.temperature_c, 55.0);
}

TEST(AmdSmiText, ErrorsAndNonGpuOutput) {
  ParseResult err = parse_amd_smi_text(read_fixture("handmade/amd-smi-error-no-gpu-devices.txt"));
  EXPECT_FALSE(err.recognized);
  EXPECT_TRUE(err.devices.empty());
  EXPECT_TRUE(any_note_contains(err.notes, "Unable to detect any GPU devices"));
  ParseResult errj = parse_amd_smi_json(read_fixture("handmade/amd-smi-error-no-gpu-devices.txt"));
  EXPECT_FALSE(errj.recognized);
  EXPECT_TRUE(any_note_contains(errj.notes, "Unable to detect any GPU devices"));

  ParseResult cpu = parse_amd_smi_text("CPU: 0\n    SMU:\n        FW_VERSION: 85.90.0\n");
  EXPECT_TRUE(cpu.recognized);
  EXPECT_TRUE(cpu.devices.empty());

  ParseResult empty = parse_amd_smi_text("\n\n");
  EXPECT_FALSE(empty.recognized);
  EXPECT_TRUE(any_note_contains(empty.notes, "output is empty"));

  ParseResult rocm =
      parse_amd_smi_text(read_fixture("rocm-smi/amd-instinct-mi300x-x4-concise-thamada.txt"));
  EXPECT_FALSE(rocm.recognized);
  EXPECT_TRUE(rocm.devices.empty());
}

TEST(AmdSmiText, JsonHandedToTheTextParserStillParses) {
  ParseResult r = parse_amd_smi_text(
      read_fixture("amd-smi/mi300x-static-json-gpu0-vram-jq-fragment-rocm-blog.json"));
  ASSERT_EQ(r.devices.size(), 1u);
  EXPECT_EQ(r.devices[0].f.vram_total_mb, 196592);
}

// --- Robustness -------------------------------------------------------------------------------

}  // namespace
}  // namespace grey
