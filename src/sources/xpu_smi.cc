// xpu-smi discovery in its forms (detected): the box table of `discovery` and `discovery -d N`,
// the JSON of `discovery -j` ({"device_list": [...]}) and `discovery -d N -j` (one object), and
// the CSV of `discovery --dump 1,2,...` (columns mapped by the header labels).
// Labels and JSON keys follow intel/xpumanager cli/src/comlet_discovery.cpp.
#include <cctype>
#include <cmath>
#include <exception>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sources/parse_common.h"
#include "sources/parsers.h"
#include "util/strings.h"

namespace grey {
namespace {

using nlohmann::json;
using Pairs = std::vector<std::pair<std::string, std::string>>;

// Tool text quoted in a note (control bytes replaced, cut to n).
std::string clip(std::string_view s, size_t n = 200) {
  return quote_for_note(s, n);
}

// No machine has this many GPUs; beyond it the input is junk and the rest is ignored (keeps
// time and memory bounded on huge inputs).
constexpr size_t kMaxDevices = 1024;
const char* const kTooMany = "xpu-smi lists more than 1024 devices; the rest were ignored";

// Adds a device unless the cap is reached; false once it is.
bool add_device(ParseResult& r, Observation o) {
  if (r.devices.size() >= kMaxDevices) {
    if (r.notes.empty() || r.notes.back() != kTooMany) r.notes.push_back(kTooMany);
    return false;
  }
  r.devices.push_back(std::move(o));
  return true;
}

// Applies one "Label: value" of xpu-smi to an observation.
void apply(const std::string& label_raw, const std::string& value_raw, Observation& o) {
  std::string label(trim(label_raw));
  std::string value(trim(value_raw));
  if (is_missing_marker(value)) return;
  std::string l = to_lower(label);
  if (l == "device id") {
    if (auto v = parse_int(value); v && *v >= 0 && *v < 1000000) {
      o.f.tool_index = static_cast<int>(*v);
    }
  } else if (l == "device name") {
    o.f.model = value;
  } else if (l == "vendor name") {
    if (!icontains(value, "intel")) o.notes.push_back("xpu-smi vendor name '" + clip(value) + "'");
  } else if (l == "uuid") {
    o.f.uuid = value;
  } else if (l == "pci bdf address") {
    if (auto b = normalize_bus_id(value)) {
      o.f.bus_id = *b;
    } else {
      o.notes.push_back("xpu-smi PCI BDF address '" + clip(value) + "' is not a bus id; ignored");
    }
  } else if (l == "pci device id") {
    if (auto v = parse_hex(value); v && *v <= 0xffff) {
      o.f.pci_device_id = static_cast<uint32_t>(*v);
    } else {
      o.notes.push_back("xpu-smi PCI device id '" + clip(value) + "' is not hex; ignored");
    }
  } else if (l == "pci vendor id") {
    if (auto v = parse_hex(value); v && *v <= 0xffff) {
      o.f.pci_vendor_id = static_cast<uint32_t>(*v);
      o.f.vendor = vendor_from_pci_id(static_cast<uint32_t>(*v));
    } else {
      o.notes.push_back("xpu-smi PCI vendor id '" + clip(value) + "' is not hex; ignored");
    }
  } else if (l == "core clock rate") {
    // Level Zero ze_device_properties_t::coreClockRate, documented only as "clock rate for
    // device core", not as the maximum: kept as a note.
    if (auto v = leading_number(value); v && *v > 0 && *v < 100000) {
      o.notes.push_back("xpu-smi core clock rate " + std::to_string(std::lround(*v)) +
                        " MHz (Level Zero coreClockRate; not documented as the max clock)");
    }
  } else if (l == "max frequency" || l == "max core frequency") {
    if (auto v = leading_number(value); v && *v > 0 && *v < 100000) {
      o.f.clock_mhz = static_cast<int>(std::lround(*v));
    }
  } else if (l == "driver version") {
    o.f.driver_version = value;
  } else if (l == "kernel version") {
    o.notes.push_back("xpu-smi kernel version " + clip(value));
  } else if (l == "pcie generation") {
    if (auto v = parse_int(value); v && *v >= 1 && *v <= 7) o.f.pcie_gen = static_cast<int>(*v);
  } else if (l == "pcie max link width") {
    if (auto v = parse_int(value); v && *v >= 1 && *v <= 64) {
      o.f.pcie_width = static_cast<int>(*v);
    }
  } else if (l == "memory physical size") {
    if (auto m = memory_to_mib(value); m && *m > 0) {
      o.f.vram_total_mb = *m;
    } else {
      o.notes.push_back("xpu-smi memory physical size '" + clip(value) + "' not understood");
    }
  } else if (l == "memory bus width") {
    if (auto v = parse_int(value); v && *v > 0 && *v <= 16384) {
      o.f.memory_bus_width = static_cast<int>(*v);
    }
  } else if (l == "number of eus") {
    o.notes.push_back("xpu-smi: " + clip(value, 20) + " execution units (EUs)");
  } else if (l == "function type") {
    if (to_lower(value) == "virtual") {
      o.notes.push_back("xpu-smi: SR-IOV virtual function");
    }
  } else if (l == "device type") {
    if (to_lower(value) != "gpu") o.notes.push_back("xpu-smi device type '" + clip(value) + "'");
  }
}

Observation make_obs(const Pairs& pairs) {
  Observation o;
  o.f.vendor = "intel";  // xpu-smi only lists Intel GPUs; a PCI vendor id overrides this.
  for (const auto& [k, v] : pairs) apply(k, v, o);
  return o;
}

bool has_device_data(const Observation& o) {
  return o.f.tool_index || o.f.model || o.f.bus_id || o.f.uuid;
}

// ---- JSON (-j) ------------------------------------------------------------------------------

std::string json_scalar(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  if (v.is_number_unsigned()) return std::to_string(v.get<uint64_t>());
  if (v.is_number_float()) return std::to_string(v.get<double>());
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  return {};
}

Observation from_json_device(const json& d) {
  static const std::pair<const char*, const char*> kKeys[] = {
      {"device_id", "Device ID"},
      {"device_name", "Device Name"},
      {"vendor_name", "Vendor Name"},
      {"uuid", "UUID"},
      {"pci_bdf_address", "PCI BDF Address"},
      {"pci_device_id", "PCI Device ID"},
      {"pci_vendor_id", "PCI Vendor ID"},
      {"device_type", "Device Type"},
      {"device_function_type", "Function Type"},
      {"core_clock_rate_mhz", "Core Clock Rate"},
      {"driver_version", "Driver Version"},
      {"kernel_version", "Kernel Version"},
      {"pcie_generation", "PCIe Generation"},
      {"pcie_max_link_width", "PCIe Max Link Width"},
      {"memory_bus_width", "Memory Bus Width"},
      {"number_of_eus", "Number of EUs"},
  };
  Pairs pairs;
  for (const auto& [key, label] : kKeys) {
    auto it = d.find(key);
    if (it == d.end()) continue;
    std::string v = json_scalar(*it);
    if (!v.empty()) pairs.emplace_back(label, v);
  }
  Observation o = make_obs(pairs);
  if (auto it = d.find("memory_physical_size_byte"); it != d.end()) {
    std::optional<double> bytes;
    if (it->is_number()) bytes = it->get<double>();
    if (it->is_string()) bytes = parse_double(it->get<std::string>());
    if (bytes && *bytes > 0 && *bytes < 1e18) {
      o.f.vram_total_mb = bytes_to_mib(static_cast<uint64_t>(*bytes));
    }
  }
  return o;
}

ParseResult parse_json(std::string_view text) {
  ParseResult r;
  json j = json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    r.recognized = false;
    r.notes.push_back("xpu-smi output starts like JSON but is not a valid JSON object");
    return r;
  }
  if (auto e = j.find("error"); e != j.end()) {
    r.recognized = false;
    r.notes.push_back("xpu-smi reported: " + clip(json_scalar(*e), 300));
    return r;
  }
  if (auto dl = j.find("device_list"); dl != j.end()) {
    if (!dl->is_array()) {
      r.recognized = false;
      r.notes.push_back("xpu-smi JSON: device_list is not an array");
      return r;
    }
    for (const auto& d : *dl) {
      if (!d.is_object()) continue;
      Observation o = from_json_device(d);
      if (has_device_data(o) && !add_device(r, std::move(o))) break;
    }
    if (r.devices.empty()) r.notes.push_back("xpu-smi: device_list is empty: no device discovered");
    return r;
  }
  if (j.contains("device_id") || j.contains("device_name") || j.contains("pci_bdf_address")) {
    Observation o = from_json_device(j);  // discovery -d N -j
    r.devices.push_back(std::move(o));
    return r;
  }
  r.recognized = false;
  r.notes.push_back("JSON without device_list or device_id: not xpu-smi discovery -j output");
  return r;
}

// ---- box table ------------------------------------------------------------------------------

ParseResult parse_table(const std::vector<std::string_view>& lines) {
  ParseResult r;
  std::vector<Pairs> devices;
  bool in_header = true;
  for (auto raw : lines) {
    auto line = trim(raw);
    if (line.size() < 2 || line.front() != '|') continue;
    size_t second = line.find('|', 1);
    if (second == std::string_view::npos) continue;
    std::string_view id_cell = trim(line.substr(1, second - 1));
    std::string_view info = line.substr(second + 1);
    if (!info.empty() && info.back() == '|') info.remove_suffix(1);
    if (in_header && id_cell == "Device ID") {
      in_header = false;
      continue;
    }
    if (!id_cell.empty()) {
      if (devices.size() >= kMaxDevices) {
        r.notes.push_back(kTooMany);
        break;
      }
      devices.emplace_back();
      devices.back().emplace_back("Device ID", std::string(id_cell));
    }
    if (devices.empty()) continue;
    if (!info.empty() && info.front() == ' ') info.remove_prefix(1);  // the cell's pad space
    if (trim(info).empty()) continue;
    bool indented = !info.empty() && std::isspace(static_cast<unsigned char>(info.front()));
    size_t colon = info.find(": ");
    if (!indented && colon != std::string_view::npos) {
      devices.back().emplace_back(std::string(trim(info.substr(0, colon))),
                                  std::string(trim(info.substr(colon + 2))));
    } else if (devices.back().size() > 1) {
      // A wrapped long value continues on the next row.
      std::string& prev = devices.back().back().second;
      std::string_view more = trim(info);
      if (!prev.empty() && prev.back() != '/' && more.front() != '/') prev += ' ';
      prev += std::string(more);
    } else if (colon != std::string_view::npos) {
      devices.back().emplace_back(std::string(trim(info.substr(0, colon))),
                                  std::string(trim(info.substr(colon + 2))));
    }
  }
  for (const auto& p : devices) {
    Observation o = make_obs(p);
    if (has_device_data(o)) add_device(r, std::move(o));
  }
  if (r.devices.empty()) r.notes.push_back("xpu-smi table has no device rows");
  return r;
}

// ---- CSV (--dump) ---------------------------------------------------------------------------

std::vector<std::string> csv_fields(std::string_view line) {
  std::vector<std::string> out;
  std::string cur;
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quoted) {
      if (c == '\\' && i + 1 < line.size() && line[i + 1] == '"') {
        cur += '"';
        ++i;
      } else if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        cur += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        cur += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      out.push_back(std::string(trim(cur)));
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(std::string(trim(cur)));
  return out;
}

ParseResult parse_csv(const std::vector<std::string_view>& lines, size_t header_at) {
  ParseResult r;
  auto header = csv_fields(lines[header_at]);
  bool short_rows = false;
  for (size_t i = header_at + 1; i < lines.size(); ++i) {
    if (trim(lines[i]).empty()) continue;
    auto f = csv_fields(lines[i]);
    if (f.size() != header.size()) short_rows = true;
    Pairs pairs;
    for (size_t c = 0; c < f.size() && c < header.size(); ++c) pairs.emplace_back(header[c], f[c]);
    Observation o = make_obs(pairs);
    if (has_device_data(o) && !add_device(r, std::move(o))) break;
  }
  if (short_rows) r.notes.push_back("xpu-smi --dump: some rows do not match the header width");
  if (r.devices.empty()) r.notes.push_back("xpu-smi --dump: header only, no device rows");
  return r;
}

bool is_dump_header(std::string_view line) {
  if (!contains(line, ",")) return false;
  auto f = csv_fields(line);
  static const char* const kKnown[] = {"Device ID",
                                       "Device Name",
                                       "Vendor Name",
                                       "UUID",
                                       "PCI BDF Address",
                                       "Core Clock Rate",
                                       "PCI Device ID",
                                       "Driver Version",
                                       "Memory Physical Size",
                                       "PCIe Generation",
                                       "Serial Number",
                                       "PCI Vendor ID"};
  int known = 0;
  for (const auto& x : f) {
    for (const char* k : kKnown) {
      if (x == k) ++known;
    }
  }
  return known >= 1 && known * 2 >= static_cast<int>(f.size());
}

}  // namespace

namespace {

ParseResult parse_xpu_smi_unguarded(std::string_view text) {
  ParseResult r;
  std::string_view t = trim(text);
  if (reject_empty(t, r)) return r;
  if (t.front() == '{') return parse_json(t);

  auto lines = split_lines(text);
  for (auto line : lines) {
    auto l = trim(line);
    if (starts_with(l, "Error") || starts_with(l, "error:")) {
      r.recognized = false;
      r.notes.push_back("xpu-smi reported: " + clip(l, 300));
      return r;
    }
    if (l == "No device discovered" || starts_with(l, "No device discovered")) {
      r.notes.push_back("xpu-smi reported: No device discovered");
      return r;
    }
  }
  for (auto line : lines) {
    if (contains(line, "| Device ID") && contains(line, "Device Information")) {
      return parse_table(lines);
    }
  }
  for (size_t i = 0; i < lines.size(); ++i) {
    auto l = trim(lines[i]);
    if (l.empty()) continue;
    if (is_dump_header(l)) return parse_csv(lines, i);
    break;  // the dump header is the first non-empty line
  }
  r.recognized = false;
  std::string first;
  for (auto line : lines) {
    if (!trim(line).empty()) {
      first = clip(trim(line), 120);
      break;
    }
  }
  r.notes.push_back(
      "no xpu-smi discovery table, JSON or --dump header: not xpu-smi discovery output "
      "(first line: '" +
      first + "')");
  return r;
}

}  // namespace

ParseResult parse_xpu_smi(std::string_view text) {
  return guarded_parse("xpu-smi output", parse_xpu_smi_unguarded, text);
}

}  // namespace grey
