#include "cap_accounting.h"

namespace grey::cap {
namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// Decimal digits only, no sign; false on overflow past max.
bool parse_uint(std::string_view s, uint64_t max, uint64_t* out) {
  if (s.empty() || s.size() > 20) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (max - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = v;
  return true;
}

// A cap in MiB: positive and small enough that the byte count fits 64 bits.
bool parse_mib(std::string_view s, uint64_t* bytes) {
  uint64_t mib = 0;
  if (!parse_uint(trim(s), UINT64_MAX >> 20, &mib) || mib == 0) return false;
  *bytes = mib << 20;
  return true;
}

bool parse_into(std::string_view text, CapSpec* spec) {
  text = trim(text);
  if (text.empty()) return true;
  if (text.find('=') == std::string_view::npos) {
    uint64_t bytes = 0;
    if (!parse_mib(text, &bytes)) return false;
    spec->bytes.fill(bytes);
    spec->any = true;
    return true;
  }
  while (true) {
    size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    size_t eq = item.find('=');
    if (eq == std::string_view::npos) return false;
    uint64_t dev = 0, bytes = 0;
    if (!parse_uint(trim(item.substr(0, eq)), kMaxDevices - 1, &dev)) return false;
    if (!parse_mib(item.substr(eq + 1), &bytes)) return false;
    if (spec->bytes[dev] != kNoCap) return false;  // the same device twice
    spec->bytes[dev] = bytes;
    spec->any = true;
    if (comma == std::string_view::npos) return true;
    text = text.substr(comma + 1);
  }
}

// Bytes per pixel of one channel (num/den), or per pixel for formats whose channel count is
// implied (block-compressed, NV12: per_pixel = true).
struct FormatSize {
  uint64_t num, den;
  bool per_pixel;
};

FormatSize format_size(int format) {
  switch (format) {
    case 0x01:  // UNSIGNED_INT8
    case 0x08:  // SIGNED_INT8
    case 0xc0:  // UNORM_INT8X1
    case 0xc1:  // UNORM_INT8X2
    case 0xc2:  // UNORM_INT8X4
    case 0xc6:  // SNORM_INT8X1
    case 0xc7:  // SNORM_INT8X2
    case 0xc8:  // SNORM_INT8X4
      return {1, 1, false};
    case 0x02:  // UNSIGNED_INT16
    case 0x09:  // SIGNED_INT16
    case 0x10:  // HALF
    case 0xc3:  // UNORM_INT16X1
    case 0xc4:  // UNORM_INT16X2
    case 0xc5:  // UNORM_INT16X4
    case 0xc9:  // SNORM_INT16X1
    case 0xca:  // SNORM_INT16X2
    case 0xcb:  // SNORM_INT16X4
      return {2, 1, false};
    case 0x03:  // UNSIGNED_INT32
    case 0x0a:  // SIGNED_INT32
    case 0x20:  // FLOAT
      return {4, 1, false};
    case 0x91:              // BC1_UNORM
    case 0x92:              // BC1_UNORM_SRGB
    case 0x97:              // BC4_UNORM
    case 0x98:              // BC4_SNORM
      return {1, 2, true};  // 8 bytes per 4x4 block
    case 0x93:              // BC2_UNORM
    case 0x94:              // BC2_UNORM_SRGB
    case 0x95:              // BC3_UNORM
    case 0x96:              // BC3_UNORM_SRGB
    case 0x99:              // BC5_UNORM
    case 0x9a:              // BC5_SNORM
    case 0x9b:              // BC6H_UF16
    case 0x9c:              // BC6H_SF16
    case 0x9d:              // BC7_UNORM
    case 0x9e:              // BC7_UNORM_SRGB
      return {1, 1, true};  // 16 bytes per 4x4 block
    case 0xb0:              // NV12: 8-bit luma plus half-resolution chroma
      return {3, 2, true};
    default:
      return {4, 1, false};
  }
}

}  // namespace

uint64_t sat_mul(uint64_t a, uint64_t b) noexcept {
  uint64_t r = 0;
  return __builtin_mul_overflow(a, b, &r) ? UINT64_MAX : r;
}

uint64_t sat_add(uint64_t a, uint64_t b) noexcept {
  uint64_t r = 0;
  return __builtin_add_overflow(a, b, &r) ? UINT64_MAX : r;
}

bool parse_cap_spec(std::string_view text, CapSpec* out) noexcept {
  CapSpec spec;
  if (!parse_into(text, &spec)) {
    *out = CapSpec();
    return false;
  }
  *out = spec;
  return true;
}

uint64_t array_bytes(uint64_t width, uint64_t height, uint64_t depth, int format,
                     unsigned channels) noexcept {
  FormatSize f = format_size(format);
  uint64_t pixels = sat_mul(sat_mul(width, height ? height : 1), depth ? depth : 1);
  uint64_t units = f.per_pixel ? pixels : sat_mul(pixels, channels ? channels : 1);
  uint64_t scaled = sat_mul(units, f.num);
  if (scaled == UINT64_MAX) return UINT64_MAX;
  return (scaled + f.den - 1) / f.den;
}

uint64_t mipmapped_array_bytes(uint64_t width, uint64_t height, uint64_t depth, int format,
                               unsigned channels, unsigned levels) noexcept {
  uint64_t total = 0;
  if (levels == 0) levels = 1;
  for (unsigned l = 0; l < levels && l < 64; ++l) {
    total = sat_add(total, array_bytes(width, height, depth, format, channels));
    if (width <= 1 && height <= 1 && depth <= 1) break;
    width = width > 1 ? width / 2 : 1;
    height = height > 1 ? height / 2 : height;
    depth = depth > 1 ? depth / 2 : depth;
  }
  return total;
}

CapAccounting::Reservation& CapAccounting::Reservation::operator=(Reservation&& o) noexcept {
  if (this != &o) {
    cancel();
    owner_ = o.owner_;
    dev_ = o.dev_;
    bytes_ = o.bytes_;
    granted_ = o.granted_;
    o.owner_ = nullptr;
    o.granted_ = false;
    o.bytes_ = 0;
  }
  return *this;
}

bool CapAccounting::Reservation::resize(uint64_t new_bytes, uint64_t* used_seen) noexcept {
  if (!owner_) {
    bytes_ = new_bytes;
    return granted_;
  }
  if (new_bytes > bytes_) {
    if (!owner_->try_add(dev_, new_bytes - bytes_, used_seen)) return false;
  } else if (new_bytes < bytes_) {
    owner_->release(dev_, bytes_ - new_bytes);
  }
  bytes_ = new_bytes;
  return true;
}

void CapAccounting::Reservation::cancel() noexcept {
  if (owner_) owner_->release(dev_, bytes_);
  owner_ = nullptr;
  granted_ = false;
  bytes_ = 0;
}

void CapAccounting::set_caps(const CapSpec& spec) noexcept {
  caps_ = spec.bytes;
  any_ = false;
  for (uint64_t c : caps_) any_ = any_ || c != kNoCap;
}

uint64_t CapAccounting::cap(int dev) const noexcept {
  return (dev >= 0 && dev < kMaxDevices) ? caps_[static_cast<size_t>(dev)] : kNoCap;
}

uint64_t CapAccounting::used(int dev) const noexcept {
  return (dev >= 0 && dev < kMaxDevices)
             ? used_[static_cast<size_t>(dev)].load(std::memory_order_relaxed)
             : 0;
}

bool CapAccounting::try_add(int dev, uint64_t bytes, uint64_t* used_seen) noexcept {
  const uint64_t limit = cap(dev);
  std::atomic<uint64_t>& u = used_[static_cast<size_t>(dev)];
  uint64_t cur = u.load(std::memory_order_relaxed);
  do {
    if (cur > limit || bytes > limit - cur) {
      if (used_seen) *used_seen = cur;
      return false;
    }
  } while (!u.compare_exchange_weak(cur, cur + bytes, std::memory_order_acq_rel,
                                    std::memory_order_relaxed));
  if (used_seen) *used_seen = cur + bytes;
  return true;
}

CapAccounting::Reservation CapAccounting::reserve(int dev, uint64_t bytes,
                                                  uint64_t* used_seen) noexcept {
  Reservation r;
  r.dev_ = dev;
  r.bytes_ = bytes;
  if (!has_cap(dev)) {
    r.granted_ = true;  // nothing to count against
    return r;
  }
  if (!try_add(dev, bytes, used_seen)) return r;
  r.owner_ = this;
  r.granted_ = true;
  return r;
}

void CapAccounting::release(int dev, uint64_t bytes) noexcept {
  if (dev < 0 || dev >= kMaxDevices || bytes == 0) return;
  std::atomic<uint64_t>& u = used_[static_cast<size_t>(dev)];
  uint64_t cur = u.load(std::memory_order_relaxed);
  // Never wraps below zero, even if a caller gives back more than it holds.
  while (!u.compare_exchange_weak(cur, cur > bytes ? cur - bytes : 0, std::memory_order_acq_rel,
                                  std::memory_order_relaxed)) {
  }
}

void CapAccounting::track(AllocKind kind, uint64_t key, Reservation& r) noexcept {
  if (!r.counted()) {
    r.commit();
    return;
  }
  Entry e{r.dev(), r.bytes()};
  Entry stale;
  bool had_stale = false;
  try {
    std::lock_guard<std::mutex> lock(mu_);
    auto [it, inserted] = map_.try_emplace(Key{key, kind}, e);
    if (!inserted) {
      stale = it->second;
      had_stale = true;
      it->second = e;
    }
  } catch (...) {
    // Out of memory for the map: keep the bytes counted (the cap stays safe, they leak).
  }
  r.commit();
  if (had_stale) release(stale.dev, stale.bytes);
}

bool CapAccounting::take(AllocKind kind, uint64_t key, Entry* out) noexcept {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = map_.find(Key{key, kind});
  if (it == map_.end()) return false;
  *out = it->second;
  map_.erase(it);
  return true;
}

void CapAccounting::put_back(AllocKind kind, uint64_t key, const Entry& e) noexcept {
  try {
    std::lock_guard<std::mutex> lock(mu_);
    map_.try_emplace(Key{key, kind}, e);
  } catch (...) {
  }
}

size_t CapAccounting::tracked() const noexcept {
  std::lock_guard<std::mutex> lock(mu_);
  return map_.size();
}

void CapAccounting::mem_info(int dev, uint64_t* free_bytes, uint64_t* total_bytes) const noexcept {
  const uint64_t limit = cap(dev);
  if (limit == kNoCap) return;
  const uint64_t u = used(dev);
  const uint64_t room = u < limit ? limit - u : 0;
  if (total_bytes && *total_bytes > limit) *total_bytes = limit;
  if (free_bytes && *free_bytes > room) *free_bytes = room;
}

uint64_t CapAccounting::total_mem(int dev, uint64_t real_total) const noexcept {
  const uint64_t limit = cap(dev);
  return real_total < limit ? real_total : limit;
}

void PoolDevices::set(uint64_t pool, int dev) noexcept {
  if (pool == 0) return;
  try {
    std::lock_guard<std::mutex> lock(mu_);
    map_[pool] = dev;
  } catch (...) {
    // Out of memory for the map: the pool stays unknown (its allocations fall back).
  }
}

void PoolDevices::set_if_absent(uint64_t pool, int dev) noexcept {
  if (pool == 0) return;
  try {
    std::lock_guard<std::mutex> lock(mu_);
    map_.try_emplace(pool, dev);
  } catch (...) {
  }
}

bool PoolDevices::get(uint64_t pool, int* dev) const noexcept {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = map_.find(pool);
  if (it == map_.end()) return false;
  *dev = it->second;
  return true;
}

bool PoolDevices::forget(uint64_t pool, int* dev) noexcept {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = map_.find(pool);
  if (it == map_.end()) return false;
  if (dev) *dev = it->second;
  map_.erase(it);
  return true;
}

size_t PoolDevices::size() const noexcept {
  std::lock_guard<std::mutex> lock(mu_);
  return map_.size();
}

}  // namespace grey::cap
