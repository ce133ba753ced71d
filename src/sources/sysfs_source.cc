#include "sources/sysfs_source.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>

#include "sources/amdgpu_ids.h"
#include "sources/pci_names.h"
#include "util/strings.h"

namespace grey {

namespace sysfs {

std::map<std::string, int64_t> parse_kfd_properties(std::string_view text) {
  std::map<std::string, int64_t> out;
  size_t nul = text.find('\0');
  if (nul != std::string_view::npos) text = text.substr(0, nul);
  for (std::string_view line : split_lines(text)) {
    line = trim(line);
    size_t sp = line.find_first_of(" \t");
    if (sp == std::string_view::npos || sp == 0) continue;
    auto v = parse_int(line.substr(sp + 1));
    if (v) out[std::string(line.substr(0, sp))] = *v;
  }
  return out;
}

std::optional<std::string> gfx_target_name(int64_t v) {
  if (v <= 0 || v >= 1000000) return std::nullopt;
  int64_t major = v / 10000, minor = (v / 100) % 100, step = v % 100;
  if (major == 0 || minor > 15 || step > 15) return std::nullopt;
  static const char kHex[] = "0123456789abcdef";
  std::string out = "gfx" + std::to_string(major);
  out += kHex[minor];
  out += kHex[step];
  return out;
}

std::optional<std::string> kfd_bus_id(int64_t domain, int64_t location_id) {
  if (domain < 0 || domain > 0xffff || location_id < 0 || location_id > 0xffff) return std::nullopt;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04x:%02x:%02x.%x", static_cast<unsigned>(domain),
                static_cast<unsigned>(location_id >> 8),
                static_cast<unsigned>((location_id >> 3) & 0x1f),
                static_cast<unsigned>(location_id & 7));
  return std::string(buf);
}

std::optional<int> max_dpm_clock_mhz(std::string_view text) {
  size_t nul = text.find('\0');
  if (nul != std::string_view::npos) text = text.substr(0, nul);
  std::optional<int> best;
  for (std::string_view line : split_lines(text)) {
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view rest = trim(line.substr(colon + 1));
    if (!icontains(rest, "mhz")) continue;
    auto v = leading_number(rest);
    if (!v || *v <= 0 || *v >= 100000) continue;
    int mhz = static_cast<int>(std::lround(*v));
    if (!best || mhz > *best) best = mhz;
  }
  return best;
}

std::optional<int> od_sclk_max_mhz(std::string_view text) {
  size_t nul = text.find('\0');
  if (nul != std::string_view::npos) text = text.substr(0, nul);
  // Sections start with a header line "NAME:" (OD_SCLK:, OD_MCLK:, OD_VDDC_CURVE:, OD_RANGE:,
  // OD_VDDGFX_OFFSET:, OD_SCLK_OFFSET: ...); entries are "N: <clock>MHz [<volt>mV]".
  bool in_sclk = false;
  std::optional<int> best;
  for (std::string_view line : split_lines(text)) {
    line = trim(line);
    if (line.empty()) continue;
    if (line.back() == ':' && line.find(' ') == std::string_view::npos &&
        line.find('\t') == std::string_view::npos) {
      in_sclk = line == "OD_SCLK:";
      continue;
    }
    if (!in_sclk) continue;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) continue;
    std::string_view idx = line.substr(0, colon);
    if (!all_digits(idx)) continue;
    std::string_view rest = trim(line.substr(colon + 1));
    auto v = leading_number(rest);
    if (!v || *v <= 0 || *v >= 100000) continue;
    // The number must be the clock: directly followed by its MHz unit.
    size_t unit = rest.find_first_not_of("0123456789.");
    if (unit == std::string_view::npos || !icontains(rest.substr(unit, 3), "mhz")) continue;
    int mhz = static_cast<int>(std::lround(*v));
    if (!best || mhz > *best) best = mhz;
  }
  return best;
}

std::optional<std::string> runtime_power_state(HostFs& fs, const std::string& bus_id) {
  auto t = fs.read("/sys/bus/pci/devices/" + bus_id + "/power/runtime_status", 64);
  if (!t) return std::nullopt;
  return power_state_from(*t);
}

std::vector<PowerEntry> scan_power_states(HostFs& fs) {
  std::vector<PowerEntry> out;
  auto add = [&](const std::string& dev_dir, std::optional<std::string> bus) {
    std::optional<uint32_t> cls, vendor;
    auto u_text = fs.read(dev_dir + "/uevent", 4096);
    Uevent u = u_text ? parse_uevent(*u_text) : Uevent{};
    if (auto c = fs.read(dev_dir + "/class", 64)) {
      if (auto v = parse_hex(clean_value(*c)); v && *v <= 0xffffff) cls = static_cast<uint32_t>(*v);
    }
    if (!cls) cls = u.pci_class;
    if (!cls || (*cls >> 16) != 0x03) return;
    if (auto v = fs.read(dev_dir + "/vendor", 64)) {
      if (auto h = parse_hex(clean_value(*v)); h && *h <= 0xffff)
        vendor = static_cast<uint32_t>(*h);
    }
    if (!vendor) vendor = u.vendor;
    if (!bus) bus = u.slot;
    if (bus &&
        std::any_of(out.begin(), out.end(), [&](const PowerEntry& e) { return e.bus_id == *bus; }))
      return;
    PowerEntry e;
    e.bus_id = bus.value_or("");
    e.pci_vendor = vendor;
    if (auto rs = fs.read(dev_dir + "/power/runtime_status", 64))
      e.power_state = power_state_from(*rs);
    out.push_back(std::move(e));
  };
  for (const std::string& name : fs.list("/sys/class/drm")) {
    if (!card_number(name)) continue;
    std::string dev_dir = "/sys/class/drm/" + name + "/device";
    std::optional<std::string> bus;
    if (auto link = fs.read_link(dev_dir)) bus = pci_address_in_path(basename_of(*link));
    add(dev_dir, bus);
  }
  for (const std::string& e : fs.list("/sys/bus/pci/devices")) {
    if (auto bus = normalize_bus_id(e)) add("/sys/bus/pci/devices/" + e, bus);
  }
  return out;
}

}  // namespace sysfs

namespace {

constexpr size_t kReadCap = 64 * 1024;
const char* const kDrm = "/sys/class/drm";
const char* const kKfdNodes = "/sys/class/kfd/kfd/topology/nodes";
const char* const kPciDevices = "/sys/bus/pci/devices";

using sysfs::basename_of;
using sysfs::card_number;
using sysfs::number_after;

std::string fmt_num(double v) {
  char buf[64];
  if (std::fabs(v - std::round(v)) < 1e-9)
    std::snprintf(buf, sizeof buf, "%.0f", v);
  else
    std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

class Reader {
 public:
  explicit Reader(HostFs& fs) : fs_(fs) {}
  HostFs& fs() { return fs_; }

  // The value with NUL padding and surrounding whitespace removed; "" for an empty file.
  std::optional<std::string> text(const std::string& path) {
    auto r = fs_.read(path, kReadCap);
    if (!r) return std::nullopt;
    return clean_value(*r);
  }
  std::optional<std::string> raw(const std::string& path) { return fs_.read(path, kReadCap); }
  std::optional<int64_t> integer(const std::string& path) {
    auto t = text(path);
    if (!t) return std::nullopt;
    return parse_int(*t);
  }
  std::optional<uint64_t> hex(const std::string& path) {
    auto t = text(path);
    if (!t) return std::nullopt;
    return parse_hex(*t);
  }

 private:
  HostFs& fs_;
};

struct KfdNode {
  std::string node;
  std::optional<std::string> bus_id;
  std::map<std::string, int64_t> props;
};

std::vector<KfdNode> read_kfd(Reader& r) {
  std::vector<KfdNode> out;
  std::vector<std::string> nodes = r.fs().list(kKfdNodes);
  std::sort(nodes.begin(), nodes.end(), [](const std::string& a, const std::string& b) {
    auto x = parse_int(a), y = parse_int(b);
    if (x && y) return *x < *y;
    return a < b;
  });
  for (const std::string& n : nodes) {
    auto text = r.raw(std::string(kKfdNodes) + "/" + n + "/properties");
    if (!text) continue;
    KfdNode k;
    k.node = n;
    k.props = sysfs::parse_kfd_properties(*text);
    auto simd = k.props.find("simd_count");
    if (simd == k.props.end() || simd->second <= 0) continue;  // a CPU node
    auto loc = k.props.find("location_id");
    auto dom = k.props.find("domain");
    if (loc != k.props.end())
      k.bus_id = sysfs::kfd_bus_id(dom != k.props.end() ? dom->second : 0, loc->second);
    out.push_back(std::move(k));
  }
  return out;
}

std::optional<int64_t> prop(const KfdNode& k, const char* key) {
  auto it = k.props.find(key);
  if (it == k.props.end()) return std::nullopt;
  return it->second;
}

// millidegrees C -> degrees C; nullopt for implausible values (sensor errors read as
// -273000, 0x7fffffff, ...).
std::optional<double> milli_c(std::optional<int64_t> v) {
  if (!v) return std::nullopt;
  double c = static_cast<double>(*v) / 1000.0;
  if (c < -60 || c > 200) return std::nullopt;
  return c;
}

std::optional<double> micro_w(std::optional<int64_t> v) {
  if (!v || *v < 0 || *v > 100000000000LL) return std::nullopt;  // up to 100 kW
  return static_cast<double>(*v) / 1e6;
}

struct TempSensor {
  int index = 0;
  std::string label;
  std::optional<double> input, max, crit, emergency;
};

void read_hwmon(Reader& r, const std::string& dev_dir, const std::optional<std::string>& driver,
                GpuFields& f, std::vector<std::string>& notes) {
  auto choice = sysfs::choose_hwmon(r.fs(), dev_dir, driver);
  if (!choice) return;
  const std::string hw = choice->dir, hw_name = choice->name;
  if (choice->count > 1)
    notes.push_back("device has " + std::to_string(choice->count) + " hwmon directories; read " +
                    basename_of(hw) + (hw_name.empty() ? "" : " (" + hw_name + ")"));

  // Temperatures.
  std::vector<TempSensor> temps;
  for (int n : sysfs::hwmon_temp_inputs(r.fs(), hw)) {
    TempSensor t;
    t.index = n;
    std::string base = hw + "/temp" + std::to_string(n);
    t.label = r.text(base + "_label").value_or("");
    t.input = milli_c(r.integer(base + "_input"));
    t.max = milli_c(r.integer(base + "_max"));
    t.crit = milli_c(r.integer(base + "_crit"));
    t.emergency = milli_c(r.integer(base + "_emergency"));
    temps.push_back(std::move(t));
  }
  std::sort(temps.begin(), temps.end(),
            [](const TempSensor& a, const TempSensor& b) { return a.index < b.index; });
  const TempSensor* chosen = nullptr;
  for (const TempSensor& t : temps)
    if (to_lower(t.label) == "edge") chosen = &t;
  if (!chosen && !temps.empty()) chosen = &temps.front();  // temp1 where it exists
  if (chosen) {
    if (chosen->input) {
      f.temperature_c = *chosen->input;
    } else {
      notes.push_back("hwmon temp" + std::to_string(chosen->index) +
                      "_input is absent or unreadable");
    }
    // Thresholds (amdgpu hwmon ABI, Documentation/gpu/amdgpu/thermal.rst):
    //   temp*_crit      "temperature critical max value": the limit at which the firmware
    //                   throttles the GPU (SMU thermal limit; on SI/CIK the thermal range max
    //                   that switches to the thermal power state) -> slowdown_c.
    //   temp*_emergency "temperature emergency max value (asic shutdown)" -> shutdown_c.
    // So crit is NOT the shutdown temperature wherever emergency exists (it is 5 C below it
    // on every capture). The generic hwmon ABI agrees (emergency >= crit), and nouveau uses
    // temp1_max for its down-clock threshold, so temp*_max, where present, is preferred for
    // slowdown. A crit without emergency leaves shutdown unknown rather than guessed.
    std::optional<double> slow = chosen->max ? chosen->max : chosen->crit;
    if (slow) f.thermal.slowdown_c = static_cast<int>(std::lround(*slow));
    if (chosen->emergency) f.thermal.shutdown_c = static_cast<int>(std::lround(*chosen->emergency));
    if (f.thermal.slowdown_c && f.thermal.shutdown_c &&
        *f.thermal.shutdown_c < *f.thermal.slowdown_c)
      notes.push_back("hwmon emergency temperature is below the critical one");
  }
  if (temps.size() > 1 || (chosen && !chosen->label.empty())) {
    std::string s = "hwmon" + (hw_name.empty() ? std::string() : " " + hw_name) + " temperatures:";
    bool first = true;
    for (const TempSensor& t : temps) {
      s += first ? " " : "; ";
      first = false;
      s += t.label.empty() ? "temp" + std::to_string(t.index) : t.label;
      s += " " + (t.input ? fmt_num(*t.input) + " C" : std::string("unreadable"));
      std::string lim;
      if (t.max) lim += "max " + fmt_num(*t.max) + " C";
      if (t.crit) lim += std::string(lim.empty() ? "" : ", ") + "crit " + fmt_num(*t.crit) + " C";
      if (t.emergency)
        lim += std::string(lim.empty() ? "" : ", ") + "emergency " + fmt_num(*t.emergency) + " C";
      if (!lim.empty()) s += " (" + lim + ")";
    }
    notes.push_back(s);
  }

  // Power (hwmon units: microwatts).
  auto pw = [&](const char* file) { return r.integer(hw + "/" + file); };
  auto zero_note = [&](const char* file, const char* meaning) {
    notes.push_back(std::string("hwmon ") + file + " reads 0 (" + meaning + "); left unknown");
  };
  // i915/xe: read_intel_power_limits (their power1_cap is xe's burst limit, not the limit).
  const bool intel = driver && (*driver == "i915" || *driver == "xe");
  // amdgpu: power1_cap (current limit), _cap_max/_cap_min (allowed range), _cap_default.
  if (auto v = intel ? std::nullopt : pw("power1_cap")) {
    if (*v == 0)
      zero_note("power1_cap", "no limit reported");
    else
      f.power_limit_w = micro_w(v);
  }
  if (auto v = pw("power1_cap_max")) {
    if (*v == 0)
      zero_note("power1_cap_max", "no maximum reported");
    else
      f.power_limit_max_w = micro_w(v);
  }
  if (auto v = pw("power1_cap_min")) {
    // amdgpu reports 0 where the firmware gives no lower bound (a 0 W cap is not settable).
    if (*v == 0)
      zero_note("power1_cap_min", "no lower bound reported");
    else
      f.power_limit_min_w = micro_w(v);
  }
  if (auto v = pw("power1_cap_default")) {
    if (*v == 0)
      zero_note("power1_cap_default", "no default reported");
    else
      f.power_limit_default_w = micro_w(v);
  }
  if (!intel && !f.power_limit_w) {
    if (auto v = pw("power1_max")) {
      if (*v == 0)
        zero_note("power1_max", "PL1 power limit disabled");
      else
        f.power_limit_w = micro_w(v);
    }
  }
  if (!intel && !f.power_limit_default_w) {
    if (auto v = pw("power1_rated_max")) {
      if (*v == 0)
        zero_note("power1_rated_max", "no rated TDP reported");
      else
        f.power_limit_default_w = micro_w(v);
    }
  }
  if (f.power_limit_w && f.power_limit_max_w && *f.power_limit_w > *f.power_limit_max_w + 1e-9)
    notes.push_back("power limit " + fmt_num(*f.power_limit_w) + " W is above its maximum " +
                    fmt_num(*f.power_limit_max_w) + " W");
  if (f.power_limit_w && f.power_limit_default_w &&
      *f.power_limit_w + 1e-9 < *f.power_limit_default_w)
    notes.push_back("power limit lowered to " + fmt_num(*f.power_limit_w) + " W (default " +
                    fmt_num(*f.power_limit_default_w) + " W)");
  // amdgpu: power1_average (averaged) on most parts, power1_input (instantaneous) on newer
  // ones; APU readings include the CPU cores.
  if (auto v = micro_w(pw("power1_average")))
    f.power_draw_w = v;
  else if (auto w = micro_w(pw("power1_input")))
    f.power_draw_w = w;
}

// PCIe link: prefer the maximum (what the device and slot can do); the current link trains
// down at idle.
void read_pcie_link(Reader& r, const std::string& dev_dir, GpuFields& f,
                    std::vector<std::string>& notes) {
  auto speed = [&](const char* file) -> std::optional<std::string> {
    auto t = r.text(dev_dir + "/" + file);
    if (!t || is_missing_marker(*t)) return std::nullopt;
    return t;
  };
  auto width = [&](const char* file) -> std::optional<int> {
    auto t = r.text(dev_dir + "/" + file);
    if (!t) return std::nullopt;
    std::string_view s = *t;
    if (starts_with(s, "x") || starts_with(s, "X")) s.remove_prefix(1);
    auto v = parse_int(s);
    if (!v || *v <= 0 || *v > 32) return std::nullopt;  // 0 (or 255): unknown
    return static_cast<int>(*v);
  };
  auto max_s = speed("max_link_speed"), cur_s = speed("current_link_speed");
  auto max_w = width("max_link_width"), cur_w = width("current_link_width");
  std::optional<int> max_g = max_s ? pcie_gen_from_speed(*max_s) : std::nullopt;
  std::optional<int> cur_g = cur_s ? pcie_gen_from_speed(*cur_s) : std::nullopt;
  if (max_s && !max_g) notes.push_back("max_link_speed '" + *max_s + "' not understood");
  if (cur_s && !cur_g) notes.push_back("current_link_speed '" + *cur_s + "' not understood");
  f.pcie_gen = max_g ? max_g : cur_g;
  f.pcie_width = max_w ? max_w : cur_w;
  if ((max_g && cur_g && *max_g != *cur_g) || (max_w && cur_w && *max_w != *cur_w)) {
    notes.push_back("PCIe link currently " + (cur_s ? *cur_s : std::string("?")) + " x" +
                    (cur_w ? std::to_string(*cur_w) : std::string("?")) + " (capable of " +
                    (max_s ? *max_s : std::string("?")) + " x" +
                    (max_w ? std::to_string(*max_w) : std::string("?")) + ")");
  } else if ((!max_g && cur_g) || (!max_w && cur_w)) {
    notes.push_back("PCIe maximum link not reported; using the current link");
  }
}

void read_intel_clock(Reader& r, const std::string& card_dir, const std::string& dev_dir,
                      GpuFields& f, std::vector<std::string>& notes) {
  auto mhz = [&](const std::string& path) -> std::optional<int> {
    auto v = r.integer(path);
    if (!v || *v <= 0 || *v > 100000) return std::nullopt;
    return static_cast<int>(*v);
  };
  // i915: gt_RP0_freq_mhz is the hardware maximum; gt_max_freq_mhz is the soft limit that
  // root may lower. Multi-GT parts also have gt/gt0/rps_RP0_freq_mhz.
  std::optional<int> rp0, soft;
  if (!card_dir.empty()) {
    rp0 = mhz(card_dir + "/gt_RP0_freq_mhz");
    if (!rp0) rp0 = mhz(card_dir + "/gt/gt0/rps_RP0_freq_mhz");
    soft = mhz(card_dir + "/gt_max_freq_mhz");
    if (!soft) soft = mhz(card_dir + "/gt/gt0/rps_max_freq_mhz");
  }
  // xe: <pci device>/tile0/gt0/freq0/{rp0_freq,max_freq}.
  if (!rp0) rp0 = mhz(dev_dir + "/tile0/gt0/freq0/rp0_freq");
  if (!soft) soft = mhz(dev_dir + "/tile0/gt0/freq0/max_freq");
  if (rp0) {
    f.clock_mhz = rp0;
    if (soft && *soft < *rp0)
      notes.push_back("GPU frequency soft limit lowered to " + std::to_string(*soft) +
                      " MHz (hardware max RP0 " + std::to_string(*rp0) + " MHz)");
  } else if (soft) {
    f.clock_mhz = soft;
    notes.push_back("RP0 frequency not exposed; clock is the soft maximum " +
                    std::to_string(*soft) + " MHz");
  }
}

// i915/xe hwmon (Documentation/ABI/testing/sysfs-driver-intel-{i915,xe}-hwmon): power1_* is the
// card, power2_* (xe) the package; powerN_max the sustained limit PL1 ("0 means the PL1 power
// limit is disabled"), powerN_cap (xe) the burst limit PL2, powerN_rated_max the default TDP.
// power_limit_w is the card's PL1 where exposed, else the package's: the file apply writes
// (enforce/intel_control.cc). field_detail and a note say which; a burst limit is only noted.
void read_intel_power_limits(Reader& r, const std::string& dev_dir,
                             const std::optional<std::string>& driver, Observation& o) {
  if (!driver || (*driver != "i915" && *driver != "xe")) return;
  auto choice = sysfs::choose_hwmon(r.fs(), dev_dir, driver);
  if (!choice) return;
  auto w = [&](const std::string& file) -> std::optional<double> {
    auto v = r.integer(choice->dir + "/" + file);
    if (!v || *v < 0 || *v > 100000000000LL) return std::nullopt;
    return static_cast<double>(*v) / 1e6;
  };
  struct Channel {
    const char* n;
    const char* what;
  };
  const Channel channels[] = {{"1", "card"}, {"2", "package"}};
  for (const Channel& c : channels) {
    std::string p = std::string("power") + c.n;
    auto pl1 = w(p + "_max");
    if (!pl1) continue;
    // A plain double (0: none), not an optional: GCC 12 -Os misreads a copied optional<double>
    // here as maybe-uninitialized.
    const double pl2 = *driver == "xe" ? w(p + "_cap").value_or(0.0) : 0.0;
    if (pl2 > 0)
      o.notes.push_back(std::string(c.what) + " burst power limit PL2 (hwmon " + p + "_cap) " +
                        fmt_num(pl2) + " W");
    if (o.f.power_limit_w) continue;  // the card's limit was taken
    if (*pl1 == 0) {
      o.notes.push_back("hwmon " + p + "_max reads 0 (" + c.what +
                        " PL1 power limit disabled); left unknown");
      continue;
    }
    o.f.power_limit_w = *pl1;
    o.field_detail["power_limit_w"] =
        "hwmon " + p + "_max (" + c.what + " sustained power limit PL1)";
    o.notes.push_back("power limit is the " + std::string(c.what) + " sustained limit PL1 (hwmon " +
                      p + "_max)");
    if (auto rated = w(p + "_rated_max"); rated && *rated > 0) {
      o.f.power_limit_default_w = *rated;
      if (*pl1 + 1e-9 < *rated)
        o.notes.push_back("power limit lowered to " + fmt_num(*pl1) + " W (default " +
                          fmt_num(*rated) + " W)");
    }
  }
}

// amdgpu: clock_mhz is the highest graphics clock the GPU may reach. The upper OD_SCLK bound
// of pp_od_clk_voltage is that limit (RDNA3/RDNA4 cap pp_dpm_sclk's top level at the game
// clock: an RX 7900 XTX lists 2219 MHz there and 2735 MHz in OD_SCLK); pp_dpm_sclk's top level
// is the fallback where overdrive is not exposed (no file, or RDNA4's OD_SCLK_OFFSET only).
void read_amdgpu_clock(Reader& r, const std::string& dev_dir, Observation& o) {
  std::optional<int> od, dpm;
  if (auto t = r.raw(dev_dir + "/pp_od_clk_voltage")) od = sysfs::od_sclk_max_mhz(*t);
  if (auto t = r.raw(dev_dir + "/pp_dpm_sclk")) dpm = sysfs::max_dpm_clock_mhz(*t);
  if (od) {
    o.f.clock_mhz = od;
    o.field_detail["clock_mhz"] = "pp_od_clk_voltage OD_SCLK upper bound (boost limit)";
    if (dpm && *dpm < *od)
      o.notes.push_back("pp_dpm_sclk tops out at " + std::to_string(*dpm) +
                        " MHz; clock is the OD_SCLK boost limit " + std::to_string(*od) + " MHz");
  } else if (dpm) {
    o.f.clock_mhz = dpm;
    o.field_detail["clock_mhz"] = "pp_dpm_sclk top level (boost limit not exposed)";
  }
}

void read_vram(Reader& r, const std::string& dev_dir, const std::optional<std::string>& driver,
               GpuFields& f, std::vector<std::string>& notes) {
  auto total = r.integer(dev_dir + "/mem_info_vram_total");
  auto used = r.integer(dev_dir + "/mem_info_vram_used");
  if (total && *total >= (1 << 20)) {
    f.vram_total_mb = bytes_to_mib(static_cast<uint64_t>(*total));
    if (used && *used >= 0) {
      if (*used <= *total) {
        f.vram_used_mb = bytes_to_mib(static_cast<uint64_t>(*used));
        f.vram_free_mb = bytes_to_mib(static_cast<uint64_t>(*total - *used));
      } else {
        notes.push_back("mem_info_vram_used exceeds mem_info_vram_total; ignored");
      }
    }
  } else if (total) {
    notes.push_back("mem_info_vram_total reads " + std::to_string(*total) +
                    " bytes (under 1 MiB); VRAM unknown");
  }
  if (!f.vram_total_mb) {
    // xe discrete GPUs: <pci device>/tileN/physical_vram_size_bytes.
    int64_t sum = 0;
    int tiles = 0;
    for (const std::string& e : r.fs().list(dev_dir)) {
      if (number_after(e, "tile") < 0) continue;
      auto v = r.integer(dev_dir + "/" + e + "/physical_vram_size_bytes");
      if (v && *v > 0 && sum <= INT64_MAX - *v) {
        sum += *v;
        ++tiles;
      }
    }
    if (tiles > 0 && sum >= (1 << 20)) f.vram_total_mb = bytes_to_mib(static_cast<uint64_t>(sum));
  }
  if (!f.vram_total_mb && driver && (*driver == "amdgpu" || *driver == "radeon"))
    notes.push_back("mem_info_vram_total is not present: VRAM unknown from sysfs");
  if (auto vendor = r.text(dev_dir + "/mem_info_vram_vendor");
      vendor && !vendor->empty() && !is_missing_marker(*vendor))
    notes.push_back("VRAM vendor " + *vendor);
}

void apply_kfd(const std::vector<KfdNode>& kfd, GpuFields& f, std::vector<std::string>& notes) {
  if (!f.bus_id) return;
  const KfdNode* k = nullptr;
  int matches = 0;
  for (const KfdNode& n : kfd) {
    if (n.bus_id && *n.bus_id == *f.bus_id) {
      if (!k) k = &n;
      ++matches;
    }
  }
  if (!k) return;
  if (matches > 1)
    notes.push_back("KFD lists " + std::to_string(matches) +
                    " compute nodes for this device (partitions); read node " + k->node);
  auto simd = prop(*k, "simd_count");
  auto per_cu = prop(*k, "simd_per_cu");
  if (simd && per_cu && *per_cu > 0 && *simd > 0) {
    if (*simd % *per_cu != 0)
      notes.push_back("KFD simd_count " + std::to_string(*simd) +
                      " is not a multiple of simd_per_cu " + std::to_string(*per_cu));
    if (*simd / *per_cu <= 100000) f.num_sm = static_cast<int>(*simd / *per_cu);
  }
  if (auto g = prop(*k, "gfx_target_version")) {
    if (auto name = sysfs::gfx_target_name(*g))
      f.compute_capability = name;
    else if (*g != 0)
      notes.push_back("KFD gfx_target_version " + std::to_string(*g) + " does not decode");
  }
  if (!f.clock_mhz) {
    auto clk = prop(*k, "max_engine_clk_fcompute");
    if (clk && *clk > 0 && *clk < 100000) f.clock_mhz = static_cast<int>(*clk);
  }
  auto local = prop(*k, "local_mem_size");
  if (local && *local == 0) {
    notes.push_back(
        "KFD reports no local memory: integrated GPU (APU) whose VRAM is a carve-out "
        "of system memory");
  } else if (local && *local >= (1 << 20) && !f.vram_total_mb) {
    f.vram_total_mb = bytes_to_mib(static_cast<uint64_t>(*local));
    notes.push_back("VRAM total from KFD local_mem_size (mem_info_vram_total absent)");
  }
}

struct DeviceOutcome {
  std::optional<Observation> obs;
  std::optional<IgnoredDevice> ignored;
  std::optional<std::string> bus_id;
};

std::string class_name(uint32_t cls) {
  switch (cls >> 16) {
    case 0x00:
      return "unclassified device";
    case 0x01:
      return "mass storage controller";
    case 0x02:
      return "network controller";
    case 0x04:
      return "multimedia controller";
    case 0x05:
      return "memory controller";
    case 0x06:
      return "bridge";
    case 0x07:
      return "communication controller";
    case 0x08:
      return "system peripheral";
    case 0x0c:
      return "serial bus controller";
    case 0x11:
      return "signal processing controller";
    case 0x12:
      return "processing accelerator";
    default:
      return "non-display device";
  }
}

std::string class_hex(uint32_t cls) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%06x", cls & 0xffffff);
  return buf;
}

// Reads one device. `card_dir` is "/sys/class/drm/cardN" (empty for a PCI device without a
// DRM card); `dev_dir` its device directory.
DeviceOutcome read_device(Reader& r, const std::vector<KfdNode>& kfd, const std::string& label,
                          std::optional<int> card_index, const std::string& card_dir,
                          const std::string& dev_dir, std::optional<std::string> entry_bus) {
  DeviceOutcome out;
  Observation o;
  GpuFields& f = o.f;
  std::vector<std::string>& notes = o.notes;
  HostFs& fs = r.fs();

  auto uevent_text = r.raw(dev_dir + "/uevent");
  sysfs::Uevent u = uevent_text ? sysfs::parse_uevent(*uevent_text) : sysfs::Uevent{};
  auto dev_link = fs.read_link(dev_dir);

  // Bus id: the device link's target (real sysfs), else PCI_SLOT_NAME (fixtures and replay
  // trees, where device is a plain directory), else the PCI parent in the card's own path
  // (virtio-gpu hangs below its PCI function).
  std::optional<std::string> link_bus =
      dev_link ? sysfs::pci_address_in_path(basename_of(*dev_link)) : std::nullopt;
  if (!link_bus && entry_bus) link_bus = entry_bus;
  bool is_pci = link_bus || u.slot || u.vendor || (u.modalias && starts_with(*u.modalias, "pci:"));
  if (!is_pci && !u.modalias && !(dev_link && !dev_link->empty()) && !uevent_text)
    is_pci = fs.exists(dev_dir + "/vendor");  // a hand-made tree with plain id files
  f.bus_id = link_bus ? link_bus : u.slot;
  if (link_bus && u.slot && *link_bus != *u.slot)
    notes.push_back("device link names " + *link_bus + " but uevent PCI_SLOT_NAME is " + *u.slot);
  if (!f.bus_id && !card_dir.empty()) {
    if (auto card_link = fs.read_link(card_dir)) f.bus_id = sysfs::pci_address_in_path(*card_link);
  }
  if (!is_pci) {
    std::string kind = u.modalias ? std::string(u.modalias->substr(0, u.modalias->find(':')))
                       : dev_link ? basename_of(*dev_link)
                                  : std::string("unknown");
    notes.push_back("not a PCI device (" + kind + ")" +
                    (f.bus_id ? "; its PCI parent is " + *f.bus_id : std::string()));
  }

  // Runtime PM first (SPEC §9): for a suspended device only plain kernel-cached attributes
  // (uevent, vendor, device, class, driver links, numa_node, product_name) are read below;
  // hwmon, pp_*, mem_info_*, gpu_busy_percent and the PCIe link files go to the driver or to
  // config space and would resume it.
  bool asleep = false;
  if (is_pci) {
    auto rs = r.text(dev_dir + "/power/runtime_status");
    if (rs) {
      f.power_state = sysfs::power_state_from(*rs);
      if (!f.power_state && !rs->empty())
        notes.push_back("power/runtime_status is '" + rs->substr(0, 32) +
                        "'; power state unknown, device read normally");
      asleep = sysfs::is_suspended(f.power_state);
    }
  }

  // PCI ids: the plain files, else the uevent.
  std::optional<uint32_t> vendor, device, sub_v, sub_d, cls;
  auto id_file = [&](const char* file,
                     std::optional<uint32_t> fallback) -> std::optional<uint32_t> {
    auto t = r.text(dev_dir + "/" + file);
    if (t) {
      auto v = parse_hex(*t);
      if (v && *v <= 0xffff) {
        if (fallback && *fallback != *v)
          notes.push_back(std::string(file) + " file (" + hex4(static_cast<uint32_t>(*v)) +
                          ") disagrees with uevent (" + hex4(*fallback) + ")");
        return static_cast<uint32_t>(*v);
      }
      if (!t->empty())
        notes.push_back(std::string(file) + " '" + t->substr(0, 32) + "' is not a PCI id");
    }
    return fallback;
  };
  if (is_pci) {
    vendor = id_file("vendor", u.vendor);
    device = id_file("device", u.device);
    sub_v = id_file("subsystem_vendor", u.subsys_vendor);
    sub_d = id_file("subsystem_device", u.subsys_device);
    if (auto c = r.hex(dev_dir + "/class"); c && *c <= 0xffffff)
      cls = static_cast<uint32_t>(*c);
    else
      cls = u.pci_class;
  }
  f.pci_vendor_id = vendor;
  f.pci_device_id = device;
  if (sub_v && sub_d) notes.push_back("PCI subsystem " + hex4(*sub_v) + ":" + hex4(*sub_d));

  std::string name = label;
  if (vendor && device) name += " (PCI " + hex4(*vendor) + ":" + hex4(*device) + ")";
  if (f.bus_id) name += " at " + *f.bus_id;
  out.bus_id = f.bus_id;

  if (cls && (*cls >> 16) != 0x03) {
    out.ignored = IgnoredDevice{
        "sysfs", name,
        "PCI class " + class_hex(*cls) + " (" + class_name(*cls) + ") is not a display controller"};
    return out;
  }

  // Kernel driver: the module behind the driver link, else the driver link, else DRIVER=.
  std::optional<std::string> driver;
  if (auto drv_link = fs.read_link(dev_dir + "/driver")) {
    std::string d = basename_of(*drv_link);
    if (!d.empty()) driver = d;
    if (auto mod = fs.read_link(dev_dir + "/driver/module")) {
      std::string m = basename_of(*mod);
      if (!m.empty()) driver = m;
    }
  }
  if (!driver && u.driver) driver = u.driver;
  if (driver) {
    f.kernel_driver = driver;
  } else {
    notes.push_back("no kernel driver bound");
  }

  o.software_reason = sysfs::software_reason(
      driver ? std::optional<std::string_view>(*driver) : std::nullopt, vendor, device);

  if (vendor) {
    f.vendor = vendor_from_pci_id(*vendor);
  } else if (driver) {
    if (*driver == "amdgpu" || *driver == "radeon")
      f.vendor = "amd";
    else if (*driver == "i915" || *driver == "xe")
      f.vendor = "intel";
    else if (*driver == "nvidia" || *driver == "nouveau")
      f.vendor = "nvidia";
  }

  // Model: the board's own product name (amdgpu, from the FRU EEPROM), else libdrm's
  // amdgpu.ids marketing name (device + revision), else pci.ids' chip name.
  if (auto pn = r.text(dev_dir + "/product_name"); pn && !pn->empty() && !is_missing_marker(*pn)) {
    f.model = *pn;
    o.field_detail["model"] = "product_name";
  } else if (vendor && device) {
    std::optional<uint32_t> rev;
    if (auto v = r.hex(dev_dir + "/revision"); v && *v <= 0xff) rev = static_cast<uint32_t>(*v);
    if (*vendor == 0x1002u) {
      if ((f.model = amdgpu_marketing_name(*device, rev))) o.field_detail["model"] = "amdgpu.ids";
    }
    if (!f.model && (f.model = pci_device_name(*vendor, *device)))
      o.field_detail["model"] = "pci.ids";
  }

  if (card_index) f.tool_index = card_index;

  if (asleep) {
    notes.push_back(
        "runtime-suspended: reported from sysfs alone; hwmon, pp_*, mem_info_*, "
        "gpu_busy_percent and the PCIe link were not read so as not to wake it");
    if (auto numa = r.integer(dev_dir + "/numa_node"); numa && *numa >= 0 && *numa < 65536)
      f.numa_node = static_cast<int>(*numa);
    if (card_dir.empty())
      notes.push_back(driver ? "display controller without a DRM card (driver " + *driver + ")"
                             : "display controller without a DRM card");
    out.obs = std::move(o);
    return out;
  }

  read_vram(r, dev_dir, driver, f, notes);

  if (auto busy = r.integer(dev_dir + "/gpu_busy_percent")) {
    if (*busy >= 0 && *busy <= 100)
      f.utilization_pct = static_cast<int>(*busy);
    else
      notes.push_back("gpu_busy_percent reads " + std::to_string(*busy) + "; ignored");
  }

  read_pcie_link(r, dev_dir, f, notes);
  if (vendor == 0x8086u && f.pcie_gen == 1 && f.pcie_width == 1 && driver &&
      (*driver == "i915" || *driver == "xe"))
    notes.push_back(
        "Intel discrete GPUs sit behind an on-board PCIe switch: the GPU function "
        "reports its internal 2.5 GT/s x1 link, not the slot's link");

  if (auto numa = r.integer(dev_dir + "/numa_node"); numa && *numa >= 0 && *numa < 65536)
    f.numa_node = static_cast<int>(*numa);

  // AMD partition modes (MI300 and later; SPEC §9): "SPX".."CPX", "NPS1".."NPS4".
  for (auto [file, field] : {std::pair{"current_compute_partition", &f.compute_partition},
                             std::pair{"current_memory_partition", &f.memory_partition}}) {
    auto v = r.text(dev_dir + "/" + file);
    if (!v || v->empty()) continue;
    bool sane = v->size() <= 8 && std::all_of(v->begin(), v->end(), [](char c) {
                  return std::isalnum(static_cast<unsigned char>(c));
                });
    if (sane)
      *field = *v;
    else
      notes.push_back(std::string(file) + " reads an unexpected value; ignored");
  }

  if (auto vb = r.text(dev_dir + "/vbios_version"); vb && !vb->empty())
    notes.push_back("VBIOS " + *vb);

  read_hwmon(r, dev_dir, driver, f, notes);
  read_intel_power_limits(r, dev_dir, driver, o);
  read_intel_clock(r, card_dir, dev_dir, f, notes);
  if (!f.clock_mhz) read_amdgpu_clock(r, dev_dir, o);
  if (vendor == 0x1002u || (driver && *driver == "amdgpu")) apply_kfd(kfd, f, notes);

  if (card_dir.empty())
    notes.push_back(driver ? "display controller without a DRM card (driver " + *driver + ")"
                           : "display controller without a DRM card");

  out.obs = std::move(o);
  return out;
}

}  // namespace

ParseResult scan_drm_sysfs(HostFs& fs) {
  ParseResult res;
  try {
    Reader r(fs);
    std::vector<KfdNode> kfd = read_kfd(r);
    std::vector<std::pair<int, std::string>> cards;
    for (const std::string& e : fs.list(kDrm)) {
      if (auto n = card_number(e)) cards.emplace_back(*n, e);
    }
    std::sort(cards.begin(), cards.end());
    if (!fs.exists(kDrm))
      res.notes.push_back(fs.real_path(kDrm) +
                          " does not exist: no DRM driver loaded, or sysfs not mounted there");
    else if (cards.empty())
      res.notes.push_back("no cardN entries in " + fs.real_path(kDrm));

    std::vector<std::string> seen_bus;
    for (const auto& [n, name] : cards) {
      std::string card_dir = std::string(kDrm) + "/" + name;
      std::string dev_dir = card_dir + "/device";
      if (!fs.exists(dev_dir)) {
        res.notes.push_back(name + " has no device directory; skipped");
        continue;
      }
      DeviceOutcome d = read_device(r, kfd, name, n, card_dir, dev_dir, std::nullopt);
      if (d.bus_id) {
        if (std::find(seen_bus.begin(), seen_bus.end(), *d.bus_id) != seen_bus.end()) {
          res.notes.push_back(name + " is a second DRM card of " + *d.bus_id + "; skipped");
          continue;
        }
        seen_bus.push_back(*d.bus_id);
      }
      if (d.ignored) res.ignored.push_back(std::move(*d.ignored));
      if (d.obs) res.devices.push_back(std::move(*d.obs));
    }

    // Display-class PCI devices that no DRM driver claimed (nvidia without nvidia-drm,
    // vfio-pci passthrough, no driver at all).
    for (const std::string& e : fs.list(kPciDevices)) {
      auto bus = normalize_bus_id(e);
      if (!bus || std::find(seen_bus.begin(), seen_bus.end(), *bus) != seen_bus.end()) continue;
      std::string dev_dir = std::string(kPciDevices) + "/" + e;
      auto cls = r.hex(dev_dir + "/class");
      if (!cls || (*cls >> 16) != 0x03) continue;
      DeviceOutcome d = read_device(r, kfd, "PCI " + *bus, std::nullopt, "", dev_dir, bus);
      seen_bus.push_back(*bus);
      if (d.ignored) res.ignored.push_back(std::move(*d.ignored));
      if (d.obs) res.devices.push_back(std::move(*d.obs));
    }
  } catch (const std::exception& ex) {
    res.notes.push_back(std::string("sysfs scan stopped: ") + ex.what());
  } catch (...) {
    res.notes.push_back("sysfs scan stopped by an unknown error");
  }
  return res;
}

namespace {

class SysfsSource : public Source {
 public:
  std::string name() const override { return "sysfs"; }
  int authority() const override { return 70; }
  SourceReport collect(SourceContext& ctx) override {
    SourceReport rep;
    rep.source = name();
    auto start = std::chrono::steady_clock::now();
    if (!ctx.fs) {
      rep.status = SourceStatus::skipped;
      rep.notes.push_back("no filesystem access configured");
      return rep;
    }
    rep.what = ctx.fs->real_path(kDrm);
    ParseResult pr = scan_drm_sysfs(*ctx.fs);
    rep.devices = std::move(pr.devices);
    rep.ignored = std::move(pr.ignored);
    rep.notes = std::move(pr.notes);
    rep.status =
        rep.devices.empty() && rep.ignored.empty() ? SourceStatus::no_devices : SourceStatus::ok;
    rep.duration_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    return rep;
  }
};

}  // namespace

std::unique_ptr<Source> make_sysfs_source() {
  return std::make_unique<SysfsSource>();
}

}  // namespace grey
