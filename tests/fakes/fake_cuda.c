/* A fake libcuda (CUDA driver API) for the CUDA probe's tests. Exported names are the real
 * driver API names (https://docs.nvidia.com/cuda/cuda-driver-api/); attribute numbers are
 * re-declared here from the same documentation (group__CUDA__TYPES).
 *
 * All values are INVENTED (plausible, not captured from real hardware):
 *   device 0: "NVIDIA H100 80GB HBM3", 81559 MiB, CC 9.0, 132 SMs, 5120-bit, 1980000 kHz,
 *             PCI 0000:1b:00
 *   device 1: "NVIDIA A100-SXM4-40GB", 40960 MiB, CC 8.0, 108 SMs, 5120-bit, 1410000 kHz,
 *             PCI 0000:41:00
 *   cuDriverGetVersion: 12040.
 * Environment, read at call time:
 *   FAKE_CUDA_DEVICES=N        device count (default 2, at most 2)
 *   FAKE_CUDA_INIT_ERROR=code  cuInit returns that CUresult
 *   FAKE_CUDA_NO_CLOCK=1       the CLOCK_RATE attribute answers CUDA_ERROR_INVALID_VALUE (1)
 * Only cuDeviceTotalMem_v2 is exported (not the legacy 32-bit cuDeviceTotalMem). */
#include <stdlib.h>
#include <string.h>

typedef int CUresult;
typedef int CUdevice;

typedef struct {
  const char* name;
  unsigned long long mem_mib;
  int major, minor, sms, bus_width, clock_khz, domain, bus, slot;
} fake_dev;

static const fake_dev kDevs[2] = {
    {"NVIDIA H100 80GB HBM3", 81559, 9, 0, 132, 5120, 1980000, 0, 0x1b, 0},
    {"NVIDIA A100-SXM4-40GB", 40960, 8, 0, 108, 5120, 1410000, 0, 0x41, 0},
};
static int g_initialized;

static int env_int(const char* name, int dflt) {
  const char* v = getenv(name);
  return (v && *v) ? atoi(v) : dflt;
}

static int dev_count(void) {
  int n = env_int("FAKE_CUDA_DEVICES", 2);
  return n < 0 ? 0 : (n > 2 ? 2 : n);
}

static const fake_dev* dev_of(CUdevice d) {
  return (d >= 0 && d < dev_count()) ? &kDevs[d] : NULL;
}

CUresult cuInit(unsigned int flags) {
  if (flags != 0) return 1; /* CUDA_ERROR_INVALID_VALUE */
  int e = env_int("FAKE_CUDA_INIT_ERROR", 0);
  if (e) return e;
  g_initialized = 1;
  return 0;
}

CUresult cuDriverGetVersion(int* v) {
  if (!v) return 1;
  *v = 12040;
  return 0;
}

CUresult cuDeviceGetCount(int* n) {
  if (!g_initialized) return 3; /* CUDA_ERROR_NOT_INITIALIZED */
  *n = dev_count();
  return 0;
}

CUresult cuDeviceGet(CUdevice* d, int ordinal) {
  if (!g_initialized) return 3;
  if (!dev_of(ordinal)) return 101; /* CUDA_ERROR_INVALID_DEVICE */
  *d = ordinal;
  return 0;
}

CUresult cuDeviceGetName(char* name, int len, CUdevice d) {
  const fake_dev* f = dev_of(d);
  if (!f) return 101;
  if (len <= 0) return 1;
  strncpy(name, f->name, (size_t)len - 1);
  name[len - 1] = '\0';
  return 0;
}

CUresult cuDeviceTotalMem_v2(size_t* bytes, CUdevice d) {
  const fake_dev* f = dev_of(d);
  if (!f) return 101;
  *bytes = (size_t)(f->mem_mib << 20);
  return 0;
}

CUresult cuDeviceGetAttribute(int* v, int attr, CUdevice d) {
  const fake_dev* f = dev_of(d);
  if (!f) return 101;
  switch (attr) {
    case 13:
      if (env_int("FAKE_CUDA_NO_CLOCK", 0)) return 1;
      *v = f->clock_khz;
      return 0;
    case 16:
      *v = f->sms;
      return 0;
    case 33:
      *v = f->bus;
      return 0;
    case 34:
      *v = f->slot;
      return 0;
    case 37:
      *v = f->bus_width;
      return 0;
    case 50:
      *v = f->domain;
      return 0;
    case 75:
      *v = f->major;
      return 0;
    case 76:
      *v = f->minor;
      return 0;
    default:
      return 1;
  }
}

CUresult cuGetErrorName(CUresult e, const char** s) {
  switch (e) {
    case 0:
      *s = "CUDA_SUCCESS";
      return 0;
    case 1:
      *s = "CUDA_ERROR_INVALID_VALUE";
      return 0;
    case 3:
      *s = "CUDA_ERROR_NOT_INITIALIZED";
      return 0;
    case 100:
      *s = "CUDA_ERROR_NO_DEVICE";
      return 0;
    case 101:
      *s = "CUDA_ERROR_INVALID_DEVICE";
      return 0;
    case 803:
      *s = "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH";
      return 0;
    default:
      *s = NULL;
      return 1;
  }
}

CUresult cuGetErrorString(CUresult e, const char** s) {
  switch (e) {
    case 0:
      *s = "no error";
      return 0;
    case 1:
      *s = "invalid argument";
      return 0;
    case 3:
      *s = "initialization error";
      return 0;
    case 100:
      *s = "no CUDA-capable device is detected";
      return 0;
    case 101:
      *s = "invalid device ordinal";
      return 0;
    case 803:
      *s = "system has unsupported display driver / cuda driver combination";
      return 0;
    default:
      *s = NULL;
      return 1;
  }
}
