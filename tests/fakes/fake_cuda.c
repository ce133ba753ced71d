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
 *   FAKE_CUDA_FAIL_ALLOC=1     every allocation function fails driver-side with
 *                              CUDA_ERROR_UNKNOWN (999) and allocates nothing
 * Only cuDeviceTotalMem_v2 is exported (not the legacy 32-bit cuDeviceTotalMem).
 *
 * Memory (for the VRAM cap shim's tests, tests/shim/): one context per device (handle
 * 0x1000 + ordinal), current per thread (device 0 until cuCtxCreate_v2/cuCtxSetCurrent/
 * cuCtxPushCurrent_v2 say otherwise; cuCtxPopCurrent_v2 goes back, cuCtxGetCurrent tells).
 * Streams (cuStreamCreate, cuStreamDestroy_v2) belong to the context current at creation;
 * cuStreamGetCtx and cuStreamGetCtx_v2 (no green contexts) tell it, NULL, CU_STREAM_LEGACY (1)
 * and CU_STREAM_PER_THREAD (2) meaning the current context; FAKE_CUDA_NO_STREAM_GET_CTX_V2=1
 * makes cuStreamGetCtx_v2 answer CUDA_ERROR_NOT_SUPPORTED (801), as for a driver without it.
 * Memory pools: each device has a default pool, which starts as its current pool
 * (cuDeviceGetDefaultMemPool, cuDeviceGetMemPool, cuDeviceSetMemPool: only a pool on that device);
 * cuMemPoolCreate makes one on a device or in host memory (location type 2..4), cuMemPoolDestroy
 * ends it (not a default pool; a current one hands back to the default). cuMemAllocAsync[_ptsz]
 * allocates from the current pool of the stream's device, cuMemAllocFromPoolAsync[_ptsz] from the
 * pool's location (host bytes count on no device); an unknown stream or pool answers
 * CUDA_ERROR_INVALID_HANDLE (400), a NULL pool CUDA_ERROR_INVALID_VALUE.
 * cuMemAlloc_v2, cuMemAllocPitch_v2 (pitch = width rounded up to 512), cuMemAllocManaged, the
 * async allocations above, cuMemCreate (device locations only count), cuArrayCreate_v2,
 * cuArray3DCreate_v2 and cuMipmappedArrayCreate hand out invented device pointers/handles
 * (nothing is allocated on the host) and count bytes per device; the device's total is its
 * mem_mib above and an allocation past it answers CUDA_ERROR_OUT_OF_MEMORY (2). cuMemGetInfo_v2
 * answers free = total - used. cuGetProcAddress / cuGetProcAddress_v2 answer base names from a
 * small table (e.g. "cuMemAlloc" -> cuMemAlloc_v2 from 3020; the _ptsz variants for flag 2);
 * FAKE_CUDA_INTERNAL_POINTERS=1 makes it hand out non-exported thunks for some of them, as the
 * real driver does. cuGetProcAddress_v2_ptsz is exported too.
 * Test hooks: fake_cuda_used_bytes(dev), fake_cuda_peak_bytes(dev), fake_cuda_peak_total_bytes()
 * (both devices at once), fake_cuda_live_allocs(),
 * fake_cuda_rtld_next_probe(), fake_cuda_unseen_pool(dev, created): a pool handed out past every
 * exported name (device dev's default pool, or a newly created one on dev), as if obtained
 * before an interposer was in place. Thread-safe (one mutex). */
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
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

/* ---------------------------------------------------------------------------------------------
 * Contexts and memory (all values invented). */

typedef unsigned long long CUdeviceptr;
typedef unsigned long long CUmemGenericAllocationHandle;
typedef unsigned long long cuuint64_t;
typedef void* CUcontext;
typedef void* CUstream;
typedef void* CUmemoryPool;
typedef void* CUarray;
typedef void* CUmipmappedArray;

typedef struct {
  int type, id;
} fake_mem_location;
typedef struct {
  int type, requested_handle_types;
  fake_mem_location location;
  void* win32_meta;
  unsigned char alloc_flags[8];
} fake_alloc_prop;
typedef struct {
  size_t width, height;
  int format;
  unsigned int channels;
} fake_array_desc;
typedef struct {
  size_t width, height, depth;
  int format;
  unsigned int channels, flags;
} fake_array3d_desc;

enum { kFakeMaxAllocs = 4096 };
typedef struct {
  unsigned long long key; /* device pointer or handle; 0 = free slot */
  int dev;
  unsigned long long bytes;
} fake_alloc;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static fake_alloc g_allocs[kFakeMaxAllocs];
static unsigned long long g_used[2], g_peak[2], g_peak_total;
static unsigned long long g_next_key = 0x7f0000000000ull;
static __thread int t_current_dev = -1; /* -1: device 0 */
enum { kFakeCtxStack = 16 };
static __thread int t_ctx_stack[kFakeCtxStack]; /* what cuCtxPushCurrent_v2 replaced */
static __thread int t_ctx_depth;

static int current_dev(void) {
  return t_current_dev < 0 ? 0 : t_current_dev;
}

enum { kFakeHostDev = -1 }; /* an allocation in host memory (a host pool's): counts nowhere */

/* Records an allocation of bytes on dev (or kFakeHostDev); 0 or a CUresult. *key gets the
 * invented address. */
static CUresult fake_alloc_bytes(int dev, unsigned long long bytes, unsigned long long* key) {
  if (!g_initialized) return 3;
  if (env_int("FAKE_CUDA_FAIL_ALLOC", 0)) return 999; /* CUDA_ERROR_UNKNOWN */
  const fake_dev* f = dev_of(dev);
  if (!f && dev != kFakeHostDev) return 101;
  if (bytes == 0) return 1;
  CUresult rc = 2; /* CUDA_ERROR_OUT_OF_MEMORY */
  pthread_mutex_lock(&g_mu);
  unsigned long long total = f ? f->mem_mib << 20 : ~0ull;
  unsigned long long used = f ? g_used[dev] : 0;
  if (bytes <= total && used <= total - bytes) {
    for (int i = 0; i < kFakeMaxAllocs; ++i) {
      if (g_allocs[i].key == 0) {
        g_allocs[i].key = g_next_key;
        g_allocs[i].dev = dev;
        g_allocs[i].bytes = bytes;
        *key = g_next_key;
        /* Addresses are never reused; keep them 512-aligned and apart. */
        g_next_key += ((bytes + 511) & ~511ull) + 512;
        if (f) {
          g_used[dev] += bytes;
          if (g_used[dev] > g_peak[dev]) g_peak[dev] = g_used[dev];
          if (g_used[0] + g_used[1] > g_peak_total) g_peak_total = g_used[0] + g_used[1];
        }
        rc = 0;
        break;
      }
    }
  }
  pthread_mutex_unlock(&g_mu);
  return rc;
}

static CUresult fake_free_key(unsigned long long key) {
  if (!g_initialized) return 3;
  CUresult rc = 1; /* CUDA_ERROR_INVALID_VALUE: not an allocation */
  pthread_mutex_lock(&g_mu);
  for (int i = 0; i < kFakeMaxAllocs; ++i) {
    if (key != 0 && g_allocs[i].key == key) {
      if (g_allocs[i].dev >= 0) g_used[g_allocs[i].dev] -= g_allocs[i].bytes;
      g_allocs[i].key = 0;
      rc = 0;
      break;
    }
  }
  pthread_mutex_unlock(&g_mu);
  return rc;
}

static unsigned long long fake_format_bytes(int format) {
  switch (format) {
    case 0x01:
    case 0x08:
      return 1;
    case 0x02:
    case 0x09:
    case 0x10:
      return 2;
    default:
      return 4;
  }
}

unsigned long long fake_cuda_used_bytes(int dev) {
  if (dev < 0 || dev > 1) return 0;
  pthread_mutex_lock(&g_mu);
  unsigned long long u = g_used[dev];
  pthread_mutex_unlock(&g_mu);
  return u;
}

unsigned long long fake_cuda_peak_bytes(int dev) {
  if (dev < 0 || dev > 1) return 0;
  pthread_mutex_lock(&g_mu);
  unsigned long long u = g_peak[dev];
  pthread_mutex_unlock(&g_mu);
  return u;
}

/* The most bytes ever allocated on both devices at once. */
unsigned long long fake_cuda_peak_total_bytes(void) {
  pthread_mutex_lock(&g_mu);
  unsigned long long u = g_peak_total;
  pthread_mutex_unlock(&g_mu);
  return u;
}

int fake_cuda_live_allocs(void) {
  int n = 0;
  pthread_mutex_lock(&g_mu);
  for (int i = 0; i < kFakeMaxAllocs; ++i) n += g_allocs[i].key != 0;
  pthread_mutex_unlock(&g_mu);
  return n;
}

/* 1 when dlsym(RTLD_NEXT) called from here looks only past this library (as glibc promises): an
 * LD_PRELOADed dlsym must not make it search from the preloaded library instead. */
int fake_cuda_rtld_next_probe(void) {
  return dlsym(RTLD_DEFAULT, "fake_cuda_rtld_next_probe") != NULL &&
         dlsym(RTLD_NEXT, "fake_cuda_rtld_next_probe") == NULL;
}

CUresult cuCtxCreate_v2(CUcontext* ctx, unsigned int flags, CUdevice d) {
  (void)flags;
  if (!g_initialized) return 3;
  if (!dev_of(d)) return 101;
  if (!ctx) return 1;
  *ctx = (CUcontext)(uintptr_t)(0x1000 + d);
  t_current_dev = d;
  return 0;
}

CUresult cuCtxSetCurrent(CUcontext ctx) {
  if (!g_initialized) return 3;
  if (!ctx) {
    t_current_dev = -1;
    return 0;
  }
  int d = (int)((uintptr_t)ctx - 0x1000);
  if (!dev_of(d)) return 201; /* CUDA_ERROR_INVALID_CONTEXT */
  t_current_dev = d;
  return 0;
}

CUresult cuCtxGetDevice(CUdevice* d) {
  if (!g_initialized) return 3;
  if (!d) return 1;
  *d = current_dev();
  return 0;
}

CUresult cuCtxGetCurrent(CUcontext* ctx) {
  if (!g_initialized) return 3;
  if (!ctx) return 1;
  *ctx = (CUcontext)(uintptr_t)(0x1000 + current_dev());
  return 0;
}

CUresult cuCtxPushCurrent_v2(CUcontext ctx) {
  if (!g_initialized) return 3;
  int d = (int)((uintptr_t)ctx - 0x1000);
  if (!ctx || !dev_of(d)) return 201;
  if (t_ctx_depth >= kFakeCtxStack) return 999;
  t_ctx_stack[t_ctx_depth++] = t_current_dev;
  t_current_dev = d;
  return 0;
}

CUresult cuCtxPopCurrent_v2(CUcontext* ctx) {
  if (!g_initialized) return 3;
  if (t_ctx_depth == 0) return 201;
  if (ctx) *ctx = (CUcontext)(uintptr_t)(0x1000 + current_dev());
  t_current_dev = t_ctx_stack[--t_ctx_depth];
  return 0;
}

/* Streams: handle 0x200000 + 16 * index; g_stream_dev[index] is the device of the context it
 * was created in, -1 once destroyed. */
enum { kFakeMaxStreams = 256, kFakeStreamBase = 0x200000 };
static int g_stream_dev[kFakeMaxStreams];
static int g_nstreams;

/* The device of a stream's context, or -1 for an unknown handle. */
static int stream_dev(CUstream s) {
  uintptr_t h = (uintptr_t)s;
  if (h <= 2) return current_dev(); /* NULL, CU_STREAM_LEGACY, CU_STREAM_PER_THREAD */
  if (h < kFakeStreamBase || (h - kFakeStreamBase) % 16 != 0) return -1;
  uintptr_t i = (h - kFakeStreamBase) / 16;
  pthread_mutex_lock(&g_mu);
  int d = (i < (uintptr_t)g_nstreams) ? g_stream_dev[i] : -1;
  pthread_mutex_unlock(&g_mu);
  return d;
}

CUresult cuStreamCreate(CUstream* s, unsigned int flags) {
  (void)flags;
  if (!g_initialized) return 3;
  if (!s) return 1;
  CUresult rc = 2;
  pthread_mutex_lock(&g_mu);
  if (g_nstreams < kFakeMaxStreams) {
    g_stream_dev[g_nstreams] = current_dev();
    *s = (CUstream)(uintptr_t)(kFakeStreamBase + 16 * g_nstreams);
    ++g_nstreams;
    rc = 0;
  }
  pthread_mutex_unlock(&g_mu);
  return rc;
}

CUresult cuStreamDestroy_v2(CUstream s) {
  if (!g_initialized) return 3;
  if (stream_dev(s) < 0 || (uintptr_t)s <= 2) return 400;
  pthread_mutex_lock(&g_mu);
  g_stream_dev[((uintptr_t)s - kFakeStreamBase) / 16] = -1;
  pthread_mutex_unlock(&g_mu);
  return 0;
}

CUresult cuStreamGetCtx(CUstream s, CUcontext* ctx) {
  if (!g_initialized) return 3;
  if (!ctx) return 1;
  int d = stream_dev(s);
  if (d < 0) return 400; /* CUDA_ERROR_INVALID_HANDLE */
  *ctx = (CUcontext)(uintptr_t)(0x1000 + d);
  return 0;
}

CUresult cuStreamGetCtx_v2(CUstream s, CUcontext* ctx, void** green_ctx) {
  if (env_int("FAKE_CUDA_NO_STREAM_GET_CTX_V2", 0)) return 801; /* CUDA_ERROR_NOT_SUPPORTED */
  if (!green_ctx) return 1;
  *green_ctx = NULL;
  return cuStreamGetCtx(s, ctx);
}

/* Memory pools: handle 0x300000 + 16 * index; indices 0 and 1 are the devices' default pools.
 * g_pool_dev[index]: the device, kFakeHostDev for a host pool, kFakePoolDead once destroyed. */
enum { kFakeMaxPools = 256, kFakePoolBase = 0x300000, kFakePoolDead = -2 };
static int g_pool_dev[kFakeMaxPools] = {0, 1};
static int g_npools = 2;
static int g_current_pool[2] = {0, 1};

static CUmemoryPool pool_handle(int i) {
  return (CUmemoryPool)(uintptr_t)(kFakePoolBase + 16 * i);
}

/* The index of a live pool, or -1. Call with g_mu held. */
static int pool_index_locked(CUmemoryPool pool) {
  uintptr_t h = (uintptr_t)pool;
  if (h < kFakePoolBase || (h - kFakePoolBase) % 16 != 0) return -1;
  uintptr_t i = (h - kFakePoolBase) / 16;
  if (i >= (uintptr_t)g_npools || g_pool_dev[i] == kFakePoolDead) return -1;
  return (int)i;
}

/* A pool's location (device or kFakeHostDev), or kFakePoolDead for an unknown handle. */
static int pool_dev(CUmemoryPool pool) {
  pthread_mutex_lock(&g_mu);
  int i = pool_index_locked(pool);
  int d = i < 0 ? kFakePoolDead : g_pool_dev[i];
  pthread_mutex_unlock(&g_mu);
  return d;
}

typedef struct {
  int alloc_type, handle_types;
  fake_mem_location location;
  void* win32_security;
  size_t max_size;
  unsigned short usage;
  unsigned char reserved[54];
} fake_pool_props;

static CUresult fake_pool_create(CUmemoryPool* pool, int dev) {
  CUresult rc = 2;
  pthread_mutex_lock(&g_mu);
  if (g_npools < kFakeMaxPools) {
    g_pool_dev[g_npools] = dev;
    *pool = pool_handle(g_npools++);
    rc = 0;
  }
  pthread_mutex_unlock(&g_mu);
  return rc;
}

CUresult cuMemPoolCreate(CUmemoryPool* pool, const fake_pool_props* props) {
  if (!g_initialized) return 3;
  if (!pool || !props) return 1;
  int t = props->location.type;
  if (t == 1) {
    if (!dev_of(props->location.id)) return 101;
    return fake_pool_create(pool, props->location.id);
  }
  if (t >= 2 && t <= 4) return fake_pool_create(pool, kFakeHostDev); /* HOST, HOST_NUMA... */
  return 1;
}

CUresult cuMemPoolDestroy(CUmemoryPool pool) {
  if (!g_initialized) return 3;
  CUresult rc = 400;
  pthread_mutex_lock(&g_mu);
  int i = pool_index_locked(pool);
  if (i >= 2) {
    int d = g_pool_dev[i];
    if (d >= 0 && g_current_pool[d] == i) g_current_pool[d] = d;
    g_pool_dev[i] = kFakePoolDead;
    rc = 0;
  } else if (i >= 0) {
    rc = 1; /* a default pool */
  }
  pthread_mutex_unlock(&g_mu);
  return rc;
}

CUresult cuDeviceGetDefaultMemPool(CUmemoryPool* pool, CUdevice d) {
  if (!g_initialized) return 3;
  if (!pool) return 1;
  if (!dev_of(d)) return 101;
  *pool = pool_handle(d);
  return 0;
}

CUresult cuDeviceGetMemPool(CUmemoryPool* pool, CUdevice d) {
  if (!g_initialized) return 3;
  if (!pool) return 1;
  if (!dev_of(d)) return 101;
  pthread_mutex_lock(&g_mu);
  *pool = pool_handle(g_current_pool[d]);
  pthread_mutex_unlock(&g_mu);
  return 0;
}

CUresult cuDeviceSetMemPool(CUdevice d, CUmemoryPool pool) {
  if (!g_initialized) return 3;
  if (!dev_of(d)) return 101;
  CUresult rc = 400;
  pthread_mutex_lock(&g_mu);
  int i = pool_index_locked(pool);
  if (i >= 0 && g_pool_dev[i] != d) {
    rc = 1; /* the pool is not on that device */
  } else if (i >= 0) {
    g_current_pool[d] = i;
    rc = 0;
  }
  pthread_mutex_unlock(&g_mu);
  return rc;
}

CUmemoryPool fake_cuda_unseen_pool(int dev, int created) {
  CUmemoryPool pool = NULL;
  if (!dev_of(dev)) return NULL;
  if (!created) return pool_handle(dev);
  return fake_pool_create(&pool, dev) == 0 ? pool : NULL;
}

CUresult cuMemAlloc_v2(CUdeviceptr* dptr, size_t bytes) {
  if (!dptr) return 1;
  return fake_alloc_bytes(current_dev(), bytes, dptr);
}

CUresult cuMemAllocPitch_v2(CUdeviceptr* dptr, size_t* pitch, size_t width, size_t height,
                            unsigned int element_bytes) {
  if (!dptr || !pitch || width == 0 || height == 0) return 1;
  if (element_bytes != 4 && element_bytes != 8 && element_bytes != 16) return 1;
  size_t p = (width + 511) & ~(size_t)511;
  CUresult rc = fake_alloc_bytes(current_dev(), (unsigned long long)p * height, dptr);
  if (rc == 0) *pitch = p;
  return rc;
}

CUresult cuMemAllocManaged(CUdeviceptr* dptr, size_t bytes, unsigned int flags) {
  (void)flags;
  if (!dptr) return 1;
  return fake_alloc_bytes(current_dev(), bytes, dptr);
}

/* From the current pool of the stream's device (always a pool on that device). */
CUresult cuMemAllocAsync(CUdeviceptr* dptr, size_t bytes, CUstream s) {
  if (!dptr) return 1;
  if (!g_initialized) return 3;
  int d = stream_dev(s);
  if (d < 0) return 400;
  return fake_alloc_bytes(d, bytes, dptr);
}

CUresult cuMemAllocAsync_ptsz(CUdeviceptr* dptr, size_t bytes, CUstream s) {
  return cuMemAllocAsync(dptr, bytes, s);
}

CUresult cuMemAllocFromPoolAsync(CUdeviceptr* dptr, size_t bytes, CUmemoryPool pool, CUstream s) {
  if (!dptr || !pool) return 1;
  if (!g_initialized) return 3;
  if (stream_dev(s) < 0) return 400;
  int d = pool_dev(pool);
  if (d == kFakePoolDead) return 400;
  return fake_alloc_bytes(d, bytes, dptr);
}

CUresult cuMemAllocFromPoolAsync_ptsz(CUdeviceptr* dptr, size_t bytes, CUmemoryPool pool,
                                      CUstream s) {
  return cuMemAllocFromPoolAsync(dptr, bytes, pool, s);
}

CUresult cuMemFree_v2(CUdeviceptr dptr) {
  return fake_free_key(dptr);
}

CUresult cuMemFreeAsync(CUdeviceptr dptr, CUstream s) {
  (void)s;
  return fake_free_key(dptr);
}

CUresult cuMemFreeAsync_ptsz(CUdeviceptr dptr, CUstream s) {
  return cuMemFreeAsync(dptr, s);
}

CUresult cuMemCreate(CUmemGenericAllocationHandle* handle, size_t size, const fake_alloc_prop* prop,
                     unsigned long long flags) {
  (void)flags;
  if (!handle || !prop) return 1;
  if (prop->location.type == 1) return fake_alloc_bytes(prop->location.id, size, handle);
  /* Host memory: a handle that counts against no device. */
  if (!g_initialized) return 3;
  pthread_mutex_lock(&g_mu);
  *handle = g_next_key;
  g_next_key += 4096;
  pthread_mutex_unlock(&g_mu);
  return 0;
}

CUresult cuMemRelease(CUmemGenericAllocationHandle handle) {
  CUresult rc = fake_free_key(handle);
  return rc == 1 ? 0 : rc; /* host handles were never counted */
}

CUresult cuArrayCreate_v2(CUarray* arr, const fake_array_desc* d) {
  if (!arr || !d || d->width == 0) return 1;
  unsigned long long key = 0;
  CUresult rc = fake_alloc_bytes(
      current_dev(),
      d->width * (d->height ? d->height : 1) * d->channels * fake_format_bytes(d->format), &key);
  if (rc == 0) *arr = (CUarray)(uintptr_t)key;
  return rc;
}

CUresult cuArray3DCreate_v2(CUarray* arr, const fake_array3d_desc* d) {
  if (!arr || !d || d->width == 0) return 1;
  unsigned long long key = 0;
  CUresult rc =
      fake_alloc_bytes(current_dev(),
                       d->width * (d->height ? d->height : 1) * (d->depth ? d->depth : 1) *
                           d->channels * fake_format_bytes(d->format),
                       &key);
  if (rc == 0) *arr = (CUarray)(uintptr_t)key;
  return rc;
}

CUresult cuMipmappedArrayCreate(CUmipmappedArray* arr, const fake_array3d_desc* d,
                                unsigned int levels) {
  if (!arr || !d || d->width == 0 || levels == 0) return 1;
  unsigned long long w = d->width, h = d->height, z = d->depth, total = 0;
  for (unsigned int l = 0; l < levels; ++l) {
    total += w * (h ? h : 1) * (z ? z : 1) * d->channels * fake_format_bytes(d->format);
    w = w > 1 ? w / 2 : 1;
    h = h > 1 ? h / 2 : h;
    z = z > 1 ? z / 2 : z;
  }
  unsigned long long key = 0;
  CUresult rc = fake_alloc_bytes(current_dev(), total, &key);
  if (rc == 0) *arr = (CUmipmappedArray)(uintptr_t)key;
  return rc;
}

CUresult cuArrayDestroy(CUarray arr) {
  return fake_free_key((unsigned long long)(uintptr_t)arr);
}

CUresult cuMipmappedArrayDestroy(CUmipmappedArray arr) {
  return fake_free_key((unsigned long long)(uintptr_t)arr);
}

CUresult cuMemGetInfo_v2(size_t* free_bytes, size_t* total_bytes) {
  if (!g_initialized) return 3;
  if (!free_bytes || !total_bytes) return 1;
  int dev = current_dev();
  const fake_dev* f = dev_of(dev);
  if (!f) return 101;
  unsigned long long total = f->mem_mib << 20;
  *total_bytes = (size_t)total;
  *free_bytes = (size_t)(total - fake_cuda_used_bytes(dev));
  return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Entry points by base name (cuGetProcAddress). A row: base name, first CUDA version that gets
 * it, 1 for the per-thread-default-stream variant, the function. */

CUresult cuGetProcAddress(const char* symbol, void** pfn, int cuda_version, cuuint64_t flags);
CUresult cuGetProcAddress_v2(const char* symbol, void** pfn, int cuda_version, cuuint64_t flags,
                             int* status);

typedef struct {
  const char* base;
  int version;
  int ptsz;
  void* fn;
} fake_proc;

#define FAKE_PROC(base, version, ptsz, fn) \
  { base, version, ptsz, (void*)&fn }
static const fake_proc kProcs[] = {
    FAKE_PROC("cuInit", 2000, 0, cuInit),
    FAKE_PROC("cuDriverGetVersion", 2020, 0, cuDriverGetVersion),
    FAKE_PROC("cuDeviceGetCount", 2000, 0, cuDeviceGetCount),
    FAKE_PROC("cuDeviceGet", 2000, 0, cuDeviceGet),
    FAKE_PROC("cuDeviceGetName", 2000, 0, cuDeviceGetName),
    FAKE_PROC("cuDeviceTotalMem", 3020, 0, cuDeviceTotalMem_v2),
    FAKE_PROC("cuDeviceGetAttribute", 2000, 0, cuDeviceGetAttribute),
    FAKE_PROC("cuGetErrorName", 6000, 0, cuGetErrorName),
    FAKE_PROC("cuGetErrorString", 6000, 0, cuGetErrorString),
    FAKE_PROC("cuCtxCreate", 3020, 0, cuCtxCreate_v2),
    FAKE_PROC("cuCtxSetCurrent", 4000, 0, cuCtxSetCurrent),
    FAKE_PROC("cuCtxGetDevice", 2000, 0, cuCtxGetDevice),
    FAKE_PROC("cuCtxGetCurrent", 4000, 0, cuCtxGetCurrent),
    FAKE_PROC("cuCtxPushCurrent", 4000, 0, cuCtxPushCurrent_v2),
    FAKE_PROC("cuCtxPopCurrent", 4000, 0, cuCtxPopCurrent_v2),
    FAKE_PROC("cuStreamCreate", 2000, 0, cuStreamCreate),
    FAKE_PROC("cuStreamDestroy", 4000, 0, cuStreamDestroy_v2),
    FAKE_PROC("cuStreamGetCtx", 9020, 0, cuStreamGetCtx),
    FAKE_PROC("cuStreamGetCtx", 12050, 0, cuStreamGetCtx_v2),
    FAKE_PROC("cuMemPoolCreate", 11020, 0, cuMemPoolCreate),
    FAKE_PROC("cuMemPoolDestroy", 11020, 0, cuMemPoolDestroy),
    FAKE_PROC("cuDeviceGetDefaultMemPool", 11020, 0, cuDeviceGetDefaultMemPool),
    FAKE_PROC("cuDeviceGetMemPool", 11020, 0, cuDeviceGetMemPool),
    FAKE_PROC("cuDeviceSetMemPool", 11020, 0, cuDeviceSetMemPool),
    FAKE_PROC("cuMemAlloc", 3020, 0, cuMemAlloc_v2),
    FAKE_PROC("cuMemAllocPitch", 3020, 0, cuMemAllocPitch_v2),
    FAKE_PROC("cuMemAllocManaged", 6000, 0, cuMemAllocManaged),
    FAKE_PROC("cuMemAllocAsync", 11020, 0, cuMemAllocAsync),
    FAKE_PROC("cuMemAllocAsync", 11020, 1, cuMemAllocAsync_ptsz),
    FAKE_PROC("cuMemAllocFromPoolAsync", 11020, 0, cuMemAllocFromPoolAsync),
    FAKE_PROC("cuMemAllocFromPoolAsync", 11020, 1, cuMemAllocFromPoolAsync_ptsz),
    FAKE_PROC("cuMemFree", 3020, 0, cuMemFree_v2),
    FAKE_PROC("cuMemFreeAsync", 11020, 0, cuMemFreeAsync),
    FAKE_PROC("cuMemFreeAsync", 11020, 1, cuMemFreeAsync_ptsz),
    FAKE_PROC("cuMemCreate", 10020, 0, cuMemCreate),
    FAKE_PROC("cuMemRelease", 10020, 0, cuMemRelease),
    FAKE_PROC("cuArrayCreate", 3020, 0, cuArrayCreate_v2),
    FAKE_PROC("cuArray3DCreate", 3020, 0, cuArray3DCreate_v2),
    FAKE_PROC("cuMipmappedArrayCreate", 5000, 0, cuMipmappedArrayCreate),
    FAKE_PROC("cuArrayDestroy", 2000, 0, cuArrayDestroy),
    FAKE_PROC("cuMipmappedArrayDestroy", 5000, 0, cuMipmappedArrayDestroy),
    FAKE_PROC("cuMemGetInfo", 3020, 0, cuMemGetInfo_v2),
    FAKE_PROC("cuGetProcAddress", 11030, 0, cuGetProcAddress),
    FAKE_PROC("cuGetProcAddress", 12000, 0, cuGetProcAddress_v2),
};
#undef FAKE_PROC

CUresult cuGetProcAddress_v2_ptsz(const char* symbol, void** pfn, int cuda_version,
                                  cuuint64_t flags, int* status);

/* FAKE_CUDA_INTERNAL_POINTERS=1: like the real driver, cuGetProcAddress hands out pointers to
 * functions that are not the exported symbols (here: static thunks) for these entry points, so
 * a shim can only recognise them by name and version. */
static CUresult internal_mem_alloc(CUdeviceptr* p, size_t n) {
  return cuMemAlloc_v2(p, n);
}
static CUresult internal_mem_free(CUdeviceptr p) {
  return cuMemFree_v2(p);
}
static CUresult internal_mem_get_info(size_t* f, size_t* t) {
  return cuMemGetInfo_v2(f, t);
}
static CUresult internal_mem_alloc_async(CUdeviceptr* p, size_t n, CUstream s) {
  return cuMemAllocAsync(p, n, s);
}
static CUresult internal_mem_alloc_async_ptsz(CUdeviceptr* p, size_t n, CUstream s) {
  return cuMemAllocAsync_ptsz(p, n, s);
}
static CUresult internal_mem_alloc_from_pool_async(CUdeviceptr* p, size_t n, CUmemoryPool pool,
                                                   CUstream s) {
  return cuMemAllocFromPoolAsync(p, n, pool, s);
}
static CUresult internal_mem_pool_create(CUmemoryPool* pool, const fake_pool_props* props) {
  return cuMemPoolCreate(pool, props);
}
static CUresult internal_device_get_default_mem_pool(CUmemoryPool* pool, CUdevice d) {
  return cuDeviceGetDefaultMemPool(pool, d);
}
static CUresult internal_get_proc_address_v2(const char* symbol, void** pfn, int v,
                                             cuuint64_t flags, int* status) {
  return cuGetProcAddress_v2(symbol, pfn, v, flags, status);
}
static void* internal_pointer(void* exported) {
  if (!env_int("FAKE_CUDA_INTERNAL_POINTERS", 0)) return exported;
  if (exported == (void*)&cuMemAlloc_v2) return (void*)&internal_mem_alloc;
  if (exported == (void*)&cuMemFree_v2) return (void*)&internal_mem_free;
  if (exported == (void*)&cuMemGetInfo_v2) return (void*)&internal_mem_get_info;
  if (exported == (void*)&cuMemAllocAsync) return (void*)&internal_mem_alloc_async;
  if (exported == (void*)&cuMemAllocAsync_ptsz) return (void*)&internal_mem_alloc_async_ptsz;
  if (exported == (void*)&cuMemAllocFromPoolAsync)
    return (void*)&internal_mem_alloc_from_pool_async;
  if (exported == (void*)&cuMemPoolCreate) return (void*)&internal_mem_pool_create;
  if (exported == (void*)&cuDeviceGetDefaultMemPool)
    return (void*)&internal_device_get_default_mem_pool;
  if (exported == (void*)&cuGetProcAddress_v2 || exported == (void*)&cuGetProcAddress_v2_ptsz)
    return (void*)&internal_get_proc_address_v2;
  return exported;
}

/* 0 found, 1 unknown symbol, 2 known but newer than cuda_version. */
static int fake_lookup(const char* symbol, void** pfn, int cuda_version, cuuint64_t flags) {
  const fake_proc* best = NULL;
  int known = 0;
  int want_ptsz = (flags & 2) != 0;
  for (size_t i = 0; i < sizeof kProcs / sizeof kProcs[0]; ++i) {
    const fake_proc* p = &kProcs[i];
    if (strcmp(p->base, symbol) != 0) continue;
    known = 1;
    if (p->version > cuda_version) continue;
    if (p->ptsz && !want_ptsz) continue;
    if (best && best->version > p->version) continue;
    if (best && best->version == p->version && best->ptsz == want_ptsz) continue;
    best = p;
  }
  *pfn = best ? internal_pointer(best->fn) : NULL;
  return best ? 0 : (known ? 2 : 1);
}

CUresult cuGetProcAddress(const char* symbol, void** pfn, int cuda_version, cuuint64_t flags) {
  if (!symbol || !pfn) return 1;
  if (cuda_version > 12040) return 1;
  return fake_lookup(symbol, pfn, cuda_version, flags) == 0 ? 0 : 500; /* CUDA_ERROR_NOT_FOUND */
}

CUresult cuGetProcAddress_v2(const char* symbol, void** pfn, int cuda_version, cuuint64_t flags,
                             int* status) {
  if (!symbol || !pfn) return 1;
  if (cuda_version > 12040) return 1;
  int st = fake_lookup(symbol, pfn, cuda_version, flags);
  if (status) *status = st;
  return 0;
}

/* Exported by CUDA >= 12 drivers; cuda.h maps cuGetProcAddress to it under
 * CUDA_API_PER_THREAD_DEFAULT_STREAM. Same answers as cuGetProcAddress_v2 here. */
CUresult cuGetProcAddress_v2_ptsz(const char* symbol, void** pfn, int cuda_version,
                                  cuuint64_t flags, int* status) {
  return cuGetProcAddress_v2(symbol, pfn, cuda_version, flags, status);
}
