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

#include "test_util.h"
#include "util/runner.h"

extern char** environ;

namespace grey {
namespace {

using json = nlohmann::json;
using test::read_file;
using test::TempDir;
using test::write_file;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Polls `pred` (the daemon runs in another process); false after `seconds`.
bool wait_until(const std::function<bool()>& pred, double seconds) {
  auto end = Clock::now() + std::chrono::duration<double>(seconds);
  while (Clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

std::string slurp(const std::string& path) {
  std::error_code ec;
  return fs::exists(path, ec) ? read_file(path) : std::string();
}

struct Daemon {
  TempDir tmp;
  std::string state = tmp / "state";
  std::string pid_file = state + "/daemon.pid";
  std::map<std::string, std::string> env;
  pid_t pid = -1;
  int status = 0;
  bool reaped = true;

  Daemon() {
    fs::create_directories(tmp / "sys/class/drm");
    fs::create_directories(tmp / "bin");
    fs::create_directories(state);
    ::chmod(state.c_str(), 0700);
    env = {{"PATH", tmp / "bin"},
           {"GREY_CONFIG_DIR", state},
           {"GREY_SYSFS_ROOT", tmp / "sys"},
           {"GREY_PROC_ROOT", tmp / "proc"},
           {"GREY_NVML_LIBRARY", std::string(GREY_FAKE_LIB_DIR) + "/fake_nvml.so"},
           {"GREY_CUDA_LIBRARY", "/nonexistent/libcuda.so.1"},
           {"GREY_OPENCL_LIBRARY", "/nonexistent/libOpenCL.so.1"},
           {"FAKE_NVML_RECORD", tmp / "nvml-record.txt"}};
    // The spec the daemon starts from (detected while NVML still behaves).
    auto d = test::run_grey({"detect", "--timeout", "3"}, env);
    EXPECT_EQ(d.exit_code, 0) << d.err;
  }
  ~Daemon() {
    if (pid > 0 && !reaped) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
    }
  }
  void start(const std::vector<std::string>& args) {
    std::vector<std::string> argv{GREY_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<std::string> envs;
    for (char** e = environ; e && *e; ++e) {
      std::string kv(*e);
      auto eq = kv.find('=');
      if (eq != std::string::npos && env.count(kv.substr(0, eq))) continue;
      envs.push_back(kv);
    }
    for (const auto& [k, v] : env) envs.push_back(k + "=" + v);
    std::string out = tmp / "daemon.out", err = tmp / "daemon.err";
    pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      ::dup2(o, 1);
      ::dup2(e, 2);
      std::vector<char*> a, en;
      for (auto& s : argv) a.push_back(s.data());
      a.push_back(nullptr);
      for (auto& s : envs) en.push_back(s.data());
      en.push_back(nullptr);
      ::execve(a[0], a.data(), en.data());
      ::_exit(127);
    }
    reaped = false;
  }
  bool exited() {
    if (reaped) return true;
    if (::waitpid(pid, &status, WNOHANG) == pid) reaped = true;
    return reaped;
  }
  uint64_t ticks() {
    json j = json::parse(slurp(state + "/daemon_status.json"), nullptr, false);
    return j.is_object() && j["ticks"].is_number() && j.value("pid", 0L) == pid
               ? j["ticks"].get<uint64_t>()
               : 0;
  }
  // Running and ticking, or exited (false).
  bool ticking(uint64_t n) {
    EXPECT_TRUE(wait_until([&] { return exited() || ticks() >= n; }, 30));
    return !exited();
  }
  std::string err() { return slurp(tmp / "daemon.err"); }
  std::string log() { return slurp(state + "/logs/daemon.jsonl"); }
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
