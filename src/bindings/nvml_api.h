// Our own minimal declarations of the NVIDIA Management Library (NVML) C API: only the types,
// constants and function-pointer types the probe (src/sources/nvml_source.cc), the telemetry
// layer and device control use. No vendor header is needed; the library is dlopen'ed at run
// time.
//
// Every value here was checked against the public NVML API reference:
//   https://docs.nvidia.com/deploy/nvml-api/group__nvmlDeviceEnumvs.html   (nvmlReturn_t, enums)
//   https://docs.nvidia.com/deploy/nvml-api/group__nvmlDeviceStructs.html  (buffer sizes)
//   https://docs.nvidia.com/deploy/nvml-api/structnvmlPciInfo__t.html      (nvmlPciInfo_t)
//   https://docs.nvidia.com/deploy/nvml-api/structnvmlMemory__t.html       (nvmlMemory_t)
//   https://docs.nvidia.com/deploy/nvml-api/group__nvmlDeviceQueries.html  (device queries)
//   https://docs.nvidia.com/deploy/nvml-api/group__nvmlSystemQueries.html  (system queries)
//   https://docs.nvidia.com/deploy/nvml-api/group__nvmlInitializationAndCleanup.html
// and the enum values as the cuda-python bindings document them
//   https://nvidia.github.io/cuda-python/cuda-bindings/latest/module/nvml.html
//   (Return: 0..29, 999; TemperatureThresholds: SHUTDOWN 0, SLOWDOWN 1, MEM_MAX 2, GPU_MAX 3).
#pragma once

#include <cstring>
#include <string>

namespace grey::nvml {

// nvmlReturn_t is a C enum: int-sized on every ABI NVML ships for.
using nvmlReturn_t = int;
constexpr nvmlReturn_t NVML_SUCCESS = 0;
constexpr nvmlReturn_t NVML_ERROR_NOT_SUPPORTED = 3;

// Names of every documented nvmlReturn_t value, for notes ("NVML_ERROR_DRIVER_NOT_LOADED (9)").
inline const char* return_name(nvmlReturn_t r) {
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

struct nvmlDevice_st;
using nvmlDevice_t = nvmlDevice_st*;

// Buffer sizes (group__nvmlDeviceStructs / group__nvmlConstants).
constexpr unsigned NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE = 32;
constexpr unsigned NVML_DEVICE_PCI_BUS_ID_BUFFER_V2_SIZE = 16;
constexpr unsigned NVML_DEVICE_NAME_V2_BUFFER_SIZE = 96;
constexpr unsigned NVML_DEVICE_UUID_V2_BUFFER_SIZE = 96;
constexpr unsigned NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE = 80;

// The layout nvmlDeviceGetPciInfo_v3 (and _v2) fill. 68 bytes, no padding.
struct nvmlPciInfo_t {
  char busIdLegacy[NVML_DEVICE_PCI_BUS_ID_BUFFER_V2_SIZE];  // "0000:1B:00.0" (legacy form)
  unsigned int domain;                                      // 0 to 0xffffffff
  unsigned int bus;                                         // 0 to 0xff
  unsigned int device;                                      // 0 to 31
  unsigned int pciDeviceId;     // combined 16-bit device id (high) and 16-bit vendor id (low)
  unsigned int pciSubSystemId;  // 32-bit sub system device id
  char busId[NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE];  // "00000000:1B:00.0"
};
static_assert(sizeof(nvmlPciInfo_t) == 16 + 5 * 4 + 32, "nvmlPciInfo_t layout");

struct nvmlMemory_t {
  unsigned long long total;  // bytes
  unsigned long long free;   // bytes
  unsigned long long used;   // bytes
};

struct nvmlUtilization_t {
  unsigned int gpu;     // percent
  unsigned int memory;  // percent
};

// nvmlClockType_t
constexpr int NVML_CLOCK_GRAPHICS = 0;
// nvmlTemperatureSensors_t
constexpr int NVML_TEMPERATURE_GPU = 0;
// nvmlTemperatureThresholds_t
constexpr int NVML_TEMPERATURE_THRESHOLD_SHUTDOWN = 0;
constexpr int NVML_TEMPERATURE_THRESHOLD_SLOWDOWN = 1;
// (NVML_TEMPERATURE_THRESHOLD_MEM_MAX = 2 is the memory's limit: not read.)
constexpr int NVML_TEMPERATURE_THRESHOLD_GPU_MAX = 3;
// nvmlEnableState_t (NVML_FEATURE_DISABLED = 0)
constexpr int NVML_FEATURE_ENABLED = 1;
// MIG modes returned by nvmlDeviceGetMigMode (NVML_DEVICE_MIG_DISABLE = 0)
constexpr unsigned NVML_DEVICE_MIG_ENABLE = 1;

extern "C" {
using nvmlInit_fn = nvmlReturn_t (*)();      // nvmlInit_v2, nvmlInit
using nvmlShutdown_fn = nvmlReturn_t (*)();  // nvmlShutdown
using nvmlErrorString_fn = const char* (*)(nvmlReturn_t);
using nvmlSystemGetDriverVersion_fn = nvmlReturn_t (*)(char* version, unsigned int length);
// nvmlSystemGetCudaDriverVersion_v2, nvmlSystemGetCudaDriverVersion: 1000*major + 10*minor.
using nvmlSystemGetCudaDriverVersion_fn = nvmlReturn_t (*)(int* cudaDriverVersion);
using nvmlDeviceGetCount_fn = nvmlReturn_t (*)(unsigned int* deviceCount);
using nvmlDeviceGetHandleByIndex_fn = nvmlReturn_t (*)(unsigned int index, nvmlDevice_t* device);
// nvmlDeviceGetName, nvmlDeviceGetUUID
using nvmlDeviceGetString_fn = nvmlReturn_t (*)(nvmlDevice_t device, char* buf,
                                                unsigned int length);
using nvmlDeviceGetPciInfo_fn = nvmlReturn_t (*)(nvmlDevice_t device, nvmlPciInfo_t* pci);
using nvmlDeviceGetMemoryInfo_fn = nvmlReturn_t (*)(nvmlDevice_t device, nvmlMemory_t* memory);
using nvmlDeviceGetCudaComputeCapability_fn = nvmlReturn_t (*)(nvmlDevice_t device, int* major,
                                                               int* minor);
using nvmlDeviceGetMaxClockInfo_fn = nvmlReturn_t (*)(nvmlDevice_t device, int type,
                                                      unsigned int* clockMHz);
// nvmlDeviceGetMemoryBusWidth, nvmlDeviceGetMaxPcieLinkGeneration,
// nvmlDeviceGetMaxPcieLinkWidth, nvmlDeviceGetPowerManagementLimit (mW),
// nvmlDeviceGetPowerManagementDefaultLimit (mW), nvmlDeviceGetEnforcedPowerLimit (mW),
// nvmlDeviceGetPowerUsage (mW), nvmlDeviceGetIndex
using nvmlDeviceGetUint_fn = nvmlReturn_t (*)(nvmlDevice_t device, unsigned int* value);
using nvmlDeviceGetTemperatureThreshold_fn = nvmlReturn_t (*)(nvmlDevice_t device,
                                                              int thresholdType,
                                                              unsigned int* tempC);
using nvmlDeviceGetTemperature_fn = nvmlReturn_t (*)(nvmlDevice_t device, int sensorType,
                                                     unsigned int* tempC);
using nvmlDeviceGetPowerManagementLimitConstraints_fn = nvmlReturn_t (*)(nvmlDevice_t device,
                                                                         unsigned int* minLimitMw,
                                                                         unsigned int* maxLimitMw);
using nvmlDeviceGetMigMode_fn = nvmlReturn_t (*)(nvmlDevice_t device, unsigned int* currentMode,
                                                 unsigned int* pendingMode);
// nvmlEnableState_t is a C enum (int-sized).
using nvmlDeviceGetPersistenceMode_fn = nvmlReturn_t (*)(nvmlDevice_t device, int* mode);
using nvmlDeviceGetUtilizationRates_fn = nvmlReturn_t (*)(nvmlDevice_t device,
                                                          nvmlUtilization_t* utilization);
}

// The set-calls (apply and the daemon's governor):
// https://docs.nvidia.com/deploy/nvml-api/group__nvmlDeviceCommands.html
//   nvmlReturn_t nvmlDeviceSetPowerManagementLimit(nvmlDevice_t, unsigned int limit /* mW */)
//   nvmlReturn_t nvmlDeviceSetPersistenceMode(nvmlDevice_t, nvmlEnableState_t mode)
// https://docs.nvidia.com/deploy/nvml-api/group__nvmlDeviceQueries.html
//   nvmlReturn_t nvmlDeviceGetHandleByPciBusId_v2(const char* pciBusId, nvmlDevice_t*)
extern "C" {
using nvmlDeviceSetUint_fn = nvmlReturn_t (*)(nvmlDevice_t, unsigned int);
using nvmlDeviceSetPersistenceMode_fn = nvmlReturn_t (*)(nvmlDevice_t, int);
using nvmlDeviceGetHandleByPciBusId_fn = nvmlReturn_t (*)(const char*, nvmlDevice_t*);
}

// "nvmlInit_v2 failed: NVML_ERROR_DRIVER_NOT_LOADED (9): Driver Not Loaded": the call, the
// code's name and number, and nvmlErrorString's text when there is one that adds something.
inline std::string describe_failure(const std::string& call, nvmlReturn_t r,
                                    nvmlErrorString_fn error_string) {
  const char* n = return_name(r);
  std::string s =
      call + " failed: " + (n ? n : "unknown NVML error") + " (" + std::to_string(r) + ")";
  if (error_string) {
    const char* text = error_string(r);
    if (text && *text && (!n || std::strcmp(text, n) != 0)) s += std::string(": ") + text;
  }
  return s;
}

}  // namespace grey::nvml
