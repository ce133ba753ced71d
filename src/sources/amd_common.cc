#include "sources/amd_common.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>

#include "util/strings.h"

namespace grey::amd {

std::string normalize_gfx(std::string_view raw, bool* changed) {
  *changed = false;
  std::string s = to_lower(trim(raw));
  if (!starts_with(s, "gfx")) return std::string(trim(raw));
  std::string digits = s.substr(3);
  if (digits.size() < 4 || digits.size() > 6 || !all_digits(digits)) return s;
  size_t major_len = digits[0] == '1' || digits[0] == '2' ? 2 : 1;
  std::string rem = digits.substr(major_len);
  if (rem.size() != 3) return s;
  auto step = parse_int(rem.substr(1));
  if (!step || *step < 0 || *step > 15) return s;
  const char* hex = "0123456789abcdef";
  *changed = true;
  return "gfx" + digits.substr(0, major_len) + rem[0] + hex[*step];
}

size_t json_depth(std::string_view s) {
  size_t depth = 0, max_depth = 0;
  bool in_str = false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (in_str) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_str = false;
    } else if (c == '"') {
      in_str = true;
    } else if (c == '{' || c == '[') {
      max_depth = std::max(max_depth, ++depth);
    } else if ((c == '}' || c == ']') && depth > 0) {
      --depth;
    }
  }
  return max_depth;
}

bool reject_too_deep(std::string_view body, std::string_view tool, ParseResult& r) {
  if (json_depth(body) <= kMaxJsonDepth) return false;
  r.recognized = false;
  r.notes.push_back("JSON nested deeper than " + std::string(tool) + " ever writes: not " +
                    std::string(tool) + " output");
  return true;
}

std::string json_scalar(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  if (v.is_number_unsigned()) return std::to_string(v.get<uint64_t>());
  if (v.is_number_float()) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.6g", v.get<double>());
    return buf;
  }
  return "";
}

}  // namespace grey::amd
