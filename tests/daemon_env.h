// The fixture of the tests that run the daemon as a process (daemon_test.cc,
// daemon_recovery_test.cc): a temporary state directory, an empty sysfs, no tools on PATH, the
// fake NVML (tests/fakes/fake_nvml.c) recording its set-calls, and the built binary started in
// the background with that environment.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "test_util.h"
#include "util/runner.h"

extern char** environ;

namespace grey::test {

// Polls `pred` (the daemon runs in another process); false after `seconds`.
inline bool wait_until(const std::function<bool()>& pred, double seconds) {
  using Clock = std::chrono::steady_clock;
  auto end = Clock::now() + std::chrono::duration<double>(seconds);
  while (Clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

// The whole file, "" when it does not exist.
inline std::string slurp(const std::string& path) {
  std::error_code ec;
  return std::filesystem::exists(path, ec) ? read_file(path) : std::string();
}

inline std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) out.push_back(l);
  return out;
}

struct DaemonEnv {
  TempDir tmp;
  std::string state = tmp / "state";
  std::string sys = tmp / "sys";
  std::string record = tmp / "nvml-record.txt";
  std::string pid_file = state + "/daemon.pid";
  std::map<std::string, std::string> env;
  pid_t pid = -1;
  int status = 0;
  bool reaped = true;

  DaemonEnv() {
    std::filesystem::create_directories(sys + "/class/drm");
    std::filesystem::create_directories(tmp / "bin");
    std::filesystem::create_directories(state);
    ::chmod(state.c_str(), 0700);
    env = {{"PATH", tmp / "bin"},
           {"GREY_CONFIG_DIR", state},
           {"GREY_SYSFS_ROOT", sys},
           {"GREY_PROC_ROOT", tmp / "proc"},
           {"GREY_NVML_LIBRARY", std::string(GREY_FAKE_LIB_DIR) + "/fake_nvml.so"},
           {"GREY_CUDA_LIBRARY", "/nonexistent/libcuda.so.1"},
           {"GREY_OPENCL_LIBRARY", "/nonexistent/libOpenCL.so.1"},
           {"FAKE_NVML_RECORD", record}};
  }
  ~DaemonEnv() {
    if (pid > 0 && !reaped) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
    }
  }
  DaemonEnv(const DaemonEnv&) = delete;
  DaemonEnv& operator=(const DaemonEnv&) = delete;

  // Runs the binary with `args` to its end.
  CommandResult run(const std::vector<std::string>& args) {
    return run_grey(args, env, std::chrono::seconds(60));
  }
  // Starts the binary with `args` in the background; stdout/stderr to files.
  void spawn(const std::vector<std::string>& args) {
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
    if (pid < 0) return;
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
  // Seconds until it exited, or -1 after `limit`.
  double wait_exit(double limit) {
    auto t0 = std::chrono::steady_clock::now();
    if (!wait_until([&] { return exited(); }, limit)) return -1;
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  std::string out() { return slurp(tmp / "daemon.out"); }
  std::string err() { return slurp(tmp / "daemon.err"); }
  std::string log() { return slurp(state + "/logs/daemon.jsonl"); }
  std::vector<nlohmann::json> events(const std::string& name = "") {
    std::vector<nlohmann::json> v;
    for (const auto& l : lines_of(log())) {
      auto j = nlohmann::json::parse(l, nullptr, false);
      if (!j.is_discarded() && (name.empty() || j.value("event", "") == name)) v.push_back(j);
    }
    return v;
  }
  bool has_event(const std::string& name) { return !events(name).empty(); }
  nlohmann::json status_file() {
    auto j = nlohmann::json::parse(slurp(state + "/daemon_status.json"), nullptr, false);
    return j.is_discarded() ? nlohmann::json() : j;
  }
  // Ticks in daemon_status.json (only_ours: 0 unless it was written by the process we started).
  uint64_t ticks(bool only_ours = false) {
    auto j = status_file();
    if (!j.is_object() || !j["ticks"].is_number()) return 0;
    if (only_ours && j.value("pid", 0L) != pid) return 0;
    return j["ticks"].get<uint64_t>();
  }
  // The fake NVML's recorded set-calls.
  std::vector<std::string> sets() { return lines_of(slurp(record)); }
};

}  // namespace grey::test
