// Device control as the rest of the program sees it: SystemControl, which composes the vendor
// controls behind the one interface (control.h: DeviceControl, VendorControl) and dispatches
// to them - probes by the device's vendor and kernel driver, reads and writes by mechanism.
// The vendor controls, one file each: nvidia_control.h (NVML, nvidia-smi), amd_control.h and
// intel_control.h (hwmon power caps, sharing hwmon_control.h). Including this header gives all
// of them, as it did when they lived here.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "enforce/amd_control.h"
#include "enforce/control.h"
#include "enforce/hwmon_control.h"
#include "enforce/intel_control.h"
#include "enforce/nvidia_control.h"
#include "util/host_fs.h"
#include "util/lib_loader.h"
#include "util/runner.h"

namespace grey {

// Dispatches by mechanism to the vendor control whose mechanism it is; probes a device through
// the vendor control that drives it. When NVML hung or crashed (isolated control), an NVML
// setting is read and written through nvidia-smi instead, where it answers (NvidiaControl).
class SystemControl : public DeviceControl {
 public:
  SystemControl(HostFs& fs, Runner& runner, LibLoader& loader,
                const ControlIsolation& isolation = {});
  SystemControl(const SystemControl&) = delete;
  SystemControl& operator=(const SystemControl&) = delete;
  // The current state of one device: NVIDIA through NVML (nvidia-smi when NVML does not
  // answer), AMD and Intel through sysfs.
  DeviceState probe(const std::string& bus_id, const std::string& vendor,
                    const std::optional<std::string>& kernel_driver);
  [[nodiscard]] ReadResult read(const SettingRef& ref) override;
  [[nodiscard]] std::string write(const SettingRef& ref, const std::string& value) override;
  // Before probing several NVIDIA devices: one NVML child probes them all.
  void prefetch_nvml(const std::vector<std::string>& bus_ids);

  NvmlAccess& nvml() { return nvidia_.nvml(); }
  NvidiaSmiControl& nvidia_smi() { return nvidia_.nvidia_smi(); }
  SysfsControl& sysfs() { return sysfs_; }
  // The vendor controls, in the order they are asked (NVIDIA, AMD, Intel).
  const std::vector<VendorControl*>& vendors() const { return vendors_; }

 private:
  SysfsControl sysfs_;
  NvidiaControl nvidia_;
  AmdControl amd_;
  IntelControl intel_;
  std::vector<VendorControl*> vendors_;
};

}  // namespace grey
