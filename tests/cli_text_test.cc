// The text output of detect, plan and status as a user sees it: tables whose columns never run
// into each other (widths in code points), one plan row per GPU or group, status on a fresh
// state directory. Through the built binary, on replays of real captures.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/text_table.h"
#include "test_util.h"

namespace grey {
namespace {

using test::read_fixture;
using test::TempDir;
using test::write_file;
namespace fs = std::filesystem;

std::u32string code_points(const std::string& s) {
  std::u32string out;
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : 4;
    char32_t cp = n == 1 ? c : c & (0x7f >> n);
    for (size_t k = 1; k < n && i + k < s.size(); ++k)
      cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3f);
    out.push_back(cp);
    i += n;
  }
  return out;
}

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> v;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) v.push_back(l);
  return v;
}

// The table that starts at the line beginning with `header_start` (up to a blank or note line):
// every row has a blank in the column before each header column's start (code points), so no
// cell runs into the next. Returns the number of data rows.
size_t check_columns(const std::string& text, const std::string& header_start) {
  auto lines = lines_of(text);
  size_t h = 0;
  while (h < lines.size() && lines[h].rfind(header_start, 0) != 0) ++h;
  EXPECT_LT(h, lines.size()) << "no header " << header_start << " in\n" << text;
  if (h >= lines.size()) return 0;
  std::u32string head = code_points(lines[h]);
  std::vector<size_t> starts;  // header words separated by two blanks or more
  for (size_t i = 1; i < head.size(); ++i)
    if (head[i] != U' ' && i >= 2 && head[i - 1] == U' ' && head[i - 2] == U' ')
      starts.push_back(i);
  EXPECT_FALSE(starts.empty()) << lines[h];
  size_t rows = 0;
  for (size_t r = h + 1; r < lines.size() && !lines[r].empty() && lines[r].rfind("  note", 0) != 0;
       ++r, ++rows) {
    std::u32string row = code_points(lines[r]);
    for (size_t c : starts)
      if (c < row.size()) {
        EXPECT_EQ(row[c - 1], U' ') << "column at " << c << " in\n" << lines[r];
      }
  }
  return rows;
}

struct Cli {
  TempDir tmp;
  std::string bin_dir = tmp / "bin";
  std::string state = tmp / "state";
  std::string sys = tmp / "sys";
  std::map<std::string, std::string> env;
  Cli() {
    fs::create_directories(bin_dir);
    fs::create_directories(sys + "/class/drm");
    env = {{"PATH", bin_dir},
           {"GREY_CONFIG_DIR", state},
           {"GREY_SYSFS_ROOT", sys},
           {"GREY_PROC_ROOT", tmp / "proc"},
           {"GREY_NVML_LIBRARY", "/nonexistent/libnvidia-ml.so.1"},
           {"GREY_CUDA_LIBRARY", "/nonexistent/libcuda.so.1"},
           {"GREY_OPENCL_LIBRARY", "/nonexistent/libOpenCL.so.1"}};
  }
  CommandResult run(const std::vector<std::string>& args) { return test::run_grey(args, env); }
};

TEST(TextTable, WidthsInCodePointsAndEllipsis) {
  EXPECT_EQ(display_width("80/65 °C"), 8u);
  EXPECT_EQ(display_width("Radeon™ Pro"), 11u);
  EXPECT_EQ(truncate_display("short", 10), "short");
  EXPECT_EQ(truncate_display("Vega 10 XL/XT [Radeon RX Vega 56/64]", 10), "Vega 10 X…");
  // A multi-byte code point is never split.
  EXPECT_EQ(truncate_display("ÄÖÜäöü", 4), "ÄÖÜ…");
  TextTable t({"A", "NAME", "B"}, {0, 6, 0});
  t.add_row({"1", "Grafikkarte Ä", "x"});
  t.add_row({"22", "Äö", "y"});
  EXPECT_EQ(t.render(), "A   NAME    B\n1   Grafi…  x\n22  Äö      y\n");
}

// The 36-character Vega name used to run into the bus id ("...56/64]0000:0b:00.0").
TEST(CliText, DetectColumnsNeverRunTogether) {
  Cli c;
  std::string d = c.tmp / "replay";
  fs::create_directories(d + "/sys/class/drm");
  fs::copy(test::fixture_path("sysfs/amd-radeon-rx-vega56-lact/card0"), d + "/sys/class/drm/card0",
           fs::copy_options::recursive);
  write_file(
      d + "/lspci.txt",
      "Slot:\t0000:0b:00.0\nClass:\tVGA compatible controller [0300]\nVendor:\tAdvanced Micro "
      "Devices, Inc. [AMD/ATI] [1002]\nDevice:\tVega 10 XL/XT [Radeon RX Vega 56/64] [687f]\n"
      "Driver:\tamdgpu\n\n");
  auto r = c.run({"detect", "--replay", d, "--no-save"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(check_columns(r.out, "IDX"), 1u) << r.out;
  EXPECT_NE(r.out.find(" 0000:0b:00.0 "), std::string::npos) << r.out;

  std::string mixed = c.tmp / "mixed";
  write_file(mixed + "/nvidia-smi.xml",
             read_fixture("nvidia-smi-xml/nvidia-geforce-rtx2070-x2-590.44.01-telegraf.xml"));
  write_file(mixed + "/rocm-smi.json",
             read_fixture("rocm-smi/amd-instinct-mi100-x6-rocm5.7.1-json-telegraf.json"));
  auto m = c.run({"detect", "--replay", mixed, "--no-save"});
  ASSERT_EQ(m.exit_code, 0) << m.err;
  EXPECT_EQ(check_columns(m.out, "IDX"), 8u) << m.out;
}

// plan on 8 GPUs: a summary table of at most 8 rows and a bounded line count; the rationale
// comes with --explain.
TEST(CliText, PlanOnEightGpusIsOneScreen) {
  Cli c;
  std::string mixed = c.tmp / "mixed";
  write_file(mixed + "/nvidia-smi.xml",
             read_fixture("nvidia-smi-xml/nvidia-geforce-rtx2070-x2-590.44.01-telegraf.xml"));
  write_file(mixed + "/rocm-smi.json",
             read_fixture("rocm-smi/amd-instinct-mi100-x6-rocm5.7.1-json-telegraf.json"));
  ASSERT_EQ(c.run({"detect", "--replay", mixed}).exit_code, 0);
  auto r = c.run({"plan"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  size_t rows = check_columns(r.out, "GPU ");
  EXPECT_GE(rows, 2u) << r.out;  // two models
  EXPECT_LE(rows, 8u) << r.out;
  EXPECT_LE(lines_of(r.out).size(), 25u) << r.out;
  EXPECT_EQ(r.out.find("fairness_weight_per_process"), std::string::npos) << r.out;

  auto e = c.run({"plan", "--explain"});
  ASSERT_EQ(e.exit_code, 0) << e.err;
  EXPECT_NE(e.out.find("fairness_weight_per_process"), std::string::npos) << e.out;
  EXPECT_NE(e.out.find("MiB this GPU reports"), std::string::npos) << e.out;
  EXPECT_GT(lines_of(e.out).size(), lines_of(r.out).size());

  // Ten identical A40s: one row.
  Cli ten;
  std::string d = ten.tmp / "a40";
  write_file(d + "/nvidia-smi.txt",
             read_fixture("nvidia-smi-table/nvidia-a40-x10-550.127.05-thamada.txt"));
  ASSERT_EQ(ten.run({"detect", "--replay", d}).exit_code, 0);
  auto t = ten.run({"plan"});
  ASSERT_EQ(t.exit_code, 0) << t.err;
  EXPECT_EQ(check_columns(t.out, "GPU "), 1u) << t.out;
  EXPECT_NE(t.out.find("\n0-9 "), std::string::npos) << t.out;
}

// A new user's first `status`: the detection, the plan and the directories, and artifacts/
// created 0700.
TEST(CliText, StatusOnAFreshStateDir) {
  Cli c;
  auto r = c.run({"status"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.out.find("Detection: none saved yet"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Active plan: none applied"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("State dir: " + c.state + "\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Config: " + c.state + "/config.yaml"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Artifacts: " + c.state + "/artifacts\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Daemon: not running"), std::string::npos) << r.out;
  struct stat st;
  ASSERT_EQ(::lstat((c.state + "/artifacts").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0700u);

  // After detect and plan: how many GPUs, from which sources, the spec's age.
  std::string d = c.tmp / "a40";
  write_file(d + "/nvidia-smi.txt",
             read_fixture("nvidia-smi-table/nvidia-a40-x10-550.127.05-thamada.txt"));
  ASSERT_EQ(c.run({"detect", "--replay", d}).exit_code, 0);
  auto s = c.run({"status"});
  EXPECT_NE(s.out.find("Detection: 10 GPUs from nvidia-smi"), std::string::npos) << s.out;
  EXPECT_NE(s.out.find("(spec saved "), std::string::npos) << s.out;
  auto j = nlohmann::json::parse(c.run({"status", "--json"}).out);
  EXPECT_EQ(j["detection"]["gpu_count"], 10);
  EXPECT_EQ(j["artifacts_dir"], c.state + "/artifacts");
  EXPECT_TRUE(j["active_plan"].is_null());

  // The active plan: the applied one's mode, when it was applied, its confidence.
  ASSERT_EQ(c.run({"plan"}).exit_code, 0);
  write_file(c.state + "/last_applied_plan.yaml", test::read_file(c.state + "/last_plan.yaml"),
             0600);
  auto a = c.run({"status"});
  EXPECT_NE(a.out.find("Active plan: safe mode, 10 GPUs, confidence "), std::string::npos) << a.out;
  EXPECT_NE(a.out.find(", applied "), std::string::npos) << a.out;
  auto ja = nlohmann::json::parse(c.run({"status", "--json"}).out);
  EXPECT_EQ(ja["active_plan"]["mode"], "safe");
  EXPECT_EQ(ja["active_plan"]["gpu_count"], 10);
  EXPECT_TRUE(ja["active_plan"]["applied_at"].is_string());
}

// artifacts/ as a symlink is refused, never followed.
TEST(CliText, StatusNeverCreatesArtifactsThroughASymlink) {
  Cli c;
  fs::create_directories(c.state);
  ::chmod(c.state.c_str(), 0700);
  std::string elsewhere = c.tmp / "elsewhere";
  fs::create_directories(elsewhere);
  fs::create_directory_symlink(elsewhere, c.state + "/artifacts");
  auto r = c.run({"status"});
  EXPECT_NE(r.out.find("warning: "), std::string::npos) << r.out;
  EXPECT_TRUE(fs::is_symlink(c.state + "/artifacts"));
  EXPECT_TRUE(fs::is_empty(elsewhere));
}

}  // namespace
}  // namespace grey
