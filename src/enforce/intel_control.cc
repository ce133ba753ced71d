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
  return mechanism_kind(mechanism, &path) == MechanismKind::sysfs &&
         (ends_with(path, "/power1_max") || ends_with(path, "/power2_max"));
}

// i915 and xe hwmon (Documentation/ABI/testing/sysfs-driver-intel-{i915,xe}-hwmon): powerN_max
// is the sustained limit PL1 (powerN_cap is xe's burst limit PL2, never written here), power1
// the card and, on xe, power2 the package. The limit set is the card's PL1 where the device
// exposes it, else the package's (xe on DG2: an Arc A380 has only power2_max, 55 W); the
// detect side reads the same file (sysfs_source.cc read_intel_power_limits).
void IntelControl::probe(DeviceState& state) {
  bool card = hwmon_.find_hwmon(state.bus_id, "power1_max").has_value();
  std::string file = card                                            ? "power1_max"
                     : hwmon_.find_hwmon(state.bus_id, "power2_max") ? "power2_max"
                                                                     : "power1_max";
  auto dir = hwmon_.probe_power_file(state, file);
  if (!dir) return;
  std::string rated = file == "power1_max" ? "power1_rated_max" : "power2_rated_max";
  auto hi = hwmon_.read_microwatts(*dir + "/" + rated);
  if (hi && *hi > 0) {  // i915 reads 0 when the card does not say
    state.power_max_w = static_cast<double>(*hi) / 1e6;
    state.range_source = rated;
  }
  if (file == "power2_max")
    state.notes.push_back(
        "power limit is the package sustained limit PL1 (hwmon power2_max); the device exposes "
        "no card limit power1_max");
}

}  // namespace grey
