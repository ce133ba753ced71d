// The applier and restore (src/enforce/applier.h) on temp sysfs trees copied from the LACT
// captures, an in-process NVIDIA control, and the fake NVML library: dry runs change nothing,
// refusals come before any write, a denied write fails only its own action, the journal and
// restore round-trip, and restore is right after a kill -9 around the device write.
#include "enforce/applier.h"

#include <dlfcn.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "enforce/isolated_control.h"
#include "test_util.h"
#include "util/host_fs.h"
#include "util/lib_loader.h"
#include "util/runner.h"
#include "util/strings.h"

#ifndef GREY_FAKE_LIB_DIR
#error "GREY_FAKE_LIB_DIR must name the directory holding fake_nvml.so"
#endif

namespace grey {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const char* kFakeNvml = GREY_FAKE_LIB_DIR "/fake_nvml.so";
const char* kVegaCap = "class/drm/card0/device/hwmon/hwmon4/power1_cap";
const char* kRx9070Cap = "class/drm/card1/device/hwmon/hwmon5/power1_cap";

void install_fixture(const std::string& root, const std::string& name) {
  fs::path src = test::fixture_path("sysfs/" + name);
  ASSERT_TRUE(fs::is_directory(src)) << src;
  fs::create_directories(fs::path(root) / "class/drm");
  for (const auto& e : fs::directory_iterator(src)) {
    std::string n = e.path().filename().string();
    if (n == "kfd") continue;
    fs::copy(e.path(), fs::path(root) / "class/drm" / n, fs::copy_options::recursive);
  }
}

// Every file and directory under `root`: relative path -> mode + content.
std::map<std::string, std::string> snapshot(const std::string& root) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    struct stat st;
    ::lstat(e.path().c_str(), &st);
    std::string rel = fs::relative(e.path(), root).string();
    std::string v = std::to_string(st.st_mode) + ":" + std::to_string(st.st_mtim.tv_sec) + "." +
                    std::to_string(st.st_mtim.tv_nsec);
    if (e.is_regular_file()) v += ":" + test::read_file(e.path().string());
    out[rel] = v;
  }
  return out;
}

std::vector<json> journal_lines(const std::string& path) {
  std::vector<json> out;
  std::string text = test::read_file(path);
  for (auto l : split_lines(text)) {
    if (!trim(l).empty()) out.push_back(json::parse(l));
  }
  return out;
}

// Delegates to another control; records writes; can deny or crash around them.
class HookedControl : public DeviceControl {
 public:
  explicit HookedControl(DeviceControl& inner) : inner_(inner) {}
  ReadResult read(const SettingRef& ref) override {
    ++reads;
    if (fail_reads) return ReadResult{std::nullopt, "read refused by the test"};
    return inner_.read(ref);
  }
  std::string write(const SettingRef& ref, const std::string& value) override {
    if (before_write) before_write();
    writes.push_back(ref.mechanism + "=" + value);
    std::string e = inner_.write(ref, clamp_to.value_or(value));
    if (after_write) after_write();
    return e;
  }
  std::vector<std::string> writes;
  int reads = 0;
  bool fail_reads = false;
  std::optional<std::string> clamp_to;
  std::function<void()> before_write, after_write;

 private:
  DeviceControl& inner_;
};

// Denies writes to paths containing `deny` the way the kernel does (EACCES).
class DenyingFs : public RootedFs {
 public:
  DenyingFs(std::string root, std::string deny)
      : RootedFs(std::move(root)), deny_(std::move(deny)) {}
  std::string write(const std::string& path, const std::string& value) override {
    if (path.find(deny_) != std::string::npos) return real_path(path) + ": Permission denied";
    return RootedFs::write(path, value);
  }

 private:
  std::string deny_;
};

// An NVIDIA board in process memory, answering like NVML.
class FakeNvidiaControl : public DeviceControl {
 public:
  ReadResult read(const SettingRef& ref) override {
    if (ref.setting == kSettingPowerLimit) return ReadResult{watts_text(power_w), ""};
    return ReadResult{onoff(persistence), ""};
  }
  std::string write(const SettingRef& ref, const std::string& value) override {
    calls.push_back(ref.mechanism + "=" + value);
    if (ref.setting == kSettingPersistence) {
      if (deny_persistence)
        return "nvmlDeviceSetPersistenceMode failed: NVML_ERROR_NO_PERMISSION (4): Insufficient "
               "Permissions";
      persistence = value == "on";
    } else {
      power_w = std::stod(value);
    }
    return "";
  }
  double power_w = 400;
  bool persistence = false;
  bool deny_persistence = false;
  std::vector<std::string> calls;
};

DeviceTarget amd_target(int index, const std::string& bus, double watts) {
  DeviceTarget t;
  t.index = index;
  t.bus_id = bus;
  t.vendor = "amd";
  t.kernel_driver = "amdgpu";
  t.want_power_limit_w = watts;
  return t;
}

// Probes and plans the AMD cards of a tree.
std::vector<Action> plan_sysfs(HostFs& hfs, const std::vector<DeviceTarget>& targets) {
  SysfsControl c(hfs);
  std::vector<DeviceState> states;
  for (const auto& t : targets) {
    DeviceState s;
    s.bus_id = t.bus_id;
    c.probe(s, t.vendor, t.kernel_driver);
    states.push_back(s);
  }
  return plan_actions(targets, states);
}

class ApplierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = tmp_.path() + "/sys";
    state_ = tmp_.path() + "/state";
    fs::create_directories(state_);
    ::chmod(state_.c_str(), 0700);
    install_fixture(root_, "amd-radeon-rx-vega56-lact");
    install_fixture(root_, "amd-radeon-rx9070xt-lact");
  }
  std::string cap(const char* rel) { return test::read_file(root_ + "/" + rel); }
  std::string journal_path() const { return Journal::path_in(state_); }

  test::TempDir tmp_;
  std::string root_, state_;
};

TEST_F(ApplierTest, DryRunChangesNothingAtAll) {
  RootedFs rfs(root_);
  SysfsControl sysfs(rfs);
  HookedControl hooked(sysfs);
  auto actions =
      plan_sysfs(rfs, {amd_target(0, "0000:0b:00.0", 200), amd_target(1, "0000:0f:00.0", 100)});
  ASSERT_EQ(actions.size(), 2u);
  auto before = snapshot(tmp_.path());
  Journal journal(journal_path());
  ApplyOutcome out = apply_actions(actions, hooked, journal, /*dry_run=*/true);
  EXPECT_EQ(snapshot(tmp_.path()), before);
  EXPECT_FALSE(fs::exists(journal_path()));
  EXPECT_TRUE(hooked.writes.empty());
  EXPECT_TRUE(out.success);
  EXPECT_TRUE(out.dry_run);
  ASSERT_EQ(out.actions.size(), 2u);
  EXPECT_EQ(out.actions[0].status, kWouldApply);
  EXPECT_EQ(out.actions[0].line,
            "[DRY-RUN] GPU 0 (0000:0b:00.0) power_limit_w: 260 -> 200 W via "
            "sysfs:/sys/class/drm/card0/device/hwmon/hwmon4/power1_cap");
  EXPECT_EQ(out.actions[1].line,
            "[DRY-RUN] GPU 1 (0000:0f:00.0) power_limit_w: 120 -> 100 W via "
            "sysfs:/sys/class/drm/card1/device/hwmon/hwmon5/power1_cap");

  ApplyResult r = to_apply_result(out, "aggressive", "2026-11-26T15:00:00Z");
  json j = r.to_json();
  EXPECT_EQ(j["dry_run"], true);
  EXPECT_EQ(j["success"], true);
  EXPECT_EQ(j["metrics"], json({{"timestamp", "2026-11-26T15:00:00Z"},
                                {"plan_mode", "aggressive"},
                                {"actions_count", 2},
                                {"dry_run", true}}));
  ASSERT_EQ(j["actions_applied"].size(), 2u);
  for (const auto& line : j["actions_applied"])
    EXPECT_TRUE(starts_with(line.get<std::string>(), "[DRY-RUN] ")) << line;
  std::set<std::string> keys;
  for (auto it = j.begin(); it != j.end(); ++it) keys.insert(it.key());
  EXPECT_EQ(keys, (std::set<std::string>{"schema_version", "success", "dry_run", "actions_applied",
                                         "actions_skipped", "errors", "metrics", "artifacts"}));
  EXPECT_EQ(j["schema_version"], kApplyResultSchemaVersion);
}

TEST_F(ApplierTest, RealRunJournalsWritesAndReadsBack) {
  RootedFs rfs(root_);
  SysfsControl sysfs(rfs);
  HookedControl hooked(sysfs);
  auto actions = plan_sysfs(rfs, {amd_target(0, "0000:0b:00.0", 200)});
  // Journaling first: at the moment of the write the "set" line is already on disk.
  std::vector<json> at_write;
  hooked.before_write = [&] { at_write = journal_lines(journal_path()); };
  Journal journal(journal_path());
  ApplyOutcome out = apply_actions(actions, hooked, journal, false);
  ASSERT_EQ(out.actions.size(), 1u);
  const ActionOutcome& o = out.actions[0];
  EXPECT_EQ(o.status, kApplied) << o.error;
  EXPECT_EQ(o.old_value, "260");
  EXPECT_EQ(o.read_back, "200");
  EXPECT_TRUE(out.success);
  EXPECT_EQ(cap(kVegaCap), "200000000");
  EXPECT_EQ(hooked.writes, std::vector<std::string>{
                               "sysfs:/sys/class/drm/card0/device/hwmon/hwmon4/power1_cap=200"});
  ASSERT_EQ(at_write.size(), 1u);
  EXPECT_EQ(at_write[0]["op"], "set");

  auto lines = journal_lines(journal_path());
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["op"], "set");
  EXPECT_EQ(lines[0]["id"], o.journal_id);
  EXPECT_EQ(lines[0]["bus_id"], "0000:0b:00.0");
  EXPECT_EQ(lines[0]["setting"], "power_limit_w");
  EXPECT_EQ(lines[0]["old"], "260");
  EXPECT_EQ(lines[0]["new"], "200");
  EXPECT_EQ(lines[0]["mechanism"], "sysfs:/sys/class/drm/card0/device/hwmon/hwmon4/power1_cap");
  EXPECT_EQ(lines[1], json({{"time", lines[1]["time"]},
                            {"op", "result"},
                            {"id", o.journal_id},
                            {"ok", true},
                            {"read_back", "200"},
                            {"error", ""},
                            {"pid", static_cast<long>(::getpid())}}));
  ApplyResult r = to_apply_result(out, "aggressive");
  EXPECT_TRUE(r.success);
  EXPECT_FALSE(r.dry_run);
  ASSERT_EQ(r.actions_applied.size(), 1u);
  EXPECT_EQ(r.actions_applied[0],
            "applied: GPU 0 (0000:0b:00.0) power_limit_w: 260 -> 200 W via "
            "sysfs:/sys/class/drm/card0/device/hwmon/hwmon4/power1_cap (was 260 W, reads back "
            "200 W)");
}

TEST_F(ApplierTest, OutOfRangeIsRefusedBeforeAnyWrite) {
  RootedFs rfs(root_);
  SysfsControl sysfs(rfs);
  HookedControl hooked(sysfs);
  auto actions = plan_sysfs(rfs, {amd_target(0, "0000:0b:00.0", 400),    // max 390
                                  amd_target(1, "0000:0f:00.0", 341)});  // max 340
  auto before = snapshot(tmp_.path());
  Journal journal(journal_path());
  ApplyOutcome out = apply_actions(actions, hooked, journal, false);
  EXPECT_EQ(snapshot(tmp_.path()), before);
  EXPECT_TRUE(hooked.writes.empty());
  EXPECT_EQ(hooked.reads, 0);
  EXPECT_FALSE(fs::exists(journal_path()));
  EXPECT_FALSE(out.success);
  ASSERT_EQ(out.actions.size(), 2u);
  EXPECT_EQ(out.actions[0].status, kRefused);
  ApplyResult r = to_apply_result(out, "aggressive");
  EXPECT_FALSE(r.success);
  ASSERT_EQ(r.errors.size(), 2u);
  EXPECT_EQ(r.errors[0],
            "GPU 0 power_limit_w 400 W refused: 400 W is outside the device's range 0-390 W "
            "(power1_cap_min/power1_cap_max)");
  EXPECT_NE(r.errors[1].find("range 0-340 W"), std::string::npos) << r.errors[1];
  EXPECT_EQ(r.actions_skipped.size(), 2u);
  EXPECT_TRUE(r.actions_applied.empty());
  // The same refusal in a dry run: nothing written either, and the result says it failed.
  ApplyOutcome dry = apply_actions(actions, hooked, journal, true);
  EXPECT_FALSE(dry.success);
  EXPECT_TRUE(hooked.writes.empty());
}

TEST_F(ApplierTest, ADeniedWriteFailsWithTheDevicesMessageAndTheNextActionRuns) {
  DenyingFs dfs(root_, "card0/device/hwmon/hwmon4/power1_cap");
  SysfsControl sysfs(dfs);
  auto actions =
      plan_sysfs(dfs, {amd_target(0, "0000:0b:00.0", 200), amd_target(1, "0000:0f:00.0", 100)});
  Journal journal(journal_path());
  ApplyOutcome out = apply_actions(actions, sysfs, journal, false);
  EXPECT_FALSE(out.success);
  ASSERT_EQ(out.actions.size(), 2u);
  EXPECT_EQ(out.actions[0].status, kFailed);
  EXPECT_EQ(out.actions[0].error, root_ + "/" + kVegaCap + ": Permission denied");
  EXPECT_EQ(out.actions[1].status, kApplied) << out.actions[1].error;
  EXPECT_EQ(cap(kVegaCap), "260000000\n");
  EXPECT_EQ(cap(kRx9070Cap), "100000000");
  auto lines = journal_lines(journal_path());
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[1]["ok"], false);
  EXPECT_EQ(lines[1]["error"], out.actions[0].error);
  EXPECT_EQ(lines[3]["ok"], true);
  ApplyResult r = to_apply_result(out, "aggressive");
  EXPECT_FALSE(r.success);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_NE(r.errors[0].find("Permission denied"), std::string::npos);
  EXPECT_EQ(r.actions_applied.size(), 1u);

  // Restore: the denied one has nothing to undo, the other is set back.
  RestoreOutcome ro = restore(journal, sysfs, false);
  EXPECT_TRUE(ro.success);
  ASSERT_EQ(ro.steps.size(), 2u);
  EXPECT_EQ(ro.steps[0].status, kRestoreRestored);
  EXPECT_EQ(ro.steps[1].status, kRestoreNotNeeded);
  EXPECT_NE(ro.steps[1].message.find("our write had failed"), std::string::npos);
  EXPECT_EQ(cap(kRx9070Cap), "120000000");
}

TEST_F(ApplierTest, NvidiaRefusalNamesNvmlErrorAndPowerLimitStillApplies) {
  FakeNvidiaControl nv;
  nv.deny_persistence = true;
  DeviceTarget t;
  t.index = 0;
  t.bus_id = "0000:41:00.0";
  t.vendor = "nvidia";
  t.want_persistence = true;
  t.want_power_limit_w = 300;
  DeviceState s;
  s.bus_id = t.bus_id;
  s.nvml = true;
  s.persistence = false;
  s.power_limit_w = 400;
  s.power_min_w = 100;
  s.power_max_w = 400;
  auto actions = plan_actions({t}, {s});
  Journal journal(journal_path());
  ApplyOutcome out = apply_actions(actions, nv, journal, false);
  ASSERT_EQ(out.actions.size(), 2u);
  EXPECT_EQ(out.actions[0].status, kFailed);
  EXPECT_EQ(out.actions[0].error,
            "nvmlDeviceSetPersistenceMode failed: NVML_ERROR_NO_PERMISSION (4): Insufficient "
            "Permissions");
  EXPECT_EQ(out.actions[1].status, kApplied);
  EXPECT_EQ(nv.power_w, 300);
  EXPECT_FALSE(out.success);
  EXPECT_EQ(nv.calls, (std::vector<std::string>{"nvml:nvmlDeviceSetPersistenceMode=on",
                                                "nvml:nvmlDeviceSetPowerManagementLimit=300"}));

  nv.deny_persistence = false;
  ApplyOutcome again = apply_actions(actions, nv, journal, false);
  EXPECT_TRUE(again.success);
  EXPECT_TRUE(nv.persistence);
  EXPECT_EQ(again.actions[1].status, kSkipped) << "already 300 W at apply time";
  RestoreOutcome ro = restore(journal, nv, false);
  EXPECT_TRUE(ro.success);
  EXPECT_FALSE(nv.persistence);
  EXPECT_EQ(nv.power_w, 400);
}

TEST_F(ApplierTest, ReadBackMismatchAndUnreadableValuesFail) {
  RootedFs rfs(root_);
  SysfsControl sysfs(rfs);
  HookedControl clamping(sysfs);
  clamping.clamp_to = "180";
  auto actions = plan_sysfs(rfs, {amd_target(0, "0000:0b:00.0", 200)});
  Journal journal(journal_path());
  ApplyOutcome out = apply_actions(actions, clamping, journal, false);
  ASSERT_EQ(out.actions.size(), 1u);
  EXPECT_EQ(out.actions[0].status, kFailed);
  EXPECT_EQ(out.actions[0].error, "the device reads back 180 W after writing 200 W");
  EXPECT_EQ(out.actions[0].read_back, "180");

  HookedControl blind(sysfs);
  blind.fail_reads = true;
  auto before = test::read_file(journal_path());
  out = apply_actions(actions, blind, journal, false);
  EXPECT_EQ(out.actions[0].status, kFailed);
  EXPECT_NE(out.actions[0].error.find("could not be undone"), std::string::npos);
  EXPECT_TRUE(blind.writes.empty());
  EXPECT_EQ(test::read_file(journal_path()), before);
}

TEST_F(ApplierTest, AJournalThatCannotBeWrittenStopsTheWrite) {
  RootedFs rfs(root_);
  SysfsControl sysfs(rfs);
  HookedControl hooked(sysfs);
  auto actions = plan_sysfs(rfs, {amd_target(0, "0000:0b:00.0", 200)});
  Journal journal(tmp_.path() + "/no-such-dir/journal.jsonl");
  ApplyOutcome out = apply_actions(actions, hooked, journal, false);
  EXPECT_EQ(out.actions[0].status, kFailed);
  EXPECT_TRUE(starts_with(out.actions[0].error, "journal: ")) << out.actions[0].error;
  EXPECT_TRUE(hooked.writes.empty());
  EXPECT_EQ(cap(kVegaCap), "260000000\n");
}

TEST_F(ApplierTest, RestoreUndoesNewestFirstAndNeverTwice) {
  RootedFs rfs(root_);
  SysfsControl sysfs(rfs);
  {
    Journal j1(journal_path());
    ASSERT_TRUE(
        apply_actions(plan_sysfs(rfs, {amd_target(0, "0000:0b:00.0", 200)}), sysfs, j1, false)
            .success);
  }
  {
    Journal j2(journal_path());
    ASSERT_TRUE(
        apply_actions(plan_sysfs(rfs, {amd_target(0, "0000:0b:00.0", 150)}), sysfs, j2, false)
            .success);
  }
  EXPECT_EQ(cap(kVegaCap), "150000000");
  Journal journal(journal_path());
  RestoreOutcome ro = restore(journal, sysfs, false);
  EXPECT_TRUE(ro.success);
  ASSERT_EQ(ro.steps.size(), 2u);
  EXPECT_EQ(ro.steps[0].restore_to, "200");
  EXPECT_EQ(ro.steps[0].status, kRestoreRestored);
  EXPECT_EQ(ro.steps[0].message, "set back to 200 W (was 150 W)");
  EXPECT_EQ(ro.steps[1].restore_to, "260");
  EXPECT_EQ(ro.steps[1].status, kRestoreRestored);
  EXPECT_EQ(cap(kVegaCap), "260000000");
  auto lines = journal_lines(journal_path());
  ASSERT_EQ(lines.size(), 6u);
  EXPECT_EQ(lines[4]["op"], "restore");
  EXPECT_EQ(lines[4]["status"], "restored");
  EXPECT_EQ(lines[4]["from"], "150");
  EXPECT_EQ(lines[4]["to"], "200");

  // A second restore finds everything settled: no step, no write, no new line.
  HookedControl hooked(sysfs);
  RestoreOutcome again = restore(journal, hooked, false);
  EXPECT_TRUE(again.steps.empty());
  EXPECT_TRUE(hooked.writes.empty());
  ASSERT_FALSE(again.notes.empty());
  EXPECT_EQ(again.notes.back(), "2 journal entries were settled by an earlier restore; left alone");
  EXPECT_EQ(journal_lines(journal_path()).size(), 6u);
  json rj = again.to_json();
  EXPECT_EQ(rj["success"], true);
  EXPECT_TRUE(rj["steps"].empty());
}

TEST_F(ApplierTest, RestoreSkipsAValueSomeoneElseChanged) {
  RootedFs rfs(root_);
  SysfsControl sysfs(rfs);
  Journal journal(journal_path());
  ASSERT_TRUE(
      apply_actions(plan_sysfs(rfs, {amd_target(0, "0000:0b:00.0", 200)}), sysfs, journal, false)
          .success);
  test::write_file(root_ + "/" + kVegaCap, "230000000\n");  // an administrator, later
  HookedControl hooked(sysfs);
  RestoreOutcome ro = restore(journal, hooked, false);
  EXPECT_TRUE(ro.success);
  ASSERT_EQ(ro.steps.size(), 1u);
  EXPECT_EQ(ro.steps[0].status, kRestoreChangedSince);
  EXPECT_EQ(ro.steps[0].message,
            "skipped: someone else changed it since: now 230 W, we wrote 200 W");
  EXPECT_TRUE(hooked.writes.empty());
  EXPECT_EQ(cap(kVegaCap), "230000000\n");
  // Settled: even if the value later returns to ours, that entry is not undone.
  test::write_file(root_ + "/" + kVegaCap, "200000000\n");
  EXPECT_TRUE(restore(journal, hooked, false).steps.empty());
}

TEST_F(ApplierTest, RestoreDryRunWritesAndJournalsNothing) {
  RootedFs rfs(root_);
  SysfsControl sysfs(rfs);
  Journal journal(journal_path());
  ASSERT_TRUE(
      apply_actions(plan_sysfs(rfs, {amd_target(0, "0000:0b:00.0", 200)}), sysfs, journal, false)
          .success);
  auto before = snapshot(tmp_.path());
  HookedControl hooked(sysfs);
  RestoreOutcome ro = restore(journal, hooked, true);
  EXPECT_EQ(snapshot(tmp_.path()), before);
  EXPECT_TRUE(hooked.writes.empty());
  ASSERT_EQ(ro.steps.size(), 1u);
  EXPECT_EQ(ro.steps[0].status, kWouldRestore);
  EXPECT_TRUE(starts_with(ro.steps[0].line, "[DRY-RUN] would_restore: GPU 0 (0000:0b:00.0)"))
      << ro.steps[0].line;
  EXPECT_TRUE(ro.dry_run);
}

// What a process killed between "set" and "result" leaves behind, written by hand.
TEST_F(ApplierTest, CrashAfterTheWriteIsUndoneFromAFreshProcessState) {
  RootedFs rfs(root_);
  auto actions = plan_sysfs(rfs, {amd_target(0, "0000:0b:00.0", 200)});
  {
    Journal crashed(journal_path());
    std::string id;
    ASSERT_EQ(crashed.append_set(actions[0], "260", "200", &id), "");
  }
  test::write_file(root_ + "/" + kVegaCap, "200000000\n");  // its write landed, then it died
  SysfsControl sysfs(rfs);
  Journal fresh(journal_path());
  RestoreOutcome ro = restore(fresh, sysfs, false);
  EXPECT_TRUE(ro.success);
  ASSERT_EQ(ro.steps.size(), 1u);
  EXPECT_EQ(ro.steps[0].status, kRestoreRestored);
  EXPECT_EQ(cap(kVegaCap), "260000000");
}

TEST_F(ApplierTest, CrashBeforeTheWriteLeavesNothingToUndo) {
  RootedFs rfs(root_);
  auto actions = plan_sysfs(rfs, {amd_target(0, "0000:0b:00.0", 200)});
  {
    Journal crashed(journal_path());
    std::string id;
    ASSERT_EQ(crashed.append_set(actions[0], "260", "200", &id), "");
  }
  SysfsControl sysfs(rfs);
  HookedControl hooked(sysfs);
  Journal fresh(journal_path());
  RestoreOutcome ro = restore(fresh, hooked, false);
  ASSERT_EQ(ro.steps.size(), 1u);
  EXPECT_EQ(ro.steps[0].status, kRestoreNotNeeded);
  EXPECT_EQ(ro.steps[0].message,
            "nothing to undo: the device still has the old value 260 W (the process stopped "
            "before or during its write)");
  EXPECT_TRUE(hooked.writes.empty());
}

// A real process killed with SIGKILL right after (or right before) its device write.
void run_killed_child(const std::string& root, const std::string& journal_path,
                      bool kill_before_write) {
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    RootedFs rfs(root);
    SysfsControl sysfs(rfs);
    HookedControl hooked(sysfs);
    if (kill_before_write)
      hooked.before_write = [] { ::raise(SIGKILL); };
    else
      hooked.after_write = [] { ::raise(SIGKILL); };
    Journal journal(journal_path);
    (void)apply_actions(plan_sysfs(rfs, {amd_target(0, "0000:0b:00.0", 200)}), hooked, journal,
                        false);
    ::_exit(3);  // not reached
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
}

TEST_F(ApplierTest, KillNineAfterTheDeviceWriteThenRestore) {
  run_killed_child(root_, journal_path(), /*kill_before_write=*/false);
  EXPECT_EQ(cap(kVegaCap), "200000000");
  auto lines = journal_lines(journal_path());
  ASSERT_EQ(lines.size(), 1u) << "a set line and no result line";
  EXPECT_EQ(lines[0]["op"], "set");
  EXPECT_NE(lines[0]["pid"], static_cast<long>(::getpid()));
  RootedFs rfs(root_);
  SysfsControl sysfs(rfs);
  Journal fresh(journal_path());
  RestoreOutcome ro = restore(fresh, sysfs, false);
  EXPECT_TRUE(ro.success);
  ASSERT_EQ(ro.steps.size(), 1u);
  EXPECT_EQ(ro.steps[0].status, kRestoreRestored) << ro.steps[0].message;
  EXPECT_EQ(cap(kVegaCap), "260000000");
}

TEST_F(ApplierTest, KillNineBetweenJournalAndDeviceWriteThenRestore) {
  run_killed_child(root_, journal_path(), /*kill_before_write=*/true);
  EXPECT_EQ(cap(kVegaCap), "260000000\n");
  ASSERT_EQ(journal_lines(journal_path()).size(), 1u);
  RootedFs rfs(root_);
  SysfsControl sysfs(rfs);
  Journal fresh(journal_path());
  RestoreOutcome ro = restore(fresh, sysfs, false);
  ASSERT_EQ(ro.steps.size(), 1u);
  EXPECT_EQ(ro.steps[0].status, kRestoreNotNeeded);
  EXPECT_EQ(cap(kVegaCap), "260000000\n");
  // And the verdict is journaled: a later restore leaves it alone.
  EXPECT_TRUE(restore(fresh, sysfs, false).steps.empty());
}

TEST_F(ApplierTest, TruncatedLastJournalLineIsNotedAndRestoreStillWorks) {
  RootedFs rfs(root_);
  SysfsControl sysfs(rfs);
  Journal journal(journal_path());
  ASSERT_TRUE(
      apply_actions(plan_sysfs(rfs, {amd_target(0, "0000:0b:00.0", 200)}), sysfs, journal, false)
          .success);
  std::string text = test::read_file(journal_path());
  test::write_file(journal_path(), text + R"({"time":"2026-11-26T15:00:01Z","op":"se)", 0600);
  RestoreOutcome ro = restore(journal, sysfs, false);
  EXPECT_TRUE(ro.success);
  ASSERT_EQ(ro.steps.size(), 1u);
  EXPECT_EQ(ro.steps[0].status, kRestoreRestored);
  ASSERT_FALSE(ro.notes.empty());
  EXPECT_EQ(ro.notes[0],
            "journal line 3 is cut short (the process died while writing it?); skipped: nothing "
            "was done after a line that was never written whole");
  EXPECT_TRUE(ro.unreadable.empty());
  EXPECT_EQ(cap(kVegaCap), "260000000");
}

TEST_F(ApplierTest, RestoreWithoutAJournalIsANoOp) {
  RootedFs rfs(root_);
  SysfsControl sysfs(rfs);
  Journal journal(journal_path());
  RestoreOutcome ro = restore(journal, sysfs, false);
  EXPECT_TRUE(ro.success);
  EXPECT_TRUE(ro.steps.empty());
  ASSERT_EQ(ro.notes.size(), 1u);
  EXPECT_NE(ro.notes[0].find("no journal at"), std::string::npos);
  EXPECT_FALSE(fs::exists(journal_path()));
}

TEST_F(ApplierTest, RestoreFailsLoudlyWhenTheDeviceCannotBeRead) {
  RootedFs rfs(root_);
  SysfsControl sysfs(rfs);
  Journal journal(journal_path());
  ASSERT_TRUE(
      apply_actions(plan_sysfs(rfs, {amd_target(0, "0000:0b:00.0", 200)}), sysfs, journal, false)
          .success);
  HookedControl blind(sysfs);
  blind.fail_reads = true;
  RestoreOutcome ro = restore(journal, blind, false);
  EXPECT_FALSE(ro.success);
  ASSERT_EQ(ro.steps.size(), 1u);
  EXPECT_EQ(ro.steps[0].status, kRestoreFailed);
  ASSERT_EQ(ro.errors.size(), 1u);
  EXPECT_NE(ro.errors[0].find("read refused by the test"), std::string::npos);
  // Not settled: the next restore tries again and succeeds.
  RestoreOutcome again = restore(journal, sysfs, false);
  ASSERT_EQ(again.steps.size(), 1u);
  EXPECT_EQ(again.steps[0].status, kRestoreRestored);
}

// The issue's case: a torn journal tail, then another apply. Its set line used to glue onto the
// tail, be skipped as "not a JSON object", and leave the GPU at the lowered limit.
TEST_F(ApplierTest, AnApplyAfterATornJournalTailIsRestored) {
  RootedFs rfs(root_);
  SysfsControl sysfs(rfs);
  {
    Journal j1(journal_path());
    ASSERT_TRUE(
        apply_actions(plan_sysfs(rfs, {amd_target(0, "0000:0b:00.0", 200)}), sysfs, j1, false)
            .success);
  }
  test::write_file(journal_path(),
                   test::read_file(journal_path()) + R"({"time":"2026-11-26T15:00:01Z","op":"re)",
                   0600);
  test::write_file(root_ + "/" + kVegaCap, "250000000\n");  // an administrator, later
  {
    Journal j2(journal_path());
    ASSERT_TRUE(
        apply_actions(plan_sysfs(rfs, {amd_target(0, "0000:0b:00.0", 150)}), sysfs, j2, false)
            .success);
  }
  EXPECT_EQ(cap(kVegaCap), "150000000");
  Journal journal(journal_path());
  RestoreOutcome ro = restore(journal, sysfs, false);
  EXPECT_TRUE(ro.success) << ro.to_json().dump(1);
  EXPECT_TRUE(ro.unreadable.empty());
  ASSERT_EQ(ro.steps.size(), 2u);
  EXPECT_EQ(ro.steps[0].status, kRestoreRestored);
  EXPECT_EQ(ro.steps[0].restore_to, "250");
  EXPECT_EQ(ro.steps[1].status, kRestoreChangedSince) << "the administrator's 250 W stays";
  EXPECT_EQ(cap(kVegaCap), "250000000");
}

// A line restore cannot read: the readable entries are restored first, then the outcome fails
// and names the line, its number and its text.
TEST_F(ApplierTest, AnUnreadableJournalLineFailsTheRestoreAfterTheRestIsUndone) {
  RootedFs rfs(root_);
  SysfsControl sysfs(rfs);
  Journal journal(journal_path());
  ASSERT_TRUE(
      apply_actions(plan_sysfs(rfs, {amd_target(0, "0000:0b:00.0", 200)}), sysfs, journal, false)
          .success);
  const std::string bad =
      R"({"op":"set","id":"r9/gpu1.power_limit_w","gpu_index":"one","bus_id":"0000:0f:00.0",)"
      R"("setting":"power_limit_w","old":"304","new":"100","mechanism":"sysfs:x"})";
  test::write_file(journal_path(), test::read_file(journal_path()) + bad + "\n", 0600);
  RestoreOutcome ro = restore(journal, sysfs, false);
  EXPECT_FALSE(ro.success);
  ASSERT_EQ(ro.steps.size(), 1u);
  EXPECT_EQ(ro.steps[0].status, kRestoreRestored);
  EXPECT_EQ(cap(kVegaCap), "260000000");
  ASSERT_EQ(ro.unreadable.size(), 1u);
  EXPECT_EQ(ro.unreadable[0].line, 3);
  ASSERT_EQ(ro.errors.size(), 1u);
  EXPECT_TRUE(
      starts_with(ro.errors[0],
                  "journal line 3 (set r9/gpu1.power_limit_w) has a \"gpu_index\" field that "
                  "is not an integer: " +
                      bad + " -- restore cannot tell"))
      << ro.errors[0];
  json rj = ro.to_json();
  EXPECT_EQ(rj["success"], false);
  ASSERT_EQ(rj["unreadable"].size(), 1u);
  EXPECT_EQ(rj["unreadable"][0]["line"], 3);
  EXPECT_EQ(rj["unreadable"][0]["text"], bad);
  // Still failing on the next restore (nothing settles an unreadable line), with nothing to do.
  RestoreOutcome again = restore(journal, sysfs, false);
  EXPECT_FALSE(again.success);
  EXPECT_TRUE(again.steps.empty());
  EXPECT_EQ(again.unreadable.size(), 1u);
}

// What restore could not put back is named: GPU, bus id, setting, the value now, the value due.
TEST_F(ApplierTest, ASettingLeftChangedIsNamedWithItsCurrentAndDueValues) {
  RootedFs rfs(root_);
  SysfsControl sysfs(rfs);
  Journal journal(journal_path());
  ASSERT_TRUE(
      apply_actions(plan_sysfs(rfs, {amd_target(0, "0000:0b:00.0", 200)}), sysfs, journal, false)
          .success);
  DenyingFs dfs(root_, "hwmon4/power1_cap");
  SysfsControl denied(dfs);
  RestoreOutcome ro = restore(journal, denied, false);
  EXPECT_FALSE(ro.success);
  ASSERT_EQ(ro.steps.size(), 1u);
  EXPECT_EQ(ro.steps[0].status, kRestoreFailed);
  EXPECT_EQ(ro.steps[0].current, "200");
  ASSERT_EQ(ro.errors.size(), 1u);
  EXPECT_EQ(ro.errors[0],
            "GPU 0 (0000:0b:00.0) power_limit_w is left changed: it reads 200 W and should be "
            "260 W (via sysfs:/sys/class/drm/card0/device/hwmon/hwmon4/power1_cap): " +
                root_ + "/" + kVegaCap + ": Permission denied");
  ASSERT_EQ(ro.left_changed().size(), 1u);
  json rj = ro.to_json();
  ASSERT_EQ(rj["left_changed"].size(), 1u);
  EXPECT_EQ(rj["left_changed"][0]["gpu_index"], 0);
  EXPECT_EQ(rj["left_changed"][0]["bus_id"], "0000:0b:00.0");
  EXPECT_EQ(rj["left_changed"][0]["setting"], "power_limit_w");
  EXPECT_EQ(rj["left_changed"][0]["current"], "200");
  EXPECT_EQ(rj["left_changed"][0]["should_be"], "260");
  // A value that cannot even be read is named the same way.
  HookedControl blind(sysfs);
  blind.fail_reads = true;
  RestoreOutcome b = restore(journal, blind, false);
  ASSERT_EQ(b.errors.size(), 1u);
  EXPECT_TRUE(starts_with(b.errors[0],
                          "GPU 0 (0000:0b:00.0) power_limit_w is left changed: it cannot be read "
                          "now and should be 260 W"))
      << b.errors[0];
  EXPECT_EQ(b.to_json()["left_changed"][0]["current"], "unknown");
}

// Past the old whole-file read limit (64 MiB): the newest change sits after 65 MiB of history.
// The old reader stopped at the limit and said there was nothing to restore.
TEST_F(ApplierTest, RestoreReadsAJournalLargerThanTheOldWholeFileLimit) {
  RootedFs rfs(root_);
  SysfsControl sysfs(rfs);
  {
    Journal j1(journal_path());
    ASSERT_TRUE(
        apply_actions(plan_sysfs(rfs, {amd_target(1, "0000:0f:00.0", 100)}), sysfs, j1, false)
            .success);
  }
  {
    // 65 MiB of blank (whitespace) lines, written in 1 MiB pieces.
    FILE* f = std::fopen(journal_path().c_str(), "a");
    ASSERT_NE(f, nullptr);
    std::string piece(1u << 20, ' ');
    for (size_t i = 0; i < piece.size(); i += 4096) piece[i] = '\n';
    for (int i = 0; i < 65; ++i)
      ASSERT_EQ(std::fwrite(piece.data(), 1, piece.size(), f), piece.size());
    ASSERT_EQ(std::fclose(f), 0);
  }
  {
    Journal j2(journal_path());
    ASSERT_TRUE(
        apply_actions(plan_sysfs(rfs, {amd_target(0, "0000:0b:00.0", 200)}), sysfs, j2, false)
            .success);
  }
  ASSERT_GT(fs::file_size(journal_path()), std::uintmax_t{65} << 20);
  Journal journal(journal_path());
  RestoreOutcome ro = restore(journal, sysfs, false);
  EXPECT_TRUE(ro.success) << ro.to_json().dump(1);
  ASSERT_EQ(ro.steps.size(), 2u);
  EXPECT_EQ(ro.steps[0].bus_id, "0000:0b:00.0");
  EXPECT_EQ(ro.steps[0].status, kRestoreRestored);
  EXPECT_EQ(ro.steps[1].status, kRestoreRestored);
  EXPECT_EQ(cap(kVegaCap), "260000000");
  EXPECT_EQ(cap(kRx9070Cap), "120000000");
  // And the restore lines written after all that are read back: everything is settled.
  RestoreOutcome again = restore(journal, sysfs, false);
  EXPECT_TRUE(again.success);
  EXPECT_TRUE(again.steps.empty());
}

// ---- the fake NVML library ---------------------------------------------------------------------

bool fake_nvml_has_sets() {
  void* h = ::dlopen(kFakeNvml, RTLD_NOW | RTLD_LOCAL);
  if (!h) return false;
  bool yes = ::dlsym(h, "nvmlDeviceSetPersistenceMode") != nullptr &&
             ::dlsym(h, "nvmlDeviceSetPowerManagementLimit") != nullptr;
  ::dlclose(h);
  return yes;
}

class FakeNvmlApplyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fake_nvml_has_sets()) GTEST_SKIP() << kFakeNvml << " exports no NVML set-calls";
    for (const char* v : {"FAKE_NVML_GPUS", "FAKE_NVML_INIT_ERROR", "FAKE_NVML_DENY_SETS"})
      unsetenv(v);
    setenv("GREY_NVML_LIBRARY", kFakeNvml, 1);
    record_ = tmp_.path() + "/record";
    setenv("FAKE_NVML_RECORD", record_.c_str(), 1);
    // The fake keeps what was set for the life of the process: start each test afresh.
    void* h = ::dlopen(kFakeNvml, RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(h, nullptr);
    auto reset = reinterpret_cast<void (*)()>(::dlsym(h, "fake_nvml_reset"));
    ASSERT_NE(reset, nullptr);
    reset();
    ::dlclose(h);
  }
  void TearDown() override {
    unsetenv("GREY_NVML_LIBRARY");
    unsetenv("FAKE_NVML_RECORD");
    unsetenv("FAKE_NVML_DENY_SETS");
  }
  std::string recorded() { return fs::exists(record_) ? test::read_file(record_) : std::string(); }
  std::vector<Action> plan(NvmlControl& nvml) {
    DeviceTarget a100;
    a100.index = 1;
    a100.bus_id = "0000:41:00.0";
    a100.vendor = "nvidia";
    a100.want_persistence = true;
    a100.want_power_limit_w = 350;
    DeviceState s;
    s.bus_id = a100.bus_id;
    nvml.probe(s);
    EXPECT_TRUE(s.nvml);
    return plan_actions({a100}, {s});
  }
  test::TempDir tmp_;
  std::string record_;
};

TEST_F(FakeNvmlApplyTest, DryRunMakesNoSetCall) {
  DlLoader loader;
  NvmlControl nvml(loader);
  auto actions = plan(nvml);
  ASSERT_EQ(actions.size(), 2u);
  Journal journal(Journal::path_in(tmp_.path()));
  ApplyOutcome out = apply_actions(actions, nvml, journal, true);
  EXPECT_TRUE(out.success);
  EXPECT_EQ(recorded(), "");
  EXPECT_FALSE(fs::exists(journal.path()));
}

TEST_F(FakeNvmlApplyTest, ApplyThenRestoreThroughNvml) {
  DlLoader loader;
  NvmlControl nvml(loader);
  auto actions = plan(nvml);
  ASSERT_EQ(actions.size(), 2u);
  Journal journal(Journal::path_in(tmp_.path()));
  ApplyOutcome out = apply_actions(actions, nvml, journal, false);
  ASSERT_TRUE(out.success) << out.actions[0].error << " / " << out.actions[1].error;
  EXPECT_EQ(out.actions[0].read_back, "on");
  EXPECT_EQ(out.actions[1].read_back, "350");
  EXPECT_EQ(recorded(),
            "set nvmlDeviceSetPersistenceMode 1 1\nset nvmlDeviceSetPowerManagementLimit 1 "
            "350000\n");
  RestoreOutcome ro = restore(journal, nvml, false);
  EXPECT_TRUE(ro.success);
  ASSERT_EQ(ro.steps.size(), 2u);
  EXPECT_EQ(ro.steps[0].status, kRestoreRestored);
  EXPECT_EQ(ro.steps[1].status, kRestoreRestored);
  EXPECT_EQ(nvml.read({"0000:41:00.0", kSettingPowerLimit, kMechNvmlPowerLimit}).value, "400");
  EXPECT_EQ(nvml.read({"0000:41:00.0", kSettingPersistence, kMechNvmlPersistence}).value, "off");
  EXPECT_EQ(recorded(),
            "set nvmlDeviceSetPersistenceMode 1 1\nset nvmlDeviceSetPowerManagementLimit 1 "
            "350000\nset nvmlDeviceSetPowerManagementLimit 1 400000\nset "
            "nvmlDeviceSetPersistenceMode 1 0\n");
}

TEST_F(FakeNvmlApplyTest, DeniedSetCallsFailEachActionWithNvmlsError) {
  setenv("FAKE_NVML_DENY_SETS", "1", 1);
  DlLoader loader;
  NvmlControl nvml(loader);
  auto actions = plan(nvml);
  Journal journal(Journal::path_in(tmp_.path()));
  ApplyOutcome out = apply_actions(actions, nvml, journal, false);
  EXPECT_FALSE(out.success);
  ASSERT_EQ(out.actions.size(), 2u);
  for (const auto& o : out.actions) {
    EXPECT_EQ(o.status, kFailed);
    EXPECT_NE(o.error.find("NVML_ERROR_NO_PERMISSION (4)"), std::string::npos) << o.error;
  }
  EXPECT_EQ(nvml.read({"0000:41:00.0", kSettingPowerLimit, kMechNvmlPowerLimit}).value, "400");
  EXPECT_EQ(recorded(),
            "denied nvmlDeviceSetPersistenceMode 1 1\ndenied nvmlDeviceSetPowerManagementLimit 1 "
            "350000\n");
  EXPECT_FALSE(fs::exists(journal.path()) && journal.load().sets.empty())
      << "both attempts were journaled before the call";
  EXPECT_EQ(journal.load().sets.size(), 2u);
}

// Through child processes (the CLI's way): apply, then a restore whose NVML hangs finishes with
// each step failed and one child started, and a later restore undoes everything.
TEST_F(FakeNvmlApplyTest, RestoreThroughIsolatedNvmlFinishesWhenNvmlHangs) {
  DlLoader loader;
  NvmlControl in_process(loader);
  auto actions = plan(in_process);
  ASSERT_EQ(actions.size(), 2u);
  RootedFs rfs(tmp_.path());
  PosixRunner runner;
  Journal journal(Journal::path_in(tmp_.path()));
  {
    SystemControl sc(rfs, runner, loader, ControlIsolation{GREY_BINARY, std::chrono::seconds(30)});
    ApplyOutcome out = apply_actions(actions, sc, journal, false);
    ASSERT_TRUE(out.success) << out.actions[0].error << " / " << out.actions[1].error;
    EXPECT_EQ(out.actions[1].read_back, "350") << "read back by the next child";
  }
  setenv("FAKE_NVML_HANG", "init", 1);
  {
    SystemControl sc(rfs, runner, loader,
                     ControlIsolation{GREY_BINARY, std::chrono::milliseconds(500)});
    RestoreOutcome ro = restore(journal, sc, false);
    unsetenv("FAKE_NVML_HANG");
    EXPECT_FALSE(ro.success);
    ASSERT_EQ(ro.steps.size(), 2u);
    for (const auto& st : ro.steps) {
      EXPECT_EQ(st.status, kRestoreFailed);
      EXPECT_NE(st.message.find("NVML did not answer within 0.5 s (nvmlInit_v2 hung?)"),
                std::string::npos)
          << st.message;
    }
    auto* iso = dynamic_cast<IsolatedNvmlControl*>(&sc.nvml());
    ASSERT_NE(iso, nullptr);
    EXPECT_EQ(iso->children_started(), 1) << "the deadline is paid once";
  }
  unsetenv("FAKE_NVML_HANG");
  SystemControl sc(rfs, runner, loader, ControlIsolation{GREY_BINARY, std::chrono::seconds(30)});
  RestoreOutcome again = restore(journal, sc, false);
  EXPECT_TRUE(again.success);
  ASSERT_EQ(again.steps.size(), 2u);
  EXPECT_EQ(again.steps[0].status, kRestoreRestored);
  EXPECT_EQ(again.steps[1].status, kRestoreRestored);
  EXPECT_NE(recorded().find("set nvmlDeviceSetPowerManagementLimit 1 400000"), std::string::npos)
      << recorded();
}

}  // namespace
}  // namespace grey
