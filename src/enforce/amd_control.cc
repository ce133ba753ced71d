#include "enforce/amd_control.h"

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

bool AmdControl::drives(const std::string& vendor,
                        const std::optional<std::string>& kernel_driver) const {
  return amd_driver(kernel_driver) || (vendor == "amd" && !intel_driver(kernel_driver));
}

bool AmdControl::handles(const std::string& mechanism) const {
  std::string path;
  return mechanism_kind(mechanism, &path) == MechanismKind::sysfs && ends_with(path, "/power1_cap");
}

void AmdControl::probe(DeviceState& state) {
  auto dir = hwmon_.probe_power_file(state, "power1_cap");
  if (!dir) return;
  auto lo = hwmon_.read_microwatts(*dir + "/power1_cap_min");
  auto hi = hwmon_.read_microwatts(*dir + "/power1_cap_max");
  if (lo && hi && *lo >= 0 && *hi > 0) {
    state.power_min_w = static_cast<double>(*lo) / 1e6;
    state.power_max_w = static_cast<double>(*hi) / 1e6;
    state.range_source = "power1_cap_min/power1_cap_max";
  }
}

}  // namespace grey
