// AMD marketing names from libdrm's amdgpu.ids table (Debian/Ubuntu: libdrm-common,
// /usr/share/libdrm/amdgpu.ids), the table that nvtop, LACT and Mesa read: "device_id,\t
// revision_id,\tproduct_name" lines (hex ids), '#' comments, and a version line ("1.0.0").
// It names boards ("AMD Radeon RX 6700 XT") where pci.ids names chips ("Navi 22 [...]").
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace grey {

struct AmdgpuIds {
  std::string version;  // the table's version line; empty when it has none
  std::map<std::pair<uint32_t, uint32_t>, std::string> names;  // (device, revision) -> name
  int bad_lines = 0;  // lines that are neither comments, the version, nor entries
};

// Pure; never throws. Tolerates CRLF, spaces instead of tabs, NUL padding, and junk lines
// (counted in bad_lines).
AmdgpuIds parse_amdgpu_ids(std::string_view text);

// The name of (device, revision). With the revision unknown, the name when every revision of
// the device listed shares it, else nullopt (libdrm itself matches device and revision).
std::optional<std::string> amdgpu_ids_lookup(const AmdgpuIds& ids, uint32_t device,
                                             std::optional<uint32_t> revision);

// The system table (kAmdgpuIdsPath), read once per process. nullopt when absent or the id is
// not listed.
inline constexpr const char* kAmdgpuIdsPath = "/usr/share/libdrm/amdgpu.ids";
std::optional<std::string> amdgpu_marketing_name(uint32_t device, std::optional<uint32_t> revision);

// The same against one given file (tests, replays); nullopt when unreadable or not listed.
std::optional<std::string> amdgpu_marketing_name_in(const std::string& ids_file, uint32_t device,
                                                    std::optional<uint32_t> revision);

}  // namespace grey
