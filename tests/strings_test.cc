#include "util/strings.h"

#include <gtest/gtest.h>

namespace grey {

TEST(Strings, TrimAndSplit) {
  EXPECT_EQ(trim("  a b \n"), "a b");
  EXPECT_EQ(trim(""), "");
  auto parts = split("a,b,,c", ',');
  ASSERT_EQ(parts.size(), 4u);
  EXPECT_EQ(parts[2], "");
  auto lines = split_lines("x\r\ny\n\nz");
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0], "x");
  EXPECT_EQ(lines[3], "z");
  EXPECT_TRUE(icontains("NVIDIA Corporation", "nvidia"));
  EXPECT_TRUE(icontains("abc", ""));
  EXPECT_FALSE(icontains("ab", "abc"));
  EXPECT_FALSE(icontains("NVIDIA", "amd"));
  EXPECT_FALSE(contains("abc", "d"));
  EXPECT_TRUE(ends_with("file.json", ".json"));
  EXPECT_FALSE(ends_with("a", "abc"));
}

TEST(Strings, CleanValueStopsAtNul) {
  std::string padded("1002\n\0\0\0\0", 9);
  EXPECT_EQ(clean_value(padded), "1002");
}

TEST(Strings, MissingMarkers) {
  for (const char* m :
       {"[N/A]", "N/A", "[Not Supported]", "Not Supported", "",
        "[Requested functionality has been deprecated]", "N/A (Secondary die)", "-"})
    EXPECT_TRUE(is_missing_marker(m)) << m;
  for (const char* v : {"0", "81559 MiB", "Enabled"}) EXPECT_FALSE(is_missing_marker(v)) << v;
}

TEST(Strings, Numbers) {
  EXPECT_EQ(parse_int("42"), 42);
  EXPECT_EQ(parse_int(" -3 "), -3);
  EXPECT_FALSE(parse_int("4x"));
  EXPECT_FALSE(parse_int(""));
  EXPECT_DOUBLE_EQ(*parse_double("69.85"), 69.85);
  EXPECT_FALSE(parse_double("nan"));
  EXPECT_EQ(parse_hex("0x10de"), 0x10deu);
  EXPECT_EQ(parse_hex("233010DE"), 0x233010DEu);
  EXPECT_FALSE(parse_hex("[REDACTED]"));
  EXPECT_FALSE(parse_hex("0x"));
  EXPECT_DOUBLE_EQ(*leading_number("69.85 W"), 69.85);
  EXPECT_FALSE(leading_number("W"));
}

TEST(Strings, MemoryUnits) {
  EXPECT_EQ(memory_to_mib("81559 MiB"), 81559);
  EXPECT_EQ(memory_to_mib("196592 MB"), 196592);
  EXPECT_EQ(memory_to_mib("8 GiB"), 8192);
  EXPECT_EQ(memory_to_mib("34342961152"), 32752);
  EXPECT_EQ(memory_to_mib("2048 KiB"), 2);
  EXPECT_FALSE(memory_to_mib("lots"));
  EXPECT_FALSE(memory_to_mib("12 parsecs"));
  EXPECT_EQ(bytes_to_mib(8573157376ull), 8176);
}

TEST(Strings, BusIds) {
  EXPECT_EQ(normalize_bus_id("00000000:01:00.0"), "0000:01:00.0");
  EXPECT_EQ(normalize_bus_id("00000000:9E:00.0"), "0000:9e:00.0");
  EXPECT_EQ(normalize_bus_id("01:00.0"), "0000:01:00.0");
  EXPECT_EQ(normalize_bus_id("pci@0000:05:00.0"), "0000:05:00.0");
  EXPECT_EQ(normalize_bus_id("0001:c2:1f.7"), "0001:c2:1f.7");
  EXPECT_EQ(normalize_bus_id("10000:01:00.0"), "10000:01:00.0");  // VMD domain
  EXPECT_FALSE(normalize_bus_id("garbage"));
  EXPECT_FALSE(normalize_bus_id("00:00:00"));
  EXPECT_FALSE(normalize_bus_id("0000:100:00.0"));
  EXPECT_FALSE(normalize_bus_id("0000:01:00.9"));
}

TEST(Strings, Pcie) {
  EXPECT_EQ(pcie_gen_from_speed("32.0 GT/s PCIe"), 5);
  EXPECT_EQ(pcie_gen_from_speed("2.5 GT/s"), 1);
  EXPECT_EQ(pcie_gen_from_speed("16GT/s"), 4);
  EXPECT_FALSE(pcie_gen_from_speed("Unknown"));
  EXPECT_FALSE(pcie_gen_from_speed("3 GT/s"));
  EXPECT_EQ(pci_bandwidth(5, 16), "Gen5 x16");
  EXPECT_EQ(hex4(0x10de), "10de");
}

}  // namespace grey

namespace grey {
namespace {

TEST(Strings, Utf8SequenceLength) {
  using namespace std::string_view_literals;
  EXPECT_EQ(utf8_sequence_length("a"sv, 0), 1u);
  EXPECT_EQ(utf8_sequence_length("\xc2\xb5"sv, 0), 2u);          // µ
  EXPECT_EQ(utf8_sequence_length("\xe2\x82\xac"sv, 0), 3u);      // €
  EXPECT_EQ(utf8_sequence_length("\xf0\x9f\x98\x80"sv, 0), 4u);  // U+1F600
  EXPECT_EQ(utf8_sequence_length("x\xc2\xb5"sv, 1), 2u);
  EXPECT_EQ(utf8_sequence_length("\x80"sv, 0), 0u);              // stray continuation
  EXPECT_EQ(utf8_sequence_length("\xc0\xaf"sv, 0), 0u);          // overlong
  EXPECT_EQ(utf8_sequence_length("\xe0\x80\xaf"sv, 0), 0u);      // overlong
  EXPECT_EQ(utf8_sequence_length("\xed\xa0\x80"sv, 0), 0u);      // surrogate
  EXPECT_EQ(utf8_sequence_length("\xf4\x90\x80\x80"sv, 0), 0u);  // above U+10FFFF
  EXPECT_EQ(utf8_sequence_length("\xe2\x82"sv, 0), 0u);          // cut short
  EXPECT_EQ(utf8_sequence_length("\xff"sv, 0), 0u);
  EXPECT_EQ(utf8_sequence_length("a"sv, 1), 0u);  // past the end
  std::string out;
  for (uint32_t cp : {0x41u, 0xB5u, 0x20ACu, 0xFFFDu, 0x1F600u}) append_utf8(out, cp);
  EXPECT_EQ(out, "A\xc2\xb5\xe2\x82\xac\xef\xbf\xbd\xf0\x9f\x98\x80");
}

TEST(Strings, SanitizeUtf8ReplacesEveryInvalidByteAndIsIdempotent) {
  using namespace std::string_view_literals;
  EXPECT_EQ(sanitize_utf8("plain \xc2\xb5 \xf0\x9f\x98\x80"sv), "plain \xc2\xb5 \xf0\x9f\x98\x80");
  // The config key of issue 11: a lone lead byte.
  EXPECT_EQ(sanitize_utf8("\xf2"sv), "\xef\xbf\xbd");
  // A cut-short sequence: each byte on its own, like the YAML writer.
  EXPECT_EQ(sanitize_utf8("a\xe2\x82"sv), "a\xef\xbf\xbd\xef\xbf\xbd");
  EXPECT_EQ(sanitize_utf8("\xed\xa0\x80"sv), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");  // surrogate
  EXPECT_EQ(sanitize_utf8("x\0y"sv), "x\0y"sv);  // NUL is valid UTF-8; callers decide about it
  for (std::string_view in : {"\xf2"sv, "\xc0\xaf"sv,
                              "\x80\x80"
                              "abc\xff"sv,
                              "ok"sv}) {
    std::string once = sanitize_utf8(in);
    EXPECT_EQ(sanitize_utf8(once), once);
    for (size_t i = 0; i < once.size();) {
      size_t len = utf8_sequence_length(once, i);
      ASSERT_NE(len, 0u) << "invalid at " << i;
      i += len;
    }
  }
}

}  // namespace
}  // namespace grey
