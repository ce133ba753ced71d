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

}  // namespace
}  // namespace grey
