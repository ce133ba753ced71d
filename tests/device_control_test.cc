// Device control behind one interface, one file per vendor (enforce/control.h): which vendor
// control drives which device, which mechanism is whose, and SystemControl's dispatch.
#include "enforce/device_control.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "test_util.h"

namespace grey {
namespace {

using test::TempDir;
using test::write_file;

// Every argv run; nvidia-smi answers its query.
class SmiRunner : public Runner {
 public:
  CommandResult run(const std::vector<std::string>& argv, const RunOptions&) override {
    calls.push_back(argv);
    CommandResult r;
    r.started = true;
    r.exit_code = 0;
    r.out = "250.00, Enabled\n";
    return r;
  }
  std::vector<std::vector<std::string>> calls;
};

// The vendor control that drives (vendor, driver), "" when none.
std::string driver_of(SystemControl& sc, const std::string& vendor,
                      const std::optional<std::string>& driver) {
  for (VendorControl* v : sc.vendors())
    if (v->drives(vendor, driver)) return v->vendor();
  return "";
}

std::string handler_of(SystemControl& sc, const std::string& mechanism) {
  for (VendorControl* v : sc.vendors())
    if (v->handles(mechanism)) return v->vendor();
  return "";
}

class DeviceControlTest : public ::testing::Test {
 protected:
  void SetUp() override { setenv("GREY_NVML_LIBRARY", "/nonexistent/libnvidia-ml.so.1", 1); }
  void TearDown() override { unsetenv("GREY_NVML_LIBRARY"); }
  TempDir t_;
  RootedFs fs_{t_ / "sys", t_ / "proc"};
  SmiRunner runner_;
  DlLoader loader_;
};

TEST_F(DeviceControlTest, OneControlPerVendorInOrder) {
  SystemControl sc(fs_, runner_, loader_);
  ASSERT_EQ(sc.vendors().size(), 3u);
  EXPECT_EQ(sc.vendors()[0]->vendor(), "nvidia");
  EXPECT_EQ(sc.vendors()[1]->vendor(), "amd");
  EXPECT_EQ(sc.vendors()[2]->vendor(), "intel");
}

TEST_F(DeviceControlTest, TheKernelDriverDecidesBeforeTheVendor) {
  SystemControl sc(fs_, runner_, loader_);
  EXPECT_EQ(driver_of(sc, "nvidia", std::nullopt), "nvidia");
  EXPECT_EQ(driver_of(sc, "nvidia", std::string("nouveau")), "nvidia");
  EXPECT_EQ(driver_of(sc, "unknown", std::string("nvidia")), "nvidia");
  EXPECT_EQ(driver_of(sc, "amd", std::nullopt), "amd");
  EXPECT_EQ(driver_of(sc, "amd", std::string("amdgpu")), "amd");
  EXPECT_EQ(driver_of(sc, "unknown", std::string("radeon")), "amd");
  EXPECT_EQ(driver_of(sc, "intel", std::string("amdgpu")), "amd");
  EXPECT_EQ(driver_of(sc, "intel", std::nullopt), "intel");
  EXPECT_EQ(driver_of(sc, "intel", std::string("xe")), "intel");
  EXPECT_EQ(driver_of(sc, "amd", std::string("i915")), "intel");
  EXPECT_EQ(driver_of(sc, "unknown", std::string("i915")), "intel");
  EXPECT_EQ(driver_of(sc, "matrox", std::string("mgag200")), "");
  EXPECT_EQ(driver_of(sc, "", std::nullopt), "");
}

TEST_F(DeviceControlTest, EachMechanismBelongsToOneVendor) {
  SystemControl sc(fs_, runner_, loader_);
  EXPECT_EQ(handler_of(sc, kMechNvmlPowerLimit), "nvidia");
  EXPECT_EQ(handler_of(sc, kMechNvmlPersistence), "nvidia");
  EXPECT_EQ(handler_of(sc, "nvidia-smi -i 0000:01:00.0 -pl 250"), "nvidia");
  EXPECT_EQ(handler_of(sc, "sysfs:/sys/class/drm/card0/device/hwmon/hwmon4/power1_cap"), "amd");
  EXPECT_EQ(handler_of(sc, "sysfs:/sys/class/drm/card1/device/hwmon/hwmon5/power1_max"), "intel");
  EXPECT_EQ(handler_of(sc, "sysfs:/etc/passwd"), "");
  EXPECT_EQ(handler_of(sc, "echo hi"), "");
}

TEST_F(DeviceControlTest, DispatchKeepsTheRefusalsAndMessages) {
  SystemControl sc(fs_, runner_, loader_);
  // A sysfs path no vendor claims: the hwmon mechanism refuses it, writes nothing.
  EXPECT_EQ(
      sc.write({"0000:03:00.0", kSettingPowerLimit, "sysfs:/etc/passwd"}, "100"),
      "refusing sysfs path '/etc/passwd': only hwmon power1_cap/power1_max/power2_max under /sys");
  EXPECT_EQ(
      sc.read({"0000:03:00.0", kSettingPowerLimit, "sysfs:/etc/passwd"}).error,
      "refusing sysfs path '/etc/passwd': only hwmon power1_cap/power1_max/power2_max under /sys");
  EXPECT_EQ(sc.write({"0000:03:00.0", kSettingPowerLimit, "echo hi"}, "100"),
            "unknown mechanism 'echo hi'");
  EXPECT_EQ(sc.read({"0000:03:00.0", kSettingPowerLimit, "echo hi"}).error,
            "unknown mechanism 'echo hi'");
  // A device no vendor drives.
  DeviceState s = sc.probe("0000:07:00.0", "matrox", std::string("mgag200"));
  ASSERT_EQ(s.notes.size(), 1u);
  EXPECT_EQ(s.notes[0], "no sysfs power-limit file known for vendor 'matrox' (driver mgag200)");
  // nvidia-smi mechanisms go to nvidia-smi directly (NVML is not asked).
  EXPECT_EQ(
      sc.write({"0000:01:00.0", kSettingPowerLimit, "nvidia-smi -i 0000:01:00.0 -pl 250"}, "250"),
      "");
  ASSERT_EQ(runner_.calls.size(), 1u);
  EXPECT_EQ(runner_.calls[0],
            (std::vector<std::string>{"nvidia-smi", "-i", "0000:01:00.0", "-pl", "250"}));
}

TEST_F(DeviceControlTest, NvidiaWithoutNvmlIsProbedThroughNvidiaSmi) {
  SystemControl sc(fs_, runner_, loader_);
  DeviceState s = sc.probe("0000:01:00.0", "nvidia", std::string("nvidia"));
  EXPECT_FALSE(s.nvml);
  EXPECT_TRUE(s.nvidia_smi);
  EXPECT_EQ(s.power_limit_w, 250.0);
  EXPECT_EQ(s.persistence, true);
  ASSERT_FALSE(s.notes.empty());
  EXPECT_EQ(s.notes[0].rfind("NVML: /nonexistent/libnvidia-ml.so.1: ", 0), 0u) << s.notes[0];
}

TEST_F(DeviceControlTest, AmdAndIntelReadTheirOwnPowerFileAndRange) {
  std::string amd = t_ / "sys/bus/pci/devices/0000:03:00.0/hwmon/hwmon2";
  write_file(amd + "/power1_cap", "165000000\n");
  write_file(amd + "/power1_cap_min", "0\n");
  write_file(amd + "/power1_cap_max", "220000000\n");
  write_file(amd + "/power1_max", "999000000\n");  // not AMD's file
  std::string intel = t_ / "sys/bus/pci/devices/0000:04:00.0/hwmon/hwmon3";
  write_file(intel + "/power1_max", "55000000\n");
  write_file(intel + "/power1_rated_max", "75000000\n");
  write_file(intel + "/power1_cap", "1000000\n");  // not Intel's file
  SystemControl sc(fs_, runner_, loader_);
  DeviceState a = sc.probe("0000:03:00.0", "amd", std::string("amdgpu"));
  EXPECT_EQ(a.power_sysfs_path, "/sys/bus/pci/devices/0000:03:00.0/hwmon/hwmon2/power1_cap");
  EXPECT_EQ(a.power_limit_w, 165.0);
  EXPECT_EQ(a.power_min_w, 0.0);
  EXPECT_EQ(a.power_max_w, 220.0);
  EXPECT_EQ(a.range_source, "power1_cap_min/power1_cap_max");
  DeviceState i = sc.probe("0000:04:00.0", "intel", std::string("xe"));
  EXPECT_EQ(i.power_sysfs_path, "/sys/bus/pci/devices/0000:04:00.0/hwmon/hwmon3/power1_max");
  EXPECT_EQ(i.power_limit_w, 55.0);
  EXPECT_FALSE(i.power_min_w);
  EXPECT_EQ(i.power_max_w, 75.0);
  EXPECT_EQ(i.range_source, "power1_rated_max");
  // The write goes to the vendor's file through its mechanism.
  EXPECT_EQ(sc.write({"0000:04:00.0", kSettingPowerLimit, "sysfs:" + *i.power_sysfs_path}, "60"),
            "");
  EXPECT_EQ(test::read_file(intel + "/power1_max"), "60000000");
  // xe with the package channel only (Arc A380 on xe: power2_max 55 W): the package's PL1 is
  // written, never the burst limit power2_cap; the range from power2_rated_max.
  std::string xe = t_ / "sys/bus/pci/devices/0000:05:00.0/hwmon/hwmon4";
  write_file(xe + "/power2_max", "55000000\n");
  write_file(xe + "/power2_rated_max", "75000000\n");
  write_file(xe + "/power2_cap", "89000000\n");
  DeviceState x = sc.probe("0000:05:00.0", "intel", std::string("xe"));
  EXPECT_EQ(x.power_sysfs_path, "/sys/bus/pci/devices/0000:05:00.0/hwmon/hwmon4/power2_max");
  EXPECT_EQ(x.power_limit_w, 55.0);
  EXPECT_EQ(x.power_max_w, 75.0);
  EXPECT_EQ(x.range_source, "power2_rated_max");
  EXPECT_EQ(sc.write({"0000:05:00.0", kSettingPowerLimit, "sysfs:" + *x.power_sysfs_path}, "50"),
            "");
  EXPECT_EQ(test::read_file(xe + "/power2_max"), "50000000");
  EXPECT_EQ(test::read_file(xe + "/power2_cap"), "89000000\n");
  // SysfsControl::probe picks the same vendor file as SystemControl.
  DeviceState again;
  again.bus_id = "0000:03:00.0";
  sc.sysfs().probe(again, "amd", std::nullopt);
  EXPECT_EQ(again.power_sysfs_path, a.power_sysfs_path);
}

}  // namespace
}  // namespace grey
