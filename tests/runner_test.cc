// The runner against real small programs written into a temp dir: a tool that hangs
// forever, one that prints garbage, one that exits non-zero, a flood of output.
#include "util/runner.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <fstream>

#include "test_util.h"

namespace grey {
namespace {

using test::TempDir;
using test::write_file;

class RunnerTest : public ::testing::Test {
 protected:
  TempDir dir;
  PosixRunner runner;
  std::string tool(const std::string& name, const std::string& body) {
    std::string p = dir / name;
    write_file(p, "#!/bin/sh\n" + body + "\n", 0755);
    return p;
  }
};

TEST_F(RunnerTest, CapturesStdoutStderrAndExitCode) {
  auto p = tool("t", "echo out; echo err >&2; exit 3");
  auto r = runner.run({p}, {});
  EXPECT_TRUE(r.started);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.describe_failure(), "exit code 3: err");
}

TEST_F(RunnerTest, SetsCLocaleAndPassesArgvVerbatim) {
  auto p = tool("t", "echo \"$LC_ALL|$1|$2\"");
  auto r = runner.run({p, "a b", "$HOME;rm"}, {});
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.out, "C|a b|$HOME;rm\n");
}

TEST_F(RunnerTest, MissingProgram) {
  auto r = runner.run({"grey-no-such-tool-xyz"}, {});
  EXPECT_FALSE(r.started);
  EXPECT_NE(r.error.find("not found on PATH"), std::string::npos);
  EXPECT_EQ(r.describe_failure(), r.error);
}

TEST_F(RunnerTest, HangingToolIsKilledAtTheDeadlineWithItsChildren) {
  std::string pidfile = dir / "child.pid";
  auto p = tool("hang", "sleep 1000 & echo $! > " + pidfile + "; echo started; sleep 1000");
  RunOptions o;
  o.timeout = std::chrono::milliseconds(300);
  auto r = runner.run({p}, o);
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.out, "started\n");
  EXPECT_NE(r.describe_failure().find("timed out"), std::string::npos);
  // The background grandchild went with the process group: its pidfd becomes readable when
  // it has exited (a zombie waiting for init counts). 30 s is a hang guard, not a bound.
  auto pid = std::stoi(test::read_file(pidfile));
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd >= 0) {
    pollfd pfd{pidfd, POLLIN, 0};
    EXPECT_EQ(::poll(&pfd, 1, 30000), 1) << "grandchild survived";
    ::close(pidfd);
  } else {
    EXPECT_EQ(errno, ESRCH) << "grandchild survived";  // already gone and reaped
  }
}

TEST_F(RunnerTest, OutputIsCapped) {
  auto p = tool("flood", "yes garbage");
  RunOptions o;
  o.output_cap = 1 << 16;
  auto r = runner.run({p}, o);
  EXPECT_TRUE(r.truncated);
  EXPECT_EQ(r.out.size(), 1u << 16);
}

TEST_F(RunnerTest, BinaryGarbageIsKeptAsBytes) {
  auto p = tool("bin", "printf '\\000\\377\\376abc'");
  auto r = runner.run({p}, {});
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.out, std::string("\0\xff\xfe"
                               "abc",
                               6));
}

TEST_F(RunnerTest, KilledBySignal) {
  auto p = tool("sig", "kill -9 $$");
  auto r = runner.run({p}, {});
  EXPECT_EQ(r.signal, SIGKILL);
  EXPECT_NE(r.describe_failure().find("signal"), std::string::npos);
}

TEST_F(RunnerTest, ChildClosingPipesButRunningStillGetsOnlyTheDeadline) {
  auto p = tool("closer", "exec >/dev/null 2>&1; sleep 1000");
  RunOptions o;
  o.timeout = std::chrono::milliseconds(300);
  auto r = runner.run({p}, o);
  EXPECT_TRUE(r.timed_out);
}

TEST(JoinArgv, QuotesWhatNeedsIt) {
  EXPECT_EQ(join_argv({"nvidia-smi", "-q", "a b"}), "nvidia-smi -q 'a b'");
}

}  // namespace
}  // namespace grey
