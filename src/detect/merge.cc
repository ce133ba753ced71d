#include <algorithm>
#include <cmath>
#include <set>

#include "detect/detector.h"
#include "detect/software.h"
#include "sources/amdgpu_ids.h"
#include "sources/pci_names.h"
#include "util/strings.h"

namespace grey {

namespace {

struct Item {
  const Observation* o;
  std::string source;
  int auth;
  size_t order;
};

struct Group {
  std::vector<Item> items;
  std::optional<std::string> bus;
  std::optional<std::string> uuid;
  std::string vendor = "unknown";
  std::optional<uint32_t> device_id;
  std::vector<std::string> notes;
  bool has_source(const std::string& s) const {
    return std::any_of(items.begin(), items.end(), [&](const Item& i) { return i.source == s; });
  }
};

std::string vendor_of(const GpuFields& f) {
  if (f.vendor && *f.vendor != "unknown") return *f.vendor;
  if (f.pci_vendor_id) return vendor_from_pci_id(*f.pci_vendor_id);
  return "unknown";
}

std::string lower_uuid(const std::string& u) {
  return to_lower(u);
}

void add(Group& g, const Item& it) {
  g.items.push_back(it);
  const GpuFields& f = it.o->f;
  if (!g.bus && f.bus_id) g.bus = f.bus_id;
  if (!g.uuid && f.uuid) g.uuid = lower_uuid(*f.uuid);
  if (g.vendor == "unknown") g.vendor = vendor_of(f);
  if (!g.device_id && f.pci_device_id) g.device_id = f.pci_device_id;
}

std::string fmt_mib(int64_t v) {
  return std::to_string(v) + " MiB";
}

// "dddd:bb:dd.f" -> ("dddd:bb:dd", f); nullopt for anything else.
std::optional<std::pair<std::string, int>> split_function(const std::optional<std::string>& bus) {
  if (!bus || bus->size() < 3) return std::nullopt;
  size_t dot = bus->rfind('.');
  if (dot == std::string::npos || dot + 2 != bus->size()) return std::nullopt;
  char c = (*bus)[dot + 1];
  if (c < '0' || c > '7') return std::nullopt;
  return std::make_pair(bus->substr(0, dot), c - '0');
}

std::optional<std::string> driver_of(const Group& g) {
  for (const auto& it : g.items)
    if (it.o->f.kernel_driver) return it.o->f.kernel_driver;
  return std::nullopt;
}

// One physical GPU can show as several PCI functions of one slot (a VGA controller at function
// 0 and a driverless "Display controller" at function 1). A function that no driver claims is
// folded into the same vendor's function of that slot that a driver claims (else the lowest
// function). Functions with drivers of their own stay separate GPUs.
void fold_sibling_functions(std::vector<Group>& groups) {
  for (size_t i = 0; i < groups.size(); ++i) {
    auto me = split_function(groups[i].bus);
    if (!me || driver_of(groups[i])) continue;
    size_t best = groups.size();
    for (size_t j = 0; j < groups.size(); ++j) {
      if (j == i) continue;
      auto other = split_function(groups[j].bus);
      if (!other || other->first != me->first || groups[j].vendor != groups[i].vendor ||
          groups[i].vendor == "unknown")
        continue;
      bool drv = driver_of(groups[j]).has_value();
      if (!drv && other->second > me->second) continue;  // the lowest driverless one stays
      if (best == groups.size() || (drv && !driver_of(groups[best])) ||
          (drv == driver_of(groups[best]).has_value() &&
           other->second < split_function(groups[best].bus)->second))
        best = j;
    }
    if (best == groups.size()) continue;
    Group& into = groups[best];
    into.notes.push_back("PCI function " + *groups[i].bus + " (no driver) is another function of " +
                         *into.bus + ", the same GPU; not counted separately");
    for (auto& it : groups[i].items) into.items.push_back(it);
    groups.erase(groups.begin() + static_cast<std::ptrdiff_t>(i));
    i = static_cast<size_t>(-1);  // restart: indices moved
  }
}

// No source named the model (or only placeholders did): libdrm's amdgpu.ids marketing name
// for AMD, else pci.ids' name, with a note; when no table knows the id, a note says so.
void name_from_id_tables(GpuSpec& s,
                         const std::vector<std::pair<std::string, std::string>>& placeholders) {
  std::string why;
  for (const auto& [src, name] : placeholders)
    why += (why.empty() ? "" : ", ") + src + " reports the placeholder name '" +
           quote_for_note(name, 64) + "'";
  if (s.f.model) {
    if (!why.empty()) s.notes.push_back(why + "; model from " + s.field_sources["model"]);
    return;
  }
  if (!s.f.pci_vendor_id || !s.f.pci_device_id) {
    if (!why.empty()) s.notes.push_back(why + "; no PCI id to look a name up; model unknown");
    return;
  }
  std::string id = *s.pci_id();
  if (*s.f.pci_vendor_id == 0x1002u) {
    if (auto name = amdgpu_marketing_name(*s.f.pci_device_id, std::nullopt)) {
      s.f.model = *name;
      s.field_sources["model"] = "amdgpu.ids";
      s.notes.push_back((why.empty() ? "" : why + "; ") +
                        "model name looked up in libdrm's amdgpu.ids from PCI id " + id);
      return;
    }
  }
  if (auto name = pci_device_name(*s.f.pci_vendor_id, *s.f.pci_device_id)) {
    s.f.model = *name;
    s.field_sources["model"] = "pci.ids";
    s.notes.push_back((why.empty() ? "" : why + "; ") +
                      "model name looked up in pci.ids from PCI id " + id);
    return;
  }
  s.notes.push_back((why.empty() ? "no source names the model" : why) + "; PCI id " + id +
                    (*s.f.pci_vendor_id == 0x1002u ? " is in neither amdgpu.ids nor pci.ids"
                                                   : " is not in pci.ids") +
                    " (a card newer than these tables); model unknown");
}

}  // namespace

std::vector<GpuSpec> merge_reports(const std::vector<SourceReport>& reports,
                                   const std::map<std::string, int>& authority,
                                   std::vector<IgnoredDevice>* ignored,
                                   const std::string& timestamp) {
  std::vector<Item> items;
  // A bus address any source knows to be a software/virtual adapter is one for all sources.
  std::map<std::string, std::string> software_bus;
  size_t order = 0;
  for (const auto& rep : reports) {
    auto a = authority.find(rep.source);
    int auth = a == authority.end() ? 0 : a->second;
    for (const auto& ig : rep.ignored)
      if (ignored) ignored->push_back(ig);
    for (const auto& o : rep.devices) {
      // A MIG instance (CUDA, OpenCL or Vulkan enumerate them on a MIG-enabled GPU) is a
      // partition of its GPU (SPEC §9), never a GPU of its own.
      if (o.f.uuid && starts_with(to_lower(*o.f.uuid), "mig-")) {
        if (ignored)
          ignored->push_back({rep.source, o.display_name(),
                              "a MIG instance (" + *o.f.uuid +
                                  "), listed under its GPU's partitions, not counted as a GPU"});
        continue;
      }
      if (auto why = software_reason(o)) {
        if (ignored) ignored->push_back({rep.source, o.display_name(), *why});
        if (o.f.bus_id) software_bus.emplace(*o.f.bus_id, *why);
        continue;
      }
      items.push_back({&o, rep.source, auth, order++});
    }
  }
  // Most authoritative first, so groups take their identity from the best source.
  std::stable_sort(items.begin(), items.end(),
                   [](const Item& x, const Item& y) { return x.auth > y.auth; });

  std::vector<Group> groups;
  std::vector<Item> by_uuid, rest;
  for (const auto& it : items) {
    const auto& f = it.o->f;
    if (f.bus_id && software_bus.count(*f.bus_id)) continue;  // already listed as ignored
    if (f.bus_id) {
      auto g = std::find_if(groups.begin(), groups.end(),
                            [&](const Group& gr) { return gr.bus == f.bus_id; });
      if (g == groups.end()) {
        groups.emplace_back();
        add(groups.back(), it);
      } else {
        add(*g, it);
      }
    } else if (f.uuid) {
      by_uuid.push_back(it);
    } else {
      rest.push_back(it);
    }
  }
  for (const auto& it : by_uuid) {
    std::string u = lower_uuid(*it.o->f.uuid);
    auto g =
        std::find_if(groups.begin(), groups.end(), [&](const Group& gr) { return gr.uuid == u; });
    if (g != groups.end()) {
      add(*g, it);
    } else {
      rest.push_back(it);  // matched by vendor order below, or a group of its own
    }
  }
  for (const auto& it : rest) {
    std::string v = vendor_of(it.o->f);
    auto pick = groups.end();
    // Same vendor and PCI device id first, then same vendor, then (unknown vendor) anything,
    // never a group that already holds a device from this very source.
    for (int pass = 0; pass < 3 && pick == groups.end(); ++pass) {
      for (auto g = groups.begin(); g != groups.end(); ++g) {
        if (g->has_source(it.source)) continue;
        bool vendor_ok =
            g->vendor == v || (pass == 2 && (v == "unknown" || g->vendor == "unknown"));
        if (!vendor_ok) continue;
        if (pass == 0 && !(it.o->f.pci_device_id && g->device_id == it.o->f.pci_device_id))
          continue;
        pick = g;
        break;
      }
    }
    if (pick == groups.end()) {
      groups.emplace_back();
      add(groups.back(), it);
    } else {
      add(*pick, it);
    }
  }

  fold_sibling_functions(groups);

  std::stable_sort(groups.begin(), groups.end(), [](const Group& a, const Group& b) {
    if (a.bus && b.bus) return *a.bus < *b.bus;
    return a.bus.has_value() && !b.bus.has_value();
  });

  std::vector<GpuSpec> out;
  for (auto& g : groups) {
    std::stable_sort(g.items.begin(), g.items.end(),
                     [](const Item& x, const Item& y) { return x.auth > y.auth; });
    GpuSpec s;
    s.detection_timestamp = timestamp;
    s.notes = g.notes;
    std::set<std::string> seen_sources;
    std::vector<std::pair<std::string, std::string>> placeholders;  // source, name
    for (const auto& it : g.items) {
      // A placeholder product name ("Graphics Device", "0x1002") is no name: it must not win
      // over a real one from a less authoritative source, nor over the id tables below.
      const GpuFields* fields = &it.o->f;
      GpuFields cleaned;
      if (fields->model && is_placeholder_product_name(*fields->model)) {
        placeholders.emplace_back(it.source, *fields->model);
        cleaned = *fields;
        cleaned.model.reset();
        fields = &cleaned;
      }
      for (const std::string& member : fill_missing(s.f, *fields)) {
        std::string key = json_key_of_field(member);
        if (key.empty()) continue;
        auto detail = it.o->field_detail.find(key);
        s.field_sources.emplace(key, detail == it.o->field_detail.end()
                                         ? it.source
                                         : it.source + " (" + detail->second + ")");
      }
      if (seen_sources.insert(it.source).second) s.detection_sources.push_back(it.source);
      for (const auto& n : it.o->notes) s.notes.push_back(it.source + ": " + n);
    }
    if (!s.f.vendor || *s.f.vendor == "unknown") {
      s.f.vendor = s.f.pci_vendor_id ? vendor_from_pci_id(*s.f.pci_vendor_id) : g.vendor;
      // The group's vendor comes from a PCI vendor id too (vendor_of); "unknown" has no source.
      if (*s.f.vendor != "unknown")
        s.field_sources["vendor"] = "derived from pci_id";
      else
        s.field_sources.erase("vendor");
    }
    name_from_id_tables(s, placeholders);
    // Contradictions worth a user's attention.
    std::vector<std::pair<std::string, int64_t>> vram;
    for (const auto& it : g.items)
      if (it.o->f.vram_total_mb) vram.emplace_back(it.source, *it.o->f.vram_total_mb);
    if (vram.size() > 1) {
      int64_t best = vram.front().second;
      std::string diff;
      for (const auto& [src, v] : vram)
        if (best > 0 && std::llabs(v - best) * 50 > best)
          diff += (diff.empty() ? "" : ", ") + src + " " + fmt_mib(v);
      if (!diff.empty())
        s.notes.push_back("sources disagree on total VRAM: using " + vram.front().first + " " +
                          fmt_mib(best) + " over " + diff);
    }
    std::vector<std::pair<std::string, std::string>> drv;
    for (const auto& it : g.items)
      if (it.o->f.driver_version) drv.emplace_back(it.source, *it.o->f.driver_version);
    for (const auto& [src, v] : drv)
      if (v != drv.front().second) {
        s.notes.push_back("sources disagree on the driver version: " + drv.front().first + " " +
                          drv.front().second + ", " + src + " " + v);
        break;
      }
    Observation merged;
    merged.f = s.f;
    if (auto why = software_reason(merged)) {
      if (ignored) ignored->push_back({s.detection_sources.front(), merged.display_name(), *why});
      continue;
    }
    out.push_back(std::move(s));
  }
  for (size_t i = 0; i < out.size(); ++i) out[i].index = static_cast<int>(i);
  return out;
}

}  // namespace grey
