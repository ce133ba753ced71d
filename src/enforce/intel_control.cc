#include "enforce/intel_control.h"

#include "util/strings.h"

namespace grey {

namespace {

bool amd_driver(const std::optional<std::string>& d) {
  return d && (*d == "amdgpu" || *d == "radeon");
}
bool intel_driver(const std::optional<std::string>& d) {
  return d && (*d == "i915" || *d == "xe");
}

}  // namespace

bool IntelControl::drives(const std::string& vendor,
                          const std::optional<std::string>& kernel_driver) const {
  return intel_driver(kernel_driver) || (vendor == "intel" && !amd_driver(kernel_driver));
}

bool IntelControl::handles(const std::string& mechanism) const {
  std::string path;
  return mechanism_kind(mechanism, &path) == MechanismKind::sysfs && ends_with(path, "/power1_max");
}

void IntelControl::probe(DeviceState& state) {
  auto dir = hwmon_.probe_power_file(state, "power1_max");
  if (!dir) return;
  auto hi = hwmon_.read_microwatts(*dir + "/power1_rated_max");
  if (hi && *hi > 0) {  // i915 reads 0 when the card does not say
    state.power_max_w = static_cast<double>(*hi) / 1e6;
    state.range_source = "power1_rated_max";
  }
}

}  // namespace grey
