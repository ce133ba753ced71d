// rocm-smi parsers: `rocm-smi <flags> --json` and the plain text forms (the concise table of
// plain `rocm-smi` in its ROCm 1.x .. 6.x layouts, `rocm-smi --showhw`, the "GPU[N] : key: value"
// lines of `-a` / `--showproductname` / `--showbus` ..., and `--csv`).
//
// Key names differ across ROCm versions ("Card series"/"Card Series"/"Device Name",
// "GPU ID"/"Device ID", ...). Keys are matched case-insensitively and by meaning; unknown keys
// are ignored, so a new rocm-smi release degrades to missing fields rather than failures.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sources/amd_common.h"
#include "sources/parse_common.h"
#include "sources/parsers.h"
#include "sources/pci_names.h"
#include "util/strings.h"

namespace grey {
namespace {

using amd::normalize_gfx;

// ---------------------------------------------------------------------------------------------
// Small helpers

// Strips the "=====" banners rocm-smi draws around its messages.
std::string_view strip_banner(std::string_view s) {
  s = trim(s);
  while (!s.empty() && (s.front() == '=' || s.front() == '-')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == '=' || s.back() == '-')) s.remove_suffix(1);
  return trim(s);
}

bool is_separator(std::string_view line) {
  line = trim(line);
  if (line.size() < 3) return false;
  return std::all_of(line.begin(), line.end(), [](char c) { return c == '=' || c == '-'; });
}

// Lower case, single spaces, no trailing ':'.
std::string norm_key(std::string_view k) {
  k = trim(k);
  while (!k.empty() && k.back() == ':') k = trim(k.substr(0, k.size() - 1));
  std::string out;
  bool space = false;
  for (char c : k) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      space = true;
      continue;
    }
    if (space && !out.empty()) out += ' ';
    space = false;
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

bool missing(std::string_view v) {
  v = trim(v);
  return is_missing_marker(v) || icontains(v, "not supported");
}

// "1 (16.0GT/s x16)", "16.0GT/s x16 *", "8.0GT/s, x16 619Mhz" -> {gen, width}.
std::optional<std::pair<int, int>> parse_pcie_level(std::string_view v) {
  size_t gt = v.find("GT/s");
  if (gt == std::string_view::npos) return std::nullopt;
  size_t b = gt;
  while (b > 0 && (std::isdigit(static_cast<unsigned char>(v[b - 1])) || v[b - 1] == '.')) --b;
  if (b == gt) return std::nullopt;
  auto gen = pcie_gen_from_speed(v.substr(b, gt - b));
  if (!gen) return std::nullopt;
  int width = 0;
  size_t x = v.find('x', gt);
  if (x != std::string_view::npos) {
    size_t e = x + 1;
    while (e < v.size() && std::isdigit(static_cast<unsigned char>(v[e]))) ++e;
    if (e > x + 1 && e - x <= 3) width = static_cast<int>(*parse_int(v.substr(x + 1, e - x - 1)));
  }
  return std::make_pair(*gen, width);
}

// ---------------------------------------------------------------------------------------------
// Per-device accumulation: several keys can carry the same fact, the better one wins.

struct Acc {
  Observation obs;
  int name_prio = 0;
  int temp_prio = 0;
  int draw_prio = 0;
  int pcie_gen = 0;
  int pcie_width = 0;
  // VRAM in bytes as printed: free VRAM is computed from these, not from the rounded MiB
  // values (the rule of the sysfs source too: floor((total - used) bytes / MiB)).
  std::optional<uint64_t> vram_total_b, vram_used_b;
};

using Devices = std::map<int, Acc>;

void set_name(Acc& a, std::string_view v, int prio) {
  v = trim(v);
  if (missing(v) || prio <= a.name_prio) return;
  // Old ROCm prints the vendor id as the card series ("Card series": "0x1002"): no name. The
  // model then comes from another key, or from the PCI id's tables in the merge.
  if (is_placeholder_product_name(std::string(v))) {
    a.obs.notes.push_back("name '" + quote_first_line(v) + "' is a placeholder; ignored");
    return;
  }
  a.obs.f.model = std::string(v);
  a.name_prio = prio;
}

void set_device_id(Acc& a, std::string_view v) {
  v = trim(v);
  if (missing(v)) return;
  auto id = parse_hex(v);
  if (!id || *id > 0xffff) {
    a.obs.notes.push_back("pci device id '" + quote_first_line(v) +
                          "' is not a 16-bit hex id; ignored");
    return;
  }
  a.obs.f.pci_device_id = static_cast<uint32_t>(*id);
}

void set_bus(Acc& a, std::string_view v) {
  if (missing(v)) return;
  auto b = normalize_bus_id(v);
  if (!b) {
    a.obs.notes.push_back("PCI bus '" + quote_first_line(v) + "' is not a PCI address; ignored");
    return;
  }
  a.obs.f.bus_id = *b;
}

void set_temp(Acc& a, std::string_view v, int prio) {
  if (missing(v) || prio <= a.temp_prio) return;
  auto t = leading_number(v);
  if (!t || *t < -100 || *t > 300) return;
  a.obs.f.temperature_c = *t;
  a.temp_prio = prio;
}

void set_draw(Acc& a, std::string_view v, int prio) {
  if (missing(v) || prio <= a.draw_prio) return;
  auto w = leading_number(v);
  if (!w || *w < 0 || *w > 100000) return;
  a.obs.f.power_draw_w = *w;
  a.draw_prio = prio;
}

void set_cap(Acc& a, std::string_view v) {
  if (missing(v)) return;
  auto w = leading_number(v);
  if (!w || *w > 100000) return;
  if (*w <= 0) {
    a.obs.notes.push_back("power cap reads '" + quote_first_line(v) + "'; ignored");
    return;
  }
  a.obs.f.power_limit_w = *w;
}

void set_util(Acc& a, std::string_view v) {
  if (missing(v)) return;
  auto u = leading_number(v);
  if (!u || *u < 0 || *u > 100) return;
  a.obs.f.utilization_pct = static_cast<int>(*u + 0.5);
}

void set_gfx(Acc& a, std::string_view v) {
  if (missing(v)) return;
  bool changed = false;
  std::string g = normalize_gfx(v, &changed);
  if (!starts_with(g, "gfx")) return;
  if (changed)
    a.obs.notes.push_back("rocm-smi printed gfx target '" + quote_first_line(v) +
                          "' (decimal stepping); read as " + g);
  a.obs.f.compute_capability = g;
}

void add_pcie(Acc& a, std::string_view v) {
  auto p = parse_pcie_level(v);
  if (!p) return;
  a.pcie_gen = std::max(a.pcie_gen, p->first);
  a.pcie_width = std::max(a.pcie_width, p->second);
}

// One "key: value" of a card, from JSON, CSV or the "GPU[N] : key: value" lines.
void apply_key(Acc& a, std::string_view raw_key, std::string_view value) {
  std::string k = norm_key(raw_key);
  value = trim(value);
  if (k.empty()) return;
  if (k == "card series" || k == "card serie") {
    set_name(a, value, 3);
  } else if (k == "device name" || k == "market name" || k == "marketing name" ||
             k == "product name") {
    set_name(a, value, 2);
  } else if (k == "device id" || k == "gpu id") {
    set_device_id(a, value);
  } else if (k == "pci bus" || k == "pci bus id" || k == "bus") {
    set_bus(a, value);
  } else if (k == "vram total memory (b)") {
    if (auto b = parse_int(value); b && *b >= 0) {
      a.vram_total_b = static_cast<uint64_t>(*b);
      a.obs.f.vram_total_mb = bytes_to_mib(*a.vram_total_b);
    }
  } else if (k == "vram total used memory (b)") {
    if (auto b = parse_int(value); b && *b >= 0) {
      a.vram_used_b = static_cast<uint64_t>(*b);
      a.obs.f.vram_used_mb = bytes_to_mib(*a.vram_used_b);
    }
  } else if (starts_with(k, "temperature")) {
    if (contains(k, "edge")) {
      set_temp(a, value, 3);
    } else if (contains(k, "junction") || contains(k, "hotspot")) {
      set_temp(a, value, 2);
    } else if (k == "temperature" || k == "temperature (c)") {
      set_temp(a, value, 1);
    }
  } else if (contains(k, "package power") && !contains(k, "max")) {
    set_draw(a, value, contains(k, "current") ? 2 : 1);
  } else if (k == "max graphics package power (w)" || k == "power cap (w)" || k == "power cap") {
    set_cap(a, value);
  } else if (k == "gpu use (%)") {
    set_util(a, value);
  } else if (k == "gfx version") {
    set_gfx(a, value);
  } else if (k == "(topology) numa node" || k == "numa node") {
    if (auto n = parse_int(value); n && *n >= 0 && *n < 65536)
      a.obs.f.numa_node = static_cast<int>(*n);
  } else if (k == "card vendor") {
    if (!missing(value) && !icontains(value, "advanced micro") && !icontains(value, "amd") &&
        !icontains(value, "ati"))
      a.obs.notes.push_back("card vendor reads '" + quote_first_line(value) + "'");
  } else if (k == "driver version") {
    if (!missing(value)) a.obs.f.driver_version = std::string(value);
  } else if (k == "valid sclk range") {
    // "139Mhz - 2100Mhz": the top of the range is the max graphics clock.
    size_t dash = value.rfind('-');
    auto hi = leading_number(dash == std::string_view::npos ? value : value.substr(dash + 1));
    if (hi && *hi > 0 && *hi < 100000) a.obs.f.clock_mhz = static_cast<int>(*hi);
  } else if (k == "pcie clock level" || all_digits(k)) {
    add_pcie(a, value);  // current level, or one of the supported levels
  }
}

Acc& device(Devices& devs, int index) {
  auto it = devs.find(index);
  if (it != devs.end()) return it->second;
  Acc& a = devs[index];
  a.obs.f.tool_index = index;
  return a;
}

// Turns the accumulated devices into observations, filling the facts implied by rocm-smi itself.
void finish(Devices& devs, const std::optional<std::string>& driver, ParseResult& r) {
  for (auto& [idx, a] : devs) {
    GpuFields& f = a.obs.f;
    f.vendor = "amd";  // rocm-smi only enumerates devices bound to amdgpu
    f.kernel_driver = "amdgpu";
    // amdgpu binds only PCI vendor 0x1002 devices, so a device id read here is an AMD one.
    if (f.pci_device_id && !f.pci_vendor_id) f.pci_vendor_id = 0x1002;
    if (!f.driver_version && driver) f.driver_version = driver;
    if (a.pcie_gen > 0) f.pcie_gen = a.pcie_gen;
    if (a.pcie_width > 0) f.pcie_width = a.pcie_width;
    if (a.vram_total_b && a.vram_used_b) {
      if (*a.vram_used_b <= *a.vram_total_b)
        f.vram_free_mb = bytes_to_mib(*a.vram_total_b - *a.vram_used_b);
      else
        a.obs.notes.push_back("VRAM used exceeds VRAM total; free VRAM unknown");
    }
    r.devices.push_back(std::move(a.obs));
  }
}

// Text that carries no device data: an error, a "no GPU" answer, or something else entirely.
void classify_no_data(std::string_view text, std::string_view what, ParseResult& r) {
  std::string error, nogpu;
  // Error answers are short: look at the first lines only (bounded work on huge junk).
  size_t start = 0;
  for (int n = 0; start < text.size() && n < 400; ++n) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view t = strip_banner(text.substr(start, std::min<size_t>(end - start, 4096)));
    start = end + 1;
    if (t.empty()) continue;
    std::string l = to_lower(t);
    if (error.empty() && (starts_with(t, "ERROR") || contains(l, "driver not initialized") ||
                          contains(l, "amdgpu not found") || contains(l, "rsmi_init") ||
                          contains(l, "permission denied") || contains(l, "traceback")))
      error = quote_first_line(t);
    if (nogpu.empty() && (contains(l, "no amd gpus") || contains(l, "no gpus found") ||
                          contains(l, "no gpu devices")))
      nogpu = quote_first_line(t);
  }
  if (!error.empty()) {
    r.recognized = false;
    r.notes.push_back("rocm-smi reported: " + error);
    if (!nogpu.empty()) r.notes.push_back("rocm-smi reported: " + nogpu);
    return;
  }
  if (!nogpu.empty()) {
    r.recognized = true;
    r.notes.push_back("rocm-smi reported: " + nogpu + " (no AMD GPU visible to rocm-smi)");
    return;
  }
  r.recognized = false;
  if (trim(text).empty()) {
    r.notes.push_back("output is empty");
  } else {
    r.notes.push_back("not " + std::string(what) + ": starts with '" + quote_first_line(text) +
                      "'");
  }
}

// ---------------------------------------------------------------------------------------------
// JSON

std::optional<int> card_index(std::string_view key) {
  std::string k = to_lower(trim(key));
  if (!starts_with(k, "card")) return std::nullopt;
  std::string_view n = std::string_view(k).substr(4);
  if (!all_digits(n) || n.size() > 6) return std::nullopt;
  return static_cast<int>(*parse_int(n));
}

using amd::json_scalar;

// Reads a truncated or slightly malformed rocm-smi JSON document: it is always
// {"cardN": {"key": "value", ...}, "system": {...}}, so a token scan recovers what is there.
void lenient_scan(std::string_view s, Devices& devs, std::optional<std::string>& driver) {
  int depth = 0;
  int card = -1;  // -1: not inside a cardN object (plain int: GCC 12 -O2 false positive)
  bool system = false;
  std::string key, pending;
  bool have_key = false, after_colon = false;
  auto read_string = [&](size_t& i) {
    std::string out;
    for (++i; i < s.size(); ++i) {
      char c = s[i];
      if (c == '\\' && i + 1 < s.size()) {
        out += s[++i];
      } else if (c == '"') {
        break;
      } else {
        out += c;
      }
    }
    return out;
  };
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (std::isspace(static_cast<unsigned char>(c)) || c == ',') {
      if (c == ',') have_key = after_colon = false;
      continue;
    }
    if (c == '{' || c == '[') {
      ++depth;
      if (depth == 2 && have_key && after_colon) {
        card = card_index(key).value_or(-1);
        system = to_lower(key) == "system";
      }
      have_key = after_colon = false;
    } else if (c == '}' || c == ']') {
      if (depth == 2) {
        card = -1;
        system = false;
      }
      if (depth > 0) --depth;
      have_key = after_colon = false;
    } else if (c == ':') {
      after_colon = have_key;
    } else {
      std::string tok;
      if (c == '"') {
        tok = read_string(i);
      } else {
        size_t e = i;
        while (e < s.size() && !std::strchr(",:{}[] \t\r\n\"", s[e])) ++e;
        tok = std::string(s.substr(i, e - i));
        i = e == i ? i : e - 1;
      }
      if (!have_key) {
        key = tok;
        have_key = true;
        after_colon = false;
      } else if (after_colon) {
        if (depth == 2 && card >= 0) apply_key(device(devs, card), key, tok);
        if (depth == 2 && system && norm_key(key) == "driver version" && !missing(tok))
          driver = tok;
        have_key = after_colon = false;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Concise tables

struct Token {
  std::string_view text;
  size_t col;  // code-point column
};

// Splits on runs of 2+ blanks (or a tab); "0x75a0,   24959" stays one token.
std::vector<Token> split_columns(std::string_view line) {
  std::vector<Token> out;
  size_t i = 0, col = 0;
  auto advance = [&](size_t n) {
    for (size_t k = 0; k < n && i < line.size(); ++k, ++i)
      if ((static_cast<unsigned char>(line[i]) & 0xc0) != 0x80) ++col;
  };
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) advance(1);
    if (i >= line.size()) break;
    size_t b = i, bcol = col;
    while (i < line.size()) {
      if (line[i] == '\t') break;
      if (line[i] == ' ' && (i + 1 >= line.size() || line[i + 1] == ' ' || line[i + 1] == '\t'))
        break;
      advance(1);
    }
    std::string_view t = line.substr(b, i - b);
    if (!out.empty() && ends_with(out.back().text, ",")) {
      // Join "0x75a0," with "24959".
      const char* start = out.back().text.data();
      out.back().text = std::string_view(start, static_cast<size_t>(t.data() + t.size() - start));
    } else {
      out.push_back({t, bcol});
    }
  }
  return out;
}

enum class Col { ignore, index, devid, temp, draw, cap, util, bus, gfx, name };

Col column_kind(std::string_view header, bool first) {
  std::string h = to_lower(trim(header));
  if (first && (h == "device" || h == "gpu")) return Col::index;
  if (starts_with(h, "[model") || h == "ids" || starts_with(h, "ids ") || h == "did" ||
      h == "device id")
    return Col::devid;
  if (starts_with(h, "temp")) return Col::temp;
  if (h == "power" || starts_with(h, "avgpwr") || starts_with(h, "power (") || h == "avg pwr")
    return Col::draw;
  if (h == "pwrcap" || h == "pwr cap" || h == "power cap") return Col::cap;
  if (h == "gpu%" || h == "gpu use") return Col::util;
  if (h == "bus" || h == "pci bus") return Col::bus;
  if (h == "gfx ver" || h == "gfx version") return Col::gfx;
  if (h == "name") return Col::name;
  return Col::ignore;
}

void apply_cell(Acc& a, Col kind, std::string_view v) {
  v = trim(v);
  if (kind != Col::devid && missing(v)) return;  // "[0x74a1 : 0x00]" is bracketed but no marker
  switch (kind) {
    case Col::devid: {
      size_t x = v.find("0x");
      if (x == std::string_view::npos) return;
      size_t e = x + 2;
      while (e < v.size() && std::isxdigit(static_cast<unsigned char>(v[e]))) ++e;
      set_device_id(a, v.substr(x, e - x));
      break;
    }
    case Col::temp:
      set_temp(a, v, 2);
      break;
    case Col::draw:
      set_draw(a, v, 1);
      break;
    case Col::cap:
      set_cap(a, v);
      break;
    case Col::util:
      set_util(a, v);
      break;
    case Col::bus:
      set_bus(a, v);
      break;
    case Col::gfx:
      set_gfx(a, v);
      break;
    case Col::name:
      set_name(a, v, 1);
      break;
    default:
      break;
  }
}

// A concise table header: first column "Device"/"GPU", at least one other known column.
std::optional<std::vector<Token>> table_header(std::string_view line) {
  std::string_view t = trim(line);
  if (!starts_with(t, "Device") && !starts_with(t, "GPU") && !starts_with(t, "device") &&
      !starts_with(t, "gpu"))
    return std::nullopt;
  std::vector<Token> toks = split_columns(line);
  if (toks.size() < 3) return std::nullopt;
  if (column_kind(toks[0].text, true) != Col::index) return std::nullopt;
  int known = 0;
  for (size_t i = 1; i < toks.size(); ++i)
    if (column_kind(toks[i].text, false) != Col::ignore) ++known;
  if (known == 0) return std::nullopt;
  return toks;
}

// Parses every concise table in the text. Returns the number of data rows read.
int parse_tables(const std::vector<std::string_view>& lines, Devices& devs, ParseResult& r) {
  int rows_total = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    auto header = table_header(lines[i]);
    if (!header) continue;
    std::vector<Col> kinds;
    for (size_t c = 0; c < header->size(); ++c)
      kinds.push_back(column_kind((*header)[c].text, c == 0));
    Acc* last = nullptr;
    int rows = 0;
    bool names_expected = false;  // a "Name (20 chars)" sub-header announces name lines
    size_t j = i + 1;
    for (; j < lines.size(); ++j) {
      std::string_view line = lines[j];
      if (is_separator(line)) {
        if (rows > 0) break;
        continue;
      }
      if (rows == 0 && icontains(line, "name") && !parse_int(split_columns(line).front().text)) {
        names_expected = true;
        continue;
      }
      if (table_header(line)) {
        --j;
        break;
      }
      std::string_view t = trim(line);
      if (t.empty() || starts_with(t, "GPU[") || icontains(t, "End of ROCm SMI Log")) continue;
      std::vector<Token> toks = split_columns(line);
      if (toks.empty()) continue;
      auto idx = parse_int(toks[0].text);
      if (idx && *idx >= 0 && *idx < 100000 && toks.size() >= 2) {
        Acc& a = device(devs, static_cast<int>(*idx));
        last = &a;
        ++rows;
        if (toks.size() == header->size()) {
          for (size_t c = 1; c < toks.size(); ++c) apply_cell(a, kinds[c], toks[c].text);
        } else {
          // Column count differs (a cell with single spaces, an unexpected layout): place each
          // value under the header that starts at or just before it.
          for (size_t c = 1; c < toks.size(); ++c) {
            size_t best = 0;
            for (size_t h = 0; h < header->size(); ++h)
              if ((*header)[h].col <= toks[c].col + 2) best = h;
            if (best > 0) apply_cell(a, kinds[best], toks[c].text);
          }
        }
        continue;
      }
      // A line under a device row holding only a name ("Name (20 chars)" layouts).
      if (names_expected && last && toks.size() == 1 && t.front() != '(' &&
          std::isspace(static_cast<unsigned char>(line.front())) && !parse_double(t)) {
        set_name(*last, t, 1);
        if (t.size() == 20)
          last->obs.notes.push_back(
              "name '" + std::string(t) +
              "' comes from rocm-smi's 20-character name column and may be truncated");
        last = nullptr;
      }
    }
    rows_total += rows;
    if (rows == 0) r.notes.push_back("rocm-smi table header found but no device rows under it");
    i = j < i ? i : j;
  }
  return rows_total;
}

// ---------------------------------------------------------------------------------------------
// CSV (`rocm-smi ... --csv`)

std::vector<std::string> split_csv(std::string_view line) {
  std::vector<std::string> out(1);
  bool q = false;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (q) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        out.back() += '"';
        ++i;
      } else if (c == '"') {
        q = false;
      } else {
        out.back() += c;
      }
    } else if (c == '"') {
      q = true;
    } else if (c == ',') {
      out.emplace_back();
    } else {
      out.back() += c;
    }
  }
  return out;
}

int parse_csv(const std::vector<std::string_view>& lines, Devices& devs) {
  std::vector<std::string> header;
  int rows = 0;
  for (std::string_view line : lines) {
    std::string_view t = trim(line);
    if (t.empty()) continue;
    if (starts_with(to_lower(t.substr(0, 7)), "device,")) {
      header = split_csv(t);
      continue;
    }
    if (header.empty()) continue;
    std::vector<std::string> cells = split_csv(t);
    auto idx = card_index(cells[0]);
    if (!idx) continue;
    Acc& a = device(devs, *idx);
    ++rows;
    for (size_t c = 1; c < cells.size() && c < header.size(); ++c)
      apply_key(a, header[c], cells[c]);
  }
  return rows;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

namespace {

ParseResult parse_rocm_smi_json_unguarded(std::string_view text) {
  ParseResult r;
  if (reject_empty(text, r)) return r;
  size_t b = text.find('{');
  if (b == std::string_view::npos) {
    classify_no_data(text, "rocm-smi JSON output", r);
    return r;
  }
  std::string_view body = text.substr(b);
  if (!trim(text.substr(0, b)).empty())
    r.notes.push_back("text before the JSON document: '" + quote_first_line(text.substr(0, b)) +
                      "'");
  if (amd::reject_too_deep(body, "rocm-smi", r)) return r;
  nlohmann::json j = parse_json_tolerant(body, "}");
  Devices devs;
  std::optional<std::string> driver;
  if (j.is_discarded()) {
    lenient_scan(body, devs, driver);
    if (devs.empty()) {
      classify_no_data(text, "rocm-smi JSON output", r);
      if (!r.recognized) r.notes.push_back("the JSON document does not parse");
      return r;
    }
    r.notes.push_back("rocm-smi JSON is truncated or malformed; read " +
                      std::to_string(devs.size()) + " card(s) from what is there");
    finish(devs, driver, r);
    return r;
  }
  if (!j.is_object()) {
    r.recognized = false;
    r.notes.push_back("JSON top level is not an object: not rocm-smi --json output");
    return r;
  }
  bool system = false;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    if (auto idx = card_index(key)) {
      Acc& a = device(devs, *idx);
      if (!it->is_object()) continue;
      for (auto kv = it->begin(); kv != it->end(); ++kv) {
        std::string v = json_scalar(*kv);
        if (!v.empty()) apply_key(a, kv.key(), v);
      }
    } else if (to_lower(key) == "system" && it->is_object()) {
      system = true;
      for (auto kv = it->begin(); kv != it->end(); ++kv) {
        if (norm_key(kv.key()) != "driver version") continue;
        std::string v = json_scalar(*kv);
        if (!missing(v)) driver = std::string(trim(v));
      }
    }
  }
  if (devs.empty()) {
    if (j.empty() || system) {
      r.notes.push_back("rocm-smi JSON lists no cards");
    } else {
      r.recognized = false;
      r.notes.push_back("JSON object has no \"cardN\" entries: not rocm-smi --json output");
    }
    return r;
  }
  finish(devs, driver, r);
  return r;
}

}  // namespace

ParseResult parse_rocm_smi_json(std::string_view text) {
  return guarded_parse("rocm-smi JSON", parse_rocm_smi_json_unguarded, text);
}

namespace {

ParseResult parse_rocm_smi_text_unguarded(std::string_view text) {
  ParseResult r;
  std::string_view t = trim(text);
  if (reject_empty(t, r)) return r;
  if (t.front() == '{') return parse_rocm_smi_json(text);
  std::vector<std::string_view> lines = split_lines(text);
  Devices devs;
  std::optional<std::string> driver;
  // "GPU[0]		: Card series: 		Navi 22 ..." and "Driver version: 6.7.0".
  for (std::string_view line : lines) {
    std::string_view l = trim(line);
    if (starts_with(l, "GPU[")) {
      size_t close = l.find(']');
      if (close == std::string_view::npos) continue;
      auto idx = parse_int(l.substr(4, close - 4));
      if (!idx || *idx < 0 || *idx >= 100000) continue;
      std::string_view rest = trim(l.substr(close + 1));
      if (!starts_with(rest, ":")) continue;
      rest = trim(rest.substr(1));
      size_t colon = rest.find(':');
      if (colon == std::string_view::npos) continue;
      std::string_view key = rest.substr(0, colon);
      if (starts_with(to_lower(trim(key)), "warning") || starts_with(to_lower(trim(key)), "error"))
        continue;
      apply_key(device(devs, static_cast<int>(*idx)), key, rest.substr(colon + 1));
    } else if (starts_with(to_lower(l.substr(0, 15)), "driver version")) {
      size_t colon = l.find(':');
      if (colon != std::string_view::npos && !missing(l.substr(colon + 1)))
        driver = std::string(trim(l.substr(colon + 1)));
    }
  }
  parse_tables(lines, devs, r);
  parse_csv(lines, devs);
  if (devs.empty()) {
    classify_no_data(text, "rocm-smi output", r);
    return r;
  }
  finish(devs, driver, r);
  return r;
}

}  // namespace

ParseResult parse_rocm_smi_text(std::string_view text) {
  return guarded_parse("rocm-smi output", parse_rocm_smi_text_unguarded, text);
}

}  // namespace grey
