// libFuzzer target for the GREY_VRAM_CAP_MB parser of the VRAM cap shim (shim/cap_accounting.cc):
// any text either parses into caps that are all positive whole MiB, or is refused with no cap.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "cap_accounting.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  grey::cap::CapSpec spec;
  const bool ok = grey::cap::parse_cap_spec(text, &spec);
  bool any = false;
  for (uint64_t b : spec.bytes) {
    if (b == grey::cap::kNoCap) continue;
    any = true;
    if (!ok || b == 0 || (b & ((1ull << 20) - 1)) != 0) abort();
  }
  if (any != spec.any) abort();
  // The caps must behave: reserve to the cap, never past it.
  grey::cap::CapAccounting acct;
  acct.set_caps(spec);
  for (int dev = 0; dev < 2; ++dev) {
    const uint64_t cap = acct.cap(dev);
    if (cap == grey::cap::kNoCap) continue;
    auto r = acct.reserve(dev, cap);
    if (!r || acct.used(dev) != cap || acct.reserve(dev, 1)) abort();
  }
  return 0;
}
