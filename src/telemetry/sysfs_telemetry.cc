// The sysfs telemetry backend. Per DRM card (not driven by the NVIDIA driver, which exposes
// none of these files), read through HostFs:
//   amdgpu (Documentation/gpu/amdgpu/driver-misc.rst, thermal.rst):
//     device/mem_info_vram_used, mem_info_vram_total (bytes), device/gpu_busy_percent,
//     hwmon temp*_input (millidegrees C; the "edge" sensor where labelled, else the lowest
//     index), power1_average, else power1_input (microwatts), power1_cap, power1_cap_min,
//     power1_cap_max (microwatts; a 0 min or max means "not reported").
//   i915 / xe (Documentation/ABI/testing/sysfs-driver-intel-{i915,xe}-hwmon):
//     hwmon temp1_input, power1_max (PL1; 0 = disabled, left unknown), energy1_input
//     (microjoules, monotonic): the power is the energy difference of two samples over the
//     time between them, so the first sample of a card has no power reading.
// Cards are found as /sys/class/drm/cardN (not cardN-CONNECTOR); the bus id comes from the
// device link, else the uevent's PCI_SLOT_NAME; the driver from the uevent, else the driver
// link. The uevent and path helpers are util/sysfs.h's, shared with detection; which devices
// are not GPUs is model/software_device.h's.
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>

#include "model/software_device.h"
#include "telemetry/telemetry.h"
#include "util/strings.h"
#include "util/sysfs.h"

namespace grey {

namespace {

constexpr size_t kCap = 64 * 1024;

using sysfs::basename_of;
using sysfs::card_number;
using sysfs::number_after;

std::string fmt(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

class Reader {
 public:
  explicit Reader(HostFs& fs) : fs_(fs) {}
  std::optional<std::string> text(const std::string& p) {
    auto r = fs_.read(p, kCap);
    if (!r) return std::nullopt;
    return clean_value(*r);
  }
  std::optional<int64_t> integer(const std::string& p) {
    auto t = text(p);
    if (!t) return std::nullopt;
    return parse_int(*t);
  }
  HostFs& fs() { return fs_; }

 private:
  HostFs& fs_;
};

// The hwmon directory of a device (see sysfs::choose_hwmon).
std::optional<std::string> hwmon_dir(Reader& r, const std::string& dev_dir,
                                     const std::optional<std::string>& driver) {
  auto c = sysfs::choose_hwmon(r.fs(), dev_dir, driver);
  if (!c) return std::nullopt;
  return c->dir;
}

void read_temperature(Reader& r, const std::string& hw, GpuSample& s) {
  std::vector<int> idx = sysfs::hwmon_temp_inputs(r.fs(), hw);
  if (idx.empty()) return;
  int chosen = idx.front();
  for (int n : idx) {
    if (to_lower(r.text(hw + "/temp" + std::to_string(n) + "_label").value_or("")) == "edge") {
      chosen = n;
      break;
    }
  }
  std::string file = "temp" + std::to_string(chosen) + "_input";
  auto v = r.integer(hw + "/" + file);
  if (!v) {
    s.notes.push_back("hwmon " + file + " is unreadable");
    return;
  }
  double c = static_cast<double>(*v) / 1000.0;
  if (c < -60 || c > 200) {
    s.notes.push_back("hwmon " + file + " reads " + std::to_string(*v) + "; ignored");
    return;
  }
  s.temperature_c = c;
}

std::optional<double> watts(std::optional<int64_t> uw) {
  if (!uw || *uw < 0) return std::nullopt;
  return static_cast<double>(*uw) / 1e6;
}

}  // namespace

SysfsTelemetry::SysfsTelemetry(std::shared_ptr<HostFs> fs) : fs_(std::move(fs)) {}

BackendSample SysfsTelemetry::sample(uint64_t now_ns) {
  BackendSample res;
  std::vector<GpuSample>& out = res.gpus;
  if (!fs_) return res;
  Reader r(*fs_);
  const std::string drm = "/sys/class/drm";
  std::vector<std::pair<int, std::string>> cards;
  for (const std::string& e : fs_->list(drm))
    if (auto n = card_number(e)) cards.emplace_back(*n, e);
  std::sort(cards.begin(), cards.end());
  std::vector<std::string> seen;
  std::map<std::string, std::pair<uint64_t, uint64_t>> energy_next;
  for (const auto& [n, name] : cards) {
    auto t0 = std::chrono::steady_clock::now();
    std::string card = drm + "/" + name;
    std::string dev = card + "/device";
    if (!fs_->exists(dev)) continue;
    auto uevent_text = fs_->read(dev + "/uevent", kCap);
    sysfs::Uevent u = uevent_text ? sysfs::parse_uevent(*uevent_text) : sysfs::Uevent{};
    std::optional<std::string> bus;
    if (auto link = fs_->read_link(dev)) bus = sysfs::pci_address_in_path(basename_of(*link));
    if (!bus) bus = u.slot;
    std::optional<std::string> driver = u.driver;
    if (!driver) {
      if (auto l = fs_->read_link(dev + "/driver")) driver = basename_of(*l);
    }
    if (driver && (*driver == "nvidia" || *driver == "nvidia-drm")) continue;  // NVML's
    if (sysfs::software_reason(driver ? std::optional<std::string_view>(*driver) : std::nullopt,
                               u.vendor, u.device))
      continue;  // virtual display adapters, firmware framebuffers
    if (bus) {
      if (std::find(seen.begin(), seen.end(), *bus) != seen.end()) continue;
      seen.push_back(*bus);
    }

    GpuSample s;
    s.index = n;
    s.bus_id = bus;
    s.backend = "sysfs";
    // SPEC §9: runtime_status first; a suspended card is reported without reading the
    // mem_info_*, gpu_busy_percent or hwmon files, which would wake it.
    if (auto rs = fs_->read(dev + "/power/runtime_status", 64)) {
      s.power_state = sysfs::power_state_from(*rs);
      if (sysfs::is_suspended(s.power_state)) {
        s.notes.push_back(
            "runtime-suspended: only power/runtime_status was read, so as not to wake it");
        s.collect_ms =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                .count();
        out.push_back(std::move(s));
        continue;
      }
    }

    auto total = r.integer(dev + "/mem_info_vram_total");
    auto used = r.integer(dev + "/mem_info_vram_used");
    if (total && *total >= (1 << 20)) {
      s.vram_total_mb = bytes_to_mib(static_cast<uint64_t>(*total));
      if (used && *used >= 0 && *used <= *total)
        s.vram_used_mb = bytes_to_mib(static_cast<uint64_t>(*used));
      else if (used)
        s.notes.push_back("mem_info_vram_used reads " + std::to_string(*used) + "; ignored");
    }
    if (auto busy = r.integer(dev + "/gpu_busy_percent")) {
      if (*busy >= 0 && *busy <= 100)
        s.utilization_pct = static_cast<double>(*busy);
      else
        s.notes.push_back("gpu_busy_percent reads " + std::to_string(*busy) + "; ignored");
    }

    if (auto hw = hwmon_dir(r, dev, driver)) {
      read_temperature(r, *hw, s);
      auto pw = [&](const char* f) { return r.integer(*hw + "/" + f); };
      if (auto w = watts(pw("power1_average")))
        s.power_w = w;
      else if (auto w2 = watts(pw("power1_input")))
        s.power_w = w2;
      if (auto cap = pw("power1_cap"); cap && *cap > 0) {
        s.power_limit_w = watts(cap);
        if (auto lo = pw("power1_cap_min"); lo && *lo > 0) s.power_limit_min_w = watts(lo);
        if (auto hi = pw("power1_cap_max"); hi && *hi > 0) s.power_limit_max_w = watts(hi);
      } else if (auto pl1 = pw("power1_max")) {
        if (*pl1 > 0)
          s.power_limit_w = watts(pl1);
        else
          s.notes.push_back("hwmon power1_max reads 0 (PL1 power limit disabled)");
      }
      if (!s.power_w) {
        if (auto e = pw("energy1_input"); e && *e >= 0) {
          uint64_t uj = static_cast<uint64_t>(*e);
          auto prev = energy_.find(card);
          if (prev != energy_.end() && now_ns > prev->second.second && uj >= prev->second.first) {
            double dt_s = static_cast<double>(now_ns - prev->second.second) / 1e9;
            s.power_w = static_cast<double>(uj - prev->second.first) / 1e6 / dt_s;
          } else if (prev == energy_.end()) {
            s.notes.push_back("power from hwmon energy1_input needs a second sample");
          } else {
            s.notes.push_back("hwmon energy1_input went backwards; power unknown this sample");
          }
          energy_next[card] = {uj, now_ns};
        }
      }
      if (s.power_limit_w && s.power_limit_max_w && *s.power_limit_w > *s.power_limit_max_w)
        s.notes.push_back("power limit " + fmt(*s.power_limit_w) + " W is above its maximum " +
                          fmt(*s.power_limit_max_w) + " W");
    }
    s.collect_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    out.push_back(std::move(s));
  }
  energy_ = std::move(energy_next);
  return res;
}

}  // namespace grey
