#include "sources/amdgpu_ids.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace grey {
namespace {

// A copy of Debian's libdrm-common 2.4.114-1 /usr/share/libdrm/amdgpu.ids (SOURCES.md), so
// that the test does not depend on the machine's libdrm version.
const char* kTable = "amdgpu.ids/libdrm-common-2.4.114-1-debian.ids";

TEST(AmdgpuIds, ParsesTheRealTable) {
  AmdgpuIds ids = parse_amdgpu_ids(test::read_fixture(kTable));
  EXPECT_EQ(ids.version, "1.0.0");
  EXPECT_EQ(ids.bad_lines, 0);
  EXPECT_GT(ids.names.size(), 400u);
  // Device + revision -> the board name (pci.ids only has "Navi 22 [Radeon RX 6700/...]").
  EXPECT_EQ(amdgpu_ids_lookup(ids, 0x73df, 0xc1), "AMD Radeon RX 6700 XT");
  EXPECT_EQ(amdgpu_ids_lookup(ids, 0x73df, 0xc0), "AMD Radeon RX 6750 XT");
  EXPECT_EQ(amdgpu_ids_lookup(ids, 0x687f, 0xc3), "AMD Radeon RX Vega");
  EXPECT_EQ(amdgpu_ids_lookup(ids, 0x6617, 0x87), "AMD Radeon R7 200 Series");
  // Revision unknown: only a name every listed revision shares.
  EXPECT_EQ(amdgpu_ids_lookup(ids, 0x687f, std::nullopt), "AMD Radeon RX Vega");
  EXPECT_FALSE(amdgpu_ids_lookup(ids, 0x73df, std::nullopt));
  // Newer than this table (RX 7900 XTX, RX 9070 XT): not listed; no guess.
  EXPECT_FALSE(amdgpu_ids_lookup(ids, 0x744c, std::nullopt));
  EXPECT_FALSE(amdgpu_ids_lookup(ids, 0x7550, 0xc0));
  EXPECT_FALSE(amdgpu_ids_lookup(ids, 0x73df, 0x42));  // listed device, unlisted revision
}

TEST(AmdgpuIds, FileVariantAndMissingFile) {
  EXPECT_EQ(amdgpu_marketing_name_in(test::fixture_path(kTable), 0x73df, 0xc1),
            "AMD Radeon RX 6700 XT");
  EXPECT_FALSE(amdgpu_marketing_name_in("/nonexistent/amdgpu.ids", 0x73df, 0xc1));
}

TEST(AmdgpuIds, ToleratesDamage) {
  AmdgpuIds ids = parse_amdgpu_ids(
      "# comment\r\n1.0.0\r\n73DF,\tC1,\tAMD Radeon RX 6700 XT\r\n"
      "7550, C0, AMD Radeon RX 9070 XT\n"  // spaces instead of tabs
      "garbage line\nZZZZ,\t00,\tBad id\n744C,\t00,\t\n1234,\t100,\tRevision too wide\n"
      "15BF,\t0x0D,\tAMD Radeon 780M\n\0\0\0junk after NUL");
  EXPECT_EQ(ids.version, "1.0.0");
  EXPECT_EQ(ids.bad_lines, 4);
  EXPECT_EQ(amdgpu_ids_lookup(ids, 0x73df, 0xc1), "AMD Radeon RX 6700 XT");
  EXPECT_EQ(amdgpu_ids_lookup(ids, 0x7550, 0xc0), "AMD Radeon RX 9070 XT");
  EXPECT_EQ(amdgpu_ids_lookup(ids, 0x15bf, 0x0d), "AMD Radeon 780M");
  EXPECT_FALSE(amdgpu_ids_lookup(ids, 0x744c, 0x00));
  EXPECT_TRUE(parse_amdgpu_ids("").names.empty());
}

}  // namespace
}  // namespace grey
