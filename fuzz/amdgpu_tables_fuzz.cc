// Fuzzes libdrm amdgpu.ids parsing and lookups, and the pp_od_clk_voltage OD_SCLK reader.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "sources/amdgpu_ids.h"
#include "sources/sysfs_source.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* d, size_t n) {
  std::string_view in(reinterpret_cast<const char*>(d), n);
  grey::AmdgpuIds ids = grey::parse_amdgpu_ids(in);
  for (const auto& [key, name] : ids.names) {
    if (name.empty()) __builtin_trap();  // an entry always has a name
    grey::amdgpu_ids_lookup(ids, key.first, key.second);
    grey::amdgpu_ids_lookup(ids, key.first, std::nullopt);
  }
  grey::amdgpu_ids_lookup(ids, 0x73df, 0xc1);
  if (auto mhz = grey::sysfs::od_sclk_max_mhz(in); mhz && (*mhz <= 0 || *mhz >= 100000))
    __builtin_trap();
  return 0;
}
