// parse_lspci against every fixture of tests/fixtures/lspci (facts from SOURCES.md), the
// captures of this dev VM (tests/fixtures/local), the hand-written shapes of the other forms
// (tests/fixtures/handmade/lspci-*), and bad input.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "sources/parsers.h"
#include "test_util.h"
#include "util/strings.h"

namespace grey {
namespace {

using grey::test::read_fixture;

bool has_note(const std::vector<std::string>& notes, std::string_view needle) {
  for (const auto& n : notes)
    if (contains(n, needle)) return true;
  return false;
}

const Observation* by_bus(const ParseResult& r, const std::string& bus) {
  for (const auto& d : r.devices)
    if (d.f.bus_id == bus) return &d;
  return nullptr;
}

// What every `lspci -v` fixture shares: one display device, no VRAM from the BAR, no link
// info (non-root -v), the vendor id not printed.
void expect_v_common(const Observation& d) {
  EXPECT_FALSE(d.f.vram_total_mb) << "a BAR size is not VRAM";
  EXPECT_FALSE(d.f.vram_free_mb);
  EXPECT_FALSE(d.f.pcie_gen);
  EXPECT_FALSE(d.f.pcie_width);
  EXPECT_FALSE(d.f.numa_node);
  EXPECT_FALSE(d.f.pci_vendor_id) << "plain -v prints no numeric ids";
  EXPECT_FALSE(d.f.pci_device_id);
  EXPECT_FALSE(d.f.driver_version);
  EXPECT_FALSE(d.f.tool_index);
}

TEST(Lspci, Gtx970X58) {
  auto r = parse_lspci(read_fixture("lspci/nvidia-gtx970-x58-lspci-v-peracotta.txt"));
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u);
  const auto& d = r.devices[0];
  EXPECT_EQ(d.f.bus_id, "0000:02:00.0");
  EXPECT_EQ(d.f.vendor, "nvidia");
  EXPECT_EQ(d.f.model, "GM204 [GeForce GTX 970]");
  EXPECT_EQ(d.f.kernel_driver, "nvidia");
  EXPECT_FALSE(d.software_reason);
  EXPECT_TRUE(has_note(d.notes, "ASUSTeK Computer Inc. GM204 [GeForce GTX 970]"));
  EXPECT_TRUE(has_note(d.notes, "access denied"));
  expect_v_common(d);
  EXPECT_TRUE(r.notes.empty());
}

TEST(Lspci, RadeonPro560xMbp2018) {
  auto r = parse_lspci(read_fixture("lspci/amd-radeon-pro-560x-mbp2018-lspci-v-peracotta.txt"));
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u) << "Apple T2 devices and the HDMI audio are not GPUs";
  const auto& d = r.devices[0];
  EXPECT_EQ(d.f.bus_id, "0000:01:00.0");
  EXPECT_EQ(d.f.vendor, "amd");
  EXPECT_EQ(d.f.model, "Baffin [Radeon RX 460/560D / Pro 450/455/460/555/555X/560/560X]");
  EXPECT_EQ(d.f.kernel_driver, "amdgpu");
  EXPECT_FALSE(d.software_reason);
  EXPECT_TRUE(has_note(d.notes, "Apple Inc. Radeon Pro 560X"));
  expect_v_common(d);
}

TEST(Lspci, AtiEs1000ServerIsBmcClass) {
  auto r = parse_lspci(read_fixture("lspci/ati-es1000-server-lspci-v-peracotta.txt"));
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u);
  const auto& d = r.devices[0];
  EXPECT_EQ(d.f.bus_id, "0000:04:04.0");
  EXPECT_EQ(d.f.vendor, "amd");
  EXPECT_EQ(d.f.model, "ES1000");
  EXPECT_EQ(d.f.kernel_driver, "radeon");
  ASSERT_TRUE(d.software_reason);
  EXPECT_EQ(*d.software_reason,
            "server management display adapter (ATI ES1000), not a compute GPU");
  EXPECT_TRUE(has_note(d.notes, "subsystem: Intel Corporation ES1000"));
  expect_v_common(d);
}

TEST(Lspci, IntelHd515) {
  auto r = parse_lspci(read_fixture("lspci/intel-hd515-lspci-v-peracotta.txt"));
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u);
  const auto& d = r.devices[0];
  EXPECT_EQ(d.f.bus_id, "0000:00:02.0");
  EXPECT_EQ(d.f.vendor, "intel");
  EXPECT_EQ(d.f.model, "HD Graphics 515");
  EXPECT_EQ(d.f.kernel_driver, "i915");
  EXPECT_FALSE(d.software_reason);
  EXPECT_TRUE(has_note(d.notes, "ASUSTeK Computer Inc. HD Graphics 515"));
  expect_v_common(d);
}

TEST(Lspci, Gt750mMbp2014) {
  auto r = parse_lspci(read_fixture("lspci/nvidia-gt750m-mbp2014-lspci-v-peracotta.txt"));
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u) << "the Intel Iris iGPU is not listed";
  const auto& d = r.devices[0];
  EXPECT_EQ(d.f.bus_id, "0000:01:00.0");
  EXPECT_EQ(d.f.vendor, "nvidia");
  EXPECT_EQ(d.f.model, "GK107M [GeForce GT 750M Mac Edition]");
  EXPECT_EQ(d.f.kernel_driver, "nvidia");
  EXPECT_FALSE(d.software_reason);
  EXPECT_TRUE(has_note(d.notes, "subsystem: Apple Inc."));
  expect_v_common(d);
}

// ---- this dev VM (virtio devices only) ------------------------------------------------------

class LspciLocal : public ::testing::TestWithParam<const char*> {};

TEST_P(LspciLocal, RecognizedWithZeroGpus) {
  auto r = parse_lspci(read_fixture(std::string("local/") + GetParam()));
  EXPECT_TRUE(r.recognized);
  EXPECT_TRUE(r.devices.empty());
  EXPECT_TRUE(has_note(r.notes, "no display-class PCI device"));
  EXPECT_TRUE(has_note(r.notes, "among 6 PCI devices"));
}

INSTANTIATE_TEST_SUITE_P(DevVm, LspciLocal,
                         ::testing::Values("lspci-debian12-vm-no-gpu.txt",
                                           "lspci-nn-debian12-vm-no-gpu.txt",
                                           "lspci-v-debian12-vm-no-gpu.txt",
                                           "lspci-vmm-nn-D-debian12-vm-no-gpu.txt"));

TEST(Lspci, StderrWarningMixedIn) {
  std::string t = "lspci: Unable to load libkmod resources: error -2\n" +
                  read_fixture("local/lspci-v-debian12-vm-no-gpu.txt");
  auto r = parse_lspci(t);
  EXPECT_TRUE(r.recognized);
  EXPECT_TRUE(r.devices.empty());
}

// ---- other forms (hand-written shapes, see the .md beside each) -------------------------------

TEST(Lspci, NnDomainServer) {
  auto r = parse_lspci(read_fixture("handmade/lspci-nn-D-server-aspeed-2xA100-mi250.txt"));
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 4u);
  const auto* aspeed = by_bus(r, "0000:02:00.0");
  ASSERT_TRUE(aspeed);
  EXPECT_EQ(aspeed->f.pci_vendor_id, 0x1a03u);
  EXPECT_EQ(aspeed->f.pci_device_id, 0x2000u);
  EXPECT_EQ(aspeed->f.vendor, "unknown");
  EXPECT_EQ(aspeed->f.model, "ASPEED Graphics Family");
  ASSERT_TRUE(aspeed->software_reason);
  EXPECT_TRUE(contains(*aspeed->software_reason, "ASPEED"));

  for (const char* bus : {"0000:07:00.0", "0000:0f:00.0"}) {
    const auto* a100 = by_bus(r, bus);
    ASSERT_TRUE(a100) << bus;
    EXPECT_EQ(a100->f.vendor, "nvidia");
    EXPECT_EQ(a100->f.model, "GA100 [A100 SXM4 80GB]");
    EXPECT_EQ(a100->f.pci_vendor_id, 0x10deu);
    EXPECT_EQ(a100->f.pci_device_id, 0x20b2u);
    EXPECT_FALSE(a100->software_reason);
  }
  const auto* mi = by_bus(r, "0001:c1:00.0");
  ASSERT_TRUE(mi);
  EXPECT_EQ(mi->f.vendor, "amd");
  EXPECT_EQ(mi->f.model, "Aldebaran/MI200 [Instinct MI250X/MI250]");
  EXPECT_EQ(mi->f.pci_device_id, 0x740cu);
  EXPECT_FALSE(by_bus(r, "0000:47:00.0")) << "NIC is not a display device";
}

TEST(Lspci, VvRootLinkAndNuma) {
  auto r = parse_lspci(read_fixture("handmade/lspci-vv-root-rtx3090.txt"));
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 2u);
  const auto* igpu = by_bus(r, "0000:00:02.0");
  ASSERT_TRUE(igpu);
  EXPECT_EQ(igpu->f.vendor, "intel");
  EXPECT_EQ(igpu->f.model, "CometLake-S GT2 [UHD Graphics 630]");
  EXPECT_EQ(igpu->f.kernel_driver, "i915");
  EXPECT_FALSE(igpu->f.pcie_gen);
  EXPECT_FALSE(igpu->f.numa_node);

  const auto* gpu = by_bus(r, "0000:01:00.0");
  ASSERT_TRUE(gpu);
  EXPECT_EQ(gpu->f.vendor, "nvidia");
  EXPECT_EQ(gpu->f.model, "GA102 [GeForce RTX 3090]");
  EXPECT_EQ(gpu->f.pcie_gen, 4) << "from LnkCap, not the idle LnkSta 2.5GT/s";
  EXPECT_EQ(gpu->f.pcie_width, 16);
  EXPECT_EQ(gpu->f.numa_node, 0);
  EXPECT_EQ(gpu->f.kernel_driver, "nvidia");
  EXPECT_FALSE(gpu->f.vram_total_mb) << "the 32G BAR is not VRAM";
  EXPECT_TRUE(has_note(gpu->notes, "2.5GT/s (downgraded)"));
  EXPECT_TRUE(has_note(gpu->notes, "subsystem: eVga.com. Corp. Device 3987"));
}

TEST(Lspci, VmmNnDkHybridLaptop) {
  auto r = parse_lspci(read_fixture("handmade/lspci-vmm-nn-D-k-hybrid-laptop.txt"));
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 3u);
  const auto* igpu = by_bus(r, "0000:00:02.0");
  ASSERT_TRUE(igpu);
  EXPECT_EQ(igpu->f.vendor, "intel");
  EXPECT_EQ(igpu->f.pci_vendor_id, 0x8086u);
  EXPECT_EQ(igpu->f.pci_device_id, 0x9a60u);
  EXPECT_EQ(igpu->f.model, "TigerLake-H GT1 [UHD Graphics]");
  EXPECT_EQ(igpu->f.kernel_driver, "i915");

  const auto* dgpu = by_bus(r, "0000:01:00.0");
  ASSERT_TRUE(dgpu);
  EXPECT_EQ(dgpu->f.vendor, "nvidia");
  EXPECT_EQ(dgpu->f.pci_device_id, 0x25a0u);
  EXPECT_EQ(dgpu->f.model, "GA107M [GeForce RTX 3050 Ti Mobile]");
  EXPECT_EQ(dgpu->f.kernel_driver, "nvidia");
  EXPECT_EQ(dgpu->f.numa_node, 0);
  EXPECT_TRUE(has_note(dgpu->notes, "subsystem: Lenovo [17aa] Device [3a2f]"));

  const auto* unnamed = by_bus(r, "0000:05:00.0");
  ASSERT_TRUE(unnamed);
  EXPECT_EQ(unnamed->f.vendor, "nvidia");
  EXPECT_EQ(unnamed->f.pci_device_id, 0x2684u);
  EXPECT_FALSE(unnamed->f.model) << "'Device [2684]' is not a name";
  EXPECT_FALSE(unnamed->f.kernel_driver);
  EXPECT_TRUE(
      has_note(unnamed->notes, "no kernel driver bound; available modules: nouveau, nvidia"));
  EXPECT_EQ(unnamed->display_name(), "PCI 10de:2684");
}

TEST(Lspci, MmNnVirtualAdapters) {
  auto r = parse_lspci(read_fixture("handmade/lspci-mm-nn-vm-virtual-adapters.txt"));
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 4u);
  struct Want {
    const char* bus;
    uint32_t ven, dev;
    const char* reason_has;
  };
  for (const Want& w :
       {Want{"0000:00:01.0", 0x1234, 0x1111, "QEMU/Bochs"},
        Want{"0000:00:02.0", 0x1af4, 0x1050, "virtio"}, Want{"0000:00:03.0", 0x1b36, 0x0100, "QXL"},
        Want{"0000:00:04.0", 0x1013, 0x00b8, "Cirrus"}}) {
    const auto* d = by_bus(r, w.bus);
    ASSERT_TRUE(d) << w.bus;
    EXPECT_EQ(d->f.pci_vendor_id, w.ven) << w.bus;
    EXPECT_EQ(d->f.pci_device_id, w.dev) << w.bus;
    EXPECT_EQ(d->f.vendor, "unknown") << w.bus;
    ASSERT_TRUE(d->software_reason) << w.bus;
    EXPECT_TRUE(contains(*d->software_reason, w.reason_has)) << *d->software_reason;
  }
  EXPECT_FALSE(by_bus(r, "0000:00:01.0")->f.model);
  EXPECT_EQ(by_bus(r, "0000:00:02.0")->f.model, "Virtio 1.0 GPU");
  EXPECT_EQ(by_bus(r, "0000:00:04.0")->f.model, "GD 5446");
}

// ---- small inline shapes of the remaining forms -------------------------------------------

TEST(Lspci, PlainAndNnSameDevice) {
  auto plain = parse_lspci(
      "00:1f.3 Audio device: Intel Corporation Comet Lake PCH cAVS\n"
      "01:00.0 VGA compatible controller: NVIDIA Corporation GA102 [GeForce RTX 3090] (rev a1)\n"
      "01:00.1 Audio device: NVIDIA Corporation GA102 High Definition Audio Controller (rev a1)\n");
  auto nn = parse_lspci(
      "00:1f.3 Audio device [0403]: Intel Corporation Comet Lake PCH cAVS [8086:06c8]\n"
      "01:00.0 VGA compatible controller [0300]: NVIDIA Corporation GA102 [GeForce RTX 3090] "
      "[10de:2204] (rev a1)\n"
      "01:00.1 Audio device [0403]: NVIDIA Corporation GA102 High Definition Audio Controller "
      "[10de:1aef] (rev a1)\n");
  for (const auto* r : {&plain, &nn}) {
    ASSERT_TRUE(r->recognized);
    ASSERT_EQ(r->devices.size(), 1u);
    EXPECT_EQ(r->devices[0].f.bus_id, "0000:01:00.0");
    EXPECT_EQ(r->devices[0].f.vendor, "nvidia");
    EXPECT_EQ(r->devices[0].f.model, "GA102 [GeForce RTX 3090]");
  }
  EXPECT_FALSE(plain.devices[0].f.pci_device_id);
  EXPECT_EQ(nn.devices[0].f.pci_vendor_id, 0x10deu);
  EXPECT_EQ(nn.devices[0].f.pci_device_id, 0x2204u);
}

TEST(Lspci, NumericOnlyAndUnknownVendor) {
  auto r = parse_lspci(
      "00:00.0 0600: 8086:29c0\n"
      "00:01.0 0300: 1234:1111 (rev 02)\n"
      "00:02.0 VGA compatible controller: Device 1234:1111 (rev 02)\n"
      "0000:03:00.0 VGA compatible controller [0300]: Device [1234:1111] (rev 02)\n"
      "04:00.0 3D controller: NVIDIA Corporation Device 2330 (rev a1)\n"
      "05:00.0 Display controller [0380]: NVIDIA Corporation Device [10de:2330] (rev a1)\n");
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 5u);
  for (int i = 0; i < 3; ++i) {
    const auto& d = r.devices[i];
    EXPECT_EQ(d.f.pci_vendor_id, 0x1234u);
    EXPECT_EQ(d.f.pci_device_id, 0x1111u);
    EXPECT_FALSE(d.f.model);
    ASSERT_TRUE(d.software_reason);
  }
  EXPECT_EQ(r.devices[3].f.vendor, "nvidia");
  EXPECT_EQ(r.devices[3].f.pci_device_id, 0x2330u);
  EXPECT_FALSE(r.devices[3].f.model);
  EXPECT_EQ(r.devices[4].f.pci_device_id, 0x2330u);
  EXPECT_FALSE(r.devices[4].f.model);
}

TEST(Lspci, BmcAndHypervisorAdaptersByName) {
  auto r = parse_lspci(
      "03:00.0 VGA compatible controller: ASPEED Technology, Inc. ASPEED Graphics Family (rev 52) "
      "(prog-if 00 [VGA controller])\n"
      "\tSubsystem: ASPEED Technology, Inc. ASPEED Graphics Family\n"
      "\tFlags: medium devsel, IRQ 16, NUMA node 0\n"
      "\tKernel driver in use: ast\n"
      "04:00.0 VGA compatible controller: Matrox Electronics Systems Ltd. Integrated Matrox "
      "G200eW3 Graphics Controller (rev 04)\n"
      "00:0f.0 VGA compatible controller: VMware SVGA II Adapter\n"
      "00:02.0 VGA compatible controller: InnoTek Systemberatung GmbH VirtualBox Graphics Adapter\n"
      "00:08.0 VGA compatible controller: Microsoft Corporation Hyper-V virtual VGA\n"
      "00:09.0 VGA compatible controller: Red Hat, Inc. Virtio 1.0 GPU (rev 01)\n");
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 6u);
  const auto* ast = by_bus(r, "0000:03:00.0");
  ASSERT_TRUE(ast);
  EXPECT_EQ(ast->f.model, "ASPEED Graphics Family");
  EXPECT_EQ(ast->f.numa_node, 0);
  EXPECT_EQ(ast->f.kernel_driver, "ast");
  EXPECT_FALSE(ast->f.pci_vendor_id) << "the id is not printed";
  EXPECT_TRUE(contains(ast->software_reason.value_or(""), "BMC"));
  EXPECT_EQ(by_bus(r, "0000:04:00.0")->f.model, "Integrated Matrox G200eW3 Graphics Controller");
  EXPECT_TRUE(contains(by_bus(r, "0000:04:00.0")->software_reason.value_or(""), "Matrox"));
  EXPECT_EQ(by_bus(r, "0000:00:0f.0")->f.model, "SVGA II Adapter");
  EXPECT_TRUE(contains(by_bus(r, "0000:00:0f.0")->software_reason.value_or(""), "VMware"));
  EXPECT_TRUE(contains(by_bus(r, "0000:00:02.0")->software_reason.value_or(""), "VirtualBox"));
  EXPECT_TRUE(contains(by_bus(r, "0000:00:08.0")->software_reason.value_or(""), "Hyper-V"));
  EXPECT_TRUE(contains(by_bus(r, "0000:00:09.0")->software_reason.value_or(""), "Red Hat"));
  for (const auto& d : r.devices) EXPECT_EQ(d.f.vendor, "unknown") << d.display_name();
}

TEST(Lspci, UnknownVendorKeepsWholeName) {
  auto r = parse_lspci(
      "0000:65:00.0 VGA compatible controller: Moore Threads Technology Co.,Ltd MTT S80 (rev 01)\n"
      "0000:66:00.0 VGA compatible controller: Acme Graphics Works Frobnicator 9000\n");
  ASSERT_EQ(r.devices.size(), 2u);
  EXPECT_EQ(r.devices[0].f.model, "MTT S80");
  EXPECT_EQ(r.devices[0].f.vendor, "unknown");
  EXPECT_EQ(r.devices[1].f.model, "Acme Graphics Works Frobnicator 9000");
  EXPECT_EQ(r.devices[1].f.vendor, "unknown");
  EXPECT_FALSE(r.devices[1].software_reason);
}

TEST(Lspci, ClassByNumberOnly) {
  // A subclass pci.ids lacks is printed as "<base class name> [xxxx]"; unknown as "Class xxxx".
  auto r = parse_lspci(
      "01:00.0 Display controller [0380]: Advanced Micro Devices, Inc. [AMD/ATI] Device "
      "[1002:74a1]\n"
      "02:00.0 Class 0381: Intel Corporation Device 56c0\n"
      "03:00.0 Serial bus controller [0c80]: Intel Corporation Cannon Lake PCH SPI Controller\n"
      "04:00.0 Unassigned class [ffff]: Red Hat, Inc. Virtio 1.0 RNG\n");
  ASSERT_EQ(r.devices.size(), 2u);
  EXPECT_EQ(r.devices[0].f.vendor, "amd");
  EXPECT_EQ(r.devices[0].f.pci_device_id, 0x74a1u);
  EXPECT_EQ(r.devices[1].f.vendor, "intel");
  EXPECT_EQ(r.devices[1].f.pci_device_id, 0x56c0u);
}

TEST(Lspci, KernelDriverWithK) {
  auto r = parse_lspci(
      "c1:00.0 VGA compatible controller: Advanced Micro Devices, Inc. [AMD/ATI] Navi 31 [Radeon "
      "RX 7900 XT/7900 XTX/7900M] (rev c8)\n"
      "\tSubsystem: Sapphire Technology Limited Device e471\n"
      "\tKernel driver in use: amdgpu\n"
      "\tKernel modules: amdgpu\n");
  ASSERT_EQ(r.devices.size(), 1u);
  EXPECT_EQ(r.devices[0].f.bus_id, "0000:c1:00.0");
  EXPECT_EQ(r.devices[0].f.model, "Navi 31 [Radeon RX 7900 XT/7900 XTX/7900M]");
  EXPECT_EQ(r.devices[0].f.kernel_driver, "amdgpu");
  EXPECT_FALSE(has_note(r.devices[0].notes, "no kernel driver bound"));
}

TEST(Lspci, RepeatedSlotMergedNotDuplicated) {
  std::string a =
      "01:00.0 VGA compatible controller: NVIDIA Corporation GA102 [GeForce RTX 3090]\n";
  std::string b =
      "01:00.0 VGA compatible controller [0300]: NVIDIA Corporation GA102 [GeForce RTX 3090] "
      "[10de:2204] (rev a1)\n";
  auto r = parse_lspci(a + b);
  ASSERT_EQ(r.devices.size(), 1u);
  EXPECT_EQ(r.devices[0].f.pci_device_id, 0x2204u);
}

TEST(Lspci, CrlfLineEnds) {
  auto r = parse_lspci(
      "01:00.0 VGA compatible controller: NVIDIA Corporation GA102 [GeForce RTX 3090] (rev a1)\r\n"
      "\tKernel driver in use: nvidia\r\n");
  ASSERT_EQ(r.devices.size(), 1u);
  EXPECT_EQ(r.devices[0].f.model, "GA102 [GeForce RTX 3090]");
  EXPECT_EQ(r.devices[0].f.kernel_driver, "nvidia");
}

TEST(Lspci, MachineFormsWithoutNn) {
  auto mm = parse_lspci(
      "00:02.0 \"VGA compatible controller\" \"Intel Corporation\" \"HD Graphics 515\" -r07 -p00 "
      "\"ASUSTeK Computer Inc.\" \"HD Graphics 515\"\n"
      "00:1f.3 \"Audio device\" \"Intel Corporation\" \"Sunrise Point-LP HD Audio\" -r21 -p00 "
      "\"ASUSTeK Computer Inc.\" \"Device 1d4d\"\n");
  ASSERT_TRUE(mm.recognized);
  ASSERT_EQ(mm.devices.size(), 1u);
  EXPECT_EQ(mm.devices[0].f.vendor, "intel");
  EXPECT_EQ(mm.devices[0].f.model, "HD Graphics 515");
  EXPECT_FALSE(mm.devices[0].f.pci_vendor_id);
  EXPECT_TRUE(has_note(mm.devices[0].notes, "subsystem: ASUSTeK Computer Inc. HD Graphics 515"));

  auto mn = parse_lspci("00:02.0 \"0300\" \"8086\" \"1916\" -r07 -p00 \"1043\" \"1d4d\"\n");
  ASSERT_EQ(mn.devices.size(), 1u);
  EXPECT_EQ(mn.devices[0].f.vendor, "intel");
  EXPECT_EQ(mn.devices[0].f.pci_vendor_id, 0x8086u);
  EXPECT_EQ(mn.devices[0].f.pci_device_id, 0x1916u);
  EXPECT_FALSE(mn.devices[0].f.model);

  auto vmm = parse_lspci(
      "Slot:\t01:00.0\n"
      "Class:\tVGA compatible controller\n"
      "Vendor:\tNVIDIA Corporation\n"
      "Device:\tGA102 [GeForce RTX 3090]\n"
      "SVendor:\teVga.com. Corp.\n"
      "SDevice:\tDevice 3987\n"
      "Rev:\ta1\n"
      "NUMANode:\t1\n"
      "\n"
      "Slot:\t01:00.1\n"
      "Class:\tAudio device\n"
      "Vendor:\tNVIDIA Corporation\n"
      "Device:\tGA102 High Definition Audio Controller\n");
  ASSERT_TRUE(vmm.recognized);
  ASSERT_EQ(vmm.devices.size(), 1u);
  EXPECT_EQ(vmm.devices[0].f.bus_id, "0000:01:00.0");
  EXPECT_EQ(vmm.devices[0].f.vendor, "nvidia");
  EXPECT_EQ(vmm.devices[0].f.model, "GA102 [GeForce RTX 3090]");
  EXPECT_EQ(vmm.devices[0].f.numa_node, 1);
  EXPECT_FALSE(vmm.devices[0].f.pci_device_id);
  EXPECT_TRUE(has_note(vmm.devices[0].notes, "subsystem: eVga.com. Corp. Device 3987"));
}

// ---- bad input ----------------------------------------------------------------------------

TEST(Lspci, Empty) {
  for (const char* t : {"", "\n\n  \n"}) {
    auto r = parse_lspci(t);
    EXPECT_FALSE(r.recognized);
    EXPECT_TRUE(r.devices.empty());
    EXPECT_TRUE(has_note(r.notes, "output is empty"));
  }
}

TEST(Lspci, ErrorTexts) {
  auto r = parse_lspci(
      "pcilib: Cannot open /proc/bus/pci\nlspci: Cannot find any working access method.\n");
  EXPECT_FALSE(r.recognized);
  EXPECT_TRUE(r.devices.empty());
  ASSERT_FALSE(r.notes.empty());
  EXPECT_TRUE(has_note(r.notes, "lspci reported: pcilib: Cannot open /proc/bus/pci"));

  auto r2 = parse_lspci("bash: lspci: command not found\n");
  EXPECT_FALSE(r2.recognized);
  EXPECT_TRUE(has_note(r2.notes, "command not found"));
}

TEST(Lspci, OtherToolsTextIsNotLspci) {
  auto r =
      parse_lspci(read_fixture("glxinfo/nvidia-geforce-gtx970-proprietary-glxinfo-peracotta.txt"));
  EXPECT_FALSE(r.recognized);
  EXPECT_TRUE(r.devices.empty());
  EXPECT_TRUE(has_note(r.notes, "not lspci output"));
}

}  // namespace
}  // namespace grey
