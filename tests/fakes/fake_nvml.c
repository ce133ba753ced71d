/* A fake libnvidia-ml for the NVML probe's tests. Exported names are the real NVML API names
 * (https://docs.nvidia.com/deploy/nvml-api/); types are re-declared here from the same
 * documentation, independently of src/vendor/nvml_api.h, so a layout mistake there shows.
 *
 * All values are INVENTED (plausible, not captured from real hardware):
 *   GPU 0: "NVIDIA H100 80GB HBM3" at 0000:1b:00.0, 10de:2330, 81559 MiB, CC 9.0, 1980 MHz,
 *          5120-bit bus, Gen5 x16, slowdown 90 / shutdown 92 / gpu max 87 C, 700 W limit
 *          (200..700, default 700), MIG off, persistence on.
 *   GPU 1: "NVIDIA A100-SXM4-40GB" at 0000:41:00.0, 10de:20b0, 40960 MiB, CC 8.0, 1410 MHz,
 *          5120-bit bus, Gen4 x16, slowdown 87 / shutdown 90 / gpu max 85 C, 400 W limit
 *          (100..400, default 400), MIG on, persistence off.
 *   GPU 2..7 (FAKE_NVML_GPUS > 2): copies of GPU 1 at buses 0x42.. .
 *   System: driver "550.54.15", CUDA 12040 (12.4).
 *
 * Environment, read at call time:
 *   FAKE_NVML_GPUS=N                       device count (default 2, at most 8)
 *   FAKE_NVML_INIT_ERROR=code              nvmlInit_v2 returns that nvmlReturn_t
 *   FAKE_NVML_HANG_INIT=1                  nvmlInit_v2 never returns
 *   FAKE_NVML_UNSUPPORTED_TEMP_THRESHOLDS=1 thresholds answer NVML_ERROR_NOT_SUPPORTED (3)
 *   FAKE_NVML_LOST_GPU=i                   nvmlDeviceGetHandleByIndex_v2(i) answers
 *                                          NVML_ERROR_GPU_IS_LOST (15)
 * Deliberate symbol gaps: only the unversioned nvmlSystemGetCudaDriverVersion is exported (so
 * the probe's fallback from _v2 runs), and nvmlDeviceGetUtilizationRates is not exported at
 * all (so a missing symbol is exercised). fake_nvml_init_count/fake_nvml_shutdown_count let
 * tests check that every successful init is paired with a shutdown. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef int nvmlReturn_t;

typedef struct {
  char busIdLegacy[16];
  unsigned int domain, bus, device, pciDeviceId, pciSubSystemId;
  char busId[32];
} nvmlPciInfo_t;

typedef struct {
  unsigned long long total, free, used;
} nvmlMemory_t;

typedef struct {
  const char* name;
  const char* uuid;
  unsigned bus, pci_id, mem_mib, used_mib, cc_major, cc_minor, clock, bus_width, gen, width;
  unsigned shutdown, slowdown, mem_max, gpu_max, temp;
  unsigned limit_mw, min_mw, max_mw, default_mw, usage_mw, mig, persistence;
} fake_gpu;

typedef struct {
  int index;
} nvmlDevice_st;
typedef nvmlDevice_st* nvmlDevice_t;

static const fake_gpu kGpus[2] = {
    {"NVIDIA H100 80GB HBM3",
     "GPU-3f2a7c1e-0000-4000-8000-000000000001",
     0x1b,
     0x233010de,
     81559,
     329,
     9,
     0,
     1980,
     5120,
     5,
     16,
     92,
     90,
     95,
     87,
     34,
     700000,
     200000,
     700000,
     700000,
     69850,
     0,
     1},
    {"NVIDIA A100-SXM4-40GB",
     "GPU-5b8d0c2a-0000-4000-8000-000000000002",
     0x41,
     0x20b010de,
     40960,
     0,
     8,
     0,
     1410,
     5120,
     4,
     16,
     90,
     87,
     95,
     85,
     29,
     400000,
     100000,
     400000,
     400000,
     55120,
     1,
     0},
};
static nvmlDevice_st g_handles[8];
static int g_inits, g_shutdowns;

static int env_int(const char* name, int dflt) {
  const char* v = getenv(name);
  return (v && *v) ? atoi(v) : dflt;
}

static int gpu_count(void) {
  int n = env_int("FAKE_NVML_GPUS", 2);
  return n < 0 ? 0 : (n > 8 ? 8 : n);
}

static const fake_gpu* gpu_of(nvmlDevice_t d, unsigned* bus) {
  if (!d || d->index < 0 || d->index >= gpu_count()) return NULL;
  const fake_gpu* g = &kGpus[d->index == 0 ? 0 : 1];
  if (bus) *bus = d->index <= 1 ? g->bus : 0x40u + (unsigned)d->index;
  return g;
}

#define GPU_OR_FAIL(d)                 \
  const fake_gpu* g = gpu_of(d, NULL); \
  if (!g) return 2 /* NVML_ERROR_INVALID_ARGUMENT */

int fake_nvml_init_count(void) {
  return g_inits;
}
int fake_nvml_shutdown_count(void) {
  return g_shutdowns;
}

nvmlReturn_t nvmlInit_v2(void) {
  if (env_int("FAKE_NVML_HANG_INIT", 0)) {
    for (;;) sleep(1);
  }
  int e = env_int("FAKE_NVML_INIT_ERROR", 0);
  if (e) return e;
  ++g_inits;
  return 0;
}

nvmlReturn_t nvmlShutdown(void) {
  ++g_shutdowns;
  return 0;
}

const char* nvmlErrorString(nvmlReturn_t r) {
  switch (r) {
    case 0:
      return "Success";
    case 2:
      return "Invalid Argument";
    case 3:
      return "Not Supported";
    case 9:
      return "Driver Not Loaded";
    case 15:
      return "GPU is lost";
    case 18:
      return "Driver/library version mismatch";
    default:
      return "Unknown Error";
  }
}

nvmlReturn_t nvmlSystemGetDriverVersion(char* buf, unsigned int len) {
  if (len < 10) return 7; /* NVML_ERROR_INSUFFICIENT_SIZE */
  snprintf(buf, len, "%s", "550.54.15");
  return 0;
}

nvmlReturn_t nvmlSystemGetCudaDriverVersion(int* v) {
  *v = 12040;
  return 0;
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int* n) {
  *n = (unsigned)gpu_count();
  return 0;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int i, nvmlDevice_t* d) {
  if ((int)i >= gpu_count()) return 2;
  if (env_int("FAKE_NVML_LOST_GPU", -1) == (int)i) return 15; /* NVML_ERROR_GPU_IS_LOST */
  g_handles[i].index = (int)i;
  *d = &g_handles[i];
  return 0;
}

nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t d, unsigned int* i) {
  GPU_OR_FAIL(d);
  (void)g;
  *i = (unsigned)d->index;
  return 0;
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t d, char* buf, unsigned int len) {
  GPU_OR_FAIL(d);
  snprintf(buf, len, "%s", g->name);
  return 0;
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t d, char* buf, unsigned int len) {
  GPU_OR_FAIL(d);
  if (d->index > 1) {
    snprintf(buf, len, "GPU-5b8d0c2a-0000-4000-8000-%012d", d->index + 1);
  } else {
    snprintf(buf, len, "%s", g->uuid);
  }
  return 0;
}

nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t d, nvmlPciInfo_t* p) {
  unsigned bus = 0;
  const fake_gpu* g = gpu_of(d, &bus);
  if (!g) return 2;
  memset(p, 0, sizeof *p);
  p->domain = 0;
  p->bus = bus;
  p->device = 0;
  p->pciDeviceId = g->pci_id;
  p->pciSubSystemId = 0x16c110de;
  snprintf(p->busIdLegacy, sizeof p->busIdLegacy, "0000:%02X:00.0", bus);
  snprintf(p->busId, sizeof p->busId, "00000000:%02X:00.0", bus);
  return 0;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t d, nvmlMemory_t* m) {
  GPU_OR_FAIL(d);
  m->total = (unsigned long long)g->mem_mib << 20;
  m->used = (unsigned long long)g->used_mib << 20;
  m->free = m->total - m->used;
  return 0;
}

nvmlReturn_t nvmlDeviceGetCudaComputeCapability(nvmlDevice_t d, int* major, int* minor) {
  GPU_OR_FAIL(d);
  *major = (int)g->cc_major;
  *minor = (int)g->cc_minor;
  return 0;
}

nvmlReturn_t nvmlDeviceGetMaxClockInfo(nvmlDevice_t d, int type, unsigned int* mhz) {
  GPU_OR_FAIL(d);
  if (type != 0) return 2; /* the probe only asks NVML_CLOCK_GRAPHICS */
  *mhz = g->clock;
  return 0;
}

nvmlReturn_t nvmlDeviceGetMemoryBusWidth(nvmlDevice_t d, unsigned int* v) {
  GPU_OR_FAIL(d);
  *v = g->bus_width;
  return 0;
}

nvmlReturn_t nvmlDeviceGetMaxPcieLinkGeneration(nvmlDevice_t d, unsigned int* v) {
  GPU_OR_FAIL(d);
  *v = g->gen;
  return 0;
}

nvmlReturn_t nvmlDeviceGetMaxPcieLinkWidth(nvmlDevice_t d, unsigned int* v) {
  GPU_OR_FAIL(d);
  *v = g->width;
  return 0;
}

nvmlReturn_t nvmlDeviceGetTemperatureThreshold(nvmlDevice_t d, int type, unsigned int* t) {
  GPU_OR_FAIL(d);
  if (env_int("FAKE_NVML_UNSUPPORTED_TEMP_THRESHOLDS", 0)) return 3;
  switch (type) {
    case 0:
      *t = g->shutdown;
      return 0;
    case 1:
      *t = g->slowdown;
      return 0;
    case 2:
      *t = g->mem_max;
      return 0;
    case 3:
      *t = g->gpu_max;
      return 0;
    default:
      return 2;
  }
}

nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t d, int sensor, unsigned int* t) {
  GPU_OR_FAIL(d);
  if (sensor != 0) return 2;
  *t = g->temp;
  return 0;
}

nvmlReturn_t nvmlDeviceGetPowerManagementLimit(nvmlDevice_t d, unsigned int* v) {
  GPU_OR_FAIL(d);
  *v = g->limit_mw;
  return 0;
}

nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t d, unsigned int* v) {
  GPU_OR_FAIL(d);
  *v = g->limit_mw;
  return 0;
}

nvmlReturn_t nvmlDeviceGetPowerManagementLimitConstraints(nvmlDevice_t d, unsigned int* lo,
                                                          unsigned int* hi) {
  GPU_OR_FAIL(d);
  *lo = g->min_mw;
  *hi = g->max_mw;
  return 0;
}

nvmlReturn_t nvmlDeviceGetPowerManagementDefaultLimit(nvmlDevice_t d, unsigned int* v) {
  GPU_OR_FAIL(d);
  *v = g->default_mw;
  return 0;
}

nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t d, unsigned int* v) {
  GPU_OR_FAIL(d);
  *v = g->usage_mw;
  return 0;
}

nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t d, unsigned int* current, unsigned int* pending) {
  GPU_OR_FAIL(d);
  *current = g->mig;
  *pending = g->mig;
  return 0;
}

nvmlReturn_t nvmlDeviceGetPersistenceMode(nvmlDevice_t d, int* mode) {
  GPU_OR_FAIL(d);
  *mode = (int)g->persistence;
  return 0;
}
