#include "sources/amdgpu_ids.h"

#include <fstream>
#include <mutex>
#include <sstream>

#include "util/strings.h"

namespace grey {

namespace {

std::optional<uint32_t> hex_field(std::string_view s, size_t max_digits) {
  s = trim(s);
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) s.remove_prefix(2);
  if (s.empty() || s.size() > max_digits) return std::nullopt;
  uint32_t v = 0;
  for (char c : s) {
    int d;
    if (c >= '0' && c <= '9')
      d = c - '0';
    else if (c >= 'a' && c <= 'f')
      d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
      d = c - 'A' + 10;
    else
      return std::nullopt;
    v = v * 16 + static_cast<uint32_t>(d);
  }
  return v;
}

std::optional<std::string> read_small_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::string out;
  char buf[8192];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    out.append(buf, static_cast<size_t>(in.gcount()));
    if (out.size() > (8u << 20)) return std::nullopt;  // not an ids table
  }
  return out;
}

}  // namespace

AmdgpuIds parse_amdgpu_ids(std::string_view text) {
  AmdgpuIds ids;
  size_t nul = text.find('\0');
  if (nul != std::string_view::npos) text = text.substr(0, nul);
  for (std::string_view line : split_lines(text)) {
    line = trim(line);
    if (line.empty() || line[0] == '#') continue;
    size_t c1 = line.find(',');
    if (c1 == std::string_view::npos) {
      // The version line: digits and dots only ("1.0.0").
      bool version =
          ids.version.empty() && line.find_first_not_of("0123456789.") == std::string_view::npos;
      if (version)
        ids.version = std::string(line);
      else
        ++ids.bad_lines;
      continue;
    }
    size_t c2 = line.find(',', c1 + 1);
    if (c2 == std::string_view::npos) {
      ++ids.bad_lines;
      continue;
    }
    auto dev = hex_field(line.substr(0, c1), 4);
    auto rev = hex_field(line.substr(c1 + 1, c2 - c1 - 1), 2);
    std::string_view name = trim(line.substr(c2 + 1));
    if (!dev || !rev || name.empty()) {
      ++ids.bad_lines;
      continue;
    }
    ids.names.emplace(std::make_pair(*dev, *rev), std::string(name));
  }
  return ids;
}

std::optional<std::string> amdgpu_ids_lookup(const AmdgpuIds& ids, uint32_t device,
                                             std::optional<uint32_t> revision) {
  if (revision) {
    auto it = ids.names.find({device, *revision});
    if (it == ids.names.end()) return std::nullopt;
    return it->second;
  }
  std::optional<std::string> only;
  for (auto it = ids.names.lower_bound({device, 0});
       it != ids.names.end() && it->first.first == device; ++it) {
    if (only && *only != it->second) return std::nullopt;
    only = it->second;
  }
  return only;
}

std::optional<std::string> amdgpu_marketing_name_in(const std::string& ids_file, uint32_t device,
                                                    std::optional<uint32_t> revision) {
  auto text = read_small_file(ids_file);
  if (!text) return std::nullopt;
  return amdgpu_ids_lookup(parse_amdgpu_ids(*text), device, revision);
}

std::optional<std::string> amdgpu_marketing_name(uint32_t device,
                                                 std::optional<uint32_t> revision) {
  static std::once_flag once;
  static AmdgpuIds table;
  std::call_once(once, [] {
    if (auto text = read_small_file(kAmdgpuIdsPath)) table = parse_amdgpu_ids(*text);
  });
  return amdgpu_ids_lookup(table, device, revision);
}

}  // namespace grey
