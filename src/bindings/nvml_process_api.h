// Our own declarations of the NVML calls the telemetry layer uses beyond src/bindings/nvml_api.h:
// versioned memory info, running processes, per-process utilization, process names.
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
#pragma once

#include "bindings/nvml_api.h"

namespace grey::nvml {

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

}  // namespace grey::nvml
