// parse_nvidia_smi_csv against every capture in tests/fixtures/nvidia-smi-csv (facts from
// SOURCES.md), plus the header-mapping rules and damaged input.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <set>
#include <string>

#include "sources/parsers.h"
#include "test_util.h"
#include "util/strings.h"

namespace grey {
namespace {

using test::read_fixture;

const char* const kH100 = "nvidia-smi-csv/nvidia-h100-80gb-hbm3-590.48.01-idle-full-query-nge.csv";
const char* const kL40s = "nvidia-smi-csv/nvidia-l40s-595.80-load-full-query-nge.csv";
const char* const k4080 =
    "nvidia-smi-csv/nvidia-geforce-rtx4080-super-595.71.05-idle-full-query-nge.csv";
const char* const kApps =
    "nvidia-smi-csv/nvidia-h100-query-compute-apps-header-only-no-rows-nge.csv";

bool any_note_contains(const std::vector<std::string>& notes, const std::string& needle) {
  for (const auto& n : notes)
    if (n.find(needle) != std::string::npos) return true;
  return false;
}

// Naive split of an nvidia-smi CSV line (the captures have no quoted cells).
std::vector<std::string> cells(std::string_view line) {
  std::vector<std::string> out;
  for (auto c : split(line, ',')) out.emplace_back(trim(c));
  return out;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + v[i];
  return s;
}

std::string header_name(const std::string& h) {
  size_t br = h.find(" [");
  return br == std::string::npos ? h : h.substr(0, br);
}

TEST(NvidiaSmiCsv, H100FullQuery) {
  ParseResult r = parse_nvidia_smi_csv(read_fixture(kH100));
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u);
  const GpuFields& g = r.devices[0].f;
  EXPECT_EQ(g.vendor, "nvidia");
  EXPECT_EQ(g.kernel_driver, "nvidia");
  EXPECT_EQ(g.model, "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(g.driver_version, "590.48.01");
  EXPECT_EQ(g.bus_id, "0000:00:09.0");
  EXPECT_EQ(g.pci_vendor_id, 0x10deu);
  EXPECT_EQ(g.pci_device_id, 0x2330u);
  EXPECT_EQ(g.vram_total_mb, 81559);
  EXPECT_EQ(g.vram_used_mb, 0);
  EXPECT_EQ(g.vram_free_mb, 81081);
  EXPECT_DOUBLE_EQ(*g.temperature_c, 41);
  EXPECT_DOUBLE_EQ(*g.power_draw_w, 69.85);
  EXPECT_DOUBLE_EQ(*g.power_limit_w, 700.0);
  EXPECT_DOUBLE_EQ(*g.power_limit_default_w, 700.0);
  EXPECT_DOUBLE_EQ(*g.power_limit_min_w, 200.0);
  EXPECT_DOUBLE_EQ(*g.power_limit_max_w, 700.0);
  EXPECT_EQ(g.compute_capability, "9.0");
  EXPECT_EQ(g.mig_mode, false);
  EXPECT_EQ(g.persistence_mode, true);
  EXPECT_EQ(g.clock_mhz, 1980);
  EXPECT_EQ(g.pcie_gen, 5);
  EXPECT_EQ(g.pcie_width, 16);
  EXPECT_EQ(g.utilization_pct, 0);
  EXPECT_EQ(g.tool_index, 0);
  // The collector masked the UUID to all zeros: not an identity.
  EXPECT_FALSE(g.uuid.has_value());
  EXPECT_TRUE(any_note_contains(r.devices[0].notes, "all zeros"));
  // Not in --query-gpu output at all.
  EXPECT_FALSE(g.cuda_version.has_value());
  EXPECT_TRUE(g.thermal.empty());
}

TEST(NvidiaSmiCsv, L40sLoadWithKmdVersionColumn) {
  ParseResult r = parse_nvidia_smi_csv(read_fixture(kL40s));
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u);
  const GpuFields& g = r.devices[0].f;
  EXPECT_EQ(g.model, "NVIDIA L40S");
  EXPECT_EQ(g.driver_version, "595.80");
  EXPECT_EQ(g.bus_id, "0000:01:00.0");
  EXPECT_EQ(g.pci_device_id, 0x26b9u);
  EXPECT_EQ(g.vram_total_mb, 46068);
  EXPECT_DOUBLE_EQ(*g.temperature_c, 54);
  EXPECT_DOUBLE_EQ(*g.power_draw_w, 110.23);
  EXPECT_FALSE(g.mig_mode.has_value()) << "mig.mode.current is [N/A]";
  EXPECT_EQ(g.compute_capability, "8.9");
  EXPECT_EQ(g.utilization_pct, 9);
  EXPECT_EQ(g.persistence_mode, false);
}

TEST(NvidiaSmiCsv, Rtx4080SuperFullName) {
  ParseResult r = parse_nvidia_smi_csv(read_fixture(k4080));
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u);
  const GpuFields& g = r.devices[0].f;
  EXPECT_EQ(g.model, "NVIDIA GeForce RTX 4080 SUPER");  // untruncated, unlike the table
  EXPECT_EQ(g.driver_version, "595.71.05");
  EXPECT_EQ(g.bus_id, "0000:01:00.0");
  EXPECT_EQ(g.pci_device_id, 0x2702u);
  EXPECT_EQ(g.vram_total_mb, 16376);
  EXPECT_DOUBLE_EQ(*g.temperature_c, 43);
  EXPECT_DOUBLE_EQ(*g.power_draw_w, 26.20);
  EXPECT_EQ(g.compute_capability, "8.9");
  EXPECT_DOUBLE_EQ(*g.power_limit_max_w, 400.0);
  EXPECT_EQ(g.clock_mhz, 3165);
}

TEST(NvidiaSmiCsv, ComputeAppsHeaderOnlyIsZeroDevicesNotAnError) {
  ParseResult r = parse_nvidia_smi_csv(read_fixture(kApps));
  EXPECT_TRUE(r.recognized);
  EXPECT_TRUE(r.devices.empty());
  EXPECT_TRUE(any_note_contains(r.notes, "query-compute-apps"));
}

TEST(NvidiaSmiCsv, ComputeAppsRowsAreNotDevices) {
  std::string text = read_fixture(kApps) +
                     "2026/07/14 08:12:38.696, NVIDIA H100 80GB HBM3, 00000000:00:09.0, "
                     "0000000000000, GPU-00000000-0000-0000-0000-000000000000, 1234, python, "
                     "1024 MiB\n";
  ParseResult r = parse_nvidia_smi_csv(text);
  EXPECT_TRUE(r.recognized);
  EXPECT_TRUE(r.devices.empty());
  EXPECT_TRUE(any_note_contains(r.notes, "1 process row"));
}

// Every field we ask for is a real --query-gpu field (it heads a column of a real capture) and
// is mapped: the projection of the capture onto kNvidiaSmiQueryFields gives the same facts.
TEST(NvidiaSmiCsv, QueryFieldsAreRealAndMapped) {
  std::string text = read_fixture(kH100);
  auto lines = split_lines(text);
  ASSERT_GE(lines.size(), 2u);
  std::vector<std::string> header = cells(lines[0]);
  std::vector<std::string> row = cells(lines[1]);
  ASSERT_EQ(header.size(), row.size());

  std::vector<std::string> proj_h, proj_r;
  std::set<std::string> seen;
  for (auto field : split(kNvidiaSmiQueryFields, ',')) {
    std::string f(trim(field));
    EXPECT_TRUE(seen.insert(f).second) << "duplicate field " << f;
    auto it = std::find_if(header.begin(), header.end(),
                           [&](const std::string& h) { return header_name(h) == f; });
    ASSERT_NE(it, header.end()) << f << " is not a column of a real --query-gpu capture";
    proj_h.push_back(*it);
    proj_r.push_back(row[static_cast<size_t>(it - header.begin())]);
  }
  EXPECT_EQ(seen.size(), 22u);
  ParseResult full = parse_nvidia_smi_csv(text);
  ParseResult proj = parse_nvidia_smi_csv(join(proj_h) + "\n" + join(proj_r) + "\n");
  ASSERT_TRUE(proj.recognized);
  ASSERT_EQ(proj.devices.size(), 1u);
  const GpuFields& a = proj.devices[0].f;
  const GpuFields& b = full.devices[0].f;
  EXPECT_EQ(a.model, b.model);
  EXPECT_EQ(a.bus_id, b.bus_id);
  EXPECT_EQ(a.pci_device_id, b.pci_device_id);
  EXPECT_EQ(a.driver_version, b.driver_version);
  EXPECT_EQ(a.vram_total_mb, b.vram_total_mb);
  EXPECT_EQ(a.vram_used_mb, b.vram_used_mb);
  EXPECT_EQ(a.vram_free_mb, b.vram_free_mb);
  EXPECT_EQ(a.compute_capability, b.compute_capability);
  EXPECT_EQ(a.clock_mhz, b.clock_mhz);
  EXPECT_EQ(a.temperature_c, b.temperature_c);
  EXPECT_EQ(a.power_draw_w, b.power_draw_w);
  EXPECT_EQ(a.power_limit_w, b.power_limit_w);
  EXPECT_EQ(a.power_limit_default_w, b.power_limit_default_w);
  EXPECT_EQ(a.power_limit_min_w, b.power_limit_min_w);
  EXPECT_EQ(a.power_limit_max_w, b.power_limit_max_w);
  EXPECT_EQ(a.mig_mode, b.mig_mode);
  EXPECT_EQ(a.persistence_mode, b.persistence_mode);
  EXPECT_EQ(a.utilization_pct, b.utilization_pct);
  EXPECT_EQ(a.pcie_gen, b.pcie_gen);
  EXPECT_EQ(a.pcie_width, b.pcie_width);
  EXPECT_EQ(a.tool_index, 0);
}

TEST(NvidiaSmiCsv, ColumnOrderIsFree) {
  std::string text = read_fixture(kL40s);
  auto lines = split_lines(text);
  std::vector<std::string> header = cells(lines[0]);
  std::vector<std::string> row = cells(lines[1]);
  std::reverse(header.begin(), header.end());
  std::reverse(row.begin(), row.end());
  ParseResult r = parse_nvidia_smi_csv(join(header) + "\n" + join(row) + "\n");
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u);
  EXPECT_EQ(r.devices[0].f.model, "NVIDIA L40S");
  EXPECT_EQ(r.devices[0].f.vram_total_mb, 46068);
  EXPECT_DOUBLE_EQ(*r.devices[0].f.power_draw_w, 110.23);
  EXPECT_EQ(r.devices[0].f.bus_id, "0000:01:00.0");
}

TEST(NvidiaSmiCsv, NoUnitsForm) {
  ParseResult r = parse_nvidia_smi_csv(
      "index, name, memory.total [MiB], memory.used [MiB], power.draw [W], temperature.gpu, "
      "utilization.gpu [%], clocks.max.graphics [MHz]\n"
      "0, NVIDIA H100 80GB HBM3, 81559, 3, 69.85, 41, 12, 1980\n"
      "1, NVIDIA H100 80GB HBM3, 81559, [N/A], [N/A], 40, 0, 1980\n");
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 2u);
  EXPECT_EQ(r.devices[0].f.vram_total_mb, 81559);
  EXPECT_EQ(r.devices[0].f.vram_used_mb, 3);
  EXPECT_DOUBLE_EQ(*r.devices[0].f.power_draw_w, 69.85);
  EXPECT_EQ(r.devices[0].f.utilization_pct, 12);
  EXPECT_EQ(r.devices[0].f.clock_mhz, 1980);
  EXPECT_EQ(r.devices[1].f.tool_index, 1);
  EXPECT_FALSE(r.devices[1].f.vram_used_mb.has_value());
  EXPECT_FALSE(r.devices[1].f.power_draw_w.has_value());
}

TEST(NvidiaSmiCsv, NoHeaderCannotBeMapped) {
  std::string text = read_fixture(kH100);
  auto lines = split_lines(text);
  ParseResult r = parse_nvidia_smi_csv(std::string(lines[1]) + "\n");
  EXPECT_FALSE(r.recognized);
  EXPECT_TRUE(r.devices.empty());
  EXPECT_TRUE(any_note_contains(r.notes, "no header"));

  ParseResult r2 = parse_nvidia_smi_csv(
      "0, GPU-3f2a7c1e-0000-1111-2222-333344445555, NVIDIA H100 80GB HBM3, 00000000:1B:00.0, "
      "81559, 9.0\n");
  EXPECT_FALSE(r2.recognized);
  EXPECT_TRUE(any_note_contains(r2.notes, "no header"));
}

TEST(NvidiaSmiCsv, QuotedCells) {
  ParseResult r = parse_nvidia_smi_csv(
      "\"name\", \"memory.total [MiB]\", \"pci.bus_id\"\n"
      "\"NVIDIA Test, \"\"quoted\"\"\", \"1024 MiB\", \"00000000:65:00.0\"\n");
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u);
  EXPECT_EQ(r.devices[0].f.model, "NVIDIA Test, \"quoted\"");
  EXPECT_EQ(r.devices[0].f.vram_total_mb, 1024);
  EXPECT_EQ(r.devices[0].f.bus_id, "0000:65:00.0");
}

TEST(NvidiaSmiCsv, MultipleRowsAndCrlf) {
  std::string text = read_fixture(kH100);
  auto lines = split_lines(text);
  std::string row1(lines[1]);
  size_t p = row1.find("00000000:00:09.0");
  ASSERT_NE(p, std::string::npos);
  std::string row2 = row1;
  row2.replace(p, 16, "00000000:00:0A.0");
  // index is the 30th column in this capture; rewrite it through the header position.
  std::vector<std::string> header = cells(lines[0]);
  std::vector<std::string> r2 = cells(row2);
  auto idx = std::find(header.begin(), header.end(), "index") - header.begin();
  r2[static_cast<size_t>(idx)] = "1";
  ParseResult r =
      parse_nvidia_smi_csv(std::string(lines[0]) + "\r\n" + row1 + "\r\n" + join(r2) + "\r\n");
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 2u);
  EXPECT_EQ(r.devices[0].f.bus_id, "0000:00:09.0");
  EXPECT_EQ(r.devices[1].f.bus_id, "0000:00:0a.0");
  EXPECT_EQ(r.devices[1].f.tool_index, 1);
  EXPECT_EQ(r.devices[1].f.driver_version, "590.48.01");
}

TEST(NvidiaSmiCsv, OddValuesAreUnknownWithNotes) {
  ParseResult r = parse_nvidia_smi_csv(
      "name, pci.device_id, pci.bus_id, uuid, compute_cap, mig.mode.current\n"
      "NVIDIA X, [REDACTED], garbage, GPU-1234, [N/A], Enabled\n");
  ASSERT_EQ(r.devices.size(), 1u);
  const Observation& o = r.devices[0];
  EXPECT_FALSE(o.f.pci_device_id.has_value());
  EXPECT_FALSE(o.f.bus_id.has_value());
  EXPECT_FALSE(o.f.compute_capability.has_value());
  EXPECT_EQ(o.f.uuid, "GPU-1234");
  EXPECT_EQ(o.f.mig_mode, true);
  EXPECT_TRUE(any_note_contains(o.notes, "garbage"));
}

TEST(NvidiaSmiCsv, KmdVersionWhenDriverVersionMissing) {
  ParseResult r = parse_nvidia_smi_csv("kmd_version, name\n610.57.04, NVIDIA GeForce RTX 2080\n");
  ASSERT_EQ(r.devices.size(), 1u);
  EXPECT_EQ(r.devices[0].f.driver_version, "610.57.04");
}

TEST(NvidiaSmiCsv, RowWithTooManyCellsIsSkipped) {
  ParseResult r = parse_nvidia_smi_csv("name, memory.total [MiB]\nNVIDIA A, B, 100 MiB\n");
  EXPECT_TRUE(r.recognized);
  EXPECT_TRUE(r.devices.empty());
  EXPECT_TRUE(any_note_contains(r.notes, "row ignored"));
}

// --- damaged and foreign input ---

TEST(NvidiaSmiCsv, EmptyInput) {
  for (const char* s : {"", "\n\n  \n"}) {
    ParseResult r = parse_nvidia_smi_csv(s);
    EXPECT_FALSE(r.recognized);
    EXPECT_TRUE(any_note_contains(r.notes, "empty"));
  }
}

TEST(NvidiaSmiCsv, ToolErrorsAreQuoted) {
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
    ParseResult r = parse_nvidia_smi_csv(read_fixture(std::string("nvidia-smi-table/") + c.file));
    EXPECT_FALSE(r.recognized) << c.file;
    EXPECT_TRUE(r.devices.empty());
    EXPECT_TRUE(any_note_contains(r.notes, c.quote)) << c.file;
  }
  ParseResult bad = parse_nvidia_smi_csv("Field \"bogus.field\" is not a valid field to query.\n");
  EXPECT_FALSE(bad.recognized);
  EXPECT_TRUE(any_note_contains(bad.notes, "is not a valid field to query"));
}

TEST(NvidiaSmiCsv, NoDevicesWereFound) {
  ParseResult r = parse_nvidia_smi_csv("No devices were found\n");
  EXPECT_TRUE(r.recognized);
  EXPECT_TRUE(r.devices.empty());
  EXPECT_TRUE(any_note_contains(r.notes, "No devices were found"));
}

TEST(NvidiaSmiCsv, TheOtherFormatsAreNotCsv) {
  ParseResult xml =
      parse_nvidia_smi_csv(read_fixture("nvidia-smi-xml/nvidia-tesla-t4-515.105.01-telegraf.xml"));
  EXPECT_FALSE(xml.recognized);
  EXPECT_TRUE(xml.devices.empty());
  ParseResult table = parse_nvidia_smi_csv(
      read_fixture("nvidia-smi-table/nvidia-h100-80gb-hbm3-590.48.01-idle-nge.txt"));
  EXPECT_FALSE(table.recognized);
  EXPECT_TRUE(table.devices.empty());
}

// Cut every capture at many offsets: never crashes; a cut row yields only values that agree
// with the full parse, except the single cell that was cut in half.
TEST(NvidiaSmiCsv, TruncationSweep) {
  for (const char* file : {kH100, kL40s, k4080, kApps}) {
    std::string doc = read_fixture(file);
    ParseResult full = parse_nvidia_smi_csv(doc);
    size_t header_end = doc.find('\n');
    size_t step = std::max<size_t>(1, doc.size() / 157);
    for (size_t cut = 0; cut < doc.size(); cut += step) {
      ParseResult r = parse_nvidia_smi_csv(std::string_view(doc).substr(0, cut));
      ASSERT_LE(r.devices.size(), full.devices.size()) << file << " cut " << cut;
      if (cut <= header_end) {
        EXPECT_TRUE(r.devices.empty()) << file << " cut " << cut;
      }
      for (size_t i = 0; i < r.devices.size(); ++i) {
        const GpuFields& p = r.devices[i].f;
        const GpuFields& f = full.devices[i].f;
        // Only complete cells are read: whatever was read agrees with the full parse.
        auto agree = [&](const auto& part, const auto& whole, const char* what) {
          if (part) {
            EXPECT_EQ(part, whole) << what << " in " << file << " cut at " << cut;
          }
        };
        agree(p.model, f.model, "model");
        agree(p.driver_version, f.driver_version, "driver");
        agree(p.bus_id, f.bus_id, "bus_id");
        agree(p.pci_device_id, f.pci_device_id, "device id");
        agree(p.vram_total_mb, f.vram_total_mb, "vram_total");
        agree(p.vram_used_mb, f.vram_used_mb, "vram_used");
        agree(p.vram_free_mb, f.vram_free_mb, "vram_free");
        agree(p.compute_capability, f.compute_capability, "compute_cap");
        agree(p.temperature_c, f.temperature_c, "temperature");
        agree(p.power_draw_w, f.power_draw_w, "power_draw");
        agree(p.power_limit_w, f.power_limit_w, "power_limit");
        agree(p.power_limit_max_w, f.power_limit_max_w, "power_max");
        agree(p.clock_mhz, f.clock_mhz, "clock");
        agree(p.mig_mode, f.mig_mode, "mig");
        agree(p.pcie_gen, f.pcie_gen, "pcie_gen");
        agree(p.pcie_width, f.pcie_width, "pcie_width");
        agree(p.tool_index, f.tool_index, "index");
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

TEST(NvidiaSmiCsv, HugeJunkIsBounded) {
  const std::string inputs[] = {
      repeat(",", 16u << 20),
      "index, name\n" + repeat("0, X\n", 16u << 20),
      "index, name\n" + repeat(",", 16u << 20),
  };
  for (const std::string& in : inputs) {
    ParseResult r = parse_nvidia_smi_csv(in);
    EXPECT_LE(r.devices.size(), 1024u);
    EXPECT_LE(r.notes.size(), 16u);
  }
}

}  // namespace
}  // namespace grey
