#include "util/strings.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>

namespace grey {

std::string_view trim(std::string_view s) {
  size_t b = 0;
  while (b < s.size() && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  size_t e = s.size();
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

std::string to_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool starts_with(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}
bool ends_with(std::string_view s, std::string_view x) {
  return s.size() >= x.size() && s.substr(s.size() - x.size()) == x;
}
bool contains(std::string_view s, std::string_view n) {
  return s.find(n) != std::string_view::npos;
}
bool icontains(std::string_view s, std::string_view n) {
  if (n.empty()) return true;
  if (n.size() > s.size()) return false;
  auto low = [](char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); };
  for (size_t i = 0; i + n.size() <= s.size(); ++i) {
    size_t k = 0;
    while (k < n.size() && low(s[i + k]) == low(n[k])) ++k;
    if (k == n.size()) return true;
  }
  return false;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t pos = s.find(sep, start);
    if (pos == std::string_view::npos) {
      out.push_back(s.substr(start));
      break;
    }
    out.push_back(s.substr(start, pos - start));
    start = pos + 1;
  }
  return out;
}

std::vector<std::string_view> split_lines(std::string_view s) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (start < s.size()) {
    size_t pos = s.find('\n', start);
    if (pos == std::string_view::npos) pos = s.size();
    std::string_view line = s.substr(start, pos - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    out.push_back(line);
    start = pos + 1;
  }
  return out;
}

std::string clean_value(std::string_view raw) {
  size_t nul = raw.find('\0');
  if (nul != std::string_view::npos) raw = raw.substr(0, nul);
  return std::string(trim(raw));
}

bool is_missing_marker(std::string_view s) {
  s = trim(s);
  if (s.empty() || s == "-" || s == "N/A" || s == "n/a" || s == "NA") return true;
  if (s.front() == '[' && s.back() == ']') return true;  // [N/A], [Not Supported], ...
  std::string l = to_lower(s);
  return l == "not supported" || l == "unknown" || l == "not available" || starts_with(l, "n/a ") ||
         l == "none";
}

std::optional<int64_t> parse_int(std::string_view s) {
  s = trim(s);
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.empty()) return std::nullopt;
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<double> parse_double(std::string_view s) {
  s = trim(s);
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.empty()) return std::nullopt;
  double v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

std::optional<uint64_t> parse_hex(std::string_view s) {
  s = trim(s);
  if (starts_with(s, "0x") || starts_with(s, "0X")) s.remove_prefix(2);
  if (s.empty() || s.size() > 16) return std::nullopt;
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 16);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<double> leading_number(std::string_view s) {
  s = trim(s);
  size_t i = 0;
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
  bool digits = false;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) {
    digits = digits || s[i] != '.';
    ++i;
  }
  if (!digits) return std::nullopt;
  return parse_double(s.substr(0, i));
}

int64_t bytes_to_mib(uint64_t bytes) {
  return static_cast<int64_t>(bytes / (1024ull * 1024ull));
}

std::optional<int64_t> memory_to_mib(std::string_view s) {
  s = trim(s);
  auto num = leading_number(s);
  if (!num || *num < 0) return std::nullopt;
  size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.' ||
                          s[i] == '-' || s[i] == '+'))
    ++i;
  std::string unit = to_lower(trim(s.substr(i)));
  double mib;
  if (unit == "mib" || unit == "mb" || unit == "m") {
    mib = *num;
  } else if (unit == "gib" || unit == "gb" || unit == "g") {
    mib = *num * 1024.0;
  } else if (unit == "kib" || unit == "kb" || unit == "k") {
    mib = *num / 1024.0;
  } else if (unit == "b" || unit == "bytes" || unit.empty()) {
    mib = *num / (1024.0 * 1024.0);
  } else {
    return std::nullopt;
  }
  if (mib > 1e12) return std::nullopt;
  return static_cast<int64_t>(std::floor(mib + 1e-9));
}

std::optional<std::string> normalize_bus_id(std::string_view s) {
  s = trim(s);
  if (starts_with(s, "pci@")) s.remove_prefix(4);
  if (starts_with(s, "PCI:")) s.remove_prefix(4);
  // Split off function.
  size_t dot = s.rfind('.');
  if (dot == std::string_view::npos) return std::nullopt;
  auto func = parse_hex(s.substr(dot + 1));
  auto parts = split(s.substr(0, dot), ':');
  std::optional<uint64_t> dom = 0, bus, dev;
  if (parts.size() == 3) {
    dom = parse_hex(parts[0]);
    bus = parse_hex(parts[1]);
    dev = parse_hex(parts[2]);
  } else if (parts.size() == 2) {
    bus = parse_hex(parts[0]);
    dev = parse_hex(parts[1]);
  } else {
    return std::nullopt;
  }
  if (!func || !dom || !bus || !dev || *func > 7 || *dev > 0x1f || *bus > 0xff ||
      *dom > 0xffffffffull)
    return std::nullopt;
  char buf[32];
  // nvidia-smi prints 8 domain digits ("00000000"); VMD hosts really use domains above
  // 0xffff ("10000"), which must not collide with domain 0.
  std::snprintf(buf, sizeof buf, "%04x:%02x:%02x.%x", static_cast<unsigned>(*dom),
                static_cast<unsigned>(*bus), static_cast<unsigned>(*dev),
                static_cast<unsigned>(*func));
  return std::string(buf);
}

std::optional<int> pcie_gen_from_speed(std::string_view s) {
  auto v = leading_number(s);
  if (!v) return std::nullopt;
  double r = *v;
  if (std::fabs(r - 2.5) < 0.01) return 1;
  if (std::fabs(r - 5.0) < 0.01) return 2;
  if (std::fabs(r - 8.0) < 0.01) return 3;
  if (std::fabs(r - 16.0) < 0.01) return 4;
  if (std::fabs(r - 32.0) < 0.01) return 5;
  if (std::fabs(r - 64.0) < 0.01) return 6;
  if (std::fabs(r - 128.0) < 0.01) return 7;
  return std::nullopt;
}

std::string pci_bandwidth(int gen, int width) {
  return "Gen" + std::to_string(gen) + " x" + std::to_string(width);
}

std::string hex4(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04x", v & 0xffffu);
  return buf;
}

size_t utf8_sequence_length(std::string_view s, size_t i) {
  if (i >= s.size()) return 0;
  const auto c = static_cast<unsigned char>(s[i]);
  const size_t len = c < 0x80           ? 1
                     : (c >> 5) == 0x6  ? 2
                     : (c >> 4) == 0xe  ? 3
                     : (c >> 3) == 0x1e ? 4
                                        : 0;
  if (len == 0 || i + len > s.size()) return 0;
  for (size_t k = 1; k < len; ++k)
    if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return 0;
  const auto c1 = len > 1 ? static_cast<unsigned char>(s[i + 1]) : 0;
  if (len == 2 && c < 0xc2) return 0;  // overlong
  if (len == 3 && ((c == 0xe0 && c1 < 0xa0) || (c == 0xed && c1 >= 0xa0)))
    return 0;  // overlong, surrogate
  if (len == 4 && ((c == 0xf0 && c1 < 0x90) || c > 0xf4 || (c == 0xf4 && c1 >= 0x90)))
    return 0;  // overlong, above U+10FFFF
  return len;
}

std::string shortest_double(double d) {
  char buf[64];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, d);
  return ec == std::errc() ? std::string(buf, p) : std::string("?");
}

std::string sanitize_utf8(std::string_view s) {
  std::string o;
  o.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    if (const size_t len = utf8_sequence_length(s, i)) {
      o.append(s.substr(i, len));
      i += len;
    } else {
      append_utf8(o, 0xFFFD);
      ++i;
    }
  }
  return o;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::string fixed_decimals(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string compact_decimal(double v, int max_decimals) {
  std::string s = fixed_decimals(v, max_decimals);
  if (s.find('.') != std::string::npos) {
    while (!s.empty() && s.back() == '0') s.pop_back();
    if (!s.empty() && s.back() == '.') s.pop_back();
  }
  return s;
}

double round2(double x) {
  return std::round(x * 100.0) / 100.0;
}

std::string quote_for_note(std::string_view s, size_t max) {
  s = trim(s);
  size_t n = std::min(s.size(), max);
  // Back off a cut that would split a UTF-8 sequence (continuation bytes are 10xxxxxx).
  if (n < s.size())
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xc0) == 0x80) --n;
  std::string out;
  out.reserve(n + 3);
  for (char c : s.substr(0, n)) {
    auto u = static_cast<unsigned char>(c);
    out.push_back(u < 0x20 || u == 0x7f ? '?' : c);
  }
  if (n < s.size()) out += "...";
  return out;
}

std::string quote_first_line(std::string_view s, size_t max) {
  size_t start = 0;
  while (start < s.size()) {
    size_t end = s.find('\n', start);
    if (end == std::string_view::npos) end = s.size();
    std::string_view line = trim(s.substr(start, end - start));
    start = end + 1;
    if (!line.empty()) return quote_for_note(line, max);
  }
  return "";
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace grey
