// Parser for `clinfo` in its three output forms, detected from the text:
//   plain   "Number of platforms   1" / "  Platform Name   X" / "Number of devices  1" /
//           "  Device Name   Y" ... (keys and values separated by a run of spaces)
//   --raw   "#PLATFORMS  1" / "[POCL/*]  CL_PLATFORM_NAME  X" / "[POCL/0]  CL_DEVICE_NAME  Y"
//   --json  {"platforms":[{CL_PLATFORM_*...}], "devices":[{"online":[{CL_DEVICE_*...}]}], ...}
// All three are funnelled into one record keyed by the raw CL_* names, then turned into one
// Observation per device.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sources/parse_common.h"
#include "sources/parsers.h"
#include "util/strings.h"

namespace grey {
namespace {

constexpr size_t kMaxDevices = 256;
constexpr size_t kMaxNoteLen = 300;
constexpr size_t kMaxJsonDepth = 128;

std::string clip(std::string_view s) {
  return quote_for_note(s, kMaxNoteLen);
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// One OpenCL device as read, keyed by the raw CL_* parameter name.
struct ClDevice {
  std::string platform_name;
  int index = 0;  // within its platform
  std::map<std::string, std::string> kv;
  std::optional<unsigned> type_bits;  // CL_DEVICE_TYPE bitmask when known

  void set(const std::string& key, std::string_view value) {
    if (kv.size() > 512) return;
    if (kv.count(key)) return;  // first wins
    kv.emplace(key, std::string(trim(value)));
  }
  const std::string* get(const char* key) const {
    auto it = kv.find(key);
    if (it == kv.end()) return nullptr;
    if (is_missing_marker(it->second) || it->second == "(n/a)") return nullptr;
    return &it->second;
  }
};

// Plain (human) key -> raw CL_* name.
const std::pair<const char*, const char*> kHumanKeys[] = {
    {"Device Name", "CL_DEVICE_NAME"},
    {"Device Vendor", "CL_DEVICE_VENDOR"},
    {"Device Vendor ID", "CL_DEVICE_VENDOR_ID"},
    {"Device Version", "CL_DEVICE_VERSION"},
    {"Driver Version", "CL_DRIVER_VERSION"},
    {"Device Type", "CL_DEVICE_TYPE"},
    {"Device Board Name (AMD)", "CL_DEVICE_BOARD_NAME_AMD"},
    {"Device PCI-e ID (AMD)", "CL_DEVICE_PCIE_ID_AMD"},
    {"Device Topology (AMD)", "CL_DEVICE_TOPOLOGY_AMD"},
    {"Device Topology (NV)", "CL_DEVICE_TOPOLOGY_NV"},
    {"Device PCI bus info (KHR)", "CL_DEVICE_PCI_BUS_INFO_KHR"},
    {"Device Available", "CL_DEVICE_AVAILABLE"},
    {"Max compute units", "CL_DEVICE_MAX_COMPUTE_UNITS"},
    {"Max clock frequency", "CL_DEVICE_MAX_CLOCK_FREQUENCY"},
    {"Compute Capability (NV)", "CL_DEVICE_COMPUTE_CAPABILITY_NV"},
    {"Device ID (Intel)", "CL_DEVICE_ID_INTEL"},
    {"Global memory size", "CL_DEVICE_GLOBAL_MEM_SIZE"},
    {"Unified memory for Host and Device", "CL_DEVICE_HOST_UNIFIED_MEMORY"},
    {"Integrated memory (NV)", "CL_DEVICE_INTEGRATED_MEMORY_NV"},
};

const char* human_to_raw(std::string_view key) {
  for (const auto& [h, r] : kHumanKeys)
    if (key == h) return r;
  return nullptr;
}

// Which CL_* keys we keep from raw / JSON output.
bool wanted_raw_key(std::string_view k) {
  static const char* const kKeys[] = {
      "CL_DEVICE_NAME",
      "CL_DEVICE_VENDOR",
      "CL_DEVICE_VENDOR_ID",
      "CL_DEVICE_VERSION",
      "CL_DRIVER_VERSION",
      "CL_DEVICE_TYPE",
      "CL_DEVICE_BOARD_NAME_AMD",
      "CL_DEVICE_PCIE_ID_AMD",
      "CL_DEVICE_TOPOLOGY_AMD",
      "CL_DEVICE_PCI_BUS_ID_NV",
      "CL_DEVICE_PCI_SLOT_ID_NV",
      "CL_DEVICE_PCI_DOMAIN_ID_NV",
      "CL_DEVICE_PCI_BUS_INFO_KHR",
      "CL_DEVICE_AVAILABLE",
      "CL_DEVICE_MAX_COMPUTE_UNITS",
      "CL_DEVICE_MAX_CLOCK_FREQUENCY",
      "CL_DEVICE_COMPUTE_CAPABILITY_NV",
      "CL_DEVICE_COMPUTE_CAPABILITY_MAJOR_NV",
      "CL_DEVICE_COMPUTE_CAPABILITY_MINOR_NV",
      "CL_DEVICE_ID_INTEL",
      "CL_DEVICE_GLOBAL_MEM_SIZE",
      "CL_DEVICE_HOST_UNIFIED_MEMORY",
      "CL_DEVICE_INTEGRATED_MEMORY_NV",
  };
  for (const char* w : kKeys)
    if (k == w) return true;
  return false;
}

// Splits a clinfo text line into key and value at the first run of 2+ spaces (keys contain
// single spaces; clinfo pads them to a column). Returns false when there is no value.
bool split_padded(std::string_view t, std::string_view& key, std::string_view& value) {
  size_t pos = t.find("  ");
  if (pos == std::string_view::npos) {
    key = t;
    value = {};
    return false;
  }
  key = trim(t.substr(0, pos));
  value = trim(t.substr(pos));
  return true;
}

std::optional<uint64_t> parse_uint_token(std::string_view s) {
  s = trim(s);
  size_t i = 0;
  if (starts_with(s, "0x") || starts_with(s, "0X")) {
    i = 2;
    while (i < s.size() && std::isxdigit(static_cast<unsigned char>(s[i]))) ++i;
    if (i == 2) return std::nullopt;
    return parse_hex(s.substr(0, i));
  }
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
  if (i == 0 || i > 19) return std::nullopt;
  auto v = parse_int(s.substr(0, i));
  if (!v || *v < 0) return std::nullopt;
  return static_cast<uint64_t>(*v);
}

std::optional<bool> parse_bool(std::string_view s) {
  std::string u = upper(trim(s));
  if (u == "YES" || u == "CL_TRUE" || u == "TRUE" || u == "1") return true;
  if (u == "NO" || u == "CL_FALSE" || u == "FALSE" || u == "0") return false;
  return std::nullopt;
}

enum class ClType { unknown, gpu, cpu, accelerator, custom };

ClType type_from(const ClDevice& d) {
  if (d.type_bits) {
    unsigned b = *d.type_bits;
    if (b & 4u) return ClType::gpu;
    if (b & 2u) return ClType::cpu;
    if (b & 8u) return ClType::accelerator;
    if (b & 16u) return ClType::custom;
  }
  const std::string* t = d.get("CL_DEVICE_TYPE");
  if (!t) return ClType::unknown;
  std::string u = upper(*t);
  if (contains(u, "GPU")) return ClType::gpu;
  if (contains(u, "CPU")) return ClType::cpu;
  if (contains(u, "ACCELERATOR")) return ClType::accelerator;
  if (contains(u, "CUSTOM")) return ClType::custom;
  return ClType::unknown;
}

std::string vendor_from_name(std::string_view s) {
  std::string l = to_lower(s);
  if (contains(l, "nvidia")) return "nvidia";
  if (contains(l, "advanced micro devices") || l == "amd" || starts_with(l, "amd ")) return "amd";
  if (contains(l, "intel")) return "intel";
  return "";
}

// CL_DEVICE_TOPOLOGY_AMD holds bus, device and function as cl_char (signed): clinfo before
// its PR #4 printed a bus of 0x86 as "ffffff86:00.0". A field of the location that reads
// "ffffffXX" with XX >= 0x80 is the byte XX.
std::string undo_sign_extension(std::string_view loc) {
  std::string out;
  size_t start = 0;
  while (start <= loc.size()) {
    size_t end = loc.find_first_of(":.", start);
    if (end == std::string_view::npos) end = loc.size();
    std::string_view field = loc.substr(start, end - start);
    if (field.size() == 8 && (field.substr(0, 6) == "ffffff" || field.substr(0, 6) == "FFFFFF") &&
        std::isxdigit(static_cast<unsigned char>(field[6])) &&
        std::isxdigit(static_cast<unsigned char>(field[7])) &&
        std::string_view("89abcdefABCDEF").find(field[6]) != std::string_view::npos)
      field.remove_prefix(6);
    out.append(field);
    if (end < loc.size()) out.push_back(loc[end]);
    start = end + 1;
  }
  return out;
}

// "PCI-E, 0000:0a:00.0" / "PCI-E, 01:00.0" / "PCI-E, ffffffc1:00.0" -> normalized bus id.
std::optional<std::string> bus_from_topology(std::string_view s) {
  s = trim(s);
  size_t comma = s.rfind(',');
  if (comma != std::string_view::npos) s = trim(s.substr(comma + 1));
  if (s.empty() || s[0] == '<' || s[0] == '(') return std::nullopt;
  return normalize_bus_id(undo_sign_extension(s));
}

bool is_pocl(const ClDevice& d) {
  if (icontains(d.platform_name, "Portable Computing Language") ||
      icontains(d.platform_name, "pocl"))
    return true;
  const std::string* v = d.get("CL_DEVICE_VERSION");
  return v && icontains(*v, "pocl");
}

void finish_device(const ClDevice& d, ParseResult& out) {
  Observation o;
  GpuFields& f = o.f;
  f.tool_index = d.index;
  const ClType type = type_from(d);

  const std::string* name = d.get("CL_DEVICE_NAME");
  const std::string* board = d.get("CL_DEVICE_BOARD_NAME_AMD");
  if (board && !board->empty()) {
    f.model = *board;
  } else if (name) {
    f.model = *name;
  }
  // AMD ROCm names the device by its gfx target ("gfx1030", "gfx90a:sramecc+:xnack-").
  if (name && starts_with(*name, "gfx")) {
    std::string_view g = *name;
    g = g.substr(0, g.find(':'));
    bool ok = g.size() > 3 && g.size() <= 10;
    for (char c : g.substr(3)) ok = ok && std::isxdigit(static_cast<unsigned char>(c));
    if (ok) f.compute_capability = std::string(g);
  }

  if (const std::string* vid = d.get("CL_DEVICE_VENDOR_ID")) {
    auto v = parse_uint_token(*vid);
    if (v && *v > 0 && *v <= 0xffff) {
      f.pci_vendor_id = static_cast<uint32_t>(*v);
      f.vendor = vendor_from_pci_id(static_cast<uint32_t>(*v));
    } else if (!v) {
      o.notes.push_back("OpenCL vendor id '" + clip(*vid) + "' is not a number; ignored");
    }
  }
  if (!f.vendor || *f.vendor == "unknown") {
    const std::string* vs = d.get("CL_DEVICE_VENDOR");
    std::string v = vs ? vendor_from_name(*vs) : "";
    if (!v.empty()) f.vendor = v;
  }

  for (const char* key : {"CL_DEVICE_ID_INTEL", "CL_DEVICE_PCIE_ID_AMD"}) {
    if (f.pci_device_id) break;
    if (const std::string* s = d.get(key)) {
      auto v = parse_uint_token(*s);
      if (v && *v > 0 && *v <= 0xffff) f.pci_device_id = static_cast<uint32_t>(*v);
    }
  }

  if (const std::string* ver = d.get("CL_DEVICE_VERSION")) {
    std::string_view s = trim(*ver);
    if (starts_with(s, "OpenCL ")) {
      s.remove_prefix(7);
      std::string_view tok = s.substr(0, s.find(' '));
      auto parts = split(tok, '.');
      if (parts.size() == 2 && all_digits(parts[0]) && all_digits(parts[1]) && tok.size() <= 7)
        f.opencl_version = std::string(tok);
    }
  }

  const bool pocl = is_pocl(d);
  if (const std::string* drv = d.get("CL_DRIVER_VERSION")) {
    // NVIDIA's OpenCL driver version is the driver's own ("550.54.15"); Intel's NEO compute
    // runtime reports its release ("25.48.36300"). Others (AMD ROCm "3614.0 (HSA1.1,LC)", Mesa,
    // PoCL) report a runtime version that is not the GPU driver's.
    const std::string* dver = d.get("CL_DEVICE_VERSION");
    bool nvidia_cuda =
        f.vendor && *f.vendor == "nvidia" && !pocl && dver && contains(*dver, "CUDA");
    bool intel_neo = f.vendor && *f.vendor == "intel" && !pocl && dver && contains(*dver, "NEO");
    if ((nvidia_cuda || intel_neo) && type == ClType::gpu) {
      f.driver_version = *drv;
    } else if (type == ClType::gpu) {
      o.notes.push_back(
          "OpenCL driver version " + clip(*drv) +
          (d.platform_name.empty() ? std::string() : " (" + clip(d.platform_name) + ")") +
          " is the OpenCL runtime's version, not the GPU driver's");
    }
  }

  if (const std::string* cu = d.get("CL_DEVICE_MAX_COMPUTE_UNITS")) {
    auto v = parse_uint_token(*cu);
    if (v && *v > 0 && *v < 1000000) f.num_sm = static_cast<int>(*v);
  }
  if (const std::string* clk = d.get("CL_DEVICE_MAX_CLOCK_FREQUENCY")) {
    auto v = parse_uint_token(*clk);
    if (v && *v > 0 && *v < 100000) f.clock_mhz = static_cast<int>(*v);
  }

  // Compute capability (NVIDIA).
  if (const std::string* cc = d.get("CL_DEVICE_COMPUTE_CAPABILITY_NV")) {
    auto parts = split(trim(*cc), '.');
    if (parts.size() == 2 && all_digits(parts[0]) && all_digits(parts[1]) && parts[0].size() <= 3 &&
        parts[1].size() <= 3)
      f.compute_capability = std::string(trim(*cc));
  } else {
    const std::string* ma = d.get("CL_DEVICE_COMPUTE_CAPABILITY_MAJOR_NV");
    const std::string* mi = d.get("CL_DEVICE_COMPUTE_CAPABILITY_MINOR_NV");
    if (ma && mi && all_digits(*ma) && all_digits(*mi) && ma->size() <= 3 && mi->size() <= 3)
      f.compute_capability = *ma + "." + *mi;
  }

  // PCI location.
  for (const char* key : {"CL_DEVICE_PCI_BUS_INFO_KHR", "CL_DEVICE_TOPOLOGY_NV",
                          "CL_DEVICE_TOPOLOGY_AMD", "CL_DEVICE_PCI_BUS_ID_NV"}) {
    if (f.bus_id) break;
    const std::string* s = d.get(key);
    if (!s) continue;
    if (contains(*s, ":")) {
      if (auto b = bus_from_topology(*s))
        f.bus_id = *b;
      else
        o.notes.push_back(std::string(key) + " '" + clip(*s) + "' is not a PCI address; ignored");
    }
  }
  if (!f.bus_id) {
    // --raw of older clinfo: CL_DEVICE_PCI_BUS_ID_NV / _SLOT_ID_NV / _DOMAIN_ID_NV as integers.
    const std::string* bus = d.get("CL_DEVICE_PCI_BUS_ID_NV");
    const std::string* slot = d.get("CL_DEVICE_PCI_SLOT_ID_NV");
    const std::string* dom = d.get("CL_DEVICE_PCI_DOMAIN_ID_NV");
    if (bus && slot && all_digits(*bus) && all_digits(*slot) && bus->size() <= 6 &&
        slot->size() <= 6) {
      uint64_t b = *parse_uint_token(*bus), s = *parse_uint_token(*slot);
      uint64_t dm = 0;
      if (dom && all_digits(*dom) && dom->size() <= 6) dm = *parse_uint_token(*dom);
      char buf[64];
      std::snprintf(buf, sizeof buf, "%llx:%llx:%llx.%llx", static_cast<unsigned long long>(dm),
                    static_cast<unsigned long long>(b & 0xff),
                    static_cast<unsigned long long>((s >> 3) & 0xff),
                    static_cast<unsigned long long>(s & 7));
      if (auto n = normalize_bus_id(buf)) f.bus_id = *n;
    }
  }

  // Memory: global memory of a GPU is its VRAM, unless host and device share memory.
  std::optional<bool> unified;
  if (const std::string* u = d.get("CL_DEVICE_HOST_UNIFIED_MEMORY")) unified = parse_bool(*u);
  if (const std::string* u = d.get("CL_DEVICE_INTEGRATED_MEMORY_NV")) {
    auto b = parse_bool(*u);
    if (b && *b) unified = true;
  }
  if (const std::string* gm = d.get("CL_DEVICE_GLOBAL_MEM_SIZE")) {
    auto bytes = parse_uint_token(*gm);
    if (bytes && *bytes > 0 && type == ClType::gpu) {
      f.vram_total_mb = bytes_to_mib(*bytes);
      if (unified && *unified)
        o.notes.push_back(
            "global memory is shared system memory (CL_DEVICE_HOST_UNIFIED_MEMORY true)");
    } else if (!bytes) {
      o.notes.push_back("global memory size '" + clip(*gm) + "' is not a number; ignored");
    }
  }

  if (const std::string* av = d.get("CL_DEVICE_AVAILABLE")) {
    auto b = parse_bool(*av);
    if (b && !*b) o.notes.push_back("OpenCL reports the device as not available");
  }

  // Software / non-GPU devices.
  std::string lname = name ? to_lower(*name) : "";
  std::string soft;
  if (contains(lname, "llvmpipe"))
    soft = "llvmpipe software rasterizer";
  else if (contains(lname, "softpipe"))
    soft = "softpipe software rasterizer";
  else if (contains(lname, "swiftshader"))
    soft = "SwiftShader software renderer";
  switch (type) {
    case ClType::cpu:
      if (pocl)
        o.software_reason = "OpenCL CPU device (PoCL)";
      else if (!soft.empty())
        o.software_reason = "OpenCL CPU device (" + soft + ")";
      else
        o.software_reason =
            "OpenCL CPU device" +
            (d.platform_name.empty() ? std::string() : " (" + clip(d.platform_name) + ")");
      break;
    case ClType::accelerator:
      o.software_reason = "OpenCL accelerator device (not a GPU)";
      break;
    case ClType::custom:
      o.software_reason = "OpenCL custom device (not a GPU)";
      break;
    case ClType::gpu:
      if (!soft.empty())
        o.software_reason = "OpenCL device on " + soft;
      else if (pocl)
        o.notes.push_back("GPU exposed through PoCL");
      break;
    case ClType::unknown:
      if (!soft.empty())
        o.software_reason = "OpenCL device on " + soft;
      else if (pocl && (starts_with(lname, "pthread") || starts_with(lname, "cpu") ||
                        starts_with(lname, "basic")))
        o.software_reason = "OpenCL CPU device (PoCL)";
      break;
  }
  out.devices.push_back(std::move(o));
}

// ---------------------------------------------------------------- plain (human) form

ParseResult parse_plain(std::string_view text) {
  ParseResult r;
  std::vector<ClDevice> devs;
  std::string cur_platform;
  bool in_devices = false;  // inside the device list of a platform
  bool in_platform_info = false;
  ClDevice* cur = nullptr;
  int dev_index = 0;
  std::optional<int64_t> nplatforms;
  int device_lists = 0;
  bool truncated = false;

  for (std::string_view raw : split_lines(text)) {
    std::string_view t = trim(raw);
    if (t.empty()) continue;
    bool col0 = raw[0] != ' ' && raw[0] != '\t';
    std::string_view k, v;
    bool has_value = split_padded(t, k, v);
    if (col0) {
      cur = nullptr;
      in_devices = false;
      in_platform_info = false;
      if (k == "Number of platforms") {
        if (!nplatforms) nplatforms = parse_int(v.substr(0, v.find(' ')));
      } else if (k == "Number of devices") {
        in_devices = true;
        dev_index = 0;
        ++device_lists;
        auto n = parse_int(v.substr(0, v.find(' ')));
        if (!n)
          r.notes.push_back("platform '" + clip(cur_platform) + "': number of devices '" + clip(v) +
                            "'");
      }
      // Anything else at column 0 ("NULL platform behavior", "ICD loader properties") ends
      // the device listing.
      continue;
    }
    if (!has_value && k != "Platform Name" && k != "Device Name") continue;
    if (k == "Platform Name") {
      cur_platform = std::string(v);
      in_platform_info = true;
      cur = nullptr;
      continue;
    }
    if (in_platform_info) continue;  // platform details (version, extensions, ...)
    if (!in_devices) continue;
    // Only the device's own lines (2-space indent); deeper lines are sub-entries.
    size_t indent = 0;
    while (indent < raw.size() && raw[indent] == ' ') ++indent;
    if (k == "Device Name" && indent <= 2) {
      if (devs.size() >= kMaxDevices) {
        truncated = true;
        cur = nullptr;
        continue;
      }
      devs.emplace_back();
      cur = &devs.back();
      cur->platform_name = cur_platform;
      cur->index = dev_index++;
    }
    if (!cur || indent > 2) continue;
    if (const char* rk = human_to_raw(k)) cur->set(rk, v);
  }

  for (const auto& d : devs) finish_device(d, r);
  if (truncated)
    r.notes.push_back("more than " + std::to_string(kMaxDevices) + " devices; rest ignored");
  if (!nplatforms && device_lists == 0 && devs.empty()) {
    r.recognized = false;
    r.notes.push_back("no \"Number of platforms\" line: not clinfo output");
    return r;
  }
  if (nplatforms && *nplatforms == 0) {
    r.notes.push_back("clinfo found no OpenCL platforms (Number of platforms 0)");
  } else if (r.devices.empty()) {
    r.notes.push_back("clinfo listed no OpenCL devices");
  }
  return r;
}

// ---------------------------------------------------------------- --raw form

ParseResult parse_raw(std::string_view text) {
  ParseResult r;
  std::vector<ClDevice> devs;
  std::string cur_tag, cur_platform;
  std::map<std::string, size_t> by_key;  // "<platform ordinal>/<idx>" -> devs index
  int platform_ordinal = -1;
  std::optional<int64_t> nplatforms;
  bool truncated = false;
  bool any_device_count = false;

  for (std::string_view raw : split_lines(text)) {
    std::string_view t = trim(raw);
    if (t.empty()) continue;
    if (starts_with(t, "#PLATFORMS")) {
      if (!nplatforms) nplatforms = parse_int(trim(t.substr(10)));
      continue;
    }
    if (t[0] != '[') continue;
    size_t close = t.find(']');
    if (close == std::string_view::npos || close > 64) continue;
    std::string_view tag = t.substr(1, close - 1);
    size_t slash = tag.rfind('/');
    if (slash == std::string_view::npos) continue;
    std::string_view ptag = tag.substr(0, slash);
    std::string_view didx = tag.substr(slash + 1);
    std::string_view rest = trim(t.substr(close + 1));
    std::string_view k, v;
    split_padded(rest, k, v);
    if (didx == "*") {
      if (k == "CL_PLATFORM_NAME") {
        ++platform_ordinal;
        cur_tag = std::string(ptag);
        cur_platform = std::string(v);
      } else if (k == "#DEVICES") {
        any_device_count = true;
      }
      continue;
    }
    if (ptag != cur_tag || platform_ordinal < 0 || !all_digits(didx) || didx.size() > 6) continue;
    if (!wanted_raw_key(k)) continue;
    std::string key = std::to_string(platform_ordinal) + "/" + std::string(didx);
    auto it = by_key.find(key);
    ClDevice* d;
    if (it == by_key.end()) {
      if (devs.size() >= kMaxDevices) {
        truncated = true;
        continue;
      }
      devs.emplace_back();
      d = &devs.back();
      d->platform_name = cur_platform;
      d->index = static_cast<int>(*parse_int(didx));
      by_key.emplace(key, devs.size() - 1);
    } else {
      d = &devs[it->second];
    }
    d->set(std::string(k), v);
  }
  for (auto& d : devs) finish_device(d, r);
  if (truncated)
    r.notes.push_back("more than " + std::to_string(kMaxDevices) + " devices; rest ignored");
  if (!nplatforms && platform_ordinal < 0 && devs.empty()) {
    r.recognized = false;
    r.notes.push_back("no \"#PLATFORMS\" line: not clinfo --raw output");
    return r;
  }
  if (nplatforms && *nplatforms == 0) {
    r.notes.push_back("clinfo found no OpenCL platforms (#PLATFORMS 0)");
  } else if (r.devices.empty()) {
    r.notes.push_back(any_device_count ? "clinfo listed no OpenCL devices"
                                       : "clinfo --raw output lists no devices");
  }
  return r;
}

// ---------------------------------------------------------------- --json form

// JSON value -> text as clinfo --raw would print it.
std::optional<std::string> json_text(const nlohmann::json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_boolean()) return std::string(j.get<bool>() ? "CL_TRUE" : "CL_FALSE");
  if (j.is_number_unsigned()) return std::to_string(j.get<uint64_t>());
  if (j.is_number_integer()) return std::to_string(j.get<int64_t>());
  if (j.is_number_float()) {
    double d = j.get<double>();
    if (!std::isfinite(d)) return std::nullopt;
    char buf[64];
    std::snprintf(buf, sizeof buf, "%g", d);
    std::string s = buf;
    return s;
  }
  if (j.is_object()) {
    // {"raw": 4, "type": [...]} and the like: prefer a readable member.
    for (const char* m : {"type", "version", "value"}) {
      auto it = j.find(m);
      if (it == j.end()) continue;
      if (it->is_array()) {
        std::string s;
        for (const auto& e : *it)
          if (e.is_string()) s += (s.empty() ? "" : " | ") + e.get<std::string>();
        if (!s.empty()) return s;
      } else if (auto t = json_text(*it)) {
        return t;
      }
    }
  }
  return std::nullopt;
}

size_t json_depth(std::string_view s) {
  size_t depth = 0, max_depth = 0;
  bool in_str = false, esc = false;
  for (char c : s) {
    if (in_str) {
      if (esc)
        esc = false;
      else if (c == '\\')
        esc = true;
      else if (c == '"')
        in_str = false;
      continue;
    }
    if (c == '"')
      in_str = true;
    else if (c == '{' || c == '[')
      max_depth = std::max(max_depth, ++depth);
    else if ((c == '}' || c == ']') && depth > 0)
      --depth;
  }
  return max_depth;
}

void read_json_device(const nlohmann::json& jd, ClDevice& d) {
  if (!jd.is_object()) return;
  for (auto it = jd.begin(); it != jd.end(); ++it) {
    const std::string& k = it.key();
    if (!wanted_raw_key(k)) continue;
    if (k == "CL_DEVICE_TYPE") {
      const auto& v = it.value();
      if (v.is_object()) {
        auto rawit = v.find("raw");
        if (rawit != v.end() && rawit->is_number_integer() && rawit->get<int64_t>() >= 0)
          d.type_bits = static_cast<unsigned>(rawit->get<int64_t>() & 0xffff);
      } else if (v.is_number_integer() && v.get<int64_t>() >= 0) {
        d.type_bits = static_cast<unsigned>(v.get<int64_t>() & 0xffff);
      }
    }
    if (auto s = json_text(it.value())) d.set(k, *s);
  }
}

ParseResult parse_json(std::string_view text) {
  ParseResult r;
  if (json_depth(text) > kMaxJsonDepth) {
    r.recognized = false;
    r.notes.push_back("JSON nested too deeply: not clinfo --json output");
    return r;
  }
  nlohmann::json j = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded()) {
    r.recognized = false;
    r.notes.push_back("invalid JSON: not clinfo --json output");
    return r;
  }
  if (!j.is_object() || !j.contains("platforms")) {
    r.recognized = false;
    r.notes.push_back("JSON has no \"platforms\" member: not clinfo --json output");
    return r;
  }
  const auto& plats = j["platforms"];
  if (!plats.is_array()) {
    r.recognized = false;
    r.notes.push_back("JSON \"platforms\" is not an array: not clinfo --json output");
    return r;
  }
  const nlohmann::json* devs = nullptr;
  auto dit = j.find("devices");
  if (dit != j.end() && dit->is_array()) devs = &*dit;

  size_t count = 0;
  for (size_t p = 0; p < plats.size(); ++p) {
    const auto& plat = plats[p];
    std::string pname;
    if (plat.is_object()) {
      auto n = plat.find("CL_PLATFORM_NAME");
      if (n != plat.end() && n->is_string()) pname = n->get<std::string>();
    }
    // Device list of this platform: devices[p] is {"online": [...]} (or a bare array); some
    // producers nest "devices" inside the platform object instead.
    const nlohmann::json* list = nullptr;
    if (devs && p < devs->size()) {
      const auto& e = (*devs)[p];
      if (e.is_array()) {
        list = &e;
      } else if (e.is_object()) {
        auto on = e.find("online");
        if (on != e.end() && on->is_array()) list = &*on;
      }
    }
    if (!list && plat.is_object()) {
      auto pd = plat.find("devices");
      if (pd != plat.end() && pd->is_array()) list = &*pd;
    }
    if (!list) continue;
    int idx = 0;
    for (const auto& jd : *list) {
      if (count >= kMaxDevices) {
        r.notes.push_back("more than " + std::to_string(kMaxDevices) + " devices; rest ignored");
        break;
      }
      ClDevice d;
      d.platform_name = pname;
      d.index = idx++;
      read_json_device(jd, d);
      if (d.kv.empty()) continue;
      finish_device(d, r);
      ++count;
    }
  }
  if (plats.empty()) {
    r.notes.push_back("clinfo found no OpenCL platforms");
  } else if (r.devices.empty()) {
    r.notes.push_back("clinfo listed no OpenCL devices");
  }
  return r;
}

ParseResult parse_impl(std::string_view text) {
  std::string_view t = trim(text);
  if (t.empty()) {
    ParseResult r;
    r.recognized = false;
    r.notes.push_back("output is empty");
    return r;
  }
  if (t[0] == '{') return parse_json(t);
  // --raw starts with "#PLATFORMS"; tolerate stray lines before it.
  for (std::string_view line : split_lines(text)) {
    std::string_view l = trim(line);
    if (starts_with(l, "#PLATFORMS")) return parse_raw(text);
    if (starts_with(l, "Number of platforms")) return parse_plain(text);
  }
  ParseResult r = parse_plain(text);
  if (!r.recognized) {
    // Quote what was seen instead (an error message, most likely).
    for (std::string_view line : split_lines(text)) {
      std::string_view l = trim(line);
      if (l.empty()) continue;
      r.notes.clear();
      r.notes.push_back(
          "no \"Number of platforms\" or \"#PLATFORMS\" line: not clinfo output; "
          "first line: " +
          clip(l));
      break;
    }
  }
  return r;
}

}  // namespace

ParseResult parse_clinfo(std::string_view text) {
  return guarded_parse("clinfo output", parse_impl, text);
}

}  // namespace grey
