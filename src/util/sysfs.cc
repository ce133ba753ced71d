#include "util/sysfs.h"

#include <algorithm>
#include <cctype>
#include <cstdio>

#include "util/strings.h"

namespace grey::sysfs {

namespace {

bool parse_id_pair(std::string_view s, std::optional<uint32_t>& a, std::optional<uint32_t>& b) {
  auto parts = split(trim(s), ':');
  if (parts.size() != 2) return false;
  auto x = parse_hex(parts[0]);
  auto y = parse_hex(parts[1]);
  if (!x || !y || *x > 0xffff || *y > 0xffff) return false;
  a = static_cast<uint32_t>(*x);
  b = static_cast<uint32_t>(*y);
  return true;
}

bool is_hex_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

// "0000:01:00.0" exactly as sysfs names PCI devices (domain of 4 to 8 hex digits).
bool looks_like_pci_address(std::string_view s) {
  auto parts = split(s, ':');
  if (parts.size() != 3) return false;
  if (parts[0].size() < 4 || parts[0].size() > 8 || !is_hex_digits(parts[0])) return false;
  if (parts[1].size() != 2 || !is_hex_digits(parts[1])) return false;
  std::string_view df = parts[2];
  return df.size() == 4 && is_hex_digits(df.substr(0, 2)) && df[2] == '.' && df[3] >= '0' &&
         df[3] <= '7';
}

}  // namespace

Uevent parse_uevent(std::string_view text) {
  Uevent u;
  size_t nul = text.find('\0');
  if (nul != std::string_view::npos) text = text.substr(0, nul);
  for (std::string_view line : split_lines(text)) {
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view key = trim(line.substr(0, eq));
    std::string val = clean_value(line.substr(eq + 1));
    if (val.empty()) continue;
    if (key == "DRIVER") {
      u.driver = val;
    } else if (key == "PCI_ID") {
      parse_id_pair(val, u.vendor, u.device);
    } else if (key == "PCI_SUBSYS_ID") {
      parse_id_pair(val, u.subsys_vendor, u.subsys_device);
    } else if (key == "PCI_CLASS") {
      auto c = parse_hex(val);
      if (c && *c <= 0xffffff) u.pci_class = static_cast<uint32_t>(*c);
    } else if (key == "PCI_SLOT_NAME") {
      u.slot = normalize_bus_id(val);
    } else if (key == "MODALIAS") {
      u.modalias = val;
    }
  }
  return u;
}

std::optional<std::string> pci_address_in_path(std::string_view path) {
  auto parts = split(path, '/');
  for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
    if (looks_like_pci_address(*it)) return normalize_bus_id(*it);
  }
  return std::nullopt;
}

std::string basename_of(std::string_view p) {
  while (!p.empty() && p.back() == '/') p.remove_suffix(1);
  size_t slash = p.rfind('/');
  return std::string(slash == std::string_view::npos ? p : p.substr(slash + 1));
}

std::optional<int> card_number(std::string_view name) {
  if (!starts_with(name, "card") || name.size() == 4 || name.size() > 12) return std::nullopt;
  for (char c : name.substr(4))
    if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
  auto v = parse_int(name.substr(4));
  if (!v) return std::nullopt;
  return static_cast<int>(*v);
}

int number_after(std::string_view s, std::string_view prefix) {
  if (!starts_with(s, prefix)) return -1;
  s.remove_prefix(prefix.size());
  size_t n = 0;
  while (n < s.size() && std::isdigit(static_cast<unsigned char>(s[n]))) ++n;
  if (n == 0 || n > 6) return -1;
  return static_cast<int>(*parse_int(s.substr(0, n)));
}

std::optional<HwmonChoice> choose_hwmon(HostFs& fs, const std::string& dev_dir,
                                        const std::optional<std::string>& driver) {
  const std::string root = dev_dir + "/hwmon";
  std::vector<std::pair<int, std::string>> dirs;
  for (const std::string& e : fs.list(root)) {
    int n = number_after(e, "hwmon");
    if (n >= 0) dirs.emplace_back(n, root + "/" + e);
  }
  if (dirs.empty()) return std::nullopt;
  std::sort(dirs.begin(), dirs.end());
  auto name_of = [&](const std::string& dir) {
    auto t = fs.read(dir + "/name", 4096);
    return t ? clean_value(*t) : std::string();
  };
  HwmonChoice c;
  c.count = dirs.size();
  c.dir = dirs.front().second;
  c.name = name_of(c.dir);
  if (driver && c.name != *driver) {
    for (size_t i = 1; i < dirs.size(); ++i) {
      std::string n = name_of(dirs[i].second);
      if (n == *driver) {
        c.dir = dirs[i].second;
        c.name = n;
        break;
      }
    }
  }
  return c;
}

std::vector<int> hwmon_temp_inputs(HostFs& fs, const std::string& hwmon_dir) {
  std::vector<int> idx;
  for (const std::string& e : fs.list(hwmon_dir)) {
    int n = number_after(e, "temp");
    if (n >= 0 && e == "temp" + std::to_string(n) + "_input") idx.push_back(n);
  }
  std::sort(idx.begin(), idx.end());
  return idx;
}

std::optional<std::string> power_state_from(std::string_view runtime_status) {
  std::string_view t = trim(runtime_status);
  if (t == "active" || t == "resuming") return std::string("active");
  if (t == "suspended" || t == "suspending") return std::string("suspended");
  if (t == "unsupported") return std::string("unsupported");
  return std::nullopt;
}

}  // namespace grey::sysfs
