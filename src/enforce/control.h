// The one device-control interface: read one setting, write one setting, through one named
// mechanism; and per vendor (VendorControl), which devices it drives, which mechanisms are its
// own and what a device's state is now. One file per vendor implements it:
//   nvidia_control.{h,cc}  NVIDIA: NVML (in a __control child, isolated_control.h) with
//                          nvidia-smi as the fallback
//   amd_control.{h,cc}     AMD: hwmon power1_cap, range power1_cap_min/max
//   intel_control.{h,cc}   Intel i915/xe: hwmon power1_max, range power1_rated_max
// (AMD and Intel share the hwmon mechanism, hwmon_control.h.) SystemControl
// (device_control.h) composes them. Everything else in src/enforce is pure data (the planner)
// or bookkeeping (the journal); only the controls touch a device.
//
// Values cross this interface as canonical text, the same text the journal stores:
//   persistence_mode  "on" | "off"
//   power_limit_w     watts, shortest exact form: "250", "237.5", "199.125"
// Mechanisms are the strings Action::mechanism carries (see actions.h):
//   "nvml:nvmlDeviceSetPersistenceMode", "nvml:nvmlDeviceSetPowerManagementLimit"
//   "nvidia-smi -i 0000:01:00.0 -pm 1", "nvidia-smi -i 0000:01:00.0 -pl 250"
//   "sysfs:/sys/class/drm/card0/device/hwmon/hwmon4/power1_cap"
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace grey {

// Setting names (Action::setting, journal "setting").
inline constexpr const char* kSettingPersistence = "persistence_mode";
inline constexpr const char* kSettingPowerLimit = "power_limit_w";

// Mechanism strings and prefixes.
inline constexpr const char* kMechNvmlPersistence = "nvml:nvmlDeviceSetPersistenceMode";
inline constexpr const char* kMechNvmlPowerLimit = "nvml:nvmlDeviceSetPowerManagementLimit";
inline constexpr const char* kMechSysfsPrefix = "sysfs:";
inline constexpr const char* kMechNvidiaSmiPrefix = "nvidia-smi ";

enum class MechanismKind { nvml, nvidia_smi, sysfs, unknown };
// Which control a mechanism string belongs to; `path` gets the sysfs path for sysfs.
MechanismKind mechanism_kind(const std::string& mechanism, std::string* path = nullptr);
// "nvidia-smi -i 0000:01:00.0 -pm 1" / "... -pl 250" for a setting and a canonical value.
std::string nvidia_smi_mechanism(const std::string& bus_id, const std::string& setting,
                                 const std::string& value);

// Canonical text of a power in watts: "250", "237.5", "199.125" (at most mW resolution).
std::string watts_text(double w);
// "on"/"off".
inline std::string onoff(bool b) {
  return b ? "on" : "off";
}
// Two canonical values of `setting` mean the same: watts within 0.5 W (devices round to their
// own granularity), persistence exactly.
bool same_value(const std::string& setting, const std::string& a, const std::string& b);

// One setting of one device through one mechanism.
struct SettingRef {
  std::string bus_id;     // normalized "0000:01:00.0"
  std::string setting;    // kSettingPersistence | kSettingPowerLimit
  std::string mechanism;  // as in Action::mechanism
};

struct ReadResult {
  std::optional<std::string> value;  // canonical text
  std::string error;                 // why not, when value is empty
};

class DeviceControl {
 public:
  virtual ~DeviceControl() = default;
  [[nodiscard]] virtual ReadResult read(const SettingRef& ref) = 0;
  // Writes the canonical `value`. Returns "" on success, else the device's own message
  // ("nvmlDeviceSetPowerManagementLimit failed: NVML_ERROR_NO_PERMISSION (4): ...",
  // "/sys/...: Permission denied", "nvidia-smi ...: exit code 4: ... Insufficient Permissions").
  [[nodiscard]] virtual std::string write(const SettingRef& ref, const std::string& value) = 0;
};

// What can be read about one device right now, and how. Filled by a probe (below) or by a
// test; the planner reads nothing else.
struct DeviceState {
  std::string bus_id;
  std::optional<double> power_limit_w;
  std::optional<bool> persistence;
  // The device's own power-limit range as read now (NVML constraints, power1_cap_min/max,
  // power1_rated_max); `range_source` says where from ("NVML constraints", "power1_cap_min/max").
  std::optional<double> power_min_w, power_max_w;
  std::string range_source;
  // Mechanism availability.
  bool nvml = false;        // the device answers through NVML
  bool nvidia_smi = false;  // nvidia-smi is on PATH and answered for this device
  std::optional<std::string> power_sysfs_path;  // "/sys/.../hwmon4/power1_cap" | power1_max
  std::vector<std::string> notes;  // why a mechanism is missing, in the device's own words
};

// One vendor's device control.
class VendorControl : public DeviceControl {
 public:
  virtual std::string vendor() const = 0;  // "nvidia" | "amd" | "intel"
  // True when this control drives a device of this vendor and kernel driver (the driver
  // decides first: an "amd" device driven by i915 is Intel's).
  virtual bool drives(const std::string& vendor,
                      const std::optional<std::string>& kernel_driver) const = 0;
  // True when `mechanism` (Action::mechanism) is one of this control's.
  virtual bool handles(const std::string& mechanism) const = 0;
  // What can be read about the device at state.bus_id now (power limit, range, persistence)
  // and through which mechanisms it can be set; why not, in state.notes.
  virtual void probe(DeviceState& state) = 0;
  // Before probing several devices of this vendor: all at once where that is cheaper.
  virtual void prefetch(const std::vector<std::string>& bus_ids) { (void)bus_ids; }
};

// The note for a device no vendor control drives.
std::string no_control_note(const std::string& vendor,
                            const std::optional<std::string>& kernel_driver);

// Watts from canonical text; nullopt for anything that is not a finite number.
std::optional<double> parse_watts(const std::string& v);

}  // namespace grey
