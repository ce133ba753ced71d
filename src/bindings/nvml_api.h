// Our own minimal declarations of the NVIDIA Management Library (NVML) C API: only the types,
// constants and function-pointer types the project uses. No vendor header is needed; the
// library is dlopen'ed at run time. The one function table over these is nvml.h (nvml::Api),
// shared by the probe (src/sources/nvml_source.cc), telemetry and device control.
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

namespace grey::nvml {

// nvmlReturn_t is a C enum: int-sized on every ABI NVML ships for.
using nvmlReturn_t = int;
constexpr nvmlReturn_t NVML_SUCCESS = 0;
constexpr nvmlReturn_t NVML_ERROR_NOT_SUPPORTED = 3;

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
// MIG instances (https://docs.nvidia.com/deploy/nvml-api/group__nvmlMultiInstanceGPU.html):
//   nvmlDeviceGetMaxMigDeviceCount(nvmlDevice_t, unsigned int* count)
//   nvmlDeviceGetMigDeviceHandleByIndex(nvmlDevice_t, unsigned int index, nvmlDevice_t* mig)
//   nvmlDeviceGetGpuInstanceId / nvmlDeviceGetComputeInstanceId(nvmlDevice_t mig, unsigned* id)
// nvmlDeviceGetUUID and nvmlDeviceGetMemoryInfo accept a MIG handle (the instance's memory).
using nvmlDeviceGetMigDeviceHandleByIndex_fn = nvmlReturn_t (*)(nvmlDevice_t device,
                                                                unsigned int index,
                                                                nvmlDevice_t* migDevice);
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

// ---- Versioned memory info, running processes, per-process utilization, process names ----
//
// Checked against the public NVML API reference:
//   https://docs.nvidia.com/deploy/nvml-api/structnvmlProcessInfo__v1__t.html
//     nvmlProcessInfo_v1_t {unsigned int pid; unsigned long long usedGpuMemory;}   (16 bytes)
//   https://docs.nvidia.com/deploy/nvml-api/structnvmlProcessInfo__v2__t.html and
//   https://docs.nvidia.com/deploy/nvml-api/structnvmlProcessInfo__t.html
//     {pid; usedGpuMemory; gpuInstanceId; computeInstanceId}                       (24 bytes)
//   Which layout a symbol fills (nvml.h): nvmlDeviceGetComputeRunningProcesses and
//   nvmlDeviceGetGraphicsRunningProcesses (unversioned) -> v1; the _v2 symbols -> v2; the _v3
//   symbols -> nvmlProcessInfo_t (the v2 layout). usedGpuMemory is NVML_VALUE_NOT_AVAILABLE
//   (all bits set) when unknown (always under WDDM, and for other users' processes in some
//   containers).
//   https://docs.nvidia.com/deploy/nvml-api/structnvmlProcessUtilizationSample__t.html
//     {unsigned pid; unsigned long long timeStamp (us); unsigned smUtil, memUtil, encUtil,
//     decUtil} (32 bytes); nvmlDeviceGetProcessUtilization returns NVML_ERROR_NOT_FOUND when
//     there is no sample newer than lastSeenTimeStamp.
//   https://docs.nvidia.com/deploy/nvml-api/structnvmlMemory__v2__t.html
//     {unsigned version; unsigned long long total, reserved, free, used}: nvmlMemory_v2 is
//     nvmlVersion(nvmlMemory_v2_t, 2) = sizeof | 2 << 24. v1 "used" counts the memory the
//     driver reserves; v2 "used" does not (what nvidia-smi prints since R510).

constexpr nvmlReturn_t NVML_ERROR_NO_PERMISSION = 4;
constexpr nvmlReturn_t NVML_ERROR_NOT_FOUND = 6;
constexpr nvmlReturn_t NVML_ERROR_INSUFFICIENT_SIZE = 7;
constexpr nvmlReturn_t NVML_ERROR_ARGUMENT_VERSION_MISMATCH = 25;
constexpr unsigned long long NVML_VALUE_NOT_AVAILABLE = ~0ULL;

struct nvmlProcessInfo_v1_t {
  unsigned int pid;
  unsigned long long usedGpuMemory;  // bytes
};
static_assert(sizeof(nvmlProcessInfo_v1_t) == 16, "nvmlProcessInfo_v1_t layout");

struct nvmlProcessInfo_v2_t {
  unsigned int pid;
  unsigned long long usedGpuMemory;  // bytes
  unsigned int gpuInstanceId;
  unsigned int computeInstanceId;
};
static_assert(sizeof(nvmlProcessInfo_v2_t) == 24, "nvmlProcessInfo_v2_t layout");

struct nvmlProcessUtilizationSample_t {
  unsigned int pid;
  unsigned long long timeStamp;  // CPU timestamp, microseconds
  unsigned int smUtil;
  unsigned int memUtil;
  unsigned int encUtil;
  unsigned int decUtil;
};
static_assert(sizeof(nvmlProcessUtilizationSample_t) == 32, "nvmlProcessUtilizationSample_t");

struct nvmlMemory_v2_t {
  unsigned int version;
  unsigned long long total;
  unsigned long long reserved;
  unsigned long long free;
  unsigned long long used;
};
static_assert(sizeof(nvmlMemory_v2_t) == 40, "nvmlMemory_v2_t layout");
constexpr unsigned int nvmlMemory_v2 =
    static_cast<unsigned int>(sizeof(nvmlMemory_v2_t)) | 2u << 24;

extern "C" {
// Every *RunningProcesses symbol: `infoCount` in: capacity of `infos`, out: entries (or the
// number needed with NVML_ERROR_INSUFFICIENT_SIZE). `infos` points at the version's layout.
using nvmlDeviceGetRunningProcesses_fn = nvmlReturn_t (*)(nvmlDevice_t device,
                                                          unsigned int* infoCount, void* infos);
using nvmlDeviceGetMemoryInfo_v2_fn = nvmlReturn_t (*)(nvmlDevice_t device,
                                                       nvmlMemory_v2_t* memory);
using nvmlDeviceGetProcessUtilization_fn =
    nvmlReturn_t (*)(nvmlDevice_t device, nvmlProcessUtilizationSample_t* utilization,
                     unsigned int* processSamplesCount, unsigned long long lastSeenTimeStamp);
using nvmlSystemGetProcessName_fn = nvmlReturn_t (*)(unsigned int pid, char* name,
                                                     unsigned int length);
}

// ---- Health: XID events, ECC, retired pages, remapped rows --------------------------------
//
// Checked against the public NVML API reference:
//   https://docs.nvidia.com/deploy/nvml-api/group__nvmlEvents.html
//     typedef struct nvmlEventSet_st* nvmlEventSet_t;
//     nvmlEventSetCreate(nvmlEventSet_t* set)
//     nvmlDeviceRegisterEvents(nvmlDevice_t, unsigned long long eventTypes, nvmlEventSet_t)
//     nvmlEventSetWait_v2(nvmlEventSet_t, nvmlEventData_t* data, unsigned int timeoutms):
//       NVML_ERROR_TIMEOUT (10) when no event arrived in time
//     nvmlEventSetFree(nvmlEventSet_t)
//   https://docs.nvidia.com/deploy/nvml-api/group__nvmlEventType.html
//     nvmlEventTypeXidCriticalError 0x0000000000000008LL (eventData: the XID)
//   nvmlEventData_t {nvmlDevice_t device; unsigned long long eventType, eventData;
//     unsigned int gpuInstanceId, computeInstanceId;}                             (32 bytes)
//   https://docs.nvidia.com/deploy/nvml-api/group__nvmlDeviceQueries.html
//     nvmlDeviceGetTotalEccErrors(nvmlDevice_t, nvmlMemoryErrorType_t, nvmlEccCounterType_t,
//       unsigned long long* eccCounts)
//       nvmlMemoryErrorType_t: NVML_MEMORY_ERROR_TYPE_CORRECTED 0, _UNCORRECTED 1
//       nvmlEccCounterType_t: NVML_VOLATILE_ECC 0, NVML_AGGREGATE_ECC 1
//     nvmlDeviceGetRetiredPages(nvmlDevice_t, nvmlPageRetirementCause_t cause,
//       unsigned int* pageCount, unsigned long long* addresses)
//       cause: NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS 0,
//              NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR 1
//       (addresses null with *pageCount 0: the count alone)
//     nvmlDeviceGetRetiredPagesPendingStatus(nvmlDevice_t, nvmlEnableState_t* isPending)
//     nvmlDeviceGetRemappedRows(nvmlDevice_t, unsigned int* corrRows, unsigned int* uncRows,
//       unsigned int* isPending, unsigned int* failureOccurred)     (Ampere and newer)

constexpr nvmlReturn_t NVML_ERROR_TIMEOUT = 10;
constexpr unsigned long long nvmlEventTypeXidCriticalError = 0x0000000000000008ULL;
constexpr int NVML_MEMORY_ERROR_TYPE_CORRECTED = 0;
constexpr int NVML_MEMORY_ERROR_TYPE_UNCORRECTED = 1;
constexpr int NVML_VOLATILE_ECC = 0;
constexpr int NVML_AGGREGATE_ECC = 1;
constexpr int NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS = 0;
constexpr int NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR = 1;

struct nvmlEventSet_st;
using nvmlEventSet_t = nvmlEventSet_st*;

struct nvmlEventData_t {
  nvmlDevice_t device;
  unsigned long long eventType;
  unsigned long long eventData;  // the XID for nvmlEventTypeXidCriticalError
  unsigned int gpuInstanceId;
  unsigned int computeInstanceId;
};
static_assert(sizeof(nvmlEventData_t) == 32, "nvmlEventData_t layout");

extern "C" {
using nvmlEventSetCreate_fn = nvmlReturn_t (*)(nvmlEventSet_t* set);
using nvmlDeviceRegisterEvents_fn = nvmlReturn_t (*)(nvmlDevice_t device,
                                                     unsigned long long eventTypes,
                                                     nvmlEventSet_t set);
using nvmlEventSetWait_fn = nvmlReturn_t (*)(nvmlEventSet_t set, nvmlEventData_t* data,
                                             unsigned int timeoutms);
using nvmlEventSetFree_fn = nvmlReturn_t (*)(nvmlEventSet_t set);
using nvmlDeviceGetTotalEccErrors_fn = nvmlReturn_t (*)(nvmlDevice_t device, int errorType,
                                                        int counterType,
                                                        unsigned long long* eccCounts);
using nvmlDeviceGetRetiredPages_fn = nvmlReturn_t (*)(nvmlDevice_t device, int cause,
                                                      unsigned int* pageCount,
                                                      unsigned long long* addresses);
using nvmlDeviceGetRetiredPagesPendingStatus_fn = nvmlReturn_t (*)(nvmlDevice_t device,
                                                                   int* isPending);
using nvmlDeviceGetRemappedRows_fn = nvmlReturn_t (*)(nvmlDevice_t device, unsigned int* corrRows,
                                                      unsigned int* uncRows,
                                                      unsigned int* isPending,
                                                      unsigned int* failureOccurred);
}

}  // namespace grey::nvml
