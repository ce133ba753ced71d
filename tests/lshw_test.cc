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

const char* const kOctology = "lshw/amd-radeon-hd5770-full-tree-athlon64-nforce4-lshw-octology.txt";
const char* const kLocalText = "local/lshw-C-display-debian12-vm-no-gpu.txt";
const char* const kLocalJson = "local/lshw-json-C-display-debian12-vm-no-gpu.json";
const char* const kLocalFullJson = "local/lshw-json-full-debian12-vm-no-gpu.json";
const char* const kLocalFullText = "local/lshw-full-text-debian12-vm-no-gpu.txt";
const char* const kTwoNodes = "handmade/lshw-json-C-display-two-nodes.json";
const char* const kOldNoBrackets = "handmade/lshw-json-C-display-old-no-brackets.json";
const char* const kBroken = "handmade/lshw-json-b0219-broken-children.json";
const char* const kNumericText = "handmade/lshw-C-display-numeric-two.txt";

TEST(Lshw, OctologyFullTreeOneDisplayNode) {
  ParseResult r = parse_lshw(test::read_fixture(kOctology));
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u);  // the CK804 chipset nodes are not displays
  const Observation& o = r.devices[0];
  EXPECT_EQ(o.f.model, "Juniper XT [Radeon HD 5770]");
  EXPECT_EQ(o.f.vendor, "amd");
  EXPECT_EQ(o.f.bus_id, "0000:05:00.0");
  EXPECT_EQ(o.f.kernel_driver, "radeon");
  EXPECT_FALSE(o.f.vram_total_mb);     // the 256 MiB BAR is not VRAM
  EXPECT_FALSE(o.f.memory_bus_width);  // "width: 64 bits" is the BAR address width
  EXPECT_FALSE(o.f.pci_vendor_id);
  EXPECT_FALSE(o.software_reason);
  EXPECT_TRUE(any_note_contains(o.notes, "largest memory BAR 256 MiB"));
  EXPECT_TRUE(any_note_contains(o.notes, "VGA compatible controller"));
}

TEST(Lshw, LocalCapturesOfThisVm) {
  // `lshw -C display` on a machine without a display device prints nothing.
  ParseResult t = parse_lshw(test::read_fixture(kLocalText));
  EXPECT_FALSE(t.recognized);
  EXPECT_TRUE(t.devices.empty());
  EXPECT_TRUE(any_note_contains(t.notes, "empty"));

  ParseResult j = parse_lshw(test::read_fixture(kLocalJson));  // "[\n\n]"
  EXPECT_TRUE(j.recognized);
  EXPECT_TRUE(j.devices.empty());
  EXPECT_TRUE(any_note_contains(j.notes, "no node"));

  ParseResult full = parse_lshw(test::read_fixture(kLocalFullJson));
  EXPECT_TRUE(full.recognized);
  EXPECT_TRUE(full.devices.empty());
  EXPECT_TRUE(any_note_contains(full.notes, "no display node"));
  EXPECT_FALSE(any_note_contains(full.notes, "malformed"));

  ParseResult ft = parse_lshw(test::read_fixture(kLocalFullText));
  EXPECT_TRUE(ft.recognized);
  EXPECT_TRUE(ft.devices.empty());
}

TEST(Lshw, JsonArrayTwoNodesWithNumericIds) {
  ParseResult r = parse_lshw(test::read_fixture(kTwoNodes));
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 2u);
  const auto& cirrus = r.devices[0];
  EXPECT_EQ(cirrus.f.model, "GD 5446");
  EXPECT_EQ(cirrus.f.vendor, "unknown");
  EXPECT_EQ(cirrus.f.bus_id, "0000:00:02.0");
  EXPECT_FALSE(cirrus.f.kernel_driver);
  EXPECT_TRUE(any_note_contains(cirrus.notes, "UNCLAIMED"));
  EXPECT_FALSE(cirrus.software_reason);  // virtual adapters are classified by the detector

  const auto& nv = r.devices[1];
  EXPECT_EQ(nv.f.model, "TU102 [GeForce RTX 2080 Ti]");
  EXPECT_EQ(nv.f.pci_vendor_id, 0x10deu);
  EXPECT_EQ(nv.f.pci_device_id, 0x1e07u);
  EXPECT_EQ(nv.f.vendor, "nvidia");
  EXPECT_EQ(nv.f.bus_id, "0000:00:06.0");
  EXPECT_EQ(nv.f.kernel_driver, "nvidia");
  EXPECT_FALSE(any_note_contains(nv.notes, "UNCLAIMED"));
}

TEST(Lshw, OldJsonObjectsWithoutBrackets) {
  ParseResult r = parse_lshw(test::read_fixture(kOldNoBrackets));
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 2u);
  EXPECT_EQ(r.devices[0].f.vendor, "amd");
  EXPECT_EQ(r.devices[0].f.kernel_driver, "amdgpu");
  EXPECT_EQ(r.devices[0].f.bus_id, "0000:01:00.0");
  EXPECT_EQ(r.devices[0].f.model, "Ellesmere [Radeon RX 470/480/570/570X/580/580X/590]");
  EXPECT_EQ(r.devices[1].f.vendor, "intel");
  EXPECT_EQ(r.devices[1].f.kernel_driver, "i915");
  EXPECT_EQ(r.devices[1].f.bus_id, "0000:00:02.0");
}

TEST(Lshw, BrokenB0219JsonTree) {
  ParseResult r = parse_lshw(test::read_fixture(kBroken));
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u);
  EXPECT_EQ(r.devices[0].f.model, "Iris Graphics 540");
  EXPECT_EQ(r.devices[0].f.vendor, "intel");
  EXPECT_EQ(r.devices[0].f.kernel_driver, "i915");
  EXPECT_EQ(r.devices[0].f.bus_id, "0000:00:02.0");
}

TEST(Lshw, TextNumericTwoNodes) {
  ParseResult r = parse_lshw(test::read_fixture(kNumericText));
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 2u);
  const auto& aspeed = r.devices[0];
  EXPECT_EQ(aspeed.f.model, "ASPEED Graphics Family");
  EXPECT_EQ(aspeed.f.pci_vendor_id, 0x1a03u);
  EXPECT_EQ(aspeed.f.pci_device_id, 0x2000u);
  EXPECT_EQ(aspeed.f.vendor, "unknown");
  EXPECT_EQ(aspeed.f.bus_id, "0000:03:00.0");
  EXPECT_FALSE(aspeed.f.kernel_driver);
  EXPECT_TRUE(any_note_contains(aspeed.notes, "UNCLAIMED"));
  const auto& a100 = r.devices[1];
  EXPECT_EQ(a100.f.model, "GA100 [A100 PCIe 40GB]");
  EXPECT_EQ(a100.f.vendor, "nvidia");
  EXPECT_EQ(a100.f.bus_id, "0000:41:00.0");
  EXPECT_EQ(a100.f.kernel_driver, "nvidia");
  EXPECT_FALSE(a100.f.vram_total_mb);
  EXPECT_TRUE(any_note_contains(a100.notes, "32768 MiB"));
}

TEST(Lshw, SoftwareRendererAndWarning) {
  const char* t =
      "WARNING: you should run this program as super-user.\n"
      "  *-display\n"
      "       description: Display controller\n"
      "       product: llvmpipe (LLVM 15.0.6, 256 bits)\n"
      "       vendor: Mesa\n";
  ParseResult r = parse_lshw(t);
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u);
  ASSERT_TRUE(r.devices[0].software_reason);
  EXPECT_NE(r.devices[0].software_reason->find("llvmpipe"), std::string::npos);
  EXPECT_TRUE(any_note_contains(r.notes, "super-user"));

  std::string j = std::string("WARNING: you should run this program as super-user.\n") +
                  test::read_fixture(kTwoNodes);
  ParseResult rj = parse_lshw(j);
  ASSERT_TRUE(rj.recognized);
  EXPECT_EQ(rj.devices.size(), 2u);
}

TEST(Lshw, JsonEscapesAndDisabled) {
  const char* t = R"([{"id":"display","class":"display","claimed":true,"disabled":true,
    "product":"Navi 31 \"XTX\" \u00e9","vendor":"Advanced Micro Devices, Inc. [AMD/ATI]",
    "businfo":"pci@0000:0c:00.0","configuration":{"driver":"amdgpu"}},
    {"id":"multimedia","class":"multimedia","businfo":"pci@0000:0c:00.1"}])";
  ParseResult r = parse_lshw(t);
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u);
  EXPECT_EQ(r.devices[0].f.model, "Navi 31 \"XTX\" \xc3\xa9");
  EXPECT_EQ(r.devices[0].f.vendor, "amd");
  EXPECT_TRUE(any_note_contains(r.devices[0].notes, "DISABLED"));
}

TEST(Lshw, EmptyGarbageForeign) {
  ParseResult e = parse_lshw("");
  EXPECT_FALSE(e.recognized);
  ParseResult g = parse_lshw(std::string("\x00\x01\xfe\xff random bytes\n", 19));
  EXPECT_FALSE(g.recognized);
  EXPECT_TRUE(g.devices.empty());
  ParseResult f = parse_lshw(R"({"device_list":[{"device_id":0}]})");
  EXPECT_FALSE(f.recognized);
  ParseResult s = parse_lshw("lshw: command not found\n");
  EXPECT_FALSE(s.recognized);
  EXPECT_FALSE(s.notes.empty());
}

TEST(Lshw, HugeDeviceCountsAreCapped) {
  std::string t;
  for (int i = 0; i < 3000; ++i) t += "  *-display:" + std::to_string(i) + "\n       product: X\n";
  ParseResult r = parse_lshw(t);
  ASSERT_TRUE(r.recognized);
  EXPECT_EQ(r.devices.size(), 1024u);
  EXPECT_TRUE(any_note_contains(r.notes, "more than 1024"));
  std::string j = "[";
  for (int i = 0; i < 3000; ++i) j += R"({"id":"display","class":"display","product":"X"},)";
  ParseResult rj = parse_lshw(j + "]");
  ASSERT_TRUE(rj.recognized);
  EXPECT_EQ(rj.devices.size(), 1024u);
  EXPECT_TRUE(any_note_contains(rj.notes, "more than 1024"));
}

TEST(Lshw, LargeAndDeepInputIsBounded) {
  ParseResult a = parse_lshw(std::string(1 << 20, '{'));
  EXPECT_TRUE(a.devices.empty());
  ParseResult b = parse_lshw(std::string(1 << 20, '['));
  EXPECT_TRUE(b.devices.empty());
  std::string many = "[";
  for (int i = 0; i < 300000; ++i) many += "{},";
  ParseResult c = parse_lshw(many);
  EXPECT_TRUE(c.devices.empty());
  EXPECT_TRUE(any_note_contains(c.notes, "too many nodes") || !c.recognized);
}

}  // namespace
}  // namespace grey
