// Argument handling of the built binary: what follows run's `--` reaches the command byte for
// byte, exec failures say why (126/127), and bad options are refused (exit 2) before any work
// is done or anything is written.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "test_util.h"
#include "util/runner.h"

namespace grey {
namespace {

using test::TempDir;
using test::write_file;
namespace fs = std::filesystem;

struct Cli {
  TempDir tmp;
  std::string state = tmp / "state";
  std::map<std::string, std::string> env;
  Cli() {
    fs::create_directories(tmp / "sys/class/drm");
    fs::create_directories(tmp / "proc");
    fs::create_directories(tmp / "bin");
    env = {{"PATH", (tmp / "bin") + ":/usr/bin:/bin"},
           {"GREY_CONFIG_DIR", state},
           {"GREY_SYSFS_ROOT", tmp / "sys"},
           {"GREY_PROC_ROOT", tmp / "proc"},
           {"GREY_NVML_LIBRARY", std::string(GREY_FAKE_LIB_DIR) + "/fake_nvml.so"},
           {"FAKE_NVML_RECORD", tmp / "nvml-record.txt"},
           {"GREY_CUDA_LIBRARY", "/nonexistent/libcuda.so.1"},
           {"GREY_OPENCL_LIBRARY", "/nonexistent/libOpenCL.so.1"}};
  }
  CommandResult run(const std::vector<std::string>& args) { return test::run_grey(args, env); }
  void applied() {
    ASSERT_EQ(run({"detect", "--timeout", "3"}).exit_code, 0);
    auto p = run({"plan"});
    ASSERT_EQ(p.exit_code, 0) << p.err;
    auto a = run({"apply", "--no-dry-run"});
    ASSERT_EQ(a.exit_code, 0) << a.out << a.err;
  }
};

// Bracketed, braced, empty and option-like words: CLI11 used to read "[1,2]" as a list
// ("1 2"), so 9 of 17 such words changed on their way to the command.
const std::vector<std::string> kOddWords = {
    "[1,2]",  "[]",    "[x]",   "{a,b}", "{}", "",
    "--foo",  "-x",    "--gpu", "a b",   "--", "[print(i) for i in range(3)]",
    "[a, b]", "x=[1]", "'[q]'", "[",     "]"};

std::string bracketed(const std::vector<std::string>& words) {
  std::string s;
  for (const auto& w : words) s += "<" + w + ">\n";
  return s;
}

TEST(CliArgs, EverythingAfterTheSeparatorReachesTheCommandVerbatim) {
  Cli c;
  c.applied();
  std::vector<std::string> args = {"run", "--", "/usr/bin/printf", "<%s>\\n"};
  args.insert(args.end(), kOddWords.begin(), kOddWords.end());
  auto r = c.run(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, bracketed(kOddWords));

  // With run's own options and a global option before it, and the command found on PATH.
  args = {"--timeout", "3", "run", "--gpu", "0", "--", "printf", "<%s>\\n"};
  args.insert(args.end(), kOddWords.begin(), kOddWords.end());
  r = c.run(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, bracketed(kOddWords));

  // Without `--` a plain command still runs.
  r = c.run({"run", "/usr/bin/printf", "plain"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "plain");
  // `--` and nothing after it: nothing to run.
  EXPECT_EQ(c.run({"run", "--"}).exit_code, 2);
}

TEST(CliArgs, PythonListComprehensionRuns) {
  Cli c;
  if (find_on_path("python3").empty()) GTEST_SKIP() << "python3 not installed";
  c.applied();
  auto r = c.run({"run", "--", "python3", "-c", "[print(i) for i in range(3)]"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "0\n1\n2\n");
}

TEST(CliArgs, ExecFailuresSayWhy) {
  Cli c;
  c.applied();
  write_file(c.tmp / "notexec", "#!/bin/sh\necho hi\n", 0644);
  fs::create_directories(c.tmp / "adir");
  write_file(c.tmp / "bin/onpath-notexec", "#!/bin/sh\necho hi\n", 0644);

  auto r = c.run({"run", "--", c.tmp / "notexec"});
  EXPECT_EQ(r.exit_code, 126);
  EXPECT_NE(r.err.find("Permission denied"), std::string::npos) << r.err;

  r = c.run({"run", "--", c.tmp / "adir"});
  EXPECT_EQ(r.exit_code, 126);
  EXPECT_NE(r.err.find("Is a directory"), std::string::npos) << r.err;

  r = c.run({"run", "--", "onpath-notexec"});
  EXPECT_EQ(r.exit_code, 126);
  EXPECT_NE(r.err.find("Permission denied"), std::string::npos) << r.err;

  r = c.run({"run", "--", c.tmp / "missing"});
  EXPECT_EQ(r.exit_code, 127);
  EXPECT_NE(r.err.find("not found"), std::string::npos) << r.err;

  r = c.run({"run", "--", "no-such-program-xyz"});
  EXPECT_EQ(r.exit_code, 127);
  EXPECT_NE(r.err.find("not found on PATH"), std::string::npos) << r.err;
}

TEST(CliArgs, BadMetricsListenIsRefusedBeforeAnyWork) {
  for (std::string bad :
       {"abc:xyz", "70000", "127.0.0.1:70000", "[]:9100", "127.0.0.1:", "::1:9"}) {
    Cli c;
    auto r = c.run({"start-daemon", "--metrics-listen", bad});
    EXPECT_EQ(r.exit_code, 2) << bad << ": " << r.err;
    EXPECT_NE(r.err.find("--metrics-listen"), std::string::npos) << bad << ": " << r.err;
    EXPECT_FALSE(fs::exists(c.state)) << bad << ": the state dir was created";
    EXPECT_FALSE(fs::exists(c.tmp / "nvml-record.txt")) << bad << ": detection ran";
  }
}

TEST(CliArgs, OtherBadOptionsAreRefusedBeforeAnyWork) {
  Cli c;
  auto r = c.run({"apply", "--plan", c.tmp / "no-such-plan.yaml"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--plan"), std::string::npos) << r.err;
  r = c.run({"run", "--gpu", "x", "--", "/bin/true"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--gpu"), std::string::npos) << r.err;
  r = c.run({"plan", "--mode", "reckless"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  r = c.run({"env", "--shell", "tcsh"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  r = c.run({"start-daemon", "--interval", "0"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_FALSE(fs::exists(c.state)) << "the state dir was created";
  EXPECT_FALSE(fs::exists(c.tmp / "nvml-record.txt")) << "detection ran";
}

}  // namespace
}  // namespace grey
