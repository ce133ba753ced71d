// rocm-smi parsers against the real captures in tests/fixtures/rocm-smi (facts from
// tests/fixtures/SOURCES.md) and the documented shapes in tests/fixtures/handmade/rocm-smi-*.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "sources/parsers.h"
#include "test_util.h"
#include "util/strings.h"

namespace grey {
namespace {

using test::read_fixture;

bool any_note_contains(const std::vector<std::string>& notes, const std::string& needle) {
  for (const auto& n : notes)
    if (n.find(needle) != std::string::npos) return true;
  return false;
}

// --- JSON captures ------------------------------------------------------------------------------

TEST(RocmSmiJson, Mi100SixCardsRocm571GpuIdKey) {
  ParseResult r = parse_rocm_smi_json(
      read_fixture("rocm-smi/amd-instinct-mi100-x6-rocm5.7.1-json-telegraf.json"));
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 6u);  // "system" with its PID104225 and topology keys is no card
  const char* buses[] = {"0000:1e:00.0", "0000:22:00.0", "0000:3f:00.0",
                         "0000:43:00.0", "0000:46:00.0", "0000:49:00.0"};
  const double edge[] = {31, 30, 31, 33, 32, 33};
  for (int i = 0; i < 6; ++i) {
    const GpuFields& f = r.devices[i].f;
    SCOPED_TRACE(i);
    EXPECT_EQ(f.tool_index, i);
    EXPECT_EQ(f.model, "Arcturus GL-XL [Instinct MI100]");
    EXPECT_EQ(f.pci_device_id, 0x738cu);
    EXPECT_EQ(f.pci_vendor_id, 0x1002u);
    EXPECT_EQ(f.bus_id, buses[i]);
    EXPECT_EQ(f.vram_total_mb, 32752);  // 34342961152 B
    EXPECT_EQ(f.temperature_c, edge[i]);
    EXPECT_EQ(f.driver_version, "6.2.4");
    EXPECT_EQ(f.vendor, "amd");
    EXPECT_EQ(f.kernel_driver, "amdgpu");
    EXPECT_EQ(f.power_limit_w, 290.0);
    EXPECT_EQ(f.numa_node, 0);
    EXPECT_EQ(f.pcie_gen, 3);  // "8.0GT/s x16"
    EXPECT_EQ(f.pcie_width, 16);
  }
  EXPECT_EQ(r.devices[0].f.power_draw_w, 39.0);
  EXPECT_EQ(r.devices[0].f.vram_used_mb, 6);  // 6782976 B
  // Free from bytes, the sysfs rule: (34342961152 - 6782976) B = 32745.53 MiB -> 32745, not
  // the rounded 32752 - 6 = 32746.
  EXPECT_EQ(r.devices[0].f.vram_free_mb, 32745);
  EXPECT_EQ(r.devices[0].f.vram_free_mb,
            bytes_to_mib(34342961152ull - 6782976ull));  // = sysfs's read_vram rule
  EXPECT_EQ(r.devices[0].f.utilization_pct, 0);
}

TEST(RocmSmiJson, Mi50OnlyCard0CountsAlthoughTopologyListsEight) {
  ParseResult r = parse_rocm_smi_json(
      read_fixture("rocm-smi/amd-radeon-instinct-mi50-32gb-json-telegraf.json"));
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u);
  const GpuFields& f = r.devices[0].f;
  EXPECT_EQ(f.model, "Radeon Instinct MI50 32GB");
  EXPECT_EQ(f.pci_device_id, 0x66a1u);
  EXPECT_EQ(f.bus_id, "0000:63:00.0");
  EXPECT_EQ(f.vram_total_mb, 32752);
  EXPECT_EQ(f.temperature_c, 36.0);
  EXPECT_EQ(f.power_draw_w, 26.0);
  EXPECT_EQ(f.power_limit_w, 225.0);
  EXPECT_EQ(f.driver_version, "5.9.17");
  EXPECT_EQ(f.pcie_gen, 4);
  EXPECT_EQ(f.pcie_width, 16);
}

TEST(RocmSmiJson, Rx6700xtRocm602SecondaryDiePowerIsUnknown) {
  ParseResult r = parse_rocm_smi_json(
      read_fixture("rocm-smi/amd-radeon-rx6700xt-rocm6.0.2-json-na-secondary-die-telegraf.json"));
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u);
  const GpuFields& f = r.devices[0].f;
  EXPECT_EQ(f.model, "Navi 22 [Radeon RX 6700/6700 XT / 6800M]");
  EXPECT_EQ(f.pci_device_id, 0x73dfu);  // not "Card model" 0x6601 (a subsystem id here)
  EXPECT_EQ(f.bus_id, "0000:07:00.0");
  EXPECT_EQ(f.vram_total_mb, 12272);
  EXPECT_EQ(f.temperature_c, 45.0);
  EXPECT_FALSE(f.power_draw_w.has_value());  // "N/A (Secondary die)"
  EXPECT_EQ(f.power_limit_w, 211.0);
  EXPECT_EQ(f.driver_version, "6.3.6");
  EXPECT_FALSE(f.compute_capability.has_value());
}

TEST(RocmSmiJson, Rx6700xtRocm612DeviceNameKeyAndGfxVersion) {
  std::string text =
      read_fixture("rocm-smi/amd-radeon-rx6700xt-rocm6.1.2-json-device-name-key-telegraf.json");
  ASSERT_EQ(text.front(), '\n');  // the capture starts with a blank line
  ParseResult r = parse_rocm_smi_json(text);
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u);
  const GpuFields& f = r.devices[0].f;
  EXPECT_EQ(f.model, "Navi 22 [Radeon RX 6700/6700 XT / 6800M]");
  EXPECT_EQ(f.pci_device_id, 0x73dfu);
  EXPECT_EQ(f.bus_id, "0000:07:00.0");
  EXPECT_EQ(f.vram_total_mb, 12272);  // 12868124672 B
  EXPECT_EQ(f.temperature_c, 45.0);
  EXPECT_EQ(f.power_draw_w, 6.0);
  EXPECT_EQ(f.power_limit_w, 211.0);
  EXPECT_EQ(f.driver_version, "6.3.6");
  EXPECT_EQ(f.compute_capability, "gfx1031");
}

// Old ROCm reports the vendor id as the card series: "0x1002" is no name. The same capture with
// that value in "Card series": the real "Device Name" stands; without it, no model (the merge
// then looks the PCI id up, with a note).
TEST(RocmSmiJson, VendorIdAsCardSeriesIsNoName) {
  std::string text =
      read_fixture("rocm-smi/amd-radeon-rx6700xt-rocm6.0.2-json-na-secondary-die-telegraf.json");
  const std::string from = "\"Card series\": \"Navi 22 [Radeon RX 6700/6700 XT / 6800M]\"";
  size_t at = text.find(from);
  ASSERT_NE(at, std::string::npos);
  text.replace(at, from.size(), "\"Card series\": \"0x1002\"");
  ParseResult r = parse_rocm_smi_json(text);
  ASSERT_EQ(r.devices.size(), 1u);
  EXPECT_FALSE(r.devices[0].f.model.has_value());
  EXPECT_EQ(r.devices[0].f.pci_device_id, 0x73dfu);
  bool noted = false;
  for (const auto& n : r.devices[0].notes) noted |= n.find("'0x1002' is a placeholder") != n.npos;
  EXPECT_TRUE(noted);
}

TEST(RocmSmiJson, Vega10WithoutNameKeepsDeviceIdForLookup) {
  ParseResult r =
      parse_rocm_smi_json(read_fixture("rocm-smi/amd-radeon-vega10-xt-json-telegraf.json"));
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u);
  const GpuFields& f = r.devices[0].f;
  EXPECT_FALSE(f.model.has_value());  // no "Card series"; "Card model" 0xc1e is no name
  EXPECT_EQ(f.pci_device_id, 0x6861u);
  EXPECT_EQ(f.pci_vendor_id, 0x1002u);
  EXPECT_EQ(f.bus_id, "0000:04:00.0");
  EXPECT_EQ(f.vram_total_mb, 16368);  // 17163091968 B
  EXPECT_EQ(f.temperature_c, 39.0);
  EXPECT_EQ(f.power_draw_w, 15.0);
  EXPECT_EQ(f.power_limit_w, 170.0);
  EXPECT_EQ(f.driver_version, "5.9.25");
  EXPECT_EQ(r.devices[0].display_name(), "PCI 1002:6861");
}

// --- JSON shapes of other versions (written inline: key names from rocm-smi issues) -----------

TEST(RocmSmiJson, CaseInsensitiveKeysAndDecimalGfxStepping) {
  // `rocm-smi --showproductname --json` of ROCm 6.x (ROCm/rocm_smi_lib issue #159): "Card Series",
  // "GFX Version" printed with a decimal stepping for gfx90a.
  ParseResult r = parse_rocm_smi_json(R"J({
    "card0": {"Card Series": "AMD INSTINCT MI200 (MCM) OAM LC MBA HPE C2", "Card Model": "0x7408",
              "Card Vendor": "Advanced Micro Devices, Inc. [AMD/ATI]", "Card SKU": "D65201",
              "Subsystem ID": "0x0b0c", "Device Rev": "0x00", "Node ID": "7", "GUID": "58294",
              "GFX Version": "gfx9010"},
    "card1": {"CARD SERIES": "AMD INSTINCT MI200 (MCM) OAM LC MBA HPE C2", "gfx version": "gfx90a",
              "Current Socket Graphics Package Power (W)": "7.222", "GPU use (%)": "19",
              "PCI Bus": "0000:C4:00.0", "Unknown future key": "42"}})J");
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 2u);
  EXPECT_EQ(r.devices[0].f.model, "AMD INSTINCT MI200 (MCM) OAM LC MBA HPE C2");
  EXPECT_EQ(r.devices[0].f.compute_capability, "gfx90a");
  EXPECT_TRUE(any_note_contains(r.devices[0].notes, "gfx9010"));
  EXPECT_FALSE(r.devices[0].f.pci_device_id.has_value());  // Card Model is not the device id
  EXPECT_EQ(r.devices[1].f.model, "AMD INSTINCT MI200 (MCM) OAM LC MBA HPE C2");
  EXPECT_EQ(r.devices[1].f.compute_capability, "gfx90a");
  EXPECT_EQ(r.devices[1].f.power_draw_w, 7.222);
  EXPECT_EQ(r.devices[1].f.utilization_pct, 19);
  EXPECT_EQ(r.devices[1].f.bus_id, "0000:c4:00.0");
  EXPECT_TRUE(r.devices[1].notes.empty());
}

TEST(RocmSmiJson, JunctionTemperatureWhenNoEdgeSensor) {
  ParseResult r = parse_rocm_smi_json(R"J({"card0": {"Temperature (Sensor memory) (C)": "33.0",
      "Temperature (Sensor junction) (C)": "35.0"},
      "card1": {"Temperature (Sensor junction) (C)": "50.0", "Temperature (Sensor edge) (C)": "44.0"}})J");
  ASSERT_EQ(r.devices.size(), 2u);
  EXPECT_EQ(r.devices[0].f.temperature_c, 35.0);  // memory sensor is not the GPU temperature
  EXPECT_EQ(r.devices[1].f.temperature_c, 44.0);  // edge preferred whatever the order
}

TEST(RocmSmiJson, BadIdsAreNotedNotInvented) {
  ParseResult r = parse_rocm_smi_json(
      R"J({"card3": {"Device ID": "REDACTED", "PCI Bus": "somewhere", "VRAM Total Memory (B)": "N/A",
                    "Max Graphics Package Power (W)": "0.0"}})J");
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u);
  const Observation& o = r.devices[0];
  EXPECT_EQ(o.f.tool_index, 3);
  EXPECT_FALSE(o.f.pci_device_id.has_value());
  EXPECT_FALSE(o.f.pci_vendor_id.has_value());
  EXPECT_FALSE(o.f.bus_id.has_value());
  EXPECT_FALSE(o.f.vram_total_mb.has_value());
  EXPECT_FALSE(o.f.power_limit_w.has_value());
  EXPECT_TRUE(any_note_contains(o.notes, "REDACTED"));
  EXPECT_TRUE(any_note_contains(o.notes, "somewhere"));
}

TEST(RocmSmiJson, SystemOnlyOrEmptyIsRecognizedWithoutDevices) {
  ParseResult sys = parse_rocm_smi_json(R"J({"system": {"Driver version": "6.3.6"}})J");
  EXPECT_TRUE(sys.recognized);
  EXPECT_TRUE(sys.devices.empty());
  EXPECT_TRUE(any_note_contains(sys.notes, "no cards"));
  ParseResult empty = parse_rocm_smi_json("{}");
  EXPECT_TRUE(empty.recognized);
  EXPECT_TRUE(empty.devices.empty());
}

TEST(RocmSmiJson, OtherJsonIsNotRocmSmi) {
  ParseResult frag = parse_rocm_smi_json(
      read_fixture("amd-smi/mi300x-static-json-gpu0-vram-jq-fragment-rocm-blog.json"));
  EXPECT_FALSE(frag.recognized);
  EXPECT_TRUE(frag.devices.empty());
  ParseResult arr = parse_rocm_smi_json("[1, 2, 3]");
  EXPECT_FALSE(arr.recognized);
  ParseResult deep = parse_rocm_smi_json(std::string(5000, '[') + std::string(5000, ']'));
  EXPECT_FALSE(deep.recognized);
}

TEST(RocmSmiJson, ErrorAndWarningTexts) {
  ParseResult none = parse_rocm_smi_json(read_fixture("handmade/rocm-smi-no-gpus-warning.txt"));
  EXPECT_TRUE(none.recognized);
  EXPECT_TRUE(none.devices.empty());
  EXPECT_TRUE(any_note_contains(none.notes, "WARNING: No AMD GPUs specified"));

  ParseResult drv =
      parse_rocm_smi_json(read_fixture("handmade/rocm-smi-driver-not-initialized.txt"));
  EXPECT_FALSE(drv.recognized);
  EXPECT_TRUE(any_note_contains(drv.notes, "Driver not initialized (amdgpu not found in modules)"));

  ParseResult empty = parse_rocm_smi_json("  \n");
  EXPECT_FALSE(empty.recognized);
  EXPECT_TRUE(any_note_contains(empty.notes, "empty"));

  ParseResult nvidia = parse_rocm_smi_json(
      read_fixture("nvidia-smi-table/"
                   "error-couldnt-communicate-with-driver-gcp-compute-gpu-installation-pr18.txt"));
  EXPECT_FALSE(nvidia.recognized);
  EXPECT_TRUE(nvidia.devices.empty());
}

TEST(RocmSmiJson, TruncatedDocumentIsReadLeniently) {
  std::string text = read_fixture("rocm-smi/amd-instinct-mi100-x6-rocm5.7.1-json-telegraf.json");
  size_t card3 = text.find("\"card3\"");
  ASSERT_NE(card3, std::string::npos);
  size_t cut = text.find("VRAM Total Memory", card3);
  ParseResult r = parse_rocm_smi_json(text.substr(0, cut));
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 4u);
  EXPECT_TRUE(any_note_contains(r.notes, "truncated"));
  EXPECT_EQ(r.devices[2].f.bus_id, "0000:3f:00.0");
  EXPECT_EQ(r.devices[2].f.vram_total_mb, 32752);
  EXPECT_EQ(r.devices[3].f.bus_id, "0000:43:00.0");  // read before the cut
  EXPECT_FALSE(r.devices[3].f.vram_total_mb.has_value());
  EXPECT_FALSE(r.devices[3].f.driver_version.has_value());  // "system" was cut off
}

// --- Text forms ---------------------------------------------------------------------------------

TEST(RocmSmiText, Mi300xConciseTableWithNameLines) {
  ParseResult r =
      parse_rocm_smi_text(read_fixture("rocm-smi/amd-instinct-mi300x-x4-concise-thamada.txt"));
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 4u);
  const double junction[] = {35.0, 37.0, 34.0, 38.0};
  const double socket[] = {133.0, 131.0, 131.0, 137.0};
  for (int i = 0; i < 4; ++i) {
    const GpuFields& f = r.devices[i].f;
    SCOPED_TRACE(i);
    EXPECT_EQ(f.tool_index, i);
    EXPECT_EQ(f.model, "AMD Instinct MI300X");
    EXPECT_EQ(f.pci_device_id, 0x74a1u);  // "[0x74a1 : 0x00]"
    EXPECT_EQ(f.temperature_c, junction[i]);
    EXPECT_EQ(f.power_draw_w, socket[i]);
    EXPECT_EQ(f.power_limit_w, 750.0);
    EXPECT_EQ(f.utilization_pct, 0);
    EXPECT_FALSE(f.bus_id.has_value());  // not in this view
    EXPECT_FALSE(f.vram_total_mb.has_value());
    EXPECT_EQ(f.kernel_driver, "amdgpu");
  }
}

TEST(RocmSmiText, Rocm6DidGuidLayoutWithPartitionRows) {
  ParseResult r =
      parse_rocm_smi_text(read_fixture("handmade/rocm-smi-concise-rocm6-did-guid-partitions.txt"));
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 4u);
  for (const auto& o : r.devices) EXPECT_EQ(o.f.pci_device_id, 0x75a0u);
  EXPECT_EQ(r.devices[0].f.temperature_c, 60.0);
  EXPECT_EQ(r.devices[0].f.power_draw_w, 319.0);
  EXPECT_EQ(r.devices[0].f.power_limit_w, 1000.0);
  EXPECT_EQ(r.devices[0].f.utilization_pct, 0);
  EXPECT_EQ(r.devices[2].f.temperature_c, 62.0);
  EXPECT_EQ(r.devices[2].f.power_draw_w, 299.0);
  EXPECT_FALSE(r.devices[1].f.temperature_c.has_value());
  EXPECT_FALSE(r.devices[1].f.power_draw_w.has_value());
  EXPECT_FALSE(r.devices[1].f.power_limit_w.has_value());
  EXPECT_FALSE(r.devices[3].f.utilization_pct.has_value());
  EXPECT_FALSE(r.devices[0].f.model.has_value());  // no name line in this layout
}

TEST(RocmSmiText, LegacyRocm1ConciseTable) {
  ParseResult r = parse_rocm_smi_text(read_fixture("handmade/rocm-smi-concise-legacy-rocm1.txt"));
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 2u);
  EXPECT_EQ(r.devices[0].f.temperature_c, 35.0);
  EXPECT_EQ(r.devices[0].f.power_draw_w, 73.68);
  EXPECT_EQ(r.devices[1].f.tool_index, 1);
  EXPECT_EQ(r.devices[1].f.temperature_c, 37.0);
  EXPECT_EQ(r.devices[1].f.power_draw_w, 29.225);
  EXPECT_FALSE(r.devices[1].f.model.has_value());
  EXPECT_FALSE(r.devices[1].f.power_limit_w.has_value());
}

TEST(RocmSmiText, GpuKeyValueLinesOfShowProductName) {
  ParseResult r =
      parse_rocm_smi_text(read_fixture("handmade/rocm-smi-showproductname-showbus-mi300x.txt"));
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 2u);
  const GpuFields& a = r.devices[0].f;
  EXPECT_EQ(a.model, "AMD Instinct MI300X OAM");  // tabs after "Card series:" trimmed
  EXPECT_EQ(a.pci_device_id, 0x74a1u);
  EXPECT_EQ(a.bus_id, "0000:26:00.0");
  EXPECT_EQ(a.temperature_c, 35.0);
  EXPECT_EQ(a.power_limit_w, 750.0);
  EXPECT_EQ(a.power_draw_w, 133.0);
  EXPECT_EQ(a.clock_mhz, 2100);
  EXPECT_EQ(a.driver_version, "6.7.0");
  EXPECT_EQ(r.devices[1].f.bus_id, "0000:46:00.0");
  EXPECT_EQ(r.devices[1].f.temperature_c, 37.0);
  EXPECT_EQ(r.devices[1].f.power_draw_w, 130.0);
}

TEST(RocmSmiText, OldShowProductNameLines) {
  // rocm-smi 5.x `--showproductname` (lower-case "Card series") plus old `-a` lines.
  ParseResult r = parse_rocm_smi_text(
      "========================ROCm System Management Interface========================\n"
      "Driver version: 5.6.19\n"
      "GPU[0]          : GPU ID: 0x731f\n"
      "GPU[0]          : Temperature (Sensor edge) (C): 67.0\n"
      "GPU[0]          : Temperature (Sensor junction) (C): 76.0\n"
      "GPU[0]          : pcie clock level: 1 (16.0GT/s, x16 619Mhz)\n"
      "GPU[0]\t\t: Card series:\t\tNavi 10 [Radeon RX 5600 OEM/5600 XT / 5700/5700 XT]\n"
      "GPU[0]\t\t: Card vendor:\t\tAdvanced Micro Devices, Inc. [AMD/ATI]\n"
      "GPU[0]\t\t: WARNING: Empty SysFS value: pclk\n");
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u);
  const GpuFields& f = r.devices[0].f;
  EXPECT_EQ(f.model, "Navi 10 [Radeon RX 5600 OEM/5600 XT / 5700/5700 XT]");
  EXPECT_EQ(f.pci_device_id, 0x731fu);
  EXPECT_EQ(f.temperature_c, 67.0);
  EXPECT_EQ(f.driver_version, "5.6.19");
  EXPECT_EQ(f.pcie_gen, 4);
  EXPECT_EQ(f.pcie_width, 16);
}

TEST(RocmSmiText, CsvForm) {
  ParseResult r =
      parse_rocm_smi_text(read_fixture("handmade/rocm-smi-csv-productname-meminfo-rx7900xt.csv"));
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u);
  const GpuFields& f = r.devices[0].f;
  EXPECT_EQ(f.model, "Radeon RX 7900 XT");
  EXPECT_EQ(f.vram_total_mb, 20464);  // 21458059264 B
  EXPECT_EQ(f.vram_used_mb, 26);
  EXPECT_EQ(f.compute_capability, "gfx1100");
  EXPECT_EQ(f.utilization_pct, 0);
}

TEST(RocmSmiText, JsonHandedToTheTextParserStillParses) {
  ParseResult r =
      parse_rocm_smi_text(read_fixture("rocm-smi/amd-radeon-vega10-xt-json-telegraf.json"));
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u);
  EXPECT_EQ(r.devices[0].f.pci_device_id, 0x6861u);
}

TEST(RocmSmiText, ErrorTexts) {
  ParseResult none = parse_rocm_smi_text(read_fixture("handmade/rocm-smi-no-gpus-warning.txt"));
  EXPECT_TRUE(none.recognized);
  EXPECT_TRUE(none.devices.empty());
  EXPECT_TRUE(any_note_contains(none.notes, "No AMD GPUs specified"));

  ParseResult nogpu = parse_rocm_smi_text("No GPUs found\n");
  EXPECT_TRUE(nogpu.recognized);
  EXPECT_TRUE(nogpu.devices.empty());

  ParseResult drv =
      parse_rocm_smi_text(read_fixture("handmade/rocm-smi-driver-not-initialized.txt"));
  EXPECT_FALSE(drv.recognized);
  EXPECT_TRUE(drv.devices.empty());
  EXPECT_TRUE(any_note_contains(drv.notes, "ERROR:root:Driver not initialized"));

  ParseResult empty = parse_rocm_smi_text("");
  EXPECT_FALSE(empty.recognized);
  EXPECT_TRUE(any_note_contains(empty.notes, "output is empty"));

  ParseResult other =
      parse_rocm_smi_text(read_fixture("amd-smi/mi300x-x8-list-truncated-after-3-rocm-blog.txt"));
  EXPECT_FALSE(other.recognized);
  EXPECT_TRUE(other.devices.empty());
}

}  // namespace
}  // namespace grey
