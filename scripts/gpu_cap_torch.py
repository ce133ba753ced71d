#!/usr/bin/env python3
"""PyTorch under the VRAM cap shim (issue 6), run by scripts/gpu-check.sh under
`grey-gpu-opt run --enforce-cap` (a 20 GiB cap) and plainly, so the numbers compare.
`gpu_cap_torch.py main` measures the first three lines, `gpu_cap_torch.py alloc` the last (the
caller sets PYTORCH_NO_CUDA_MEMORY_CACHING=1 for it).
Prints one `key: value` line per measurement:
  mem_get_info  free/total as PyTorch sees them
  alloc_25gib   "oom" or "ok" (under a 20 GiB cap it must be "oom")
  matmul_tflops a fixed 8192^2 bf16 matmul loop, best of 3 runs of 50
  alloc_us      allocate+free of 10k tensors of varying sizes with the caching allocator off
                (PYTORCH_NO_CUDA_MEMORY_CACHING=1 is set by the caller), microseconds per pair
"""
import os
import sys
import time

try:
    import torch
except Exception as e:  # noqa: BLE001
    print(f"torch: unavailable ({e})")
    sys.exit(3)

if not torch.cuda.is_available():
    print("torch: CUDA not available")
    sys.exit(3)

print(f"torch: {torch.__version__} cuda {torch.version.cuda} device {torch.cuda.get_device_name(0)}")
print(f"caching_disabled: {os.environ.get('PYTORCH_NO_CUDA_MEMORY_CACHING', '0')}")
print(f"cap_env: {os.environ.get('GREY_VRAM_CAP_MB', '-')}")
what = sys.argv[1] if len(sys.argv) > 1 else "main"
if what == "alloc":
    sizes = [(i % 64 + 1) << 20 for i in range(10000)]
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for s in sizes:
        t = torch.empty(s, dtype=torch.uint8, device="cuda")
        del t
    torch.cuda.synchronize()
    print(f"alloc_us: {(time.perf_counter() - t0) / len(sizes) * 1e6:.2f}")
    sys.exit(0)

free, total = torch.cuda.mem_get_info()
print(f"mem_get_info: free={free} total={total} total_mib={total >> 20}")

try:
    x = torch.empty(25 << 30, dtype=torch.uint8, device="cuda")
    torch.cuda.synchronize()
    print("alloc_25gib: ok")
    del x
except torch.cuda.OutOfMemoryError as e:
    print(f"alloc_25gib: oom ({str(e).splitlines()[0][:160]})")
except RuntimeError as e:
    print(f"alloc_25gib: error ({str(e).splitlines()[0][:160]})")
torch.cuda.empty_cache()

n = 8192
a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
for _ in range(5):
    a @ b
torch.cuda.synchronize()
best = 0.0
for _ in range(3):
    t0 = time.perf_counter()
    for _ in range(50):
        a @ b
    torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    best = max(best, 50 * 2 * n**3 / dt / 1e12)
print(f"matmul_tflops: {best:.2f}")
del a, b

