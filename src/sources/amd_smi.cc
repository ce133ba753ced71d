// amd-smi parsers: `amd-smi static --json` (and `list`/`metric` --json, whose per-GPU objects
// share the layout), and the text forms `amd-smi list`, `amd-smi static`, `amd-smi metric`
// (indented "KEY: value" sections under "GPU: N") and the `amd-smi monitor` table.
//
// JSON and text are reduced to the same thing: (section path, value) pairs per GPU, such as
// ("asic", "market_name") = "AMD Instinct MI300X" or ("limit", "ppt0", "socket_power_limit") =
// "750 W", so one mapping serves every form and the key names of several amd-smi releases.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sources/amd_common.h"
#include "sources/parse_common.h"
#include "sources/parsers.h"
#include "util/strings.h"

namespace grey {
namespace {

using amd::normalize_gfx;
using Path = std::vector<std::string>;

bool missing(std::string_view v) {
  v = trim(v);
  return is_missing_marker(v) || starts_with(v, "AMDSMI_STATUS") || icontains(v, "not supported") ||
         starts_with(v, "N/A");
}

// ---------------------------------------------------------------------------------------------

struct Acc {
  Observation obs;
  int name_prio = 0;
  int temp_prio = 0;
  int gen_prio = 0;
  int slowdown_prio = 0;
  int shutdown_prio = 0;
  int clock = 0;
  bool fragment = false;
};

std::optional<double> number(std::string_view v) {
  if (missing(v)) return std::nullopt;
  return leading_number(v);
}

void set_name(Acc& a, std::string_view v, int prio) {
  v = trim(v);
  if (missing(v) || prio <= a.name_prio) return;
  a.obs.f.model = std::string(v);
  a.name_prio = prio;
}

std::optional<uint32_t> hex_id(Acc& a, std::string_view v, const char* what) {
  v = trim(v);
  if (missing(v)) return std::nullopt;
  auto id = parse_hex(v);
  if (!id || *id > 0xffff) {
    a.obs.notes.push_back(std::string(what) + " '" + quote_first_line(v) +
                          "' is not a 16-bit hex id; ignored");
    return std::nullopt;
  }
  return static_cast<uint32_t>(*id);
}

void set_bus(Acc& a, std::string_view v) {
  if (missing(v)) return;
  auto b = normalize_bus_id(v);
  if (!b) {
    a.obs.notes.push_back("BDF '" + quote_first_line(v) + "' is not a PCI address; ignored");
    return;
  }
  a.obs.f.bus_id = *b;
}

void set_temp_limit(std::optional<int>& field, int& prio_slot, std::string_view v, int prio) {
  auto t = number(v);
  if (!t || *t <= 0 || *t > 300 || prio <= prio_slot) return;
  field = static_cast<int>(*t);
  prio_slot = prio;
}

void set_watts(Acc& a, std::optional<double>& field, std::string_view v, bool positive,
               const char* what) {
  auto w = number(v);
  if (!w || *w < 0 || *w > 100000) return;
  if (positive && *w <= 0) {
    a.obs.notes.push_back(std::string(what) + " reads '" + quote_first_line(v) + "'; ignored");
    return;
  }
  field = *w;
}

void set_mib(std::optional<int64_t>& field, std::string_view v) {
  if (missing(v)) return;
  auto m = memory_to_mib(v);
  if (m && *m >= 0) field = *m;
}

// "Linuxversion6.14.0-24-generic(buildd@...)..." (some amd-smi builds print /proc/version with
// the blanks squeezed out as the driver version): keep the kernel release.
std::string clean_driver_version(Acc& a, std::string_view v) {
  v = trim(v);
  std::string l = to_lower(v.substr(0, 16));
  size_t skip = starts_with(l, "linux version") ? 13 : starts_with(l, "linuxversion") ? 12 : 0;
  if (skip == 0) return std::string(v);
  std::string_view rest = trim(v.substr(skip));
  size_t e = 0;
  while (e < rest.size() && rest[e] != '(' && !std::isspace(static_cast<unsigned char>(rest[e])))
    ++e;
  std::string out(rest.substr(0, e));
  a.obs.notes.push_back("driver version printed as the kernel banner '" +
                        quote_first_line(v.substr(0, 60)) + "...'; kept the kernel release " + out);
  return out;
}

// One (path, value) pair of one GPU. Path elements are lower case.
void apply(Acc& a, const Path& p, std::string_view v) {
  if (p.empty()) return;
  v = trim(v);
  GpuFields& f = a.obs.f;
  const std::string& leaf = p.back();
  const std::string section = p.size() >= 2 ? p[0] : "";
  if (p.size() == 1) {
    if (leaf == "gpu") {
      if (auto i = parse_int(v); i && *i >= 0 && *i < 100000) f.tool_index = static_cast<int>(*i);
    } else if (leaf == "bdf" || leaf == "pci_bdf") {
      set_bus(a, v);
    } else if (leaf == "uuid") {
      if (!missing(v)) f.uuid = std::string(v);
    } else if (leaf == "market_name") {
      set_name(a, v, 3);
    }
    return;
  }
  if (section == "asic") {
    if (leaf == "market_name") {
      set_name(a, v, 3);
    } else if (leaf == "vendor_id") {
      if (auto id = hex_id(a, v, "vendor id")) f.pci_vendor_id = *id;
    } else if (leaf == "vendor_name") {
      if (!missing(v) && !icontains(v, "advanced micro") && !icontains(v, "amd"))
        a.obs.notes.push_back("vendor name reads '" + quote_first_line(v) + "'");
    } else if (leaf == "device_id") {
      if (auto id = hex_id(a, v, "pci device id")) f.pci_device_id = *id;
    } else if (leaf == "num_compute_units") {
      if (auto n = parse_int(v); n && *n > 0 && *n < 1000000) f.num_sm = static_cast<int>(*n);
    } else if (leaf == "target_graphics_version") {
      if (missing(v)) return;
      bool changed = false;
      std::string g = normalize_gfx(v, &changed);
      if (!starts_with(g, "gfx")) return;
      if (changed) a.obs.notes.push_back("gfx target '" + quote_first_line(v) + "' read as " + g);
      f.compute_capability = g;
    } else if (leaf == "bdf" || leaf == "pci_bdf") {
      set_bus(a, v);
    }
  } else if (section == "board") {
    if (leaf == "product_name") set_name(a, v, 2);
  } else if (section == "bus") {
    if (leaf == "bdf") {
      set_bus(a, v);
    } else if (leaf == "max_pcie_width" || leaf == "max_pcie_lanes") {
      if (auto w = parse_int(v); w && *w > 0 && *w <= 64) f.pcie_width = static_cast<int>(*w);
    } else if (leaf == "max_pcie_speed") {
      // "32 GT/s", {"value": 16, "unit": "GT/s"}, or a rate in MT/s ("16000 MT/s").
      std::optional<int> g;
      if (!missing(v)) {
        auto n = leading_number(v);
        if (n && icontains(v, "MT/s")) {
          char buf[32];
          std::snprintf(buf, sizeof buf, "%g GT/s", *n / 1000.0);
          g = pcie_gen_from_speed(buf);
        } else {
          g = pcie_gen_from_speed(v);
        }
      }
      if (g && a.gen_prio < 2) {
        f.pcie_gen = *g;
        a.gen_prio = 2;
      }
    } else if (leaf == "pcie_interface_version") {
      // "Gen 5"
      std::string l = to_lower(v);
      size_t g = l.find("gen");
      if (g == std::string::npos || a.gen_prio >= 1) return;
      if (auto n = leading_number(std::string_view(l).substr(g + 3)); n && *n >= 1 && *n <= 9) {
        f.pcie_gen = static_cast<int>(*n);
        a.gen_prio = 1;
      }
    }
  } else if (section == "vram") {
    if (leaf == "size" || leaf == "vram_size" || leaf == "vram_size_mb") {
      set_mib(f.vram_total_mb, v);
    } else if (leaf == "bit_width") {
      if (auto w = parse_int(v); w && *w > 0 && *w <= 65536)
        f.memory_bus_width = static_cast<int>(*w);
    }
  } else if (section == "driver") {
    if (leaf == "name" || leaf == "driver_name") {
      if (!missing(v)) f.kernel_driver = to_lower(v);
    } else if (leaf == "version" || leaf == "driver_version") {
      if (!missing(v)) f.driver_version = clean_driver_version(a, v);
    }
  } else if (section == "limit") {
    // Newer releases nest the power limits per PPT ("limit.ppt0.socket_power_limit"); keep ppt0.
    if (p.size() == 3 && p[1] != "ppt0") return;
    if (leaf == "max_power" || leaf == "max_power_limit") {
      set_watts(a, f.power_limit_max_w, v, true, "max power limit");
    } else if (leaf == "min_power" || leaf == "min_power_limit") {
      set_watts(a, f.power_limit_min_w, v, false, "min power limit");
    } else if (leaf == "socket_power" || leaf == "socket_power_limit" || leaf == "current_power" ||
               leaf == "power_cap") {
      set_watts(a, f.power_limit_w, v, true, "power limit");
    } else if (leaf == "default_power" || leaf == "default_power_limit") {
      set_watts(a, f.power_limit_default_w, v, true, "default power limit");
    } else if (starts_with(leaf, "slowdown_") && ends_with(leaf, "_temperature")) {
      int prio = contains(leaf, "edge")                                    ? 2
                 : contains(leaf, "hotspot") || contains(leaf, "junction") ? 1
                                                                           : 0;
      if (prio > 0) set_temp_limit(f.thermal.slowdown_c, a.slowdown_prio, v, prio);
    } else if (starts_with(leaf, "shutdown_") && ends_with(leaf, "_temperature")) {
      int prio = contains(leaf, "edge")                                    ? 2
                 : contains(leaf, "hotspot") || contains(leaf, "junction") ? 1
                                                                           : 0;
      if (prio > 0) set_temp_limit(f.thermal.shutdown_c, a.shutdown_prio, v, prio);
    }
  } else if (section == "partition") {
    // "partition": {"compute_partition": "SPX", "memory_partition": "NPS1", ...} (SPEC §9);
    // newer releases call the compute one "accelerator_partition".
    std::string s(trim(v));
    bool sane = !s.empty() && s.size() <= 8 && !is_missing_marker(s) &&
                std::all_of(s.begin(), s.end(),
                            [](char c) { return std::isalnum(static_cast<unsigned char>(c)); });
    if (sane && (leaf == "compute_partition" || leaf == "accelerator_partition"))
      f.compute_partition = s;
    if (sane && leaf == "memory_partition") f.memory_partition = s;
  } else if (section == "numa") {
    if (leaf == "node" && p.size() == 2) {
      if (auto n = parse_int(v); n && *n >= 0 && *n < 65536) f.numa_node = static_cast<int>(*n);
    }
  } else if (section == "temperature") {
    int prio = leaf == "edge" ? 2 : leaf == "hotspot" || leaf == "junction" ? 1 : 0;
    auto t = number(v);
    if (prio > a.temp_prio && t && *t > -100 && *t < 300) {
      f.temperature_c = *t;
      a.temp_prio = prio;
    }
  } else if (section == "power") {
    if (leaf == "socket_power" || leaf == "average_socket_power" ||
        leaf == "current_socket_power") {
      if (auto w = number(v);
          w && *w >= 0 && *w < 100000 && (!f.power_draw_w || leaf == "socket_power"))
        f.power_draw_w = *w;
    }
  } else if (section == "usage") {
    if (leaf == "gfx_activity") {
      if (auto u = number(v); u && *u >= 0 && *u <= 100)
        f.utilization_pct = static_cast<int>(*u + 0.5);
    }
  } else if (section == "mem_usage") {
    if (leaf == "total_vram") {
      if (!f.vram_total_mb) set_mib(f.vram_total_mb, v);
    } else if (leaf == "used_vram") {
      set_mib(f.vram_used_mb, v);
    } else if (leaf == "free_vram") {
      set_mib(f.vram_free_mb, v);
    }
  } else if (section == "clock") {
    // metric: clock.gfx_0.max_clk; static: clock.sys.frequency_levels.level_2
    bool gfx_max = starts_with(p[1], "gfx") && leaf == "max_clk";
    bool sys_level = p[1] == "sys" && p.size() == 4 && p[2] == "frequency_levels";
    if (gfx_max || sys_level) {
      if (auto c = number(v); c && *c > 0 && *c < 100000)
        a.clock = std::max(a.clock, static_cast<int>(*c));
    }
  }
}

void finish_device(Acc& a, bool defaults) {
  GpuFields& f = a.obs.f;
  if (defaults) {
    if (f.pci_vendor_id) {
      f.vendor = vendor_from_pci_id(*f.pci_vendor_id);
    } else {
      f.vendor = "amd";  // amd-smi only reports AMD devices
      if (f.pci_device_id) f.pci_vendor_id = 0x1002;
    }
    if (!f.kernel_driver) f.kernel_driver = "amdgpu";
  }
  if (a.clock > 0) f.clock_mhz = a.clock;
  if (!f.vram_free_mb && f.vram_total_mb && f.vram_used_mb && *f.vram_used_mb <= *f.vram_total_mb)
    f.vram_free_mb = *f.vram_total_mb - *f.vram_used_mb;
}

// Error texts printed instead of data.
void classify_no_data(std::string_view text, std::string_view what, ParseResult& r) {
  std::string error;
  // Error answers are short: look at the first lines only (bounded work on huge junk).
  size_t start = 0;
  for (int n = 0; start < text.size() && n < 400; ++n) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view t = trim(text.substr(start, std::min<size_t>(end - start, 4096)));
    start = end + 1;
    if (t.empty()) continue;
    std::string l = to_lower(t);
    if (starts_with(t, "ERROR") || contains(l, "unable to detect any gpu") ||
        contains(l, "driver not initialized") || contains(t, "AMDSMI_STATUS") ||
        contains(l, "traceback") || contains(l, "permission denied")) {
      // Prefer the GPU line when amd-smi prints several.
      if (error.empty() || contains(t, "GPU")) error = quote_first_line(t);
      if (contains(t, "GPU")) break;
    }
  }
  r.recognized = false;
  if (!error.empty()) {
    r.notes.push_back("amd-smi reported: " + error);
  } else if (trim(text).empty()) {
    r.notes.push_back("output is empty");
  } else {
    r.notes.push_back("not " + std::string(what) + ": starts with '" + quote_first_line(text) +
                      "'");
  }
}

// ---------------------------------------------------------------------------------------------
// JSON

std::string json_scalar(const nlohmann::json& v) {
  if (v.is_null()) return "N/A";
  return amd::json_scalar(v);
}

// {"value": 196592, "unit": "MB"} -> "196592 MB".
std::optional<std::string> value_unit(const nlohmann::json& v) {
  if (!v.is_object() || !v.contains("value")) return std::nullopt;
  if (v.size() > 2 || (v.size() == 2 && !v.contains("unit"))) return std::nullopt;
  std::string s = json_scalar(v["value"]);
  if (s.empty()) return std::nullopt;
  if (v.contains("unit") && v["unit"].is_string() && !missing(s))
    s += " " + v["unit"].get<std::string>();
  return s;
}

void walk(Acc& a, const nlohmann::json& v, Path& path, size_t depth) {
  if (depth > 8) return;
  if (v.is_object()) {
    if (auto s = value_unit(v)) {
      apply(a, path, *s);
      return;
    }
    for (auto it = v.begin(); it != v.end(); ++it) {
      path.push_back(to_lower(it.key()));
      walk(a, *it, path, depth + 1);
      path.pop_back();
    }
  } else if (!v.is_array()) {
    std::string s = json_scalar(v);
    if (!s.empty()) apply(a, path, s);
  }
}

const char* const kGpuSections[] = {"gpu",         "asic",
                                    "bus",         "vbios",
                                    "ifwi",        "board",
                                    "limit",       "driver",
                                    "vram",        "numa",
                                    "ras",         "partition",
                                    "cache_info",  "clock",
                                    "usage",       "power",
                                    "temperature", "mem_usage",
                                    "bdf",         "uuid",
                                    "fan",         "pcie",
                                    "ecc",         "soc_pstate",
                                    "xgmi_plpd",   "process_isolation",
                                    "energy",      "throttle"};

bool looks_like_gpu(const nlohmann::json& o) {
  if (!o.is_object()) return false;
  for (auto it = o.begin(); it != o.end(); ++it)
    for (const char* s : kGpuSections)
      if (to_lower(it.key()) == s) return true;
  return false;
}

bool has_key(const nlohmann::json& o, const char* k) {
  for (auto it = o.begin(); it != o.end(); ++it)
    if (to_lower(it.key()) == k) return true;
  return false;
}

// One section object of one GPU on its own (what `jq '.[0]["vram"]'` prints): which section?
const char* fragment_section(const nlohmann::json& o) {
  if (!o.is_object() || o.empty()) return nullptr;
  if (has_key(o, "market_name") || (has_key(o, "device_id") && has_key(o, "vendor_id")))
    return "asic";
  if (has_key(o, "max_pcie_width") || has_key(o, "max_pcie_speed") ||
      has_key(o, "pcie_interface_version"))
    return "bus";
  if (has_key(o, "size") && (has_key(o, "type") || has_key(o, "vendor") || has_key(o, "bit_width")))
    return "vram";
  if (has_key(o, "slowdown_edge_temperature") || has_key(o, "max_power") || has_key(o, "ppt0"))
    return "limit";
  return nullptr;
}

}  // namespace

namespace {

ParseResult parse_amd_smi_json_unguarded(std::string_view text) {
  ParseResult r;
  if (reject_empty(text, r)) return r;
  size_t b = text.find_first_of("[{");
  if (b == std::string_view::npos) {
    classify_no_data(text, "amd-smi JSON output", r);
    return r;
  }
  std::string_view body = text.substr(b);
  if (amd::reject_too_deep(body, "amd-smi", r)) return r;
  nlohmann::json j = parse_json_tolerant(body, "]}");
  if (j.is_discarded()) {
    classify_no_data(text, "amd-smi JSON output", r);
    if (r.notes.size() == 1 && starts_with(r.notes[0], "not "))
      r.notes[0] = "amd-smi JSON does not parse (truncated or not JSON): starts with '" +
                   quote_first_line(text) + "'";
    return r;
  }
  if (b > 0 && !trim(text.substr(0, b)).empty())
    r.notes.push_back("text before the JSON document: '" + quote_first_line(text.substr(0, b)) +
                      "'");

  const nlohmann::json* list = nullptr;
  if (j.is_array()) {
    list = &j;
  } else if (j.is_object() && j.contains("gpu_data")) {
    if (!j["gpu_data"].is_array()) {
      r.recognized = false;
      r.notes.push_back("\"gpu_data\" is not an array: not amd-smi JSON");
      return r;
    }
    list = &j["gpu_data"];
  }
  if (list) {
    size_t others = 0;
    for (const auto& e : *list) {
      if (!e.is_object() ||
          (!has_key(e, "gpu") && (has_key(e, "cpu") || has_key(e, "core") || !looks_like_gpu(e)))) {
        ++others;
        continue;
      }
      Acc a;
      Path path;
      walk(a, e, path, 0);
      if (!a.obs.f.tool_index) a.obs.notes.push_back("GPU entry without a \"gpu\" index");
      finish_device(a, true);
      r.devices.push_back(std::move(a.obs));
    }
    if (r.devices.empty()) {
      if (!list->empty() && others == list->size() && !j.is_object()) {
        // An array of non-GPU things: amd-smi CPU entries, or some other tool's array.
        bool cpu = false;
        for (const auto& e : *list)
          cpu = cpu || (e.is_object() && (has_key(e, "cpu") || has_key(e, "core")));
        if (!cpu) {
          r.recognized = false;
          r.notes.push_back("JSON array entries are not amd-smi GPU objects");
          return r;
        }
      }
      r.notes.push_back("amd-smi JSON lists no GPU");
    }
    return r;
  }
  if (!j.is_object()) {
    r.recognized = false;
    r.notes.push_back("JSON top level is neither an array nor an object: not amd-smi JSON");
    return r;
  }
  if (looks_like_gpu(j)) {
    Acc a;
    Path path;
    walk(a, j, path, 0);
    if (!has_key(j, "gpu")) {
      std::string n =
          "amd-smi JSON is a single GPU object without its \"gpu\" index (a filtered fragment)";
      a.obs.notes.push_back(n);
      r.notes.push_back(n);
    }
    finish_device(a, true);
    r.devices.push_back(std::move(a.obs));
    return r;
  }
  if (const char* section = fragment_section(j)) {
    Acc a;
    Path path{section};
    walk(a, j, path, 1);
    std::string n = std::string("amd-smi JSON is a fragment: only the \"") + section +
                    "\" object of one GPU (e.g. filtered with jq); the GPU's identity is unknown";
    a.obs.notes.push_back(n);
    r.notes.push_back(n);
    finish_device(a, false);
    r.devices.push_back(std::move(a.obs));
    return r;
  }
  r.recognized = false;
  r.notes.push_back(
      "JSON object has no amd-smi GPU data (no \"gpu_data\", \"gpu\", \"asic\", ...)");
  return r;
}

}  // namespace

ParseResult parse_amd_smi_json(std::string_view text) {
  return guarded_parse("amd-smi JSON", parse_amd_smi_json_unguarded, text);
}

namespace {

// ---------------------------------------------------------------------------------------------
// Text: "GPU: N" blocks with indented "KEY: value" lines (list, static, metric, process ...).

size_t indent_of(std::string_view line) {
  size_t n = 0;
  for (char c : line) {
    if (c == ' ') {
      ++n;
    } else if (c == '\t') {
      n += 4;
    } else {
      break;
    }
  }
  return n;
}

// "GPU: 3" -> 3; "CPU: 0" -> kind 'C'.
std::optional<std::pair<char, int>> block_start(std::string_view line) {
  std::string_view t = trim(line);
  char kind = 0;
  if (starts_with(t, "GPU:"))
    kind = 'G';
  else if (starts_with(t, "CPU:"))
    kind = 'C';
  else if (starts_with(t, "NIC:"))
    kind = 'N';
  if (!kind) return std::nullopt;
  auto n = parse_int(t.substr(4));
  if (!n || *n < 0 || *n >= 100000) return std::nullopt;
  return std::make_pair(kind, static_cast<int>(*n));
}

std::string path_key(std::string_view k) {
  std::string out;
  for (char c : trim(k))
    out += c == ' ' ? '_' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

int parse_blocks(const std::vector<std::string_view>& lines, std::map<int, Acc>& devs,
                 int& other_blocks) {
  int blocks = 0;
  Acc* cur = nullptr;
  bool in_other = false;
  std::vector<std::pair<size_t, std::string>> stack;
  for (std::string_view line : lines) {
    if (auto bs = block_start(line)) {
      stack.clear();
      if (bs->first == 'G') {
        Acc& a = devs[bs->second];
        a.obs.f.tool_index = bs->second;
        cur = &a;
        in_other = false;
        ++blocks;
      } else {
        cur = nullptr;
        in_other = true;
        ++other_blocks;
      }
      continue;
    }
    if (!cur || in_other) continue;
    std::string_view t = trim(line);
    if (t.empty()) continue;
    size_t colon = t.find(':');
    if (colon == std::string_view::npos) continue;
    size_t ind = indent_of(line);
    while (!stack.empty() && stack.back().first >= ind) stack.pop_back();
    std::string key = path_key(t.substr(0, colon));
    std::string_view value = trim(t.substr(colon + 1));
    if (key.empty() || stack.size() > 8) continue;
    if (value.empty()) {
      stack.emplace_back(ind, key);
      continue;
    }
    Path p;
    for (auto& s : stack) p.push_back(s.second);
    p.push_back(key);
    apply(*cur, p, value);
  }
  return blocks;
}

// ---------------------------------------------------------------------------------------------
// `amd-smi monitor`: "GPU  POWER  GPU_TEMP ..." then rows like "  0  182 W     42 °C ...".

bool is_unit(std::string_view t) {
  static const char* const units[] = {"W",  "°C",  "C",   "%",  "MHz",  "Mhz",  "MB",   "GB",
                                      "KB", "MiB", "GiB", "B",  "Mb/s", "MB/s", "GB/s", "mV",
                                      "V",  "J",   "RPM", "ns", "ms",   "us"};
  for (const char* u : units)
    if (t == u) return true;
  return false;
}

std::vector<std::string> monitor_cells(std::string_view line) {
  std::vector<std::string> raw;
  for (std::string_view tok : split(trim(line), ' ')) {
    tok = trim(tok);
    if (!tok.empty()) raw.emplace_back(tok);
  }
  std::vector<std::string> out;
  for (auto& t : raw) {
    if (!out.empty() && (is_unit(t) || ends_with(out.back(), "/"))) {
      out.back() += (ends_with(out.back(), "/") ? "" : " ") + t;
    } else {
      out.push_back(t);
    }
  }
  return out;
}

bool monitor_header(std::string_view line, std::vector<std::string>& cols) {
  std::string_view t = trim(line);
  if (!starts_with(t, "GPU") && !starts_with(t, "TIMESTAMP")) return false;
  std::vector<std::string> toks;
  for (std::string_view tok : split(trim(line), ' ')) {
    tok = trim(tok);
    if (tok.empty()) continue;
    // Column names are upper-case identifiers: GPU, XCP, POWER, GPU_T, GFX%, VRAM_USAGE ...
    bool ident = std::all_of(tok.begin(), tok.end(), [](char c) {
      return std::isupper(static_cast<unsigned char>(c)) ||
             std::isdigit(static_cast<unsigned char>(c)) || c == '_' || c == '%';
    });
    if (!ident) return false;
    toks.emplace_back(to_lower(tok));
  }
  if (toks.size() < 2) return false;
  size_t g = toks[0] == "timestamp" ? 1 : 0;
  if (g >= toks.size() || toks[g] != "gpu" || toks.size() < g + 2) return false;
  cols = toks;
  return true;
}

void apply_monitor_cell(Acc& a, const std::string& col, const std::string& v) {
  if (missing(v)) return;
  GpuFields& f = a.obs.f;
  if (col == "power" || col == "socket_power") {
    if (auto w = leading_number(v); w && *w >= 0 && *w < 100000) f.power_draw_w = *w;
  } else if (col == "pwr_cap" || col == "power_cap") {
    if (auto w = leading_number(v); w && *w > 0 && *w < 100000) f.power_limit_w = *w;
  } else if (col == "gpu_t" || col == "gpu_temp" || col == "hotspot_temp" || col == "edge_temp") {
    if (auto t = leading_number(v); t && *t > -100 && *t < 300) f.temperature_c = *t;
  } else if (col == "gfx%" || col == "gfx_util") {
    if (auto u = leading_number(v); u && *u >= 0 && *u <= 100)
      f.utilization_pct = static_cast<int>(*u + 0.5);
  } else if (col == "vram_used") {
    set_mib(f.vram_used_mb, v);
  } else if (col == "vram_total") {
    set_mib(f.vram_total_mb, v);
  } else if (col == "vram_free") {
    set_mib(f.vram_free_mb, v);
  } else if (col == "vram_usage") {
    // "0.3/192.0 GB" or "512.0/8192.0 MB"
    size_t slash = v.find('/');
    if (slash == std::string::npos) return;
    std::string_view rest = trim(std::string_view(v).substr(slash + 1));
    auto total = memory_to_mib(rest);
    if (!total) return;
    size_t sp = rest.find(' ');
    std::string unit = sp == std::string_view::npos ? "" : std::string(rest.substr(sp));
    auto used = memory_to_mib(std::string(trim(std::string_view(v).substr(0, slash))) + unit);
    f.vram_total_mb = *total;
    if (used && *used <= *total) f.vram_used_mb = *used;
  }
}

int parse_monitor(const std::vector<std::string_view>& lines, std::map<int, Acc>& devs,
                  ParseResult& r) {
  std::vector<std::string> cols;
  int rows = 0, bad = 0;
  for (std::string_view line : lines) {
    std::vector<std::string> h;
    if (monitor_header(line, h)) {
      cols = h;
      continue;
    }
    if (cols.empty()) continue;
    std::vector<std::string> cells = monitor_cells(line);
    if (cells.empty()) continue;
    size_t gi = cols[0] == "timestamp" ? 1 : 0;
    if (cells.size() <= gi) continue;
    auto idx = parse_int(cells[gi]);
    if (!idx || *idx < 0 || *idx >= 100000) continue;
    if (cells.size() != cols.size()) {
      ++bad;
      continue;
    }
    Acc& a = devs[static_cast<int>(*idx)];
    a.obs.f.tool_index = static_cast<int>(*idx);
    ++rows;
    for (size_t c = 0; c < cols.size(); ++c) apply_monitor_cell(a, cols[c], cells[c]);
  }
  if (bad > 0)
    r.notes.push_back(std::to_string(bad) +
                      " amd-smi monitor row(s) do not match the header's columns; skipped");
  return rows;
}

}  // namespace

namespace {

ParseResult parse_amd_smi_text_unguarded(std::string_view text) {
  ParseResult r;
  std::string_view t = trim(text);
  if (reject_empty(t, r)) return r;
  if (t.front() == '{' || t.front() == '[') return parse_amd_smi_json(text);
  std::vector<std::string_view> lines = split_lines(text);
  std::map<int, Acc> devs;
  int other_blocks = 0;
  int blocks = parse_blocks(lines, devs, other_blocks);
  int rows = blocks > 0 ? 0 : parse_monitor(lines, devs, r);
  if (blocks == 0 && rows == 0) {
    if (other_blocks > 0) {
      r.notes.push_back("amd-smi listed no GPU (only CPU/NIC entries)");
      return r;
    }
    std::vector<std::string> cols;
    for (std::string_view line : lines) {
      if (monitor_header(line, cols)) {
        r.notes.push_back("amd-smi monitor table has no device rows");
        return r;
      }
    }
    classify_no_data(text, "amd-smi output", r);
    return r;
  }
  for (auto& [idx, a] : devs) {
    finish_device(a, true);
    r.devices.push_back(std::move(a.obs));
  }
  return r;
}

}  // namespace

ParseResult parse_amd_smi_text(std::string_view text) {
  return guarded_parse("amd-smi output", parse_amd_smi_text_unguarded, text);
}

}  // namespace grey
