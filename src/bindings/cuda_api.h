// Our own minimal declarations of the CUDA driver API (libcuda.so.1): only the types,
// constants and function-pointer types the CUDA probe uses. No CUDA toolkit is needed; the
// driver library is dlopen'ed at run time (src/sources/cuda_source.cc).
//
// Checked against the public CUDA Driver API reference:
//   https://docs.nvidia.com/cuda/cuda-driver-api/group__CUDA__TYPES.html
//     (CUresult, CUdevice_attribute: CLOCK_RATE 13, MULTIPROCESSOR_COUNT 16, PCI_BUS_ID 33,
//      PCI_DEVICE_ID 34, GLOBAL_MEMORY_BUS_WIDTH 37, PCI_DOMAIN_ID 50,
//      COMPUTE_CAPABILITY_MAJOR 75, COMPUTE_CAPABILITY_MINOR 76)
//   https://docs.nvidia.com/cuda/cuda-driver-api/group__CUDA__INITIALIZE.html  (cuInit)
//   https://docs.nvidia.com/cuda/cuda-driver-api/group__CUDA__VERSION.html     (cuDriverGetVersion)
//   https://docs.nvidia.com/cuda/cuda-driver-api/group__CUDA__DEVICE.html      (cuDevice*)
//   https://docs.nvidia.com/cuda/cuda-driver-api/group__CUDA__ERROR.html       (cuGetError*)
#pragma once

#include <cstddef>

namespace grey::cuda {

using CUresult = int;  // a C enum
using CUdevice = int;

constexpr CUresult CUDA_SUCCESS = 0;
constexpr CUresult CUDA_ERROR_NO_DEVICE = 100;

// Names of the results a probe can meet, for notes when cuGetErrorName is absent.
inline const char* result_name(CUresult r) {
  switch (r) {
    case 0:
      return "CUDA_SUCCESS";
    case 1:
      return "CUDA_ERROR_INVALID_VALUE";
    case 2:
      return "CUDA_ERROR_OUT_OF_MEMORY";
    case 3:
      return "CUDA_ERROR_NOT_INITIALIZED";
    case 4:
      return "CUDA_ERROR_DEINITIALIZED";
    case 34:
      return "CUDA_ERROR_STUB_LIBRARY";
    case 35:
      return "CUDA_ERROR_INSUFFICIENT_DRIVER";
    case 46:
      return "CUDA_ERROR_DEVICE_UNAVAILABLE";
    case 100:
      return "CUDA_ERROR_NO_DEVICE";
    case 101:
      return "CUDA_ERROR_INVALID_DEVICE";
    case 304:
      return "CUDA_ERROR_OPERATING_SYSTEM";
    case 801:
      return "CUDA_ERROR_NOT_SUPPORTED";
    case 802:
      return "CUDA_ERROR_SYSTEM_NOT_READY";
    case 803:
      return "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH";
    case 804:
      return "CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE";
    case 999:
      return "CUDA_ERROR_UNKNOWN";
    default:
      return nullptr;
  }
}

// CUdevice_attribute values used.
constexpr int CU_DEVICE_ATTRIBUTE_CLOCK_RATE = 13;  // kHz (peak clock)
constexpr int CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16;
constexpr int CU_DEVICE_ATTRIBUTE_PCI_BUS_ID = 33;
constexpr int CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID = 34;  // the device (slot) number on the bus,
                                                       // not the PCI product id
constexpr int CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH = 37;  // bits
constexpr int CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID = 50;
constexpr int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75;
constexpr int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76;

extern "C" {
using cuInit_fn = CUresult (*)(unsigned int flags);
using cuDriverGetVersion_fn = CUresult (*)(int* driverVersion);  // 1000*major + 10*minor
using cuDeviceGetCount_fn = CUresult (*)(int* count);
using cuDeviceGet_fn = CUresult (*)(CUdevice* device, int ordinal);
using cuDeviceGetName_fn = CUresult (*)(char* name, int len, CUdevice dev);
// cuDeviceTotalMem_v2 (size_t). The unversioned cuDeviceTotalMem is the pre-CUDA-3.2 entry
// point that writes an unsigned int.
using cuDeviceTotalMem_v2_fn = CUresult (*)(size_t* bytes, CUdevice dev);
using cuDeviceTotalMem_v1_fn = CUresult (*)(unsigned int* bytes, CUdevice dev);
using cuDeviceGetAttribute_fn = CUresult (*)(int* pi, int attrib, CUdevice dev);
using cuGetErrorString_fn = CUresult (*)(CUresult error, const char** pStr);  // also Name
}

}  // namespace grey::cuda
