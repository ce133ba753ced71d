// AMD device control: the hwmon power1_cap of the device (microwatts), range from
// power1_cap_min/power1_cap_max (both microwatts), through the shared hwmon mechanism
// (hwmon_control.h). Drives: amdgpu, radeon; else vendor "amd" unless an Intel driver (i915, xe)
// drives it.
#pragma once

#include <optional>
#include <string>

#include "enforce/control.h"
#include "enforce/hwmon_control.h"

namespace grey {

class AmdControl : public VendorControl {
 public:
  explicit AmdControl(SysfsControl& hwmon) : hwmon_(hwmon) {}
  std::string vendor() const override { return "amd"; }
  bool drives(const std::string& vendor,
              const std::optional<std::string>& kernel_driver) const override;
  bool handles(const std::string& mechanism) const override;  // sysfs:.../power1_cap
  void probe(DeviceState& state) override;
  [[nodiscard]] ReadResult read(const SettingRef& ref) override { return hwmon_.read(ref); }
  [[nodiscard]] std::string write(const SettingRef& ref, const std::string& value) override {
    return hwmon_.write(ref, value);
  }

 private:
  SysfsControl& hwmon_;
};

}  // namespace grey
