// The normalized GPU record. Every field is optional: "unknown" is a state of its own and is
// printed as JSON null, never as 0 or "".
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace grey {

struct ThermalLimits {
  std::optional<int> slowdown_c;
  std::optional<int> shutdown_c;
  std::optional<int> max_operating_c;
  bool empty() const { return !slowdown_c && !shutdown_c && !max_operating_c; }
};

// One MIG instance of a GPU (SPEC §9): a compute instance inside a GPU instance.
struct Partition {
  std::string kind = "mig";
  std::optional<int> gi_id;
  std::optional<int> ci_id;
  std::optional<std::string> profile;  // "3g.40gb" (nvidia-smi -L may prefix "2c.")
  std::optional<int64_t> memory_total_mb;
  std::optional<std::string> uuid;  // "MIG-..." or null
  std::optional<int> dev_index;     // the tool's MIG device index; not printed
};

// What one source saw of one device. Parsers fill only what they read.
struct GpuFields {
  std::optional<std::string> vendor;  // nvidia | amd | intel | unknown
  std::optional<std::string> model;
  std::optional<std::string> bus_id;  // normalized "0000:01:00.0"
  std::optional<uint32_t> pci_vendor_id;
  std::optional<uint32_t> pci_device_id;
  std::optional<std::string> uuid;
  std::optional<std::string> kernel_driver;   // nvidia | amdgpu | i915 | xe | radeon | ...
  std::optional<std::string> driver_version;  // "550.54.15"
  std::optional<int64_t> vram_total_mb;
  std::optional<int64_t> vram_free_mb;
  std::optional<int64_t> vram_used_mb;
  std::optional<std::string> compute_capability;  // "9.0" or "gfx90a"
  std::optional<std::string> cuda_version;
  std::optional<std::string> opencl_version;
  std::optional<std::string> vulkan_version;
  std::optional<std::string> opengl_version;
  std::optional<int> clock_mhz;  // max graphics clock
  std::optional<int> memory_bus_width;
  std::optional<int> num_sm;  // SMs or CUs
  std::optional<int> pcie_gen;
  std::optional<int> pcie_width;
  ThermalLimits thermal;
  std::optional<double> power_limit_w;
  std::optional<double> power_limit_min_w;
  std::optional<double> power_limit_max_w;
  std::optional<double> power_limit_default_w;
  std::optional<int> numa_node;
  std::optional<bool> mig_mode;
  std::optional<bool> persistence_mode;
  // power/runtime_status: "active" | "suspended" | "unsupported" (SPEC §9).
  std::optional<std::string> power_state;
  // Live readings seen at detection time (telemetry proper lives elsewhere).
  std::optional<double> temperature_c;
  std::optional<double> power_draw_w;
  std::optional<int> utilization_pct;
  std::optional<int> tool_index;  // the device's index in the tool that reported it
  // Partitions (SPEC §9): MIG instances, and AMD partition modes ("SPX"/"CPX", "NPS1").
  std::vector<Partition> partitions;
  std::optional<std::string> compute_partition;
  std::optional<std::string> memory_partition;
};

// Fills what `into` lacks from `from`: the whole list when `into` has none, else the unset
// fields of entries that match by MIG device index or uuid. True when anything was filled.
bool fill_partitions(std::vector<Partition>& into, const std::vector<Partition>& from);
nlohmann::json partitions_to_json(const std::vector<Partition>& p);
std::vector<Partition> partitions_from_json(const nlohmann::json& j);

// Fills every unset field of `into` from `from`. Returns the names of the fields it filled
// (GpuFields member names: "bus_id", "driver_version", "thermal.slowdown_c").
std::vector<std::string> fill_missing(GpuFields& into, const GpuFields& from);

// The key under which a GpuFields member appears in a GPU object of `detect --json`
// ("bus_id" -> "device_id", "pci_vendor_id" -> "pci_id", "thermal.slowdown_c" ->
// "thermal_limits.slowdown_c"); "" for members that are not printed (tool_index).
std::string json_key_of_field(std::string_view member);

// One device as one source saw it.
struct Observation {
  GpuFields f;
  std::vector<std::string> notes;
  // Set when the source itself knows this is a software or virtual device (llvmpipe,
  // PHYSICAL_DEVICE_TYPE_CPU, ...). The detector also classifies every observation.
  std::optional<std::string> software_reason;
  // Which of the source's inputs a field was read from, where the source had a choice
  // (JSON key -> "pp_od_clk_voltage OD_SCLK upper bound"); shown in GpuSpec::field_sources.
  std::map<std::string, std::string> field_detail;
  std::string display_name() const;
};

// A device that was seen and deliberately not counted as a GPU.
struct IgnoredDevice {
  std::string source;
  std::string name;
  std::string reason;
};

// The merged record of one physical GPU (SPEC §1).
struct GpuSpec {
  int index = 0;
  GpuFields f;
  std::vector<std::string> notes;
  std::vector<std::string> detection_sources;
  // For every field that has a value: the source whose value won (JSON key -> source name,
  // "pci.ids" for a model name looked up by PCI id).
  std::map<std::string, std::string> field_sources;
  std::string detection_timestamp;

  std::optional<std::string> pci_id() const;  // "10de:2330"
  std::optional<std::string> pci_bandwidth() const;
};

nlohmann::json spec_to_json(const GpuSpec& s);
// Lenient about absent keys; throws std::runtime_error naming the key for wrong types.
// Accepts the legacy key "open_gl_version".
GpuSpec spec_from_json(const nlohmann::json& j);
nlohmann::json specs_to_json(const std::vector<GpuSpec>& specs);
std::vector<GpuSpec> specs_from_json(const nlohmann::json& j);

std::string vendor_from_pci_id(uint32_t pci_vendor);  // 0x10de -> "nvidia"
std::optional<uint32_t> pci_vendor_for(const std::string& vendor);

}  // namespace grey
