#include "bindings/nvml.h"

#include <cstring>

#include "util/strings.h"

namespace grey::nvml {

const char* return_name(nvmlReturn_t r) {
  switch (r) {
    case 0:
      return "NVML_SUCCESS";
    case 1:
      return "NVML_ERROR_UNINITIALIZED";
    case 2:
      return "NVML_ERROR_INVALID_ARGUMENT";
    case 3:
      return "NVML_ERROR_NOT_SUPPORTED";
    case 4:
      return "NVML_ERROR_NO_PERMISSION";
    case 5:
      return "NVML_ERROR_ALREADY_INITIALIZED";
    case 6:
      return "NVML_ERROR_NOT_FOUND";
    case 7:
      return "NVML_ERROR_INSUFFICIENT_SIZE";
    case 8:
      return "NVML_ERROR_INSUFFICIENT_POWER";
    case 9:
      return "NVML_ERROR_DRIVER_NOT_LOADED";
    case 10:
      return "NVML_ERROR_TIMEOUT";
    case 11:
      return "NVML_ERROR_IRQ_ISSUE";
    case 12:
      return "NVML_ERROR_LIBRARY_NOT_FOUND";
    case 13:
      return "NVML_ERROR_FUNCTION_NOT_FOUND";
    case 14:
      return "NVML_ERROR_CORRUPTED_INFOROM";
    case 15:
      return "NVML_ERROR_GPU_IS_LOST";
    case 16:
      return "NVML_ERROR_RESET_REQUIRED";
    case 17:
      return "NVML_ERROR_OPERATING_SYSTEM";
    case 18:
      return "NVML_ERROR_LIB_RM_VERSION_MISMATCH";
    case 19:
      return "NVML_ERROR_IN_USE";
    case 20:
      return "NVML_ERROR_MEMORY";
    case 21:
      return "NVML_ERROR_NO_DATA";
    case 22:
      return "NVML_ERROR_VGPU_ECC_NOT_SUPPORTED";
    case 23:
      return "NVML_ERROR_INSUFFICIENT_RESOURCES";
    case 24:
      return "NVML_ERROR_FREQ_NOT_SUPPORTED";
    case 25:
      return "NVML_ERROR_ARGUMENT_VERSION_MISMATCH";
    case 26:
      return "NVML_ERROR_DEPRECATED";
    case 27:
      return "NVML_ERROR_NOT_READY";
    case 28:
      return "NVML_ERROR_GPU_NOT_FOUND";
    case 29:
      return "NVML_ERROR_INVALID_STATE";
    case 999:
      return "NVML_ERROR_UNKNOWN";
    default:
      return nullptr;
  }
}

std::string error_text(nvmlReturn_t r, nvmlErrorString_fn error_string) {
  const char* n = return_name(r);
  std::string s = std::string(n ? n : "unknown NVML error") + " (" + std::to_string(r) + ")";
  if (error_string) {
    const char* text = error_string(r);
    if (text && *text && (!n || std::strcmp(text, n) != 0)) s += std::string(": ") + text;
  }
  return s;
}

std::string describe_failure(const std::string& call, nvmlReturn_t r,
                             nvmlErrorString_fn error_string) {
  return call + " failed: " + error_text(r, error_string);
}

std::string from_buffer(const char* buf, size_t size) {
  size_t n = 0;
  while (n < size && buf[n] != '\0') ++n;
  return std::string(trim(std::string_view(buf, n)));
}

template <typename F>
void Api::resolve(Fn<F>& f, std::initializer_list<const char*> names) {
  f.names.assign(names.begin(), names.end());
  f.fn = lib_->fn<F>(names, &f.found);
}

Api::Api(std::unique_ptr<DynLib> lib) : lib_(std::move(lib)) {
  resolve(init, {"nvmlInit_v2", "nvmlInit"});
  resolve(shutdown, {"nvmlShutdown"});
  resolve(error_string, {"nvmlErrorString"});
  resolve(driver_version, {"nvmlSystemGetDriverVersion"});
  resolve(cuda_driver_version,
          {"nvmlSystemGetCudaDriverVersion_v2", "nvmlSystemGetCudaDriverVersion"});
  resolve(process_name, {"nvmlSystemGetProcessName"});
  resolve(device_count, {"nvmlDeviceGetCount_v2", "nvmlDeviceGetCount"});
  resolve(handle_by_index, {"nvmlDeviceGetHandleByIndex_v2", "nvmlDeviceGetHandleByIndex"});
  resolve(handle_by_pci_bus_id,
          {"nvmlDeviceGetHandleByPciBusId_v2", "nvmlDeviceGetHandleByPciBusId"});
  resolve(index, {"nvmlDeviceGetIndex"});
  resolve(name, {"nvmlDeviceGetName"});
  resolve(uuid, {"nvmlDeviceGetUUID"});
  resolve(pci_info, {"nvmlDeviceGetPciInfo_v3", "nvmlDeviceGetPciInfo_v2", "nvmlDeviceGetPciInfo"});
  resolve(memory_info, {"nvmlDeviceGetMemoryInfo"});
  resolve(memory_info_v2, {"nvmlDeviceGetMemoryInfo_v2"});
  resolve(compute_capability, {"nvmlDeviceGetCudaComputeCapability"});
  resolve(max_clock, {"nvmlDeviceGetMaxClockInfo"});
  resolve(memory_bus_width, {"nvmlDeviceGetMemoryBusWidth"});
  resolve(max_pcie_gen, {"nvmlDeviceGetMaxPcieLinkGeneration"});
  resolve(max_pcie_width, {"nvmlDeviceGetMaxPcieLinkWidth"});
  resolve(temperature_threshold, {"nvmlDeviceGetTemperatureThreshold"});
  resolve(temperature, {"nvmlDeviceGetTemperature"});
  resolve(utilization, {"nvmlDeviceGetUtilizationRates"});
  resolve(power_usage, {"nvmlDeviceGetPowerUsage"});
  resolve(power_limit, {"nvmlDeviceGetPowerManagementLimit"});
  resolve(enforced_power_limit, {"nvmlDeviceGetEnforcedPowerLimit"});
  resolve(default_power_limit, {"nvmlDeviceGetPowerManagementDefaultLimit"});
  resolve(power_limit_constraints, {"nvmlDeviceGetPowerManagementLimitConstraints"});
  resolve(mig_mode, {"nvmlDeviceGetMigMode"});
  resolve(max_mig_device_count, {"nvmlDeviceGetMaxMigDeviceCount"});
  resolve(mig_device_handle_by_index, {"nvmlDeviceGetMigDeviceHandleByIndex"});
  resolve(gpu_instance_id, {"nvmlDeviceGetGpuInstanceId"});
  resolve(compute_instance_id, {"nvmlDeviceGetComputeInstanceId"});
  resolve(persistence_mode, {"nvmlDeviceGetPersistenceMode"});
  resolve(compute_processes,
          {"nvmlDeviceGetComputeRunningProcesses_v3", "nvmlDeviceGetComputeRunningProcesses_v2",
           "nvmlDeviceGetComputeRunningProcesses"});
  resolve(graphics_processes,
          {"nvmlDeviceGetGraphicsRunningProcesses_v3", "nvmlDeviceGetGraphicsRunningProcesses_v2",
           "nvmlDeviceGetGraphicsRunningProcesses"});
  resolve(process_utilization, {"nvmlDeviceGetProcessUtilization"});
  resolve(set_power_limit, {"nvmlDeviceSetPowerManagementLimit"});
  resolve(set_persistence_mode, {"nvmlDeviceSetPersistenceMode"});
  resolve(event_set_create, {"nvmlEventSetCreate"});
  resolve(register_events, {"nvmlDeviceRegisterEvents"});
  resolve(event_set_wait, {"nvmlEventSetWait_v2", "nvmlEventSetWait"});
  resolve(event_set_free, {"nvmlEventSetFree"});
  resolve(total_ecc_errors, {"nvmlDeviceGetTotalEccErrors"});
  resolve(retired_pages, {"nvmlDeviceGetRetiredPages"});
  resolve(retired_pages_pending, {"nvmlDeviceGetRetiredPagesPendingStatus"});
  resolve(remapped_rows, {"nvmlDeviceGetRemappedRows"});
}

std::unique_ptr<Api> Api::load(LibLoader& loader, LoadResult* failure) {
  LoadResult lr = loader.load(kSoname, kEnvOverride);
  if (!lr.lib) {
    if (failure) *failure = std::move(lr);
    return nullptr;
  }
  return std::make_unique<Api>(std::move(lr.lib));
}

std::string Api::missing_note(const std::vector<const char*>& names,
                              const std::string& what) const {
  // Appended piece by piece: `(a ? "" : "/") + std::string(n)` makes GCC 12 at -O3 warn
  // -Wrestrict inside std::string's operator+ (a false positive, GCC bug 105329).
  std::string list;
  for (const char* n : names) {
    if (!list.empty()) list += '/';
    list += n;
  }
  list += " not found in ";
  list += path();
  list += "; ";
  list += what;
  list += " unknown";
  return list;
}

int Api::process_info_layout(const Fn<nvmlDeviceGetRunningProcesses_fn>& f) {
  return f.found.size() > 3 && (f.found.ends_with("_v3") || f.found.ends_with("_v2")) ? 2 : 1;
}

}  // namespace grey::nvml
