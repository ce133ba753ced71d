/* A tiny command interpreter shared by the shim test programs: each argument list entry is a
 * command, each command prints one line "<cmd> key=value ..." so that tests/cap_shim_test.cc can
 * check exact numbers. The driver functions come from a table the program fills (directly linked
 * symbols or cuGetProcAddress). Sizes on the command line are MiB, printed values bytes.
 *   dev D              cuCtxCreate_v2 on device D (becomes current)
 *   alloc M | managed M | async M | asyncpt M | pool M     cuMemAlloc_v2 / ...Managed /
 *                      ...Async / ...Async_ptsz (NULL stream) / ...FromPoolAsync (the current
 *                      device's default pool, NULL stream); prints rc and slot
 *   stream             cuStreamCreate in the current context; prints rc and id
 *   asyncon M S | asyncpton M S     cuMemAllocAsync[_ptsz] on stream S: a stream id, or null,
 *                      legacy (CU_STREAM_LEGACY), perthread (CU_STREAM_PER_THREAD)
 *   mkpool D | mkhostpool | defpool D | getpool D | unseenpool D C      cuMemPoolCreate on
 *                      device D / in host memory, cuDeviceGetDefaultMemPool, cuDeviceGetMemPool,
 *                      fake_cuda_unseen_pool(D, C); each prints rc and a pool id
 *   setpool D P | rmpool P          cuDeviceSetMemPool / cuMemPoolDestroy
 *   frompool M P S | frompoolpt M P S     cuMemAllocFromPoolAsync[_ptsz] from pool P on stream S
 *   pitch W H          cuMemAllocPitch_v2 (W bytes wide, H rows, 4-byte elements)
 *   create D M | hostcreate M     cuMemCreate on device D / on the host
 *   array W H | array3d W H Z | mipmap W H L     float, 1 channel
 *   free S             frees slot S with the matching function
 *   info | total D | used D | probe               cuMemGetInfo_v2 / cuDeviceTotalMem_v2 /
 *                      fake_cuda_used_bytes / fake_cuda_rtld_next_probe (only with the
 *                      fake driver; "unavailable" with a real one)
 *   bench N            N cuMemAlloc_v2 + cuMemFree_v2 pairs of 1..64 MiB, ns per pair
 * Exit status: 0, or 1 when a command is malformed or a driver call that must work fails. */
#ifndef GREY_SHIM_CMDS_H
#define GREY_SHIM_CMDS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cuda_min.h"

typedef struct {
  CUresult (*init)(unsigned int);
  CUresult (*ctx_create)(CUcontext*, unsigned int, CUdevice);
  CUresult (*mem_alloc)(CUdeviceptr*, size_t);
  CUresult (*mem_alloc_managed)(CUdeviceptr*, size_t, unsigned int);
  CUresult (*mem_alloc_async)(CUdeviceptr*, size_t, CUstream);
  CUresult (*mem_alloc_async_ptsz)(CUdeviceptr*, size_t, CUstream);
  CUresult (*mem_alloc_pool)(CUdeviceptr*, size_t, CUmemoryPool, CUstream);
  CUresult (*mem_alloc_pool_ptsz)(CUdeviceptr*, size_t, CUmemoryPool, CUstream);
  CUresult (*ctx_get_device)(CUdevice*);
  CUresult (*stream_create)(CUstream*, unsigned int);
  CUresult (*pool_create)(CUmemoryPool*, const CUmemPoolProps*);
  CUresult (*pool_destroy)(CUmemoryPool);
  CUresult (*default_pool)(CUmemoryPool*, CUdevice);
  CUresult (*get_pool)(CUmemoryPool*, CUdevice);
  CUresult (*set_pool)(CUdevice, CUmemoryPool);
  CUmemoryPool (*unseen_pool)(int, int);
  CUresult (*mem_alloc_pitch)(CUdeviceptr*, size_t*, size_t, size_t, unsigned int);
  CUresult (*mem_free)(CUdeviceptr);
  CUresult (*mem_free_async)(CUdeviceptr, CUstream);
  CUresult (*mem_create)(CUmemGenericAllocationHandle*, size_t, const CUmemAllocationProp*,
                         unsigned long long);
  CUresult (*mem_release)(CUmemGenericAllocationHandle);
  CUresult (*array_create)(CUarray*, const CUDA_ARRAY_DESCRIPTOR*);
  CUresult (*array3d_create)(CUarray*, const CUDA_ARRAY3D_DESCRIPTOR*);
  CUresult (*mipmap_create)(CUmipmappedArray*, const CUDA_ARRAY3D_DESCRIPTOR*, unsigned int);
  CUresult (*array_destroy)(CUarray);
  CUresult (*mipmap_destroy)(CUmipmappedArray);
  CUresult (*mem_get_info)(size_t*, size_t*);
  CUresult (*device_total_mem)(size_t*, CUdevice);
  unsigned long long (*used_bytes)(int);
  int (*rtld_next_probe)(void);
} shim_api;

enum { kSlotPtr, kSlotAsync, kSlotHandle, kSlotArray, kSlotMipmap };
typedef struct {
  int kind;
  unsigned long long key;
} shim_slot;

static unsigned long long shim_mib(const char* s) {
  return strtoull(s, NULL, 10) << 20;
}

static int shim_need(int i, int n, int argc) {
  return i + n < argc;
}

/* Stream and pool ids handed out by the commands. */
static CUstream shim_streams[64];
static int shim_nstreams;
static CUmemoryPool shim_pools[64];
static int shim_npools;

/* A stream argument; 0 (and a message) when it is not one. */
static int shim_stream_arg(const char* a, CUstream* out) {
  if (!strcmp(a, "null")) {
    *out = NULL;
  } else if (!strcmp(a, "legacy")) {
    *out = CU_STREAM_LEGACY;
  } else if (!strcmp(a, "perthread")) {
    *out = CU_STREAM_PER_THREAD;
  } else {
    int k = atoi(a);
    if (k < 0 || k >= shim_nstreams) {
      printf("bad stream %s\n", a);
      return 0;
    }
    *out = shim_streams[k];
  }
  return 1;
}

static int shim_pool_arg(const char* a, CUmemoryPool* out) {
  int k = atoi(a);
  if (k < 0 || k >= shim_npools) {
    printf("bad pool %s\n", a);
    return 0;
  }
  *out = shim_pools[k];
  return 1;
}

static void shim_pool_line(const char* cmd, CUresult rc, CUmemoryPool pool) {
  if (rc == CUDA_SUCCESS && shim_npools < 64) {
    shim_pools[shim_npools] = pool;
    printf("%s rc=%d id=%d\n", cmd, rc, shim_npools++);
  } else {
    printf("%s rc=%d id=-1\n", cmd, rc);
  }
}

static void shim_slot_line(const char* cmd, CUresult rc, shim_slot* slots, int* nslots, int kind,
                           unsigned long long key) {
  if (rc == CUDA_SUCCESS) {
    slots[*nslots].kind = kind;
    slots[*nslots].key = key;
    printf("%s rc=%d slot=%d\n", cmd, rc, *nslots);
    ++*nslots;
  } else {
    printf("%s rc=%d slot=-1\n", cmd, rc);
  }
}

/* Runs argv[first..]; returns the exit status. */
static int shim_run(const shim_api* api, int argc, char** argv, int first) {
  shim_slot slots[256];
  int nslots = 0;
  if (api->init(0) != CUDA_SUCCESS) {
    printf("cuInit failed\n");
    return 1;
  }
  for (int i = first; i < argc; ++i) {
    const char* c = argv[i];
    CUdeviceptr p = 0;
    CUresult rc = 0;
    if (nslots >= 256) return 1;
    if (!strcmp(c, "dev") && shim_need(i, 1, argc)) {
      CUcontext ctx;
      rc = api->ctx_create(&ctx, 0, atoi(argv[++i]));
      printf("dev rc=%d\n", rc);
      if (rc) return 1;
    } else if (!strcmp(c, "alloc") && shim_need(i, 1, argc)) {
      rc = api->mem_alloc(&p, shim_mib(argv[++i]));
      shim_slot_line(c, rc, slots, &nslots, kSlotPtr, p);
    } else if (!strcmp(c, "managed") && shim_need(i, 1, argc)) {
      rc = api->mem_alloc_managed(&p, shim_mib(argv[++i]), 1);
      shim_slot_line(c, rc, slots, &nslots, kSlotPtr, p);
    } else if (!strcmp(c, "async") && shim_need(i, 1, argc)) {
      rc = api->mem_alloc_async(&p, shim_mib(argv[++i]), NULL);
      shim_slot_line(c, rc, slots, &nslots, kSlotAsync, p);
    } else if (!strcmp(c, "asyncpt") && shim_need(i, 1, argc)) {
      rc = api->mem_alloc_async_ptsz(&p, shim_mib(argv[++i]), NULL);
      shim_slot_line(c, rc, slots, &nslots, kSlotAsync, p);
    } else if (!strcmp(c, "pool") && shim_need(i, 1, argc)) {
      CUdevice d = 0;
      CUmemoryPool pool = NULL;
      if (api->ctx_get_device(&d) || api->default_pool(&pool, d)) return 1;
      rc = api->mem_alloc_pool(&p, shim_mib(argv[++i]), pool, NULL);
      shim_slot_line(c, rc, slots, &nslots, kSlotAsync, p);
    } else if (!strcmp(c, "stream")) {
      CUstream s = NULL;
      rc = shim_nstreams < 64 ? api->stream_create(&s, 0) : 1;
      if (rc == CUDA_SUCCESS) shim_streams[shim_nstreams++] = s;
      printf("stream rc=%d id=%d\n", rc, rc ? -1 : shim_nstreams - 1);
    } else if ((!strcmp(c, "asyncon") || !strcmp(c, "asyncpton")) && shim_need(i, 2, argc)) {
      CUstream s = NULL;
      unsigned long long bytes = shim_mib(argv[i + 1]);
      if (!shim_stream_arg(argv[i + 2], &s)) return 1;
      i += 2;
      rc = (!strcmp(c, "asyncon") ? api->mem_alloc_async : api->mem_alloc_async_ptsz)(&p, bytes, s);
      shim_slot_line(c, rc, slots, &nslots, kSlotAsync, p);
    } else if ((!strcmp(c, "frompool") || !strcmp(c, "frompoolpt")) && shim_need(i, 3, argc)) {
      CUstream s = NULL;
      CUmemoryPool pool = NULL;
      unsigned long long bytes = shim_mib(argv[i + 1]);
      if (!shim_pool_arg(argv[i + 2], &pool) || !shim_stream_arg(argv[i + 3], &s)) return 1;
      i += 3;
      rc = (!strcmp(c, "frompool") ? api->mem_alloc_pool : api->mem_alloc_pool_ptsz)(&p, bytes,
                                                                                     pool, s);
      shim_slot_line(c, rc, slots, &nslots, kSlotAsync, p);
    } else if ((!strcmp(c, "mkpool") && shim_need(i, 1, argc)) || !strcmp(c, "mkhostpool")) {
      CUmemPoolProps props;
      memset(&props, 0, sizeof props);
      props.allocType = 1; /* CU_MEM_ALLOCATION_TYPE_PINNED */
      if (!strcmp(c, "mkpool")) {
        props.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
        props.location.id = atoi(argv[++i]);
      } else {
        props.location.type = CU_MEM_LOCATION_TYPE_HOST;
      }
      CUmemoryPool pool = NULL;
      rc = api->pool_create(&pool, &props);
      shim_pool_line(c, rc, pool);
    } else if ((!strcmp(c, "defpool") || !strcmp(c, "getpool")) && shim_need(i, 1, argc)) {
      CUmemoryPool pool = NULL;
      rc = (!strcmp(c, "defpool") ? api->default_pool : api->get_pool)(&pool, atoi(argv[++i]));
      shim_pool_line(c, rc, pool);
    } else if (!strcmp(c, "unseenpool") && shim_need(i, 2, argc)) {
      if (!api->unseen_pool) {
        printf("unseenpool unavailable (not the fake driver)\n");
        return 1;
      }
      CUmemoryPool pool = api->unseen_pool(atoi(argv[i + 1]), atoi(argv[i + 2]));
      i += 2;
      shim_pool_line(c, pool ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE, pool);
    } else if (!strcmp(c, "setpool") && shim_need(i, 2, argc)) {
      CUmemoryPool pool = NULL;
      int d = atoi(argv[i + 1]);
      if (!shim_pool_arg(argv[i + 2], &pool)) return 1;
      i += 2;
      rc = api->set_pool(d, pool);
      printf("setpool rc=%d\n", rc);
    } else if (!strcmp(c, "rmpool") && shim_need(i, 1, argc)) {
      CUmemoryPool pool = NULL;
      if (!shim_pool_arg(argv[++i], &pool)) return 1;
      rc = api->pool_destroy(pool);
      printf("rmpool rc=%d\n", rc);
    } else if (!strcmp(c, "pitch") && shim_need(i, 2, argc)) {
      size_t pitch = 0;
      size_t w = strtoull(argv[i + 1], NULL, 10), h = strtoull(argv[i + 2], NULL, 10);
      i += 2;
      rc = api->mem_alloc_pitch(&p, &pitch, w, h, 4);
      shim_slot_line(c, rc, slots, &nslots, kSlotPtr, p);
      printf("pitch bytes=%zu\n", pitch);
    } else if ((!strcmp(c, "create") && shim_need(i, 2, argc)) ||
               (!strcmp(c, "hostcreate") && shim_need(i, 1, argc))) {
      CUmemAllocationProp prop;
      memset(&prop, 0, sizeof prop);
      prop.type = 1; /* CU_MEM_ALLOCATION_TYPE_PINNED */
      if (!strcmp(c, "create")) {
        prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
        prop.location.id = atoi(argv[++i]);
      } else {
        prop.location.type = 2; /* CU_MEM_LOCATION_TYPE_HOST */
      }
      CUmemGenericAllocationHandle h = 0;
      rc = api->mem_create(&h, shim_mib(argv[++i]), &prop, 0);
      shim_slot_line(c, rc, slots, &nslots, kSlotHandle, h);
    } else if (!strcmp(c, "array") && shim_need(i, 2, argc)) {
      CUDA_ARRAY_DESCRIPTOR d = {strtoull(argv[i + 1], NULL, 10), strtoull(argv[i + 2], NULL, 10),
                                 0x20, 1};
      i += 2;
      CUarray a = NULL;
      rc = api->array_create(&a, &d);
      shim_slot_line(c, rc, slots, &nslots, kSlotArray, (unsigned long long)(size_t)a);
    } else if (!strcmp(c, "array3d") && shim_need(i, 3, argc)) {
      CUDA_ARRAY3D_DESCRIPTOR d = {strtoull(argv[i + 1], NULL, 10),
                                   strtoull(argv[i + 2], NULL, 10),
                                   strtoull(argv[i + 3], NULL, 10),
                                   0x20,
                                   1,
                                   0};
      i += 3;
      CUarray a = NULL;
      rc = api->array3d_create(&a, &d);
      shim_slot_line(c, rc, slots, &nslots, kSlotArray, (unsigned long long)(size_t)a);
    } else if (!strcmp(c, "mipmap") && shim_need(i, 3, argc)) {
      CUDA_ARRAY3D_DESCRIPTOR d = {
          strtoull(argv[i + 1], NULL, 10), strtoull(argv[i + 2], NULL, 10), 0, 0x20, 1, 0};
      unsigned levels = (unsigned)strtoul(argv[i + 3], NULL, 10);
      i += 3;
      CUmipmappedArray a = NULL;
      rc = api->mipmap_create(&a, &d, levels);
      shim_slot_line(c, rc, slots, &nslots, kSlotMipmap, (unsigned long long)(size_t)a);
    } else if (!strcmp(c, "free") && shim_need(i, 1, argc)) {
      int s = atoi(argv[++i]);
      if (s < 0 || s >= nslots) return 1;
      switch (slots[s].kind) {
        case kSlotPtr:
          rc = api->mem_free(slots[s].key);
          break;
        case kSlotAsync:
          rc = api->mem_free_async(slots[s].key, NULL);
          break;
        case kSlotHandle:
          rc = api->mem_release(slots[s].key);
          break;
        case kSlotArray:
          rc = api->array_destroy((CUarray)(size_t)slots[s].key);
          break;
        default:
          rc = api->mipmap_destroy((CUmipmappedArray)(size_t)slots[s].key);
          break;
      }
      printf("free rc=%d\n", rc);
    } else if (!strcmp(c, "info")) {
      size_t f = 0, t = 0;
      rc = api->mem_get_info(&f, &t);
      printf("info rc=%d free=%zu total=%zu\n", rc, f, t);
    } else if (!strcmp(c, "total") && shim_need(i, 1, argc)) {
      size_t b = 0;
      rc = api->device_total_mem(&b, atoi(argv[++i]));
      printf("total rc=%d bytes=%zu\n", rc, b);
    } else if (!strcmp(c, "used") && shim_need(i, 1, argc)) {
      int d = atoi(argv[++i]);
      if (api->used_bytes)
        printf("used bytes=%llu\n", api->used_bytes(d));
      else
        printf("used unavailable (not the fake driver)\n");
    } else if (!strcmp(c, "probe")) {
      if (api->rtld_next_probe)
        printf("probe ok=%d\n", api->rtld_next_probe());
      else
        printf("probe unavailable (not the fake driver)\n");
    } else if (!strcmp(c, "bench") && shim_need(i, 1, argc)) {
      /* N allocate+free pairs of 1..64 MiB (cycling), timed: the cost of one pair in ns. */
      long n = atol(argv[++i]);
      struct timespec t0, t1;
      long failed = 0;
      clock_gettime(CLOCK_MONOTONIC, &t0);
      for (long k = 0; k < n; ++k) {
        CUdeviceptr q = 0;
        if (api->mem_alloc(&q, ((size_t)(k % 64) + 1) << 20) != CUDA_SUCCESS) {
          ++failed;
          continue;
        }
        api->mem_free(q);
      }
      clock_gettime(CLOCK_MONOTONIC, &t1);
      double ns = (double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec);
      printf("bench pairs=%ld failed=%ld ns_per_pair=%.1f\n", n, failed, n > 0 ? ns / n : 0.0);
    } else {
      printf("bad command %s\n", c);
      return 1;
    }
  }
  return 0;
}

#endif
