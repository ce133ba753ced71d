// Intel device control: the sustained power limit PL1 of the device's hwmon (microwatts): the
// card's power1_max, else (xe, package only) power2_max; range from the matching
// power1_rated_max/power2_rated_max when non-zero (i915 reads 0 when the card does not say),
// through the shared hwmon mechanism (hwmon_control.h). Drives: i915, xe; else vendor "intel"
// unless an AMD driver (amdgpu, radeon) drives it.
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
  bool handles(const std::string& mechanism) const override;  // .../power1_max|power2_max
  void probe(DeviceState& state) override;
  [[nodiscard]] ReadResult read(const SettingRef& ref) override { return hwmon_.read(ref); }
  [[nodiscard]] std::string write(const SettingRef& ref, const std::string& value) override {
    return hwmon_.write(ref, value);
  }

 private:
  SysfsControl& hwmon_;
};

}  // namespace grey
