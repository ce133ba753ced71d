// Intel device control: the hwmon power1_max of the device (microwatts), range from
// power1_rated_max when non-zero (i915 reads 0 when the card does not say), through the shared
// hwmon mechanism (hwmon_control.h). Drives: i915, xe; else vendor "intel" unless an AMD driver
// (amdgpu, radeon) drives it.
#pragma once

#include <optional>
#include <string>

#include "enforce/control.h"
#include "enforce/hwmon_control.h"

namespace grey {

class IntelControl : public VendorControl {
 public:
  explicit IntelControl(SysfsControl& hwmon) : hwmon_(hwmon) {}
  std::string vendor() const override { return "intel"; }
  bool drives(const std::string& vendor,
              const std::optional<std::string>& kernel_driver) const override;
  bool handles(const std::string& mechanism) const override;  // sysfs:.../power1_max
  void probe(DeviceState& state) override;
  [[nodiscard]] ReadResult read(const SettingRef& ref) override { return hwmon_.read(ref); }
  [[nodiscard]] std::string write(const SettingRef& ref, const std::string& value) override {
    return hwmon_.write(ref, value);
  }

 private:
  SysfsControl& hwmon_;
};

}  // namespace grey
