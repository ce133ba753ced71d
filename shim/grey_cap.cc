// libgrey_cap.so: an LD_PRELOAD shim that holds an unmodified CUDA program under a per-process
// VRAM cap (GREY_VRAM_CAP_MB, see cap_accounting.h). Written from the CUDA driver API reference.
//
// How calls reach the wrappers:
//  * programs linked against libcuda call the exported cu* names below (symbol interposition);
//  * the CUDA runtime (>= 11.3) dlopen()s libcuda.so.1, dlsym()s cuGetProcAddress[_v2] and asks
//    it for every entry point by base name. The dlsym() below answers with the wrapper of
//    cuGetProcAddress, which calls the real one and swaps the memory functions for wrappers.
// Everything that does not allocate (or tell where a memory pool is) is the driver's own
// pointer. Without a cap nothing is swapped. Device allocations reserve their bytes against the
// cap of the device they allocate on before the driver is called; over the cap the call answers
// CUDA_ERROR_OUT_OF_MEMORY without reaching the driver. That device is the current context's,
// except: cuMemCreate's is prop->location; cuMemAllocAsync allocates from the current pool of
// its *stream's* device (the stream's context, asked from the driver with cuStreamGetCtx[_v2]
// and, when it is not the current one, cuCtxPush/GetDevice/Pop; NULL, CU_STREAM_LEGACY and
// CU_STREAM_PER_THREAD mean the current context); cuMemAllocFromPoolAsync allocates on the
// *pool's* device, which the shim remembers from cuMemPoolCreate, cuDeviceGetDefaultMemPool,
// cuDeviceGetMemPool and cuDeviceSetMemPool (forgotten at cuMemPoolDestroy; a host pool counts
// nowhere). A pool it never saw is looked for among every device's default and current pools,
// else counted on its stream's device (logged once). cuStreamGetDevice is not used: some
// drivers refuse it on a capturing stream, and the refusal invalidates the capture. Frees give
// the bytes back to the device they were counted on. Nothing happens at load time: GREY_VRAM_CAP_MB
// is read and libcuda looked up on the first call that needs them. GREY_CAP_LOG=<file> appends one
// line per event. GREY_CAP_NO_DLSYM (scripts/tsan-shim.sh only) leaves dlsym alone, for linking the
// wrappers into a ThreadSanitizer test program, whose runtime cannot live with a replaced dlsym.
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <new>

#include "cap_accounting.h"
#include "cuda_min.h"

#define GREY_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

using grey::cap::AllocKind;
using grey::cap::CapAccounting;
using grey::cap::CapSpec;
using grey::cap::PoolDevices;

// ---------------------------------------------------------------------------------------------
// Logging (only when GREY_CAP_LOG names a file).

const char* log_path() {
  static const char* path = [] {
    const char* p = getenv("GREY_CAP_LOG");
    return (p && *p) ? p : nullptr;
  }();
  return path;
}

__attribute__((format(printf, 1, 2))) void log_event(const char* fmt, ...) {
  const char* path = log_path();
  if (!path) return;
  char line[512];
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ pid %d ",
                   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                   ts.tv_nsec / 1000000, static_cast<int>(getpid()));
  if (n < 0) return;
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(line + n, sizeof line - static_cast<size_t>(n), fmt, ap);
  va_end(ap);
  if (m < 0) return;
  size_t len = static_cast<size_t>(n) + static_cast<size_t>(m);
  if (len > sizeof line - 2) len = sizeof line - 2;
  line[len++] = '\n';
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return;
  ssize_t w = write(fd, line, len);
  (void)w;
  close(fd);
}

// ---------------------------------------------------------------------------------------------
// Cap state, parsed once on first use. Never destroyed: frees can arrive from atexit handlers.

CapAccounting& acct() {
  alignas(CapAccounting) static unsigned char storage[sizeof(CapAccounting)];
  static CapAccounting* a = [] {
    CapAccounting* p = new (storage) CapAccounting();
    const char* text = getenv("GREY_VRAM_CAP_MB");
    CapSpec spec;
    if (!grey::cap::parse_cap_spec(text ? text : "", &spec)) {
      log_event("invalid GREY_VRAM_CAP_MB \"%.200s\": no cap", text);
    } else if (spec.any) {
      log_event("cap GREY_VRAM_CAP_MB=\"%.200s\"", text);
    }
    p->set_caps(spec);
    return p;
  }();
  return *a;
}

// Where the stream-ordered memory pools are (see PoolDevices). Never destroyed either.
PoolDevices& pools() {
  alignas(PoolDevices) static unsigned char storage[sizeof(PoolDevices)];
  static PoolDevices* p = new (storage) PoolDevices();
  return *p;
}

// ---------------------------------------------------------------------------------------------
// The real dlsym and the real driver functions.

using dlsym_fn = void* (*)(void*, const char*);

dlsym_fn real_dlsym() {
  static std::atomic<dlsym_fn> fn{nullptr};
  dlsym_fn f = fn.load(std::memory_order_acquire);
  if (f) return f;
#ifdef GREY_CAP_NO_DLSYM
  f = &::dlsym;
#else
  for (const char* ver : {"GLIBC_2.34", "GLIBC_2.2.5", "GLIBC_2.17", "GLIBC_2.0"}) {
    f = reinterpret_cast<dlsym_fn>(dlvsym(RTLD_NEXT, "dlsym", ver));
    if (f) break;
  }
#endif
  fn.store(f, std::memory_order_release);
  return f;
}

// One row per driver function the shim replaces or needs. base/min_version/ptsz describe what a
// cuGetProcAddress request for it looks like (used when the driver hands out a pointer that is
// not one of its exported symbols).
struct Fn {
  const char* name;
  void* wrapper;
  const char* base;
  int min_version;
  bool ptsz;
  std::atomic<void*> real;
};

enum FnId {
  kGetProcAddress,
  kGetProcAddressV2,
  kGetProcAddressV2Ptsz,  // cuda.h maps cuGetProcAddress to it under per-thread default streams
  kMemAlloc,
  kMemAllocPitch,
  kMemAllocManaged,
  kMemAllocAsync,
  kMemAllocAsyncPtsz,
  kMemAllocFromPoolAsync,
  kMemAllocFromPoolAsyncPtsz,
  kMemCreate,
  kMemRelease,
  kMemFree,
  kMemFreeAsync,
  kMemFreeAsyncPtsz,
  kArrayCreate,
  kArray3DCreate,
  kMipmappedArrayCreate,
  kArrayDestroy,
  kMipmappedArrayDestroy,
  kMemGetInfo,
  kDeviceTotalMem,
  kMemPoolCreate,  // replaced only to learn where pools are
  kMemPoolDestroy,
  kDeviceGetDefaultMemPool,
  kDeviceGetMemPool,
  kDeviceSetMemPool,
  kCtxGetDevice,  // needed, never replaced (from here on)
  kCtxGetCurrent,
  kCtxPushCurrent,
  kCtxPopCurrent,
  kStreamGetCtx,
  kStreamGetCtxV2,  // CUDA >= 12.5 drivers; also answers for green-context streams
  kDeviceGetCount,
  kFnCount,
};

Fn* table();  // defined after the wrappers

template <typename F>
F real_fn(FnId id) {
  return reinterpret_cast<F>(table()[id].real.load(std::memory_order_acquire));
}

std::atomic<bool> g_resolved{false};
std::atomic<void*> g_hint{nullptr};  // a real driver function seen through dlsym
pthread_mutex_t g_resolve_mu = PTHREAD_MUTEX_INITIALIZER;

void* open_libcuda(bool may_load) {
  void* h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
  if (!h) {
    Dl_info info;
    void* hint = g_hint.load(std::memory_order_acquire);
    if (hint && dladdr(hint, &info) && info.dli_fname) {
      h = dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD);
    }
  }
  if (!h && may_load) h = dlopen("libcuda.so.1", RTLD_NOW);
  return h;
}

// Looks the real functions up in libcuda (once it is found). may_load: dlopen it if the process
// has not (only from a wrapper, i.e. when the program is calling the driver anyway).
bool resolve_real(bool may_load) {
  if (g_resolved.load(std::memory_order_acquire)) return true;
  pthread_mutex_lock(&g_resolve_mu);
  if (!g_resolved.load(std::memory_order_relaxed)) {
    dlsym_fn look = real_dlsym();
    void* h = look ? open_libcuda(may_load) : nullptr;
    if (h) {
      Fn* t = table();
      for (int i = 0; i < kFnCount; ++i) {
        void* p = look(h, t[i].name);
        if (p == t[i].wrapper) p = nullptr;  // never our own export
        t[i].real.store(p, std::memory_order_release);
      }
      g_resolved.store(true, std::memory_order_release);
    }
  }
  pthread_mutex_unlock(&g_resolve_mu);
  return g_resolved.load(std::memory_order_acquire);
}

bool caps_active() {
  return acct().any_cap();
}

// The current context's device, or -1.
int current_device() {
  auto get = real_fn<CUresult (*)(CUdevice*)>(kCtxGetDevice);
  CUdevice d = -1;
  if (!get || get(&d) != CUDA_SUCCESS) return -1;
  return d;
}

// The device of a context: the current one's directly, another's by making it current for a
// moment. -1 when the driver cannot say.
int context_device(CUcontext ctx) {
  auto get_current = real_fn<CUresult (*)(CUcontext*)>(kCtxGetCurrent);
  CUcontext cur = nullptr;
  if (get_current && get_current(&cur) == CUDA_SUCCESS && cur == ctx) return current_device();
  auto push = real_fn<CUresult (*)(CUcontext)>(kCtxPushCurrent);
  auto pop = real_fn<CUresult (*)(CUcontext*)>(kCtxPopCurrent);
  if (!push || !pop || push(ctx) != CUDA_SUCCESS) return -1;
  int dev = current_device();
  CUcontext popped = nullptr;
  pop(&popped);
  return dev;
}

// The device a stream's work runs on: the current context's for the special handles, else that
// of the context the stream was created in. Falls back to the current context's device when the
// driver cannot tell (the allocation call will then judge the stream itself).
int stream_device(CUstream stream) {
  if (stream == nullptr || stream == CU_STREAM_LEGACY || stream == CU_STREAM_PER_THREAD) {
    return current_device();
  }
  CUcontext ctx = nullptr;
  auto get_v2 = real_fn<CUresult (*)(CUstream, CUcontext*, CUgreenCtx*)>(kStreamGetCtxV2);
  CUgreenCtx green = nullptr;  // a green context's stream: ctx is then its device's primary one
  bool found = get_v2 && get_v2(stream, &ctx, &green) == CUDA_SUCCESS && ctx;
  if (!found) {
    auto get_v1 = real_fn<CUresult (*)(CUstream, CUcontext*)>(kStreamGetCtx);
    ctx = nullptr;
    found = get_v1 && get_v1(stream, &ctx) == CUDA_SUCCESS && ctx;
  }
  int dev = found ? context_device(ctx) : -1;
  return dev >= 0 ? dev : current_device();
}

// The device whose default or current pool `pool` is, for a pool the shim never saw handed out
// (e.g. fetched before the shim was in place); -1 when it is neither.
int find_pool_device(CUmemoryPool pool) {
  auto count = real_fn<CUresult (*)(int*)>(kDeviceGetCount);
  auto get_default = real_fn<CUresult (*)(CUmemoryPool*, CUdevice)>(kDeviceGetDefaultMemPool);
  auto get_current = real_fn<CUresult (*)(CUmemoryPool*, CUdevice)>(kDeviceGetMemPool);
  int n = 0;
  if (!count || count(&n) != CUDA_SUCCESS) return -1;
  for (int d = 0; d < n && d < grey::cap::kMaxDevices; ++d) {
    CUmemoryPool p = nullptr;
    if (get_default && get_default(&p, d) == CUDA_SUCCESS && p == pool) return d;
    p = nullptr;
    if (get_current && get_current(&p, d) == CUDA_SUCCESS && p == pool) return d;
  }
  return -1;
}

uint64_t pool_key(CUmemoryPool pool) {
  return static_cast<uint64_t>(reinterpret_cast<uintptr_t>(pool));
}

// The device an allocation from `pool` lands on; PoolDevices::kHost (-1: not counted) for a
// pool in host memory. A pool the shim cannot place counts on its stream's device.
int pool_device(const char* fn, CUmemoryPool pool, CUstream stream) {
  if (!pool) return stream_device(stream);  // the driver refuses it anyway
  PoolDevices& p = pools();
  const uint64_t key = pool_key(pool);
  int dev = PoolDevices::kUnknown;
  if (!p.get(key, &dev)) {
    const int found = find_pool_device(pool);
    dev = found >= 0 ? found : PoolDevices::kUnknown;
    p.set_if_absent(key, dev);
    p.get(key, &dev);  // what another thread recorded meanwhile wins
    if (dev == PoolDevices::kUnknown) {
      log_event(
          "%s: pool %p was never seen created; its allocations count on their stream's "
          "device",
          fn, static_cast<void*>(pool));
    }
  }
  return dev == PoolDevices::kUnknown ? stream_device(stream) : dev;
}

unsigned long long ull(uint64_t v) {
  return static_cast<unsigned long long>(v);
}

void log_deny(const char* fn, int dev, uint64_t bytes, uint64_t used_seen) {
  log_event("deny %s dev %d bytes %llu used %llu cap %llu", fn, dev, ull(bytes), ull(used_seen),
            ull(acct().cap(dev)));
}

// Common shape of every device allocation: reserve, call the driver, keep or give back.
template <typename Call>
CUresult capped_alloc(const char* fn, int dev, uint64_t bytes, AllocKind kind, Call&& call) {
  CapAccounting& a = acct();
  uint64_t seen = 0;
  CapAccounting::Reservation r = a.reserve(dev, bytes, &seen);
  if (!r) {
    log_deny(fn, dev, bytes, seen);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  uint64_t key = 0;
  CUresult rc = call(&key);
  if (rc == CUDA_SUCCESS) a.track(kind, key, r);  // else r gives the bytes back
  return rc;
}

// Common shape of every free: take the entry out, call the driver, give the bytes back only once
// the driver agreed (so a concurrent allocation reusing the address cannot lose its entry).
template <typename Call>
CUresult capped_free(AllocKind kind, uint64_t key, Call&& call) {
  CapAccounting& a = acct();
  CapAccounting::Entry e;
  bool had = a.any_cap() && a.take(kind, key, &e);
  CUresult rc = call();
  if (had) {
    if (rc == CUDA_SUCCESS) {
      a.release(e.dev, e.bytes);
    } else {
      a.put_back(kind, key, e);
    }
  }
  return rc;
}

// Whether an allocation on dev should be counted at all.
bool counts(int dev) {
  return dev >= 0 && acct().has_cap(dev);
}

void* swap_for_wrapper(const char* symbol, void* p, int cuda_version, cuuint64_t flags);

}  // namespace

// -----------------------------------------------------------------------------------------------
// Exported wrappers. Each answers CUDA_ERROR_NOT_INITIALIZED if libcuda cannot be found.

#define REAL_OR_FAIL(id, type)   \
  resolve_real(true);            \
  auto real = real_fn<type>(id); \
  if (!real) return CUDA_ERROR_NOT_INITIALIZED

GREY_EXPORT CUresult cuMemAlloc_v2(CUdeviceptr* dptr, size_t bytesize) {
  REAL_OR_FAIL(kMemAlloc, CUresult(*)(CUdeviceptr*, size_t));
  int dev = caps_active() ? current_device() : -1;
  if (!counts(dev)) return real(dptr, bytesize);
  return capped_alloc("cuMemAlloc_v2", dev, bytesize, AllocKind::ptr, [&](uint64_t* key) {
    CUresult rc = real(dptr, bytesize);
    if (rc == CUDA_SUCCESS) *key = *dptr;
    return rc;
  });
}

GREY_EXPORT CUresult cuMemAllocManaged(CUdeviceptr* dptr, size_t bytesize, unsigned int flags) {
  REAL_OR_FAIL(kMemAllocManaged, CUresult(*)(CUdeviceptr*, size_t, unsigned int));
  int dev = caps_active() ? current_device() : -1;
  if (!counts(dev)) return real(dptr, bytesize, flags);
  return capped_alloc("cuMemAllocManaged", dev, bytesize, AllocKind::ptr, [&](uint64_t* key) {
    CUresult rc = real(dptr, bytesize, flags);
    if (rc == CUDA_SUCCESS) *key = *dptr;
    return rc;
  });
}

namespace {
CUresult alloc_async(FnId id, const char* name, CUdeviceptr* dptr, size_t bytesize,
                     CUstream stream) {
  REAL_OR_FAIL(id, CUresult(*)(CUdeviceptr*, size_t, CUstream));
  // From the current pool of the stream's device, which is always a pool on that device.
  int dev = caps_active() ? stream_device(stream) : -1;
  if (!counts(dev)) return real(dptr, bytesize, stream);
  return capped_alloc(name, dev, bytesize, AllocKind::ptr, [&](uint64_t* key) {
    CUresult rc = real(dptr, bytesize, stream);
    if (rc == CUDA_SUCCESS) *key = *dptr;
    return rc;
  });
}

CUresult alloc_from_pool(FnId id, const char* name, CUdeviceptr* dptr, size_t bytesize,
                         CUmemoryPool pool, CUstream stream) {
  REAL_OR_FAIL(id, CUresult(*)(CUdeviceptr*, size_t, CUmemoryPool, CUstream));
  int dev = caps_active() ? pool_device(name, pool, stream) : -1;
  if (!counts(dev)) return real(dptr, bytesize, pool, stream);
  return capped_alloc(name, dev, bytesize, AllocKind::ptr, [&](uint64_t* key) {
    CUresult rc = real(dptr, bytesize, pool, stream);
    if (rc == CUDA_SUCCESS) *key = *dptr;
    return rc;
  });
}

CUresult free_async(FnId id, CUdeviceptr dptr, CUstream stream) {
  REAL_OR_FAIL(id, CUresult(*)(CUdeviceptr, CUstream));
  return capped_free(AllocKind::ptr, dptr, [&] { return real(dptr, stream); });
}
}  // namespace

GREY_EXPORT CUresult cuMemAllocAsync(CUdeviceptr* dptr, size_t bytesize, CUstream stream) {
  return alloc_async(kMemAllocAsync, "cuMemAllocAsync", dptr, bytesize, stream);
}

GREY_EXPORT CUresult cuMemAllocAsync_ptsz(CUdeviceptr* dptr, size_t bytesize, CUstream stream) {
  return alloc_async(kMemAllocAsyncPtsz, "cuMemAllocAsync_ptsz", dptr, bytesize, stream);
}

GREY_EXPORT CUresult cuMemAllocFromPoolAsync(CUdeviceptr* dptr, size_t bytesize, CUmemoryPool pool,
                                             CUstream stream) {
  return alloc_from_pool(kMemAllocFromPoolAsync, "cuMemAllocFromPoolAsync", dptr, bytesize, pool,
                         stream);
}

GREY_EXPORT CUresult cuMemAllocFromPoolAsync_ptsz(CUdeviceptr* dptr, size_t bytesize,
                                                  CUmemoryPool pool, CUstream stream) {
  return alloc_from_pool(kMemAllocFromPoolAsyncPtsz, "cuMemAllocFromPoolAsync_ptsz", dptr, bytesize,
                         pool, stream);
}

GREY_EXPORT CUresult cuMemFreeAsync(CUdeviceptr dptr, CUstream stream) {
  return free_async(kMemFreeAsync, dptr, stream);
}

GREY_EXPORT CUresult cuMemFreeAsync_ptsz(CUdeviceptr dptr, CUstream stream) {
  return free_async(kMemFreeAsyncPtsz, dptr, stream);
}

GREY_EXPORT CUresult cuMemAllocPitch_v2(CUdeviceptr* dptr, size_t* pitch, size_t width_bytes,
                                        size_t height, unsigned int element_bytes) {
  REAL_OR_FAIL(kMemAllocPitch, CUresult(*)(CUdeviceptr*, size_t*, size_t, size_t, unsigned int));
  int dev = caps_active() ? current_device() : -1;
  if (!counts(dev)) return real(dptr, pitch, width_bytes, height, element_bytes);
  CapAccounting& a = acct();
  const uint64_t want = grey::cap::sat_mul(width_bytes, height);
  uint64_t seen = 0;
  CapAccounting::Reservation r = a.reserve(dev, want, &seen);
  if (!r) {
    log_deny("cuMemAllocPitch_v2", dev, want, seen);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  CUresult rc = real(dptr, pitch, width_bytes, height, element_bytes);
  if (rc != CUDA_SUCCESS) return rc;
  const uint64_t got = grey::cap::sat_mul(*pitch, height);
  if (!r.resize(got, &seen)) {
    // The padded rows break the cap: undo the allocation.
    auto real_free = real_fn<CUresult (*)(CUdeviceptr)>(kMemFree);
    if (real_free) real_free(*dptr);
    *dptr = 0;
    *pitch = 0;
    log_deny("cuMemAllocPitch_v2", dev, got, seen);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  a.track(AllocKind::ptr, *dptr, r);
  return rc;
}

GREY_EXPORT CUresult cuMemFree_v2(CUdeviceptr dptr) {
  REAL_OR_FAIL(kMemFree, CUresult(*)(CUdeviceptr));
  return capped_free(AllocKind::ptr, dptr, [&] { return real(dptr); });
}

GREY_EXPORT CUresult cuMemCreate(CUmemGenericAllocationHandle* handle, size_t size,
                                 const CUmemAllocationProp* prop, unsigned long long flags) {
  REAL_OR_FAIL(kMemCreate, CUresult(*)(CUmemGenericAllocationHandle*, size_t,
                                       const CUmemAllocationProp*, unsigned long long));
  int dev = (caps_active() && prop && prop->location.type == CU_MEM_LOCATION_TYPE_DEVICE)
                ? prop->location.id
                : -1;
  if (!counts(dev)) return real(handle, size, prop, flags);
  return capped_alloc("cuMemCreate", dev, size, AllocKind::handle, [&](uint64_t* key) {
    CUresult rc = real(handle, size, prop, flags);
    if (rc == CUDA_SUCCESS) *key = *handle;
    return rc;
  });
}

GREY_EXPORT CUresult cuMemRelease(CUmemGenericAllocationHandle handle) {
  REAL_OR_FAIL(kMemRelease, CUresult(*)(CUmemGenericAllocationHandle));
  return capped_free(AllocKind::handle, handle, [&] { return real(handle); });
}

GREY_EXPORT CUresult cuArrayCreate_v2(CUarray* array, const CUDA_ARRAY_DESCRIPTOR* desc) {
  REAL_OR_FAIL(kArrayCreate, CUresult(*)(CUarray*, const CUDA_ARRAY_DESCRIPTOR*));
  int dev = (caps_active() && desc) ? current_device() : -1;
  if (!counts(dev)) return real(array, desc);
  uint64_t bytes =
      grey::cap::array_bytes(desc->Width, desc->Height, 0, desc->Format, desc->NumChannels);
  return capped_alloc("cuArrayCreate_v2", dev, bytes, AllocKind::array, [&](uint64_t* key) {
    CUresult rc = real(array, desc);
    if (rc == CUDA_SUCCESS) *key = reinterpret_cast<uintptr_t>(*array);
    return rc;
  });
}

GREY_EXPORT CUresult cuArray3DCreate_v2(CUarray* array, const CUDA_ARRAY3D_DESCRIPTOR* desc) {
  REAL_OR_FAIL(kArray3DCreate, CUresult(*)(CUarray*, const CUDA_ARRAY3D_DESCRIPTOR*));
  int dev = (caps_active() && desc) ? current_device() : -1;
  if (!counts(dev)) return real(array, desc);
  uint64_t bytes = grey::cap::array_bytes(desc->Width, desc->Height, desc->Depth, desc->Format,
                                          desc->NumChannels);
  return capped_alloc("cuArray3DCreate_v2", dev, bytes, AllocKind::array, [&](uint64_t* key) {
    CUresult rc = real(array, desc);
    if (rc == CUDA_SUCCESS) *key = reinterpret_cast<uintptr_t>(*array);
    return rc;
  });
}

GREY_EXPORT CUresult cuMipmappedArrayCreate(CUmipmappedArray* array,
                                            const CUDA_ARRAY3D_DESCRIPTOR* desc,
                                            unsigned int levels) {
  REAL_OR_FAIL(kMipmappedArrayCreate,
               CUresult(*)(CUmipmappedArray*, const CUDA_ARRAY3D_DESCRIPTOR*, unsigned int));
  int dev = (caps_active() && desc) ? current_device() : -1;
  if (!counts(dev)) return real(array, desc, levels);
  uint64_t bytes = grey::cap::mipmapped_array_bytes(desc->Width, desc->Height, desc->Depth,
                                                    desc->Format, desc->NumChannels, levels);
  return capped_alloc("cuMipmappedArrayCreate", dev, bytes, AllocKind::mipmap, [&](uint64_t* key) {
    CUresult rc = real(array, desc, levels);
    if (rc == CUDA_SUCCESS) *key = reinterpret_cast<uintptr_t>(*array);
    return rc;
  });
}

GREY_EXPORT CUresult cuArrayDestroy(CUarray array) {
  REAL_OR_FAIL(kArrayDestroy, CUresult(*)(CUarray));
  return capped_free(AllocKind::array, reinterpret_cast<uintptr_t>(array),
                     [&] { return real(array); });
}

GREY_EXPORT CUresult cuMipmappedArrayDestroy(CUmipmappedArray array) {
  REAL_OR_FAIL(kMipmappedArrayDestroy, CUresult(*)(CUmipmappedArray));
  return capped_free(AllocKind::mipmap, reinterpret_cast<uintptr_t>(array),
                     [&] { return real(array); });
}

GREY_EXPORT CUresult cuMemGetInfo_v2(size_t* free_bytes, size_t* total_bytes) {
  REAL_OR_FAIL(kMemGetInfo, CUresult(*)(size_t*, size_t*));
  CUresult rc = real(free_bytes, total_bytes);
  if (rc != CUDA_SUCCESS || !caps_active()) return rc;
  int dev = current_device();
  if (!counts(dev)) return rc;
  uint64_t f = free_bytes ? *free_bytes : 0, t = total_bytes ? *total_bytes : 0;
  acct().mem_info(dev, &f, &t);
  if (free_bytes) *free_bytes = static_cast<size_t>(f);
  if (total_bytes) *total_bytes = static_cast<size_t>(t);
  return rc;
}

GREY_EXPORT CUresult cuDeviceTotalMem_v2(size_t* bytes, CUdevice dev) {
  REAL_OR_FAIL(kDeviceTotalMem, CUresult(*)(size_t*, CUdevice));
  CUresult rc = real(bytes, dev);
  if (rc == CUDA_SUCCESS && bytes && caps_active()) {
    *bytes = static_cast<size_t>(acct().total_mem(dev, *bytes));
  }
  return rc;
}

// Where the pools are: remembered only under a cap (nothing asks otherwise).
GREY_EXPORT CUresult cuMemPoolCreate(CUmemoryPool* pool, const CUmemPoolProps* props) {
  REAL_OR_FAIL(kMemPoolCreate, CUresult(*)(CUmemoryPool*, const CUmemPoolProps*));
  CUresult rc = real(pool, props);
  if (rc == CUDA_SUCCESS && pool && props && caps_active()) {
    pools().set(pool_key(*pool), props->location.type == CU_MEM_LOCATION_TYPE_DEVICE
                                     ? props->location.id
                                     : PoolDevices::kHost);
  }
  return rc;
}

GREY_EXPORT CUresult cuMemPoolDestroy(CUmemoryPool pool) {
  REAL_OR_FAIL(kMemPoolDestroy, CUresult(*)(CUmemoryPool));
  // Forgotten first: a pool created meanwhile under the same handle keeps its new entry.
  int dev = PoolDevices::kUnknown;
  const bool had = caps_active() && pools().forget(pool_key(pool), &dev);
  CUresult rc = real(pool);
  if (had && rc != CUDA_SUCCESS) pools().set_if_absent(pool_key(pool), dev);
  return rc;
}

GREY_EXPORT CUresult cuDeviceGetDefaultMemPool(CUmemoryPool* pool, CUdevice dev) {
  REAL_OR_FAIL(kDeviceGetDefaultMemPool, CUresult(*)(CUmemoryPool*, CUdevice));
  CUresult rc = real(pool, dev);
  if (rc == CUDA_SUCCESS && pool && caps_active()) pools().set(pool_key(*pool), dev);
  return rc;
}

GREY_EXPORT CUresult cuDeviceGetMemPool(CUmemoryPool* pool, CUdevice dev) {
  REAL_OR_FAIL(kDeviceGetMemPool, CUresult(*)(CUmemoryPool*, CUdevice));
  CUresult rc = real(pool, dev);
  if (rc == CUDA_SUCCESS && pool && caps_active()) pools().set(pool_key(*pool), dev);
  return rc;
}

// The driver accepts only a pool located on dev as its current pool.
GREY_EXPORT CUresult cuDeviceSetMemPool(CUdevice dev, CUmemoryPool pool) {
  REAL_OR_FAIL(kDeviceSetMemPool, CUresult(*)(CUdevice, CUmemoryPool));
  CUresult rc = real(dev, pool);
  if (rc == CUDA_SUCCESS && caps_active()) pools().set(pool_key(pool), dev);
  return rc;
}

GREY_EXPORT CUresult cuGetProcAddress(const char* symbol, void** pfn, int cuda_version,
                                      cuuint64_t flags) {
  REAL_OR_FAIL(kGetProcAddress, CUresult(*)(const char*, void**, int, cuuint64_t));
  CUresult rc = real(symbol, pfn, cuda_version, flags);
  if (rc == CUDA_SUCCESS && pfn && *pfn && symbol) {
    *pfn = swap_for_wrapper(symbol, *pfn, cuda_version, flags);
  }
  return rc;
}

GREY_EXPORT CUresult cuGetProcAddress_v2(const char* symbol, void** pfn, int cuda_version,
                                         cuuint64_t flags, CUdriverProcAddressQueryResult* status) {
  REAL_OR_FAIL(kGetProcAddressV2,
               CUresult(*)(const char*, void**, int, cuuint64_t, CUdriverProcAddressQueryResult*));
  CUresult rc = real(symbol, pfn, cuda_version, flags, status);
  if (rc == CUDA_SUCCESS && pfn && *pfn && symbol) {
    *pfn = swap_for_wrapper(symbol, *pfn, cuda_version, flags);
  }
  return rc;
}

GREY_EXPORT CUresult cuGetProcAddress_v2_ptsz(const char* symbol, void** pfn, int cuda_version,
                                              cuuint64_t flags,
                                              CUdriverProcAddressQueryResult* status) {
  REAL_OR_FAIL(kGetProcAddressV2Ptsz,
               CUresult(*)(const char*, void**, int, cuuint64_t, CUdriverProcAddressQueryResult*));
  CUresult rc = real(symbol, pfn, cuda_version, flags, status);
  if (rc == CUDA_SUCCESS && pfn && *pfn && symbol) {
    *pfn = swap_for_wrapper(symbol, *pfn, cuda_version, flags);
  }
  return rc;
}

#undef REAL_OR_FAIL

namespace {

Fn* table() {
  // clang-format off
  static Fn t[kFnCount] = {
      {"cuGetProcAddress", reinterpret_cast<void*>(&cuGetProcAddress), "cuGetProcAddress", 11030, false, {}},
      {"cuGetProcAddress_v2", reinterpret_cast<void*>(&cuGetProcAddress_v2), "cuGetProcAddress", 12000, false, {}},
      {"cuGetProcAddress_v2_ptsz", reinterpret_cast<void*>(&cuGetProcAddress_v2_ptsz), "cuGetProcAddress", 12000, true, {}},
      {"cuMemAlloc_v2", reinterpret_cast<void*>(&cuMemAlloc_v2), "cuMemAlloc", 3020, false, {}},
      {"cuMemAllocPitch_v2", reinterpret_cast<void*>(&cuMemAllocPitch_v2), "cuMemAllocPitch", 3020, false, {}},
      {"cuMemAllocManaged", reinterpret_cast<void*>(&cuMemAllocManaged), "cuMemAllocManaged", 6000, false, {}},
      {"cuMemAllocAsync", reinterpret_cast<void*>(&cuMemAllocAsync), "cuMemAllocAsync", 11020, false, {}},
      {"cuMemAllocAsync_ptsz", reinterpret_cast<void*>(&cuMemAllocAsync_ptsz), "cuMemAllocAsync", 11020, true, {}},
      {"cuMemAllocFromPoolAsync", reinterpret_cast<void*>(&cuMemAllocFromPoolAsync), "cuMemAllocFromPoolAsync", 11020, false, {}},
      {"cuMemAllocFromPoolAsync_ptsz", reinterpret_cast<void*>(&cuMemAllocFromPoolAsync_ptsz), "cuMemAllocFromPoolAsync", 11020, true, {}},
      {"cuMemCreate", reinterpret_cast<void*>(&cuMemCreate), "cuMemCreate", 10020, false, {}},
      {"cuMemRelease", reinterpret_cast<void*>(&cuMemRelease), "cuMemRelease", 10020, false, {}},
      {"cuMemFree_v2", reinterpret_cast<void*>(&cuMemFree_v2), "cuMemFree", 3020, false, {}},
      {"cuMemFreeAsync", reinterpret_cast<void*>(&cuMemFreeAsync), "cuMemFreeAsync", 11020, false, {}},
      {"cuMemFreeAsync_ptsz", reinterpret_cast<void*>(&cuMemFreeAsync_ptsz), "cuMemFreeAsync", 11020, true, {}},
      {"cuArrayCreate_v2", reinterpret_cast<void*>(&cuArrayCreate_v2), "cuArrayCreate", 3020, false, {}},
      {"cuArray3DCreate_v2", reinterpret_cast<void*>(&cuArray3DCreate_v2), "cuArray3DCreate", 3020, false, {}},
      {"cuMipmappedArrayCreate", reinterpret_cast<void*>(&cuMipmappedArrayCreate), "cuMipmappedArrayCreate", 5000, false, {}},
      {"cuArrayDestroy", reinterpret_cast<void*>(&cuArrayDestroy), "cuArrayDestroy", 2000, false, {}},
      {"cuMipmappedArrayDestroy", reinterpret_cast<void*>(&cuMipmappedArrayDestroy), "cuMipmappedArrayDestroy", 5000, false, {}},
      {"cuMemGetInfo_v2", reinterpret_cast<void*>(&cuMemGetInfo_v2), "cuMemGetInfo", 3020, false, {}},
      {"cuDeviceTotalMem_v2", reinterpret_cast<void*>(&cuDeviceTotalMem_v2), "cuDeviceTotalMem", 3020, false, {}},
      {"cuMemPoolCreate", reinterpret_cast<void*>(&cuMemPoolCreate), "cuMemPoolCreate", 11020, false, {}},
      {"cuMemPoolDestroy", reinterpret_cast<void*>(&cuMemPoolDestroy), "cuMemPoolDestroy", 11020, false, {}},
      {"cuDeviceGetDefaultMemPool", reinterpret_cast<void*>(&cuDeviceGetDefaultMemPool), "cuDeviceGetDefaultMemPool", 11020, false, {}},
      {"cuDeviceGetMemPool", reinterpret_cast<void*>(&cuDeviceGetMemPool), "cuDeviceGetMemPool", 11020, false, {}},
      {"cuDeviceSetMemPool", reinterpret_cast<void*>(&cuDeviceSetMemPool), "cuDeviceSetMemPool", 11020, false, {}},
      {"cuCtxGetDevice", nullptr, "cuCtxGetDevice", 2000, false, {}},
      {"cuCtxGetCurrent", nullptr, "cuCtxGetCurrent", 4000, false, {}},
      {"cuCtxPushCurrent_v2", nullptr, "cuCtxPushCurrent", 4000, false, {}},
      {"cuCtxPopCurrent_v2", nullptr, "cuCtxPopCurrent", 4000, false, {}},
      {"cuStreamGetCtx", nullptr, "cuStreamGetCtx", 9020, false, {}},
      {"cuStreamGetCtx_v2", nullptr, "cuStreamGetCtx", 12050, false, {}},
      {"cuDeviceGetCount", nullptr, "cuDeviceGetCount", 2000, false, {}},
  };
  // clang-format on
  return t;
}

// A pointer the real cuGetProcAddress handed out for `symbol`: the matching wrapper when it is
// one of the functions the shim replaces, else the pointer itself.
void* swap_for_wrapper(const char* symbol, void* p, int cuda_version, cuuint64_t flags) {
  Fn* t = table();
  // cuGetProcAddress itself is always wrapped, so that later look-ups stay covered.
  const bool active = caps_active();
  for (int i = 0; i < kFnCount; ++i) {
    if (!t[i].wrapper || (!active && i > kGetProcAddressV2Ptsz)) continue;
    if (t[i].real.load(std::memory_order_acquire) == p) return t[i].wrapper;
  }
  // Not an exported symbol: decide by name, version and the per-thread-stream flag: the newest
  // variant the requested version allows, among those of the requested stream flavour when the
  // function has one (cuMemAllocAsync_ptsz), else among the others (cuMemAlloc has none).
  const bool ptsz = (flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) != 0;
  auto pick = [&](bool want_ptsz) -> Fn* {
    Fn* best = nullptr;
    for (int i = 0; i < kFnCount; ++i) {
      if (!t[i].wrapper || (!active && i > kGetProcAddressV2Ptsz)) continue;
      if (t[i].ptsz != want_ptsz || strcmp(t[i].base, symbol) != 0) continue;
      if (cuda_version < t[i].min_version || !t[i].real.load(std::memory_order_acquire)) continue;
      if (!best || t[i].min_version > best->min_version) best = &t[i];
    }
    return best;
  };
  Fn* best = pick(ptsz);
  if (!best) best = pick(!ptsz);
  return best ? best->wrapper : p;
}

[[maybe_unused]] Fn* find_by_name(const char* name) {
  Fn* t = table();
  for (int i = 0; i < kFnCount; ++i) {
    if (t[i].wrapper && strcmp(t[i].name, name) == 0) return &t[i];
  }
  return nullptr;
}

// dlsym() is declared nonnull; callers may still pass NULL (glibc answers with an error).
[[maybe_unused]] bool maybe_cu_name(const char* s) {
  return s && s[0] == 'c' && s[1] == 'u';
}

// dlsym() of one of the replaced names.
[[maybe_unused]] __attribute__((noinline)) void* dlsym_cu(void* handle, const char* symbol, Fn* f) {
  dlsym_fn look = real_dlsym();
  void* p = look ? look(handle, symbol) : nullptr;
  if (!p) return nullptr;
  if (p == f->wrapper) {
    // Found in the shim itself (RTLD_DEFAULT and friends): only real if libcuda is there.
    if (!resolve_real(false)) return nullptr;
    p = f->real.load(std::memory_order_acquire);
    if (!p) return nullptr;
  } else {
    void* expected = nullptr;
    g_hint.compare_exchange_strong(expected, p);
  }
  if (!caps_active()) return p;  // no cap: the driver's own pointers, cuGetProcAddress too
  if (!resolve_real(false) || !f->real.load(std::memory_order_acquire)) return p;
  return f->wrapper;
}

}  // namespace

#ifndef GREY_CAP_NO_DLSYM
// dlsym: names the shim replaces get the wrapper; everything else goes straight to the real
// dlsym as a tail call, so that glibc still sees the caller's return address (RTLD_NEXT).
// Defined under another C++ name (the symbol is still "dlsym"): <dlfcn.h> declares dlsym
// noexcept, which clang cannot combine with musttail.
extern "C" void* grey_dlsym(void* handle, const char* symbol) __asm__("dlsym");
GREY_EXPORT
#if !defined(__clang__)
__attribute__((optimize("O2", "omit-frame-pointer", "optimize-sibling-calls")))
#endif
void* grey_dlsym(void* handle, const char* symbol) {
  Fn* f = maybe_cu_name(symbol) ? find_by_name(symbol) : nullptr;
  if (f) return dlsym_cu(handle, symbol, f);
  dlsym_fn real = real_dlsym();
  if (!real) return nullptr;
#if defined(__clang__)
  [[clang::musttail]] return real(handle, symbol);
#else
  return real(handle, symbol);
#endif
}
#endif  // GREY_CAP_NO_DLSYM
