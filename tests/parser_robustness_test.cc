// One robustness suite over every text parser (src/sources/parsers.h): empty input, binary
// garbage, large junk, a single huge line, and every real capture of the parser's format cut at
// ~100 points. Each parser's own test file checks what it must yield on whole captures; this
// file checks what every parser promises on bad input: it never throws, never crashes (ASan),
// invents no device from noise, never finds more on a prefix than on the whole, and says why
// whenever it does not recognize its input.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "sources/parsers.h"
#include "test_util.h"

namespace grey {
namespace {

namespace fs = std::filesystem;
using test::fixture_path;
using test::read_fixture;

struct ParserCase {
  const char* name;
  ParseResult (*parse)(std::string_view);
  // Fixture directories whose every file (but *.md) is this parser's format, and file-name
  // prefixes in handmade/ and local/ (with an extension filter: "" takes any).
  std::vector<std::string> dirs;
  std::vector<std::string> prefixes;
  std::string extension;
};

std::ostream& operator<<(std::ostream& os, const ParserCase& c) {
  return os << c.name;
}

const std::vector<ParserCase>& cases() {
  static const std::vector<ParserCase> all = {
      {"nvidia_smi_xml", parse_nvidia_smi_xml, {"nvidia-smi-xml"}, {"nvidia-smi-q-x"}, ".xml"},
      {"nvidia_smi_csv", parse_nvidia_smi_csv, {"nvidia-smi-csv"}, {"nvidia-smi-csv"}, ""},
      {"nvidia_smi_table", parse_nvidia_smi_table, {"nvidia-smi-table"}, {"nvidia-smi-table"}, ""},
      {"nvidia_smi_list", parse_nvidia_smi_list, {"nvidia-smi-L"}, {"nvidia-smi-L"}, ""},
      {"rocm_smi_json", parse_rocm_smi_json, {"rocm-smi"}, {"rocm-smi"}, ".json"},
      {"rocm_smi_text", parse_rocm_smi_text, {"rocm-smi"}, {"rocm-smi"}, ""},
      {"amd_smi_json", parse_amd_smi_json, {"amd-smi"}, {"amd-smi"}, ".json"},
      {"amd_smi_text", parse_amd_smi_text, {"amd-smi"}, {"amd-smi"}, ""},
      {"intel_gpu_top_json", parse_intel_gpu_top_json, {"intel_gpu_top"}, {"intel_gpu_top"}, ""},
      {"xpu_smi", parse_xpu_smi, {"xpu-smi"}, {"xpu-smi"}, ""},
      {"lspci", parse_lspci, {"lspci"}, {"lspci"}, ""},
      {"lshw", parse_lshw, {"lshw"}, {"lshw"}, ""},
      {"vulkaninfo", parse_vulkaninfo, {"vulkaninfo"}, {"vulkaninfo"}, ""},
      {"glxinfo", parse_glxinfo, {"glxinfo"}, {"glxinfo"}, ""},
      {"clinfo", parse_clinfo, {"clinfo"}, {"clinfo"}, ""},
  };
  return all;
}

bool takes(const std::string& file, const std::string& extension) {
  if (file.size() >= 3 && file.compare(file.size() - 3, 3, ".md") == 0) return false;
  return extension.empty() ||
         (file.size() >= extension.size() &&
          file.compare(file.size() - extension.size(), extension.size(), extension) == 0);
}

// Fixture paths relative to the fixture directory, sorted.
std::vector<std::string> fixtures_of(const ParserCase& c) {
  std::vector<std::string> out;
  for (const auto& d : c.dirs) {
    for (const auto& e : fs::directory_iterator(fixture_path(d))) {
      std::string f = e.path().filename().string();
      if (e.is_regular_file() && takes(f, c.extension)) out.push_back(d + "/" + f);
    }
  }
  for (const char* d : {"handmade", "local"}) {
    for (const auto& e : fs::directory_iterator(fixture_path(d))) {
      std::string f = e.path().filename().string();
      for (const auto& p : c.prefixes)
        if (e.is_regular_file() && f.rfind(p, 0) == 0 && takes(f, c.extension))
          out.push_back(std::string(d) + "/" + f);
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

class ParserRobustness : public ::testing::TestWithParam<ParserCase> {
 protected:
  ParseResult parse(std::string_view text) {
    ParseResult r;
    EXPECT_NO_THROW(r = GetParam().parse(text)) << GetParam().name;
    return r;
  }
};

TEST_P(ParserRobustness, HasRealCaptures) {
  // The suite below is only as good as its captures: every parser has at least one.
  EXPECT_FALSE(fixtures_of(GetParam()).empty()) << GetParam().name;
}

TEST_P(ParserRobustness, EmptyInputIsExplained) {
  for (const char* t : {"", "\n", "\n\n  \n", "\t \r\n"}) {
    auto r = parse(t);
    EXPECT_FALSE(r.recognized) << "input: \"" << t << "\"";
    EXPECT_TRUE(r.devices.empty());
    EXPECT_FALSE(r.notes.empty()) << "an empty input must say why nothing was found";
  }
}

TEST_P(ParserRobustness, BinaryGarbageYieldsNoDevice) {
  std::mt19937 rng(42);
  for (int round = 0; round < 64; ++round) {
    std::string g(1 + rng() % 4096, '\0');
    for (char& ch : g) ch = static_cast<char>(rng());
    auto r = parse(g);
    EXPECT_TRUE(r.devices.empty()) << "round " << round;
    if (!r.recognized) {
      EXPECT_FALSE(r.notes.empty()) << "round " << round;
    }
  }
}

TEST_P(ParserRobustness, LargeJunkAndHugeLine) {
  std::string junk;
  junk.reserve(8u << 20);
  while (junk.size() < (8u << 20))
    junk += "zz:zz.z <<<{{{[[[((( \"\\\" : , ; = ]]]}}}>>> \x01\xff\n";
  auto r = parse(junk);
  EXPECT_TRUE(r.devices.empty());
  EXPECT_FALSE(r.notes.empty());

  auto huge = parse(std::string(4u << 20, '{'));
  EXPECT_TRUE(huge.devices.empty());
  auto nested = parse(std::string(1u << 20, '[') + std::string(1u << 20, ']'));
  EXPECT_TRUE(nested.devices.empty());
}

TEST_P(ParserRobustness, EveryCaptureCutAnywhere) {
  for (const auto& f : fixtures_of(GetParam())) {
    std::string full = read_fixture(f);
    auto whole = parse(full);
    for (size_t cut = 0; cut <= full.size(); cut += 1 + full.size() / 97) {
      auto r = parse(std::string_view(full).substr(0, cut));
      EXPECT_LE(r.devices.size(), whole.devices.size()) << f << " cut at " << cut;
      if (!r.recognized) {
        EXPECT_FALSE(r.notes.empty()) << f << " cut at " << cut;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllParsers, ParserRobustness, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<ParserCase>& i) {
                           return std::string(i.param.name);
                         });

}  // namespace
}  // namespace grey
