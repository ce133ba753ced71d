#include "sources/pci_names.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <thread>
#include <vector>

#include "test_util.h"

namespace grey {
namespace {

using test::TempDir;
using test::write_file;

// A tiny ids file in the pci.ids format, written by the test (not a capture).
const char* const kIds =
    "# hand-written for this test\n"
    "10de  NVIDIA Corporation\n"
    "\t2330  GH100 [H100 SXM5 80GB]\n"
    "\t\t10de 16c1  H100 SXM5 80GB\n"
    "1002  Advanced Micro Devices, Inc. [AMD/ATI]\n"
    "\t744c  Navi 31 [Radeon RX 7900 XT/7900 XTX/7900 GRE/7900M]\n"
    "C 03  Display controller\n"
    "\t00  VGA compatible controller\n";

TEST(PciNamesFile, KnownAndUnknownIds) {
  TempDir tmp;
  std::string ids = tmp / "pci.ids";
  write_file(ids, kIds);
  EXPECT_EQ(pci_device_name_in(ids, 0x10de, 0x2330), "GH100 [H100 SXM5 80GB]");
  EXPECT_EQ(pci_device_name_in(ids, 0x1002, 0x744c),
            "Navi 31 [Radeon RX 7900 XT/7900 XTX/7900 GRE/7900M]");
  EXPECT_EQ(pci_vendor_name_in(ids, 0x10de), "NVIDIA Corporation");
  // Unknown ids: nullopt, never libpci's "Device 2331" placeholder.
  EXPECT_FALSE(pci_device_name_in(ids, 0x10de, 0x2331));
  EXPECT_FALSE(pci_device_name_in(ids, 0x8086, 0x56a5));
  EXPECT_FALSE(pci_vendor_name_in(ids, 0x8086));
}

TEST(PciNamesFile, AbsentOrBrokenFile) {
  TempDir tmp;
  EXPECT_FALSE(pci_device_name_in(tmp / "missing.ids", 0x10de, 0x2330));
  EXPECT_FALSE(pci_vendor_name_in(tmp / "missing.ids", 0x10de));
  EXPECT_FALSE(pci_device_name_in(tmp.path(), 0x10de, 0x2330));  // a directory
  // Malformed: libpci reports a fatal parse error, which must not end the process.
  std::string bad = tmp / "bad.ids";
  write_file(bad, "10de  NVIDIA\n\t\t\t\tnonsense\n\tzzzz  bad id\n");
  EXPECT_FALSE(pci_device_name_in(bad, 0x10de, 0x2330));
  std::string junk = tmp / "junk.ids";
  write_file(junk, std::string("\x01\x02\xff\xfe\0\0garbage\n\t\t\t", 17));
  EXPECT_FALSE(pci_device_name_in(junk, 0x10de, 0x2330));
  // And lookups keep working afterwards.
  std::string ids = tmp / "pci.ids";
  write_file(ids, kIds);
  EXPECT_EQ(pci_vendor_name_in(ids, 0x10de), "NVIDIA Corporation");
}

TEST(PciNames, PlaceholderDetection) {
  EXPECT_TRUE(is_pci_placeholder_name("Device 744c"));
  EXPECT_TRUE(is_pci_placeholder_name("Vendor 1002"));
  EXPECT_TRUE(is_pci_placeholder_name(""));
  EXPECT_TRUE(is_pci_placeholder_name("<pci_lookup_name: buffer too small>"));
  EXPECT_FALSE(is_pci_placeholder_name("Navi 31 [Radeon RX 7900 XT/7900 XTX]"));
  EXPECT_FALSE(is_pci_placeholder_name("Device Manager Controller"));
}

// The system database: present on the dev VM (Debian pci.ids). Where it is absent every
// lookup must be nullopt.
TEST(PciNames, SystemDatabase) {
  bool have_db = std::filesystem::exists("/usr/share/misc/pci.ids") ||
                 std::filesystem::exists("/usr/share/hwdata/pci.ids") ||
                 std::filesystem::exists("/usr/share/misc/pci.ids.gz");
  auto nv = pci_vendor_name(0x10de);
  auto h100 = pci_device_name(0x10de, 0x2330);
  if (!have_db) {
    EXPECT_FALSE(nv);
    EXPECT_FALSE(h100);
    GTEST_SKIP() << "no pci.ids on this machine";
  }
  ASSERT_TRUE(nv);
  EXPECT_NE(nv->find("NVIDIA"), std::string::npos);
  ASSERT_TRUE(h100);
  EXPECT_NE(h100->find("H100"), std::string::npos);
  auto vega = pci_device_name(0x1002, 0x687f);
  ASSERT_TRUE(vega);
  EXPECT_NE(vega->find("Vega"), std::string::npos);
  EXPECT_FALSE(pci_device_name(0x10de, 0xfff0));  // not assigned
  EXPECT_FALSE(pci_device_name(0x0000, 0x0000));
}

TEST(PciNames, ConcurrentLookups) {
  std::vector<std::thread> threads;
  std::vector<std::optional<std::string>> results(8);
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&results, i] {
      for (int k = 0; k < 50; ++k) results[i] = pci_device_name(0x8086, 0x56a5);
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& r : results) EXPECT_EQ(r, results[0]);
}

}  // namespace
}  // namespace grey
