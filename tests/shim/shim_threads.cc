// Many threads allocate and free at once (linked against libcuda.so.1, the fake in the tests;
// run under LD_PRELOAD=libgrey_cap.so with a single-value GREY_VRAM_CAP_MB). Thread t, by t % 3:
// cuMemAlloc_v2/cuMemFree_v2 on device 0; cuMemAllocAsync/cuMemFreeAsync on a stream of device
// 1's context while device 0 is current; cuMemAllocFromPoolAsync from a pool of its own on device
// 0 (created and destroyed by the thread) on CU_STREAM_LEGACY. Checks, from the fake driver's own
// books, that the bytes really allocated on devices 0 and 1 never exceeded the cap, that the cap
// was actually contended (some allocations denied with CUDA_ERROR_OUT_OF_MEMORY, some granted),
// that each device was held to its own cap (at some moment both together held more than one cap;
// this needs a few threads of each kind: the tests run 16) and that after every free the shim
// again reports the whole cap free. Prints one line:
//   threads ok=<granted> denied=<denied> other=<errors> peak=<bytes> peak1=<bytes>
//   peak_both=<bytes> cap=<bytes> free_after=<bytes> used_after=<bytes> used1_after=<bytes>
// and exits 0 when all of that holds, else 1.
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <thread>
#include <vector>

#include "cuda_min.h"

extern "C" {
CUresult cuInit(unsigned int flags);
CUresult cuMemAlloc_v2(CUdeviceptr* dptr, size_t bytes);
CUresult cuMemFree_v2(CUdeviceptr dptr);
CUresult cuMemGetInfo_v2(size_t* free_bytes, size_t* total_bytes);
CUresult cuCtxCreate_v2(CUcontext* ctx, unsigned int flags, CUdevice dev);
CUresult cuCtxSetCurrent(CUcontext ctx);
CUresult cuStreamCreate(CUstream* s, unsigned int flags);
CUresult cuMemAllocAsync(CUdeviceptr* dptr, size_t bytes, CUstream s);
CUresult cuMemAllocFromPoolAsync(CUdeviceptr* dptr, size_t bytes, CUmemoryPool pool, CUstream s);
CUresult cuMemFreeAsync(CUdeviceptr dptr, CUstream s);
CUresult cuMemPoolCreate(CUmemoryPool* pool, const CUmemPoolProps* props);
CUresult cuMemPoolDestroy(CUmemoryPool pool);
unsigned long long fake_cuda_used_bytes(int dev);
unsigned long long fake_cuda_peak_bytes(int dev);
unsigned long long fake_cuda_peak_total_bytes(void);
}

int main(int argc, char** argv) {
  const char* capenv = getenv("GREY_VRAM_CAP_MB");
  if (!capenv) {
    std::printf("GREY_VRAM_CAP_MB must be one value\n");
    return 1;
  }
  const unsigned long long cap = std::strtoull(capenv, nullptr, 10) << 20;
  const int nthreads = argc > 1 ? std::atoi(argv[1]) : 16;
  const int iters = argc > 2 ? std::atoi(argv[2]) : 2000;
  if (cuInit(0) != CUDA_SUCCESS) return 1;

  // A stream of device 1's context; device 0's context is then made current for everyone.
  CUcontext ctx0 = nullptr, ctx1 = nullptr;
  CUstream stream1 = nullptr;
  if (cuCtxCreate_v2(&ctx1, 0, 1) != CUDA_SUCCESS || cuStreamCreate(&stream1, 0) != CUDA_SUCCESS ||
      cuCtxCreate_v2(&ctx0, 0, 0) != CUDA_SUCCESS) {
    return 1;
  }

  std::atomic<long> ok{0}, denied{0}, other{0};
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < nthreads; ++t) {
    threads.emplace_back([&, t] {
      if (cuCtxSetCurrent(ctx0) != CUDA_SUCCESS) other++;
      const int kind = t % 3;
      CUmemoryPool pool = nullptr;
      if (kind == 2) {
        CUmemPoolProps props{};
        props.allocType = 1;
        props.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
        props.location.id = 0;
        if (cuMemPoolCreate(&pool, &props) != CUDA_SUCCESS) other++;
      }
      auto release = [&](CUdeviceptr p) {
        CUresult rc =
            kind == 0 ? cuMemFree_v2(p) : cuMemFreeAsync(p, kind == 1 ? stream1 : nullptr);
        if (rc != CUDA_SUCCESS) other++;
      };
      ready++;
      while (ready.load() < nthreads) std::this_thread::yield();
      std::mt19937 rng(static_cast<unsigned>(t) * 7919u + 1u);
      std::vector<CUdeviceptr> live;
      for (int i = 0; i < iters; ++i) {
        if (!live.empty() && (live.size() >= 8 || rng() % 2 == 0)) {
          size_t k = rng() % live.size();
          release(live[k]);
          live.erase(live.begin() + static_cast<long>(k));
          continue;
        }
        CUdeviceptr p = 0;
        size_t bytes = (32u + rng() % 225u) << 20;  // 32..256 MiB: one thread alone can hit the cap
        CUresult rc = kind == 0   ? cuMemAlloc_v2(&p, bytes)
                      : kind == 1 ? cuMemAllocAsync(&p, bytes, stream1)
                                  : cuMemAllocFromPoolAsync(&p, bytes, pool, CU_STREAM_LEGACY);
        if (rc == CUDA_SUCCESS) {
          ok++;
          live.push_back(p);
        } else if (rc == CUDA_ERROR_OUT_OF_MEMORY) {
          denied++;
        } else {
          other++;
        }
      }
      for (CUdeviceptr p : live) release(p);
      if (pool && cuMemPoolDestroy(pool) != CUDA_SUCCESS) other++;
    });
  }
  for (auto& th : threads) th.join();

  size_t free_after = 0, total = 0, free1_after = 0, total1 = 0;
  if (cuMemGetInfo_v2(&free_after, &total) != CUDA_SUCCESS) return 1;
  if (cuCtxSetCurrent(ctx1) != CUDA_SUCCESS || cuMemGetInfo_v2(&free1_after, &total1) != 0) {
    return 1;
  }
  const unsigned long long peak = fake_cuda_peak_bytes(0), peak1 = fake_cuda_peak_bytes(1);
  const unsigned long long peak_both = fake_cuda_peak_total_bytes();
  const unsigned long long used_after = fake_cuda_used_bytes(0);
  const unsigned long long used1_after = fake_cuda_used_bytes(1);
  std::printf(
      "threads ok=%ld denied=%ld other=%ld peak=%llu peak1=%llu peak_both=%llu cap=%llu "
      "free_after=%zu used_after=%llu used1_after=%llu\n",
      ok.load(), denied.load(), other.load(), peak, peak1, peak_both, cap, free_after, used_after,
      used1_after);
  // Device 1's stream allocations have a cap of their own: at some moment the two devices held
  // more than one cap together (counted all on device 0, as the shim once did, they could not).
  const bool good = peak <= cap && peak1 <= cap && peak_both > cap && ok > 0 && denied > 0 &&
                    other == 0 && used_after == 0 && used1_after == 0 && free_after == cap &&
                    total == cap && free1_after == cap && total1 == cap;
  return good ? 0 : 1;
}
