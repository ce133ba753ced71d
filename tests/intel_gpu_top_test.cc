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

const char* const kFrigate =
    "intel_gpu_top/intel-igpu-J-two-samples-whitespace-stripped-no-brackets-frigate.json";
const char* const kBracketed = "handmade/intel_gpu_top-J-bracketed-power-truncated.json";

TEST(IntelGpuTop, FrigateTwoSamplesNoBracketsUsesLastSample) {
  ParseResult r = parse_intel_gpu_top_json(test::read_fixture(kFrigate));
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u);
  const Observation& o = r.devices[0];
  EXPECT_EQ(o.f.vendor, "intel");
  // Sample 2 (the last) has every engine at 0 %; sample 1 had Video/1 at 6.19 %.
  EXPECT_EQ(o.f.utilization_pct, 0);
  // No device name, bus id, VRAM, driver or clock in -J output.
  EXPECT_FALSE(o.f.model);
  EXPECT_FALSE(o.f.bus_id);
  EXPECT_FALSE(o.f.vram_total_mb);
  EXPECT_FALSE(o.f.kernel_driver);
  EXPECT_FALSE(o.f.clock_mhz);
  EXPECT_FALSE(o.f.power_draw_w);  // no "power" group in this capture
  // frequency.actual is 0 -> no frequency note.
  EXPECT_FALSE(any_note_contains(o.notes, "MHz"));
  EXPECT_TRUE(any_note_contains(r.notes, "2 complete sample(s)"));
}

TEST(IntelGpuTop, FrigateFirstSampleAloneGivesVideoBusy) {
  std::string t = test::read_fixture(kFrigate);
  // Cut right after the first sample: the second one is truncated.
  size_t cut = t.find("},{\"period\"");
  ASSERT_NE(cut, std::string::npos);
  ParseResult r = parse_intel_gpu_top_json(t.substr(0, cut + 1));
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u);
  EXPECT_EQ(r.devices[0].f.utilization_pct, 6);  // Video/1 6.194385 rounded
  EXPECT_TRUE(any_note_contains(r.devices[0].notes, "Video/1"));

  // Same, but with the second sample half there: the truncated one is ignored.
  ParseResult r2 = parse_intel_gpu_top_json(t.substr(0, cut + 200));
  ASSERT_TRUE(r2.recognized);
  ASSERT_EQ(r2.devices.size(), 1u);
  EXPECT_EQ(r2.devices[0].f.utilization_pct, 6);
  EXPECT_TRUE(any_note_contains(r2.notes, "truncated"));
}

TEST(IntelGpuTop, WrappedInBracketsAndNewlineSeparated) {
  std::string t = test::read_fixture(kFrigate);
  ParseResult a = parse_intel_gpu_top_json("[" + t + "]");
  ASSERT_TRUE(a.recognized);
  ASSERT_EQ(a.devices.size(), 1u);
  EXPECT_EQ(a.devices[0].f.utilization_pct, 0);

  // Objects separated only by a newline (no comma).
  std::string nl = t;
  size_t cut = nl.find("},{\"period\"");
  nl.replace(cut, 3, "}\n{");
  ParseResult b = parse_intel_gpu_top_json(nl);
  ASSERT_TRUE(b.recognized);
  EXPECT_TRUE(any_note_contains(b.notes, "2 complete sample(s)"));
}

TEST(IntelGpuTop, BracketedWithPowerAndTruncatedLastSample) {
  ParseResult r = parse_intel_gpu_top_json(test::read_fixture(kBracketed));
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u);
  const Observation& o = r.devices[0];
  EXPECT_EQ(o.f.vendor, "intel");
  EXPECT_EQ(o.f.utilization_pct, 88);  // Render/3D 87.612388 in the 2nd (last complete) sample
  ASSERT_TRUE(o.f.power_draw_w);
  EXPECT_DOUBLE_EQ(*o.f.power_draw_w, 7.650233);
  EXPECT_FALSE(o.f.clock_mhz);  // actual frequency is the current clock, never clock_mhz
  EXPECT_TRUE(any_note_contains(o.notes, "1299 MHz"));
  EXPECT_TRUE(any_note_contains(o.notes, "Render/3D"));
  EXPECT_TRUE(any_note_contains(r.notes, "2 complete sample(s)"));
  EXPECT_TRUE(any_note_contains(r.notes, "truncated"));
}

TEST(IntelGpuTop, MultiGtFrequencyAndOldPowerValue) {
  const char* t = R"({"period":{"duration":1000.0,"unit":"ms"},
    "frequency-gt0":{"requested":900.0,"actual":850.4,"unit":"MHz"},
    "frequency-gt1":{"requested":900.0,"actual":1200.0,"unit":"MHz"},
    "power":{"value":2.5,"unit":"W"},
    "engines":{"Compute/0":{"busy":101.0,"unit":"%"},"Render/3D/0":{"busy":"12.5","unit":"%"}}})";
  ParseResult r = parse_intel_gpu_top_json(t);
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u);
  EXPECT_EQ(r.devices[0].f.utilization_pct, 100);  // clamped
  EXPECT_DOUBLE_EQ(r.devices[0].f.power_draw_w.value_or(-1), 2.5);
  EXPECT_TRUE(any_note_contains(r.devices[0].notes, "1200 MHz"));
  EXPECT_FALSE(r.devices[0].f.clock_mhz);
}

TEST(IntelGpuTop, ErrorTexts) {
  ParseResult a = parse_intel_gpu_top_json(
      "No device filter specified and no discrete/integrated i915 devices found\n");
  EXPECT_FALSE(a.recognized);
  EXPECT_TRUE(a.devices.empty());
  EXPECT_TRUE(any_note_contains(a.notes, "intel_gpu_top reported: No device filter specified"));

  ParseResult b = parse_intel_gpu_top_json(
      "Failed to initialize PMU! (Permission denied)\n\nWhen running as a normal user "
      "CAP_PERFMON is required to access performance\nmonitoring.\n");
  EXPECT_FALSE(b.recognized);
  EXPECT_TRUE(
      any_note_contains(b.notes, "intel_gpu_top reported: Failed to initialize PMU! (Permission"));

  ParseResult c = parse_intel_gpu_top_json(
      "Failed to detect engines! (No such file or directory)\n(Kernel 4.16 or newer is required "
      "for i915 PMU support.)\n");
  EXPECT_FALSE(c.recognized);
  EXPECT_TRUE(any_note_contains(c.notes, "Failed to detect engines"));
}

TEST(IntelGpuTop, EmptyGarbageAndForeignJson) {
  ParseResult e = parse_intel_gpu_top_json("");
  EXPECT_FALSE(e.recognized);
  EXPECT_TRUE(any_note_contains(e.notes, "empty"));

  ParseResult g = parse_intel_gpu_top_json(std::string("\x01\xff\xfe garbage \x7f", 14));
  EXPECT_FALSE(g.recognized);
  EXPECT_TRUE(g.devices.empty());

  ParseResult f = parse_intel_gpu_top_json(R"({"device_list":[{"device_id":0}]})");
  EXPECT_FALSE(f.recognized);
  EXPECT_TRUE(f.devices.empty());

  // "[" alone: intel_gpu_top started but was stopped before the first sample.
  ParseResult s = parse_intel_gpu_top_json("[\n");
  EXPECT_FALSE(s.recognized);
  EXPECT_TRUE(any_note_contains(s.notes, "no sample"));

  // Only a truncated first sample.
  ParseResult t = parse_intel_gpu_top_json("[\n{\n\t\"period\": {\n\t\t\"duration\": 1.0,");
  EXPECT_FALSE(t.recognized);
  EXPECT_TRUE(any_note_contains(t.notes, "no complete sample"));
}

TEST(IntelGpuTop, LargeJunkIsBounded) {
  std::string junk(1 << 20, '{');
  ParseResult r = parse_intel_gpu_top_json(junk);
  EXPECT_FALSE(r.recognized);
  std::string many;
  for (int i = 0; i < 5000; ++i) many += "{\"rc6\":{\"value\":1}},";
  ParseResult m = parse_intel_gpu_top_json(many);
  EXPECT_TRUE(m.recognized);
  EXPECT_EQ(m.devices.size(), 1u);
}

}  // namespace
}  // namespace grey
