// Parser for `nvidia-smi -q -x` (the XML form of `nvidia-smi -q`).
//
// Tolerates every DTD revision seen in the wild (v11 with <power_readings>/<power_draw>, v12
// with <gpu_power_readings>, v13 with <instant_power_draw> and T.Limit-relative temperatures),
// documents without a DOCTYPE, UTF-16 documents with a BOM (PowerShell redirection), a warning
// line printed before the XML, redacted or odd ids, and truncated documents (the GPUs read
// before the cut are returned, with a note).
#include <string.h>  // memmem

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <pugixml.hpp>
#include <string>
#include <string_view>

#include "sources/nvidia_smi_common.h"
#include "sources/parse_common.h"
#include "sources/parsers.h"
#include "util/strings.h"

namespace grey {
namespace {

constexpr size_t kMaxDevices = 1024;  // more GPUs than any machine has; bounds junk input

using nvsmi::clip;

// is_missing_marker() plus the unbracketed spellings nvidia-smi uses.
bool missing(std::string_view s) {
  return nvsmi::is_missing_value(s);
}

// Trimmed text of a child element found by a path of names ("pci/pci_bus_id"); empty when
// absent or a missing marker.
std::string_view text_at(pugi::xml_node n, std::initializer_list<const char*> path) {
  for (const char* name : path) {
    n = n.child(name);
    if (!n) return {};
  }
  std::string_view v = trim(n.child_value());
  if (missing(v)) return {};
  return v;
}

std::optional<int> int_of(std::string_view v) {
  if (v.empty()) return std::nullopt;
  auto d = leading_number(v);
  if (!d || std::fabs(*d) > 1e9) return std::nullopt;
  return static_cast<int>(std::lround(*d));
}

std::optional<double> watts_of(std::string_view v) {
  if (v.empty()) return std::nullopt;
  auto d = leading_number(v);
  if (!d || *d < 0 || *d > 1e7) return std::nullopt;
  return *d;
}

std::optional<bool> enabled_of(std::string_view v) {
  std::string l = to_lower(v);
  if (l == "enabled" || l == "on" || l == "yes") return true;
  if (l == "disabled" || l == "off" || l == "no") return false;
  return std::nullopt;
}

// A plausible absolute temperature threshold in °C.
std::optional<int> temp_of(std::string_view v) {
  auto t = int_of(v);
  if (!t || *t <= 0 || *t > 200) return std::nullopt;
  return t;
}

bool all_zero_uuid(std::string_view u) {
  if (starts_with(u, "GPU-") || starts_with(u, "MIG-")) u.remove_prefix(4);
  if (u.empty()) return false;
  for (char c : u)
    if (c != '0' && c != '-') return false;
  return true;
}

// Substring search that stays linear on adversarial text ("<<<<..."): glibc memmem.
size_t find_sub(std::string_view hay, std::string_view needle) {
  const void* p = ::memmem(hay.data(), hay.size(), needle.data(), needle.size());
  if (!p) return std::string_view::npos;
  return static_cast<size_t>(static_cast<const char*>(p) - hay.data());
}

std::string first_line(std::string_view s) {
  for (auto line : split_lines(s)) {
    auto t = trim(line);
    if (!t.empty()) return clip(t);
  }
  return {};
}

// Error texts nvidia-smi prints instead of a document.
bool is_tool_error_line(std::string_view l) {
  return nvsmi::is_tool_error_line(l, {"is not a valid"});
}

// Builds the "not XML" answer: an error message, "No devices were found", or garbage.
ParseResult not_xml(std::string_view text, ParseResult r) {
  std::vector<std::string> quoted;
  int scanned = 0;
  for (auto line : split_lines(text.substr(0, 64 * 1024))) {
    if (++scanned > 50) break;
    auto t = trim(line.substr(0, 1024));
    if (t.empty()) continue;
    if (icontains(t, "No devices were found")) {
      r.recognized = true;
      r.notes.push_back("nvidia-smi reported: " + clip(t) + " (zero GPUs)");
      return r;
    }
    if (is_tool_error_line(t) && quoted.size() < 4) quoted.push_back(clip(t));
  }
  r.recognized = false;
  if (!quoted.empty()) {
    std::string note = "nvidia-smi reported: ";
    for (size_t i = 0; i < quoted.size(); ++i) note += (i ? " / " : "") + quoted[i];
    r.notes.push_back(note);
  } else {
    std::string fl = first_line(text);
    r.notes.push_back("no <nvidia_smi_log> root element: not nvidia-smi XML" +
                      (fl.empty() ? std::string() : " (starts with: '" + clip(fl) + "')"));
  }
  return r;
}

// Removes the last text node of a document that was cut off: its value may be truncated
// ("<total>81" of "<total>81559 MiB</total>").
void drop_truncated_tail(pugi::xml_node root) {
  pugi::xml_node n = root;
  while (n.last_child()) n = n.last_child();
  if (n.type() == pugi::node_pcdata || n.type() == pugi::node_cdata) n.parent().remove_child(n);
}

void read_pci_device_id(std::string_view raw, Observation& o) {
  if (raw.empty()) return;
  auto v = parse_hex(raw);
  if (!v || *v > 0xffffffffull) {
    o.notes.push_back("pci device id '" + clip(raw) + "' is not hex; ignored");
    return;
  }
  uint32_t vendor = static_cast<uint32_t>(*v & 0xffffu);
  uint32_t device = static_cast<uint32_t>((*v >> 16) & 0xffffu);
  if (vendor != 0x10de || device == 0) {
    o.notes.push_back("pci device id '" + clip(raw) + "' is not a valid NVIDIA id (vendor " +
                      hex4(vendor) + ", device " + hex4(device) + "); ignored");
    return;
  }
  o.f.pci_vendor_id = vendor;
  o.f.pci_device_id = device;
}

void read_thermal(pugi::xml_node gpu, Observation& o) {
  pugi::xml_node t = gpu.child("temperature");
  if (!t) return;
  if (auto v = int_of(text_at(t, {"gpu_temp"}))) o.f.temperature_c = *v;
  o.f.thermal.slowdown_c = temp_of(text_at(t, {"gpu_temp_slow_threshold"}));
  o.f.thermal.shutdown_c = temp_of(text_at(t, {"gpu_temp_max_threshold"}));
  o.f.thermal.max_operating_c = temp_of(text_at(t, {"gpu_temp_max_gpu_threshold"}));
  if (!o.f.thermal.max_operating_c)
    o.f.thermal.max_operating_c = temp_of(text_at(t, {"gpu_target_temperature"}));
  // DTD v13 on newer boards reports thresholds relative to T.Limit instead of absolute ones.
  if (!o.f.thermal.slowdown_c && !o.f.thermal.shutdown_c) {
    std::string_view slow = text_at(t, {"gpu_temp_slow_tlimit_threshold"});
    std::string_view shut = text_at(t, {"gpu_temp_max_tlimit_threshold"});
    if (!slow.empty() || !shut.empty()) {
      std::string note = "temperature thresholds are reported relative to T.Limit only (slowdown " +
                         (slow.empty() ? std::string("N/A") : std::string(slow)) + ", shutdown " +
                         (shut.empty() ? std::string("N/A") : std::string(shut)) +
                         "); absolute slowdown/shutdown temperatures unknown";
      o.notes.push_back(note);
    }
  }
}

void read_power(pugi::xml_node gpu, Observation& o) {
  pugi::xml_node p = gpu.child("gpu_power_readings");
  if (!p) p = gpu.child("power_readings");
  if (!p) return;
  auto first = [&](std::initializer_list<const char*> names) -> std::optional<double> {
    for (const char* n : names)
      if (auto w = watts_of(text_at(p, {n}))) return w;
    return std::nullopt;
  };
  o.f.power_draw_w = first({"power_draw", "instant_power_draw", "average_power_draw"});
  o.f.power_limit_w = first({"current_power_limit", "power_limit", "enforced_power_limit"});
  o.f.power_limit_default_w = first({"default_power_limit"});
  o.f.power_limit_min_w = first({"min_power_limit"});
  o.f.power_limit_max_w = first({"max_power_limit"});
}

void read_pci(pugi::xml_node gpu, Observation& o) {
  pugi::xml_node pci = gpu.child("pci");
  std::string_view bus = text_at(pci, {"pci_bus_id"});
  if (auto b = normalize_bus_id(bus)) {
    o.f.bus_id = *b;
  } else {
    std::string_view attr = trim(gpu.attribute("id").value());
    if (auto b2 = normalize_bus_id(attr)) {
      o.f.bus_id = *b2;
    } else if (!bus.empty()) {
      o.notes.push_back("pci bus id '" + clip(bus) + "' is not a PCI address; ignored");
    }
  }
  // Read raw: an edited capture may hold "[REDACTED]", which deserves a note.
  std::string_view id_raw = trim(pci.child("pci_device_id").child_value());
  std::string id_low = to_lower(id_raw);
  if (!id_raw.empty() && !contains(id_low, "n/a") && !contains(id_low, "not supported") &&
      !contains(id_low, "deprecated"))
    read_pci_device_id(id_raw, o);

  pugi::xml_node link = pci.child("pci_gpu_link_info");
  for (const char* n : {"max_link_gen", "current_link_gen"}) {
    auto g = int_of(text_at(link, {"pcie_gen", n}));
    if (g && *g >= 1 && *g <= 16) {
      o.f.pcie_gen = *g;
      break;
    }
  }
  for (const char* n : {"max_link_width", "current_link_width"}) {
    auto w = int_of(text_at(link, {"link_widths", n}));
    if (w && *w >= 1 && *w <= 64) {
      o.f.pcie_width = *w;
      break;
    }
  }
}

void read_numa(pugi::xml_node gpu, Observation& o) {
  for (pugi::xml_node scope : {gpu, gpu.child("pci")}) {
    for (const char* n : {"numa_id", "numa_node", "numa_node_id", "gpu_numa_id"}) {
      std::string_view v = text_at(scope, {n});
      if (v.empty()) continue;
      auto i = parse_int(v);
      if (i && *i >= 0 && *i < 4096) {
        o.f.numa_node = static_cast<int>(*i);
        return;
      }
    }
  }
}

void read_compute_capability(pugi::xml_node gpu, Observation& o) {
  for (const char* n : {"compute_cap", "compute_capability", "cuda_compute_capability"}) {
    std::string_view v = text_at(gpu, {n});
    if (v.empty()) continue;
    auto parts = split(v, '.');
    if (parts.size() == 2 && parse_int(parts[0]) && parse_int(parts[1])) {
      o.f.compute_capability = std::string(v);
      return;
    }
  }
}

Observation read_gpu(pugi::xml_node gpu, int order, const std::optional<std::string>& driver,
                     const std::optional<std::string>& cuda) {
  Observation o;
  o.f.vendor = "nvidia";
  o.f.kernel_driver = "nvidia";  // nvidia-smi only talks to the NVIDIA kernel driver
  o.f.driver_version = driver;
  o.f.cuda_version = cuda;
  o.f.tool_index = order;

  if (auto name = text_at(gpu, {"product_name"}); !name.empty()) o.f.model = std::string(name);
  if (auto u = text_at(gpu, {"uuid"}); !u.empty()) {
    if (all_zero_uuid(u))
      o.notes.push_back("uuid '" + clip(u) + "' is all zeros (masked); ignored");
    else
      o.f.uuid = std::string(u);
  }
  read_pci(gpu, o);

  pugi::xml_node fb = gpu.child("fb_memory_usage");
  o.f.vram_total_mb = memory_to_mib(text_at(fb, {"total"}));
  o.f.vram_used_mb = memory_to_mib(text_at(fb, {"used"}));
  o.f.vram_free_mb = memory_to_mib(text_at(fb, {"free"}));

  if (auto c = int_of(text_at(gpu, {"max_clocks", "graphics_clock"})); c && *c > 0)
    o.f.clock_mhz = *c;

  read_thermal(gpu, o);
  read_power(gpu, o);
  read_numa(gpu, o);
  read_compute_capability(gpu, o);

  o.f.mig_mode = enabled_of(text_at(gpu, {"mig_mode", "current_mig"}));
  // <mig_devices><mig_device><index/><gpu_instance_id/><compute_instance_id/>
  // <fb_memory_usage><total/>...: partitions of this GPU ("None" when MIG is off).
  for (pugi::xml_node m : gpu.child("mig_devices").children("mig_device")) {
    if (o.f.partitions.size() >= 1024) break;
    Partition p;
    p.dev_index = int_of(text_at(m, {"index"}));
    p.gi_id = int_of(text_at(m, {"gpu_instance_id"}));
    p.ci_id = int_of(text_at(m, {"compute_instance_id"}));
    p.memory_total_mb = memory_to_mib(text_at(m, {"fb_memory_usage", "total"}));
    o.f.partitions.push_back(std::move(p));
  }
  o.f.persistence_mode = enabled_of(text_at(gpu, {"persistence_mode"}));
  if (auto u = int_of(text_at(gpu, {"utilization", "gpu_util"})); u && *u >= 0 && *u <= 100)
    o.f.utilization_pct = *u;

  // nvidia-smi's index follows the order of the document; the minor number (/dev/nvidiaN) can
  // differ from it, which matters for `nvidia-smi -i N`.
  if (auto m = parse_int(text_at(gpu, {"minor_number"})); m && *m != order)
    o.notes.push_back("minor number " + std::to_string(*m) + " differs from nvidia-smi index " +
                      std::to_string(order));
  return o;
}

ParseResult parse_document(std::string_view text) {
  ParseResult r;
  if (reject_empty(text, r)) return r;

  // A warning line printed before the document (stdout and stderr mixed): note it and parse
  // from the document start. A UTF-16 document (BOM) goes to pugixml whole.
  std::string_view body = text;
  const bool bom = starts_with(text, "\xFF\xFE") || starts_with(text, "\xFE\xFF") ||
                   starts_with(text, "\xEF\xBB\xBF");
  if (!bom) {
    size_t pos = find_sub(text, "<?xml");
    if (pos == std::string_view::npos) pos = find_sub(text, "<nvidia_smi_log");
    if (pos != std::string_view::npos && pos > 0 && !trim(text.substr(0, pos)).empty()) {
      r.notes.push_back("text before the XML document: '" + first_line(text.substr(0, pos)) + "'");
      body = text.substr(pos);
    }
  }

  // Not worth building a DOM for text that cannot hold the root element.
  if (!bom && find_sub(body, "<nvidia_smi_log") == std::string_view::npos)
    return not_xml(text, std::move(r));

  pugi::xml_document doc;
  pugi::xml_parse_result res = doc.load_buffer(body.data(), body.size(), pugi::parse_default);
  pugi::xml_node root = doc.child("nvidia_smi_log");
  if (!root) return not_xml(text, std::move(r));

  const bool truncated = !res;
  if (truncated) drop_truncated_tail(doc);

  std::optional<std::string> driver, cuda;
  if (auto d = text_at(root, {"driver_version"}); !d.empty()) driver = std::string(d);
  if (auto c = text_at(root, {"cuda_version"}); !c.empty()) cuda = std::string(c);

  int order = 0;
  for (pugi::xml_node gpu : root.children("gpu")) {
    if (r.devices.size() >= kMaxDevices) {
      r.notes.push_back("more than " + std::to_string(kMaxDevices) +
                        " <gpu> elements; the rest were ignored");
      break;
    }
    r.devices.push_back(read_gpu(gpu, order, driver, cuda));
    ++order;
  }

  auto attached = parse_int(text_at(root, {"attached_gpus"}));
  if (truncated) {
    std::string why = "XML is malformed at byte " + std::to_string(res.offset) + " (" +
                      res.description() + "): output truncated?";
    if (r.devices.empty()) {
      r.recognized = false;
      r.notes.push_back(why + " No <gpu> element could be read");
      return r;
    }
    r.notes.push_back(why + " Returning the " + std::to_string(r.devices.size()) +
                      " GPU(s) read before the error");
    r.devices.back().notes.push_back(
        "the XML was cut off inside or after this <gpu> element; some fields may be missing");
  }
  if (attached && *attached != static_cast<int64_t>(r.devices.size()))
    r.notes.push_back("attached_gpus says " + std::to_string(*attached) + " but " +
                      std::to_string(r.devices.size()) + " <gpu> element(s) were read");
  if (r.devices.empty() && !truncated) r.notes.push_back("nvidia-smi XML lists no GPUs");
  return r;
}

}  // namespace

ParseResult parse_nvidia_smi_xml(std::string_view text) {
  return guarded_parse("nvidia-smi XML", parse_document, text);
}

}  // namespace grey
