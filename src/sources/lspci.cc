// parse_lspci: `lspci` in its common forms, detected from the text itself:
//   plain            01:00.0 VGA compatible controller: NVIDIA Corporation GA102 [...] (rev a1)
//   -nn              01:00.0 VGA compatible controller [0300]: NVIDIA ... [10de:2204] (rev a1)
//   -n               01:00.0 0300: 10de:2204 (rev a1)
//   -D               0000:01:00.0 ...
//   -v / -vv / -k    the header line plus indented detail lines (Subsystem, Flags, LnkCap, ...)
//   -vmm [-nn] [-D]  records of "Key:\tvalue" lines separated by blank lines
//   -m / -mm         01:00.0 "VGA compatible controller [0300]" "NVIDIA Corporation [10de]" ...
// Only display-class devices (PCI base class 0x03) become observations.
#include <algorithm>
#include <array>
#include <cctype>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sources/parse_common.h"
#include "sources/parsers.h"
#include "util/strings.h"

namespace grey {
namespace {

constexpr size_t kMaxQuote = 160;

std::string quote_line(std::string_view s) {
  return quote_for_note(s, kMaxQuote);
}

bool is_hex_digits(std::string_view s, size_t n) {
  if (s.size() != n) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; });
}

std::optional<uint32_t> hex_exact(std::string_view s, size_t n) {
  if (!is_hex_digits(s, n)) return std::nullopt;
  auto v = parse_hex(s);
  if (!v) return std::nullopt;
  return static_cast<uint32_t>(*v);
}

// Strips a trailing "[hhhh]" (n hex digits) from s; returns the value.
std::optional<uint32_t> strip_bracket_hex(std::string_view& s, size_t n) {
  std::string_view t = trim(s);
  if (t.size() < n + 2 || t.back() != ']') return std::nullopt;
  std::string_view inner = t.substr(t.size() - n - 1, n);
  if (t[t.size() - n - 2] != '[') return std::nullopt;
  auto v = hex_exact(inner, n);
  if (!v) return std::nullopt;
  s = trim(t.substr(0, t.size() - n - 2));
  return v;
}

// Strips a trailing "[vvvv:dddd]" from s.
bool strip_bracket_ids(std::string_view& s, uint32_t& ven, uint32_t& dev) {
  std::string_view t = trim(s);
  if (t.size() < 11 || t.back() != ']' || t[t.size() - 11] != '[' || t[t.size() - 6] != ':')
    return false;
  auto v = hex_exact(t.substr(t.size() - 10, 4), 4);
  auto d = hex_exact(t.substr(t.size() - 5, 4), 4);
  if (!v || !d) return false;
  ven = *v;
  dev = *d;
  s = trim(t.substr(0, t.size() - 11));
  return true;
}

// "vvvv:dddd" exactly.
bool parse_id_pair(std::string_view s, uint32_t& ven, uint32_t& dev) {
  s = trim(s);
  if (s.size() != 9 || s[4] != ':') return false;
  auto v = hex_exact(s.substr(0, 4), 4);
  auto d = hex_exact(s.substr(5, 4), 4);
  if (!v || !d) return false;
  ven = *v;
  dev = *d;
  return true;
}

// Strips a trailing parenthesized group whose content starts with `prefix` ("rev ",
// "prog-if "), honouring nested brackets. Returns the content.
std::optional<std::string_view> strip_paren(std::string_view& s, std::string_view prefix) {
  std::string_view t = trim(s);
  if (t.empty() || t.back() != ')') return std::nullopt;
  int depth = 0;
  for (size_t i = t.size(); i-- > 0;) {
    char c = t[i];
    if (c == ')') {
      ++depth;
    } else if (c == '(') {
      if (--depth == 0) {
        std::string_view inner = t.substr(i + 1, t.size() - i - 2);
        if (!starts_with(inner, prefix)) return std::nullopt;
        s = trim(t.substr(0, i));
        return inner;
      }
    }
  }
  return std::nullopt;
}

struct VendorName {
  std::string_view name;  // as in pci.ids (matched case-insensitively)
  uint32_t id;            // 0 when the name is shared by several ids
};

// Vendor names as lspci prints them (pci.ids), longest first where one is a prefix of another.
constexpr std::array<VendorName, 22> kVendors{{
    {"Advanced Micro Devices, Inc. [AMD/ATI]", 0x1002},
    {"Advanced Micro Devices, Inc. [AMD]", 0x1022},
    {"Advanced Micro Devices [AMD] nee ATI", 0x1002},
    {"Advanced Micro Devices, Inc.", 0x1002},
    {"ATI Technologies Inc", 0x1002},
    {"NVIDIA Corporation", 0x10de},
    {"nVidia Corporation", 0x10de},
    {"Intel Corporation", 0x8086},
    {"Red Hat, Inc.", 0},  // 1af4 (virtio) and 1b36 (QXL) share the name
    {"VMware Inc.", 0x15ad},
    {"VMware", 0x15ad},
    {"InnoTek Systemberatung GmbH", 0x80ee},
    {"Oracle Corporation", 0x80ee},
    {"Microsoft Corporation", 0x1414},
    {"Cirrus Logic", 0x1013},
    {"ASPEED Technology, Inc.", 0x1a03},
    {"Matrox Electronics Systems Ltd.", 0x102b},
    {"Matrox Graphics, Inc.", 0x102b},
    {"Silicon Motion, Inc.", 0x126f},
    {"Huawei Technologies Co., Ltd.", 0x19e5},
    {"Moore Threads Technology Co.,Ltd", 0x1ed5},
    {"XGI Technology Inc. (eXtreme Graphics Innovation)", 0x18ca},
}};

// Splits "NVIDIA Corporation GM204 [GeForce GTX 970]" into a known vendor and the rest.
std::optional<VendorName> split_vendor(std::string_view text, std::string_view& rest) {
  std::string lower = to_lower(text.substr(0, 96));
  for (const VendorName& v : kVendors) {
    std::string name = to_lower(v.name);
    if (!starts_with(lower, name)) continue;
    if (lower.size() > name.size() && lower[name.size()] != ' ') continue;
    rest = trim(text.substr(name.size()));
    return v;
  }
  return std::nullopt;
}

std::string vendor_from_name(std::string_view name) {
  std::string l = to_lower(name.substr(0, 128));
  if (contains(l, "nvidia")) return "nvidia";
  if (contains(l, "advanced micro devices") || starts_with(l, "ati ") || contains(l, "[amd"))
    return "amd";
  if (starts_with(l, "intel")) return "intel";
  return "unknown";
}

// Display class? Returns {code if known, display}.
struct ClassInfo {
  std::optional<uint32_t> code;
  std::string name;
  bool display = false;
};

ClassInfo classify(std::string_view cls) {
  ClassInfo ci;
  std::string_view t = trim(cls);
  if (auto c = strip_bracket_hex(t, 4)) {
    ci.code = c;
  } else if (auto c2 = hex_exact(t, 4)) {
    ci.code = c2;
    t = {};
  } else if (starts_with(t, "Class ")) {
    std::string_view h = trim(t.substr(6));
    if (auto c3 = hex_exact(h, 4)) {
      ci.code = c3;
      t = {};
    }
  }
  ci.name = std::string(trim(t));
  if (ci.code) {
    ci.display = (*ci.code >> 8) == 0x03;
  } else {
    std::string l = to_lower(ci.name);
    ci.display = l == "vga compatible controller" || l == "xga compatible controller" ||
                 l == "3d controller" || l == "display controller";
  }
  return ci;
}

struct Dev {
  Observation obs;
  ClassInfo cls;
  std::string vendor_name;      // as printed, when printed
  uint32_t name_vendor_id = 0;  // from the vendor name table (0: unknown/ambiguous)
  std::string subsystem;
  std::vector<std::string> modules;
  std::string lnksta;
  bool caps_denied = false;
  bool lnkcap_seen = false;
};

// "GA102 [GeForce RTX 3090] [2204]" / "Device 2204" / "Device [2204]" / "2204" -> model + id.
void apply_device_name(Dev& d, std::string_view text) {
  std::string_view t = trim(text);
  if (auto id = strip_bracket_hex(t, 4)) d.obs.f.pci_device_id = *id;
  if (auto id = hex_exact(t, 4)) {
    d.obs.f.pci_device_id = *id;
    return;
  }
  if (starts_with(t, "Device ")) {
    if (auto id = hex_exact(trim(t.substr(7)), 4)) {
      d.obs.f.pci_device_id = *id;
      return;
    }
  }
  if (t == "Device") return;  // -nn form of an unnamed device: "Device [2204]"
  if (!t.empty() && !is_missing_marker(t)) d.obs.f.model = std::string(t);
}

// "NVIDIA Corporation [10de]" / "Vendor 10de" / "10de" -> vendor name + id.
void apply_vendor_name(Dev& d, std::string_view text) {
  std::string_view t = trim(text);
  if (auto id = strip_bracket_hex(t, 4)) d.obs.f.pci_vendor_id = *id;
  if (auto id = hex_exact(t, 4)) {
    d.obs.f.pci_vendor_id = *id;
    return;
  }
  if (starts_with(t, "Vendor ")) {
    if (auto id = hex_exact(trim(t.substr(7)), 4)) {
      d.obs.f.pci_vendor_id = *id;
      return;
    }
  }
  if (t.empty() || t == "Vendor") return;
  d.vendor_name = std::string(t);
  std::string_view rest;
  if (auto v = split_vendor(t, rest); v && rest.empty()) d.name_vendor_id = v->id;
}

// The text after "CLASS: " in a header line.
void apply_header_rest(Dev& d, std::string_view rest) {
  uint32_t ven = 0, dev = 0;
  bool ids = false;
  for (int i = 0; i < 4; ++i) {
    if (strip_paren(rest, "prog-if ")) continue;
    if (strip_paren(rest, "rev ")) continue;
    if (!ids && strip_bracket_ids(rest, ven, dev)) {
      ids = true;
      continue;
    }
    break;
  }
  rest = trim(rest);
  if (!ids && parse_id_pair(rest, ven, dev)) {  // -n: "10de:2204"
    ids = true;
    rest = {};
  }
  if (!ids && starts_with(rest, "Device ") && parse_id_pair(rest.substr(7), ven, dev)) {
    ids = true;  // vendor unknown to pci.ids: "Device 1234:1111"
    rest = {};
  }
  if (ids) {
    d.obs.f.pci_vendor_id = ven;
    d.obs.f.pci_device_id = dev;
  }
  if (rest.empty() || rest == "Device") return;  // -nn, vendor unknown: "Device [1234:1111]"
  std::string_view model;
  if (auto v = split_vendor(rest, model)) {
    d.vendor_name = std::string(trim(rest.substr(0, v->name.size())));
    d.name_vendor_id = v->id;
    if (starts_with(model, "Device ")) {
      if (auto id = hex_exact(trim(model.substr(7)), 4)) {
        if (!d.obs.f.pci_device_id) d.obs.f.pci_device_id = *id;
        model = {};
      }
    }
    if (model == "Device") model = {};  // -nn: "NVIDIA Corporation Device [10de:2684]"
    if (!model.empty()) d.obs.f.model = std::string(model);
  } else {
    // Vendor unknown to us: lspci gives no separator, keep the whole name.
    d.obs.f.model = std::string(rest);
    d.vendor_name = std::string(rest);
  }
}

void apply_numa(Dev& d, std::string_view text) {
  auto v = parse_int(text);
  if (v && *v >= 0 && *v < 4096) d.obs.f.numa_node = static_cast<int>(*v);
}

void apply_lnkcap(Dev& d, std::string_view v) {
  if (d.lnkcap_seen) return;
  d.lnkcap_seen = true;
  size_t sp = v.find("Speed ");
  if (sp != std::string_view::npos) {
    if (auto g = pcie_gen_from_speed(v.substr(sp + 6, 12))) d.obs.f.pcie_gen = *g;
  }
  size_t w = v.find("Width x");
  if (w != std::string_view::npos) {
    std::string_view digits = v.substr(w + 7);
    size_t n = 0;
    while (n < digits.size() && n < 3 && std::isdigit(static_cast<unsigned char>(digits[n]))) ++n;
    auto width = parse_int(digits.substr(0, n));
    if (width && *width > 0 && *width <= 32) d.obs.f.pcie_width = static_cast<int>(*width);
  }
}

// One indented detail line of -v / -vv / -k.
void apply_detail(Dev& d, std::string_view line) {
  std::string_view t = trim(line);
  auto value_of = [&](std::string_view key) -> std::optional<std::string_view> {
    if (!starts_with(t, key)) return std::nullopt;
    return trim(t.substr(key.size()));
  };
  if (auto v = value_of("Subsystem:")) {
    if (d.subsystem.empty()) d.subsystem = std::string(*v);
  } else if (auto v2 = value_of("Kernel driver in use:")) {
    if (!v2->empty()) d.obs.f.kernel_driver = std::string(*v2);
  } else if (auto v3 = value_of("Kernel modules:")) {
    for (auto m : split(*v3, ',')) {
      m = trim(m);
      if (!m.empty() && d.modules.size() < 16) d.modules.emplace_back(m);
    }
  } else if (auto v4 = value_of("Flags:")) {
    size_t p = v4->find("NUMA node ");
    if (p != std::string_view::npos) {
      std::string_view n = v4->substr(p + 10);
      apply_numa(d, n.substr(0, n.find(',')));
    }
  } else if (auto v5 = value_of("NUMA node:")) {
    apply_numa(d, *v5);
  } else if (auto v6 = value_of("LnkCap:")) {
    apply_lnkcap(d, *v6);
  } else if (auto v7 = value_of("LnkSta:")) {
    if (d.lnksta.empty()) d.lnksta = std::string(v7->substr(0, 120));
  } else if (starts_with(t, "Capabilities: <access denied>")) {
    d.caps_denied = true;
  }
}

std::optional<std::string> software_reason_for(const Dev& d) {
  uint32_t vid = d.obs.f.pci_vendor_id.value_or(d.name_vendor_id);
  std::string model = d.obs.f.model ? d.obs.f.model->substr(0, 256) : std::string();
  std::string vname = to_lower(std::string_view(d.vendor_name).substr(0, 64));
  if (icontains(model, "ES1000") && (vid == 0x1002 || vid == 0))
    return "server management display adapter (ATI ES1000), not a compute GPU";
  switch (vid) {
    case 0x1af4:
      return "virtual display adapter (Red Hat virtio-gpu)";
    case 0x1b36:
      return "virtual display adapter (Red Hat QXL)";
    case 0x1234:
      return "virtual display adapter (QEMU/Bochs standard VGA)";
    case 0x15ad:
      return "virtual display adapter (VMware SVGA)";
    case 0x80ee:
      return "virtual display adapter (VirtualBox)";
    case 0x1414:
      return "virtual display adapter (Microsoft Hyper-V)";
    case 0x1013:
      return "emulated display adapter (Cirrus Logic, as emulated by virtual machines)";
    case 0x1a03:
      return "server management display adapter (ASPEED BMC), not a compute GPU";
    case 0x102b:
      return "server management display adapter (Matrox G200 class), not a compute GPU";
    default:
      break;
  }
  if (vid == 0 && starts_with(vname, "red hat"))
    return "virtual display adapter (Red Hat virtio/QXL)";
  if (vid == 0x19e5 && icontains(model, "iBMC"))
    return "server management display adapter (Huawei iBMC), not a compute GPU";
  return std::nullopt;
}

void finish(Dev& d) {
  GpuFields& f = d.obs.f;
  if (f.pci_vendor_id) {
    f.vendor = vendor_from_pci_id(*f.pci_vendor_id);
  } else if (!d.vendor_name.empty()) {
    f.vendor =
        d.name_vendor_id ? vendor_from_pci_id(d.name_vendor_id) : vendor_from_name(d.vendor_name);
  }
  if (f.vendor == "unknown" && !d.vendor_name.empty())
    d.obs.notes.push_back("PCI vendor: " + quote_line(d.vendor_name));
  if (!d.subsystem.empty()) d.obs.notes.push_back("subsystem: " + quote_line(d.subsystem));
  if (!f.kernel_driver && !d.modules.empty()) {
    std::string mods;
    for (const auto& m : d.modules) mods += (mods.empty() ? "" : ", ") + m;
    d.obs.notes.push_back("no kernel driver bound; available modules: " + quote_line(mods));
  }
  if (contains(d.lnksta, "downgraded"))
    d.obs.notes.push_back(
        "PCIe link currently trained below its capability (idle GPUs often do "
        "this to save power): " +
        quote_line(d.lnksta));
  if (d.caps_denied && !d.lnkcap_seen)
    d.obs.notes.push_back(
        "PCIe link capabilities not readable (lspci ran without root: 'Capabilities: <access "
        "denied>')");
  d.obs.software_reason = software_reason_for(d);
}

// Cheap pre-check before normalize_bus_id: "01:00.0" .. "0000:01:00.0" (hex, ':' and '.').
bool looks_like_slot(std::string_view s) {
  if (s.size() < 7 || s.size() > 16) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isxdigit(static_cast<unsigned char>(c)) != 0 || c == ':' || c == '.';
  });
}

bool is_vmm(const std::vector<std::string_view>& lines) {
  for (auto l : lines) {
    if (starts_with(l, "Slot:") && l.size() > 5 && (l[5] == '\t' || l[5] == ' ')) return true;
  }
  return false;
}

struct Collected {
  std::vector<Dev> devs;
  size_t pci_devices = 0;
};

void parse_vmm(const std::vector<std::string_view>& lines, Collected& out) {
  std::optional<Dev> cur;
  bool have_slot = false;
  auto flush = [&] {
    if (cur && have_slot) {
      ++out.pci_devices;
      if (cur->cls.display) out.devs.push_back(std::move(*cur));
    }
    cur.reset();
    have_slot = false;
  };
  std::string sv, sd;
  for (auto raw : lines) {
    std::string_view line = trim(raw);
    if (line.empty()) {
      if (cur && !sv.empty()) cur->subsystem = sv + (sd.empty() ? "" : " " + sd);
      sv.clear();
      sd.clear();
      flush();
      continue;
    }
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view key = line.substr(0, colon);
    std::string_view val = trim(line.substr(colon + 1));
    if (key == "Slot") {
      if (cur && !sv.empty()) cur->subsystem = sv + (sd.empty() ? "" : " " + sd);
      sv.clear();
      sd.clear();
      flush();
      auto bus = normalize_bus_id(val);
      cur.emplace();
      if (bus) {
        cur->obs.f.bus_id = *bus;
        have_slot = true;
      }
      continue;
    }
    if (!cur) continue;
    if (key == "Class") {
      cur->cls = classify(val);
    } else if (key == "Vendor") {
      apply_vendor_name(*cur, val);
    } else if (key == "Device") {
      apply_device_name(*cur, val);
    } else if (key == "SVendor") {
      sv = std::string(val.substr(0, 120));
    } else if (key == "SDevice") {
      sd = std::string(val.substr(0, 120));
    } else if (key == "Driver") {
      if (!val.empty()) cur->obs.f.kernel_driver = std::string(val);
    } else if (key == "Module") {
      if (!val.empty() && cur->modules.size() < 16) cur->modules.emplace_back(val);
    } else if (key == "NUMANode") {
      apply_numa(*cur, val);
    }
  }
  if (cur && !sv.empty()) cur->subsystem = sv + (sd.empty() ? "" : " " + sd);
  flush();
}

// Quoted tokens of an -m / -mm line after the slot; options (-rXX, -pXX) are skipped.
std::vector<std::string_view> mm_tokens(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size() && out.size() < 16) {
    while (i < s.size() && s[i] == ' ') ++i;
    if (i >= s.size()) break;
    if (s[i] == '"') {
      size_t e = s.find('"', i + 1);
      if (e == std::string_view::npos) {
        out.push_back(s.substr(i + 1));
        break;
      }
      out.push_back(s.substr(i + 1, e - i - 1));
      i = e + 1;
    } else {
      size_t e = s.find(' ', i);
      if (e == std::string_view::npos) e = s.size();
      i = e;  // option such as -ra1 / -p00
    }
  }
  return out;
}

void parse_lines(const std::vector<std::string_view>& lines, Collected& out) {
  std::optional<Dev> cur;
  auto flush = [&] {
    if (cur && cur->cls.display) out.devs.push_back(std::move(*cur));
    cur.reset();
  };
  for (auto line : lines) {
    if (line.empty()) continue;
    if (line[0] == '\t' || line[0] == ' ') {
      if (cur) apply_detail(*cur, line);
      continue;
    }
    // A header line: SLOT SP (CLASS ": " REST | "CLASS" "VENDOR" "DEVICE" ...)
    size_t sp = line.find(' ');
    if (sp == std::string_view::npos) {
      flush();
      continue;
    }
    std::string_view slot = line.substr(0, sp);
    auto bus = looks_like_slot(slot) ? normalize_bus_id(slot) : std::nullopt;
    if (!bus) {
      flush();
      continue;
    }
    std::string_view rest = line.substr(sp + 1);
    Dev d;
    d.obs.f.bus_id = *bus;
    if (!rest.empty() && rest[0] == '"') {
      auto tok = mm_tokens(rest);
      if (tok.size() < 3) {
        flush();
        continue;
      }
      d.cls = classify(tok[0]);
      apply_vendor_name(d, tok[1]);
      apply_device_name(d, tok[2]);
      if (tok.size() >= 4 && !trim(tok[3]).empty()) {
        d.subsystem = std::string(trim(tok[3]).substr(0, 120));
        if (tok.size() >= 5 && !trim(tok[4]).empty())
          d.subsystem += " " + std::string(trim(tok[4]).substr(0, 120));
      }
    } else {
      size_t cs = rest.find(": ");
      if (cs == std::string_view::npos) {
        if (!ends_with(rest, ":")) {
          flush();
          continue;
        }
        cs = rest.size() - 1;
      }
      d.cls = classify(rest.substr(0, cs));
      if (d.cls.name.empty() && !d.cls.code) {
        flush();
        continue;
      }
      apply_header_rest(d, rest.substr(std::min(rest.size(), cs + 2)));
    }
    flush();
    ++out.pci_devices;
    cur = std::move(d);
  }
  flush();
}

void first_nonblank(std::string_view text, std::string& line) {
  for (auto l : split_lines(text.substr(0, 64 * 1024))) {
    if (!trim(l).empty()) {
      line = quote_line(l);
      return;
    }
  }
}

}  // namespace

namespace {

ParseResult parse_lspci_unguarded(std::string_view text) {
  ParseResult r;
  if (reject_empty(text, r)) return r;
  auto lines = split_lines(text);
  Collected c;
  if (is_vmm(lines)) {
    parse_vmm(lines, c);
  } else {
    parse_lines(lines, c);
  }
  if (c.pci_devices == 0) {
    r.recognized = false;
    std::string first;
    first_nonblank(text, first);
    if (icontains(first, "lspci") || icontains(first, "pcilib") || icontains(first, "not found") ||
        icontains(first, "permission denied"))
      r.notes.push_back("lspci reported: " + first);
    else
      r.notes.push_back("no PCI device lines: not lspci output (first line: '" + first + "')");
    return r;
  }
  // One observation per bus id; a repeated slot (concatenated outputs) fills the gaps.
  std::map<std::string, size_t> by_bus;
  for (Dev& d : c.devs) {
    finish(d);
    const std::string bus = d.obs.f.bus_id.value_or("");
    auto it = by_bus.find(bus);
    if (!bus.empty() && it != by_bus.end()) {
      Observation& prev = r.devices[it->second];
      fill_missing(prev.f, d.obs.f);
      if (!prev.software_reason) prev.software_reason = d.obs.software_reason;
      continue;
    }
    if (!bus.empty()) by_bus[bus] = r.devices.size();
    r.devices.push_back(std::move(d.obs));
  }
  if (r.devices.empty())
    r.notes.push_back("no display-class PCI device (VGA/XGA/3D/Display controller) among " +
                      std::to_string(c.pci_devices) + " PCI devices");
  return r;
}

}  // namespace

ParseResult parse_lspci(std::string_view text) {
  return guarded_parse("lspci output", parse_lspci_unguarded, text);
}

}  // namespace grey
