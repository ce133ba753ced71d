#include "model/gpu_spec.h"

#include <nlohmann/json.hpp>
#include <stdexcept>

#include "util/strings.h"

namespace grey {

namespace {

// The version of one `detect --json` element's shape (docs/schema/detect.schema.json); every
// element carries it as "schema_version". Raise it (and the schema) with any change of shape.
constexpr int kDetectSchemaVersion = 1;

template <typename T>
bool fill(std::optional<T>& into, const std::optional<T>& from) {
  if (!into && from) {
    into = from;
    return true;
  }
  return false;
}

template <typename T>
void put(nlohmann::json& j, const char* key, const std::optional<T>& v) {
  if (v)
    j[key] = *v;
  else
    j[key] = nullptr;
}

template <typename T>
void get(const nlohmann::json& j, const char* key, std::optional<T>& out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return;
  try {
    out = it->get<T>();
  } catch (const nlohmann::json::exception&) {
    throw std::runtime_error(std::string("field '") + key + "' has the wrong type (" +
                             it->type_name() + ")");
  }
}

}  // namespace

std::vector<std::string> fill_missing(GpuFields& a, const GpuFields& b) {
  std::vector<std::string> filled;
#define GREY_FILL(field) \
  if (fill(a.field, b.field)) filled.emplace_back(#field)
  GREY_FILL(vendor);
  GREY_FILL(model);
  GREY_FILL(bus_id);
  GREY_FILL(pci_vendor_id);
  GREY_FILL(pci_device_id);
  GREY_FILL(uuid);
  GREY_FILL(kernel_driver);
  GREY_FILL(driver_version);
  GREY_FILL(vram_total_mb);
  GREY_FILL(vram_free_mb);
  GREY_FILL(vram_used_mb);
  GREY_FILL(compute_capability);
  GREY_FILL(cuda_version);
  GREY_FILL(opencl_version);
  GREY_FILL(vulkan_version);
  GREY_FILL(opengl_version);
  GREY_FILL(clock_mhz);
  GREY_FILL(memory_bus_width);
  GREY_FILL(num_sm);
  GREY_FILL(pcie_gen);
  GREY_FILL(pcie_width);
  GREY_FILL(thermal.slowdown_c);
  GREY_FILL(thermal.shutdown_c);
  GREY_FILL(thermal.max_operating_c);
  GREY_FILL(power_limit_w);
  GREY_FILL(power_limit_min_w);
  GREY_FILL(power_limit_max_w);
  GREY_FILL(power_limit_default_w);
  GREY_FILL(numa_node);
  GREY_FILL(mig_mode);
  GREY_FILL(persistence_mode);
  GREY_FILL(power_state);
  GREY_FILL(temperature_c);
  GREY_FILL(power_draw_w);
  GREY_FILL(utilization_pct);
  GREY_FILL(tool_index);
  GREY_FILL(compute_partition);
  GREY_FILL(memory_partition);
#undef GREY_FILL
  if (fill_partitions(a.partitions, b.partitions)) filled.emplace_back("partitions");
  return filled;
}

bool fill_partitions(std::vector<Partition>& into, const std::vector<Partition>& from) {
  if (from.empty()) return false;
  if (into.empty()) {
    into = from;
    return true;
  }
  bool any = false;
  for (auto& p : into) {
    for (const auto& q : from) {
      bool same = (p.dev_index && q.dev_index && *p.dev_index == *q.dev_index) ||
                  (p.uuid && q.uuid && to_lower(*p.uuid) == to_lower(*q.uuid));
      if (!same) continue;
      any |= fill(p.gi_id, q.gi_id);
      any |= fill(p.ci_id, q.ci_id);
      any |= fill(p.profile, q.profile);
      any |= fill(p.memory_total_mb, q.memory_total_mb);
      any |= fill(p.uuid, q.uuid);
      any |= fill(p.dev_index, q.dev_index);
      break;
    }
  }
  return any;
}

nlohmann::json partitions_to_json(const std::vector<Partition>& parts) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& p : parts) {
    nlohmann::json e = nlohmann::json::object();
    e["kind"] = p.kind;
    put(e, "gi_id", p.gi_id);
    put(e, "ci_id", p.ci_id);
    put(e, "profile", p.profile);
    put(e, "memory_total_mb", p.memory_total_mb);
    put(e, "uuid", p.uuid);
    a.push_back(std::move(e));
  }
  return a;
}

std::vector<Partition> partitions_from_json(const nlohmann::json& j) {
  std::vector<Partition> out;
  if (!j.is_array()) throw std::runtime_error("field 'partitions' is not an array");
  for (const auto& e : j) {
    if (!e.is_object()) throw std::runtime_error("a 'partitions' entry is not an object");
    Partition p;
    std::optional<std::string> kind;
    get(e, "kind", kind);
    p.kind = kind.value_or("mig");
    get(e, "gi_id", p.gi_id);
    get(e, "ci_id", p.ci_id);
    get(e, "profile", p.profile);
    get(e, "memory_total_mb", p.memory_total_mb);
    get(e, "uuid", p.uuid);
    out.push_back(std::move(p));
  }
  return out;
}

std::string json_key_of_field(std::string_view member) {
  if (member == "tool_index") return "";
  if (member == "bus_id") return "device_id";
  if (member == "driver_version") return "driver";
  if (member == "pci_vendor_id" || member == "pci_device_id") return "pci_id";
  if (member.substr(0, 8) == "thermal.") return "thermal_limits." + std::string(member.substr(8));
  return std::string(member);
}

std::string Observation::display_name() const {
  if (f.model) return *f.model;
  if (f.pci_vendor_id && f.pci_device_id)
    return "PCI " + hex4(*f.pci_vendor_id) + ":" + hex4(*f.pci_device_id);
  if (f.bus_id) return "device at " + *f.bus_id;
  return "unnamed device";
}

std::optional<std::string> GpuSpec::pci_id() const {
  if (!f.pci_vendor_id || !f.pci_device_id) return std::nullopt;
  return hex4(*f.pci_vendor_id) + ":" + hex4(*f.pci_device_id);
}

std::optional<std::string> GpuSpec::pci_bandwidth() const {
  if (!f.pcie_gen || !f.pcie_width) return std::nullopt;
  return grey::pci_bandwidth(*f.pcie_gen, *f.pcie_width);
}

std::string vendor_from_pci_id(uint32_t v) {
  switch (v) {
    case 0x10de:
      return "nvidia";
    case 0x1002:
    case 0x1022:
      return "amd";
    case 0x8086:
      return "intel";
    default:
      return "unknown";
  }
}

std::optional<uint32_t> pci_vendor_for(const std::string& vendor) {
  if (vendor == "nvidia") return 0x10de;
  if (vendor == "amd") return 0x1002;
  if (vendor == "intel") return 0x8086;
  return std::nullopt;
}

nlohmann::json spec_to_json(const GpuSpec& s) {
  using nlohmann::json;
  const GpuFields& f = s.f;
  json j = json::object();
  j["schema_version"] = kDetectSchemaVersion;
  j["index"] = s.index;
  j["vendor"] = f.vendor.value_or("unknown");
  put(j, "model", f.model);
  put(j, "device_id", f.bus_id);
  put(j, "pci_id", s.pci_id());
  put(j, "uuid", f.uuid);
  put(j, "kernel_driver", f.kernel_driver);
  put(j, "driver", f.driver_version);
  put(j, "vram_total_mb", f.vram_total_mb);
  put(j, "vram_free_mb", f.vram_free_mb);
  put(j, "vram_used_mb", f.vram_used_mb);
  put(j, "compute_capability", f.compute_capability);
  put(j, "cuda_version", f.cuda_version);
  put(j, "opencl_version", f.opencl_version);
  put(j, "vulkan_version", f.vulkan_version);
  put(j, "opengl_version", f.opengl_version);
  put(j, "clock_mhz", f.clock_mhz);
  put(j, "memory_bus_width", f.memory_bus_width);
  put(j, "num_sm", f.num_sm);
  put(j, "pci_bandwidth", s.pci_bandwidth());
  put(j, "pcie_gen", f.pcie_gen);
  put(j, "pcie_width", f.pcie_width);
  json t = json::object();
  put(t, "slowdown_c", f.thermal.slowdown_c);
  put(t, "shutdown_c", f.thermal.shutdown_c);
  put(t, "max_operating_c", f.thermal.max_operating_c);
  j["thermal_limits"] = t;
  put(j, "power_limit_w", f.power_limit_w);
  put(j, "power_limit_min_w", f.power_limit_min_w);
  put(j, "power_limit_max_w", f.power_limit_max_w);
  put(j, "power_limit_default_w", f.power_limit_default_w);
  put(j, "numa_node", f.numa_node);
  put(j, "mig_mode", f.mig_mode);
  put(j, "persistence_mode", f.persistence_mode);
  put(j, "power_state", f.power_state);
  put(j, "temperature_c", f.temperature_c);
  put(j, "power_draw_w", f.power_draw_w);
  put(j, "utilization_pct", f.utilization_pct);
  j["partitions"] = partitions_to_json(f.partitions);
  put(j, "compute_partition", f.compute_partition);
  put(j, "memory_partition", f.memory_partition);
  j["detection_sources"] = s.detection_sources;
  j["field_sources"] = s.field_sources;
  j["detection_timestamp"] = s.detection_timestamp;
  j["notes"] = s.notes;
  return j;
}

GpuSpec spec_from_json(const nlohmann::json& j) {
  if (!j.is_object()) throw std::runtime_error("a GPU entry is not a JSON object");
  GpuSpec s;
  GpuFields& f = s.f;
  std::optional<int> index;
  get(j, "index", index);
  s.index = index.value_or(0);
  get(j, "vendor", f.vendor);
  get(j, "model", f.model);
  get(j, "device_id", f.bus_id);
  std::optional<std::string> pci_id;
  get(j, "pci_id", pci_id);
  if (pci_id) {
    auto parts = split(*pci_id, ':');
    if (parts.size() == 2) {
      auto v = parse_hex(parts[0]);
      auto d = parse_hex(parts[1]);
      if (v && d) {
        f.pci_vendor_id = static_cast<uint32_t>(*v);
        f.pci_device_id = static_cast<uint32_t>(*d);
      }
    }
  }
  get(j, "uuid", f.uuid);
  get(j, "kernel_driver", f.kernel_driver);
  get(j, "driver", f.driver_version);
  get(j, "vram_total_mb", f.vram_total_mb);
  get(j, "vram_free_mb", f.vram_free_mb);
  get(j, "vram_used_mb", f.vram_used_mb);
  get(j, "compute_capability", f.compute_capability);
  get(j, "cuda_version", f.cuda_version);
  get(j, "opencl_version", f.opencl_version);
  get(j, "vulkan_version", f.vulkan_version);
  get(j, "opengl_version", f.opengl_version);
  if (!f.opengl_version) get(j, "open_gl_version", f.opengl_version);  // legacy key
  get(j, "clock_mhz", f.clock_mhz);
  get(j, "memory_bus_width", f.memory_bus_width);
  get(j, "num_sm", f.num_sm);
  get(j, "pcie_gen", f.pcie_gen);
  get(j, "pcie_width", f.pcie_width);
  if (!f.pcie_gen || !f.pcie_width) {
    std::optional<std::string> bw;
    get(j, "pci_bandwidth", bw);
    if (bw) {  // "Gen5 x16"
      auto sp = bw->find(" x");
      if (starts_with(*bw, "Gen") && sp != std::string::npos) {
        auto g = parse_int(std::string_view(*bw).substr(3, sp - 3));
        auto w = parse_int(std::string_view(*bw).substr(sp + 2));
        if (g && w) {
          f.pcie_gen = static_cast<int>(*g);
          f.pcie_width = static_cast<int>(*w);
        }
      }
    }
  }
  auto t = j.find("thermal_limits");
  if (t != j.end() && t->is_object()) {
    get(*t, "slowdown_c", f.thermal.slowdown_c);
    get(*t, "shutdown_c", f.thermal.shutdown_c);
    get(*t, "max_operating_c", f.thermal.max_operating_c);
  }
  get(j, "power_limit_w", f.power_limit_w);
  get(j, "power_limit_min_w", f.power_limit_min_w);
  get(j, "power_limit_max_w", f.power_limit_max_w);
  get(j, "power_limit_default_w", f.power_limit_default_w);
  get(j, "numa_node", f.numa_node);
  get(j, "mig_mode", f.mig_mode);
  get(j, "persistence_mode", f.persistence_mode);
  get(j, "power_state", f.power_state);
  get(j, "temperature_c", f.temperature_c);
  get(j, "power_draw_w", f.power_draw_w);
  get(j, "utilization_pct", f.utilization_pct);
  if (auto p = j.find("partitions"); p != j.end() && !p->is_null())
    f.partitions = partitions_from_json(*p);
  get(j, "compute_partition", f.compute_partition);
  get(j, "memory_partition", f.memory_partition);
  std::optional<std::vector<std::string>> v;
  get(j, "detection_sources", v);
  if (v) s.detection_sources = *v;
  std::optional<std::map<std::string, std::string>> fs;
  get(j, "field_sources", fs);
  if (fs) s.field_sources = *fs;
  v.reset();
  get(j, "notes", v);
  if (v) s.notes = *v;
  std::optional<std::string> ts;
  get(j, "detection_timestamp", ts);
  s.detection_timestamp = ts.value_or("");
  return s;
}

nlohmann::json specs_to_json(const std::vector<GpuSpec>& specs) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& s : specs) a.push_back(spec_to_json(s));
  return a;
}

std::vector<GpuSpec> specs_from_json(const nlohmann::json& j) {
  if (!j.is_array()) throw std::runtime_error("expected a JSON array of GPU objects");
  std::vector<GpuSpec> out;
  for (const auto& e : j) out.push_back(spec_from_json(e));
  return out;
}

}  // namespace grey
