// Parser for `vulkaninfo --summary` and the full `vulkaninfo` text output.
//
// Both forms list one block per physical device, headed by a line "GPU<N>:" at column 0 (the
// summary's "Devices:" section, or the full output's "Device Properties and Extensions:"
// section). Inside a block we read "key = value" lines (tab or space indented), the
// VkPhysicalDeviceMemoryProperties heaps (full form only) and the
// VkPhysicalDevicePCIBusInfoPropertiesEXT fields (full form only).
//
// Value forms seen across vulkaninfo versions:
//   apiVersion    = 1.3.260 | 1.3.230 (4206822) | 4206847 (1.3.255) | 0x400039  (1.0.57)
//   driverVersion = 550.54.15.0 (2307964928) | 2.0.279 | 2311061504 (0x89c0c000)
//   deviceType    = PHYSICAL_DEVICE_TYPE_DISCRETE_GPU | DISCRETE_GPU
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sources/parse_common.h"
#include "sources/parsers.h"
#include "util/strings.h"

namespace grey {
namespace {

constexpr size_t kMaxDevices = 64;   // a sane upper bound; more is garbage
constexpr size_t kMaxNoteLen = 300;  // quoted tool lines are cut to this length
constexpr uint32_t kVendorNvidia = 0x10de;
constexpr uint32_t kVendorMesa = 0x10005;  // VK_VENDOR_ID_MESA (llvmpipe/lavapipe)

std::string clip(std::string_view s) {
  return quote_for_note(s, kMaxNoteLen);
}

// Splits a value like "4206847 (1.3.255)" into its tokens: "4206847", "1.3.255".
std::vector<std::string_view> value_tokens(std::string_view v) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < v.size() && out.size() < 16) {
    while (i < v.size() && (v[i] == ' ' || v[i] == '\t' || v[i] == '(' || v[i] == ')')) ++i;
    size_t b = i;
    while (i < v.size() && v[i] != ' ' && v[i] != '\t' && v[i] != '(' && v[i] != ')') ++i;
    if (i > b) out.push_back(v.substr(b, i - b));
  }
  return out;
}

// A dotted version "1.3.260" / "550.54.15.0" (3 or 4 numeric parts).
std::optional<std::vector<uint32_t>> dotted_parts(std::string_view t) {
  auto parts = split(t, '.');
  if (parts.size() < 3 || parts.size() > 4) return std::nullopt;
  std::vector<uint32_t> out;
  for (auto p : parts) {
    if (!all_digits(p) || p.size() > 9) return std::nullopt;
    auto v = parse_int(p);
    if (!v) return std::nullopt;
    out.push_back(static_cast<uint32_t>(*v));
  }
  return out;
}

struct VersionValue {
  std::optional<std::string> dotted;  // first dotted token as printed
  std::optional<uint32_t> raw;        // the packed 32-bit integer, when printed
};

VersionValue parse_version_value(std::string_view v) {
  VersionValue out;
  for (auto t : value_tokens(v)) {
    if (!out.dotted && dotted_parts(t)) {
      out.dotted = std::string(t);
    } else if (!out.raw && all_digits(t) && t.size() <= 10) {
      auto n = parse_int(t);
      if (n && *n >= 0 && *n <= 0xffffffffLL) out.raw = static_cast<uint32_t>(*n);
    } else if (!out.raw && (starts_with(t, "0x") || starts_with(t, "0X")) && t.size() <= 10) {
      auto n = parse_hex(t);
      if (n) out.raw = static_cast<uint32_t>(*n);
    }
  }
  return out;
}

std::string vk_version_string(uint32_t v) {
  return std::to_string((v >> 22) & 0x7f) + "." + std::to_string((v >> 12) & 0x3ff) + "." +
         std::to_string(v & 0xfff);
}

// NVIDIA's version as the driver prints it: "550.54.15", "470.57.02", "595.80".
std::string nvidia_version(uint32_t major, uint32_t minor, uint32_t patch) {
  std::string s = std::to_string(major) + "." + std::to_string(minor);
  if (patch != 0) s += (patch < 10 ? ".0" : ".") + std::to_string(patch);
  return s;
}

std::string nvidia_version_from_packed(uint32_t v) {
  return nvidia_version((v >> 22) & 0x3ff, (v >> 14) & 0xff, (v >> 6) & 0xff);
}

// Looks like "550.54.15" (driverInfo of the NVIDIA proprietary driver).
bool looks_like_version(std::string_view s) {
  auto parts = split(s, '.');
  if (parts.size() < 2 || parts.size() > 4) return false;
  for (auto p : parts)
    if (!all_digits(p) || p.size() > 6) return false;
  return true;
}

struct Heap {
  std::optional<uint64_t> size;
  bool device_local = false;
};

struct VkBlock {
  std::optional<int> index;
  std::optional<std::string> api_version;
  std::optional<std::string> driver_version;
  std::optional<std::string> vendor_id;
  std::optional<std::string> device_id;
  std::optional<std::string> device_type;
  std::optional<std::string> device_name;
  std::optional<std::string> driver_id;
  std::optional<std::string> driver_name;
  std::optional<std::string> driver_info;
  std::optional<std::string> device_uuid;
  std::optional<int64_t> pci_domain, pci_bus, pci_device, pci_function;
  std::vector<Heap> heaps;
  bool saw_props_header = false;
  bool any_key = false;
};

void set_first(std::optional<std::string>& slot, std::string_view v) {
  if (!slot) slot = std::string(trim(v));
}

void set_first_int(std::optional<int64_t>& slot, std::string_view v) {
  if (slot) return;
  auto t = value_tokens(v);
  if (t.empty()) return;
  auto n = parse_int(t[0]);
  if (!n && (starts_with(t[0], "0x") || starts_with(t[0], "0X"))) {
    auto h = parse_hex(t[0]);
    if (h && *h <= 0xffffffffull) n = static_cast<int64_t>(*h);
  }
  if (n && *n >= 0) slot = *n;
}

// "GPU0:" / "GPU12" at column 0. Returns the index.
std::optional<int> gpu_header(std::string_view line) {
  if (line.empty() || line[0] == ' ' || line[0] == '\t') return std::nullopt;
  std::string_view t = trim(line);
  if (!starts_with(t, "GPU")) return std::nullopt;
  t.remove_prefix(3);
  if (!t.empty() && t.back() == ':') t.remove_suffix(1);
  if (!all_digits(t) || t.size() > 4) return std::nullopt;
  auto n = parse_int(t);
  if (!n) return std::nullopt;
  return static_cast<int>(*n);
}

// "GPU id = 0 (name)" / "GPU id : 0 (name)" / "GPU id \t: 0 (name)". Returns the index.
std::optional<int> gpu_id_line(std::string_view line) {
  std::string_view t = trim(line);
  if (!starts_with(t, "GPU id")) return std::nullopt;
  t.remove_prefix(6);
  t = trim(t);
  if (t.empty() || (t[0] != '=' && t[0] != ':')) return std::nullopt;
  t = trim(t.substr(1));
  size_t i = 0;
  while (i < t.size() && std::isdigit(static_cast<unsigned char>(t[i]))) ++i;
  if (i == 0 || i > 4) return std::nullopt;
  auto n = parse_int(t.substr(0, i));
  if (!n) return std::nullopt;
  return static_cast<int>(*n);
}

bool is_separator_line(std::string_view t) {
  if (t.empty()) return false;
  for (char c : t)
    if (c != '=' && c != '-') return false;
  return true;
}

// Splits "key = value" (vulkaninfo pads the key with spaces). Keys never contain '='.
bool split_kv(std::string_view line, std::string_view& key, std::string_view& value) {
  size_t eq = line.find('=');
  if (eq == std::string_view::npos) return false;
  key = trim(line.substr(0, eq));
  value = trim(line.substr(eq + 1));
  if (key.empty() || key.size() > 80) return false;
  for (char c : key)
    if (c == ' ' || c == '\t') {
      // Only single-word keys (apiVersion, size, pciBus, ...) matter here.
      return false;
    }
  return true;
}

std::optional<uint32_t> parse_id(const std::optional<std::string>& s) {
  if (!s) return std::nullopt;
  auto t = value_tokens(*s);
  if (t.empty()) return std::nullopt;
  std::optional<uint64_t> v;
  if (starts_with(t[0], "0x") || starts_with(t[0], "0X")) {
    v = parse_hex(t[0]);
  } else if (all_digits(t[0]) && t[0].size() <= 10) {
    auto n = parse_int(t[0]);
    if (n && *n >= 0) v = static_cast<uint64_t>(*n);
  }
  if (!v || *v > 0xffffffffull) return std::nullopt;
  return static_cast<uint32_t>(*v);
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// Short device type: DISCRETE_GPU, INTEGRATED_GPU, VIRTUAL_GPU, CPU, OTHER, or as printed.
std::string short_type(std::string_view t) {
  std::string u = upper(trim(t));
  for (const char* k : {"DISCRETE_GPU", "INTEGRATED_GPU", "VIRTUAL_GPU", "OTHER"})
    if (contains(u, k)) return k;
  if (u == "CPU" || ends_with(u, "_CPU")) return "CPU";
  return u;
}

std::optional<std::string> software_hint(const VkBlock& d) {
  std::string hay;
  if (d.device_name) hay += *d.device_name + " ";
  if (d.driver_name) hay += *d.driver_name + " ";
  if (d.driver_id) hay += *d.driver_id + " ";
  std::string l = to_lower(hay);
  if (contains(l, "llvmpipe") || contains(l, "lavapipe")) return "lavapipe software rasterizer";
  if (contains(l, "swiftshader")) return "SwiftShader software renderer";
  if (contains(l, "softpipe")) return "softpipe software rasterizer";
  return std::nullopt;
}

void finish_device(const VkBlock& d, int fallback_index, ParseResult& out) {
  Observation o;
  GpuFields& f = o.f;
  f.tool_index = d.index ? *d.index : fallback_index;
  if (d.device_name && !is_missing_marker(*d.device_name))
    f.model = std::string(trim(*d.device_name));

  auto vendor = parse_id(d.vendor_id);
  if (d.vendor_id && !vendor)
    o.notes.push_back("vendorID '" + clip(*d.vendor_id) + "' is not a number; ignored");
  if (vendor && *vendor <= 0xffff) {
    f.pci_vendor_id = *vendor;
    f.vendor = vendor_from_pci_id(*vendor);
    auto dev = parse_id(d.device_id);
    if (dev && *dev <= 0xffff) f.pci_device_id = *dev;
  }

  if (d.api_version) {
    auto v = parse_version_value(*d.api_version);
    if (v.dotted) {
      f.vulkan_version = *v.dotted;
    } else if (v.raw) {
      f.vulkan_version = vk_version_string(*v.raw);
    }
  }

  const std::string dtype = d.device_type ? short_type(*d.device_type) : "";
  const std::string driver_id = d.driver_id ? upper(*d.driver_id) : "";
  const bool is_nvidia = vendor && *vendor == kVendorNvidia;
  const bool nvidia_proprietary =
      is_nvidia && (driver_id.empty() ? !(d.driver_name && (icontains(*d.driver_name, "nouveau") ||
                                                            icontains(*d.driver_name, "nvk")))
                                      : contains(driver_id, "NVIDIA_PROPRIETARY"));

  // Software devices.
  auto hint = software_hint(d);
  if (dtype == "CPU") {
    o.software_reason = "Vulkan device type CPU" + (hint ? " (" + *hint + ")" : std::string());
  } else if (contains(driver_id, "LLVMPIPE") || contains(driver_id, "SWIFTSHADER")) {
    o.software_reason = "Vulkan software driver " + clip(*d.driver_id) +
                        (hint ? " (" + *hint + ")" : std::string());
  } else if (hint) {
    o.software_reason = "Vulkan " + *hint;
  } else if (vendor && *vendor == kVendorMesa) {
    o.software_reason = "Vulkan vendorID 0x10005 (Mesa software device)";
  }
  if (d.driver_version) {
    auto v = parse_version_value(*d.driver_version);
    std::optional<std::string> text;
    if (nvidia_proprietary) {
      if (d.driver_info && looks_like_version(trim(*d.driver_info))) {
        f.driver_version = std::string(trim(*d.driver_info));
      } else if (v.raw && (!v.dotted || v.raw > 0xffffu)) {
        f.driver_version = nvidia_version_from_packed(*v.raw);
      } else if (v.dotted) {
        auto p = dotted_parts(*v.dotted);
        f.driver_version = nvidia_version((*p)[0], (*p)[1], (*p)[2]);
      }
      if (!f.driver_version)
        o.notes.push_back("driverVersion '" + clip(*d.driver_version) + "' not understood");
    } else if (!o.software_reason) {
      if (v.dotted) {
        text = *v.dotted;
      } else if (v.raw) {
        text = vk_version_string(*v.raw);
      } else {
        text = clip(*d.driver_version);
      }
      std::string who;
      if (d.driver_name && !d.driver_name->empty())
        who = *d.driver_name;
      else if (d.driver_id)
        who = *d.driver_id;
      std::string note = "Vulkan driverVersion " + *text;
      if (!who.empty()) note += " (" + clip(who) + ")";
      note += " is the Vulkan driver's own version, not the kernel driver version";
      o.notes.push_back(note);
    }
  }

  if (nvidia_proprietary && d.device_uuid) {
    std::string u = std::string(trim(*d.device_uuid));
    if (u.size() == 36 && !is_missing_marker(u)) f.uuid = "GPU-" + to_lower(u);
  }

  if (d.pci_bus && d.pci_device && d.pci_function) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%llx:%llx:%llx.%llx",
                  static_cast<unsigned long long>(d.pci_domain.value_or(0)),
                  static_cast<unsigned long long>(*d.pci_bus),
                  static_cast<unsigned long long>(*d.pci_device),
                  static_cast<unsigned long long>(*d.pci_function));
    auto bus = normalize_bus_id(buf);
    if (bus)
      f.bus_id = *bus;
    else
      o.notes.push_back(std::string("PCI bus info '") + buf + "' is out of range; ignored");
  }

  // Device-local heaps. NVIDIA exposes its BAR window as an extra small device-local heap that
  // overlaps VRAM, so take the largest; RADV splits VRAM into invisible + visible heaps, so sum.
  uint64_t local_sum = 0, local_max = 0;
  int local_count = 0;
  for (const auto& h : d.heaps) {
    if (!h.device_local || !h.size) continue;
    ++local_count;
    local_sum += *h.size;
    if (*h.size > local_max) local_max = *h.size;
  }
  if (local_count > 0) {
    uint64_t bytes = is_nvidia ? local_max : local_sum;
    int64_t mib = bytes_to_mib(bytes);
    if (dtype == "DISCRETE_GPU") {
      f.vram_total_mb = mib;
      if (local_count > 1)
        o.notes.push_back(std::to_string(local_count) +
                          " device-local memory heaps; VRAM taken as " +
                          (is_nvidia ? "the largest" : "their sum"));
    } else if (dtype == "INTEGRATED_GPU") {
      o.notes.push_back("device-local heap of " + std::to_string(mib) +
                        " MiB is shared system memory (integrated GPU); not counted as VRAM");
    } else if (dtype == "VIRTUAL_GPU") {
      o.notes.push_back("device-local heap of " + std::to_string(mib) +
                        " MiB belongs to a virtual GPU; not counted as VRAM");
    }
  }

  if (dtype == "VIRTUAL_GPU") o.notes.push_back("Vulkan device type VIRTUAL_GPU");
  if (d.device_type && dtype != "DISCRETE_GPU" && dtype != "INTEGRATED_GPU" &&
      dtype != "VIRTUAL_GPU" && dtype != "CPU")
    o.notes.push_back("Vulkan device type " + clip(*d.device_type));

  out.devices.push_back(std::move(o));
}

ParseResult parse_impl(std::string_view text) {
  ParseResult r;
  if (reject_empty(text, r)) return r;

  auto lines = split_lines(text);
  std::vector<VkBlock> devs;
  VkBlock* cur = nullptr;
  // From a "GPU id : N (...)" line right above; -1 = none. (A plain int: GCC 12 -O2 raises a
  // false -Wmaybe-uninitialized on std::optional here.)
  int pending_gpu_id = -1;
  int heap_idx = -1;  // inside memoryHeaps[N]
  bool in_pci = false;
  bool banner = false, devices_header = false;
  std::string first_error, cannot_create, failed_with;
  bool too_many = false;

  for (std::string_view raw : lines) {
    std::string_view t = trim(raw);
    if (t.empty()) continue;
    if (t == "VULKANINFO" || starts_with(t, "Vulkan Instance Version")) banner = true;
    if (t == "Devices:" || starts_with(t, "Device Properties and Extensions"))
      devices_header = true;
    if (starts_with(t, "Cannot create Vulkan instance") && cannot_create.empty())
      cannot_create = clip(t);
    if (contains(t, "failed with ERROR_") && failed_with.empty()) failed_with = clip(t);
    if ((starts_with(t, "ERROR") || starts_with(t, "error:")) && first_error.empty() &&
        !contains(t, "XDG_RUNTIME_DIR"))
      first_error = clip(t);

    if (auto g = gpu_header(raw)) {
      if (devs.size() >= kMaxDevices) {
        too_many = true;
        cur = nullptr;
        continue;
      }
      devs.emplace_back();
      cur = &devs.back();
      cur->index = *g;
      heap_idx = -1;
      in_pci = false;
      pending_gpu_id = -1;
      continue;
    }
    if (auto id = gpu_id_line(raw)) {
      pending_gpu_id = *id;
      continue;
    }
    if (t == "VkPhysicalDeviceProperties:" || t == "VkPhysicalDeviceProperties") {
      if (!cur || cur->saw_props_header) {
        // A device section without a "GPU<N>:" header (older layouts).
        if (devs.size() >= kMaxDevices) {
          too_many = true;
          cur = nullptr;
          continue;
        }
        devs.emplace_back();
        cur = &devs.back();
        if (pending_gpu_id >= 0) cur->index = pending_gpu_id;
        heap_idx = -1;
        in_pci = false;
      }
      cur->saw_props_header = true;
      pending_gpu_id = -1;
      continue;
    }
    if (!is_separator_line(t)) pending_gpu_id = -1;
    if (!cur) continue;

    // Section tracking inside a device block.
    bool col0 = raw[0] != ' ' && raw[0] != '\t';
    if (starts_with(t, "memoryHeaps[")) {
      if (cur->heaps.size() < 64) {
        cur->heaps.emplace_back();
        heap_idx = static_cast<int>(cur->heaps.size()) - 1;
      } else {
        heap_idx = -1;
      }
      continue;
    }
    if (starts_with(t, "memoryTypes") || starts_with(t, "memoryTypeCount") ||
        (col0 && !starts_with(t, "memoryHeaps"))) {
      heap_idx = -1;
    }
    if (starts_with(t, "VkPhysicalDevicePCIBusInfoProperties")) {
      in_pci = true;
      continue;
    }
    if (col0 && !is_separator_line(t)) in_pci = false;

    if (heap_idx >= 0) {
      Heap& h = cur->heaps[static_cast<size_t>(heap_idx)];
      if (contains(t, "HEAP_DEVICE_LOCAL")) h.device_local = true;
      std::string_view k, v;
      if (split_kv(t, k, v) && k == "size" && !h.size) {
        auto toks = value_tokens(v);
        if (!toks.empty()) {
          if (all_digits(toks[0]) && toks[0].size() <= 19) {
            auto n = parse_int(toks[0]);
            if (n && *n >= 0) h.size = static_cast<uint64_t>(*n);
          } else if (starts_with(toks[0], "0x")) {
            h.size = parse_hex(toks[0]);
          }
        }
      }
      continue;
    }

    std::string_view k, v;
    if (!split_kv(t, k, v)) continue;
    if (in_pci || starts_with(k, "pci")) {
      std::optional<int64_t>* slot = nullptr;
      if (k == "pciDomain")
        slot = &cur->pci_domain;
      else if (k == "pciBus")
        slot = &cur->pci_bus;
      else if (k == "pciDevice")
        slot = &cur->pci_device;
      else if (k == "pciFunction")
        slot = &cur->pci_function;
      if (slot) {
        set_first_int(*slot, v);
        cur->any_key = true;
      }
      continue;
    }
    if (k == "apiVersion")
      set_first(cur->api_version, v);
    else if (k == "driverVersion")
      set_first(cur->driver_version, v);
    else if (k == "vendorID")
      set_first(cur->vendor_id, v);
    else if (k == "deviceID")
      set_first(cur->device_id, v);
    else if (k == "deviceType")
      set_first(cur->device_type, v);
    else if (k == "deviceName")
      set_first(cur->device_name, v);
    else if (k == "driverID")
      set_first(cur->driver_id, v);
    else if (k == "driverName")
      set_first(cur->driver_name, v);
    else if (k == "driverInfo")
      set_first(cur->driver_info, v);
    else if (k == "deviceUUID")
      set_first(cur->device_uuid, v);
    else
      continue;
    cur->any_key = true;
  }

  int n = 0;
  for (const auto& d : devs) {
    if (!d.any_key) continue;
    finish_device(d, n, r);
    ++n;
  }
  if (too_many)
    r.notes.push_back("more than " + std::to_string(kMaxDevices) +
                      " device blocks; the rest ignored");

  if (r.devices.empty()) {
    if (!cannot_create.empty() || !failed_with.empty()) {
      r.recognized = false;
      std::string note = "vulkaninfo reported: ";
      note += !cannot_create.empty() ? cannot_create : failed_with;
      if (!cannot_create.empty() && !failed_with.empty()) note += " (" + failed_with + ")";
      if (!first_error.empty() && first_error != failed_with) note += "; " + first_error;
      r.notes.push_back(note);
    } else if (banner || devices_header) {
      r.notes.push_back("vulkaninfo listed no physical devices");
      if (!first_error.empty()) r.notes.push_back("vulkaninfo reported: " + first_error);
    } else {
      r.recognized = false;
      std::string note =
          "no \"GPU<N>:\" device blocks or vulkaninfo banner found: not vulkaninfo output";
      if (!first_error.empty()) note += "; first error line: " + first_error;
      r.notes.push_back(note);
    }
  } else if (!first_error.empty()) {
    r.notes.push_back("vulkaninfo also reported: " + first_error);
  }
  return r;
}

}  // namespace

ParseResult parse_vulkaninfo(std::string_view text) {
  return guarded_parse("vulkaninfo output", parse_impl, text);
}

}  // namespace grey
