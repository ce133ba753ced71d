// libFuzzer target for the DRM fdinfo parser and the busy-percentage arithmetic on its output.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "telemetry/telemetry.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* d, size_t n) {
  std::string_view text(reinterpret_cast<const char*>(d), n);
  auto a = grey::parse_drm_fdinfo(text);
  (void)grey::parse_fdinfo_size(text);
  if (a) {
    // The second half against the first, as two successive readings.
    auto b = grey::parse_drm_fdinfo(text.substr(n / 2));
    if (b) (void)grey::drm_busy_pct(*a, *b, n);
  }
  return 0;
}
