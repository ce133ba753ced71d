/* Reaches the driver the way the CUDA runtime (>= 11.3) does: dlopen("libcuda.so.1"), dlsym of
 * cuGetProcAddress_v2 (or cuGetProcAddress with "v1" as first argument), then every entry point
 * by base name. Not linked against libcuda. Before the commands (shim_cmds.h) it prints where a
 * memory function and a non-memory function came from:
 *   lib cuMemAlloc=<file name> cuDeviceGetAttribute=<file name> cuGetProcAddress=<file name>
 * "ptszcheck" as the first command prints how cuGetProcAddress fetched with the per-thread
 * default stream flag behaves (it must be a v2 resolver that writes *status).
 * It also runs against a real libcuda.so.1 (scripts/gpu-check.sh does), without the fake's
 * test hooks. */
#define _GNU_SOURCE
#include <dlfcn.h>

#include "shim_cmds.h"

typedef CUresult (*proc_v1_fn)(const char*, void**, int, cuuint64_t);
typedef CUresult (*proc_v2_fn)(const char*, void**, int, cuuint64_t,
                               CUdriverProcAddressQueryResult*);

static proc_v1_fn g_v1;
static proc_v2_fn g_v2;
static void* g_lib;

static void* get(const char* name, cuuint64_t flags) {
  void* p = NULL;
  CUresult rc;
  if (g_v2) {
    CUdriverProcAddressQueryResult st = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
    rc = g_v2(name, &p, 12000, flags, &st);
    if (rc == CUDA_SUCCESS && st != CU_GET_PROC_ADDRESS_SUCCESS) p = NULL;
  } else {
    rc = g_v1(name, &p, 11080, flags);
  }
  if (rc != CUDA_SUCCESS || !p) {
    printf("cuGetProcAddress(%s) failed rc=%d\n", name, rc);
    exit(1);
  }
  return p;
}

static const char* lib_of(void* p) {
  Dl_info info;
  if (!dladdr(p, &info) || !info.dli_fname) return "?";
  const char* slash = strrchr(info.dli_fname, '/');
  return slash ? slash + 1 : info.dli_fname;
}

int main(int argc, char** argv) {
  int first = 1;
  g_lib = dlopen("libcuda.so.1", RTLD_NOW);
  if (!g_lib) {
    printf("dlopen: %s\n", dlerror());
    return 1;
  }
  if (argc > 1 && !strcmp(argv[1], "v1")) {
    g_v1 = (proc_v1_fn)dlsym(g_lib, "cuGetProcAddress");
    first = 2;
  } else {
    /* SHIM_PROCADDR_SYMBOL names another v2 resolver to start from (cuGetProcAddress_v2_ptsz). */
    const char* name = getenv("SHIM_PROCADDR_SYMBOL");
    g_v2 = (proc_v2_fn)dlsym(g_lib, name && *name ? name : "cuGetProcAddress_v2");
  }
  if (!g_v1 && !g_v2) {
    printf("no cuGetProcAddress\n");
    return 1;
  }
  /* The runtime also re-fetches cuGetProcAddress through itself. */
  void* gpa = get("cuGetProcAddress", 0);
  if (g_v2) {
    g_v2 = (proc_v2_fn)gpa;
  } else {
    g_v1 = (proc_v1_fn)gpa;
  }
  shim_api api;
  memset(&api, 0, sizeof api);
  api.init = (CUresult(*)(unsigned int))get("cuInit", 0);
  api.ctx_create = (CUresult(*)(CUcontext*, unsigned int, CUdevice))get("cuCtxCreate", 0);
  api.mem_alloc = (CUresult(*)(CUdeviceptr*, size_t))get("cuMemAlloc", 0);
  api.mem_alloc_managed =
      (CUresult(*)(CUdeviceptr*, size_t, unsigned int))get("cuMemAllocManaged", 0);
  api.mem_alloc_async = (CUresult(*)(CUdeviceptr*, size_t, CUstream))get("cuMemAllocAsync", 0);
  api.mem_alloc_async_ptsz = (CUresult(*)(CUdeviceptr*, size_t, CUstream))get(
      "cuMemAllocAsync", CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM);
  api.mem_alloc_pool =
      (CUresult(*)(CUdeviceptr*, size_t, CUmemoryPool, CUstream))get("cuMemAllocFromPoolAsync", 0);
  api.mem_alloc_pool_ptsz = (CUresult(*)(CUdeviceptr*, size_t, CUmemoryPool, CUstream))get(
      "cuMemAllocFromPoolAsync", CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM);
  api.ctx_get_device = (CUresult(*)(CUdevice*))get("cuCtxGetDevice", 0);
  api.stream_create = (CUresult(*)(CUstream*, unsigned int))get("cuStreamCreate", 0);
  api.pool_create = (CUresult(*)(CUmemoryPool*, const CUmemPoolProps*))get("cuMemPoolCreate", 0);
  api.pool_destroy = (CUresult(*)(CUmemoryPool))get("cuMemPoolDestroy", 0);
  api.default_pool = (CUresult(*)(CUmemoryPool*, CUdevice))get("cuDeviceGetDefaultMemPool", 0);
  api.get_pool = (CUresult(*)(CUmemoryPool*, CUdevice))get("cuDeviceGetMemPool", 0);
  api.set_pool = (CUresult(*)(CUdevice, CUmemoryPool))get("cuDeviceSetMemPool", 0);
  api.mem_alloc_pitch =
      (CUresult(*)(CUdeviceptr*, size_t*, size_t, size_t, unsigned int))get("cuMemAllocPitch", 0);
  api.mem_free = (CUresult(*)(CUdeviceptr))get("cuMemFree", 0);
  api.mem_free_async = (CUresult(*)(CUdeviceptr, CUstream))get("cuMemFreeAsync", 0);
  api.mem_create = (CUresult(*)(CUmemGenericAllocationHandle*, size_t, const CUmemAllocationProp*,
                                unsigned long long))get("cuMemCreate", 0);
  api.mem_release = (CUresult(*)(CUmemGenericAllocationHandle))get("cuMemRelease", 0);
  api.array_create = (CUresult(*)(CUarray*, const CUDA_ARRAY_DESCRIPTOR*))get("cuArrayCreate", 0);
  api.array3d_create =
      (CUresult(*)(CUarray*, const CUDA_ARRAY3D_DESCRIPTOR*))get("cuArray3DCreate", 0);
  api.mipmap_create = (CUresult(*)(CUmipmappedArray*, const CUDA_ARRAY3D_DESCRIPTOR*,
                                   unsigned int))get("cuMipmappedArrayCreate", 0);
  api.array_destroy = (CUresult(*)(CUarray))get("cuArrayDestroy", 0);
  api.mipmap_destroy = (CUresult(*)(CUmipmappedArray))get("cuMipmappedArrayDestroy", 0);
  api.mem_get_info = (CUresult(*)(size_t*, size_t*))get("cuMemGetInfo", 0);
  api.device_total_mem = (CUresult(*)(size_t*, CUdevice))get("cuDeviceTotalMem", 0);
  /* Test hooks of the fake: plain dlsym on the handle. */
  api.used_bytes = (unsigned long long (*)(int))dlsym(g_lib, "fake_cuda_used_bytes");
  api.rtld_next_probe = (int (*)(void))dlsym(g_lib, "fake_cuda_rtld_next_probe");
  api.unseen_pool = (CUmemoryPool(*)(int, int))dlsym(g_lib, "fake_cuda_unseen_pool");
  /* (absent from a real driver: the commands that need them say so) */
  printf("lib cuMemAlloc=%s cuMemAllocAsyncPtsz=%s cuDeviceGetAttribute=%s cuGetProcAddress=%s\n",
         lib_of((void*)api.mem_alloc), lib_of((void*)api.mem_alloc_async_ptsz),
         lib_of(get("cuDeviceGetAttribute", 0)), lib_of(gpa));
  if (g_v2 && first < argc && !strcmp(argv[first], "ptszcheck")) {
    ++first;
    /* The resolver asked for with the per-thread-stream flag must still be a v2 resolver (five
     * arguments: it writes *status), whatever pointer the driver hands out for it. */
    proc_v2_fn gpa_ptsz =
        (proc_v2_fn)get("cuGetProcAddress", CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM);
    void* q = NULL;
    CUdriverProcAddressQueryResult st = (CUdriverProcAddressQueryResult)99;
    CUresult r = gpa_ptsz("cuMemAlloc", &q, 12000, 0, &st);
    printf("ptsz-resolver lib=%s rc=%d status=%d cuMemAlloc=%s\n", lib_of((void*)gpa_ptsz), r,
           (int)st, q ? lib_of(q) : "null");
  }
  return shim_run(&api, argc, argv, first);
}
