// The narrow interface between enforcement and the devices: read one setting, write one
// setting, through one named mechanism. Everything else in src/enforce is pure data (the
// planner) or bookkeeping (the journal); only the classes here touch a device.
//
// Values cross this interface as canonical text, the same text the journal stores:
//   persistence_mode  "on" | "off"
//   power_limit_w     watts, shortest exact form: "250", "237.5", "199.125"
// Mechanisms are the strings Action::mechanism carries (see actions.h):
//   "nvml:nvmlDeviceSetPersistenceMode", "nvml:nvmlDeviceSetPowerManagementLimit"
//   "nvidia-smi -i 0000:01:00.0 -pm 1", "nvidia-smi -i 0000:01:00.0 -pl 250"
//   "sysfs:/sys/class/drm/card0/device/hwmon/hwmon4/power1_cap"
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "util/host_fs.h"
#include "util/lib_loader.h"
#include "util/runner.h"

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

// NVML device control, in this process (NvmlControl) or in a child process under a deadline
// (IsolatedNvmlControl, isolated_control.h).
class NvmlAccess : public DeviceControl {
 public:
  // "" when NVML is loaded and initialized, else why not.
  [[nodiscard]] virtual std::string available() = 0;
  // Fills power limit, range, persistence and `nvml` for the device at state.bus_id.
  virtual void probe(DeviceState& state) = 0;
  // Non-empty once NVML hung or crashed in this run (isolated control only): it is not called
  // again, every later call answers this at once.
  virtual std::string broken() const { return ""; }
  // Probes these devices ahead, all at once where that is cheaper (one child process for all);
  // probe() then answers from what was found. A no-op in process.
  virtual void prefetch(const std::vector<std::string>& bus_ids) { (void)bus_ids; }
};

// NVML through dlopen (libnvidia-ml.so.1 or $GREY_NVML_LIBRARY). Initialized on first use,
// shut down when destroyed. Devices are found by PCI bus id. Runs the library in THIS process:
// a hang or a crash inside NVML is ours (use IsolatedNvmlControl outside tests).
class NvmlControl : public NvmlAccess {
 public:
  explicit NvmlControl(LibLoader& loader);
  ~NvmlControl() override;
  NvmlControl(const NvmlControl&) = delete;
  NvmlControl& operator=(const NvmlControl&) = delete;

  [[nodiscard]] std::string available() override;
  void probe(DeviceState& state) override;
  [[nodiscard]] ReadResult read(const SettingRef& ref) override;
  [[nodiscard]] std::string write(const SettingRef& ref, const std::string& value) override;
  // Called with the NVML function's name right before each call into the library (the control
  // child writes it to stderr, so that the parent can name the call that hung or crashed).
  void set_call_hook(void (*hook)(const char* call));
  // "" when NVML is available and nvmlDeviceGetCount answers, else why not.
  [[nodiscard]] std::string device_count_error();

  struct Impl;

 private:
  LibLoader& loader_;
  std::unique_ptr<Impl> impl_;
};

// nvidia-smi through a Runner (argv only): `-i <bus> -pm 1`, `-i <bus> -pl <W>`, read back by
// `--query-gpu=power.limit,persistence_mode --format=csv,noheader,nounits -i <bus>`.
class NvidiaSmiControl : public DeviceControl {
 public:
  explicit NvidiaSmiControl(Runner& runner, std::string program = "nvidia-smi");
  void probe(DeviceState& state);
  [[nodiscard]] ReadResult read(const SettingRef& ref) override;
  [[nodiscard]] std::string write(const SettingRef& ref, const std::string& value) override;
  // The argv a write runs (exposed for tests and dry-run descriptions).
  std::vector<std::string> write_argv(const std::string& bus_id, const std::string& setting,
                                      const std::string& value) const;

 private:
  struct Query {
    std::optional<double> power_limit_w;
    std::optional<bool> persistence;
    std::string error;
  };
  Query query(const std::string& bus_id);
  // A timed-out nvidia-smi (stuck in the driver like NVML) is not run again in this process.
  std::string note_timeout(const std::vector<std::string>& argv, const CommandResult& r);
  Runner& runner_;
  std::string program_;
  std::string hung_;
};

// hwmon power caps through HostFs: AMD power1_cap (range power1_cap_min/max), Intel i915/xe
// power1_max (range: power1_rated_max when non-zero). All in microwatts.
class SysfsControl : public DeviceControl {
 public:
  explicit SysfsControl(HostFs& fs) : fs_(fs) {}
  // The hwmon directory of the device at `bus_id` holding `power_file`, searched under
  // /sys/bus/pci/devices/<bus>/hwmon and /sys/class/drm/cardN/device/hwmon; nullopt if none.
  std::optional<std::string> find_hwmon(const std::string& bus_id, const std::string& power_file);
  // Fills power limit, range and power_sysfs_path. `kernel_driver`/`vendor` choose the file:
  // amdgpu/amd -> power1_cap, i915/xe/intel -> power1_max.
  void probe(DeviceState& state, const std::string& vendor,
             const std::optional<std::string>& kernel_driver);
  [[nodiscard]] ReadResult read(const SettingRef& ref) override;
  [[nodiscard]] std::string write(const SettingRef& ref, const std::string& value) override;

 private:
  HostFs& fs_;
};

// How SystemControl reaches NVML: `exe` empty: in this process (tests, GREY_PROBE_IN_PROCESS);
// else each request runs as `exe __control REQUEST` under `timeout` (isolated_control.h).
struct ControlIsolation {
  std::string exe;
  std::chrono::milliseconds timeout{5000};
};

// Dispatches by mechanism to the right control; probes a device with all of them. When NVML
// hung or crashed (isolated control), an NVML setting is read and written through nvidia-smi
// instead, where it answers.
class SystemControl : public DeviceControl {
 public:
  SystemControl(HostFs& fs, Runner& runner, LibLoader& loader,
                const ControlIsolation& isolation = {});
  // The current state of one device: NVIDIA through NVML (nvidia-smi when NVML does not
  // answer), AMD and Intel through sysfs.
  DeviceState probe(const std::string& bus_id, const std::string& vendor,
                    const std::optional<std::string>& kernel_driver);
  [[nodiscard]] ReadResult read(const SettingRef& ref) override;
  [[nodiscard]] std::string write(const SettingRef& ref, const std::string& value) override;
  // Before probing several NVIDIA devices: one NVML child probes them all.
  void prefetch_nvml(const std::vector<std::string>& bus_ids);

  NvmlAccess& nvml() { return *nvml_; }
  NvidiaSmiControl& nvidia_smi() { return smi_; }
  SysfsControl& sysfs() { return sysfs_; }

 private:
  std::unique_ptr<NvmlAccess> nvml_;
  NvidiaSmiControl smi_;
  SysfsControl sysfs_;
};

}  // namespace grey
