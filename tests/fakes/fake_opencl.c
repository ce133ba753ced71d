/* A fake OpenCL ICD loader (libOpenCL) for the OpenCL probe's tests. Exported names are the
 * real API names; constants are re-declared here from the Khronos specification
 * (https://registry.khronos.org/OpenCL/specs/3.0-unified/html/OpenCL_API.html) and the
 * extension registry (cl_khr_pci_bus_info, cl_amd_device_attribute_query, NVIDIA's
 * cl_nv_device_attribute_query tokens as in Khronos' CL/cl_ext.h).
 *
 * All values are INVENTED (plausible, not captured from real hardware):
 *   platform 0 "NVIDIA CUDA" (NVIDIA Corporation): one GPU "NVIDIA H100 80GB HBM3",
 *     vendor id 0x10de, "OpenCL 3.0 CUDA", driver "550.54.15", 81559 MiB, 132 CUs, 1980 MHz.
 *   platform 1 "Portable Computing Language" (The pocl project): one CPU device
 *     "pthread-skylake-avx512-Intel(R) Xeon(R) Processor", GenuineIntel 0x8086,
 *     "OpenCL 3.0 PoCL HSTR: pthread-x86_64-pc-linux-gnu-skylake-avx512", 7928 MiB, 2 CUs,
 *     2100 MHz.
 * Environment, read at call time:
 *   FAKE_OPENCL_NO_PLATFORMS=1  clGetPlatformIDs answers CL_PLATFORM_NOT_FOUND_KHR (-1001)
 *   FAKE_OPENCL_PCI=khr (default): the GPU answers CL_DEVICE_PCI_BUS_INFO_KHR 0000:1b:00.0
 *                  amd: only CL_DEVICE_TOPOLOGY_AMD, bus 0xc3 device 0 function 0
 *                  nv:  only CL_DEVICE_PCI_BUS_ID_NV 0x1b, SLOT_ID_NV 0x09 (dev 1, fn 1),
 *                       DOMAIN_ID_NV 1
 *                  nv-nodomain: as nv without CL_DEVICE_PCI_DOMAIN_ID_NV
 *                  none: no PCI query answers */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef int32_t cl_int;
typedef uint32_t cl_uint;
typedef uint64_t cl_ulong;

typedef struct {
  int index;
} fake_obj;
typedef fake_obj* cl_platform_id;
typedef fake_obj* cl_device_id;

static fake_obj g_platforms[2] = {{0}, {1}};
static fake_obj g_devices[2] = {{0}, {1}}; /* device i lives on platform i */

static const char* kPlatformName[2] = {"NVIDIA CUDA", "Portable Computing Language"};
static const char* kPlatformVendor[2] = {"NVIDIA Corporation", "The pocl project"};
static const char* kPlatformVersion[2] = {"OpenCL 3.0 CUDA 12.4.89",
                                          "OpenCL 3.0 PoCL 3.1+debian  Linux"};

typedef struct {
  const char *name, *vendor, *version, *driver;
  cl_uint vendor_id, cus, mhz;
  cl_ulong type, mem;
} fake_dev;

static const fake_dev kDevs[2] = {
    {"NVIDIA H100 80GB HBM3", "NVIDIA Corporation", "OpenCL 3.0 CUDA", "550.54.15", 0x10de, 132,
     1980, 1u << 2 /* GPU */, 81559ull << 20},
    {"pthread-skylake-avx512-Intel(R) Xeon(R) Processor", "GenuineIntel",
     "OpenCL 3.0 PoCL HSTR: pthread-x86_64-pc-linux-gnu-skylake-avx512", "3.1+debian", 0x8086, 2,
     2100, 1u << 1 /* CPU */, 7928ull << 20},
};

static int pci_mode(const char* m) {
  const char* v = getenv("FAKE_OPENCL_PCI");
  if (!v || !*v) v = "khr";
  return strcmp(v, m) == 0;
}

static cl_int put(const void* src, size_t n, size_t size, void* dst, size_t* ret) {
  if (ret) *ret = n;
  if (dst) {
    if (size < n) return -30; /* CL_INVALID_VALUE */
    memcpy(dst, src, n);
  }
  return 0;
}

static cl_int put_str(const char* s, size_t size, void* dst, size_t* ret) {
  return put(s, strlen(s) + 1, size, dst, ret);
}

cl_int clGetPlatformIDs(cl_uint num_entries, cl_platform_id* platforms, cl_uint* num) {
  const char* none = getenv("FAKE_OPENCL_NO_PLATFORMS");
  if (none && *none == '1') return -1001; /* CL_PLATFORM_NOT_FOUND_KHR */
  if ((num_entries == 0 && platforms) || (!platforms && !num)) return -30;
  if (num) *num = 2;
  for (cl_uint i = 0; platforms && i < num_entries && i < 2; ++i) platforms[i] = &g_platforms[i];
  return 0;
}

cl_int clGetPlatformInfo(cl_platform_id p, cl_uint param, size_t size, void* value, size_t* ret) {
  if (p != &g_platforms[0] && p != &g_platforms[1]) return -32; /* CL_INVALID_PLATFORM */
  switch (param) {
    case 0x0901:
      return put_str(kPlatformVersion[p->index], size, value, ret);
    case 0x0902:
      return put_str(kPlatformName[p->index], size, value, ret);
    case 0x0903:
      return put_str(kPlatformVendor[p->index], size, value, ret);
    default:
      return -30;
  }
}

cl_int clGetDeviceIDs(cl_platform_id p, cl_ulong type, cl_uint num_entries, cl_device_id* devs,
                      cl_uint* num) {
  if (p != &g_platforms[0] && p != &g_platforms[1]) return -32;
  if ((num_entries == 0 && devs) || (!devs && !num)) return -30;
  if (!(kDevs[p->index].type & type)) return -1; /* CL_DEVICE_NOT_FOUND */
  if (num) *num = 1;
  if (devs) devs[0] = &g_devices[p->index];
  return 0;
}

cl_int clGetDeviceInfo(cl_device_id d, cl_uint param, size_t size, void* value, size_t* ret) {
  if (d != &g_devices[0] && d != &g_devices[1]) return -33; /* CL_INVALID_DEVICE */
  const fake_dev* f = &kDevs[d->index];
  int gpu = d->index == 0;
  switch (param) {
    case 0x1000:
      return put(&f->type, sizeof f->type, size, value, ret);
    case 0x1001:
      return put(&f->vendor_id, sizeof(cl_uint), size, value, ret);
    case 0x1002:
      return put(&f->cus, sizeof(cl_uint), size, value, ret);
    case 0x100C:
      return put(&f->mhz, sizeof(cl_uint), size, value, ret);
    case 0x101F:
      return put(&f->mem, sizeof f->mem, size, value, ret);
    case 0x102B:
      return put_str(f->name, size, value, ret);
    case 0x102C:
      return put_str(f->vendor, size, value, ret);
    case 0x102D:
      return put_str(f->driver, size, value, ret);
    case 0x102F:
      return put_str(f->version, size, value, ret);
    case 0x410F: { /* CL_DEVICE_PCI_BUS_INFO_KHR {domain, bus, device, function} */
      cl_uint khr[4] = {0, 0x1b, 0, 0};
      if (!gpu || !pci_mode("khr")) return -30;
      return put(khr, sizeof khr, size, value, ret);
    }
    case 0x4037: { /* CL_DEVICE_TOPOLOGY_AMD: type 1 (PCIe), then bus/device/function at 21..23 */
      unsigned char topo[24] = {0};
      cl_uint type = 1;
      if (!gpu || !pci_mode("amd")) return -30;
      memcpy(topo, &type, sizeof type);
      topo[21] = 0xc3;
      topo[22] = 0;
      topo[23] = 0;
      return put(topo, sizeof topo, size, value, ret);
    }
    case 0x4008: { /* CL_DEVICE_PCI_BUS_ID_NV */
      cl_uint bus = 0x1b;
      if (!gpu || !(pci_mode("nv") || pci_mode("nv-nodomain"))) return -30;
      return put(&bus, sizeof bus, size, value, ret);
    }
    case 0x4009: { /* CL_DEVICE_PCI_SLOT_ID_NV: device << 3 | function */
      cl_uint slot = (1u << 3) | 1u;
      if (!gpu || !(pci_mode("nv") || pci_mode("nv-nodomain"))) return -30;
      return put(&slot, sizeof slot, size, value, ret);
    }
    case 0x400A: { /* CL_DEVICE_PCI_DOMAIN_ID_NV */
      cl_uint domain = 1;
      if (!gpu || !pci_mode("nv")) return -30;
      return put(&domain, sizeof domain, size, value, ret);
    }
    default:
      return -30;
  }
}
