// Our own minimal declarations of the OpenCL platform/device query API (as exported by the ICD
// loader libOpenCL.so.1): only the types, constants and function-pointer types the OpenCL probe
// uses. The loader is dlopen'ed at run time (src/sources/opencl_source.cc).
//
// Checked against the Khronos OpenCL 3.0 API specification and extension registry:
//   https://registry.khronos.org/OpenCL/specs/3.0-unified/html/OpenCL_API.html
//     (clGetPlatformIDs, clGetPlatformInfo, clGetDeviceIDs, clGetDeviceInfo; cl_device_info
//      values 0x1000.., cl_platform_info 0x0900.., CL_DEVICE_TYPE_* bits, error codes)
//   https://registry.khronos.org/OpenCL/extensions/khr/cl_khr_icd.html
//     (CL_PLATFORM_NOT_FOUND_KHR -1001)
//   https://registry.khronos.org/OpenCL/specs/3.0-unified/html/OpenCL_Ext.html#cl_khr_pci_bus_info
//     (CL_DEVICE_PCI_BUS_INFO_KHR 0x410F, cl_device_pci_bus_info_khr)
//   https://registry.khronos.org/OpenCL/extensions/amd/cl_amd_device_attribute_query.txt
//     (CL_DEVICE_TOPOLOGY_AMD 0x4037, cl_device_topology_amd, CL_DEVICE_TOPOLOGY_TYPE_PCIE_AMD 1)
//   cl_nv_device_attribute_query: CL_DEVICE_PCI_BUS_ID_NV 0x4008, CL_DEVICE_PCI_SLOT_ID_NV
//     0x4009 (slot = device << 3 | function), CL_DEVICE_PCI_DOMAIN_ID_NV 0x400A; NVIDIA
//     publishes no text for these, they are as in Khronos' CL/cl_ext.h and hwloc's
//     include/hwloc/opencl.h (https://www.open-mpi.org/projects/hwloc/doc/).
#pragma once

#include <cstddef>
#include <cstdint>

namespace grey::opencl {

using cl_int = int32_t;
using cl_uint = uint32_t;
using cl_ulong = uint64_t;
using cl_char = int8_t;
using cl_bitfield = cl_ulong;
using cl_device_type = cl_bitfield;
using cl_platform_info = cl_uint;
using cl_device_info = cl_uint;
struct _cl_platform_id;
struct _cl_device_id;
using cl_platform_id = _cl_platform_id*;
using cl_device_id = _cl_device_id*;

// Error codes.
constexpr cl_int CL_SUCCESS = 0;
constexpr cl_int CL_DEVICE_NOT_FOUND = -1;
constexpr cl_int CL_PLATFORM_NOT_FOUND_KHR = -1001;

inline const char* error_name(cl_int e) {
  switch (e) {
    case 0:
      return "CL_SUCCESS";
    case -1:
      return "CL_DEVICE_NOT_FOUND";
    case -2:
      return "CL_DEVICE_NOT_AVAILABLE";
    case -5:
      return "CL_OUT_OF_RESOURCES";
    case -6:
      return "CL_OUT_OF_HOST_MEMORY";
    case -30:
      return "CL_INVALID_VALUE";
    case -31:
      return "CL_INVALID_DEVICE_TYPE";
    case -32:
      return "CL_INVALID_PLATFORM";
    case -33:
      return "CL_INVALID_DEVICE";
    case -1001:
      return "CL_PLATFORM_NOT_FOUND_KHR";
    default:
      return nullptr;
  }
}

// cl_device_type bits.
// (DEFAULT 1 << 0, GPU 1 << 2, ACCELERATOR 1 << 3, CUSTOM 1 << 4 are not tested for.)
constexpr cl_device_type CL_DEVICE_TYPE_CPU = 1u << 1;
constexpr cl_device_type CL_DEVICE_TYPE_ALL = 0xFFFFFFFFu;

// cl_platform_info.
constexpr cl_platform_info CL_PLATFORM_NAME = 0x0902;
constexpr cl_platform_info CL_PLATFORM_VENDOR = 0x0903;

// cl_device_info.
constexpr cl_device_info CL_DEVICE_TYPE = 0x1000;                 // cl_device_type
constexpr cl_device_info CL_DEVICE_VENDOR_ID = 0x1001;            // cl_uint
constexpr cl_device_info CL_DEVICE_MAX_COMPUTE_UNITS = 0x1002;    // cl_uint
constexpr cl_device_info CL_DEVICE_MAX_CLOCK_FREQUENCY = 0x100C;  // cl_uint, MHz
constexpr cl_device_info CL_DEVICE_GLOBAL_MEM_SIZE = 0x101F;      // cl_ulong, bytes
constexpr cl_device_info CL_DEVICE_NAME = 0x102B;                 // char[]
constexpr cl_device_info CL_DEVICE_VENDOR = 0x102C;               // char[]
constexpr cl_device_info CL_DRIVER_VERSION = 0x102D;              // char[]
constexpr cl_device_info CL_DEVICE_VERSION = 0x102F;              // "OpenCL 3.0 <vendor info>"

// cl_khr_pci_bus_info.
constexpr cl_device_info CL_DEVICE_PCI_BUS_INFO_KHR = 0x410F;
struct cl_device_pci_bus_info_khr {
  cl_uint pci_domain;
  cl_uint pci_bus;
  cl_uint pci_device;
  cl_uint pci_function;
};

// cl_amd_device_attribute_query.
constexpr cl_device_info CL_DEVICE_TOPOLOGY_AMD = 0x4037;
constexpr cl_uint CL_DEVICE_TOPOLOGY_TYPE_PCIE_AMD = 1;
union cl_device_topology_amd {
  struct {
    cl_uint type;
    cl_uint data[5];
  } raw;
  struct {
    cl_uint type;
    cl_char unused[17];
    cl_char bus;
    cl_char device;
    cl_char function;
  } pcie;
};
static_assert(sizeof(cl_device_topology_amd) == 24, "cl_device_topology_amd layout");

// cl_nv_device_attribute_query.
constexpr cl_device_info CL_DEVICE_PCI_BUS_ID_NV = 0x4008;     // cl_uint
constexpr cl_device_info CL_DEVICE_PCI_SLOT_ID_NV = 0x4009;    // cl_uint: device << 3 | function
constexpr cl_device_info CL_DEVICE_PCI_DOMAIN_ID_NV = 0x400A;  // cl_uint (newer drivers)

extern "C" {
using clGetPlatformIDs_fn = cl_int (*)(cl_uint num_entries, cl_platform_id* platforms,
                                       cl_uint* num_platforms);
using clGetPlatformInfo_fn = cl_int (*)(cl_platform_id platform, cl_platform_info param_name,
                                        size_t param_value_size, void* param_value,
                                        size_t* param_value_size_ret);
using clGetDeviceIDs_fn = cl_int (*)(cl_platform_id platform, cl_device_type device_type,
                                     cl_uint num_entries, cl_device_id* devices,
                                     cl_uint* num_devices);
using clGetDeviceInfo_fn = cl_int (*)(cl_device_id device, cl_device_info param_name,
                                      size_t param_value_size, void* param_value,
                                      size_t* param_value_size_ret);
}

}  // namespace grey::opencl
