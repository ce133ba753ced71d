// The hwmon power-cap mechanism ("sysfs:<path>") that AMD (amd_control.h) and Intel
// (intel_control.h) share: finding a device's hwmon directory, reading and writing its power
// file, refusing any path that is not a hwmon power1_cap/power1_max under /sys.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "enforce/control.h"
#include "util/host_fs.h"

namespace grey {

// hwmon power caps through HostFs: AMD power1_cap (range power1_cap_min/max), Intel i915/xe
// power1_max (range: power1_rated_max when non-zero). All in microwatts.
class SysfsControl : public DeviceControl {
 public:
  explicit SysfsControl(HostFs& fs) : fs_(fs) {}
  // The hwmon directory of the device at `bus_id` holding `power_file`, searched under
  // /sys/bus/pci/devices/<bus>/hwmon and /sys/class/drm/cardN/device/hwmon; nullopt if none.
  std::optional<std::string> find_hwmon(const std::string& bus_id, const std::string& power_file);
  // Fills power limit, range and power_sysfs_path through the vendor's control (AMD:
  // amdgpu/radeon/amd -> power1_cap; Intel: i915/xe/intel -> power1_max); a note when neither
  // drives the device.
  void probe(DeviceState& state, const std::string& vendor,
             const std::optional<std::string>& kernel_driver);
  // The part the vendors share: finds `power_file`, sets power_sysfs_path and power_limit_w
  // (notes when it cannot). The hwmon directory, or nullopt when there is none.
  std::optional<std::string> probe_power_file(DeviceState& state, const std::string& power_file);
  // A microwatt integer file, nullopt when unreadable or not an integer.
  std::optional<int64_t> read_microwatts(const std::string& path);
  [[nodiscard]] ReadResult read(const SettingRef& ref) override;
  [[nodiscard]] std::string write(const SettingRef& ref, const std::string& value) override;

 private:
  HostFs& fs_;
};

}  // namespace grey
