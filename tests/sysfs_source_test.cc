#include "sources/sysfs_source.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <random>

#include "sources/amdgpu_ids.h"
#include "sources/pci_names.h"
#include "test_util.h"
#include "util/host_fs.h"

namespace grey {
namespace {

namespace fs = std::filesystem;
using test::TempDir;
using test::write_file;

// Builds a sys root from a fixture: <fixture>/cardN -> <root>/class/drm/cardN and
// <fixture>/kfd -> <root>/class/kfd/kfd.
void install_fixture(const std::string& root, const std::string& name) {
  fs::path src = test::fixture_path("sysfs/" + name);
  ASSERT_TRUE(fs::is_directory(src)) << src;
  fs::create_directories(fs::path(root) / "class/drm");
  for (const auto& e : fs::directory_iterator(src)) {
    std::string n = e.path().filename().string();
    if (n == "kfd") {
      fs::create_directories(fs::path(root) / "class/kfd");
      fs::copy(e.path(), fs::path(root) / "class/kfd/kfd", fs::copy_options::recursive);
    } else {
      fs::copy(e.path(), fs::path(root) / "class/drm" / n, fs::copy_options::recursive);
    }
  }
}

ParseResult scan_fixture(const std::string& name) {
  TempDir tmp;
  install_fixture(tmp.path(), name);
  RootedFs rfs(tmp.path());
  return scan_drm_sysfs(rfs);
}

bool has_note(const Observation& o, const std::string& needle) {
  return std::any_of(o.notes.begin(), o.notes.end(),
                     [&](const std::string& n) { return n.find(needle) != std::string::npos; });
}

// pci.ids may or may not know an id (the database on a given machine has its own age), so a
// model from libpci is checked against libpci itself, and against text where it knows it.
// An AMD id that this machine's libdrm amdgpu.ids lists takes its marketing name first.
void expect_model_from_pci_ids(const Observation& o, uint32_t v, uint32_t d,
                               const std::string& expected_part,
                               std::optional<uint32_t> rev = std::nullopt) {
  if (v == 0x1002) {
    if (auto m = amdgpu_marketing_name(d, rev)) {
      EXPECT_EQ(o.f.model, m);
      EXPECT_EQ(o.field_detail.at("model"), "amdgpu.ids");
      return;
    }
  }
  auto name = pci_device_name(v, d);
  EXPECT_EQ(o.f.model, name);
  if (name) {
    EXPECT_NE(name->find(expected_part), std::string::npos) << *name;
  }
}

TEST(SysfsFixtures, Vega56) {
  ParseResult r = scan_fixture("amd-radeon-rx-vega56-lact");
  EXPECT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u);
  EXPECT_TRUE(r.ignored.empty());
  const Observation& o = r.devices[0];
  const GpuFields& f = o.f;
  EXPECT_FALSE(o.software_reason);
  EXPECT_EQ(f.vendor, "amd");
  EXPECT_EQ(f.pci_vendor_id, 0x1002u);
  EXPECT_EQ(f.pci_device_id, 0x687fu);
  EXPECT_TRUE(has_note(o, "PCI subsystem 1043:0555"));
  EXPECT_EQ(f.bus_id, "0000:0b:00.0");
  EXPECT_EQ(f.kernel_driver, "amdgpu");
  EXPECT_EQ(f.tool_index, 0);
  EXPECT_EQ(f.vram_total_mb, 8176);
  EXPECT_EQ(f.vram_used_mb, 15);  // 16613376 B
  EXPECT_EQ(f.vram_free_mb, 8176 - 16);
  EXPECT_EQ(f.utilization_pct, 0);
  EXPECT_EQ(f.temperature_c, 38.0);
  EXPECT_EQ(f.thermal.slowdown_c, 85);  // edge temp1_crit
  EXPECT_EQ(f.thermal.shutdown_c, 90);  // edge temp1_emergency (ASIC shutdown)
  EXPECT_TRUE(has_note(o, "junction 38 C (crit 105 C, emergency 110 C)"));
  EXPECT_EQ(f.power_draw_w, 8.0);
  EXPECT_EQ(f.power_limit_w, 260.0);
  EXPECT_EQ(f.power_limit_max_w, 390.0);
  EXPECT_EQ(f.power_limit_default_w, 260.0);
  EXPECT_FALSE(f.power_limit_min_w);  // reads 0: no lower bound
  EXPECT_TRUE(has_note(o, "power1_cap_min reads 0"));
  EXPECT_EQ(f.pcie_gen, 3);
  EXPECT_EQ(f.pcie_width, 16);
  EXPECT_FALSE(f.numa_node);  // -1
  EXPECT_TRUE(has_note(o, "VBIOS 115-D050PIL-100"));
  EXPECT_TRUE(has_note(o, "VRAM vendor hynix"));
  // product_name is empty: the model comes from pci.ids, never "".
  expect_model_from_pci_ids(o, 0x1002, 0x687f, "Vega", 0xc3);
  EXPECT_FALSE(f.compute_capability);  // no kfd in this snapshot
  EXPECT_FALSE(f.num_sm);
}

// SPEC §9: AMD partition modes. No real MI300 sysfs capture is at hand, so the two files are
// written by this test (values as the amdgpu documentation lists them) into a real tree.
TEST(SysfsFixtures, AmdPartitionModes) {
  TempDir tmp;
  install_fixture(tmp.path(), "amd-radeon-rx-vega56-lact");
  std::string dev = tmp.path() + "/class/drm/card0/device";
  {
    RootedFs rfs(tmp.path());
    auto r = scan_drm_sysfs(rfs);
    ASSERT_EQ(r.devices.size(), 1u);
    EXPECT_FALSE(r.devices[0].f.compute_partition) << "no file, no mode";
  }
  write_file(dev + "/current_compute_partition", "CPX\n");
  write_file(dev + "/current_memory_partition", "NPS4\n");
  RootedFs rfs(tmp.path());
  auto r = scan_drm_sysfs(rfs);
  ASSERT_EQ(r.devices.size(), 1u);
  EXPECT_EQ(r.devices[0].f.compute_partition, "CPX");
  EXPECT_EQ(r.devices[0].f.memory_partition, "NPS4");
  EXPECT_TRUE(r.devices[0].f.partitions.empty());
  write_file(dev + "/current_memory_partition", "NPS4; rm -rf /\n");
  r = scan_drm_sysfs(rfs);
  EXPECT_FALSE(r.devices[0].f.memory_partition);
  EXPECT_TRUE(has_note(r.devices[0], "current_memory_partition reads an unexpected value"));
}

TEST(SysfsFixtures, PhoenixApuWithKfd) {
  ParseResult r = scan_fixture("amd-phoenix-apu-lact");
  ASSERT_EQ(r.devices.size(), 1u);
  const Observation& o = r.devices[0];
  const GpuFields& f = o.f;
  EXPECT_EQ(f.vendor, "amd");
  EXPECT_EQ(f.pci_vendor_id, 0x1002u);
  EXPECT_EQ(f.pci_device_id, 0x15bfu);
  EXPECT_TRUE(has_note(o, "PCI subsystem 17aa:50da"));
  EXPECT_EQ(f.bus_id, "0000:64:00.0");
  EXPECT_EQ(f.tool_index, 1);  // card1
  EXPECT_EQ(f.kernel_driver, "amdgpu");
  EXPECT_EQ(f.vram_total_mb, 4096);
  EXPECT_EQ(f.vram_used_mb, 1213);  // 1272893440 B
  EXPECT_EQ(f.utilization_pct, 0);
  EXPECT_EQ(f.temperature_c, 25.0);
  EXPECT_TRUE(f.thermal.empty());    // APUs expose no temp1_crit
  EXPECT_EQ(f.power_draw_w, 3.103);  // power1_average preferred over power1_input 3.142
  EXPECT_FALSE(f.power_limit_w);     // no power1_cap
  EXPECT_EQ(f.pcie_gen, 4);
  EXPECT_EQ(f.pcie_width, 16);
  EXPECT_TRUE(has_note(o, "VBIOS 113-PHXGENERIC-001"));
  // KFD node 1 (node 0 is the CPU) matched by location_id 25600 = 0x6400 -> 64:00.0.
  EXPECT_EQ(f.num_sm, 12);                     // simd_count 24 / simd_per_cu 2
  EXPECT_EQ(f.compute_capability, "gfx1103");  // gfx_target_version 110003
  EXPECT_EQ(f.clock_mhz, 2700);                // max_engine_clk_fcompute
  EXPECT_TRUE(has_note(o, "APU"));
}

TEST(SysfsFixtures, Rx7900xtxVramUnknown) {
  ParseResult r = scan_fixture("amd-radeon-rx7900xtx-no-vram-files-lact");
  ASSERT_EQ(r.devices.size(), 1u);
  const Observation& o = r.devices[0];
  const GpuFields& f = o.f;
  // No vendor/device/subsystem files: the ids come from the uevent.
  EXPECT_EQ(f.pci_vendor_id, 0x1002u);
  EXPECT_EQ(f.pci_device_id, 0x744cu);
  EXPECT_TRUE(has_note(o, "PCI subsystem 1da2:e471"));
  EXPECT_EQ(f.bus_id, "0000:03:00.0");
  EXPECT_EQ(f.vendor, "amd");
  EXPECT_EQ(f.kernel_driver, "amdgpu");
  // No mem_info_vram_* files: unknown, not guessed.
  EXPECT_FALSE(f.vram_total_mb);
  EXPECT_FALSE(f.vram_used_mb);
  EXPECT_FALSE(f.vram_free_mb);
  EXPECT_TRUE(has_note(o, "mem_info_vram_total is not present"));
  EXPECT_EQ(f.utilization_pct, 3);
  EXPECT_EQ(f.temperature_c, 53.0);  // edge; hwmon name is NUL padded
  EXPECT_TRUE(has_note(o, "hwmon amdgpu temperatures"));
  EXPECT_TRUE(has_note(o, "junction 61 C"));
  EXPECT_EQ(f.thermal.slowdown_c, 100);
  EXPECT_EQ(f.thermal.shutdown_c, 105);
  EXPECT_EQ(f.power_draw_w, 68.0);
  EXPECT_EQ(f.power_limit_w, 290.0);
  EXPECT_EQ(f.power_limit_max_w, 333.0);
  EXPECT_EQ(f.power_limit_min_w, 261.0);
  EXPECT_EQ(f.power_limit_default_w, 290.0);
  EXPECT_EQ(f.pcie_gen, 4);  // only the current link is in the snapshot
  EXPECT_EQ(f.pcie_width, 16);
  EXPECT_TRUE(has_note(o, "VBIOS 113-D70401XT-N11"));
  expect_model_from_pci_ids(o, 0x1002, 0x744c, "Navi 31");
}

TEST(SysfsFixtures, Rx9070xt) {
  ParseResult r = scan_fixture("amd-radeon-rx9070xt-lact");
  ASSERT_EQ(r.devices.size(), 1u);
  const Observation& o = r.devices[0];
  const GpuFields& f = o.f;
  EXPECT_EQ(f.pci_vendor_id, 0x1002u);
  EXPECT_EQ(f.pci_device_id, 0x7550u);
  EXPECT_TRUE(has_note(o, "PCI subsystem 148c:2435"));
  EXPECT_EQ(f.bus_id, "0000:0f:00.0");
  EXPECT_EQ(f.tool_index, 1);
  EXPECT_FALSE(f.vram_total_mb);
  EXPECT_EQ(f.pcie_gen, 5);  // 32.0 GT/s
  EXPECT_EQ(f.pcie_width, 16);
  EXPECT_EQ(f.utilization_pct, 3);
  EXPECT_EQ(f.temperature_c, 42.0);
  EXPECT_EQ(f.thermal.slowdown_c, 110);
  EXPECT_EQ(f.thermal.shutdown_c, 115);
  EXPECT_TRUE(has_note(o, "junction 45 C"));
  EXPECT_EQ(f.power_draw_w, 55.0);
  EXPECT_EQ(f.power_limit_w, 120.0);
  EXPECT_EQ(f.power_limit_max_w, 340.0);
  EXPECT_EQ(f.power_limit_default_w, 304.0);
  EXPECT_TRUE(has_note(o, "power limit lowered to 120 W (default 304 W)"));
  expect_model_from_pci_ids(o, 0x1002, 0x7550, "Navi 48");
}

TEST(SysfsFixtures, R7_240) {
  ParseResult r = scan_fixture("amd-radeon-r7-240-lact");
  ASSERT_EQ(r.devices.size(), 1u);
  const Observation& o = r.devices[0];
  const GpuFields& f = o.f;
  EXPECT_EQ(f.pci_vendor_id, 0x1002u);
  EXPECT_EQ(f.pci_device_id, 0x6617u);
  EXPECT_TRUE(has_note(o, "PCI subsystem 1787:012f"));
  EXPECT_EQ(f.bus_id, "0000:01:00.0");
  EXPECT_EQ(f.kernel_driver, "amdgpu");
  EXPECT_EQ(f.vram_total_mb, 2048);
  EXPECT_FALSE(f.utilization_pct);  // no gpu_busy_percent
  EXPECT_EQ(f.temperature_c, 52.0);
  EXPECT_EQ(f.thermal.slowdown_c, 120);  // temp1_crit
  EXPECT_FALSE(f.thermal.shutdown_c);    // no temp1_emergency on SI: not guessed
  EXPECT_FALSE(f.power_draw_w);          // power1_label only
  EXPECT_FALSE(f.power_limit_w);
  EXPECT_TRUE(has_note(o, "VBIOS 13-C86901_216"));
  // Current link 5.0 GT/s x4; the maximum (8.0 GT/s x8) is what pcie_gen/width report.
  EXPECT_EQ(f.pcie_gen, 3);
  EXPECT_EQ(f.pcie_width, 8);
  EXPECT_TRUE(has_note(o, "PCIe link currently 5.0 GT/s PCIe x4"));
  expect_model_from_pci_ids(o, 0x1002, 0x6617, "Oland", 0x87);
}

TEST(SysfsFixtures, ArcA380I915) {
  ParseResult r = scan_fixture("intel-arc-a380-i915-lact");
  ASSERT_EQ(r.devices.size(), 1u);
  const Observation& o = r.devices[0];
  const GpuFields& f = o.f;
  EXPECT_EQ(f.vendor, "intel");
  EXPECT_EQ(f.pci_vendor_id, 0x8086u);
  EXPECT_EQ(f.pci_device_id, 0x56a5u);  // from uevent: no device file
  EXPECT_TRUE(has_note(o, "PCI subsystem 1849:6004"));
  EXPECT_EQ(f.bus_id, "0000:0b:00.0");
  EXPECT_EQ(f.kernel_driver, "i915");
  EXPECT_EQ(f.temperature_c, 55.0);
  EXPECT_EQ(f.power_limit_w, 55.0);  // power1_max (PL1)
  EXPECT_EQ(o.field_detail.at("power_limit_w"),
            "hwmon power1_max (card sustained power limit PL1)");
  EXPECT_FALSE(f.power_limit_default_w);  // power1_rated_max reads 0
  EXPECT_EQ(f.clock_mhz, 2450);           // gt_RP0_freq_mhz
  EXPECT_EQ(f.pcie_gen, 1);
  EXPECT_EQ(f.pcie_width, 1);
  EXPECT_TRUE(has_note(o, "on-board PCIe switch"));
  EXPECT_FALSE(f.vram_total_mb);
  EXPECT_FALSE(f.utilization_pct);
  expect_model_from_pci_ids(o, 0x8086, 0x56a5, "A380");
}

// Issue 13: xe hwmon is not i915's (sysfs-driver-intel-xe-hwmon): power1_* the card, power2_*
// the package, _max the sustained PL1, _cap the burst PL2. The A380 capture moved to xe the way
// xe lays it out on DG2 (package channel only); burst values are hand-written.
TEST(SysfsFixtures, XeHwmonPackageLimitAndBurstLimit) {
  TempDir tmp;
  install_fixture(tmp.path(), "intel-arc-a380-i915-lact");
  std::string dev = tmp.path() + "/class/drm/card1/device";
  std::string hw = dev + "/hwmon/hwmon1";
  std::string ue = test::read_fixture("sysfs/intel-arc-a380-i915-lact/card1/device/uevent");
  ue.replace(ue.find("DRIVER=i915"), 11, "DRIVER=xe");
  write_file(dev + "/uevent", ue);
  write_file(hw + "/name", "xe\n");
  fs::remove(hw + "/power1_max");
  fs::remove(hw + "/power1_rated_max");
  write_file(hw + "/power2_max", "55000000\n");
  write_file(hw + "/power2_rated_max", "75000000\n");
  write_file(hw + "/power2_cap", "89000000\n");
  {
    RootedFs rfs(tmp.path());
    ParseResult r = scan_drm_sysfs(rfs);
    ASSERT_EQ(r.devices.size(), 1u);
    const Observation& o = r.devices[0];
    EXPECT_EQ(o.f.kernel_driver, "xe");
    EXPECT_EQ(o.f.power_limit_w, 55.0);  // package PL1, not the 89 W burst limit
    EXPECT_EQ(o.f.power_limit_default_w, 75.0);
    EXPECT_EQ(o.field_detail.at("power_limit_w"),
              "hwmon power2_max (package sustained power limit PL1)");
    EXPECT_TRUE(has_note(o, "package burst power limit PL2 (hwmon power2_cap) 89 W"));
    EXPECT_TRUE(has_note(o, "power limit lowered to 55 W (default 75 W)"));
  }
  // A card channel too: the card's PL1 is the limit; a card burst limit alone is no limit.
  write_file(hw + "/power1_max", "60000000\n");
  write_file(hw + "/power1_cap", "120000000\n");
  {
    RootedFs rfs(tmp.path());
    ParseResult r = scan_drm_sysfs(rfs);
    ASSERT_EQ(r.devices.size(), 1u);
    EXPECT_EQ(r.devices[0].f.power_limit_w, 60.0);
    EXPECT_EQ(r.devices[0].field_detail.at("power_limit_w"),
              "hwmon power1_max (card sustained power limit PL1)");
  }
  fs::remove(hw + "/power1_max");
  fs::remove(hw + "/power2_max");
  RootedFs rfs(tmp.path());
  ParseResult r = scan_drm_sysfs(rfs);
  ASSERT_EQ(r.devices.size(), 1u);
  EXPECT_FALSE(r.devices[0].f.power_limit_w);  // power1_cap (120 W burst) is not the limit
}

TEST(SysfsFixtures, TigerLakeXe) {
  ParseResult r = scan_fixture("intel-tigerlake-igpu-xe-lact");
  ASSERT_EQ(r.devices.size(), 1u);
  const Observation& o = r.devices[0];
  const GpuFields& f = o.f;
  EXPECT_EQ(f.vendor, "intel");
  EXPECT_EQ(f.pci_vendor_id, 0x8086u);
  EXPECT_EQ(f.pci_device_id, 0x9a49u);
  EXPECT_TRUE(has_note(o, "PCI subsystem 17aa:3f19"));
  EXPECT_EQ(f.bus_id, "0000:00:02.0");
  EXPECT_EQ(f.kernel_driver, "xe");
  EXPECT_EQ(f.clock_mhz, 1300);  // tile0/gt0/freq0/rp0_freq
  EXPECT_FALSE(f.pcie_gen);      // "Unknown"
  EXPECT_FALSE(f.pcie_width);    // 0
  EXPECT_FALSE(f.temperature_c);
  EXPECT_FALSE(f.vram_total_mb);
  EXPECT_FALSE(f.power_limit_w);
  expect_model_from_pci_ids(o, 0x8086, 0x9a49, "Iris Xe");
}

TEST(SysfsFixtures, CometLakeI915) {
  ParseResult r = scan_fixture("intel-cometlake-igpu-i915-lact");
  ASSERT_EQ(r.devices.size(), 1u);
  const Observation& o = r.devices[0];
  const GpuFields& f = o.f;
  EXPECT_EQ(f.vendor, "intel");
  EXPECT_EQ(f.pci_device_id, 0x9b41u);
  EXPECT_TRUE(has_note(o, "PCI subsystem 17aa:22b1"));
  EXPECT_EQ(f.bus_id, "0000:00:02.0");
  EXPECT_EQ(f.kernel_driver, "i915");
  EXPECT_EQ(f.tool_index, 0);
  EXPECT_EQ(f.clock_mhz, 1150);
  EXPECT_FALSE(f.pcie_gen);
  EXPECT_FALSE(f.vram_total_mb);
  EXPECT_FALSE(f.temperature_c);
  expect_model_from_pci_ids(o, 0x8086, 0x9b41, "UHD");
}

const char* const kFixtures[] = {
    "amd-phoenix-apu-lact",           "amd-radeon-r7-240-lact",
    "amd-radeon-rx-vega56-lact",      "amd-radeon-rx7900xtx-no-vram-files-lact",
    "amd-radeon-rx9070xt-lact",       "intel-arc-a380-i915-lact",
    "intel-cometlake-igpu-i915-lact", "intel-tigerlake-igpu-xe-lact",
};

// Every fixture file replaced by damaged content (cut halfway, cut to one byte, binary junk,
// huge numbers, NULs): the scan must not crash and must keep values sane.
TEST(SysfsRobustness, DamagedFixtureFiles) {
  std::mt19937 rng(1234);
  for (const char* name : kFixtures) {
    for (int mode = 0; mode < 5; ++mode) {
      TempDir tmp;
      install_fixture(tmp.path(), name);
      for (const auto& e : fs::recursive_directory_iterator(tmp.path())) {
        if (!e.is_regular_file()) continue;
        std::string c = test::read_file(e.path().string());
        switch (mode) {
          case 0:
            c = c.substr(0, c.size() / 2);
            break;
          case 1:
            c = c.substr(0, 1);
            break;
          case 2: {
            std::string junk(64, '\0');
            for (char& ch : junk) ch = static_cast<char>(rng() & 0xff);
            c = junk;
            break;
          }
          case 3:
            c = "99999999999999999999999999\n";
            break;
          case 4:
            c = std::string(10, '\0') + c;
            break;
        }
        write_file(e.path().string(), c);
      }
      RootedFs rfs(tmp.path());
      ParseResult r = scan_drm_sysfs(rfs);
      EXPECT_LE(r.devices.size(), 1u) << name << " mode " << mode;
      for (const Observation& o : r.devices) {
        if (o.f.vram_total_mb) {
          EXPECT_GT(*o.f.vram_total_mb, 0);
        }
        if (o.f.vram_free_mb) {
          EXPECT_GE(*o.f.vram_free_mb, 0);
        }
        if (o.f.utilization_pct) {
          EXPECT_LE(*o.f.utilization_pct, 100);
        }
        if (o.f.temperature_c) {
          EXPECT_LE(*o.f.temperature_c, 200.0);
        }
        if (o.f.pcie_width) {
          EXPECT_LE(*o.f.pcie_width, 32);
        }
        if (o.f.power_limit_w) {
          EXPECT_GE(*o.f.power_limit_w, 0.0);
        }
        if (o.f.model) {
          EXPECT_FALSE(o.f.model->empty());
        }
      }
    }
  }
}

void symlink_or_fail(const std::string& target, const std::string& link) {
  fs::create_directories(fs::path(link).parent_path());
  ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0) << link;
}

// A tree laid out like the real /sys: device links to the PCI device, driver links, a card
// that is itself a link below a virtio device, a NIC with a DRM card, and a display-class
// PCI device that no DRM driver claimed.
TEST(SysfsRealLayout, LinksVirtioNonDisplayAndPciOnly) {
  TempDir tmp;
  const std::string root = tmp.path();
  // card0: Intel iGPU, device -> ../../../devices/pci0000:00/0000:00:02.0
  const std::string igpu = root + "/devices/pci0000:00/0000:00:02.0";
  write_file(igpu + "/vendor", "0x8086\n");
  write_file(igpu + "/device", "0x9a49\n");
  write_file(igpu + "/class", "0x030000\n");
  write_file(igpu + "/numa_node", "0\n");
  write_file(igpu + "/uevent", "DRIVER=i915\nPCI_CLASS=30000\nPCI_ID=8086:9A49\n");
  fs::create_directories(root + "/bus/pci/drivers/i915");
  symlink_or_fail("../../../module/i915", root + "/bus/pci/drivers/i915/module");
  symlink_or_fail("../../../bus/pci/drivers/i915", igpu + "/driver");
  write_file(igpu + "/hwmon/hwmon3/name", "i915\n");
  write_file(igpu + "/hwmon/hwmon3/temp1_input", "47000\n");
  write_file(igpu + "/hwmon/hwmon3/power1_max", "28000000\n");
  write_file(igpu + "/hwmon/hwmon3/power1_rated_max", "15000000\n");
  write_file(root + "/class/drm/card0/gt_max_freq_mhz", "1100\n");
  write_file(root + "/class/drm/card0/gt_RP0_freq_mhz", "1300\n");
  symlink_or_fail("../../../devices/pci0000:00/0000:00:02.0", root + "/class/drm/card0/device");
  fs::create_directories(root + "/class/drm/card0-eDP-1");
  fs::create_directories(root + "/class/drm/renderD128");
  write_file(root + "/class/drm/version", "drm 1.1.0 20060810\n");

  // card1: virtio-gpu, the real layout: class/drm/card1 -> the device's drm/card1 directory.
  const std::string vpci = root + "/devices/pci0000:00/0000:00:01.0";
  write_file(vpci + "/vendor", "0x1af4\n");
  write_file(vpci + "/device", "0x1050\n");
  write_file(vpci + "/class", "0x030000\n");
  write_file(vpci + "/virtio0/vendor", "0x1af4\n");
  write_file(vpci + "/virtio0/device", "0x0010\n");
  write_file(vpci + "/virtio0/uevent", "DRIVER=virtio_gpu\nMODALIAS=virtio:d00000010v00001AF4\n");
  fs::create_directories(vpci + "/virtio0/drm/card1");
  symlink_or_fail("../../../virtio0", vpci + "/virtio0/drm/card1/device");
  symlink_or_fail("../../devices/pci0000:00/0000:00:01.0/virtio0/drm/card1",
                  root + "/class/drm/card1");

  // card2: a network controller with a DRM card (class 0x020000): not a GPU.
  write_file(root + "/class/drm/card2/device/class", "0x020000\n");
  write_file(root + "/class/drm/card2/device/uevent",
             "DRIVER=foo\nPCI_ID=15B3:1017\nPCI_SLOT_NAME=0000:05:00.0\n");

  // card3: bochs (QEMU std VGA); driver link bochs-drm, module bochs.
  const std::string bochs = root + "/devices/pci0000:00/0000:00:03.0";
  write_file(bochs + "/vendor", "0x1234\n");
  write_file(bochs + "/device", "0x1111\n");
  write_file(bochs + "/class", "0x030000\n");
  fs::create_directories(root + "/bus/pci/drivers/bochs-drm");
  symlink_or_fail("../../../../module/bochs", root + "/bus/pci/drivers/bochs-drm/module");
  symlink_or_fail("../../../bus/pci/drivers/bochs-drm", bochs + "/driver");
  symlink_or_fail("../../../devices/pci0000:00/0000:00:03.0", root + "/class/drm/card3/device");

  // /sys/bus/pci/devices: the iGPU again (already seen), a NIC, and an H100 with no DRM card.
  const std::string h100 = root + "/devices/pci0000:40/0000:41:00.0";
  write_file(h100 + "/vendor", "0x10de\n");
  write_file(h100 + "/device", "0x2330\n");
  write_file(h100 + "/class", "0x030200\n");
  write_file(h100 + "/numa_node", "1\n");
  write_file(h100 + "/max_link_speed", "32.0 GT/s PCIe\n");
  write_file(h100 + "/max_link_width", "16\n");
  fs::create_directories(root + "/bus/pci/drivers/nvidia");
  symlink_or_fail("../../../bus/pci/drivers/nvidia", h100 + "/driver");
  const std::string nic = root + "/devices/pci0000:00/0000:00:04.0";
  write_file(nic + "/class", "0x020000\n");
  symlink_or_fail("../../../devices/pci0000:00/0000:00:02.0",
                  root + "/bus/pci/devices/0000:00:02.0");
  symlink_or_fail("../../../devices/pci0000:40/0000:41:00.0",
                  root + "/bus/pci/devices/0000:41:00.0");
  symlink_or_fail("../../../devices/pci0000:00/0000:00:04.0",
                  root + "/bus/pci/devices/0000:00:04.0");

  RootedFs rfs(root);
  ParseResult r = scan_drm_sysfs(rfs);
  ASSERT_EQ(r.devices.size(), 4u);
  ASSERT_EQ(r.ignored.size(), 1u);

  const Observation& igpu_o = r.devices[0];
  EXPECT_EQ(igpu_o.f.bus_id, "0000:00:02.0");  // from the device link
  EXPECT_EQ(igpu_o.f.kernel_driver, "i915");
  EXPECT_EQ(igpu_o.f.pci_device_id, 0x9a49u);
  EXPECT_EQ(igpu_o.f.numa_node, 0);
  EXPECT_EQ(igpu_o.f.temperature_c, 47.0);
  EXPECT_EQ(igpu_o.f.power_limit_w, 28.0);
  EXPECT_EQ(igpu_o.f.power_limit_default_w, 15.0);  // power1_rated_max
  EXPECT_EQ(igpu_o.f.clock_mhz, 1300);              // RP0 over the lowered soft max
  EXPECT_TRUE(has_note(igpu_o, "soft limit lowered to 1100 MHz"));
  EXPECT_FALSE(igpu_o.software_reason);

  const Observation& virtio = r.devices[1];
  ASSERT_TRUE(virtio.software_reason);
  EXPECT_NE(virtio.software_reason->find("virtio"), std::string::npos);
  EXPECT_EQ(virtio.f.kernel_driver, "virtio_gpu");
  EXPECT_EQ(virtio.f.bus_id, "0000:00:01.0");  // its PCI parent, from the card's link
  EXPECT_FALSE(virtio.f.pci_vendor_id);        // virtio ids are not PCI ids
  EXPECT_FALSE(virtio.f.pci_device_id);
  EXPECT_TRUE(has_note(virtio, "not a PCI device (virtio)"));

  const Observation& bochs_o = r.devices[2];
  EXPECT_EQ(bochs_o.f.kernel_driver, "bochs");  // the module behind driver/module
  ASSERT_TRUE(bochs_o.software_reason);
  EXPECT_NE(bochs_o.software_reason->find("Bochs"), std::string::npos);
  EXPECT_EQ(bochs_o.f.bus_id, "0000:00:03.0");

  const Observation& h = r.devices[3];
  EXPECT_EQ(h.f.bus_id, "0000:41:00.0");
  EXPECT_EQ(h.f.vendor, "nvidia");
  EXPECT_EQ(h.f.kernel_driver, "nvidia");
  EXPECT_EQ(h.f.numa_node, 1);
  EXPECT_EQ(h.f.pcie_gen, 5);
  EXPECT_EQ(h.f.pcie_width, 16);
  EXPECT_FALSE(h.f.tool_index);
  EXPECT_FALSE(h.software_reason);
  EXPECT_TRUE(has_note(h, "without a DRM card"));

  EXPECT_EQ(r.ignored[0].source, "sysfs");
  EXPECT_NE(r.ignored[0].reason.find("0x020000"), std::string::npos);
  EXPECT_NE(r.ignored[0].name.find("card2"), std::string::npos);
  EXPECT_NE(r.ignored[0].name.find("0000:05:00.0"), std::string::npos);
}

TEST(SysfsRealLayout, CardsSortedNumerically) {
  TempDir tmp;
  for (int n : {10, 2, 1}) {
    std::string d = tmp.path() + "/class/drm/card" + std::to_string(n) + "/device";
    char slot[32];
    std::snprintf(slot, sizeof slot, "0000:%02x:00.0", n);
    write_file(d + "/uevent",
               std::string("DRIVER=amdgpu\nPCI_ID=1002:744C\nPCI_SLOT_NAME=") + slot + "\n");
  }
  RootedFs rfs(tmp.path());
  ParseResult r = scan_drm_sysfs(rfs);
  ASSERT_EQ(r.devices.size(), 3u);
  EXPECT_EQ(r.devices[0].f.tool_index, 1);
  EXPECT_EQ(r.devices[1].f.tool_index, 2);
  EXPECT_EQ(r.devices[2].f.tool_index, 10);
  EXPECT_EQ(r.devices[2].f.bus_id, "0000:0a:00.0");
}

TEST(SysfsRealLayout, EmptyAndMissingRoots) {
  TempDir tmp;
  RootedFs missing(tmp.path() + "/nope");
  ParseResult r = scan_drm_sysfs(missing);
  EXPECT_TRUE(r.devices.empty());
  ASSERT_FALSE(r.notes.empty());
  EXPECT_NE(r.notes[0].find("does not exist"), std::string::npos);

  fs::create_directories(tmp.path() + "/class/drm/card0");  // no device directory
  RootedFs rfs(tmp.path());
  r = scan_drm_sysfs(rfs);
  EXPECT_TRUE(r.devices.empty());
  EXPECT_TRUE(std::any_of(r.notes.begin(), r.notes.end(), [](const std::string& n) {
    return n.find("card0 has no device directory") != std::string::npos;
  }));
}

TEST(SysfsSource, CollectOnFixture) {
  TempDir tmp;
  install_fixture(tmp.path(), "amd-radeon-rx-vega56-lact");
  RootedFs rfs(tmp.path());
  auto src = make_sysfs_source();
  EXPECT_EQ(src->name(), "sysfs");
  EXPECT_EQ(src->authority(), 70);
  SourceContext ctx;
  ctx.fs = &rfs;
  SourceReport rep = src->collect(ctx);
  EXPECT_EQ(rep.source, "sysfs");
  EXPECT_EQ(rep.status, SourceStatus::ok);
  EXPECT_EQ(rep.what, tmp.path() + "/class/drm");
  EXPECT_GE(rep.duration_ms, 0.0);
  ASSERT_EQ(rep.devices.size(), 1u);
  EXPECT_EQ(rep.devices[0].f.bus_id, "0000:0b:00.0");
}

TEST(SysfsSource, CollectOnEmptyRoot) {
  TempDir tmp;
  RootedFs rfs(tmp.path());
  SourceContext ctx;
  ctx.fs = &rfs;
  SourceReport rep = make_sysfs_source()->collect(ctx);
  EXPECT_EQ(rep.status, SourceStatus::no_devices);
  EXPECT_FALSE(rep.notes.empty());
}

// This machine's own /sys (a VM without a GPU on the dev box): must not crash, and must
// report no non-software GPU.
TEST(SysfsSource, RealSysOfThisMachine) {
  RootedFs rfs("/sys");
  SourceContext ctx;
  ctx.fs = &rfs;
  SourceReport rep = make_sysfs_source()->collect(ctx);
  EXPECT_EQ(rep.what, "/sys/class/drm");
  EXPECT_TRUE(rep.status == SourceStatus::ok || rep.status == SourceStatus::no_devices);
  size_t real = 0;
  for (const Observation& o : rep.devices)
    if (!o.software_reason) ++real;
  if (std::getenv("GREY_EXPECT_REAL_GPU") == nullptr) {
    EXPECT_EQ(real, 0u) << "this test assumes a machine without a GPU; set GREY_EXPECT_REAL_GPU "
                           "to run it on a GPU host";
  } else {
    EXPECT_GT(real, 0u);
  }
}

// --- pure helpers -------------------------------------------------------------------------

TEST(SysfsHelpers, Uevent) {
  std::string text =
      "DRIVER=amdgpu\nPCI_CLASS=30000\nPCI_ID=1002:687F\nPCI_SUBSYS_ID=1043:0555\n"
      "PCI_SLOT_NAME=0000:0B:00.0\nMODALIAS=pci:v00001002d0000687F\n";
  text += std::string(100, '\0');
  sysfs::Uevent u = sysfs::parse_uevent(text);
  EXPECT_EQ(u.driver, "amdgpu");
  EXPECT_EQ(u.vendor, 0x1002u);
  EXPECT_EQ(u.device, 0x687fu);
  EXPECT_EQ(u.subsys_vendor, 0x1043u);
  EXPECT_EQ(u.subsys_device, 0x0555u);
  EXPECT_EQ(u.pci_class, 0x030000u);
  EXPECT_EQ(u.slot, "0000:0b:00.0");
  EXPECT_EQ(u.modalias, "pci:v00001002d0000687F");

  sysfs::Uevent bad = sysfs::parse_uevent("PCI_ID=zz:1\nPCI_SLOT_NAME=garbage\nDRIVER=\n=x\n");
  EXPECT_FALSE(bad.vendor);
  EXPECT_FALSE(bad.device);
  EXPECT_FALSE(bad.slot);
  EXPECT_FALSE(bad.driver);
  EXPECT_FALSE(sysfs::parse_uevent("").driver);
}

TEST(SysfsHelpers, GfxTargetName) {
  EXPECT_EQ(sysfs::gfx_target_name(90010), "gfx90a");
  EXPECT_EQ(sysfs::gfx_target_name(100300), "gfx1030");
  EXPECT_EQ(sysfs::gfx_target_name(110003), "gfx1103");
  EXPECT_EQ(sysfs::gfx_target_name(90402), "gfx942");
  EXPECT_EQ(sysfs::gfx_target_name(90000), "gfx900");
  EXPECT_EQ(sysfs::gfx_target_name(120001), "gfx1201");
  EXPECT_FALSE(sysfs::gfx_target_name(0));
  EXPECT_FALSE(sysfs::gfx_target_name(-5));
  EXPECT_FALSE(sysfs::gfx_target_name(91600));  // minor 16
  EXPECT_FALSE(sysfs::gfx_target_name(90016));  // stepping 16
}

TEST(SysfsHelpers, KfdProperties) {
  auto p = sysfs::parse_kfd_properties("simd_count 24\nsimd_per_cu 2\nname x y\n  domain 0\n");
  EXPECT_EQ(p["simd_count"], 24);
  EXPECT_EQ(p["simd_per_cu"], 2);
  EXPECT_EQ(p.count("name"), 0u);
  EXPECT_EQ(p["domain"], 0);
  EXPECT_EQ(sysfs::kfd_bus_id(0, 25600), "0000:64:00.0");
  EXPECT_EQ(sysfs::kfd_bus_id(1, (0x41 << 8) | (3 << 3) | 1), "0001:41:03.1");
  EXPECT_FALSE(sysfs::kfd_bus_id(-1, 0));
  EXPECT_FALSE(sysfs::kfd_bus_id(0, 70000));
}

TEST(SysfsHelpers, PciAddressInPath) {
  EXPECT_EQ(sysfs::pci_address_in_path("../../../0000:01:00.0"), "0000:01:00.0");
  EXPECT_EQ(sysfs::pci_address_in_path("../../devices/pci0000:00/0000:00:01.0/virtio0/drm/card0"),
            "0000:00:01.0");
  EXPECT_EQ(
      sysfs::pci_address_in_path("../../devices/pci0000:00/0000:00:01.1/0000:0A:00.0/drm/card1"),
      "0000:0a:00.0");
  EXPECT_FALSE(sysfs::pci_address_in_path("../../../virtio0"));
  EXPECT_FALSE(sysfs::pci_address_in_path("../../devices/platform/simple-framebuffer.0/drm/card0"));
  EXPECT_FALSE(sysfs::pci_address_in_path(""));
}

TEST(SysfsHelpers, DpmClock) {
  EXPECT_EQ(sysfs::max_dpm_clock_mhz("0: 500Mhz\n1: 1200Mhz *\n2: 2554Mhz\n"), 2554);
  EXPECT_EQ(sysfs::max_dpm_clock_mhz("S: 19Mhz *\n"), 19);
  EXPECT_FALSE(sysfs::max_dpm_clock_mhz("garbage"));
  EXPECT_FALSE(sysfs::max_dpm_clock_mhz(""));
}

// Real pp_od_clk_voltage captures (tests/fixtures/pp_od_clk_voltage, SOURCES.md).
TEST(SysfsHelpers, OdSclkMaxFromRealCaptures) {
  // RDNA3 min/max table: the upper OD_SCLK bound, not OD_RANGE's 5000 MHz nor OD_MCLK.
  EXPECT_EQ(sysfs::od_sclk_max_mhz(
                test::read_fixture("pp_od_clk_voltage/amd-rx7900xtx-rdna3-amdgpu-sysfs-rs.txt")),
            3005);
  // Navi10: OD_SCLK plus a V/F curve and VDDC_CURVE_SCLK ranges (2150) that must not count.
  EXPECT_EQ(sysfs::od_sclk_max_mhz(
                test::read_fixture("pp_od_clk_voltage/amd-rx5700xt-navi10-amdgpu-sysfs-rs.txt")),
            2100);
  // RDNA4 exposes only an offset: no absolute limit.
  EXPECT_FALSE(sysfs::od_sclk_max_mhz(
      test::read_fixture("pp_od_clk_voltage/amd-rx9070xt-rdna4-offset-only-amdgpu-sysfs-rs.txt")));
  // Polaris/Vega10 per-state table "N: <clock>MHz <volt>mV" (kernel smu7 format string).
  EXPECT_EQ(sysfs::od_sclk_max_mhz("OD_SCLK:\n0:        300MHz        750mV\n"
                                   "7:       1244MHz       1150mV\nOD_MCLK:\n"
                                   "0:        300MHz        750mV\n1:       2000MHz 800mV\n"),
            1244);
  EXPECT_FALSE(sysfs::od_sclk_max_mhz(""));
  EXPECT_FALSE(sysfs::od_sclk_max_mhz("OD_SCLK:\n0: 800mV\n1: garbage\n"));
  EXPECT_FALSE(sysfs::od_sclk_max_mhz("OD_MCLK:\n1: 875MHz\n"));
  EXPECT_EQ(sysfs::od_sclk_max_mhz(std::string("OD_SCLK:\n1: 2735Mhz\n\0\0\0", 22)), 2735);
}

// The RX 7900 XTX case of issue 13: pp_dpm_sclk's top level is the game clock (2219 MHz),
// the boost limit is the upper OD_SCLK bound; field provenance says which file was read.
TEST(SysfsFixtures, AmdgpuClockIsTheOdSclkBoostLimit) {
  TempDir tmp;
  install_fixture(tmp.path(), "amd-radeon-rx7900xtx-no-vram-files-lact");
  std::string dev = tmp.path() + "/class/drm/card0/device";
  write_file(dev + "/pp_dpm_sclk", "0: 500Mhz\n1: 1500Mhz *\n2: 2219Mhz\n");
  write_file(dev + "/pp_od_clk_voltage",
             "OD_SCLK:\n0: 500Mhz\n1: 2735Mhz\nOD_MCLK:\n0: 97Mhz\n1: 1250MHz\n"
             "OD_VDDGFX_OFFSET:\n0mV\nOD_RANGE:\nSCLK:     500Mhz       3150Mhz\n");
  {
    RootedFs rfs(tmp.path());
    ParseResult r = scan_drm_sysfs(rfs);
    ASSERT_EQ(r.devices.size(), 1u);
    EXPECT_EQ(r.devices[0].f.clock_mhz, 2735);
    EXPECT_NE(r.devices[0].field_detail["clock_mhz"].find("pp_od_clk_voltage"), std::string::npos);
    EXPECT_TRUE(has_note(r.devices[0], "pp_dpm_sclk tops out at 2219 MHz"));
  }
  // Overdrive not exposed (RDNA4 offset-only table): pp_dpm_sclk's top level, said so.
  write_file(
      dev + "/pp_od_clk_voltage",
      test::read_fixture("pp_od_clk_voltage/amd-rx9070xt-rdna4-offset-only-amdgpu-sysfs-rs.txt"));
  RootedFs rfs(tmp.path());
  ParseResult r = scan_drm_sysfs(rfs);
  ASSERT_EQ(r.devices.size(), 1u);
  EXPECT_EQ(r.devices[0].f.clock_mhz, 2219);
  EXPECT_NE(r.devices[0].field_detail["clock_mhz"].find("pp_dpm_sclk"), std::string::npos);
}

TEST(SysfsHelpers, SoftwareReason) {
  for (const char* d :
       {"virtio_gpu", "virtio-gpu", "bochs", "bochs-drm", "cirrus", "qxl", "vmwgfx", "vboxvideo",
        "hyperv_drm", "simpledrm", "simple-framebuffer", "simplefb", "efifb", "ast", "mgag200"}) {
    EXPECT_TRUE(sysfs::software_reason(std::string_view(d), std::nullopt, std::nullopt)) << d;
  }
  EXPECT_NE(
      sysfs::software_reason(std::string_view("ast"), std::nullopt, std::nullopt)->find("BMC"),
      std::string::npos);
  for (const char* d : {"amdgpu", "i915", "xe", "nvidia", "nouveau", "radeon"})
    EXPECT_FALSE(sysfs::software_reason(std::string_view(d), 0x10de, 0x2330)) << d;
  EXPECT_TRUE(sysfs::software_reason(std::nullopt, 0x1234, 0x1111));
  EXPECT_TRUE(sysfs::software_reason(std::nullopt, 0x1a03, 0x2000));
  EXPECT_FALSE(sysfs::software_reason(std::nullopt, 0x1002, 0x744c));
  EXPECT_FALSE(sysfs::software_reason(std::nullopt, std::nullopt, std::nullopt));
}

// SPEC §9: two Vega 56 boards, card0 runtime-suspended and card1 active. The recording door
// proves that nothing that would wake card0 was opened, and card1 is read in full.
struct SleepingPair {
  TempDir tmp;
  SleepingPair(const std::string& status0, const std::string& status1) {
    std::string src = test::fixture_path("sysfs/amd-radeon-rx-vega56-lact/card0");
    fs::create_directories(fs::path(tmp.path()) / "class/drm");
    for (const char* card : {"card0", "card1"})
      fs::copy(src, fs::path(tmp.path()) / "class/drm" / card, fs::copy_options::recursive);
    std::string dev1 = tmp.path() + "/class/drm/card1/device";
    write_file(dev1 + "/uevent",
               "DRIVER=amdgpu\nPCI_CLASS=30000\nPCI_ID=1002:687F\nPCI_SLOT_NAME=0000:0c:00.0\n");
    write_file(tmp.path() + "/class/drm/card0/device/power/runtime_status", status0 + "\n");
    write_file(dev1 + "/power/runtime_status", status1 + "\n");
  }
};

const char* const kWakingFiles[] = {"hwmon",        "pp_",      "mem_info_", "gpu_busy_percent",
                                    "current_link", "max_link", "config",    "vbios_version"};

TEST(SysfsPowerState, SuspendedCardIsNotWokenAndActiveNeighbourIsReadNormally) {
  SleepingPair tree("suspended", "active");
  RootedFs rfs(tree.tmp.path());
  RecordingFs rec(rfs);
  ParseResult r = scan_drm_sysfs(rec);
  ASSERT_EQ(r.devices.size(), 2u);
  const Observation& asleep = r.devices[0];
  const Observation& awake = r.devices[1];
  EXPECT_EQ(asleep.f.power_state, "suspended");
  EXPECT_EQ(asleep.f.bus_id, "0000:0b:00.0");
  EXPECT_EQ(asleep.f.vendor, "amd");
  EXPECT_EQ(asleep.f.kernel_driver, "amdgpu");
  EXPECT_FALSE(asleep.f.vram_total_mb);
  EXPECT_FALSE(asleep.f.temperature_c);
  EXPECT_TRUE(has_note(asleep, "runtime-suspended"));
  for (const char* w : kWakingFiles) {
    EXPECT_FALSE(rec.touched(std::string("/sys/class/drm/card0/device/") + w)) << w;
    EXPECT_TRUE(rec.touched(std::string("/sys/class/drm/card1/device/") + w) ||
                std::string(w) == "config" || std::string(w) == "pp_")
        << w;
  }
  EXPECT_EQ(awake.f.power_state, "active");
  EXPECT_TRUE(awake.f.vram_total_mb);
  EXPECT_TRUE(awake.f.temperature_c);
  EXPECT_TRUE(awake.f.pcie_gen);
}

TEST(SysfsPowerState, KernelValuesMapToSpecStates) {
  EXPECT_EQ(sysfs::power_state_from("active\n"), "active");
  EXPECT_EQ(sysfs::power_state_from("resuming"), "active");
  EXPECT_EQ(sysfs::power_state_from("suspended"), "suspended");
  EXPECT_EQ(sysfs::power_state_from("suspending"), "suspended");
  EXPECT_EQ(sysfs::power_state_from("unsupported"), "unsupported");
  EXPECT_EQ(sysfs::power_state_from("error"), std::nullopt);
  EXPECT_EQ(sysfs::power_state_from(""), std::nullopt);
}

TEST(SysfsPowerState, SuspendingIsTreatedAsAsleepAndErrorIsReadNormally) {
  SleepingPair tree("suspending", "error");
  RootedFs rfs(tree.tmp.path());
  RecordingFs rec(rfs);
  ParseResult r = scan_drm_sysfs(rec);
  ASSERT_EQ(r.devices.size(), 2u);
  EXPECT_EQ(r.devices[0].f.power_state, "suspended");
  EXPECT_FALSE(rec.touched("/sys/class/drm/card0/device/hwmon"));
  EXPECT_EQ(r.devices[1].f.power_state, std::nullopt);
  EXPECT_TRUE(has_note(r.devices[1], "power state unknown"));
  EXPECT_TRUE(rec.touched("/sys/class/drm/card1/device/hwmon"));
}

TEST(SysfsPowerState, NoRuntimeStatusFileLeavesItUnknown) {
  ParseResult r = scan_fixture("amd-radeon-rx-vega56-lact");
  ASSERT_EQ(r.devices.size(), 1u);
  EXPECT_EQ(r.devices[0].f.power_state, std::nullopt);
  EXPECT_TRUE(r.devices[0].f.vram_total_mb);
}

}  // namespace
}  // namespace grey
