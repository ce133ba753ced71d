// start-daemon and status as processes, through the built binary, against the fake NVML
// (tests/fakes/fake_nvml.c): its script drives temperatures and processes, and it records
// every set-call. Also the daemon's pieces that need no process (status view, config switch,
// log rotation through run_daemon in this process).
#include "daemon/daemon.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "daemon/daemon_status.h"
#include "daemon_env.h"
#include "plan/plan_io.h"
#include "test_util.h"
#include "util/runner.h"

namespace grey {
namespace {

using json = nlohmann::json;
using test::read_file;
using test::TempDir;
using test::write_file;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using test::lines_of;
using test::slurp;
using test::wait_until;

// The script used by most tests (interval 0.1 s; one fake tick per sample): GPU 0 heats past
// cooldown 80 at tick 5, stays hot for 3 ticks, drops between the thresholds, then under
// resume 65 from tick 9. Process 4242 grows past the 1000 MiB cap at tick 6, drops under it
// at tick 12 and ends at tick 14; process 4243 goes over at tick 7 and ends while over.
const char* kScript =
    "# hand-written for daemon_test.cc\n"
    "tick 0 0 50 1000 10 100000\n"
    "tick 5 0 85 1000 90 300000\n"
    "tick 6 0 86 1000 90 300000\n"
    "tick 7 0 84 1000 90 300000\n"
    "tick 8 0 75 1000 50 300000\n"
    "tick 9 0 60 1000 10 100000\n"
    "proc 2 0 4242 500 trainer\n"
    "proc 6 0 4242 1500 trainer\n"
    "proc 12 0 4242 800 trainer\n"
    "proc 14 0 4242 -1 trainer\n"
    "proc 7 0 4243 2000 hog\n"
    "proc 10 0 4243 -1 hog\n";

const char* kConfig =
    "per_process_vram_cap_mb: 1000\n"
    "cooldown_threshold_c: 80\n"
    "resume_threshold_c: 65\n";

// The process fixture (daemon_env.h) with the script above and config.yaml.
struct Env : test::DaemonEnv {
  Env() {
    env["FAKE_NVML_SCRIPT"] = tmp / "script.txt";
    write_file(tmp / "script.txt", kScript);
    write_file(state + "/config.yaml", kConfig, 0600);
  }
  void detect() {
    auto r = run({"detect", "--timeout", "3"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  // Starts `start-daemon ARGS` in the background; stdout/stderr to files.
  void start(const std::vector<std::string>& args) {
    std::vector<std::string> argv{"start-daemon"};
    argv.insert(argv.end(), args.begin(), args.end());
    spawn(argv);
    ASSERT_GT(pid, 0);
  }
};

// Every log line: one JSON object with a string timestamp, a string event and an object
// details (never a string inside a string).
void expect_valid_log(const std::string& text) {
  auto ls = lines_of(text);
  ASSERT_FALSE(ls.empty());
  for (const auto& l : ls) {
    json j = json::parse(l, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << l;
    ASSERT_TRUE(j.is_object()) << l;
    EXPECT_TRUE(j["timestamp"].is_string()) << l;
    EXPECT_TRUE(j["event"].is_string()) << l;
    EXPECT_TRUE(j["details"].is_object()) << l;
    EXPECT_EQ(j["schema_version"], kDaemonLogSchemaVersion) << l;
    EXPECT_EQ(j.size(), 4u) << l;
  }
}

TEST(Daemon, GovernsWithConsentLowersThenRestoresAndReportsCaps) {
  Env e;  // no saved spec: the daemon detects first
  e.start({"--interval", "0.1", "--no-dry-run", "--consent"});
  ASSERT_TRUE(wait_until(
      [&] {
        return e.has_event("process_over_cap_end") && e.events("process_over_cap_end").size() >= 2;
      },
      20))
      << e.err() << e.log();
  EXPECT_FALSE(e.exited()) << e.err();
  // The exact set-calls: three steps of 70 W (10% of the 700 W default), then the restore.
  EXPECT_EQ(e.sets(), (std::vector<std::string>{"set nvmlDeviceSetPowerManagementLimit 0 630000",
                                                "set nvmlDeviceSetPowerManagementLimit 0 560000",
                                                "set nvmlDeviceSetPowerManagementLimit 0 490000",
                                                "set nvmlDeviceSetPowerManagementLimit 0 700000"}))
      << e.log();
  auto spec = e.events("spec_loaded");
  ASSERT_EQ(spec.size(), 1u);
  EXPECT_EQ(spec[0]["details"]["source"], "detected");
  EXPECT_EQ(spec[0]["details"]["gpus"].size(), 2u);
  auto plan = e.events("plan_loaded");
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0]["details"]["source"], "safe");
  EXPECT_EQ(plan[0]["details"]["gpus"][0]["cooldown_threshold_c"], 80);

  auto tr = e.events("governor_transition");
  ASSERT_EQ(tr.size(), 2u) << e.log();
  EXPECT_EQ(tr[0]["details"]["gpu"], 0);
  EXPECT_EQ(tr[0]["details"]["from"], "normal");
  EXPECT_EQ(tr[0]["details"]["to"], "cooling");
  EXPECT_EQ(tr[0]["details"]["temperature_c"], 85.0);
  EXPECT_EQ(tr[1]["details"]["to"], "normal");
  EXPECT_EQ(tr[1]["details"]["temperature_c"], 60.0);
  auto lowered = e.events("power_limit_lowered");
  ASSERT_EQ(lowered.size(), 3u);
  EXPECT_EQ(lowered[0]["details"]["from_w"], "700");
  EXPECT_EQ(lowered[0]["details"]["to_w"], "630");
  EXPECT_EQ(lowered[0]["details"]["read_back"], "630");
  auto restored = e.events("power_limit_restored");
  ASSERT_EQ(restored.size(), 1u);
  EXPECT_EQ(restored[0]["details"]["status"], "restored");
  EXPECT_EQ(restored[0]["details"]["to_w"], "700");
  EXPECT_EQ(restored[0]["details"]["journal_ids"].size(), 3u);
  EXPECT_TRUE(e.events("power_limit_dry_run").empty());

  // Journaled like apply: set + result per step, a restore line for each set.
  auto jl = lines_of(slurp(e.state + "/journal.jsonl"));
  std::map<std::string, int> ops;
  for (const auto& l : jl) ops[json::parse(l)["op"].get<std::string>()]++;
  EXPECT_EQ(ops["set"], 3);
  EXPECT_EQ(ops["result"], 3);
  EXPECT_EQ(ops["restore"], 3);

  // Reactive VRAM cap: over and back under (4242), over and ended (4243).
  auto over = e.events("process_over_cap");
  ASSERT_EQ(over.size(), 2u);
  std::map<int, json> over_by_pid, end_by_pid;
  for (auto& j : over) over_by_pid[j["details"]["pid"].get<int>()] = j["details"];
  for (auto& j : e.events("process_over_cap_end"))
    end_by_pid[j["details"]["pid"].get<int>()] = j["details"];
  EXPECT_EQ(over_by_pid[4242]["vram_mb"], 1500);
  EXPECT_EQ(over_by_pid[4242]["cap_mb"], 1000);
  EXPECT_EQ(over_by_pid[4242]["command"], "trainer");
  EXPECT_EQ(over_by_pid[4242]["tier"], "reactive");
  EXPECT_EQ(over_by_pid[4243]["vram_mb"], 2000);
  EXPECT_EQ(end_by_pid[4242]["reason"], "back under the cap");
  EXPECT_EQ(end_by_pid[4243]["reason"], "the process ended or left the GPU");
  EXPECT_TRUE(e.events("process_signalled").empty());  // the switch is off by default

  ::kill(e.pid, SIGTERM);
  double took = e.wait_exit(30);
  ASSERT_GE(took, 0);
  ASSERT_TRUE(WIFEXITED(e.status));
  EXPECT_EQ(WEXITSTATUS(e.status), 0) << e.err();
  EXPECT_EQ(e.sets().size(), 4u);  // nothing was left lowered: nothing more to restore
  expect_valid_log(e.log());
  EXPECT_TRUE(e.has_event("daemon_stopped"));
}

TEST(Daemon, DryRunLogsWhatItWouldDoAndChangesNothing) {
  for (bool no_dry_run : {false, true}) {
    Env e;
    e.detect();
    std::vector<std::string> args{"--interval", "0.1"};
    if (no_dry_run) args.push_back("--no-dry-run");  // still no --consent
    e.start(args);
    ASSERT_TRUE(wait_until(
        [&] {
          for (auto& j : e.events("power_limit_dry_run"))
            if (j["details"]["action"] == "restore") return true;
          return false;
        },
        20))
        << e.log() << e.err();
    auto dry = e.events("power_limit_dry_run");
    ASSERT_EQ(dry.size(), 4u);
    EXPECT_EQ(dry[0]["details"]["message"],
              "[DRY-RUN] would lower GPU 0 power limit from 700 W to 630 W");
    EXPECT_EQ(dry[1]["details"]["message"],
              "[DRY-RUN] would lower GPU 0 power limit from 630 W to 560 W");
    EXPECT_EQ(dry[3]["details"]["message"],
              "[DRY-RUN] would restore GPU 0 power limit from 490 W to 700 W");
    EXPECT_NE(e.out().find("[DRY-RUN] would lower GPU 0 power limit from 700 W to 630 W"),
              std::string::npos);
    EXPECT_EQ(e.events("governor_transition").size(), 2u);
    EXPECT_EQ(e.events("spec_loaded")[0]["details"]["source"], "saved");
    ::kill(e.pid, SIGINT);
    ASSERT_GE(e.wait_exit(30), 0);
    EXPECT_EQ(WEXITSTATUS(e.status), 0);
    EXPECT_TRUE(e.sets().empty()) << "a dry run made set-calls";
    EXPECT_FALSE(fs::exists(e.state + "/journal.jsonl"));
    expect_valid_log(e.log());
  }
}

TEST(Daemon, SigtermRestoresTheLoweredLimitWithinATick) {
  Env e;
  e.detect();
  write_file(e.tmp / "script.txt",
             "tick 0 0 50 1000 10 100000\n"
             "tick 2 0 92 1000 90 300000\n");
  e.start({"--interval", "0.1", "--no-dry-run", "--consent"});
  ASSERT_TRUE(wait_until([&] { return e.events("power_limit_lowered").size() >= 2; }, 20))
      << e.log() << e.err();
  ::kill(e.pid, SIGTERM);
  double took = e.wait_exit(30);
  ASSERT_GE(took, 0) << "the daemon did not stop";
  EXPECT_EQ(WEXITSTATUS(e.status), 0) << e.err();
  auto s = e.sets();
  ASSERT_GE(s.size(), 3u);
  EXPECT_EQ(s.front(), "set nvmlDeviceSetPowerManagementLimit 0 630000");
  EXPECT_EQ(s.back(), "set nvmlDeviceSetPowerManagementLimit 0 700000");
  auto restored = e.events("power_limit_restored");
  ASSERT_EQ(restored.size(), 1u);
  EXPECT_EQ(restored[0]["details"]["status"], "restored");
  EXPECT_NE(restored[0]["details"]["message"].get<std::string>().find("SIGTERM"),
            std::string::npos);
  // Every set the daemon journaled is settled: `restore` finds nothing left to undo.
  auto r = e.run({"restore", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(json::parse(r.out)["steps"].empty()) << r.out;
  expect_valid_log(e.log());
  EXPECT_EQ(e.status_file()["state"], "stopped");
  EXPECT_FALSE(fs::exists(e.state + "/daemon.pid"));
}

TEST(Daemon, SighupWithABrokenConfigKeepsTheOldOne) {
  Env e;
  e.detect();
  e.start({"--interval", "0.1"});
  ASSERT_TRUE(wait_until([&] { return e.ticks() >= 2; }, 20)) << e.err();
  write_file(e.state + "/config.yaml", "cooldown_threshold_c: [\n", 0600);
  ::kill(e.pid, SIGHUP);
  ASSERT_TRUE(wait_until([&] { return e.has_event("reload_failed"); }, 10)) << e.log();
  auto f = e.events("reload_failed");
  EXPECT_EQ(f[0]["details"]["what"], "config");
  EXPECT_FALSE(f[0]["details"]["error"].get<std::string>().empty());
  EXPECT_NE(e.err().find("the previous config is kept"), std::string::npos);
  uint64_t t = e.ticks();
  ASSERT_TRUE(wait_until([&] { return e.ticks() >= t + 3; }, 10)) << "ticks stopped";
  EXPECT_FALSE(e.exited());
  EXPECT_EQ(e.status_file()["gpus"][0]["cooldown_c"], 80);
  // A value out of range is invalid too.
  write_file(e.state + "/config.yaml", "cooldown_threshold_c: 500\n", 0600);
  ::kill(e.pid, SIGHUP);
  ASSERT_TRUE(wait_until([&] { return e.events("reload_failed").size() >= 2; }, 10));
  EXPECT_EQ(e.status_file()["gpus"][0]["cooldown_c"], 80);
  // A valid one (with the daemon's own switch) is taken.
  write_file(e.state + "/config.yaml",
             "cooldown_threshold_c: 77\nresume_threshold_c: 60\nsignal_over_cap: false\n", 0600);
  ::kill(e.pid, SIGHUP);
  ASSERT_TRUE(wait_until(
      [&] {
        json s = e.status_file();
        return s.is_object() && s["gpus"][0]["cooldown_c"] == 77;
      },
      10))
      << e.log();
  EXPECT_EQ(e.status_file()["gpus"][0]["resume_c"], 60);
  EXPECT_TRUE(e.has_event("plan_reloaded"));
  ::kill(e.pid, SIGTERM);
  ASSERT_GE(e.wait_exit(30), 0);
  EXPECT_EQ(WEXITSTATUS(e.status), 0);
  expect_valid_log(e.log());
}

TEST(Daemon, SingleInstanceAndStatus) {
  Env e;
  // A steady GPU: the state `status` shows must not depend on how many ticks ran before it
  // asked (with the heating script a slow machine saw GPU 0 cooling).
  write_file(e.tmp / "script.txt", "# hand-written: steady 50 C\ntick 0 0 50 1000 10 100000\n");
  e.detect();
  auto before = e.run({"status"});
  EXPECT_EQ(before.exit_code, 3);
  EXPECT_NE(before.out.find("not running"), std::string::npos) << before.out;

  e.start({"--interval", "0.1"});
  ASSERT_TRUE(wait_until([&] { return e.ticks() >= 1; }, 20)) << e.err();
  auto second = e.run({"start-daemon", "--interval", "0.1"});
  EXPECT_EQ(second.exit_code, 1);
  EXPECT_NE(second.err.find("a daemon is already running (pid " + std::to_string(e.pid) + ")"),
            std::string::npos)
      << second.err;

  auto st = e.run({"status"});
  EXPECT_EQ(st.exit_code, 0) << st.out << st.err;
  EXPECT_NE(st.out.find("running (pid " + std::to_string(e.pid)), std::string::npos) << st.out;
  EXPECT_NE(st.out.find("Last tick: "), std::string::npos) << st.out;
  EXPECT_NE(st.out.find("GPU 0 (0000:1b:00.0): normal"), std::string::npos) << st.out;
  auto js = e.run({"status", "--json"});
  EXPECT_EQ(js.exit_code, 0);
  json j = json::parse(js.out);
  EXPECT_EQ(j["running"], true);
  EXPECT_EQ(j["pid"], e.pid);
  EXPECT_TRUE(j["last_tick"].is_string());
  EXPECT_GE(j["last_tick_age_s"].get<double>(), 0.0);
  EXPECT_EQ(j["status"]["gpus"].size(), 2u);

  ::kill(e.pid, SIGTERM);
  ASSERT_GE(e.wait_exit(30), 0);
  auto after = e.run({"status", "--json"});
  EXPECT_EQ(after.exit_code, 3);
  json a = json::parse(after.out);
  EXPECT_EQ(a["running"], false);
  EXPECT_EQ(a["status"]["state"], "stopped");

  // A stale pid file (a pid that is gone) is reported as such and does not block a start.
  pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  ::waitpid(dead, nullptr, 0);
  write_file(e.state + "/daemon.pid", std::to_string(dead) + "\n", 0600);
  auto stale = e.run({"status"});
  EXPECT_EQ(stale.exit_code, 3);
  EXPECT_NE(stale.out.find("stale pid file"), std::string::npos) << stale.out;
  e.start({"--interval", "0.1"});
  ASSERT_TRUE(wait_until([&] { return e.run({"status"}).exit_code == 0; }, 20)) << e.err();
  ::kill(e.pid, SIGTERM);
  ASSERT_GE(e.wait_exit(30), 0);
  EXPECT_EQ(WEXITSTATUS(e.status), 0);
}

TEST(Daemon, ArtifactsStatusFileAndFixedRate) {
  Env e;
  e.detect();
  write_file(e.state + "/config.yaml", std::string(kConfig) + "utilization_heatmap_enabled: true\n",
             0600);
  auto t0 = Clock::now();
  e.start({"--interval", "0.1"});
  ASSERT_TRUE(wait_until([&] { return e.ticks() >= 1; }, 20)) << e.err();
  auto first = Clock::now();
  EXPECT_FALSE(fs::exists(e.state + "/artifacts/thermal_signature.csv"));
  ASSERT_TRUE(wait_until([&] { return e.ticks() >= 25; }, 20)) << e.err();
  auto at = Clock::now();
  json s = e.status_file();
  // Fixed rate: 24 periods after the first tick (generous bounds for a loaded machine).
  double elapsed = std::chrono::duration<double>(at - first).count();
  EXPECT_GE(elapsed, 2.3);
  (void)t0;
  for (const char* f : {"thermal_signature.csv", "vram_reclamation.json", "fairness_heatmap.csv"})
    EXPECT_TRUE(fs::exists(e.state + "/artifacts/" + f)) << f;
  std::string csv = slurp(e.state + "/artifacts/thermal_signature.csv");
  EXPECT_GE(lines_of(csv).size(), 10u) << csv;
  EXPECT_TRUE(e.has_event("artifacts_written"));
  EXPECT_GE(e.events("tick_stats").size(), 2u);
  auto ts = e.events("tick_stats")[0]["details"];
  EXPECT_TRUE(ts["cpu_ms_avg"].is_number());
  EXPECT_TRUE(ts["source_ms"].is_object());
  EXPECT_EQ(ts["gpus"], 2);

  EXPECT_EQ(s["pid"], e.pid);
  EXPECT_EQ(s["state"], "running");
  EXPECT_EQ(s["interval_s"], 0.1);
  EXPECT_EQ(s["dry_run"], true);
  EXPECT_EQ(s["consent"], false);
  EXPECT_TRUE(s["started_at"].is_string());
  EXPECT_TRUE(s["last_tick"].is_string());
  EXPECT_TRUE(s["tick_ms"].is_number());
  ASSERT_EQ(s["gpus"].size(), 2u);
  EXPECT_EQ(s["gpus"][0]["state"], "normal");
  EXPECT_EQ(s["gpus"][0]["bus_id"], "0000:1b:00.0");
  EXPECT_TRUE(s["gpus"][0]["temperature_c"].is_number());
  ::kill(e.pid, SIGTERM);
  ASSERT_GE(e.wait_exit(30), 0);
  EXPECT_EQ(WEXITSTATUS(e.status), 0);
}

TEST(Daemon, AStuckNvmlCallMakesGpusStaleAndTheLoopGoesOn) {
  Env e;
  e.detect();
  e.env["FAKE_NVML_BLOCK_TEMP_AT_TICK"] = "3";
  e.start({"--interval", "0.1"});
  ASSERT_TRUE(wait_until([&] { return e.has_event("gpu_stale"); }, 20)) << e.log() << e.err();
  uint64_t t = e.ticks();
  ASSERT_TRUE(wait_until([&] { return e.ticks() >= t + 5; }, 10)) << "the loop stopped";
  json s = e.status_file();
  EXPECT_EQ(s["gpus"][0]["stale"], true);
  ::kill(e.pid, SIGTERM);
  double took = e.wait_exit(30);
  ASSERT_GE(took, 0) << "stuck at exit";
  EXPECT_EQ(WEXITSTATUS(e.status), 0) << e.err();
  expect_valid_log(e.log());
}

TEST(Daemon, SignalsAProcessOverItsCapOnlyWithConsentAndTheSwitch) {
  for (int mode : {0, 1, 2}) {  // 0: switch off; 1: switch on, dry run; 2: on + consent
    Env e;
    e.detect();
    pid_t victim = ::fork();
    if (victim == 0) {
      ::execl("/bin/sleep", "sleep", "30", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    write_file(e.tmp / "script.txt",
               "tick 0 0 50 1000 10 100000\nproc 2 0 " + std::to_string(victim) + " 4000 sleep\n");
    write_file(e.state + "/config.yaml",
               std::string(kConfig) + (mode == 0 ? "" : "signal_over_cap: true\n"), 0600);
    if (mode == 2)
      e.start({"--interval", "0.1", "--no-dry-run", "--consent"});
    else
      e.start({"--interval", "0.1"});
    ASSERT_TRUE(wait_until([&] { return e.has_event("process_over_cap"); }, 20)) << e.log();
    int vs = 0;
    bool died =
        wait_until([&] { return ::waitpid(victim, &vs, WNOHANG) == victim; }, mode == 2 ? 5 : 0.5);
    EXPECT_EQ(died, mode == 2) << "mode " << mode;
    if (mode == 2) {
      EXPECT_TRUE(WIFSIGNALED(vs) && WTERMSIG(vs) == SIGTERM);
      auto sig = e.events("process_signalled");
      ASSERT_EQ(sig.size(), 1u);
      EXPECT_EQ(sig[0]["details"]["pid"], victim);
      EXPECT_EQ(sig[0]["details"]["ok"], true);
    } else {
      EXPECT_TRUE(e.events("process_signalled").empty());
      ::kill(victim, SIGKILL);
      ::waitpid(victim, nullptr, 0);
    }
    ::kill(e.pid, SIGTERM);
    ASSERT_GE(e.wait_exit(30), 0);
  }
}

TEST(Daemon, InvalidConfigAtStartIsRefused) {
  Env e;
  e.detect();
  write_file(e.state + "/config.yaml", "signal_over_cap: sometimes\n", 0600);
  auto r = e.run({"start-daemon", "--interval", "0.1"});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("signal_over_cap"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(e.state + "/daemon.pid"));
}

// SPEC §0: a link planted at the pid file or the log is refused; its target is not touched.
TEST(Daemon, PlantedSymlinksAtPidFileAndLogAreRefused) {
  for (const char* name : {"daemon.pid", "logs/daemon.jsonl"}) {
    Env e;
    e.detect();
    std::string victim = e.tmp / "victim";
    write_file(victim, "precious\n", 0644);
    fs::create_directories(e.state + "/logs");
    ASSERT_EQ(::symlink(victim.c_str(), (e.state + "/" + name).c_str()), 0);
    auto r = e.run({"start-daemon", "--interval", "0.1"});
    EXPECT_FALSE(r.timed_out);
    EXPECT_NE(r.exit_code, 0) << name << ": " << r.out << r.err;
    EXPECT_NE(r.err.find("refusing " + e.state + "/" + name + ": it is a symbolic link"),
              std::string::npos)
        << r.err;
    EXPECT_EQ(read_file(victim), "precious\n") << name;
  }
}

// The status file's temporary is a fresh random name created exclusively: a link planted at
// the old fixed name ("daemon_status.json.tmp") is neither truncated nor written through.
TEST(Daemon, PlantedSymlinkAtTheStatusTempNameIsNotFollowed) {
  Env e;
  e.detect();
  std::string victim = e.tmp / "victim";
  write_file(victim, "precious\n", 0644);
  std::string link = e.state + "/daemon_status.json.tmp";
  ASSERT_EQ(::symlink(victim.c_str(), link.c_str()), 0);
  e.start({"--interval", "0.1"});
  ASSERT_TRUE(wait_until([&] { return e.ticks() >= 3; }, 20)) << e.err();
  ::kill(e.pid, SIGTERM);
  ASSERT_GE(e.wait_exit(5), 0);
  EXPECT_EQ(read_file(victim), "precious\n");
  EXPECT_TRUE(fs::is_symlink(link));
  EXPECT_TRUE(e.status_file().is_object());
}

// A FIFO at config.yaml on SIGHUP: the reload fails at once (nothing waits on the FIFO), the
// old config stays, ticks go on and SIGTERM still stops the daemon and restores the limit.
TEST(Daemon, SighupWithAFifoConfigKeepsTicking) {
  Env e;
  e.detect();
  write_file(e.tmp / "script.txt",
             "tick 0 0 50 1000 10 100000\n"
             "tick 2 0 92 1000 90 300000\n");
  e.start({"--interval", "0.1", "--no-dry-run", "--consent"});
  ASSERT_TRUE(wait_until([&] { return e.events("power_limit_lowered").size() >= 2; }, 20))
      << e.log() << e.err();
  ASSERT_EQ(::unlink((e.state + "/config.yaml").c_str()), 0);
  ASSERT_EQ(::mkfifo((e.state + "/config.yaml").c_str(), 0600), 0);
  ::kill(e.pid, SIGHUP);
  ASSERT_TRUE(wait_until([&] { return e.has_event("reload_failed"); }, 10)) << e.log();
  auto f = e.events("reload_failed");
  EXPECT_EQ(f[0]["details"]["what"], "config");
  EXPECT_NE(f[0]["details"]["error"].get<std::string>().find("not a regular file (FIFO)"),
            std::string::npos)
      << f[0];
  uint64_t t = e.ticks();
  ASSERT_TRUE(wait_until([&] { return e.ticks() >= t + 3; }, 10)) << "ticks stopped";
  EXPECT_EQ(e.status_file()["gpus"][0]["cooldown_c"], 80);
  ::kill(e.pid, SIGTERM);
  ASSERT_GE(e.wait_exit(5), 0) << "the daemon did not stop";
  EXPECT_EQ(WEXITSTATUS(e.status), 0) << e.err();
  auto s = e.sets();
  ASSERT_GE(s.size(), 2u);
  EXPECT_EQ(s.back(), "set nvmlDeviceSetPowerManagementLimit 0 700000");
}

// A config.yaml others can write is refused at start: it could steer root's daemon.
TEST(Daemon, ConfigWritableByOthersIsRefusedAtStart) {
  Env e;
  e.detect();
  write_file(e.state + "/config.yaml", kConfig, 0666);
  auto r = e.run({"start-daemon", "--interval", "0.1"});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("writable by other users (mode 0666)"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(e.state + "/daemon.pid"));
}

// ---- In-process pieces ------------------------------------------------------------------------

TEST(DaemonConfig, SignalOverCapSwitch) {
  std::string err;
  EXPECT_EQ(parse_signal_over_cap("", &err), false);
  EXPECT_EQ(parse_signal_over_cap("cooldown_threshold_c: 80\n", &err), false);
  EXPECT_EQ(parse_signal_over_cap("signal_over_cap: true\n", &err), true);
  EXPECT_EQ(parse_signal_over_cap("signal_over_cap: false\n", &err), false);
  EXPECT_FALSE(parse_signal_over_cap("signal_over_cap: 1\n", &err));
  EXPECT_NE(err.find("allowed: true or false"), std::string::npos) << err;
  EXPECT_FALSE(parse_signal_over_cap("signal_over_cap: [\n", &err));
  EXPECT_NE(err.find("not valid YAML"), std::string::npos) << err;
  EXPECT_FALSE(parse_signal_over_cap("- a\n- b\n", &err));
}

TEST(DaemonStatus, NoFilesStalePidAndAnotherProgram) {
  TempDir t;
  auto v = read_daemon_status(t.path());
  EXPECT_FALSE(v.running);
  EXPECT_FALSE(v.pid);
  EXPECT_NE(render_daemon_status(v, 0).find("not running"), std::string::npos);

  // Our own pid is alive but is not the daemon (comm differs): stale.
  write_file(t / "daemon.pid", std::to_string(::getpid()) + "\n");
  v = read_daemon_status(t.path());
  EXPECT_FALSE(v.running);
  EXPECT_TRUE(v.stale_pid_file);
  EXPECT_NE(v.why.find("not the daemon"), std::string::npos) << v.why;

  // The status file names our comm for our pid: running.
  std::string comm = read_file("/proc/self/comm");
  comm.erase(comm.find_last_not_of('\n') + 1);
  json s = {{"pid", ::getpid()},
            {"comm", comm},
            {"state", "running"},
            {"started_at", "2026-11-26T15:00:00.000Z"},
            {"last_tick", "2026-11-26T15:00:10.000Z"},
            {"last_tick_unix", 100.0},
            {"ticks", 10},
            {"interval_s", 1.0},
            {"enforcing", false},
            {"gpus",
             {{{"index", 0},
               {"bus_id", "0000:01:00.0"},
               {"state", "cooling"},
               {"temperature_c", 86.0},
               {"cooldown_c", 83},
               {"resume_c", 70},
               {"lowered_from_w", 700},
               {"lowered_to_w", 630}}}}};
  write_file(t / "daemon_status.json", s.dump());
  v = read_daemon_status(t.path());
  EXPECT_TRUE(v.running) << v.why;
  std::string text = render_daemon_status(v, 102.5);
  EXPECT_NE(text.find("running (pid " + std::to_string(::getpid())), std::string::npos) << text;
  EXPECT_NE(text.find("(2.5 s ago)"), std::string::npos) << text;
  EXPECT_NE(text.find("GPU 0 (0000:01:00.0): cooling, 86 °C"), std::string::npos) << text;
  EXPECT_NE(text.find("lowered 700 -> 630 W"), std::string::npos) << text;
  json j = daemon_status_json(v, 102.5);
  EXPECT_EQ(j["running"], true);
  EXPECT_DOUBLE_EQ(j["last_tick_age_s"].get<double>(), 2.5);

  write_file(t / "daemon_status.json", "{not json");
  v = read_daemon_status(t.path());
  EXPECT_FALSE(v.status_error.empty());
  write_file(t / "daemon.pid", "garbage\n");
  v = read_daemon_status(t.path());
  EXPECT_FALSE(v.running);
  EXPECT_TRUE(v.stale_pid_file);
}

// The sd_notify protocol as systemd sees it: a datagram socket named by NOTIFY_SOCKET (this
// machine runs no systemd, so the test plays its part). libsystemd's real sd_notify sends to it.
TEST(Daemon, NotifiesReadyWatchdogAndStoppingThroughNotifySocket) {
  Env e;
  e.detect();
  std::string path = e.tmp / "notify.sock";
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  ASSERT_LT(path.size(), sizeof sa.sun_path);
  std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  timeval tv{0, 200000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::vector<std::string> got;
  auto receive_until = [&](const std::string& want, double seconds) {
    auto end = Clock::now() + std::chrono::duration<double>(seconds);
    while (Clock::now() < end) {
      char buf[4096];
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) continue;
      got.emplace_back(buf, static_cast<size_t>(n));
      if (got.back().find(want) != std::string::npos) return true;
    }
    return false;
  };
  e.env["NOTIFY_SOCKET"] = path;
  e.start({"--interval", "0.1"});
  ASSERT_TRUE(receive_until("READY=1", 20)) << e.err();
  // READY comes after the first tick, with the main pid and a status line.
  EXPECT_NE(got.back().find("MAINPID=" + std::to_string(e.pid)), std::string::npos) << got.back();
  EXPECT_NE(got.back().find("STATUS=ticking every 0.1 s"), std::string::npos) << got.back();
  EXPECT_TRUE(e.ticks() >= 1u);
  ASSERT_TRUE(receive_until("WATCHDOG=1", 5));
  ASSERT_TRUE(receive_until("WATCHDOG=1", 5));  // one per tick
  ::kill(e.pid, SIGTERM);
  EXPECT_TRUE(receive_until("STOPPING=1", 5));
  EXPECT_GE(e.wait_exit(30), 0);
  EXPECT_EQ(WEXITSTATUS(e.status), 0) << e.err();
  ::close(fd);
}

// The shipped unit passes systemd's own checker without a single warning (unknown keys and
// bad values are warnings, a missing executable an error), pointed at the built binary.
TEST(Deploy, SystemdUnitVerifiesCleanly) {
  if (::access("/usr/bin/systemd-analyze", X_OK) != 0) GTEST_SKIP() << "no systemd-analyze";
  TempDir t;
  std::string unit =
      read_file(std::string(GREY_TEST_SOURCE_DIR) + "/../deploy/grey-gpu-opt.service");
  ASSERT_NE(unit.find("ExecStart=/usr/local/bin/grey-gpu-opt start-daemon"), std::string::npos);
  size_t at;
  while ((at = unit.find("/usr/local/bin/grey-gpu-opt")) != std::string::npos)
    unit.replace(at, std::string("/usr/local/bin/grey-gpu-opt").size(), GREY_BINARY);
  EXPECT_NE(unit.find("Type=notify"), std::string::npos);
  EXPECT_NE(unit.find("WatchdogSec="), std::string::npos);
  write_file(t / "grey-gpu-opt.service", unit);
  auto verify = [&](const std::string& file) {
    PosixRunner r;
    RunOptions o;
    o.timeout = std::chrono::seconds(60);
    return r.run({"/usr/bin/systemd-analyze", "verify", file}, o);
  };
  auto r = verify(t / "grey-gpu-opt.service");
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.err, "") << r.err;
  // The checker does notice a broken unit (so the check above can fail).
  write_file(t / "grey-gpu-opt.service", unit + "\n[Service]\nBogusKey=1\n");
  r = verify(t / "grey-gpu-opt.service");
  EXPECT_NE(r.err.find("BogusKey"), std::string::npos) << r.err;
}

TEST(DaemonInProcess, LogRotatesAndMaxTicksStopsCleanly) {
  Env e;
  e.detect();
  // In this process: the fake NVML through the environment.
  for (const auto& [k, v] : e.env)
    if (k != "PATH") ::setenv(k.c_str(), v.c_str(), 1);
  DaemonOptions o;
  o.interval_s = 0.02;
  o.state_dir = e.state;
  o.sysfs_root = e.sys;
  o.procfs_root = e.tmp / "proc";
  o.max_ticks = 40;
  o.stats_every = 1;  // plenty of lines
  o.log_rotate_bytes = 4000;
  std::ostringstream out, err;
  EXPECT_EQ(run_daemon(o, out, err), 0) << err.str();
  EXPECT_TRUE(fs::exists(e.state + "/logs/daemon.jsonl.1"));
  EXPECT_LE(fs::file_size(e.state + "/logs/daemon.jsonl"), 4000u + 2000u);
  expect_valid_log(slurp(e.state + "/logs/daemon.jsonl"));
  expect_valid_log(slurp(e.state + "/logs/daemon.jsonl.1"));
  EXPECT_EQ(e.status_file()["ticks"], 40);
  EXPECT_EQ(e.status_file()["state"], "stopped");
  EXPECT_FALSE(fs::exists(e.state + "/daemon.pid"));
  for (const auto& [k, v] : e.env)
    if (k != "PATH") ::unsetenv(k.c_str());
}

// ---- node labels (--labels-dir) and the probes (/healthz, /readyz) ---------------------------

TEST(DaemonInProcess, LabelsAreWrittenOnceAndRemovedOnACleanStop) {
  Env e;
  e.detect();
  for (const auto& [k, v] : e.env)
    if (k != "PATH") ::setenv(k.c_str(), v.c_str(), 1);
  std::string dir = e.tmp / "features.d";
  fs::create_directories(dir);
  DaemonOptions o;
  o.interval_s = 0.02;
  o.state_dir = e.state;
  o.sysfs_root = e.sys;
  o.procfs_root = e.tmp / "proc";
  o.max_ticks = 12;
  o.labels_dir = dir;
  std::ostringstream out, err;
  EXPECT_EQ(run_daemon(o, out, err), 0) << err.str();
  for (const auto& [k, v] : e.env)
    if (k != "PATH") ::unsetenv(k.c_str());
  auto written = e.events("labels_written");
  ASSERT_EQ(written.size(), 1u) << "rewritten although nothing changed\n" << e.log();
  const json& labels = written[0]["details"]["labels"];
  EXPECT_EQ(written[0]["details"]["path"], dir + "/grey-gpu-opt");
  EXPECT_NE(std::find(labels.begin(), labels.end(), "grey-gpu-opt/gpu.vendor=nvidia"), labels.end())
      << labels.dump();
  EXPECT_EQ(e.events("labels_removed").size(), 1u) << e.log();
  EXPECT_FALSE(fs::exists(dir + "/grey-gpu-opt")) << "left behind after a clean stop";
  EXPECT_TRUE(fs::is_empty(dir)) << "a temporary file was left";
}

TEST(Daemon, LabelsFollowTheAppliedPlanAndGoOnSigterm) {
  Env e;
  e.detect();
  std::string dir = e.tmp / "features.d";
  fs::create_directories(dir);
  const std::string file = dir + "/grey-gpu-opt";
  e.start({"--interval", "0.1", "--labels-dir", dir});
  ASSERT_TRUE(wait_until([&] { return !slurp(file).empty(); }, 20)) << e.log() << e.err();
  std::string first = slurp(file);
  EXPECT_NE(first.find("grey-gpu-opt/gpu.count="), std::string::npos) << first;
  EXPECT_EQ(first.find("plan.mode"), std::string::npos) << "no plan was applied yet\n" << first;
  // `apply --no-dry-run` writes last_applied_plan.yaml: the daemon adds the plan labels.
  ASSERT_EQ(e.run({"plan"}).exit_code, 0);
  auto a = e.run({"apply", "--no-dry-run"});
  ASSERT_EQ(a.exit_code, 0) << a.err;
  ASSERT_TRUE(
      wait_until([&] { return slurp(file).find("plan.mode=safe") != std::string::npos; }, 20))
      << slurp(file) << e.log();
  uint64_t t = e.ticks();
  ASSERT_TRUE(wait_until([&] { return e.ticks() >= t + 3; }, 20));
  EXPECT_EQ(e.events("labels_written").size(), 2u) << "one write per change, not per tick";
  ::kill(e.pid, SIGTERM);
  ASSERT_GE(e.wait_exit(30), 0);
  EXPECT_EQ(WEXITSTATUS(e.status), 0) << e.err();
  EXPECT_FALSE(fs::exists(file)) << "left behind after SIGTERM";
  EXPECT_TRUE(fs::is_empty(dir));
}

TEST(Daemon, ALabelsDirThatIsNotThereIsRefusedAtStart) {
  Env e;
  e.start({"--labels-dir", e.tmp / "nope"});
  ASSERT_GE(e.wait_exit(30), 0);
  EXPECT_EQ(WEXITSTATUS(e.status), 2);
  EXPECT_NE(e.err().find("--labels-dir"), std::string::npos) << e.err();
}

int http_status(int port, const std::string& path) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  timeval tv{10, 0};  // a hang guard, not a performance assertion
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string req = "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n";
  std::string all;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0 &&
      ::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
    char buf[1024];
    for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;)
      all.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return all.rfind("HTTP/1.1 ", 0) == 0 ? std::stoi(all.substr(9, 3)) : -1;
}

// Liveness must not depend on the GPUs answering: with NVML stuck in a call, the GPU's samples
// go stale, the ticks go on, and /healthz stays 200.
TEST(Daemon, HealthzStaysUpWhileAnNvmlCallHangs) {
  Env e;
  e.detect();
  e.env["FAKE_NVML_BLOCK_TEMP_AT_TICK"] = "3";
  e.start({"--interval", "0.1", "--metrics-listen", "127.0.0.1:0"});
  int port = 0;
  ASSERT_TRUE(wait_until(
      [&] {
        std::string o = e.out();
        auto p = o.find("(port ");
        if (p == std::string::npos) return false;
        port = std::atoi(o.c_str() + p + 6);
        return port > 0;
      },
      20))
      << e.out() << e.err();
  ASSERT_TRUE(wait_until([&] { return e.has_event("gpu_stale"); }, 20)) << e.log() << e.err();
  uint64_t t = e.ticks();
  ASSERT_TRUE(wait_until([&] { return e.ticks() >= t + 3; }, 10)) << "the loop stopped";
  EXPECT_EQ(e.status_file()["gpus"][0]["stale"], true);
  EXPECT_EQ(http_status(port, "/healthz"), 200);
  EXPECT_EQ(http_status(port, "/readyz"), 200);
  ::kill(e.pid, SIGTERM);
  ASSERT_GE(e.wait_exit(30), 0);
}

}  // namespace
}  // namespace grey
