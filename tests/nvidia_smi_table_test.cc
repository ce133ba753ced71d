// parse_nvidia_smi_table against every capture in tests/fixtures/nvidia-smi-table (facts from
// SOURCES.md), the error outputs, older layouts and damaged input.
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

ParseResult parse_fixture(const std::string& name) {
  return parse_nvidia_smi_table(read_fixture("nvidia-smi-table/" + name));
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

void expect_common(const GpuFields& g, const char* driver, const char* cuda) {
  EXPECT_EQ(g.vendor, "nvidia");
  EXPECT_EQ(g.kernel_driver, "nvidia");
  EXPECT_EQ(g.driver_version, driver);
  EXPECT_EQ(g.cuda_version, cuda);
  // The table has none of these.
  EXPECT_FALSE(g.uuid.has_value());
  EXPECT_FALSE(g.pci_device_id.has_value());
  EXPECT_FALSE(g.compute_capability.has_value());
  EXPECT_FALSE(g.vram_free_mb.has_value());
  EXPECT_TRUE(g.thermal.empty());
}

TEST(NvidiaSmiTable, H100Idle) {
  ParseResult r = parse_fixture("nvidia-h100-80gb-hbm3-590.48.01-idle-nge.txt");
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u);
  const Observation& o = r.devices[0];
  expect_common(o.f, "590.48.01", "13.1");
  EXPECT_EQ(o.f.tool_index, 0);
  EXPECT_EQ(o.f.model, "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(o.f.bus_id, "0000:00:09.0");
  EXPECT_EQ(o.f.vram_used_mb, 0);
  EXPECT_EQ(o.f.vram_total_mb, 81559);
  EXPECT_DOUBLE_EQ(*o.f.temperature_c, 41);
  EXPECT_DOUBLE_EQ(*o.f.power_draw_w, 69);
  EXPECT_DOUBLE_EQ(*o.f.power_limit_w, 700);
  EXPECT_EQ(o.f.persistence_mode, true);
  EXPECT_EQ(o.f.mig_mode, false);
  EXPECT_EQ(o.f.utilization_pct, 0);
  EXPECT_TRUE(o.notes.empty());
  EXPECT_TRUE(r.notes.empty());
}

// SOURCES.md: one H200 in MIG mode, 5 MIG devices (GPU/GI/CI/Dev = 0/2/0/0, 0/2/1/1, 0/3/0/2,
// 0/9/0/3, 0/10/0/4) with 71424, 71424, 33280, 16384, 16384 MiB; must not be 6 GPUs.
TEST(NvidiaSmiTable, H200MigDevicesArePartitionsNotGpus) {
  auto r = parse_fixture("nvidia-h200-mig-5-devices-590.48.01-idle-nge.txt");
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u);
  const auto& f = r.devices[0].f;
  EXPECT_EQ(f.model, "NVIDIA H200");
  EXPECT_EQ(f.bus_id, "0000:83:00.0");
  EXPECT_EQ(f.vram_total_mb, 143771);
  EXPECT_EQ(f.mig_mode, true);
  ASSERT_EQ(f.partitions.size(), 5u);
  const int gi[] = {2, 2, 3, 9, 10};
  const int ci[] = {0, 1, 0, 0, 0};
  const int64_t mem[] = {71424, 71424, 33280, 16384, 16384};
  for (size_t i = 0; i < 5; ++i) {
    SCOPED_TRACE(i);
    const auto& p = f.partitions[i];
    EXPECT_EQ(p.kind, "mig");
    EXPECT_EQ(p.gi_id, gi[i]);
    EXPECT_EQ(p.ci_id, ci[i]);
    EXPECT_EQ(p.dev_index, static_cast<int>(i));
    EXPECT_EQ(p.memory_total_mb, mem[i]);
    EXPECT_FALSE(p.profile);  // the table does not show profiles
    EXPECT_FALSE(p.uuid);
  }
}

TEST(NvidiaSmiTable, NonMigGpuHasNoPartitions) {
  auto r = parse_fixture("nvidia-h100-80gb-hbm3-590.48.01-idle-nge.txt");
  ASSERT_EQ(r.devices.size(), 1u);
  EXPECT_TRUE(r.devices[0].f.partitions.empty());
}

TEST(NvidiaSmiTable, MigRowForUnknownGpuIsNotedNotCounted) {
  std::string t = read_fixture("nvidia-smi-table/nvidia-h200-mig-5-devices-590.48.01-idle-nge.txt");
  t = replace_all(t, "|  0   10   0   4  |", "|  7   10   0   4  |");
  auto r = parse_nvidia_smi_table(t);
  ASSERT_EQ(r.devices.size(), 1u);
  EXPECT_EQ(r.devices[0].f.partitions.size(), 4u);
  EXPECT_TRUE(any_note_contains(r.notes, "MIG device row for GPU 7"));
}

TEST(NvidiaSmiTable, L40sBusyMigNA) {
  ParseResult r = parse_fixture("nvidia-l40s-595.80-nge.txt");
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u);
  const GpuFields& g = r.devices[0].f;
  expect_common(g, "595.80", "13.2");
  EXPECT_EQ(g.model, "NVIDIA L40S");
  EXPECT_EQ(g.bus_id, "0000:01:00.0");
  EXPECT_EQ(g.vram_used_mb, 0);
  EXPECT_EQ(g.vram_total_mb, 46068);
  EXPECT_DOUBLE_EQ(*g.temperature_c, 64);
  EXPECT_DOUBLE_EQ(*g.power_draw_w, 242);
  EXPECT_DOUBLE_EQ(*g.power_limit_w, 350);
  EXPECT_EQ(g.utilization_pct, 100);
  EXPECT_EQ(g.persistence_mode, false);
  EXPECT_FALSE(g.mig_mode.has_value());
}

TEST(NvidiaSmiTable, Rtx4080SuperTruncatedNameAndProcesses) {
  ParseResult r = parse_fixture("nvidia-geforce-rtx4080-super-595.71.05-load-processes-nge.txt");
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u) << "process rows are not devices";
  const Observation& o = r.devices[0];
  expect_common(o.f, "595.71.05", "13.2");
  EXPECT_EQ(o.f.model, "NVIDIA GeForce RTX 4080 ...");
  EXPECT_TRUE(any_note_contains(o.notes, "truncates"));
  EXPECT_EQ(o.f.bus_id, "0000:01:00.0");
  EXPECT_EQ(o.f.vram_used_mb, 1474);
  EXPECT_EQ(o.f.vram_total_mb, 16376);
  EXPECT_DOUBLE_EQ(*o.f.temperature_c, 45);
  EXPECT_DOUBLE_EQ(*o.f.power_draw_w, 83);
  EXPECT_DOUBLE_EQ(*o.f.power_limit_w, 320);
  EXPECT_EQ(o.f.utilization_pct, 7);
  EXPECT_EQ(o.f.persistence_mode, false);
}

TEST(NvidiaSmiTable, KmdVersionHeader610) {
  ParseResult r =
      parse_fixture("nvidia-geforce-rtx2080-super-610.57.04-kmd-version-header-nge.txt");
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u);
  const Observation& o = r.devices[0];
  expect_common(o.f, "610.57.04", "13.3");
  EXPECT_EQ(o.f.model, "NVIDIA GeForce RTX 2080 ...");
  EXPECT_TRUE(any_note_contains(o.notes, "truncates"));
  EXPECT_EQ(o.f.bus_id, "0000:0c:00.0");
  EXPECT_EQ(o.f.vram_used_mb, 211);
  EXPECT_EQ(o.f.vram_total_mb, 8192);
  EXPECT_DOUBLE_EQ(*o.f.temperature_c, 33);
  EXPECT_DOUBLE_EQ(*o.f.power_draw_w, 38);
  EXPECT_DOUBLE_EQ(*o.f.power_limit_w, 250);
  EXPECT_TRUE(r.notes.empty());
}

TEST(NvidiaSmiTable, FourA100Sxm4) {
  ParseResult r = parse_fixture("nvidia-a100-sxm4-80gb-x4-555.42.02-thamada.txt");
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 4u);
  const char* buses[] = {"0000:68:00.0", "0000:9e:00.0", "0000:c2:00.0", "0000:d4:00.0"};
  const double temps[] = {25, 22, 23, 23};
  const double draws[] = {59, 60, 58, 58};
  for (int i = 0; i < 4; ++i) {
    const GpuFields& g = r.devices[static_cast<size_t>(i)].f;
    expect_common(g, "555.42.02", "12.5");
    EXPECT_EQ(g.tool_index, i);
    EXPECT_EQ(g.model, "NVIDIA A100-SXM4-80GB");
    EXPECT_EQ(g.bus_id, buses[i]);
    EXPECT_EQ(g.vram_used_mb, 1);
    EXPECT_EQ(g.vram_total_mb, 81920);
    EXPECT_DOUBLE_EQ(*g.temperature_c, temps[i]);
    EXPECT_DOUBLE_EQ(*g.power_draw_w, draws[i]);
    EXPECT_DOUBLE_EQ(*g.power_limit_w, 500);
    EXPECT_EQ(g.mig_mode, false);
    EXPECT_EQ(g.persistence_mode, true);
  }
}

TEST(NvidiaSmiTable, TenA40) {
  ParseResult r = parse_fixture("nvidia-a40-x10-550.127.05-thamada.txt");
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 10u);
  const char* buses[] = {"4f", "52", "53", "56", "57", "ce", "d1", "d2", "d5", "d6"};
  const double temps[] = {29, 30, 27, 29, 30, 29, 29, 29, 29, 29};
  for (int i = 0; i < 10; ++i) {
    const GpuFields& g = r.devices[static_cast<size_t>(i)].f;
    expect_common(g, "550.127.05", "12.4");
    EXPECT_EQ(g.tool_index, i);
    EXPECT_EQ(g.model, "NVIDIA A40");
    EXPECT_EQ(g.bus_id, std::string("0000:") + buses[i] + ":00.0");
    EXPECT_EQ(g.vram_used_mb, 1);
    EXPECT_EQ(g.vram_total_mb, 46068);
    EXPECT_DOUBLE_EQ(*g.temperature_c, temps[i]);
    EXPECT_DOUBLE_EQ(*g.power_limit_w, 300);
    EXPECT_FALSE(g.mig_mode.has_value());
  }
}

TEST(NvidiaSmiTable, TwoDigitIndices) {
  std::string text = read_fixture("nvidia-smi-table/nvidia-a40-x10-550.127.05-thamada.txt");
  std::string more = replace_all(text, "|   9  NVIDIA A40", "|  10  NVIDIA A40");
  more = replace_all(more, "|   8  NVIDIA A40", "|  11  NVIDIA A40");
  ASSERT_NE(more, text);
  ParseResult r = parse_nvidia_smi_table(more);
  ASSERT_EQ(r.devices.size(), 10u);
  EXPECT_EQ(r.devices[8].f.tool_index, 11);
  EXPECT_EQ(r.devices[9].f.tool_index, 10);
  EXPECT_EQ(r.devices[9].f.model, "NVIDIA A40");
  EXPECT_EQ(r.devices[9].f.bus_id, "0000:d6:00.0");
}

TEST(NvidiaSmiTable, TwoH100Nvl) {
  ParseResult r = parse_fixture("nvidia-h100-nvl-x2-550.54.14-thamada.txt");
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 2u);
  expect_common(r.devices[0].f, "550.54.14", "12.4");
  EXPECT_EQ(r.devices[0].f.model, "NVIDIA H100 NVL");
  EXPECT_EQ(r.devices[0].f.bus_id, "0000:ad:00.0");
  EXPECT_EQ(r.devices[1].f.bus_id, "0000:ae:00.0");
  EXPECT_EQ(r.devices[0].f.vram_total_mb, 95830);
  EXPECT_EQ(r.devices[0].f.vram_used_mb, 0);
  EXPECT_DOUBLE_EQ(*r.devices[0].f.temperature_c, 32);
  EXPECT_DOUBLE_EQ(*r.devices[1].f.temperature_c, 31);
  EXPECT_DOUBLE_EQ(*r.devices[0].f.power_draw_w, 61);
  EXPECT_DOUBLE_EQ(*r.devices[1].f.power_draw_w, 62);
  EXPECT_DOUBLE_EQ(*r.devices[1].f.power_limit_w, 310);
  EXPECT_EQ(r.devices[1].f.mig_mode, false);
}

TEST(NvidiaSmiTable, A100Sxm4ComputeCanada) {
  ParseResult r = parse_fixture("nvidia-a100-sxm4-40gb-550.144.03-computecanada-windecks.txt");
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u);
  const GpuFields& g = r.devices[0].f;
  expect_common(g, "550.144.03", "12.4");
  EXPECT_EQ(g.model, "NVIDIA A100-SXM4-40GB");
  EXPECT_EQ(g.bus_id, "0000:81:00.0");
  EXPECT_EQ(g.vram_used_mb, 1);
  EXPECT_EQ(g.vram_total_mb, 40960);
  EXPECT_DOUBLE_EQ(*g.temperature_c, 32);
  EXPECT_DOUBLE_EQ(*g.power_draw_w, 52);
  EXPECT_DOUBLE_EQ(*g.power_limit_w, 400);
  EXPECT_EQ(g.persistence_mode, false);
  EXPECT_EQ(g.mig_mode, false);
}

// The narrow pre-450 layout: two lines per GPU, no MIG row. Published nvidia-smi 435.21 output
// (AWS Tesla T4) from the README of buds-lab/ashrae-great-energy-predictor-3-solution-analysis.
TEST(NvidiaSmiTable, NarrowTwoLineLayout435) {
  const char* text =
      "Mon Apr 25 16:24:09 2020\n"
      "+-----------------------------------------------------------------------------+\n"
      "| NVIDIA-SMI 435.21       Driver Version: 435.21       CUDA Version: 10.1     |\n"
      "|-------------------------------+----------------------+----------------------+\n"
      "| GPU  Name        Persistence-M| Bus-Id        Disp.A | Volatile Uncorr. ECC |\n"
      "| Fan  Temp  Perf  Pwr:Usage/Cap|         Memory-Usage | GPU-Util  Compute M. |\n"
      "|===============================+======================+======================|\n"
      "|   0  Tesla T4            Off  | 00000000:00:1E.0 Off |                    0 |\n"
      "| N/A   65C    P0    30W /  70W |      0MiB / 15109MiB |      0%      Default |\n"
      "+-------------------------------+----------------------+----------------------+\n"
      "\n"
      "+-----------------------------------------------------------------------------+\n"
      "| Processes:                                                       GPU Memory |\n"
      "|  GPU       PID   Type   Process name                             Usage      |\n"
      "|=============================================================================|\n"
      "|  No running processes found                                                 |\n"
      "+-----------------------------------------------------------------------------+\n";
  ParseResult r = parse_nvidia_smi_table(text);
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u);
  const GpuFields& g = r.devices[0].f;
  expect_common(g, "435.21", "10.1");
  EXPECT_EQ(g.model, "Tesla T4");
  EXPECT_EQ(g.bus_id, "0000:00:1e.0");
  EXPECT_EQ(g.vram_total_mb, 15109);
  EXPECT_DOUBLE_EQ(*g.temperature_c, 65);
  EXPECT_DOUBLE_EQ(*g.power_draw_w, 30);
  EXPECT_DOUBLE_EQ(*g.power_limit_w, 70);
  EXPECT_FALSE(g.mig_mode.has_value());
  EXPECT_EQ(g.persistence_mode, false);
}

TEST(NvidiaSmiTable, NoSeparatorBetweenGpus) {
  std::string text = read_fixture("nvidia-smi-table/nvidia-h100-nvl-x2-550.54.14-thamada.txt");
  std::string sep =
      "|                                         |                        |             Disabled "
      "|\n+-----------------------------------------+------------------------+------------------"
      "----+\n|   1";
  ASSERT_NE(text.find(sep), std::string::npos);
  std::string joined = replace_all(
      text, sep,
      "|                                         |                        |             Disabled "
      "|\n|   1");
  ParseResult r = parse_nvidia_smi_table(joined);
  ASSERT_EQ(r.devices.size(), 2u);
  EXPECT_EQ(r.devices[1].f.bus_id, "0000:ae:00.0");
  EXPECT_EQ(r.devices[1].f.tool_index, 1);
  EXPECT_DOUBLE_EQ(*r.devices[1].f.temperature_c, 31);
}

TEST(NvidiaSmiTable, NotAvailableReadingsStayUnknown) {
  std::string text = read_fixture("nvidia-smi-table/nvidia-h100-80gb-hbm3-590.48.01-idle-nge.txt");
  std::string na = replace_all(text, "| N/A   41C    P0             69W /  700W |",
                               "| N/A   N/A    P0            N/A  /  N/A  |");
  ASSERT_NE(na, text);
  ParseResult r = parse_nvidia_smi_table(na);
  ASSERT_EQ(r.devices.size(), 1u);
  EXPECT_FALSE(r.devices[0].f.temperature_c.has_value());
  EXPECT_FALSE(r.devices[0].f.power_draw_w.has_value());
  EXPECT_FALSE(r.devices[0].f.power_limit_w.has_value());
  EXPECT_EQ(r.devices[0].f.vram_total_mb, 81559);
}

TEST(NvidiaSmiTable, WarningBeforeTableIsNoted) {
  std::string text = "WARNING: infoROM is corrupted at gpu 0000:00:09.0\n" +
                     read_fixture("nvidia-smi-table/nvidia-h100-80gb-hbm3-590.48.01-idle-nge.txt");
  ParseResult r = parse_nvidia_smi_table(text);
  ASSERT_EQ(r.devices.size(), 1u);
  EXPECT_TRUE(any_note_contains(r.notes, "infoROM is corrupted"));
}

// --- error outputs ---

TEST(NvidiaSmiTable, ErrorCouldntCommunicate) {
  ParseResult r =
      parse_fixture("error-couldnt-communicate-with-driver-gcp-compute-gpu-installation-pr18.txt");
  EXPECT_FALSE(r.recognized);
  EXPECT_TRUE(r.devices.empty());
  ASSERT_EQ(r.notes.size(), 1u);
  EXPECT_NE(r.notes[0].find("nvidia-smi reported: NVIDIA-SMI has failed because it couldn't "
                            "communicate with the NVIDIA driver"),
            std::string::npos);
}

TEST(NvidiaSmiTable, ErrorModprobePlusCouldntCommunicate) {
  ParseResult r =
      parse_fixture("error-modprobe-fatal-plus-couldnt-communicate-nvidia-docker-issue365.txt");
  EXPECT_FALSE(r.recognized);
  EXPECT_TRUE(r.devices.empty());
  EXPECT_TRUE(any_note_contains(r.notes, "modprobe: FATAL: Module nvidia not found."));
  EXPECT_TRUE(any_note_contains(r.notes, "couldn't communicate with the NVIDIA driver"));
}

TEST(NvidiaSmiTable, ErrorNoSupportedGpus) {
  ParseResult r = parse_fixture("error-nvml-no-supported-gpus-found-dra-driver-issue1008.txt");
  EXPECT_FALSE(r.recognized);
  EXPECT_TRUE(r.devices.empty());
  EXPECT_TRUE(
      any_note_contains(r.notes, "Failed to initialize NVML: No supported GPUs were found"));
  EXPECT_TRUE(any_note_contains(r.notes, "Unable to determine the number of GPUs"));
}

TEST(NvidiaSmiTable, NoDevicesWereFound) {
  ParseResult r = parse_nvidia_smi_table("No devices were found\n");
  EXPECT_TRUE(r.recognized);
  EXPECT_TRUE(r.devices.empty());
  EXPECT_TRUE(any_note_contains(r.notes, "No devices were found"));
}

// --- damaged and foreign input ---

TEST(NvidiaSmiTable, EmptyInput) {
  for (const char* s : {"", " \n \n"}) {
    ParseResult r = parse_nvidia_smi_table(s);
    EXPECT_FALSE(r.recognized);
    EXPECT_TRUE(any_note_contains(r.notes, "empty"));
  }
}

TEST(NvidiaSmiTable, OtherFormatsAreNotTables) {
  ParseResult xml = parse_nvidia_smi_table(
      read_fixture("nvidia-smi-xml/nvidia-tesla-t4-515.105.01-telegraf.xml"));
  EXPECT_FALSE(xml.recognized);
  EXPECT_TRUE(xml.devices.empty());
  ParseResult csv = parse_nvidia_smi_table(
      read_fixture("nvidia-smi-csv/nvidia-h100-80gb-hbm3-590.48.01-idle-full-query-nge.csv"));
  EXPECT_FALSE(csv.recognized);
  EXPECT_TRUE(csv.devices.empty());
}

// Cut every capture at many offsets: never crashes, and every value read from a cut table
// agrees with the full parse (the row a cut lands in may lack fields, never gain wrong ones).
TEST(NvidiaSmiTable, TruncationSweep) {
  const char* files[] = {
      "nvidia-h100-80gb-hbm3-590.48.01-idle-nge.txt",
      "nvidia-l40s-595.80-nge.txt",
      "nvidia-geforce-rtx4080-super-595.71.05-load-processes-nge.txt",
      "nvidia-geforce-rtx2080-super-610.57.04-kmd-version-header-nge.txt",
      "nvidia-a100-sxm4-80gb-x4-555.42.02-thamada.txt",
      "nvidia-a40-x10-550.127.05-thamada.txt",
      "nvidia-h100-nvl-x2-550.54.14-thamada.txt",
      "nvidia-a100-sxm4-40gb-550.144.03-computecanada-windecks.txt",
  };
  for (const char* file : files) {
    std::string doc = read_fixture(std::string("nvidia-smi-table/") + file);
    ParseResult full = parse_nvidia_smi_table(doc);
    const size_t step = std::max<size_t>(1, doc.size() / 300);
    for (size_t cut = 0; cut < doc.size(); cut += step) {
      ParseResult r = parse_nvidia_smi_table(std::string_view(doc).substr(0, cut));
      ASSERT_LE(r.devices.size(), full.devices.size()) << file << " cut " << cut;
      EXPECT_FALSE(r.notes.empty() && r.devices.empty()) << file << " cut " << cut;
      for (size_t i = 0; i < r.devices.size(); ++i) {
        const GpuFields& p = r.devices[i].f;
        const GpuFields& f = full.devices[i].f;
        auto agree = [&](const auto& part, const auto& whole, const char* what) {
          if (part) {
            EXPECT_EQ(part, whole) << what << " in " << file << " cut at " << cut;
          }
        };
        agree(p.tool_index, f.tool_index, "index");
        agree(p.model, f.model, "model");
        agree(p.bus_id, f.bus_id, "bus_id");
        agree(p.persistence_mode, f.persistence_mode, "persistence");
        agree(p.vram_used_mb, f.vram_used_mb, "vram_used");
        agree(p.vram_total_mb, f.vram_total_mb, "vram_total");
        agree(p.temperature_c, f.temperature_c, "temperature");
        agree(p.power_draw_w, f.power_draw_w, "power_draw");
        agree(p.power_limit_w, f.power_limit_w, "power_limit");
        agree(p.utilization_pct, f.utilization_pct, "util");
        agree(p.mig_mode, f.mig_mode, "mig");
        agree(p.driver_version, f.driver_version, "driver");
        agree(p.cuda_version, f.cuda_version, "cuda");
        if (i + 1 < r.devices.size()) {
          EXPECT_EQ(p.vram_total_mb, f.vram_total_mb) << "complete row in " << file;
        }
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

TEST(NvidiaSmiTable, HugeJunkIsBounded) {
  const std::string inputs[] = {
      repeat("|", 16u << 20),
      "| GPU  Name | Bus-Id |\n|===|\n" +
          repeat("|   0  X  Off |   00000000:01:00.0 Off | 0 |\n+--+\n", 16u << 20),
      "| GPU  Name | Bus-Id |\n|===|\n|   0  X" + repeat("|", 16u << 20) + "\n",
  };
  for (const std::string& in : inputs) {
    ParseResult r = parse_nvidia_smi_table(in);
    EXPECT_LE(r.devices.size(), 1024u);
    EXPECT_LE(r.notes.size(), 16u);
  }
}

}  // namespace
}  // namespace grey
