// parse_nvidia_smi_list (`nvidia-smi -L`) on the real H200 MIG capture (SOURCES.md), the
// error outputs of nvidia-smi, and damaged input.
#include <gtest/gtest.h>

#include <string>

#include "sources/parsers.h"
#include "test_util.h"

namespace grey {
namespace {

using test::read_fixture;

const char* const kH200 = "nvidia-smi-L/nvidia-h200-mig-5-devices-590.48.01-nge.txt";

TEST(NvidiaSmiList, H200MigDevicesArePartitionsOfOneGpu) {
  auto r = parse_nvidia_smi_list(read_fixture(kH200));
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u);
  const auto& f = r.devices[0].f;
  EXPECT_EQ(f.model, "NVIDIA H200");
  EXPECT_EQ(f.uuid, "GPU-00000000-0000-0000-0000-000000000000");
  EXPECT_EQ(f.tool_index, 0);
  EXPECT_EQ(f.vendor, "nvidia");
  ASSERT_EQ(f.partitions.size(), 5u);
  const char* prof[] = {"1c.3g.71gb", "2c.3g.71gb", "2g.35gb", "1g.18gb", "1g.18gb"};
  for (size_t i = 0; i < 5; ++i) {
    SCOPED_TRACE(i);
    const auto& p = f.partitions[i];
    EXPECT_EQ(p.kind, "mig");
    EXPECT_EQ(p.profile, prof[i]);
    EXPECT_EQ(p.dev_index, static_cast<int>(i));
    EXPECT_EQ(p.uuid, "MIG-0000000" + std::to_string(i) + "-0000-0000-0000-00000000000" +
                          std::to_string(i));
    EXPECT_FALSE(p.gi_id);
    EXPECT_FALSE(p.memory_total_mb);
  }
}

TEST(NvidiaSmiList, PlainGpusWithoutMig) {
  auto r =
      parse_nvidia_smi_list("GPU 0: NVIDIA A40 (UUID: GPU-1)\nGPU 1: NVIDIA A40 (UUID: GPU-2)\n");
  ASSERT_EQ(r.devices.size(), 2u);
  EXPECT_EQ(r.devices[1].f.uuid, "GPU-2");
  EXPECT_EQ(r.devices[1].f.tool_index, 1);
  EXPECT_TRUE(r.devices[0].f.partitions.empty());
}

TEST(NvidiaSmiList, ErrorOutputIsQuotedNotRecognized) {
  auto r = parse_nvidia_smi_list(
      read_fixture("nvidia-smi-table/"
                   "error-couldnt-communicate-with-driver-gcp-compute-gpu-installation-pr18.txt"));
  EXPECT_FALSE(r.recognized);
  EXPECT_TRUE(r.devices.empty());
  ASSERT_FALSE(r.notes.empty());
  EXPECT_NE(r.notes[0].find("couldn't communicate"), std::string::npos) << r.notes[0];
}

TEST(NvidiaSmiList, EmptyAndJunk) {
  EXPECT_FALSE(parse_nvidia_smi_list("").recognized);
  EXPECT_FALSE(parse_nvidia_smi_list("hello\nworld\n").recognized);
  auto r = parse_nvidia_smi_list("  MIG 1g.10gb Device 0: (UUID: MIG-x)\n");
  EXPECT_TRUE(r.devices.empty());
  EXPECT_FALSE(r.notes.empty());
}

TEST(NvidiaSmiList, TruncatedLinesNeverCrash) {
  std::string t = read_fixture(kH200);
  for (size_t n = 0; n <= t.size(); ++n) {
    auto r = parse_nvidia_smi_list(std::string_view(t).substr(0, n));
    EXPECT_LE(r.devices.size(), 1u);
    if (!r.devices.empty()) {
      EXPECT_LE(r.devices[0].f.partitions.size(), 5u);
    }
  }
}

}  // namespace
}  // namespace grey
