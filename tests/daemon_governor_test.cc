// The daemon's enforcement path, in process: the governor (daemon/governor.h) decides, the
// PowerEnforcer carries its power actions out through the applier (enforce/applier.h) against
// fake devices, tick by tick. No clock and no sleeps: a tick is one call to Governor::step, or
// (DaemonInProcess) one Daemon::tick() with a manual clock, fake telemetry and fake devices
// given to the daemon as its doors.
//
// The golden list of writes lives in tests/fixtures/golden/governor-8gpu.json. To rewrite it
// after a deliberate change:   GREY_UPDATE_GOLDEN=1 <this test>   and review the diff by eye.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "daemon/daemon.h"
#include "daemon/daemon_status.h"
#include "daemon/governor.h"
#include "detect/spec_store.h"
#include "enforce/applier.h"
#include "enforce/journal.h"
#include "plan/plan_io.h"
#include "test_util.h"
#include "util/clock.h"
#include "util/host_fs.h"
#include "util/lib_loader.h"

namespace grey {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string bus_of(int gpu) {
  return "0000:0" + std::to_string(gpu + 1) + ":00.0";
}

// N NVIDIA-like devices (limit 300 W, range 150..350 W, default 300 W) answering power-limit
// reads and writes by bus id; every write attempt is recorded in order.
class FakeDevices : public DeviceControl {
 public:
  explicit FakeDevices(int n) {
    for (int i = 0; i < n; ++i) limit_w[bus_of(i)] = 300;
  }
  ReadResult read(const SettingRef& ref) override {
    ++reads;
    auto it = limit_w.find(ref.bus_id);
    if (it == limit_w.end() || ref.setting != kSettingPowerLimit)
      return ReadResult{std::nullopt, "no such device"};
    return ReadResult{watts_text(it->second), ""};
  }
  std::string write(const SettingRef& ref, const std::string& value) override {
    bool refuse = deny.count(ref.bus_id) > 0;
    writes.push_back({{"tick", tick},
                      {"bus_id", ref.bus_id},
                      {"setting", ref.setting},
                      {"value", value},
                      {"mechanism", ref.mechanism},
                      {"ok", !refuse}});
    if (refuse)
      return "nvmlDeviceSetPowerManagementLimit failed: NVML_ERROR_NO_PERMISSION (4): "
             "Insufficient Permissions";
    limit_w[ref.bus_id] = std::stod(value);
    return "";
  }
  std::map<std::string, double> limit_w;
  std::set<std::string> deny;
  json writes = json::array();
  int tick = 0;
  int reads = 0;
};

PowerTarget nvml_target(int gpu) {
  PowerTarget t;
  t.bus_id = bus_of(gpu);
  t.uuid = "GPU-fake-" + std::to_string(gpu);
  t.mechanism_kind = "nvml";
  return t;
}

GovernorInput input(int gpu, double temp, const FakeDevices& dev) {
  GovernorInput in;
  in.gpu = gpu;
  in.temperature_c = temp;
  in.power_limit_w = dev.limit_w.at(bus_of(gpu));
  in.min_w = 150;
  in.max_w = 350;
  in.default_w = 300;
  return in;
}

// Governor + enforcer + event record: what the daemon's tick does with the decisions.
struct Rig {
  explicit Rig(const std::string& journal_path, int n = 1)
      : dev(n), journal(journal_path), enforcer(dev, journal) {}
  void run(const std::vector<GovernorDecision>& ds) {
    for (const auto& d : ds)
      for (auto& e : enforcer.carry_out(d, nvml_target(d.gpu), governor)) events.push_back(e);
  }
  void tick(const std::vector<GovernorInput>& in) { run(governor.step(in)); }
  void stop() {
    run(governor.release_all("the daemon is stopping (test)"));
    for (int gpu : enforcer.gpus_with_writes())
      for (auto& e : enforcer.restore(gpu, "the daemon is stopping (test)")) events.push_back(e);
  }
  std::vector<EnforceEvent> named(const std::string& name) const {
    std::vector<EnforceEvent> out;
    for (const auto& e : events)
      if (e.event == name) out.push_back(e);
    return out;
  }
  FakeDevices dev;
  Journal journal;
  PowerEnforcer enforcer;
  Governor governor;
  std::vector<EnforceEvent> events;
};

std::map<std::string, int> journal_ops(const std::string& path) {
  std::map<std::string, int> ops;
  std::string text = fs::exists(path) ? test::read_file(path) : "";
  size_t at = 0;
  while (at < text.size()) {
    size_t nl = text.find('\n', at);
    if (nl == std::string::npos) nl = text.size();
    json j = json::parse(text.substr(at, nl - at), nullptr, false);
    if (j.is_object() && j.contains("op")) ops[j["op"].get<std::string>()]++;
    at = nl + 1;
  }
  return ops;
}

TEST(DaemonGovernor, AJournalThatCannotBeWrittenLeavesTheDeviceUntouched) {
  test::TempDir tmp;
  // The journal's directory does not exist: no line can be made durable.
  Rig rig(tmp / "no-such-dir/journal.jsonl");
  rig.tick({input(0, 90, rig.dev)});
  EXPECT_TRUE(rig.dev.writes.empty()) << rig.dev.writes.dump(1);
  EXPECT_EQ(rig.dev.limit_w.at(bus_of(0)), 300);
  auto jf = rig.named("journal_write_failed");
  ASSERT_EQ(jf.size(), 1u);
  EXPECT_TRUE(jf[0].error);
  EXPECT_EQ(jf[0].details["line"], "set");
  EXPECT_EQ(jf[0].details["device_written"], false);
  EXPECT_NE(jf[0].line.find("the power limit was not changed"), std::string::npos) << jf[0].line;
  auto failed = rig.named("power_limit_failed");
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_TRUE(failed[0].error);
  EXPECT_TRUE(rig.named("power_limit_lowered").empty());
  // The governor forgot the step that was not taken: it holds no target of its own.
  ASSERT_NE(rig.governor.gpu(0), nullptr);
  EXPECT_FALSE(rig.governor.gpu(0)->target_w.has_value());
  EXPECT_TRUE(rig.enforcer.gpus_with_writes().empty());
  // Still hot: the next tick tries again, and again touches nothing.
  rig.tick({input(0, 90, rig.dev)});
  EXPECT_TRUE(rig.dev.writes.empty());
  EXPECT_EQ(rig.named("journal_write_failed").size(), 2u);
  rig.stop();
  EXPECT_TRUE(rig.dev.writes.empty());
}

TEST(DaemonGovernor, StepsAreJournaledAndOneRestoreWritesTheOriginalBack) {
  test::TempDir tmp;
  const std::string jp = tmp / "journal.jsonl";
  Rig rig(jp);
  for (int i = 0; i < 3; ++i) rig.tick({input(0, 90, rig.dev)});
  ASSERT_EQ(rig.named("power_limit_lowered").size(), 3u);
  EXPECT_EQ(rig.dev.limit_w.at(bus_of(0)), 210);
  EXPECT_EQ(journal_ops(jp), (std::map<std::string, int>{{"set", 3}, {"result", 3}}));
  rig.stop();
  // Three steps down, one write back up to the limit before the first step.
  ASSERT_EQ(rig.dev.writes.size(), 4u) << rig.dev.writes.dump(1);
  EXPECT_EQ(rig.dev.writes[3]["value"], "300");
  EXPECT_EQ(rig.dev.limit_w.at(bus_of(0)), 300);
  auto restored = rig.named("power_limit_restored");
  ASSERT_EQ(restored.size(), 1u);
  EXPECT_EQ(restored[0].details["status"], kRestoreRestored);
  EXPECT_EQ(restored[0].details["to_w"], "300");
  EXPECT_EQ(restored[0].details["journal_ids"].size(), 3u);
  EXPECT_EQ(journal_ops(jp),
            (std::map<std::string, int>{{"set", 3}, {"result", 3}, {"restore", 3}}));
  // Every set is settled: `restore` finds nothing to undo.
  RestoreOutcome later = restore(rig.journal, rig.dev, false);
  EXPECT_TRUE(later.success);
  EXPECT_TRUE(later.steps.empty());
  EXPECT_EQ(rig.dev.writes.size(), 4u);
}

TEST(DaemonGovernor, RestoreSetsLeavesOtherRunsEntriesAlone) {
  test::TempDir tmp;
  const std::string jp = tmp / "journal.jsonl";
  FakeDevices dev(2);
  Journal journal(jp);
  // An earlier run (apply) lowered GPU 1 and never restored it.
  Action a = governor_set_action(
      GovernorDecision{
          1, GovState::kNormal, GovState::kCooling, "", {PowerAction::Kind::kSet, 300, 250}},
      nvml_target(1), 1);
  ApplyOutcome o = apply_actions({a}, dev, journal, false);
  ASSERT_EQ(o.actions[0].status, kApplied);
  Rig rig(jp, 2);
  rig.dev.limit_w = dev.limit_w;
  rig.tick({input(0, 90, rig.dev)});
  rig.stop();
  EXPECT_EQ(rig.dev.limit_w.at(bus_of(0)), 300);
  EXPECT_EQ(rig.dev.limit_w.at(bus_of(1)), 250);  // not ours: left for `grey-gpu-opt restore`
  RestoreOutcome later = restore(rig.journal, rig.dev, true);
  ASSERT_EQ(later.steps.size(), 1u);
  EXPECT_EQ(later.steps[0].bus_id, bus_of(1));
}

TEST(DaemonGovernor, AWriteTheDeviceRefusesIsUndoneInTheGovernorAndSettled) {
  test::TempDir tmp;
  const std::string jp = tmp / "journal.jsonl";
  Rig rig(jp);
  rig.dev.deny.insert(bus_of(0));
  rig.tick({input(0, 90, rig.dev)});
  ASSERT_EQ(rig.dev.writes.size(), 1u);
  EXPECT_EQ(rig.dev.writes[0]["ok"], false);
  ASSERT_EQ(rig.named("power_limit_failed").size(), 1u);
  EXPECT_FALSE(rig.governor.gpu(0)->target_w.has_value());
  // The failed set line is settled right away (the device holds the old value).
  EXPECT_EQ(journal_ops(jp),
            (std::map<std::string, int>{{"set", 1}, {"result", 1}, {"restore", 1}}));
  RestoreOutcome later = restore(rig.journal, rig.dev, true);
  EXPECT_TRUE(later.steps.empty());
}

// The scripted temperatures (°C) of 8 GPUs over 12 ticks; cooldown 80, resume 65, 3 samples
// to resume, steps of 30 W (10% of the 300 W default), minimum 150 W. GPU 5 is preemptive
// (trigger 77). kStale: a stale sample that tick.
constexpr double kStale = -1;
const std::vector<std::vector<double>> kScript = {
    // GPU 0: stays cool: no writes.
    {50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50},
    // GPU 1: three steps down, cools; the stale sample at tick 5 does not count: resumes at 7.
    {50, 85, 86, 84, 60, kStale, 60, 60, 50, 50, 50, 50},
    // GPU 2: hysteresis: between resume and trigger nothing moves; 66 and 70 restart the count.
    {70, 82, 72, 79, 64, 66, 64, 63, 70, 62, 61, 60},
    // GPU 3: hot throughout: steps down to the 150 W minimum, then holds; restored at stop.
    {90, 90, 90, 90, 90, 90, 90, 90, 90, 90, 90, 90},
    // GPU 4: the thresholds are inclusive: 79.9 does nothing, 80 steps, 65 counts as cool.
    {79, 79.9, 80, 79.9, 65, 65, 65, 66, 50, 50, 50, 50},
    // GPU 5 (preemptive, trigger 77): 77 steps, 76 does not, 78 steps again; never cool enough
    // to resume (66 > 65): restored at stop.
    {76, 77, 76, 78, 70, 70, 70, 70, 66, 66, 66, 66},
    // GPU 6: the device refuses every write: attempts recorded, nothing to restore.
    {85, 85, 60, 60, 60, 50, 50, 50, 50, 50, 50, 50},
    // GPU 7: one step, then someone else sets 250 W (tick 5): left alone at stop.
    {88, 75, 75, 75, 75, 75, 75, 75, 75, 75, 75, 75},
};

json run_script(const std::string& journal_path) {
  Rig rig(journal_path, 8);
  for (int gpu = 0; gpu < 8; ++gpu) {
    GovernorConfig c;
    c.cooldown_c = 80;
    c.resume_c = 65;
    c.resume_samples = 3;
    c.preemptive = gpu == 5;
    rig.governor.configure(gpu, c);
  }
  rig.dev.deny.insert(bus_of(6));
  json events = json::array();
  auto note_events = [&](int tick, size_t from) {
    for (size_t i = from; i < rig.events.size(); ++i) {
      const EnforceEvent& e = rig.events[i];
      json j = {{"tick", tick}, {"gpu", e.details.value("gpu", -1)}, {"event", e.event}};
      if (e.details.contains("status")) j["status"] = e.details["status"];
      events.push_back(j);
    }
  };
  const int ticks = static_cast<int>(kScript[0].size());
  for (int t = 0; t < ticks; ++t) {
    rig.dev.tick = t;
    if (t == 5) rig.dev.limit_w[bus_of(7)] = 250;  // outside the daemon
    std::vector<GovernorInput> in;
    for (int gpu = 0; gpu < 8; ++gpu) {
      GovernorInput i = input(gpu, kScript[gpu][t], rig.dev);
      i.stale = kScript[gpu][t] == kStale;
      in.push_back(i);
    }
    size_t before = rig.events.size();
    rig.tick(in);
    note_events(t, before);
  }
  rig.dev.tick = ticks;  // the stop
  size_t before = rig.events.size();
  rig.stop();
  note_events(ticks, before);
  json limits = json::object();
  for (const auto& [bus, w] : rig.dev.limit_w) limits[bus] = watts_text(w);
  return json{{"writes", rig.dev.writes}, {"events", events}, {"limits_after_stop", limits}};
}

// Compares with tests/fixtures/golden/<name>.json (or rewrites it with GREY_UPDATE_GOLDEN=1).
void expect_golden(const std::string& name, const json& got) {
  std::string path = std::string(GREY_TEST_SOURCE_DIR) + "/fixtures/golden/" + name + ".json";
  const char* update = std::getenv("GREY_UPDATE_GOLDEN");
  if (update && std::string(update) == "1") {
    fs::create_directories(fs::path(path).parent_path());
    test::write_file(path, got.dump(2) + "\n");
  }
  json want = json::parse(test::read_file(path), nullptr, false);
  ASSERT_FALSE(want.is_discarded()) << path << " is not JSON";
  EXPECT_EQ(got, want) << "golden " << path << " differs; got:\n" << got.dump(2);
}

// ---- The whole daemon, in process ---------------------------------------------------------

// The daemon's doors onto FakeDevices: probe and power-limit control ...
class FakePowerControl : public PowerControl {
 public:
  explicit FakePowerControl(FakeDevices& dev) : dev_(dev) {}
  DeviceState probe(const std::string& bus_id, const std::string&,
                    const std::optional<std::string>&) override {
    DeviceState s;
    s.bus_id = bus_id;
    s.nvml = dev_.limit_w.count(bus_id) > 0;
    if (s.nvml) s.power_limit_w = dev_.limit_w.at(bus_id);
    s.power_min_w = 150;
    s.power_max_w = 350;
    return s;
  }
  ReadResult read(const SettingRef& ref) override { return dev_.read(ref); }
  std::string write(const SettingRef& ref, const std::string& value) override {
    return dev_.write(ref, value);
  }

 private:
  FakeDevices& dev_;
};

// ... and telemetry: the scripted temperature of each GPU at dev.tick, its limit as it is now.
class ScriptedTelemetry : public TelemetrySource {
 public:
  ScriptedTelemetry(FakeDevices& dev, std::vector<ProcessSample>* processes)
      : dev_(dev), processes_(processes) {}
  TelemetrySnapshot sample() override {
    TelemetrySnapshot s;
    for (int gpu = 0; gpu < static_cast<int>(kScript.size()); ++gpu) {
      GpuSample g;
      g.index = gpu;
      g.bus_id = bus_of(gpu);
      g.backend = "nvml";
      const double t = kScript[gpu][std::min<size_t>(dev_.tick, kScript[gpu].size() - 1)];
      if (t == kStale) {
        g.stale = true;
      } else {
        g.temperature_c = t;
        g.power_limit_w = dev_.limit_w.at(bus_of(gpu));
        g.power_limit_min_w = 150;
        g.power_limit_max_w = 350;
      }
      s.gpus.push_back(g);
    }
    if (processes_) s.processes = *processes_;
    return s;
  }

 private:
  FakeDevices& dev_;
  std::vector<ProcessSample>* processes_;
};

// A state directory with the 8 GPUs' spec and an applied plan (cooldown 80, resume 65; GPU 5
// preemptive), and a daemon whose doors are all fakes: devices, telemetry, a manual clock.
struct InProcess {
  test::TempDir tmp;
  std::string state = tmp / "state";
  FakeDevices dev{8};
  std::vector<ProcessSample> processes;
  std::vector<std::pair<int, int>> signalled;  // (pid, signal) through the door
  std::shared_ptr<ManualTimeSource> clock = std::make_shared<ManualTimeSource>(
      WallTime{} + std::chrono::seconds(1796126400));  // 2026-12-01T12:00:00Z
  std::ostringstream out, err;
  std::unique_ptr<Daemon> daemon;
  size_t log_lines_seen = 0;

  explicit InProcess(std::optional<int64_t> cap_mb = std::nullopt) {
    fs::create_directories(state);
    ::chmod(state.c_str(), 0700);
    std::vector<GpuSpec> specs;
    Plan plan;
    plan.generated_at = "2026-12-01T11:00:00Z";
    for (int gpu = 0; gpu < 8; ++gpu) {
      GpuSpec g;
      g.index = gpu;
      g.f.vendor = "nvidia";
      g.f.model = "Fake GPU";
      g.f.bus_id = bus_of(gpu);
      g.f.uuid = "GPU-fake-" + std::to_string(gpu);
      g.f.kernel_driver = "nvidia";
      g.f.power_limit_w = 300;
      g.f.power_limit_default_w = 300;
      g.f.power_limit_min_w = 150;
      g.f.power_limit_max_w = 350;
      specs.push_back(g);
      GpuPlan gp;
      gp.index = gpu;
      gp.device_id = bus_of(gpu);
      gp.uuid = g.f.uuid;
      gp.cooldown_threshold_c = 80;
      gp.resume_threshold_c = 65;
      gp.preemptive_throttle = gpu == 5;
      gp.per_process_vram_cap_mb = cap_mb;
      plan.gpus.push_back(gp);
    }
    EXPECT_EQ(save_specs(state, specs), "");
    test::write_file(state + "/last_applied_plan.yaml", plan_to_yaml(plan), 0600);
    dev.deny.insert(bus_of(6));
  }
  DaemonOptions options() const {
    DaemonOptions o;
    o.state_dir = state;
    o.dry_run = false;
    o.consent = true;
    o.artifacts_every = 0;
    return o;
  }
  DaemonDoors doors() {
    DaemonDoors d;
    d.clock = clock;
    d.telemetry = [this](const std::vector<GpuSpec>&, std::chrono::milliseconds) {
      return std::make_unique<ScriptedTelemetry>(dev, &processes);
    };
    d.control = [this] { return std::make_unique<FakePowerControl>(dev); };
    d.signal_process = [this](int pid, int sig) {
      signalled.push_back({pid, sig});
      return 0;
    };
    return d;
  }
  int start(DaemonOptions o) {
    daemon = std::make_unique<Daemon>(o, doors(), out, err);
    return daemon->start();
  }
  // The log lines written since the last call.
  std::vector<json> new_log_lines() {
    std::vector<json> got;
    std::istringstream in(test::read_file(daemon_log_path(state)));
    size_t n = 0;
    for (std::string l; std::getline(in, l); ++n)
      if (n >= log_lines_seen) got.push_back(json::parse(l));
    log_lines_seen = n;
    return got;
  }
};

// The PowerEnforcer's events, as run_script notes them.
void note_daemon_events(InProcess& p, int tick, json& events) {
  static const std::set<std::string> kEnforcer = {
      "power_limit_lowered",  "power_limit_failed",         "power_limit_unchanged",
      "power_limit_restored", "power_limit_restore_failed", "journal_write_failed"};
  for (const json& l : p.new_log_lines()) {
    if (!kEnforcer.count(l["event"].get<std::string>())) continue;
    json j = {{"tick", tick}, {"gpu", l["details"].value("gpu", -1)}, {"event", l["event"]}};
    if (l["details"].contains("status")) j["status"] = l["details"]["status"];
    events.push_back(j);
  }
}

TEST(DaemonInProcess, GoldenWritesOfEightGpusTickByTickWithAFakeClock) {
  InProcess p;
  ASSERT_EQ(p.start(p.options()), 0) << p.err.str();
  json events = json::array();
  note_daemon_events(p, -1, events);
  EXPECT_TRUE(events.empty()) << events.dump(1);
  const int ticks = static_cast<int>(kScript[0].size());
  for (int t = 0; t < ticks; ++t) {
    p.dev.tick = t;
    if (t == 5) p.dev.limit_w[bus_of(7)] = 250;  // outside the daemon
    p.daemon->tick();
    note_daemon_events(p, t, events);
    p.clock->advance(std::chrono::seconds(1));
  }
  p.dev.tick = ticks;
  p.daemon->stop("test");
  note_daemon_events(p, ticks, events);
  json limits = json::object();
  for (const auto& [bus, w] : p.dev.limit_w) limits[bus] = watts_text(w);
  // The same writes, events and end state as the governor and the enforcer alone.
  expect_golden("governor-8gpu",
                json{{"writes", p.dev.writes}, {"events", events}, {"limits_after_stop", limits}});
  // Its time is the clock it was given: the last status and log line are 12 s after the start.
  json status = json::parse(test::read_file(daemon_status_path(p.state)));
  EXPECT_EQ(status["state"], "stopped");
  EXPECT_EQ(status["stopped_at"], "2026-12-01T12:00:12.000Z");
  EXPECT_EQ(status["ticks"], 12);
  std::istringstream log(test::read_file(daemon_log_path(p.state)));
  std::string first, last;
  for (std::string l; std::getline(log, l); last = l)
    if (first.empty()) first = l;
  EXPECT_EQ(json::parse(first)["timestamp"], "2026-12-01T12:00:00.000Z");
  EXPECT_EQ(json::parse(last)["timestamp"], "2026-12-01T12:00:12.000Z");
  EXPECT_EQ(json::parse(last)["event"], "daemon_stopped");
  // Everything it wrote is settled in the journal.
  FakeDevices dev(8);
  Journal journal(Journal::path_in(p.state));
  RestoreOutcome later = restore(journal, dev, true);
  EXPECT_TRUE(later.steps.empty()) << later.to_json().dump(1);
}

// SPEC §9 through the daemon's own collector (no telemetry door): while all eight NVIDIA GPUs
// are runtime-suspended NVML is never initialised and the status says "suspended"; after they
// wake by themselves the next tick samples them through NVML.
TEST(DaemonInProcess, SuspendedGpusAreWatchedNotWokenAndSampledAfterWaking) {
  InProcess p;
  test::TempDir sys;
  std::string calls = sys / "nvml-calls";
  auto status = [&](const std::string& v) {
    for (int gpu = 0; gpu < 8; ++gpu)
      test::write_file(sys / ("bus/pci/devices/" + bus_of(gpu) + "/power/runtime_status"),
                       v + "\n");
  };
  status("suspended");
  ::setenv("GREY_NVML_LIBRARY", GREY_FAKE_LIB_DIR "/fake_nvml.so", 1);
  ::setenv("FAKE_NVML_CALLS", calls.c_str(), 1);
  ::setenv("FAKE_NVML_GPUS", "8", 1);
  DaemonDoors d = p.doors();
  d.telemetry = nullptr;
  d.fs = std::make_shared<RootedFs>(sys.path(), sys / "proc");
  d.loader = std::make_shared<DlLoader>();
  p.daemon = std::make_unique<Daemon>(p.options(), d, p.out, p.err);
  ASSERT_EQ(p.daemon->start(), 0) << p.err.str();
  for (int t = 0; t < 3; ++t) {
    p.daemon->tick();
    p.clock->advance(std::chrono::seconds(1));
  }
  EXPECT_FALSE(fs::exists(calls)) << "nvmlInit was called while every NVIDIA GPU slept";
  json st = json::parse(test::read_file(daemon_status_path(p.state)));
  ASSERT_EQ(st["gpus"].size(), 8u) << st.dump(1);
  for (const auto& g : st["gpus"]) {
    EXPECT_EQ(g.value("power_state", ""), "suspended") << g.dump();
    EXPECT_TRUE(g["temperature_c"].is_null()) << g.dump();
  }
  status("active");
  p.daemon->tick();
  EXPECT_TRUE(fs::exists(calls));
  json woke = json::parse(test::read_file(daemon_status_path(p.state)));
  bool sampled = false;
  for (const auto& g : woke["gpus"]) {
    EXPECT_NE(g.value("power_state", ""), "suspended") << g.dump();
    sampled = sampled || g["temperature_c"].is_number();
  }
  EXPECT_TRUE(sampled) << woke.dump(1);
  p.daemon->stop("test");
  for (const char* v : {"GREY_NVML_LIBRARY", "FAKE_NVML_CALLS", "FAKE_NVML_GPUS"}) ::unsetenv(v);
}

// One path for every power write (the applier): a journal line that cannot be written means the
// device is not touched, and the daemon logs it as an error.
TEST(DaemonInProcess, AJournalThatCannotBeWrittenMeansNoPowerWrite) {
  InProcess p;
  fs::create_directories(Journal::path_in(p.state));  // a directory: no line can be appended
  ASSERT_EQ(p.start(p.options()), 0) << p.err.str();
  for (int t = 0; t < 4; ++t) {
    p.dev.tick = t;
    p.daemon->tick();
    p.clock->advance(std::chrono::seconds(1));
  }
  p.daemon->stop("test");
  EXPECT_TRUE(p.dev.writes.empty()) << "a power limit was written without its journal line\n"
                                    << p.dev.writes.dump(1);
  std::vector<json> failed, lowered, journal_failed;
  for (const json& l : p.new_log_lines()) {
    if (l["event"] == "journal_write_failed") journal_failed.push_back(l["details"]);
    if (l["event"] == "power_limit_failed") failed.push_back(l["details"]);
    if (l["event"] == "power_limit_lowered") lowered.push_back(l["details"]);
  }
  ASSERT_FALSE(journal_failed.empty());
  EXPECT_EQ(journal_failed[0]["line"], "set");
  EXPECT_EQ(journal_failed[0]["device_written"], false);
  EXPECT_EQ(failed.size(), journal_failed.size());
  EXPECT_TRUE(lowered.empty());
  EXPECT_NE(p.err.str().find("the power limit was not changed"), std::string::npos) << p.err.str();
}

TEST(DaemonInProcess, ADaemonDroppedWithoutStopRestoresWhatItLowered) {
  InProcess p;
  ASSERT_EQ(p.start(p.options()), 0) << p.err.str();
  p.dev.tick = 0;
  p.daemon->tick();  // GPU 3 at 90 °C: one step down
  ASSERT_EQ(p.dev.limit_w.at(bus_of(3)), 270) << p.dev.writes.dump(1);
  p.daemon.reset();
  EXPECT_EQ(p.dev.limit_w.at(bus_of(3)), 300) << p.dev.writes.dump(1);
  EXPECT_NE(p.out.str().find("daemon stopped (the daemon object was destroyed"), std::string::npos)
      << p.out.str();
  EXPECT_FALSE(fs::exists(p.state + "/daemon.pid"));
}

// run() itself on the manual clock: the waits between ticks advance the clock, the signals come
// from a script, and a slow sample is an overrun that skips the missed slots. No real waiting.
TEST(DaemonInProcess, RunTicksOnTheClockItIsGivenReloadsOnSighupStopsOnSigterm) {
  InProcess p;
  DaemonOptions o = p.options();
  o.interval_s = 1;
  DaemonDoors d = p.doors();
  int waits = 0;
  std::vector<double> wait_s;
  struct Slow : TelemetrySource {
    std::unique_ptr<TelemetrySource> inner;
    ManualTimeSource* clock = nullptr;
    int n = 0;
    TelemetrySnapshot sample() override {
      if (++n == 3) clock->advance(std::chrono::milliseconds(2500));  // the third is slow
      return inner->sample();
    }
  };
  auto telemetry = d.telemetry;
  d.telemetry = [&](const std::vector<GpuSpec>& specs, std::chrono::milliseconds deadline) {
    auto s = std::make_unique<Slow>();
    s->inner = telemetry(specs, deadline);
    s->clock = p.clock.get();
    return s;
  };
  d.wait_signal = [&](std::chrono::nanoseconds left) {
    ++waits;
    wait_s.push_back(std::chrono::duration<double>(left).count());
    if (waits == 2) return SIGHUP;  // after tick 2, before its wait
    p.clock->advance(left);
    return waits == 5 ? SIGTERM : 0;  // during the wait after tick 4
  };
  p.daemon = std::make_unique<Daemon>(o, d, p.out, p.err);
  ASSERT_EQ(p.daemon->run(), 0) << p.err.str();
  // Waits: 1 s after tick 1; after tick 2 a SIGHUP, then the whole second; tick 3 took 2.5 s,
  // so the slots at 3 s and 4 s are skipped and it waits 0.5 s for the one at 5 s; after tick 4
  // the SIGTERM comes during the wait.
  EXPECT_EQ(wait_s, (std::vector<double>{1, 1, 1, 0.5, 1})) << json(wait_s).dump();
  json status = json::parse(test::read_file(daemon_status_path(p.state)));
  EXPECT_EQ(status["ticks"], 4);
  EXPECT_EQ(status["overruns"], 1);
  EXPECT_EQ(status["stopped_at"], "2026-12-01T12:00:06.000Z");
  std::map<std::string, json> last;
  for (const json& l : p.new_log_lines()) last[l["event"]] = l["details"];
  ASSERT_TRUE(last.count("tick overrun"));
  EXPECT_EQ(last["tick overrun"]["skipped_slots"], 2);
  EXPECT_EQ(last["tick overrun"]["tick"], 3);
  ASSERT_TRUE(last.count("reload"));
  EXPECT_EQ(last["daemon_stopped"]["reason"], "SIGTERM");
  EXPECT_EQ(last["daemon_stopped"]["ticks"], 4);
}

TEST(DaemonInProcess, ADryRunNeverCallsTheDeviceDoor) {
  InProcess p;
  DaemonOptions o = p.options();
  o.dry_run = true;
  bool made = false;
  DaemonDoors d = p.doors();
  d.control = [&] {
    made = true;
    return std::make_unique<FakePowerControl>(p.dev);
  };
  p.daemon = std::make_unique<Daemon>(o, d, p.out, p.err);
  ASSERT_EQ(p.daemon->start(), 0) << p.err.str();
  for (int t = 0; t < 4; ++t) {
    p.dev.tick = t;
    p.daemon->tick();
  }
  p.daemon->stop("test");
  EXPECT_FALSE(made);
  EXPECT_TRUE(p.dev.writes.empty());
  EXPECT_NE(p.out.str().find("[DRY-RUN] would lower GPU 3 power limit from 300 W to 270 W"),
            std::string::npos)
      << p.out.str();
}

TEST(DaemonInProcess, AProcessAboveItsCapIsSignalledThroughTheDoor) {
  InProcess p(1000);
  DaemonOptions o = p.options();
  o.signal_over_cap = true;
  ASSERT_EQ(p.start(o), 0) << p.err.str();
  ProcessSample hog;
  hog.pid = 4242;
  hog.command = "hog";
  hog.gpu_index = 0;
  hog.gpu_bus_id = bus_of(0);
  hog.vram_mb = 2000;
  hog.backend = "nvml";
  p.processes = {hog};
  p.daemon->tick();
  p.daemon->tick();  // still over: signalled once
  p.daemon->stop("test");
  EXPECT_EQ(p.signalled, (std::vector<std::pair<int, int>>{{4242, SIGTERM}}));
}

TEST(DaemonInProcess, TheStatusFileIsNeverWrittenThroughASymlink) {
  InProcess p;
  const std::string target = p.tmp / "elsewhere.txt";
  test::write_file(target, "untouched\n");
  ASSERT_EQ(::symlink(target.c_str(), daemon_status_path(p.state).c_str()), 0);
  ASSERT_EQ(p.start(p.options()), 0) << p.err.str();
  p.daemon->tick();
  p.daemon->stop("test");
  EXPECT_EQ(test::read_file(target), "untouched\n");
  struct stat st {};
  ASSERT_EQ(::lstat(daemon_status_path(p.state).c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode)) << "the link was replaced";
  bool logged = false;
  std::istringstream log(test::read_file(daemon_log_path(p.state)));
  for (std::string l; std::getline(log, l);)
    logged = logged || json::parse(l)["event"] == "status_write_failed";
  EXPECT_TRUE(logged);
}

TEST(DaemonGovernor, GoldenWritesOfEightGpusOverAScriptedTemperatureSequence) {
  test::TempDir tmp;
  json got = run_script(tmp / "journal.jsonl");
  expect_golden("governor-8gpu", got);
  // The same script on a fresh journal gives the same writes (nothing depends on the clock).
  test::TempDir tmp2;
  EXPECT_EQ(run_script(tmp2 / "journal.jsonl")["writes"], got["writes"]);
  // Every GPU ends where it started, except GPU 7, which someone else changed.
  for (int gpu = 0; gpu < 8; ++gpu)
    EXPECT_EQ(got["limits_after_stop"][bus_of(gpu)], gpu == 7 ? "250" : "300") << gpu;
  // Whatever the daemon wrote is settled in the journal.
  FakeDevices dev(8);
  Journal journal(tmp / "journal.jsonl");
  RestoreOutcome later = restore(journal, dev, true);
  EXPECT_TRUE(later.steps.empty()) << later.to_json().dump(1);
}

}  // namespace
}  // namespace grey

namespace grey {
namespace {

// ---- The governor on AMD and Intel: real sysfs trees, the real telemetry and control --------

// No vendor library loads (an AMD or Intel host has no NVML).
class NoLibraries : public LibLoader {
 public:
  LoadResult load(const std::string& soname, const std::string&) override {
    LoadResult r;
    r.path = soname;
    r.error = "no vendor libraries in this test";
    return r;
  }
};

// A copy of a real sysfs tree under <tmp>/sys/class/drm, a spec as detection reads it and a
// plan (cooldown 80, resume 65); the daemon's doors are the real ones over that tree (sysfs
// telemetry, SystemControl writing hwmon), only the clock is manual. The temperature is
// scripted by writing the tree's temp1_input before each tick.
struct SysfsInProcess {
  test::TempDir tmp;
  std::string state = tmp / "state";
  std::string hwmon;  // the hwmon dir inside the copy
  std::string power_file;
  std::shared_ptr<ManualTimeSource> clock =
      std::make_shared<ManualTimeSource>(WallTime{} + std::chrono::seconds(1796126400));
  std::ostringstream out, err;
  std::unique_ptr<Daemon> daemon;

  SysfsInProcess(const std::string& fixture, const std::string& hwmon_rel, const std::string& power,
                 const GpuSpec& spec) {
    fs::create_directories(tmp / "sys/class");
    fs::create_directories(tmp / "proc");
    fs::copy(std::string(GREY_TEST_SOURCE_DIR) + "/fixtures/sysfs/" + fixture,
             tmp / "sys/class/drm", fs::copy_options::recursive);
    hwmon = tmp / ("sys/class/drm/" + hwmon_rel);
    power_file = hwmon + "/" + power;
    fs::create_directories(state);
    ::chmod(state.c_str(), 0700);
    EXPECT_EQ(save_specs(state, {spec}), "");
    Plan plan;
    plan.generated_at = "2026-12-01T11:00:00Z";
    GpuPlan gp;
    gp.index = 0;
    gp.device_id = *spec.f.bus_id;
    gp.cooldown_threshold_c = 80;
    gp.resume_threshold_c = 65;
    plan.gpus.push_back(gp);
    test::write_file(state + "/last_applied_plan.yaml", plan_to_yaml(plan), 0600);
    DaemonOptions o;
    o.state_dir = state;
    o.dry_run = false;
    o.consent = true;
    o.artifacts_every = 0;
    o.sysfs_root = tmp / "sys";
    o.procfs_root = tmp / "proc";
    o.pod_log_root = tmp / "pods";
    DaemonDoors d;
    d.clock = clock;
    d.fs = std::make_shared<RootedFs>(tmp / "sys", tmp / "proc");
    d.loader = std::make_shared<NoLibraries>();
    daemon = std::make_unique<Daemon>(o, d, out, err);
    EXPECT_EQ(daemon->start(), 0) << err.str();
  }
  // One tick at `temp_c`; the power limit the tree holds afterwards, in watts.
  double tick(int temp_c) {
    test::write_file(hwmon + "/temp1_input", std::to_string(temp_c * 1000) + "\n");
    clock->advance(std::chrono::seconds(1));
    daemon->tick();
    return std::stod(test::read_file(power_file)) / 1e6;
  }
};

// The scripted run both vendors share: hot until the floor holds, cool for three samples
// (restore), hot again, then a clean stop (restore again).
void run_vendor_script(SysfsInProcess& p, const std::vector<double>& want_steps, double original) {
  std::vector<double> got;
  for (int i = 0; i < 8; ++i) got.push_back(p.tick(95));
  std::vector<double> want = want_steps;
  while (want.size() < 8) want.push_back(want_steps.back());  // holds at the floor
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-6) << "tick " << i;
  EXPECT_NEAR(p.tick(50), want_steps.back(), 1e-6);
  EXPECT_NEAR(p.tick(50), want_steps.back(), 1e-6);
  EXPECT_NEAR(p.tick(50), original, 1e-6);  // resumed: restored through the journal
  EXPECT_NEAR(p.tick(95), want_steps.front(), 1e-6);
  p.daemon->stop("test over");
  EXPECT_NEAR(std::stod(test::read_file(p.power_file)) / 1e6, original, 1e-6);
  std::string log = test::read_file(daemon_log_path(p.state));
  EXPECT_EQ(log.find("minimum power limit is unknown"), std::string::npos);
  EXPECT_NE(log.find("power_limit_lowered"), std::string::npos);
  EXPECT_NE(log.find("power_limit_restored"), std::string::npos);
}

// RX Vega 56: power1_cap 260 W, power1_cap_min 0 ("no lower bound"), power1_cap_default 260 W:
// steps of 26 W down to half the default, 130 W.
TEST(DaemonSysfsGovernor, RadeonVega56WithAZeroMinimumStepsToHalfTheDefaultAndRestores) {
  GpuSpec g;
  g.index = 0;
  g.f.vendor = "amd";
  g.f.model = "Radeon RX Vega 56";
  g.f.bus_id = "0000:0b:00.0";
  g.f.kernel_driver = "amdgpu";
  g.f.power_limit_w = 260;
  g.f.power_limit_default_w = 260;
  g.f.power_limit_max_w = 390;  // detection leaves the 0 minimum unknown
  SysfsInProcess p("amd-radeon-rx-vega56-lact", "card0/device/hwmon/hwmon4", "power1_cap", g);
  run_vendor_script(p, {234, 208, 182, 156, 130}, 260);
}

// Arc A380 (i915): power1_max 55 W, power1_rated_max 0: no minimum, no default: steps of 5.5 W
// down to half the limit found before the first step, 27.5 W.
TEST(DaemonSysfsGovernor, IntelArcA380WithoutRangeStepsToHalfTheLimitFoundAndRestores) {
  GpuSpec g;
  g.index = 0;
  g.f.vendor = "intel";
  g.f.model = "Intel Arc A380";
  g.f.bus_id = "0000:0b:00.0";
  g.f.kernel_driver = "i915";
  g.f.power_limit_w = 55;
  SysfsInProcess p("intel-arc-a380-i915-lact", "card1/device/hwmon/hwmon1", "power1_max", g);
  run_vendor_script(p, {49.5, 44, 38.5, 33, 27.5}, 55);
}

}  // namespace
}  // namespace grey

namespace grey {
namespace {

// ---- Health through the in-process daemon ----------------------------------------------------

class ScriptedHealth : public HealthSource {
 public:
  explicit ScriptedHealth(std::vector<HealthPoll> polls) : polls_(std::move(polls)) {}
  HealthPoll poll() override { return next_ < polls_.size() ? polls_[next_++] : HealthPoll{}; }

 private:
  std::vector<HealthPoll> polls_;
  size_t next_ = 0;
};

TEST(DaemonInProcess, XidsAndErrorCountersBecomeGpuXidAndGpuEccEvents) {
  InProcess p;
  std::vector<HealthPoll> polls(3);
  polls[0].xids = {{0, 13, true}, {2, 79, false}};
  polls[0].counters[1] = {{"volatile_corrected", 0}, {"volatile_uncorrected", 0}};
  polls[1].counters[1] = {{"volatile_corrected", 4}, {"volatile_uncorrected", 0}};
  polls[2].counters[1] = {{"volatile_corrected", 4}, {"volatile_uncorrected", 1}};
  DaemonDoors d = p.doors();
  d.health = [&](const std::vector<GpuSpec>&) { return std::make_unique<ScriptedHealth>(polls); };
  DaemonOptions o = p.options();
  o.dry_run = true;
  p.daemon = std::make_unique<Daemon>(o, d, p.out, p.err);
  ASSERT_EQ(p.daemon->start(), 0) << p.err.str();
  p.new_log_lines();
  std::vector<json> health;
  for (int t = 0; t < 4; ++t) {
    p.dev.tick = t;
    p.daemon->tick();
    for (const json& l : p.new_log_lines()) {
      std::string e = l["event"];
      if (e == "gpu_xid" || e == "gpu_ecc")
        health.push_back({{"tick", t}, {"event", e}, {"details", l["details"]}});
    }
  }
  json want = json::array();
  want.push_back({{"tick", 0},
                  {"event", "gpu_xid"},
                  {"details", {{"gpu", 0}, {"xid", 13}, {"application", true}}}});
  want.push_back({{"tick", 0},
                  {"event", "gpu_xid"},
                  {"details", {{"gpu", 2}, {"xid", 79}, {"application", false}}}});
  want.push_back({{"tick", 1},
                  {"event", "gpu_ecc"},
                  {"details",
                   {{"gpu", 1},
                    {"type", "volatile_corrected"},
                    {"count", 4},
                    {"previous", 0},
                    {"fault", false}}}});
  want.push_back({{"tick", 2},
                  {"event", "gpu_ecc"},
                  {"details",
                   {{"gpu", 1},
                    {"type", "volatile_uncorrected"},
                    {"count", 1},
                    {"previous", 0},
                    {"fault", true}}}});
  EXPECT_EQ(json(health), want);
  // Only the device fault is a warning; the application's XID 13 is not.
  EXPECT_NE(p.err.str().find("XID 79"), std::string::npos) << p.err.str();
  EXPECT_EQ(p.err.str().find("XID 13"), std::string::npos) << p.err.str();
  // daemon_status.json and `status`: a health object per GPU and a Health line.
  json st = json::parse(test::read_file(daemon_status_path(p.state)));
  EXPECT_EQ(st["gpus"][0]["health"], json({{"healthy", true}, {"reasons", json::array()}}));
  EXPECT_EQ(st["gpus"][1]["health"],
            json({{"healthy", false}, {"reasons", {"volatile_uncorrected 1"}}}));
  EXPECT_EQ(st["gpus"][2]["health"], json({{"healthy", false}, {"reasons", {"XID 79 (1x)"}}}));
  DaemonStatusView v;
  v.status = st;
  std::string text = render_daemon_status(v, 0);
  EXPECT_NE(text.find("GPU 0 (" + bus_of(0) + "): normal"), std::string::npos) << text;
  EXPECT_NE(text.find("  Health: ok\n"), std::string::npos) << text;
  EXPECT_NE(text.find("  Health: FAULT (volatile_uncorrected 1)\n"), std::string::npos) << text;
  EXPECT_NE(text.find("  Health: FAULT (XID 79 (1x))\n"), std::string::npos) << text;
}

// The default health source reads AMD RAS counters from sysfs (the Vega 56 tree plus a ras/
// directory): a count that grows becomes a gpu_ecc event.
TEST(DaemonSysfsGovernor, AmdRasCountersFromSysfsBecomeGpuEccEvents) {
  GpuSpec g;
  g.index = 0;
  g.f.vendor = "amd";
  g.f.bus_id = "0000:0b:00.0";
  g.f.kernel_driver = "amdgpu";
  g.f.power_limit_w = 260;
  SysfsInProcess p("amd-radeon-rx-vega56-lact", "card0/device/hwmon/hwmon4", "power1_cap", g);
  // /sys/bus/pci/devices/<bus> as the kernel has it: a link to the device directory.
  std::string dev = p.tmp / "sys/class/drm/card0/device";
  fs::create_directories(p.tmp / "sys/bus/pci/devices");
  fs::create_directory_symlink(dev, p.tmp / "sys/bus/pci/devices/0000:0b:00.0");
  fs::create_directories(dev + "/ras");
  test::write_file(dev + "/ras/umc_err_count", "ue: 0\nce: 0\n");
  p.tick(40);
  test::write_file(dev + "/ras/umc_err_count", "ue: 1\nce: 3\n");
  p.tick(40);
  std::string log = test::read_file(daemon_log_path(p.state));
  EXPECT_NE(log.find("\"type\":\"ras_uncorrectable\""), std::string::npos) << log;
  EXPECT_NE(log.find("\"type\":\"ras_correctable\""), std::string::npos) << log;
}

}  // namespace
}  // namespace grey
