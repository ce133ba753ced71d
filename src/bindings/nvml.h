// The one NVML binding: a single function table (nvml::Api) resolved from libnvidia-ml.so.1
// (or $GREY_NVML_LIBRARY) through util/lib_loader, each symbol with its versioned fallbacks
// (newest first), and the one error naming (error_text / Api::failure). Used by detection
// (src/sources/nvml_source.cc, run in a __probe child), telemetry (src/telemetry/
// nvml_telemetry.cc, on a worker thread with a deadline) and device control (src/enforce/
// nvidia_control.cc, in a __control child). The binding itself starts no thread or process
// and calls nothing in the library on its own: every call is made by its user, which owns the
// deadline.
//
// A symbol the library lacks leaves its entry null (`if (api.temperature)`); `found` names
// the symbol resolved, so a caller can tell which layout a versioned call fills.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bindings/nvml_api.h"
#include "util/lib_loader.h"

namespace grey::nvml {

inline constexpr const char* kSoname = "libnvidia-ml.so.1";
inline constexpr const char* kEnvOverride = "GREY_NVML_LIBRARY";

// Our own name of a documented nvmlReturn_t ("NVML_ERROR_DRIVER_NOT_LOADED"); nullptr when the
// value is not documented.
const char* return_name(nvmlReturn_t r);

// The one error naming: "NVML_ERROR_DRIVER_NOT_LOADED (9): Driver Not Loaded" - our name and
// the number, then nvmlErrorString's text when the library has one that adds something
// (`error_string` may be null: our name alone). An undocumented value reads
// "unknown NVML error (1234)" (plus the library's text).
std::string error_text(nvmlReturn_t r, nvmlErrorString_fn error_string);

// "<call> failed: " + error_text(r, error_string).
std::string describe_failure(const std::string& call, nvmlReturn_t r,
                             nvmlErrorString_fn error_string);

// One entry of the table: the function pointer, the symbol it was resolved from and the names
// that were tried (newest first).
template <typename F>
struct Fn {
  F fn = nullptr;
  std::string found;               // "" when none of `names` exists
  std::vector<const char*> names;  // tried, newest first
  explicit operator bool() const { return fn != nullptr; }
  template <typename... A>
  auto operator()(A... a) const {
    return fn(a...);
  }
};

class Api {
 public:
  // Resolves every symbol of the table in `lib` (kept loaded while the Api lives; vendor
  // libraries are never unloaded anyway, see DynLib).
  explicit Api(std::unique_ptr<DynLib> lib);
  Api(const Api&) = delete;
  Api& operator=(const Api&) = delete;

  // libnvidia-ml.so.1 or $GREY_NVML_LIBRARY through `loader`. nullptr when it does not load;
  // then *failure holds the path tried and dlerror's text.
  static std::unique_ptr<Api> load(LibLoader& loader, LoadResult* failure);

  const std::string& path() const { return lib_->path(); }

  // "nvmlInit_v2 failed: NVML_ERROR_DRIVER_NOT_LOADED (9): Driver Not Loaded".
  std::string failure(const std::string& call, nvmlReturn_t r) const {
    return describe_failure(call, r, error_string.fn);
  }
  // error_text with this library's nvmlErrorString.
  std::string error(nvmlReturn_t r) const { return error_text(r, error_string.fn); }

  // "nvmlInit_v2/nvmlInit not found in <path>; <what> unknown".
  template <typename F>
  std::string missing_note(const Fn<F>& f, const std::string& what) const {
    return missing_note(f.names, what);
  }
  std::string missing_note(const std::vector<const char*>& names, const std::string& what) const;
  // True when `f` exists; else appends missing_note(f, what) to *notes.
  template <typename F>
  bool require(const Fn<F>& f, const std::string& what, std::vector<std::string>* notes) const {
    if (f) return true;
    if (notes) notes->push_back(missing_note(f, what));
    return false;
  }

  // Which nvmlProcessInfo layout a *RunningProcesses entry fills: 1 (nvmlProcessInfo_v1_t, the
  // unversioned symbol) or 2 (nvmlProcessInfo_v2_t: the _v2 and _v3 symbols).
  static int process_info_layout(const Fn<nvmlDeviceGetRunningProcesses_fn>& f);
  // True when the PCI info entry is the unversioned call, which fills the older, shorter struct
  // (only busIdLegacy's place is its own).
  bool pci_info_is_legacy() const { return pci_info.found == "nvmlDeviceGetPciInfo"; }

  // ---- The table --------------------------------------------------------------------------
  // Initialization and errors.
  Fn<nvmlInit_fn> init;  // nvmlInit_v2, nvmlInit
  Fn<nvmlShutdown_fn> shutdown;
  Fn<nvmlErrorString_fn> error_string;
  // System.
  Fn<nvmlSystemGetDriverVersion_fn> driver_version;
  Fn<nvmlSystemGetCudaDriverVersion_fn> cuda_driver_version;  // _v2, plain
  Fn<nvmlSystemGetProcessName_fn> process_name;
  // Devices.
  Fn<nvmlDeviceGetCount_fn> device_count;                     // _v2, plain
  Fn<nvmlDeviceGetHandleByIndex_fn> handle_by_index;          // _v2, plain
  Fn<nvmlDeviceGetHandleByPciBusId_fn> handle_by_pci_bus_id;  // _v2, plain
  Fn<nvmlDeviceGetUint_fn> index;
  Fn<nvmlDeviceGetString_fn> name;
  Fn<nvmlDeviceGetString_fn> uuid;
  Fn<nvmlDeviceGetPciInfo_fn> pci_info;  // _v3, _v2, plain
  Fn<nvmlDeviceGetMemoryInfo_fn> memory_info;
  Fn<nvmlDeviceGetMemoryInfo_v2_fn> memory_info_v2;
  Fn<nvmlDeviceGetCudaComputeCapability_fn> compute_capability;
  Fn<nvmlDeviceGetMaxClockInfo_fn> max_clock;
  Fn<nvmlDeviceGetUint_fn> memory_bus_width;
  Fn<nvmlDeviceGetUint_fn> max_pcie_gen;
  Fn<nvmlDeviceGetUint_fn> max_pcie_width;
  Fn<nvmlDeviceGetTemperatureThreshold_fn> temperature_threshold;
  Fn<nvmlDeviceGetTemperature_fn> temperature;
  Fn<nvmlDeviceGetUtilizationRates_fn> utilization;
  Fn<nvmlDeviceGetUint_fn> power_usage;           // mW
  Fn<nvmlDeviceGetUint_fn> power_limit;           // mW, nvmlDeviceGetPowerManagementLimit
  Fn<nvmlDeviceGetUint_fn> enforced_power_limit;  // mW
  Fn<nvmlDeviceGetUint_fn> default_power_limit;   // mW
  Fn<nvmlDeviceGetPowerManagementLimitConstraints_fn> power_limit_constraints;  // mW
  Fn<nvmlDeviceGetMigMode_fn> mig_mode;
  Fn<nvmlDeviceGetUint_fn> max_mig_device_count;
  Fn<nvmlDeviceGetMigDeviceHandleByIndex_fn> mig_device_handle_by_index;
  Fn<nvmlDeviceGetUint_fn> gpu_instance_id;      // on a MIG handle
  Fn<nvmlDeviceGetUint_fn> compute_instance_id;  // on a MIG handle
  Fn<nvmlDeviceGetPersistenceMode_fn> persistence_mode;
  Fn<nvmlDeviceGetRunningProcesses_fn> compute_processes;   // _v3, _v2, plain
  Fn<nvmlDeviceGetRunningProcesses_fn> graphics_processes;  // _v3, _v2, plain
  Fn<nvmlDeviceGetProcessUtilization_fn> process_utilization;
  // Commands.
  Fn<nvmlDeviceSetUint_fn> set_power_limit;  // mW, nvmlDeviceSetPowerManagementLimit
  Fn<nvmlDeviceSetPersistenceMode_fn> set_persistence_mode;
  // Health (telemetry/health.h).
  Fn<nvmlEventSetCreate_fn> event_set_create;
  Fn<nvmlDeviceRegisterEvents_fn> register_events;
  Fn<nvmlEventSetWait_fn> event_set_wait;  // _v2, plain
  Fn<nvmlEventSetFree_fn> event_set_free;
  Fn<nvmlDeviceGetTotalEccErrors_fn> total_ecc_errors;
  Fn<nvmlDeviceGetRetiredPages_fn> retired_pages;
  Fn<nvmlDeviceGetRetiredPagesPendingStatus_fn> retired_pages_pending;
  Fn<nvmlDeviceGetRemappedRows_fn> remapped_rows;

 private:
  template <typename F>
  void resolve(Fn<F>& f, std::initializer_list<const char*> names);
  std::unique_ptr<DynLib> lib_;
};

// A string NVML wrote into a fixed buffer: up to the NUL (or the buffer's end), trimmed.
std::string from_buffer(const char* buf, size_t size);

}  // namespace grey::nvml
