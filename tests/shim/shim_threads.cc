// Many threads allocate and free at once through cuMemAlloc_v2/cuMemFree_v2 (linked against
// libcuda.so.1, the fake in the tests; run under LD_PRELOAD=libgrey_cap.so with a single-value
// GREY_VRAM_CAP_MB). Checks, from the fake driver's own books, that the bytes really allocated
// on device 0 never exceeded the cap, that the cap was actually contended (some allocations
// denied with CUDA_ERROR_OUT_OF_MEMORY, some granted) and that after every free the shim again
// reports the whole cap free. Prints one line:
//   threads ok=<granted> denied=<denied> peak=<bytes> cap=<bytes> free_after=<bytes>
//   used_after=<bytes>
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
unsigned long long fake_cuda_used_bytes(int dev);
unsigned long long fake_cuda_peak_bytes(int dev);
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

  std::atomic<long> ok{0}, denied{0}, other{0};
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < nthreads; ++t) {
    threads.emplace_back([&, t] {
      ready++;
      while (ready.load() < nthreads) std::this_thread::yield();
      std::mt19937 rng(static_cast<unsigned>(t) * 7919u + 1u);
      std::vector<CUdeviceptr> live;
      for (int i = 0; i < iters; ++i) {
        if (!live.empty() && (live.size() >= 8 || rng() % 2 == 0)) {
          size_t k = rng() % live.size();
          if (cuMemFree_v2(live[k]) != CUDA_SUCCESS) other++;
          live.erase(live.begin() + static_cast<long>(k));
          continue;
        }
        CUdeviceptr p = 0;
        size_t bytes = (32u + rng() % 225u) << 20;  // 32..256 MiB: one thread alone can hit the cap
        CUresult rc = cuMemAlloc_v2(&p, bytes);
        if (rc == CUDA_SUCCESS) {
          ok++;
          live.push_back(p);
        } else if (rc == CUDA_ERROR_OUT_OF_MEMORY) {
          denied++;
        } else {
          other++;
        }
      }
      for (CUdeviceptr p : live) {
        if (cuMemFree_v2(p) != CUDA_SUCCESS) other++;
      }
    });
  }
  for (auto& th : threads) th.join();

  size_t free_after = 0, total = 0;
  if (cuMemGetInfo_v2(&free_after, &total) != CUDA_SUCCESS) return 1;
  const unsigned long long peak = fake_cuda_peak_bytes(0);
  const unsigned long long used_after = fake_cuda_used_bytes(0);
  std::printf(
      "threads ok=%ld denied=%ld other=%ld peak=%llu cap=%llu free_after=%zu used_after=%llu\n",
      ok.load(), denied.load(), other.load(), peak, cap, free_after, used_after);
  const bool good = peak <= cap && ok > 0 && denied > 0 && other == 0 && used_after == 0 &&
                    free_after == cap && total == cap;
  return good ? 0 : 1;
}
