// Per-process VRAM cap bookkeeping for libgrey_cap.so (the LD_PRELOAD shim in grey_cap.cc), kept
// free of any CUDA or dl* calls so it can be unit tested, TSan tested and fuzzed in-process.
//
// GREY_VRAM_CAP_MB takes either one value for every device ("20000") or a comma-separated list
// of device=value pairs ("0=20000,1=30000"; devices left out have no cap). Values are MiB,
// positive decimal integers; device ordinals are the process's own (after CUDA_VISIBLE_DEVICES),
// 0..kMaxDevices-1. Anything else is invalid and means "no cap at all".
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string_view>
#include <unordered_map>

namespace grey::cap {

inline constexpr int kMaxDevices = 64;
inline constexpr uint64_t kNoCap = UINT64_MAX;

struct CapSpec {
  std::array<uint64_t, kMaxDevices> bytes;  // kNoCap where the device has no cap
  bool any = false;
  CapSpec() { bytes.fill(kNoCap); }
};

// Parses a GREY_VRAM_CAP_MB value into *out. Empty or blank text is valid and sets no cap.
// Returns false for invalid text and then leaves *out without any cap.
bool parse_cap_spec(std::string_view text, CapSpec* out) noexcept;

// Bytes of a CUDA array: width * max(height,1) * max(depth,1) * channels * element size, by the
// CUarray_format (block-compressed and NV12 formats by their bytes per pixel; unknown formats are
// taken as 4 bytes per channel). Saturates at UINT64_MAX instead of wrapping.
uint64_t array_bytes(uint64_t width, uint64_t height, uint64_t depth, int format,
                     unsigned channels) noexcept;
// The same summed over the levels of a mipmapped array (each level halves every dimension).
uint64_t mipmapped_array_bytes(uint64_t width, uint64_t height, uint64_t depth, int format,
                               unsigned channels, unsigned levels) noexcept;

// Saturating helpers.
uint64_t sat_mul(uint64_t a, uint64_t b) noexcept;
uint64_t sat_add(uint64_t a, uint64_t b) noexcept;

enum class AllocKind : uint8_t { ptr, handle, array, mipmap };

class CapAccounting {
 public:
  struct Entry {
    int dev = -1;
    uint64_t bytes = 0;
  };

  // Bytes held against a device's cap until commit() (then owned by a tracked allocation) or
  // destruction (given back). A reservation on a device without a cap counts nothing.
  class Reservation {
   public:
    Reservation() = default;
    Reservation(Reservation&& o) noexcept { *this = static_cast<Reservation&&>(o); }
    Reservation& operator=(Reservation&& o) noexcept;
    Reservation(const Reservation&) = delete;
    Reservation& operator=(const Reservation&) = delete;
    ~Reservation() { cancel(); }

    explicit operator bool() const { return granted_; }
    bool counted() const { return owner_ != nullptr; }
    int dev() const { return dev_; }
    uint64_t bytes() const { return bytes_; }
    // Changes the reserved amount; false (and nothing changed) when growing breaks the cap.
    bool resize(uint64_t new_bytes, uint64_t* used_seen = nullptr) noexcept;
    // The bytes now belong to an allocation; the destructor no longer gives them back.
    void commit() noexcept { owner_ = nullptr; }
    void cancel() noexcept;

   private:
    friend class CapAccounting;
    CapAccounting* owner_ = nullptr;
    int dev_ = -1;
    uint64_t bytes_ = 0;
    bool granted_ = false;
  };

  CapAccounting() = default;
  CapAccounting(const CapAccounting&) = delete;
  CapAccounting& operator=(const CapAccounting&) = delete;

  // Installs the caps. Call before any reserve(); not synchronised with it.
  void set_caps(const CapSpec& spec) noexcept;
  bool any_cap() const noexcept { return any_; }
  bool has_cap(int dev) const noexcept { return cap(dev) != kNoCap; }
  uint64_t cap(int dev) const noexcept;
  uint64_t used(int dev) const noexcept;

  // Reserves bytes on dev: granted when used + bytes <= cap (atomically; concurrent reservations
  // never push the total past the cap). On refusal *used_seen tells the usage that was seen.
  Reservation reserve(int dev, uint64_t bytes, uint64_t* used_seen = nullptr) noexcept;
  // Gives bytes back to dev's counter (after a tracked allocation was freed).
  void release(int dev, uint64_t bytes) noexcept;

  // Records a successful allocation under (kind, key) and commits the reservation. An entry
  // already under that key (a free the shim never saw) is dropped and its bytes given back.
  void track(AllocKind kind, uint64_t key, Reservation& r) noexcept;
  // Removes the entry for (kind, key) into *out; its bytes stay counted until release().
  bool take(AllocKind kind, uint64_t key, Entry* out) noexcept;
  // Puts an entry removed by take() back (the driver refused the free).
  void put_back(AllocKind kind, uint64_t key, const Entry& e) noexcept;
  size_t tracked() const noexcept;

  // cuMemGetInfo: total = min(total, cap), free = min(free, cap - used). No cap: unchanged.
  void mem_info(int dev, uint64_t* free_bytes, uint64_t* total_bytes) const noexcept;
  // cuDeviceTotalMem: min(real_total, cap).
  uint64_t total_mem(int dev, uint64_t real_total) const noexcept;

 private:
  struct Key {
    uint64_t value;
    AllocKind kind;
    bool operator==(const Key& o) const { return value == o.value && kind == o.kind; }
  };
  struct KeyHash {
    size_t operator()(const Key& k) const noexcept {
      return static_cast<size_t>((k.value ^ (static_cast<uint64_t>(k.kind) << 61)) *
                                 0x9E3779B97F4A7C15ull);
    }
  };

  bool try_add(int dev, uint64_t bytes, uint64_t* used_seen) noexcept;

  std::array<uint64_t, kMaxDevices> caps_ = CapSpec().bytes;
  bool any_ = false;
  std::array<std::atomic<uint64_t>, kMaxDevices> used_{};
  mutable std::mutex mu_;
  std::unordered_map<Key, Entry, KeyHash> map_;
};

// Which device each stream-ordered memory pool allocates on (the shim learns it from
// cuMemPoolCreate, cuDeviceGetDefaultMemPool, cuDeviceGetMemPool and cuDeviceSetMemPool, and
// forgets it at cuMemPoolDestroy). Keys are CUmemoryPool handles. Thread-safe.
class PoolDevices {
 public:
  // The pool is on this device ordinal.
  static constexpr int kHost = -1;     // located in host memory: its allocations count nowhere
  static constexpr int kUnknown = -2;  // never seen where it came from (already logged once)

  PoolDevices() = default;
  PoolDevices(const PoolDevices&) = delete;
  PoolDevices& operator=(const PoolDevices&) = delete;

  // Remembers (or corrects) where a pool is. A null pool is ignored.
  void set(uint64_t pool, int dev) noexcept;
  // Like set(), but keeps what is already known (an answer from the driver beats a guess).
  void set_if_absent(uint64_t pool, int dev) noexcept;
  // The pool's device, kHost or kUnknown; false when the pool was never recorded.
  bool get(uint64_t pool, int* dev) const noexcept;
  // Removes the pool; *dev (may be null) gets what was recorded. False when absent.
  bool forget(uint64_t pool, int* dev) noexcept;
  size_t size() const noexcept;

 private:
  mutable std::mutex mu_;
  std::unordered_map<uint64_t, int> map_;
};

}  // namespace grey::cap
