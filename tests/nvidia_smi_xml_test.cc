// parse_nvidia_smi_xml against every capture in tests/fixtures/nvidia-smi-xml (facts from
// SOURCES.md), plus damaged and foreign inputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <string>

#include "sources/parsers.h"
#include "test_util.h"

namespace grey {
namespace {

using test::read_fixture;

const char* const kDir = "nvidia-smi-xml/";

ParseResult parse_fixture(const std::string& name) {
  return parse_nvidia_smi_xml(read_fixture(std::string(kDir) + name));
}

bool any_note_contains(const std::vector<std::string>& notes, const std::string& needle) {
  for (const auto& n : notes)
    if (n.find(needle) != std::string::npos) return true;
  return false;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  size_t pos = 0;
  while ((pos = s.find(from, pos)) != std::string::npos) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
  return s;
}

// Every fixture, with the facts SOURCES.md lists for it.
struct XmlFacts {
  const char* file;
  const char* driver;
  const char* cuda;  // nullptr: not checked
  const char* model;
  const char* bus_id;
  std::optional<uint32_t> device_id;  // nullopt: the id is unusable in the capture
  int64_t vram_total;
  std::optional<int64_t> vram_used;
  double temp_c;
  std::optional<double> power_draw;
};

const XmlFacts kFacts[] = {
    {"nvidia-tesla-t4-515.105.01-telegraf.xml", "515.105.01", "11.7", "Tesla T4", "0000:00:1e.0",
     0x1eb8, 15360, 1032, 40, 26.78},
    {"nvidia-a10g-515.105.01-telegraf.xml", "515.105.01", nullptr, "NVIDIA A10G", "0000:00:1e.0",
     std::nullopt, 23028, std::nullopt, 17, 25.58},
    {"nvidia-rtx-pro-6000-blackwell-maxq-590.44.01-telegraf.xml", "590.44.01", nullptr,
     "NVIDIA RTX PRO 6000 Blackwell Max-Q Workstation Edition", "0000:61:00.0", 0x2bb4, 97887,
     65720, 24, 3.99},
    {"nvidia-rtx-4000-sff-ada-595.84-telegraf.xml", "595.84", "13.2",
     "NVIDIA RTX 4000 SFF Ada Generation", "0000:06:00.0", 0x27b0, 20475, std::nullopt, 38, 8.44},
    {"nvidia-quadro-p400-418.43-no-doctype-telegraf.xml", "418.43", nullptr, "Quadro P400",
     "0000:43:00.0", 0x1cb3, 1998, std::nullopt, 33, std::nullopt},
    {"nvidia-geforce-gt1030-470.74-telegraf.xml", "470.74", "11.4", "NVIDIA GeForce GT 1030",
     "0000:2d:00.0", 0x1d01, 1998, 875, 36, std::nullopt},
    {"nvidia-geforce-rtx3080-536.40-telegraf.xml", "536.40", "12.2", "NVIDIA GeForce RTX 3080",
     "0000:04:00.0", 0x2216, 10240, 1128, 31, 22.78},
    {"nvidia-geforce-rtx3090-redacted-ids-525.147.05-telegraf.xml", "525.147.05", nullptr,
     "NVIDIA GeForce RTX 3090", "0000:00:10.0", std::nullopt, 24576, std::nullopt, 37, 27.23},
};

class XmlFixture : public ::testing::TestWithParam<XmlFacts> {};

TEST_P(XmlFixture, YieldsTheListedFacts) {
  const XmlFacts& f = GetParam();
  ParseResult r = parse_fixture(f.file);
  ASSERT_TRUE(r.recognized) << f.file;
  ASSERT_EQ(r.devices.size(), 1u) << f.file;
  const GpuFields& g = r.devices[0].f;
  EXPECT_EQ(g.vendor, "nvidia");
  EXPECT_EQ(g.kernel_driver, "nvidia");
  EXPECT_EQ(g.driver_version, f.driver);
  if (f.cuda) {
    EXPECT_EQ(g.cuda_version, f.cuda);
  }
  EXPECT_EQ(g.model, f.model);
  EXPECT_EQ(g.bus_id, f.bus_id);
  if (f.device_id) {
    EXPECT_EQ(g.pci_device_id, f.device_id);
    EXPECT_EQ(g.pci_vendor_id, 0x10deu);
  } else {
    EXPECT_FALSE(g.pci_device_id.has_value());
    EXPECT_FALSE(g.pci_vendor_id.has_value());
  }
  EXPECT_EQ(g.vram_total_mb, f.vram_total);
  if (f.vram_used) {
    EXPECT_EQ(g.vram_used_mb, f.vram_used);
  }
  ASSERT_TRUE(g.temperature_c.has_value());
  EXPECT_DOUBLE_EQ(*g.temperature_c, f.temp_c);
  if (f.power_draw) {
    ASSERT_TRUE(g.power_draw_w.has_value());
    EXPECT_DOUBLE_EQ(*g.power_draw_w, *f.power_draw);
  } else {
    EXPECT_FALSE(g.power_draw_w.has_value()) << "power_draw is N/A in " << f.file;
  }
  EXPECT_EQ(g.tool_index, 0);
  EXPECT_FALSE(g.mig_mode.has_value()) << "current_mig is N/A in every capture";
  EXPECT_FALSE(g.compute_capability.has_value()) << "the XML has no compute capability";
}

INSTANTIATE_TEST_SUITE_P(AllSingleGpuCaptures, XmlFixture, ::testing::ValuesIn(kFacts));

TEST(NvidiaSmiXml, DualRtx2070V13) {
  ParseResult r = parse_fixture("nvidia-geforce-rtx2070-x2-590.44.01-telegraf.xml");
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 2u);
  const GpuFields& a = r.devices[0].f;
  const GpuFields& b = r.devices[1].f;
  EXPECT_EQ(a.model, "NVIDIA GeForce RTX 2070");
  EXPECT_EQ(b.model, "NVIDIA GeForce RTX 2070");
  EXPECT_EQ(a.bus_id, "0000:01:00.0");
  EXPECT_EQ(b.bus_id, "0000:02:00.0");
  EXPECT_EQ(a.tool_index, 0);
  EXPECT_EQ(b.tool_index, 1);
  EXPECT_EQ(a.driver_version, "590.44.01");
  EXPECT_EQ(a.cuda_version, "13.1");
  EXPECT_EQ(a.pci_device_id, 0x1f02u);
  EXPECT_EQ(a.vram_total_mb, 8192);
  EXPECT_EQ(b.vram_total_mb, 8192);
  EXPECT_EQ(a.vram_used_mb, 1);
  EXPECT_EQ(a.vram_free_mb, 7786);
  EXPECT_DOUBLE_EQ(*a.temperature_c, 14);
  EXPECT_DOUBLE_EQ(*b.temperature_c, 13);
  // v13: <gpu_power_readings> with instant_power_draw / current_power_limit.
  EXPECT_DOUBLE_EQ(*a.power_draw_w, 9.23);
  EXPECT_DOUBLE_EQ(*b.power_draw_w, 11.82);
  EXPECT_DOUBLE_EQ(*a.power_limit_w, 175.0);
  EXPECT_DOUBLE_EQ(*a.power_limit_default_w, 175.0);
  EXPECT_DOUBLE_EQ(*a.power_limit_min_w, 125.0);
  EXPECT_DOUBLE_EQ(*a.power_limit_max_w, 200.0);
  EXPECT_EQ(a.clock_mhz, 2100);
  EXPECT_EQ(a.pcie_gen, 3);  // max_link_gen, not the idle current_link_gen 1
  EXPECT_EQ(a.pcie_width, 16);
  EXPECT_EQ(a.thermal.slowdown_c, 91);
  EXPECT_EQ(a.thermal.shutdown_c, 94);
  EXPECT_EQ(a.thermal.max_operating_c, 89);
  EXPECT_EQ(a.persistence_mode, true);
  EXPECT_EQ(a.utilization_pct, 0);
  EXPECT_EQ(a.uuid, "GPU-12345678-aaaa-bbbb-cccc-0123456789ab");
  EXPECT_EQ(b.uuid, "GPU-12345678-aaaa-bbbb-cccc-0123456789cd");
  EXPECT_TRUE(r.notes.empty()) << r.notes[0];
}

// SPEC §9. No real capture of a MIG GPU's -q -x output is at hand: this test writes a
// <mig_devices> block (element names of nvidia-smi's DTD, values from the real H200 table
// capture's MIG rows) into the real T4 capture in place of its "None". The capture alone
// has no partitions.
TEST(NvidiaSmiXml, MigDevicesBecomePartitions) {
  std::string x = read_fixture(std::string(kDir) + "nvidia-tesla-t4-515.105.01-telegraf.xml");
  EXPECT_TRUE(parse_nvidia_smi_xml(x).devices.at(0).f.partitions.empty());
  size_t b = x.find("<mig_devices>");
  size_t e = x.find("</mig_devices>");
  ASSERT_NE(b, std::string::npos);
  x.replace(b, e - b,
            "<mig_devices><mig_device><index>0</index><gpu_instance_id>2</gpu_instance_id>"
            "<compute_instance_id>0</compute_instance_id><fb_memory_usage><total>71424 MiB"
            "</total></fb_memory_usage></mig_device><mig_device><index>1</index>"
            "<gpu_instance_id>9</gpu_instance_id><compute_instance_id>0</compute_instance_id>"
            "<fb_memory_usage><total>N/A</total></fb_memory_usage></mig_device>");
  auto r = parse_nvidia_smi_xml(x);
  ASSERT_EQ(r.devices.size(), 1u);
  const auto& p = r.devices[0].f.partitions;
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0].gi_id, 2);
  EXPECT_EQ(p[0].ci_id, 0);
  EXPECT_EQ(p[0].dev_index, 0);
  EXPECT_EQ(p[0].memory_total_mb, 71424);
  EXPECT_EQ(p[1].gi_id, 9);
  EXPECT_FALSE(p[1].memory_total_mb);
}

TEST(NvidiaSmiXml, TeslaT4V11Details) {
  ParseResult r = parse_fixture("nvidia-tesla-t4-515.105.01-telegraf.xml");
  ASSERT_EQ(r.devices.size(), 1u);
  const GpuFields& g = r.devices[0].f;
  EXPECT_EQ(g.uuid, "GPU-d37e67a5-91dd-3774-a5cb-99096249601a");
  EXPECT_EQ(g.thermal.slowdown_c, 93);
  EXPECT_EQ(g.thermal.shutdown_c, 96);
  EXPECT_EQ(g.thermal.max_operating_c, 85);
  EXPECT_DOUBLE_EQ(*g.power_limit_w, 70.0);
  EXPECT_DOUBLE_EQ(*g.power_limit_min_w, 60.0);
  EXPECT_EQ(g.clock_mhz, 1590);
  EXPECT_EQ(g.pcie_gen, 3);
  EXPECT_EQ(g.pcie_width, 16);
  EXPECT_EQ(g.persistence_mode, false);
  EXPECT_FALSE(g.numa_node.has_value());
}

TEST(NvidiaSmiXml, Rtx3080V12WindowsPowerAndPersistenceNA) {
  ParseResult r = parse_fixture("nvidia-geforce-rtx3080-536.40-telegraf.xml");
  ASSERT_EQ(r.devices.size(), 1u);
  const GpuFields& g = r.devices[0].f;
  EXPECT_DOUBLE_EQ(*g.power_limit_w, 336.0);  // current_power_limit
  EXPECT_DOUBLE_EQ(*g.power_limit_default_w, 320.0);
  EXPECT_DOUBLE_EQ(*g.power_limit_min_w, 100.0);
  EXPECT_DOUBLE_EQ(*g.power_limit_max_w, 336.0);
  EXPECT_FALSE(g.persistence_mode.has_value()) << "persistence_mode is N/A on Windows";
  EXPECT_EQ(g.tool_index, 0) << "minor_number is N/A; the index is the document order";
  EXPECT_EQ(g.thermal.max_operating_c, 93);
}

TEST(NvidiaSmiXml, Gt1030TargetTemperatureFallbackAndNoPowerDraw) {
  ParseResult r = parse_fixture("nvidia-geforce-gt1030-470.74-telegraf.xml");
  const GpuFields& g = r.devices.at(0).f;
  EXPECT_EQ(g.thermal.slowdown_c, 99);
  EXPECT_EQ(g.thermal.shutdown_c, 102);
  EXPECT_EQ(g.thermal.max_operating_c, 83);  // gpu_temp_max_gpu_threshold is N/A
  EXPECT_EQ(g.pcie_width, 4);
  EXPECT_DOUBLE_EQ(*g.power_limit_w, 30.0);
  EXPECT_DOUBLE_EQ(*g.power_limit_min_w, 25.5);
}

TEST(NvidiaSmiXml, QuadroP400AllPowerNA) {
  ParseResult r = parse_fixture("nvidia-quadro-p400-418.43-no-doctype-telegraf.xml");
  const GpuFields& g = r.devices.at(0).f;
  EXPECT_FALSE(g.power_limit_w.has_value());
  EXPECT_FALSE(g.power_limit_default_w.has_value());
  EXPECT_FALSE(g.thermal.max_operating_c.has_value());
  EXPECT_EQ(g.thermal.slowdown_c, 100);
  EXPECT_EQ(g.cuda_version, "10.1");
}

TEST(NvidiaSmiXml, OddAndRedactedDeviceIdsGetANote) {
  ParseResult a10g = parse_fixture("nvidia-a10g-515.105.01-telegraf.xml");
  ASSERT_EQ(a10g.devices.size(), 1u);
  EXPECT_TRUE(any_note_contains(a10g.devices[0].notes, "000000DE"));
  EXPECT_EQ(a10g.devices[0].f.pcie_gen, 4);

  ParseResult r3090 = parse_fixture("nvidia-geforce-rtx3090-redacted-ids-525.147.05-telegraf.xml");
  ASSERT_EQ(r3090.devices.size(), 1u);
  EXPECT_TRUE(any_note_contains(r3090.devices[0].notes, "[REDACTED]"));
  EXPECT_TRUE(any_note_contains(r3090.devices[0].notes, "not hex"));
  // A power limit lowered below the default is read as set.
  EXPECT_DOUBLE_EQ(*r3090.devices[0].f.power_limit_w, 200.0);
  EXPECT_DOUBLE_EQ(*r3090.devices[0].f.power_limit_default_w, 350.0);
}

TEST(NvidiaSmiXml, TLimitRelativeThresholdsAreNotTakenAsAbsolute) {
  ParseResult r = parse_fixture("nvidia-rtx-pro-6000-blackwell-maxq-590.44.01-telegraf.xml");
  const Observation& o = r.devices.at(0);
  EXPECT_FALSE(o.f.thermal.slowdown_c.has_value());
  EXPECT_FALSE(o.f.thermal.shutdown_c.has_value());
  EXPECT_FALSE(o.f.thermal.max_operating_c.has_value());
  EXPECT_TRUE(any_note_contains(o.notes, "T.Limit"));
  EXPECT_DOUBLE_EQ(*o.f.power_limit_max_w, 325.0);
  EXPECT_EQ(o.f.clock_mhz, 3090);

  ParseResult ada = parse_fixture("nvidia-rtx-4000-sff-ada-595.84-telegraf.xml");
  EXPECT_FALSE(ada.devices.at(0).f.thermal.slowdown_c.has_value());
  EXPECT_EQ(ada.devices.at(0).f.thermal.max_operating_c, 88);  // gpu_target_temperature
}

TEST(NvidiaSmiXml, MigModeAndPersistenceValues) {
  std::string doc = read_fixture(std::string(kDir) + "nvidia-tesla-t4-515.105.01-telegraf.xml");
  std::string on =
      replace_all(doc, "<current_mig>N/A</current_mig>", "<current_mig>Enabled</current_mig>");
  ASSERT_NE(on, doc);
  EXPECT_EQ(parse_nvidia_smi_xml(on).devices.at(0).f.mig_mode, true);
  std::string off =
      replace_all(doc, "<current_mig>N/A</current_mig>", "<current_mig>Disabled</current_mig>");
  EXPECT_EQ(parse_nvidia_smi_xml(off).devices.at(0).f.mig_mode, false);
}

TEST(NvidiaSmiXml, NumaNodeAndComputeCapabilityWhenPresent) {
  std::string doc = read_fixture(std::string(kDir) + "nvidia-tesla-t4-515.105.01-telegraf.xml");
  std::string with = replace_all(doc, "<minor_number>0</minor_number>",
                                 "<minor_number>0</minor_number><numa_id>1</numa_id>"
                                 "<compute_cap>7.5</compute_cap>");
  ASSERT_NE(with, doc);
  ParseResult r = parse_nvidia_smi_xml(with);
  const GpuFields& g = r.devices.at(0).f;
  EXPECT_EQ(g.numa_node, 1);
  EXPECT_EQ(g.compute_capability, "7.5");
}

TEST(NvidiaSmiXml, MinorNumberDifferentFromOrderIsNoted) {
  std::string doc =
      read_fixture(std::string(kDir) + "nvidia-geforce-rtx2070-x2-590.44.01-telegraf.xml");
  std::string swapped =
      replace_all(doc, "<minor_number>1</minor_number>", "<minor_number>7</minor_number>");
  ParseResult r = parse_nvidia_smi_xml(swapped);
  ASSERT_EQ(r.devices.size(), 2u);
  EXPECT_EQ(r.devices[1].f.tool_index, 1);
  EXPECT_TRUE(any_note_contains(r.devices[1].notes, "minor number 7"));
}

TEST(NvidiaSmiXml, AllZeroUuidIsDropped) {
  std::string doc = read_fixture(std::string(kDir) + "nvidia-tesla-t4-515.105.01-telegraf.xml");
  std::string masked = replace_all(doc, "GPU-d37e67a5-91dd-3774-a5cb-99096249601a",
                                   "GPU-00000000-0000-0000-0000-000000000000");
  ParseResult r = parse_nvidia_smi_xml(masked);
  EXPECT_FALSE(r.devices.at(0).f.uuid.has_value());
  EXPECT_TRUE(any_note_contains(r.devices[0].notes, "all zeros"));
}

TEST(NvidiaSmiXml, WarningLineBeforeTheDocument) {
  std::string doc = "WARNING: infoROM is corrupted at gpu 0000:00:1E.0\n" +
                    read_fixture(std::string(kDir) + "nvidia-tesla-t4-515.105.01-telegraf.xml");
  ParseResult r = parse_nvidia_smi_xml(doc);
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u);
  EXPECT_EQ(r.devices[0].f.model, "Tesla T4");
  EXPECT_TRUE(any_note_contains(r.notes, "infoROM is corrupted"));
}

TEST(NvidiaSmiXml, Utf16DocumentWithBom) {
  std::string doc = read_fixture(std::string(kDir) + "nvidia-tesla-t4-515.105.01-telegraf.xml");
  std::string utf16 = "\xFF\xFE";
  for (char c : doc) {
    utf16 += c;
    utf16 += '\0';
  }
  ParseResult r = parse_nvidia_smi_xml(utf16);
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u);
  EXPECT_EQ(r.devices[0].f.bus_id, "0000:00:1e.0");
  EXPECT_EQ(r.devices[0].f.vram_total_mb, 15360);
}

TEST(NvidiaSmiXml, EightGpuDocumentIsFastAndOrdered) {
  std::string one =
      read_fixture(std::string(kDir) + "nvidia-rtx-pro-6000-blackwell-maxq-590.44.01-telegraf.xml");
  size_t a = one.find("<gpu id");
  size_t b = one.rfind("</gpu>");
  ASSERT_NE(a, std::string::npos);
  ASSERT_NE(b, std::string::npos);
  b += 6;
  std::string gpu = one.substr(a, b - a);
  std::string doc = one.substr(0, a);
  for (int i = 0; i < 8; ++i) {
    char bus[32];
    std::snprintf(bus, sizeof bus, "00000000:%02X:00.0", 0x61 + i);
    doc += replace_all(gpu, "00000000:61:00.0", bus) + "\n";
  }
  doc += one.substr(b);
  doc = replace_all(doc, "<attached_gpus>1</attached_gpus>", "<attached_gpus>8</attached_gpus>");

  ParseResult r;
  r = parse_nvidia_smi_xml(doc);
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 8u);
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(r.devices[i].f.tool_index, i);
    char bus[32];
    std::snprintf(bus, sizeof bus, "0000:%02x:00.0", 0x61 + i);
    EXPECT_EQ(r.devices[i].f.bus_id, bus);
  }
  EXPECT_TRUE(r.notes.empty());
}

TEST(NvidiaSmiXml, AttachedGpusMismatchIsNoted) {
  std::string doc = read_fixture(std::string(kDir) + "nvidia-tesla-t4-515.105.01-telegraf.xml");
  std::string two =
      replace_all(doc, "<attached_gpus>1</attached_gpus>", "<attached_gpus>2</attached_gpus>");
  ASSERT_NE(two, doc);
  ParseResult r = parse_nvidia_smi_xml(two);
  EXPECT_EQ(r.devices.size(), 1u);
  EXPECT_TRUE(any_note_contains(r.notes, "attached_gpus says 2"));
}

// --- damaged and foreign input ---

TEST(NvidiaSmiXml, EmptyInput) {
  for (const char* s : {"", "   \n\t\n"}) {
    ParseResult r = parse_nvidia_smi_xml(s);
    EXPECT_FALSE(r.recognized);
    EXPECT_TRUE(r.devices.empty());
    EXPECT_TRUE(any_note_contains(r.notes, "empty"));
  }
}

TEST(NvidiaSmiXml, OtherXmlIsNotRecognized) {
  ParseResult r = parse_nvidia_smi_xml("<?xml version=\"1.0\"?><html><body>hi</body></html>");
  EXPECT_FALSE(r.recognized);
  EXPECT_TRUE(any_note_contains(r.notes, "no <nvidia_smi_log> root element"));
}

TEST(NvidiaSmiXml, ToolErrorTextsAreQuoted) {
  struct Case {
    const char* file;
    const char* quote;
  } cases[] = {
      {"error-couldnt-communicate-with-driver-gcp-compute-gpu-installation-pr18.txt",
       "couldn't communicate with the NVIDIA driver"},
      {"error-modprobe-fatal-plus-couldnt-communicate-nvidia-docker-issue365.txt",
       "modprobe: FATAL: Module nvidia not found."},
      {"error-nvml-no-supported-gpus-found-dra-driver-issue1008.txt",
       "No supported GPUs were found"},
  };
  for (const auto& c : cases) {
    ParseResult r = parse_nvidia_smi_xml(read_fixture(std::string("nvidia-smi-table/") + c.file));
    EXPECT_FALSE(r.recognized) << c.file;
    EXPECT_TRUE(r.devices.empty());
    EXPECT_TRUE(any_note_contains(r.notes, c.quote)) << c.file;
    EXPECT_TRUE(any_note_contains(r.notes, "nvidia-smi reported: ")) << c.file;
  }
}

TEST(NvidiaSmiXml, NoDevicesWereFound) {
  ParseResult r = parse_nvidia_smi_xml("No devices were found\n");
  EXPECT_TRUE(r.recognized);
  EXPECT_TRUE(r.devices.empty());
  EXPECT_TRUE(any_note_contains(r.notes, "No devices were found"));
}

TEST(NvidiaSmiXml, RootWithoutGpus) {
  ParseResult r = parse_nvidia_smi_xml(
      "<?xml version=\"1.0\" ?>\n<nvidia_smi_log><driver_version>550.54.15</driver_version>"
      "<attached_gpus>0</attached_gpus></nvidia_smi_log>");
  EXPECT_TRUE(r.recognized);
  EXPECT_TRUE(r.devices.empty());
  EXPECT_FALSE(r.notes.empty());
}

TEST(NvidiaSmiXml, TruncatedInsideSecondGpuKeepsTheFirst) {
  std::string doc =
      read_fixture(std::string(kDir) + "nvidia-geforce-rtx2070-x2-590.44.01-telegraf.xml");
  size_t second = doc.find("<gpu id=\"00000000:02:00.0\">");
  ASSERT_NE(second, std::string::npos);
  size_t cut = doc.find("<fb_memory_usage>", second);
  ASSERT_NE(cut, std::string::npos);
  cut = doc.find("<total>", cut) + 9;  // "<total>81"
  ParseResult r = parse_nvidia_smi_xml(std::string_view(doc).substr(0, cut));
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 2u);
  EXPECT_EQ(r.devices[0].f.vram_total_mb, 8192);
  EXPECT_EQ(r.devices[1].f.bus_id, "0000:02:00.0");
  // The cut value "81" must not be read as 81 bytes.
  EXPECT_FALSE(r.devices[1].f.vram_total_mb.has_value());
  EXPECT_TRUE(any_note_contains(r.notes, "truncated"));
  EXPECT_TRUE(any_note_contains(r.devices[1].notes, "cut off"));
}

TEST(NvidiaSmiXml, TruncatedBeforeAnyGpuIsNotRecognized) {
  std::string doc = read_fixture(std::string(kDir) + "nvidia-tesla-t4-515.105.01-telegraf.xml");
  size_t cut = doc.find("<gpu id");
  ParseResult r = parse_nvidia_smi_xml(std::string_view(doc).substr(0, cut));
  EXPECT_FALSE(r.recognized);
  EXPECT_TRUE(r.devices.empty());
  EXPECT_TRUE(any_note_contains(r.notes, "malformed"));
}

// Cuts every capture at many offsets: never crashes, and whatever a cut document yields agrees
// with the full parse (no value invented from a half-read element).
TEST(NvidiaSmiXml, TruncationSweepAgreesWithFullParse) {
  const char* files[] = {
      "nvidia-tesla-t4-515.105.01-telegraf.xml",
      "nvidia-a10g-515.105.01-telegraf.xml",
      "nvidia-geforce-rtx2070-x2-590.44.01-telegraf.xml",
      "nvidia-rtx-pro-6000-blackwell-maxq-590.44.01-telegraf.xml",
      "nvidia-rtx-4000-sff-ada-595.84-telegraf.xml",
      "nvidia-quadro-p400-418.43-no-doctype-telegraf.xml",
      "nvidia-geforce-gt1030-470.74-telegraf.xml",
      "nvidia-geforce-rtx3080-536.40-telegraf.xml",
      "nvidia-geforce-rtx3090-redacted-ids-525.147.05-telegraf.xml",
  };
  for (const char* file : files) {
    std::string doc = read_fixture(std::string(kDir) + file);
    ParseResult full = parse_nvidia_smi_xml(doc);
    ASSERT_TRUE(full.recognized);
    size_t step = std::max<size_t>(1, doc.size() / 211);
    for (size_t cut = 0; cut < doc.size(); cut += step) {
      ParseResult r = parse_nvidia_smi_xml(std::string_view(doc).substr(0, cut));
      ASSERT_LE(r.devices.size(), full.devices.size()) << file << " cut " << cut;
      if (!r.recognized) {
        EXPECT_TRUE(r.devices.empty());
      }
      EXPECT_FALSE(r.notes.empty()) << file << " cut " << cut;
      for (size_t i = 0; i < r.devices.size(); ++i) {
        const GpuFields& p = r.devices[i].f;
        const GpuFields& f = full.devices[i].f;
        auto agree = [&](const auto& part, const auto& whole, const char* what) {
          if (part) {
            EXPECT_EQ(part, whole) << what << " in " << file << " cut at " << cut;
          }
        };
        agree(p.model, f.model, "model");
        agree(p.bus_id, f.bus_id, "bus_id");
        agree(p.uuid, f.uuid, "uuid");
        agree(p.driver_version, f.driver_version, "driver");
        agree(p.vram_total_mb, f.vram_total_mb, "vram_total");
        agree(p.vram_used_mb, f.vram_used_mb, "vram_used");
        agree(p.vram_free_mb, f.vram_free_mb, "vram_free");
        agree(p.temperature_c, f.temperature_c, "temperature");
        // The last GPU of a cut document may fall back from instant_power_draw (listed after
        // average_power_draw in v13) to the average: a valid reading, only not the preferred.
        if (i + 1 < r.devices.size()) {
          agree(p.power_draw_w, f.power_draw_w, "power_draw");
        }
        agree(p.power_limit_w, f.power_limit_w, "power_limit");
        agree(p.clock_mhz, f.clock_mhz, "clock");
        agree(p.pcie_gen, f.pcie_gen, "pcie_gen");
        agree(p.pcie_width, f.pcie_width, "pcie_width");
        agree(p.pci_device_id, f.pci_device_id, "device id");
        agree(p.thermal.shutdown_c, f.thermal.shutdown_c, "shutdown");
      }
    }
  }
}

// 16 MiB of junk shaped like the format: at most 1024 devices and 16 notes (time: bench/).
std::string repeat(const std::string& unit, size_t bytes) {
  std::string s;
  s.reserve(bytes + unit.size());
  while (s.size() < bytes) s += unit;
  return s;
}

TEST(NvidiaSmiXml, HugeJunkIsBounded) {
  const std::string inputs[] = {
      std::string(16u << 20, '<'),
      "<nvidia_smi_log>" +
          repeat("<gpu><pci><pci_bus_id>0:1:0.0</pci_bus_id></pci></gpu>", 16u << 20),
      "<?xml version=\"1.0\"?><nvidia_smi_log>" + repeat("<a>", 16u << 20),
  };
  for (const std::string& in : inputs) {
    ParseResult r = parse_nvidia_smi_xml(in);
    EXPECT_LE(r.devices.size(), 1024u);
    EXPECT_LE(r.notes.size(), 16u);
  }
}

}  // namespace
}  // namespace grey
