// The pure planner (src/enforce/actions.h) and the probes that feed it: golden ordered action
// lists per fixture (fake NVML, nvidia-smi through a scripted runner, AMD and Intel sysfs trees
// copied from the LACT captures), range refusals, already-at-value skips.
//
// Goldens live in tests/fixtures/golden/<name>.json. To rewrite them after a deliberate change:
//   GREY_UPDATE_GOLDEN=1 <this test>   and review the diff by eye.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "enforce/actions.h"
#include "enforce/device_control.h"
#include "enforce/isolated_control.h"
#include "test_util.h"
#include "util/host_fs.h"
#include "util/lib_loader.h"
#include "util/runner.h"

#ifndef GREY_FAKE_LIB_DIR
#error "GREY_FAKE_LIB_DIR must name the directory holding fake_nvml.so"
#endif

namespace grey {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const char* kFakeNvml = GREY_FAKE_LIB_DIR "/fake_nvml.so";

// <fixture>/cardN -> <root>/class/drm/cardN (the layout RootedFs maps /sys onto).
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

// Compares with tests/fixtures/golden/<name>.json (or rewrites it with GREY_UPDATE_GOLDEN=1).
void expect_golden(const std::string& name, const std::vector<Action>& actions) {
  json got = actions_to_json(actions);
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

// Answers nvidia-smi queries from a script; records every argv.
class ScriptedRunner : public Runner {
 public:
  CommandResult run(const std::vector<std::string>& argv, const RunOptions&) override {
    calls.push_back(argv);
    CommandResult r;
    r.started = true;
    r.exit_code = exit_code;
    r.out = out;
    r.err = err;
    return r;
  }
  std::vector<std::vector<std::string>> calls;
  std::string out, err;
  int exit_code = 0;
};

DeviceTarget target(int index, std::string bus, std::string vendor,
                    std::optional<std::string> driver) {
  DeviceTarget t;
  t.index = index;
  t.bus_id = std::move(bus);
  t.vendor = std::move(vendor);
  t.kernel_driver = std::move(driver);
  return t;
}

class EnforceActionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* v : {"FAKE_NVML_GPUS", "FAKE_NVML_INIT_ERROR", "FAKE_NVML_DENY_SETS",
                          "FAKE_NVML_RECORD", "FAKE_NVML_HANG", "FAKE_NVML_CRASH"})
      unsetenv(v);
    setenv("GREY_NVML_LIBRARY", kFakeNvml, 1);
  }
  void TearDown() override { unsetenv("GREY_NVML_LIBRARY"); }
};

// ---- golden lists ----------------------------------------------------------------------------

TEST_F(EnforceActionsTest, GoldenNvidiaThroughFakeNvml) {
  test::TempDir tmp;
  RootedFs rfs(tmp.path());
  ScriptedRunner runner;
  DlLoader loader;
  SystemControl sys(rfs, runner, loader);

  DeviceTarget h100 = target(0, "0000:1b:00.0", "nvidia", "nvidia");
  h100.uuid = "GPU-3f2a7c1e-0000-4000-8000-000000000001";
  h100.want_persistence = true;
  h100.want_power_limit_w = 600;
  DeviceTarget a100 = target(1, "0000:41:00.0", "nvidia", "nvidia");
  a100.uuid = "GPU-5b8d0c2a-0000-4000-8000-000000000002";
  a100.want_persistence = true;
  a100.want_power_limit_w = 450;  // above the A100's 400 W maximum
  std::vector<DeviceTarget> targets = {h100, a100};

  std::vector<DeviceState> states;
  for (const auto& t : targets) states.push_back(sys.probe(t.bus_id, t.vendor, t.kernel_driver));
  ASSERT_TRUE(states[0].nvml) << (states[0].notes.empty() ? "" : states[0].notes[0]);
  EXPECT_EQ(states[0].power_limit_w, 700.0);
  EXPECT_EQ(states[0].persistence, true);
  EXPECT_EQ(states[1].power_max_w, 400.0);
  EXPECT_EQ(states[1].persistence, false);
  EXPECT_TRUE(runner.calls.empty()) << "NVML answered: nvidia-smi must not run";

  std::vector<Action> actions = plan_actions(targets, states);
  ASSERT_EQ(actions.size(), 4u);
  // H100: persistence already on; 700 -> 600 W through NVML.
  EXPECT_TRUE(actions[0].skip);
  EXPECT_FALSE(actions[0].refused);
  EXPECT_EQ(actions[0].skip_reason, "already on");
  EXPECT_EQ(actions[1].mechanism, "nvml:nvmlDeviceSetPowerManagementLimit");
  EXPECT_EQ(actions[1].current, "700");
  EXPECT_EQ(actions[1].wanted, "600");
  EXPECT_FALSE(actions[1].skip);
  // A100: persistence off -> on; 450 W refused against 100-400 W.
  EXPECT_EQ(actions[2].mechanism, "nvml:nvmlDeviceSetPersistenceMode");
  EXPECT_EQ(actions[2].current, "off");
  EXPECT_FALSE(actions[2].skip);
  EXPECT_TRUE(actions[3].refused);
  EXPECT_NE(actions[3].skip_reason.find("100-400 W"), std::string::npos) << actions[3].skip_reason;
  expect_golden("nvidia-fake-nvml", actions);
}

TEST_F(EnforceActionsTest, GoldenNvidiaSmiWhenNvmlIsAbsent) {
  setenv("GREY_NVML_LIBRARY", "/nonexistent/libnvidia-ml.so.1", 1);
  test::TempDir tmp;
  RootedFs rfs(tmp.path());
  ScriptedRunner runner;
  runner.out = "250.00, Disabled\n";
  DlLoader loader;
  SystemControl sys(rfs, runner, loader);

  DeviceTarget t = target(0, "0000:01:00.0", "nvidia", "nvidia");
  t.want_persistence = true;
  t.want_power_limit_w = 200;
  t.device_min_w = 125;  // nvidia-smi's query has no range: detection's is used
  t.device_max_w = 300;
  DeviceState s = sys.probe(t.bus_id, t.vendor, t.kernel_driver);
  EXPECT_FALSE(s.nvml);
  EXPECT_TRUE(s.nvidia_smi);
  ASSERT_EQ(runner.calls.size(), 1u);
  EXPECT_EQ(runner.calls[0],
            (std::vector<std::string>{"nvidia-smi", "--query-gpu=power.limit,persistence_mode",
                                      "--format=csv,noheader,nounits", "-i", "0000:01:00.0"}));
  ASSERT_FALSE(s.notes.empty());
  EXPECT_NE(s.notes[0].find("/nonexistent/libnvidia-ml.so.1"), std::string::npos) << s.notes[0];

  std::vector<Action> actions = plan_actions({t}, {s});
  ASSERT_EQ(actions.size(), 2u);
  EXPECT_EQ(actions[0].mechanism, "nvidia-smi -i 0000:01:00.0 -pm 1");
  EXPECT_EQ(actions[1].mechanism, "nvidia-smi -i 0000:01:00.0 -pl 200");
  EXPECT_EQ(actions[1].note, "device range 125-300 W (detection)");
  expect_golden("nvidia-smi-fallback", actions);
}

TEST_F(EnforceActionsTest, GoldenAmdVega56PowerCap) {
  test::TempDir tmp;
  install_fixture(tmp.path(), "amd-radeon-rx-vega56-lact");
  RootedFs rfs(tmp.path());
  SysfsControl sysfs(rfs);
  DeviceTarget t = target(0, "0000:0b:00.0", "amd", "amdgpu");
  t.want_persistence = true;  // NVIDIA only: no action for an AMD card
  t.want_power_limit_w = 200;
  DeviceState s;
  s.bus_id = t.bus_id;
  sysfs.probe(s, t.vendor, t.kernel_driver);
  EXPECT_EQ(s.power_sysfs_path, "/sys/class/drm/card0/device/hwmon/hwmon4/power1_cap");
  EXPECT_EQ(s.power_limit_w, 260.0);
  EXPECT_EQ(s.power_min_w, 0.0);
  EXPECT_EQ(s.power_max_w, 390.0);

  std::vector<Action> actions = plan_actions({t}, {s});
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_EQ(actions[0].mechanism, "sysfs:/sys/class/drm/card0/device/hwmon/hwmon4/power1_cap");
  EXPECT_EQ(actions[0].current, "260");
  EXPECT_EQ(actions[0].wanted, "200");
  expect_golden("amd-radeon-rx-vega56", actions);
}

TEST_F(EnforceActionsTest, GoldenIntelArcA380PowerMax) {
  test::TempDir tmp;
  install_fixture(tmp.path(), "intel-arc-a380-i915-lact");
  RootedFs rfs(tmp.path());
  SysfsControl sysfs(rfs);
  DeviceTarget t = target(1, "0000:0b:00.0", "intel", "i915");
  t.want_power_limit_w = 45;
  DeviceState s;
  s.bus_id = t.bus_id;
  sysfs.probe(s, t.vendor, t.kernel_driver);
  EXPECT_EQ(s.power_sysfs_path, "/sys/class/drm/card1/device/hwmon/hwmon1/power1_max");
  EXPECT_EQ(s.power_limit_w, 55.0);
  EXPECT_FALSE(s.power_max_w) << "power1_rated_max reads 0: no maximum known";

  std::vector<Action> actions = plan_actions({t}, {s});
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_EQ(actions[0].note, "device reports no power-limit range; lowering only");
  expect_golden("intel-arc-a380-i915", actions);
}

// ---- planner rules -------------------------------------------------------------------------

DeviceState amd_state() {
  DeviceState s;
  s.bus_id = "0000:0b:00.0";
  s.power_limit_w = 260;
  s.power_min_w = 0;
  s.power_max_w = 390;
  s.range_source = "power1_cap_min/power1_cap_max";
  s.power_sysfs_path = "/sys/class/drm/card0/device/hwmon/hwmon4/power1_cap";
  return s;
}

TEST(PlanActions, OutOfRangeIsRefusedNamingTheRange) {
  DeviceTarget t = target(0, "0000:0b:00.0", "amd", "amdgpu");
  t.want_power_limit_w = 400;
  auto a = plan_actions({t}, {amd_state()});
  ASSERT_EQ(a.size(), 1u);
  EXPECT_TRUE(a[0].skip);
  EXPECT_TRUE(a[0].refused);
  EXPECT_EQ(a[0].skip_reason,
            "400 W is outside the device's range 0-390 W (power1_cap_min/power1_cap_max)");
  EXPECT_EQ(describe(a[0]),
            "GPU 0 (0000:0b:00.0) power_limit_w: 260 -> 400 W via "
            "sysfs:/sys/class/drm/card0/device/hwmon/hwmon4/power1_cap; refused: 400 W is "
            "outside the device's range 0-390 W (power1_cap_min/power1_cap_max)");
}

TEST(PlanActions, NonPositiveAndNonFiniteAreRefused) {
  for (double w : {0.0, -5.0, std::nan(""), std::numeric_limits<double>::infinity()}) {
    DeviceTarget t = target(0, "0000:0b:00.0", "amd", "amdgpu");
    t.want_power_limit_w = w;
    auto a = plan_actions({t}, {amd_state()});
    ASSERT_EQ(a.size(), 1u);
    EXPECT_TRUE(a[0].refused) << w;
  }
}

TEST(PlanActions, AlreadyAtValueIsSkippedNotRefused) {
  DeviceTarget t = target(0, "0000:0B:00.0", "amd", "amdgpu");  // bus id case differs
  t.want_power_limit_w = 260.2;
  auto a = plan_actions({t}, {amd_state()});
  ASSERT_EQ(a.size(), 1u);
  EXPECT_TRUE(a[0].skip);
  EXPECT_FALSE(a[0].refused);
  EXPECT_EQ(a[0].skip_reason, "already 260 W");
  EXPECT_EQ(a[0].bus_id, "0000:0b:00.0");
  EXPECT_EQ(a[0].wanted, "260.2");
}

TEST(PlanActions, WithoutAMaximumOnlyLoweringIsAllowed) {
  DeviceState s;
  s.bus_id = "0000:0b:00.0";
  s.power_limit_w = 55;
  s.power_sysfs_path = "/sys/class/drm/card1/device/hwmon/hwmon1/power1_max";
  DeviceTarget t = target(0, "0000:0b:00.0", "intel", "i915");
  t.want_power_limit_w = 60;
  auto a = plan_actions({t}, {s});
  ASSERT_EQ(a.size(), 1u);
  EXPECT_TRUE(a[0].refused);
  EXPECT_NE(a[0].skip_reason.find("no maximum power limit"), std::string::npos);
  s.power_limit_w.reset();
  t.want_power_limit_w = 40;
  a = plan_actions({t}, {s});
  EXPECT_TRUE(a[0].refused);
  EXPECT_NE(a[0].skip_reason.find("cannot be checked"), std::string::npos) << a[0].skip_reason;
}

TEST(PlanActions, DetectionRangeIsUsedWhenTheDeviceGivesNone) {
  DeviceState s = amd_state();
  s.power_min_w.reset();
  s.power_max_w.reset();
  DeviceTarget t = target(0, "0000:0b:00.0", "amd", "amdgpu");
  t.device_min_w = 150;
  t.device_max_w = 300;
  t.want_power_limit_w = 100;
  auto a = plan_actions({t}, {s});
  ASSERT_EQ(a.size(), 1u);
  EXPECT_TRUE(a[0].refused);
  EXPECT_EQ(a[0].skip_reason, "100 W is outside the device's range 150-300 W (detection)");
}

TEST(PlanActions, NoStateOrNoMechanismIsRefused) {
  DeviceTarget t = target(2, "0000:65:00.0", "nvidia", "nvidia");
  t.want_persistence = true;
  t.want_power_limit_w = 250;
  auto a = plan_actions({t}, {});
  ASSERT_EQ(a.size(), 2u);
  EXPECT_TRUE(a[0].refused);
  EXPECT_TRUE(a[1].refused);
  EXPECT_EQ(a[0].current, "unknown");

  DeviceState s;
  s.bus_id = "0000:65:00.0";
  s.power_limit_w = 300;
  s.power_min_w = 100;
  s.power_max_w = 350;
  s.notes = {"NVML: libnvidia-ml.so.1: cannot open shared object file",
             "nvidia-smi: not found on PATH"};
  a = plan_actions({t}, {s});
  ASSERT_EQ(a.size(), 2u);
  EXPECT_TRUE(a[0].refused);
  EXPECT_NE(a[0].skip_reason.find("cannot open shared object file"), std::string::npos);
  EXPECT_TRUE(a[1].refused);
  EXPECT_NE(a[1].skip_reason.find("neither NVML nor nvidia-smi"), std::string::npos);

  DeviceTarget other = target(0, "0000:03:00.0", "unknown", std::nullopt);
  other.want_power_limit_w = 100;
  DeviceState so;
  so.bus_id = "0000:03:00.0";
  so.power_limit_w = 150;
  so.power_max_w = 200;
  a = plan_actions({other}, {so});
  ASSERT_EQ(a.size(), 1u);
  EXPECT_TRUE(a[0].refused);
  EXPECT_NE(a[0].skip_reason.find("vendor 'unknown'"), std::string::npos);
}

TEST(PlanActions, OrderFollowsTargetsAndIsDeterministic) {
  DeviceState s1 = amd_state();
  DeviceState s2 = amd_state();
  s2.bus_id = "0000:0f:00.0";
  s2.power_sysfs_path = "/sys/class/drm/card1/device/hwmon/hwmon5/power1_cap";
  DeviceTarget t1 = target(1, "0000:0f:00.0", "amd", "amdgpu");
  t1.want_power_limit_w = 150;
  DeviceTarget t0 = target(0, "0000:0b:00.0", "amd", "amdgpu");
  t0.want_power_limit_w = 210;
  auto a = plan_actions({t1, t0}, {s1, s2});
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[0].id, "gpu1.power_limit_w");
  EXPECT_EQ(a[0].mechanism, "sysfs:/sys/class/drm/card1/device/hwmon/hwmon5/power1_cap");
  EXPECT_EQ(a[1].id, "gpu0.power_limit_w");
  EXPECT_EQ(actions_to_json(a), actions_to_json(plan_actions({t1, t0}, {s1, s2})));
  EXPECT_TRUE(plan_actions({}, {s1}).empty());
}

// ---- helpers of device_control.h ---------------------------------------------------------------

TEST(DeviceControlHelpers, WattsTextSameValueMechanismKind) {
  EXPECT_EQ(watts_text(250), "250");
  EXPECT_EQ(watts_text(237.5), "237.5");
  EXPECT_EQ(watts_text(199.125), "199.125");
  EXPECT_EQ(watts_text(0.0004), "0");
  EXPECT_EQ(watts_text(std::nan("")), "invalid");
  EXPECT_EQ(watts_text(1e308), "1e+308");  // not a wrapped milliwatt count (issue 11)
  EXPECT_EQ(watts_text(-1e300), "-1e+300");
  EXPECT_TRUE(same_value(kSettingPowerLimit, "250", "250.00"));
  EXPECT_TRUE(same_value(kSettingPowerLimit, "250", "250.4"));
  EXPECT_FALSE(same_value(kSettingPowerLimit, "250", "251"));
  EXPECT_FALSE(same_value(kSettingPowerLimit, "250", "unknown"));
  EXPECT_TRUE(same_value(kSettingPersistence, "on", "on"));
  EXPECT_FALSE(same_value(kSettingPersistence, "on", "off"));
  std::string path;
  EXPECT_EQ(mechanism_kind("sysfs:/sys/x/power1_cap", &path), MechanismKind::sysfs);
  EXPECT_EQ(path, "/sys/x/power1_cap");
  EXPECT_EQ(mechanism_kind("nvml:nvmlDeviceSetPersistenceMode"), MechanismKind::nvml);
  EXPECT_EQ(mechanism_kind("nvidia-smi -i 0000:01:00.0 -pl 250"), MechanismKind::nvidia_smi);
  EXPECT_EQ(mechanism_kind("echo hi"), MechanismKind::unknown);
  EXPECT_EQ(nvidia_smi_mechanism("0000:01:00.0", kSettingPersistence, "off"),
            "nvidia-smi -i 0000:01:00.0 -pm 0");
}

TEST(SysfsControlTest, FindsHwmonUnderBusPciDevicesToo) {
  test::TempDir tmp;
  std::string dev = tmp.path() + "/bus/pci/devices/0000:03:00.0/hwmon/hwmon2";
  fs::create_directories(dev);
  test::write_file(dev + "/power1_cap", "150000000\n");
  test::write_file(dev + "/power1_cap_min", "100000000\n");
  test::write_file(dev + "/power1_cap_max", "200000000\n");
  RootedFs rfs(tmp.path());
  SysfsControl c(rfs);
  EXPECT_EQ(c.find_hwmon("0000:03:00.0", "power1_cap"),
            "/sys/bus/pci/devices/0000:03:00.0/hwmon/hwmon2");
  EXPECT_FALSE(c.find_hwmon("0000:04:00.0", "power1_cap"));
  EXPECT_FALSE(c.find_hwmon("0000:03:00.0", "power1_max"));
  DeviceState s;
  s.bus_id = "0000:04:00.0";
  c.probe(s, "amd", "amdgpu");
  EXPECT_FALSE(s.power_sysfs_path);
  ASSERT_EQ(s.notes.size(), 1u);
  EXPECT_NE(s.notes[0].find("no hwmon power1_cap for 0000:04:00.0"), std::string::npos);
}

TEST(SysfsControlTest, RefusesPathsOutsideHwmonPowerFiles) {
  test::TempDir tmp;
  test::write_file(tmp.path() + "/victim", "keep\n");
  RootedFs rfs(tmp.path());
  SysfsControl c(rfs);
  for (std::string p : {tmp.path() + "/victim", std::string("/sys/class/drm/card0/device/uevent"),
                        std::string("/sys/class/../../etc/power1_cap")}) {
    std::string err = c.write({"0000:0b:00.0", kSettingPowerLimit, "sysfs:" + p}, "100");
    EXPECT_NE(err.find("refusing sysfs path"), std::string::npos) << p << ": " << err;
  }
  EXPECT_EQ(test::read_file(tmp.path() + "/victim"), "keep\n");
  EXPECT_FALSE(c.read({"0000:0b:00.0", kSettingPersistence, "sysfs:/sys/x/power1_cap"}).value);
}

TEST(NvidiaSmiControlTest, WritesByArgvAndReportsTheToolsMessage) {
  ScriptedRunner runner;
  NvidiaSmiControl c(runner);
  EXPECT_EQ(c.write_argv("0000:01:00.0", kSettingPowerLimit, "237.5"),
            (std::vector<std::string>{"nvidia-smi", "-i", "0000:01:00.0", "-pl", "237.5"}));
  runner.exit_code = 4;
  runner.out =
      "Unable to set persistence mode for GPU 00000000:01:00.0: Insufficient Permissions\n";
  std::string err =
      c.write({"0000:01:00.0", kSettingPersistence, "nvidia-smi -i 0000:01:00.0 -pm 1"}, "on");
  EXPECT_EQ(err,
            "nvidia-smi -i 0000:01:00.0 -pm 1: exit code 4: Unable to set persistence mode for GPU "
            "00000000:01:00.0: Insufficient Permissions");
  ASSERT_EQ(runner.calls.size(), 1u);
  EXPECT_EQ(runner.calls[0],
            (std::vector<std::string>{"nvidia-smi", "-i", "0000:01:00.0", "-pm", "1"}));
  EXPECT_NE(c.write({"0000:01:00.0", kSettingPowerLimit, ""}, "lots").find("not a power limit"),
            std::string::npos);
  EXPECT_EQ(runner.calls.size(), 1u) << "a bad value never reaches the tool";

  runner.exit_code = 0;
  runner.out = "[N/A], Enabled\n";
  ReadResult r = c.read({"0000:01:00.0", kSettingPowerLimit, ""});
  EXPECT_FALSE(r.value);
  EXPECT_NE(r.error.find("no power.limit"), std::string::npos);
  EXPECT_EQ(c.read({"0000:01:00.0", kSettingPersistence, ""}).value, "on");
  runner.out = "garbage";
  EXPECT_NE(c.read({"0000:01:00.0", kSettingPersistence, ""}).error.find("unexpected output"),
            std::string::npos);
}

// ---- NVML control in a child process (isolated_control.h) ----------------------------------

// Answers `__control` requests with a scripted result and nvidia-smi queries with `smi_out`.
class ControlRunner : public Runner {
 public:
  CommandResult run(const std::vector<std::string>& argv, const RunOptions& opt) override {
    calls.push_back(argv);
    timeouts.push_back(opt.timeout);
    if (argv.size() >= 2 && argv[1] == "__control") return control;
    CommandResult r;
    r.started = true;
    r.exit_code = 0;
    r.out = smi_out;
    return r;
  }
  int control_calls() const {
    int n = 0;
    for (const auto& c : calls) n += c.size() >= 2 && c[1] == "__control";
    return n;
  }
  CommandResult control;
  std::string smi_out = "250.00, Enabled\n";
  std::vector<std::vector<std::string>> calls;
  std::vector<std::chrono::milliseconds> timeouts;
};

CommandResult hung_child(const std::string& last_call) {
  CommandResult r;
  r.started = true;
  r.timed_out = true;
  r.err = "call nvmlInit_v2\n" + (last_call.empty() ? "" : "call " + last_call + "\n");
  return r;
}

TEST(IsolatedNvmlControl, AHangIsReportedOnceThenNotTriedAgain) {
  ControlRunner runner;
  runner.control = hung_child("nvmlDeviceGetCount_v2");
  IsolatedNvmlControl c(runner, "/opt/grey-gpu-opt", std::chrono::milliseconds(2000));
  DeviceState s;
  s.bus_id = "0000:41:00.0";
  c.probe(s);
  EXPECT_FALSE(s.nvml);
  ASSERT_EQ(s.notes.size(), 1u);
  EXPECT_NE(s.notes[0].find("NVML did not answer within 2 s (nvmlDeviceGetCount_v2 hung?)"),
            std::string::npos)
      << s.notes[0];
  EXPECT_EQ(c.broken(), s.notes[0]);
  ASSERT_EQ(runner.calls.size(), 1u);
  EXPECT_EQ(runner.calls[0][0], "/opt/grey-gpu-opt");
  EXPECT_EQ(runner.timeouts[0], std::chrono::milliseconds(2000));
  auto req = nlohmann::json::parse(runner.calls[0][2]);
  EXPECT_EQ(req["op"], "probe");
  EXPECT_EQ(req["bus_id"], "0000:41:00.0");
  // Every later call answers at once, without another child.
  ReadResult r = c.read({"0000:1b:00.0", kSettingPowerLimit, kMechNvmlPowerLimit});
  EXPECT_FALSE(r.value);
  EXPECT_EQ(r.error, c.broken());
  EXPECT_EQ(c.write({"0000:1b:00.0", kSettingPowerLimit, kMechNvmlPowerLimit}, "300"), c.broken());
  EXPECT_EQ(c.available(), c.broken());
  EXPECT_EQ(c.children_started(), 1);
}

TEST(IsolatedNvmlControl, ACrashNamesTheSignalAndTheCall) {
  ControlRunner runner;
  runner.control.started = true;
  runner.control.signal = 11;
  runner.control.err = "call nvmlInit_v2\n";
  IsolatedNvmlControl c(runner, "grey", std::chrono::milliseconds(1000));
  std::string e = c.write({"0000:1b:00.0", kSettingPersistence, kMechNvmlPersistence}, "on");
  EXPECT_NE(e.find("NVML control child died with signal 11"), std::string::npos) << e;
  EXPECT_NE(e.find("in nvmlInit_v2"), std::string::npos) << e;
  EXPECT_FALSE(c.broken().empty());
  EXPECT_FALSE(c.read({"0000:1b:00.0", kSettingPersistence, ""}).value);
  EXPECT_EQ(c.children_started(), 1);
}

TEST(IsolatedNvmlControl, AnswersAndNvmlErrorsPassThroughWithoutBreakingIt) {
  ControlRunner runner;
  runner.control.started = true;
  runner.control.exit_code = 0;
  // A library that chatters on stdout: the last JSON object line is the answer.
  runner.control.out = "nvml: hello\n{\"value\": null, \"error\": \"NVML: lists no device\"}\n";
  IsolatedNvmlControl c(runner, "grey", std::chrono::milliseconds(1000));
  ReadResult r = c.read({"0000:99:00.0", kSettingPowerLimit, kMechNvmlPowerLimit});
  EXPECT_FALSE(r.value);
  EXPECT_EQ(r.error, "NVML: lists no device");
  EXPECT_TRUE(c.broken().empty()) << "an NVML error is an answer, not a broken library";
  runner.control.out = "{\"value\": \"250\", \"error\": \"\"}\n";
  EXPECT_EQ(c.read({"0000:1b:00.0", kSettingPowerLimit, ""}).value, "250");
  runner.control.out = "not json at all\n";
  EXPECT_NE(c.read({"0000:1b:00.0", kSettingPowerLimit, ""}).error.find("child failed"),
            std::string::npos);
  EXPECT_FALSE(c.broken().empty());
  EXPECT_EQ(c.children_started(), 3);
}

TEST(IsolatedNvmlControl, OneChildProbesAllDevicesAhead) {
  ControlRunner runner;
  runner.control.started = true;
  runner.control.exit_code = 0;
  runner.control.out =
      R"({"devices": [{"bus_id": "0000:1b:00.0", "nvml": true, "power_limit_w": 700,)"
      R"( "persistence": true, "power_min_w": 200, "power_max_w": 700, "range_source": "NVML",)"
      R"( "notes": []}, {"bus_id": "0000:41:00.0", "nvml": false, "power_limit_w": null,)"
      R"( "persistence": null, "power_min_w": null, "power_max_w": null, "range_source": "",)"
      R"( "notes": ["NVML: NVML lists no device at 0000:41:00.0"]}]})"
      "\n";
  test::TempDir tmp;
  RootedFs fs(tmp / "sys", tmp / "proc");
  DlLoader loader;
  SystemControl sc(fs, runner, loader, ControlIsolation{"grey", std::chrono::milliseconds(1000)});
  sc.prefetch_nvml({"1b:00.0", "0000:41:00.0"});
  ASSERT_EQ(runner.control_calls(), 1);
  auto req = nlohmann::json::parse(runner.calls[0][2]);
  EXPECT_EQ(req["bus_ids"], nlohmann::json({"0000:1b:00.0", "0000:41:00.0"}));
  DeviceState h100 = sc.probe("0000:1b:00.0", "nvidia", std::string("nvidia"));
  EXPECT_TRUE(h100.nvml);
  EXPECT_EQ(h100.power_limit_w, 700.0);
  EXPECT_EQ(h100.persistence, true);
  EXPECT_EQ(h100.power_min_w, 200.0);
  EXPECT_EQ(runner.control_calls(), 1) << "answered from the prefetch";
  runner.smi_out = "garbage";
  DeviceState a100 = sc.probe("0000:41:00.0", "nvidia", std::nullopt);
  EXPECT_FALSE(a100.nvml);
  ASSERT_FALSE(a100.notes.empty());
  EXPECT_NE(a100.notes[0].find("lists no device"), std::string::npos);
  EXPECT_EQ(runner.control_calls(), 1);
  // A device not prefetched (or probed again) gets its own child.
  sc.probe("0000:1b:00.0", "nvidia", std::nullopt);
  EXPECT_EQ(runner.control_calls(), 2);
}

TEST(IsolatedNvmlControl, SystemControlFallsBackToNvidiaSmiWhenNvmlHung) {
  test::TempDir tmp;
  RootedFs fs(tmp / "sys", tmp / "proc");
  ControlRunner runner;
  runner.control = hung_child("");
  DlLoader loader;
  SystemControl sc(fs, runner, loader, ControlIsolation{"grey", std::chrono::milliseconds(1000)});
  SettingRef ref{"0000:1b:00.0", kSettingPowerLimit, kMechNvmlPowerLimit};
  ReadResult r = sc.read(ref);
  EXPECT_EQ(r.value, "250") << r.error;
  EXPECT_EQ(sc.write(ref, "300"), "");
  ASSERT_EQ(runner.control_calls(), 1);
  EXPECT_EQ(runner.calls.back(),
            (std::vector<std::string>{"nvidia-smi", "-i", "0000:1b:00.0", "-pl", "300"}));
  // Neither answers: both reasons, the device's failure only.
  runner.smi_out = "garbage";
  ReadResult bad = sc.read(ref);
  EXPECT_FALSE(bad.value);
  EXPECT_NE(bad.error.find("(nvmlInit_v2 hung?)"), std::string::npos) << bad.error;
  EXPECT_NE(bad.error.find("nvidia-smi instead"), std::string::npos) << bad.error;
  EXPECT_EQ(runner.control_calls(), 1);
}

TEST(IsolatedNvmlControl, ATimedOutNvidiaSmiIsNotRunAgain) {
  class Stuck : public Runner {
   public:
    CommandResult run(const std::vector<std::string>&, const RunOptions&) override {
      ++calls;
      CommandResult r;
      r.started = true;
      r.timed_out = true;
      return r;
    }
    int calls = 0;
  } runner;
  NvidiaSmiControl c(runner);
  EXPECT_FALSE(c.read({"0000:1b:00.0", kSettingPowerLimit, ""}).value);
  std::string e = c.write({"0000:1b:00.0", kSettingPowerLimit, ""}, "300");
  EXPECT_NE(e.find("timed out earlier"), std::string::npos) << e;
  EXPECT_EQ(runner.calls, 1);
}

// The child side against the fake library, in this process (its answer is what the parent
// parses), and the real binary as the child.
TEST_F(EnforceActionsTest, ControlChildAnswersFromTheFakeLibrary) {
  std::ostringstream out;
  ASSERT_EQ(run_control_child(R"({"op":"probe","bus_id":"0000:41:00.0"})", out), 0);
  auto a = nlohmann::json::parse(out.str());
  EXPECT_EQ(a["nvml"], true);
  EXPECT_EQ(a["power_limit_w"], 400.0);
  EXPECT_EQ(a["power_max_w"], 400.0);
  EXPECT_EQ(a["persistence"], false);
  std::ostringstream all;
  ASSERT_EQ(run_control_child(R"({"op":"probe","bus_ids":["0000:1b:00.0","0000:99:00.0"]})", all),
            0);
  auto b = nlohmann::json::parse(all.str());
  ASSERT_EQ(b["devices"].size(), 2u);
  EXPECT_EQ(b["devices"][0]["bus_id"], "0000:1b:00.0");
  EXPECT_EQ(b["devices"][0]["power_limit_w"], 700.0);
  EXPECT_EQ(b["devices"][1]["nvml"], false);
  std::ostringstream bad;
  EXPECT_EQ(run_control_child("[1,2]", bad), 2);
  EXPECT_EQ(run_control_child(R"({"op":"format"})", bad), 2);
}

TEST_F(EnforceActionsTest, IsolatedControlThroughTheBinaryHangsAndCrashesAreContained) {
  for (const char* var : {"FAKE_NVML_HANG", "FAKE_NVML_CRASH"}) {
    SCOPED_TRACE(var);
    setenv(var, "init", 1);
    PosixRunner runner;
    IsolatedNvmlControl c(runner, GREY_BINARY, std::chrono::milliseconds(500));
    ReadResult r = c.read({"0000:41:00.0", kSettingPowerLimit, kMechNvmlPowerLimit});
    unsetenv(var);
    EXPECT_FALSE(r.value);
    EXPECT_NE(r.error.find(std::string(var) == "FAKE_NVML_HANG"
                               ? "NVML did not answer within 0.5 s (nvmlInit_v2 hung?)"
                               : "died with signal 11 (Segmentation fault) in nvmlInit_v2"),
              std::string::npos)
        << r.error;
    EXPECT_NE(c.write({"0000:41:00.0", kSettingPowerLimit, ""}, "300"), "");
    EXPECT_EQ(c.children_started(), 1);
  }
  PosixRunner runner;
  IsolatedNvmlControl ok(runner, GREY_BINARY, std::chrono::milliseconds(30000));
  EXPECT_EQ(ok.available(), "");
  EXPECT_EQ(ok.read({"0000:1b:00.0", kSettingPowerLimit, ""}).value, "700");
  EXPECT_TRUE(nvml_in_process_risk(runner, GREY_BINARY, std::chrono::milliseconds(30000)).empty());
  setenv("FAKE_NVML_CRASH", "count", 1);
  std::string risk = nvml_in_process_risk(runner, GREY_BINARY, std::chrono::milliseconds(30000));
  unsetenv("FAKE_NVML_CRASH");
  EXPECT_NE(risk.find("nvmlDeviceGetCount_v2"), std::string::npos) << risk;
}

TEST(RefusingLoader, RefusesOneSonameOnly) {
  class Counting : public LibLoader {
   public:
    LoadResult load(const std::string& soname, const std::string&) override {
      last = soname;
      return {};
    }
    std::string last;
  };
  auto inner = std::make_shared<Counting>();
  RefusingLoader l(inner, "libnvidia-ml.so.1", "hung in a child");
  LoadResult r = l.load("libnvidia-ml.so.1", "GREY_NVML_LIBRARY");
  EXPECT_FALSE(r.lib);
  EXPECT_EQ(r.error, "hung in a child");
  EXPECT_EQ(inner->last, "");
  l.load("libcuda.so.1", "GREY_CUDA_LIBRARY");
  EXPECT_EQ(inner->last, "libcuda.so.1");
}

}  // namespace
}  // namespace grey
