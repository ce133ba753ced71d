// The daemon's enforcement path, in process: the governor (daemon/governor.h) decides, the
// PowerEnforcer carries its power actions out through the applier (enforce/applier.h) against
// fake devices, tick by tick. No clock and no sleeps: a tick is one call to Governor::step.
//
// The golden list of writes lives in tests/fixtures/golden/governor-8gpu.json. To rewrite it
// after a deliberate change:   GREY_UPDATE_GOLDEN=1 <this test>   and review the diff by eye.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "daemon/governor.h"
#include "enforce/applier.h"
#include "enforce/journal.h"
#include "test_util.h"

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
