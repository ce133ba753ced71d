#include "enforce/device_control.h"

#include "util/strings.h"

namespace grey {

SystemControl::SystemControl(HostFs& fs, Runner& runner, LibLoader& loader,
                             const ControlIsolation& isolation)
    : sysfs_(fs), nvidia_(runner, loader, isolation), amd_(sysfs_), intel_(sysfs_) {
  vendors_ = {&nvidia_, &amd_, &intel_};
}

DeviceState SystemControl::probe(const std::string& bus_id, const std::string& vendor,
                                 const std::optional<std::string>& kernel_driver) {
  DeviceState s;
  auto n = normalize_bus_id(bus_id);
  s.bus_id = n ? *n : bus_id;
  for (VendorControl* v : vendors_) {
    if (v->drives(vendor, kernel_driver)) {
      v->probe(s);
      return s;
    }
  }
  s.notes.push_back(no_control_note(vendor, kernel_driver));
  return s;
}

void SystemControl::prefetch_nvml(const std::vector<std::string>& bus_ids) {
  std::vector<std::string> ids;
  for (const auto& b : bus_ids) {
    auto n = normalize_bus_id(b);
    ids.push_back(n ? *n : b);
  }
  nvidia_.prefetch(ids);
}

ReadResult SystemControl::read(const SettingRef& ref) {
  for (VendorControl* v : vendors_)
    if (v->handles(ref.mechanism)) return v->read(ref);
  // A sysfs path no vendor claims: the hwmon mechanism refuses it with the reason.
  if (mechanism_kind(ref.mechanism) == MechanismKind::sysfs) return sysfs_.read(ref);
  return ReadResult{std::nullopt, "unknown mechanism '" + ref.mechanism + "'"};
}

std::string SystemControl::write(const SettingRef& ref, const std::string& value) {
  for (VendorControl* v : vendors_)
    if (v->handles(ref.mechanism)) return v->write(ref, value);
  if (mechanism_kind(ref.mechanism) == MechanismKind::sysfs) return sysfs_.write(ref, value);
  return "unknown mechanism '" + ref.mechanism + "'";
}

}  // namespace grey
