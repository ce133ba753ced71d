// The shared part of the device-control interface: mechanism strings and canonical values.
#include "enforce/control.h"

#include <cmath>
#include <cstdio>
#include <cstring>

#include "util/strings.h"

namespace grey {

std::optional<double> parse_watts(const std::string& v) {
  auto d = parse_double(trim(v));
  if (!d || !std::isfinite(*d)) return std::nullopt;
  return *d;
}

MechanismKind mechanism_kind(const std::string& mechanism, std::string* path) {
  if (starts_with(mechanism, "nvml:")) return MechanismKind::nvml;
  if (starts_with(mechanism, kMechNvidiaSmiPrefix)) return MechanismKind::nvidia_smi;
  if (starts_with(mechanism, kMechSysfsPrefix)) {
    if (path) *path = mechanism.substr(std::strlen(kMechSysfsPrefix));
    return MechanismKind::sysfs;
  }
  return MechanismKind::unknown;
}

std::string nvidia_smi_mechanism(const std::string& bus_id, const std::string& setting,
                                 const std::string& value) {
  if (setting == kSettingPersistence)
    return std::string(kMechNvidiaSmiPrefix) + "-i " + bus_id + " -pm " +
           (value == "on" ? "1" : "0");
  return std::string(kMechNvidiaSmiPrefix) + "-i " + bus_id + " -pl " + value;
}

std::string watts_text(double w) {
  if (!std::isfinite(w)) return "invalid";
  // Beyond what a milliwatt count holds (1e308 wrapped to -9223372036854776): the value as it is.
  if (std::fabs(w) >= 1e12) return shortest_double(w);
  long long mw = std::llround(w * 1000.0);
  char buf[64];
  if (mw % 1000 == 0) {
    std::snprintf(buf, sizeof buf, "%lld", mw / 1000);
    return buf;
  }
  std::snprintf(buf, sizeof buf, "%.3f", static_cast<double>(mw) / 1000.0);
  std::string s = buf;
  while (!s.empty() && s.back() == '0') s.pop_back();
  return s;
}

bool same_value(const std::string& setting, const std::string& a, const std::string& b) {
  if (setting == kSettingPowerLimit) {
    auto x = parse_watts(a), y = parse_watts(b);
    if (x && y) return std::fabs(*x - *y) < 0.5;
  }
  return a == b;
}

std::string no_control_note(const std::string& vendor,
                            const std::optional<std::string>& kernel_driver) {
  return "no sysfs power-limit file known for vendor '" + vendor + "'" +
         (kernel_driver ? " (driver " + *kernel_driver + ")" : "");
}

}  // namespace grey
