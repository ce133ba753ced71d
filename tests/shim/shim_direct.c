/* Calls the driver through plain symbols: linked against libcuda.so.1 (the fake in the tests),
 * so that an LD_PRELOADed libgrey_cap.so interposes on the cu* names. Commands: shim_cmds.h. */
#include "shim_cmds.h"

/* Declared here: the fake driver's own exports, as a real libcuda declares them in cuda.h. */
CUresult cuInit(unsigned int flags);
CUresult cuCtxCreate_v2(CUcontext* ctx, unsigned int flags, CUdevice dev);
CUresult cuMemAlloc_v2(CUdeviceptr* dptr, size_t bytes);
CUresult cuMemAllocManaged(CUdeviceptr* dptr, size_t bytes, unsigned int flags);
CUresult cuMemAllocAsync(CUdeviceptr* dptr, size_t bytes, CUstream s);
CUresult cuMemAllocAsync_ptsz(CUdeviceptr* dptr, size_t bytes, CUstream s);
CUresult cuMemAllocFromPoolAsync(CUdeviceptr* dptr, size_t bytes, CUmemoryPool pool, CUstream s);
CUresult cuMemAllocFromPoolAsync_ptsz(CUdeviceptr* dptr, size_t bytes, CUmemoryPool pool,
                                      CUstream s);
CUresult cuCtxGetDevice(CUdevice* dev);
CUresult cuStreamCreate(CUstream* s, unsigned int flags);
CUresult cuMemPoolCreate(CUmemoryPool* pool, const CUmemPoolProps* props);
CUresult cuMemPoolDestroy(CUmemoryPool pool);
CUresult cuDeviceGetDefaultMemPool(CUmemoryPool* pool, CUdevice dev);
CUresult cuDeviceGetMemPool(CUmemoryPool* pool, CUdevice dev);
CUresult cuDeviceSetMemPool(CUdevice dev, CUmemoryPool pool);
CUmemoryPool fake_cuda_unseen_pool(int dev, int created);
CUresult cuMemAllocPitch_v2(CUdeviceptr* dptr, size_t* pitch, size_t w, size_t h, unsigned int e);
CUresult cuMemFree_v2(CUdeviceptr dptr);
CUresult cuMemFreeAsync(CUdeviceptr dptr, CUstream s);
CUresult cuMemCreate(CUmemGenericAllocationHandle* h, size_t size, const CUmemAllocationProp* prop,
                     unsigned long long flags);
CUresult cuMemRelease(CUmemGenericAllocationHandle h);
CUresult cuArrayCreate_v2(CUarray* a, const CUDA_ARRAY_DESCRIPTOR* d);
CUresult cuArray3DCreate_v2(CUarray* a, const CUDA_ARRAY3D_DESCRIPTOR* d);
CUresult cuMipmappedArrayCreate(CUmipmappedArray* a, const CUDA_ARRAY3D_DESCRIPTOR* d,
                                unsigned int levels);
CUresult cuArrayDestroy(CUarray a);
CUresult cuMipmappedArrayDestroy(CUmipmappedArray a);
CUresult cuMemGetInfo_v2(size_t* free_bytes, size_t* total_bytes);
CUresult cuDeviceTotalMem_v2(size_t* bytes, CUdevice dev);
unsigned long long fake_cuda_used_bytes(int dev);
int fake_cuda_rtld_next_probe(void);

int main(int argc, char** argv) {
  shim_api api = {cuInit,
                  cuCtxCreate_v2,
                  cuMemAlloc_v2,
                  cuMemAllocManaged,
                  cuMemAllocAsync,
                  cuMemAllocAsync_ptsz,
                  cuMemAllocFromPoolAsync,
                  cuMemAllocFromPoolAsync_ptsz,
                  cuCtxGetDevice,
                  cuStreamCreate,
                  cuMemPoolCreate,
                  cuMemPoolDestroy,
                  cuDeviceGetDefaultMemPool,
                  cuDeviceGetMemPool,
                  cuDeviceSetMemPool,
                  fake_cuda_unseen_pool,
                  cuMemAllocPitch_v2,
                  cuMemFree_v2,
                  cuMemFreeAsync,
                  cuMemCreate,
                  cuMemRelease,
                  cuArrayCreate_v2,
                  cuArray3DCreate_v2,
                  cuMipmappedArrayCreate,
                  cuArrayDestroy,
                  cuMipmappedArrayDestroy,
                  cuMemGetInfo_v2,
                  cuDeviceTotalMem_v2,
                  fake_cuda_used_bytes,
                  fake_cuda_rtld_next_probe};
  return shim_run(&api, argc, argv, 1);
}
