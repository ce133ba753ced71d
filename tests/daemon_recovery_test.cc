// The daemon with a vendor library that crashes, and after a crash of its own: it keeps running
// when NVML crashes (NVML is initialized in a child first and not loaded when that child dies),
// a fatal signal removes its pid file, and a pid file left by a killed daemon is replaced.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "daemon_env.h"
#include "test_util.h"
#include "util/runner.h"

namespace grey {
namespace {

using json = nlohmann::json;
using test::read_file;
using test::TempDir;
using test::write_file;
namespace fs = std::filesystem;
using test::slurp;
using test::wait_until;

// The process fixture (daemon_env.h), with the spec the daemon starts from (detected while
// NVML still behaves).
struct Daemon : test::DaemonEnv {
  Daemon() {
    auto d = run({"detect", "--timeout", "3"});
    EXPECT_EQ(d.exit_code, 0) << d.err;
  }
  void start(const std::vector<std::string>& args) {
    spawn(args);
    ASSERT_GT(pid, 0);
  }
  // Running and ticking, or exited (false).
  bool ticking(uint64_t n) {
    EXPECT_TRUE(wait_until([&] { return exited() || ticks(true) >= n; }, 30));
    return !exited();
  }
};

TEST(DaemonRecovery, ACrashingNvmlDoesNotTakeTheDaemonDown) {
  Daemon d;
  d.env["FAKE_NVML_CRASH"] = "init";
  d.start({"--timeout", "1", "start-daemon", "--interval", "0.1"});
  ASSERT_TRUE(d.ticking(3)) << "the daemon died: status " << d.status << "\n" << d.err();
  EXPECT_NE(d.log().find("\"nvml_not_loaded\""), std::string::npos) << d.log();
  EXPECT_NE(d.err().find("NVML control child died with signal 11"), std::string::npos) << d.err();
  EXPECT_EQ(slurp(d.pid_file), std::to_string(d.pid) + "\n");
  ::kill(d.pid, SIGTERM);
  ASSERT_TRUE(wait_until([&] { return d.exited(); }, 30));
  ASSERT_TRUE(WIFEXITED(d.status)) << d.status;
  EXPECT_EQ(WEXITSTATUS(d.status), 0) << d.err();
  EXPECT_FALSE(fs::exists(d.pid_file));
}

TEST(DaemonRecovery, AFatalSignalRemovesThePidFile) {
  Daemon d;
  // NVML in the daemon's own process (no child first), and a crash that reaches the daemon's
  // SIGSEGV handler: the daemon dies, as it must, but leaves no pid file behind.
  d.env["GREY_PROBE_IN_PROCESS"] = "1";
  d.env["FAKE_NVML_CRASH"] = "init";
  d.env["FAKE_NVML_CRASH_KEEP_HANDLER"] = "1";
  auto r = test::run_grey({"start-daemon", "--interval", "0.1"}, d.env, std::chrono::seconds(60));
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.signal, SIGSEGV) << r.err;
  EXPECT_NE(slurp(d.state + "/logs/daemon.jsonl").find("daemon_started"), std::string::npos)
      << "the daemon crashed before it held the pid file: the test proves nothing";
  EXPECT_FALSE(fs::exists(d.pid_file));
}

TEST(DaemonRecovery, APidFileLeftByAKilledDaemonIsReplaced) {
  Daemon d;
  d.start({"start-daemon", "--interval", "0.1"});
  ASSERT_TRUE(d.ticking(1)) << d.err();
  pid_t first = d.pid;
  ::kill(first, SIGKILL);
  ASSERT_TRUE(wait_until([&] { return d.exited(); }, 30));
  ASSERT_EQ(slurp(d.pid_file), std::to_string(first) + "\n") << "nothing stale to replace";
  auto st = test::run_grey({"status"}, d.env);
  EXPECT_EQ(st.exit_code, 3) << st.out;
  EXPECT_NE(st.out.find("stale pid file"), std::string::npos) << st.out;
  d.start({"start-daemon", "--interval", "0.1"});
  ASSERT_TRUE(d.ticking(1)) << d.err();
  EXPECT_NE(d.pid, first);
  EXPECT_EQ(slurp(d.pid_file), std::to_string(d.pid) + "\n");
  EXPECT_EQ(test::run_grey({"status"}, d.env).exit_code, 0);
  ::kill(d.pid, SIGTERM);
  ASSERT_TRUE(wait_until([&] { return d.exited(); }, 30));
  EXPECT_FALSE(fs::exists(d.pid_file));
}

}  // namespace
}  // namespace grey
