#include "enforce/device_control.h"

#include <cmath>
#include <cstdio>
#include <cstring>

#include "bindings/nvml_api.h"
#include "enforce/isolated_control.h"
#include "util/strings.h"
#include "util/sysfs.h"

namespace grey {

namespace {

constexpr const char* kNvmlSoname = "libnvidia-ml.so.1";
constexpr const char* kNvmlEnvOverride = "GREY_NVML_LIBRARY";

using nvml::nvmlDeviceGetHandleByPciBusId_fn;
using nvml::nvmlDeviceSetPersistenceMode_fn;
using nvml::nvmlDeviceSetUint_fn;

std::optional<double> parse_watts(const std::string& v) {
  auto d = parse_double(trim(v));
  if (!d || !std::isfinite(*d)) return std::nullopt;
  return *d;
}

std::string from_buffer(const char* buf, size_t size) {
  size_t n = 0;
  while (n < size && buf[n] != '\0') ++n;
  return std::string(trim(std::string_view(buf, n)));
}

std::string basename_of(const std::string& p) {
  auto slash = p.rfind('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Shared helpers

MechanismKind mechanism_kind(const std::string& mechanism, std::string* path) {
  if (starts_with(mechanism, "nvml:")) return MechanismKind::nvml;
  if (starts_with(mechanism, kMechNvidiaSmiPrefix)) return MechanismKind::nvidia_smi;
  if (starts_with(mechanism, kMechSysfsPrefix)) {
    if (path) *path = mechanism.substr(std::strlen(kMechSysfsPrefix));
    return MechanismKind::sysfs;
  }
  return MechanismKind::unknown;
}

std::string nvidia_smi_mechanism(const std::string& bus_id, const std::string& setting,
                                 const std::string& value) {
  if (setting == kSettingPersistence)
    return std::string(kMechNvidiaSmiPrefix) + "-i " + bus_id + " -pm " +
           (value == "on" ? "1" : "0");
  return std::string(kMechNvidiaSmiPrefix) + "-i " + bus_id + " -pl " + value;
}

std::string watts_text(double w) {
  if (!std::isfinite(w)) return "invalid";
  // Beyond what a milliwatt count holds (1e308 wrapped to -9223372036854776): the value as it is.
  if (std::fabs(w) >= 1e12) return shortest_double(w);
  long long mw = std::llround(w * 1000.0);
  char buf[64];
  if (mw % 1000 == 0) {
    std::snprintf(buf, sizeof buf, "%lld", mw / 1000);
    return buf;
  }
  std::snprintf(buf, sizeof buf, "%.3f", static_cast<double>(mw) / 1000.0);
  std::string s = buf;
  while (!s.empty() && s.back() == '0') s.pop_back();
  return s;
}

bool same_value(const std::string& setting, const std::string& a, const std::string& b) {
  if (setting == kSettingPowerLimit) {
    auto x = parse_watts(a), y = parse_watts(b);
    if (x && y) return std::fabs(*x - *y) < 0.5;
  }
  return a == b;
}

// ---------------------------------------------------------------------------------------------
// NVML

struct NvmlControl::Impl {
  std::unique_ptr<DynLib> lib;
  bool tried = false;
  bool ready = false;
  std::string error;
  nvml::nvmlShutdown_fn shutdown = nullptr;
  nvml::nvmlErrorString_fn error_string = nullptr;
  nvml::nvmlDeviceGetCount_fn count = nullptr;
  nvml::nvmlDeviceGetHandleByIndex_fn handle = nullptr;
  nvmlDeviceGetHandleByPciBusId_fn handle_by_bus = nullptr;
  nvml::nvmlDeviceGetPciInfo_fn pci = nullptr;
  std::string pci_name;
  nvml::nvmlDeviceGetUint_fn get_limit = nullptr;
  nvml::nvmlDeviceGetPowerManagementLimitConstraints_fn constraints = nullptr;
  nvml::nvmlDeviceGetPersistenceMode_fn get_persistence = nullptr;
  nvmlDeviceSetUint_fn set_limit = nullptr;
  nvmlDeviceSetPersistenceMode_fn set_persistence = nullptr;
  void (*hook)(const char* call) = nullptr;

  // Right before each call into the library.
  void at(const char* call) const {
    if (hook) hook(call);
  }

  // "nvmlDeviceSetPowerManagementLimit failed: NVML_ERROR_NO_PERMISSION (4): Insufficient
  // Permissions".
  std::string failure(const std::string& call, nvml::nvmlReturn_t r) const {
    return nvml::describe_failure(call, r, error_string);
  }

  // The handle of the device at `bus` (normalized), or why not.
  nvml::nvmlDevice_t find(const std::string& bus, std::string* err) const {
    auto want = normalize_bus_id(bus);
    if (!want) {
      *err = "'" + bus + "' is not a PCI bus id";
      return nullptr;
    }
    if (handle_by_bus) {
      nvml::nvmlDevice_t d = nullptr;
      at("nvmlDeviceGetHandleByPciBusId_v2");
      if (handle_by_bus(want->c_str(), &d) == nvml::NVML_SUCCESS && d) return d;
    }
    if (!count || !handle || !pci) {
      *err = "NVML lacks the calls to find a device by bus id";
      return nullptr;
    }
    unsigned n = 0;
    at("nvmlDeviceGetCount_v2");
    nvml::nvmlReturn_t r = count(&n);
    if (r != nvml::NVML_SUCCESS) {
      *err = failure("nvmlDeviceGetCount", r);
      return nullptr;
    }
    for (unsigned i = 0; i < n; ++i) {
      nvml::nvmlDevice_t d = nullptr;
      at("nvmlDeviceGetHandleByIndex_v2");
      if (handle(i, &d) != nvml::NVML_SUCCESS || !d) continue;
      nvml::nvmlPciInfo_t p;
      std::memset(&p, 0, sizeof p);
      at(pci_name.c_str());
      if (pci(d, &p) != nvml::NVML_SUCCESS) continue;
      if (pci_name == "nvmlDeviceGetPciInfo") std::memset(p.busId, 0, sizeof p.busId);
      auto id = normalize_bus_id(from_buffer(p.busId, sizeof p.busId));
      if (!id) id = normalize_bus_id(from_buffer(p.busIdLegacy, sizeof p.busIdLegacy));
      if (id && *id == *want) return d;
    }
    *err = "NVML lists no device at " + *want;
    return nullptr;
  }
};

NvmlControl::NvmlControl(LibLoader& loader) : loader_(loader), impl_(std::make_unique<Impl>()) {}

NvmlControl::~NvmlControl() {
  if (impl_->ready && impl_->shutdown) impl_->shutdown();
}

void NvmlControl::set_call_hook(void (*hook)(const char* call)) {
  impl_->hook = hook;
}

std::string NvmlControl::available() {
  Impl& m = *impl_;
  if (m.tried) return m.ready ? "" : m.error;
  m.tried = true;
  LoadResult lr = loader_.load(kNvmlSoname, kNvmlEnvOverride);
  if (!lr.lib) {
    m.error = "NVML: " + lr.path + ": " + lr.error;
    return m.error;
  }
  m.lib = std::move(lr.lib);
  const DynLib& l = *m.lib;
  std::string init_name;
  auto init = l.fn<nvml::nvmlInit_fn>({"nvmlInit_v2", "nvmlInit"}, &init_name);
  m.shutdown = l.fn<nvml::nvmlShutdown_fn>({"nvmlShutdown"});
  m.error_string = l.fn<nvml::nvmlErrorString_fn>({"nvmlErrorString"});
  m.count = l.fn<nvml::nvmlDeviceGetCount_fn>({"nvmlDeviceGetCount_v2", "nvmlDeviceGetCount"});
  m.handle = l.fn<nvml::nvmlDeviceGetHandleByIndex_fn>(
      {"nvmlDeviceGetHandleByIndex_v2", "nvmlDeviceGetHandleByIndex"});
  m.handle_by_bus = l.fn<nvmlDeviceGetHandleByPciBusId_fn>(
      {"nvmlDeviceGetHandleByPciBusId_v2", "nvmlDeviceGetHandleByPciBusId"});
  m.pci = l.fn<nvml::nvmlDeviceGetPciInfo_fn>(
      {"nvmlDeviceGetPciInfo_v3", "nvmlDeviceGetPciInfo_v2", "nvmlDeviceGetPciInfo"}, &m.pci_name);
  m.get_limit = l.fn<nvml::nvmlDeviceGetUint_fn>(
      {"nvmlDeviceGetPowerManagementLimit", "nvmlDeviceGetEnforcedPowerLimit"});
  m.constraints = l.fn<nvml::nvmlDeviceGetPowerManagementLimitConstraints_fn>(
      {"nvmlDeviceGetPowerManagementLimitConstraints"});
  m.get_persistence = l.fn<nvml::nvmlDeviceGetPersistenceMode_fn>({"nvmlDeviceGetPersistenceMode"});
  m.set_limit = l.fn<nvmlDeviceSetUint_fn>({"nvmlDeviceSetPowerManagementLimit"});
  m.set_persistence = l.fn<nvmlDeviceSetPersistenceMode_fn>({"nvmlDeviceSetPersistenceMode"});
  if (!init) {
    m.error = "NVML: nvmlInit_v2/nvmlInit not found in " + l.path();
    return m.error;
  }
  m.at(init_name.c_str());
  nvml::nvmlReturn_t r = init();
  if (r != nvml::NVML_SUCCESS) {
    m.error = "NVML: " + m.failure(init_name, r);
    return m.error;
  }
  m.ready = true;
  return "";
}

std::string NvmlControl::device_count_error() {
  std::string err = available();
  if (!err.empty()) return err;
  Impl& m = *impl_;
  if (!m.count)
    return "NVML: nvmlDeviceGetCount_v2/nvmlDeviceGetCount not found in " + m.lib->path();
  unsigned n = 0;
  m.at("nvmlDeviceGetCount_v2");
  nvml::nvmlReturn_t r = m.count(&n);
  return r == nvml::NVML_SUCCESS ? "" : "NVML: " + m.failure("nvmlDeviceGetCount", r);
}

void NvmlControl::probe(DeviceState& state) {
  std::string err = available();
  if (!err.empty()) {
    state.notes.push_back(err);
    return;
  }
  Impl& m = *impl_;
  nvml::nvmlDevice_t d = m.find(state.bus_id, &err);
  if (!d) {
    state.notes.push_back("NVML: " + err);
    return;
  }
  state.nvml = true;
  if (m.get_limit) {
    unsigned mw = 0;
    m.at("nvmlDeviceGetPowerManagementLimit");
    nvml::nvmlReturn_t r = m.get_limit(d, &mw);
    if (r == nvml::NVML_SUCCESS)
      state.power_limit_w = mw / 1000.0;
    else
      state.notes.push_back(m.failure("nvmlDeviceGetPowerManagementLimit", r));
  }
  if (m.constraints) {
    unsigned lo = 0, hi = 0;
    m.at("nvmlDeviceGetPowerManagementLimitConstraints");
    nvml::nvmlReturn_t r = m.constraints(d, &lo, &hi);
    if (r == nvml::NVML_SUCCESS && hi > 0) {
      state.power_min_w = lo / 1000.0;
      state.power_max_w = hi / 1000.0;
      state.range_source = "NVML power management limit constraints";
    } else if (r != nvml::NVML_SUCCESS) {
      state.notes.push_back(m.failure("nvmlDeviceGetPowerManagementLimitConstraints", r));
    }
  }
  if (m.get_persistence) {
    int mode = 0;
    m.at("nvmlDeviceGetPersistenceMode");
    nvml::nvmlReturn_t r = m.get_persistence(d, &mode);
    if (r == nvml::NVML_SUCCESS)
      state.persistence = mode == nvml::NVML_FEATURE_ENABLED;
    else
      state.notes.push_back(m.failure("nvmlDeviceGetPersistenceMode", r));
  }
}

ReadResult NvmlControl::read(const SettingRef& ref) {
  ReadResult out;
  std::string err = available();
  if (!err.empty()) {
    out.error = err;
    return out;
  }
  Impl& m = *impl_;
  nvml::nvmlDevice_t d = m.find(ref.bus_id, &err);
  if (!d) {
    out.error = "NVML: " + err;
    return out;
  }
  if (ref.setting == kSettingPowerLimit) {
    if (!m.get_limit) {
      out.error = "nvmlDeviceGetPowerManagementLimit not found in " + m.lib->path();
      return out;
    }
    unsigned mw = 0;
    m.at("nvmlDeviceGetPowerManagementLimit");
    nvml::nvmlReturn_t r = m.get_limit(d, &mw);
    if (r != nvml::NVML_SUCCESS)
      out.error = m.failure("nvmlDeviceGetPowerManagementLimit", r);
    else
      out.value = watts_text(mw / 1000.0);
  } else if (ref.setting == kSettingPersistence) {
    if (!m.get_persistence) {
      out.error = "nvmlDeviceGetPersistenceMode not found in " + m.lib->path();
      return out;
    }
    int mode = 0;
    m.at("nvmlDeviceGetPersistenceMode");
    nvml::nvmlReturn_t r = m.get_persistence(d, &mode);
    if (r != nvml::NVML_SUCCESS)
      out.error = m.failure("nvmlDeviceGetPersistenceMode", r);
    else
      out.value = onoff(mode == nvml::NVML_FEATURE_ENABLED);
  } else {
    out.error = "NVML cannot read setting '" + ref.setting + "'";
  }
  return out;
}

std::string NvmlControl::write(const SettingRef& ref, const std::string& value) {
  std::string err = available();
  if (!err.empty()) return err;
  Impl& m = *impl_;
  nvml::nvmlDevice_t d = m.find(ref.bus_id, &err);
  if (!d) return "NVML: " + err;
  if (ref.setting == kSettingPowerLimit) {
    if (!m.set_limit) return "nvmlDeviceSetPowerManagementLimit not found in " + m.lib->path();
    auto w = parse_watts(value);
    if (!w || *w <= 0 || *w > 4.0e6) return "'" + value + "' is not a power limit in watts";
    m.at("nvmlDeviceSetPowerManagementLimit");
    nvml::nvmlReturn_t r = m.set_limit(d, static_cast<unsigned>(std::llround(*w * 1000.0)));
    return r == nvml::NVML_SUCCESS ? "" : m.failure("nvmlDeviceSetPowerManagementLimit", r);
  }
  if (ref.setting == kSettingPersistence) {
    if (!m.set_persistence) return "nvmlDeviceSetPersistenceMode not found in " + m.lib->path();
    if (value != "on" && value != "off") return "'" + value + "' is not on/off";
    m.at("nvmlDeviceSetPersistenceMode");
    nvml::nvmlReturn_t r = m.set_persistence(d, value == "on" ? nvml::NVML_FEATURE_ENABLED : 0);
    return r == nvml::NVML_SUCCESS ? "" : m.failure("nvmlDeviceSetPersistenceMode", r);
  }
  return "NVML cannot write setting '" + ref.setting + "'";
}

// ---------------------------------------------------------------------------------------------
// nvidia-smi

NvidiaSmiControl::NvidiaSmiControl(Runner& runner, std::string program)
    : runner_(runner), program_(std::move(program)) {}

std::vector<std::string> NvidiaSmiControl::write_argv(const std::string& bus_id,
                                                      const std::string& setting,
                                                      const std::string& value) const {
  if (setting == kSettingPersistence)
    return {program_, "-i", bus_id, "-pm", value == "on" ? "1" : "0"};
  return {program_, "-i", bus_id, "-pl", value};
}

std::string NvidiaSmiControl::note_timeout(const std::vector<std::string>& argv,
                                           const CommandResult& r) {
  std::string e = join_argv(argv) + ": " + r.describe_failure();
  if (r.timed_out) hung_ = program_ + " timed out earlier in this run (" + e + "); not run again";
  return e;
}

NvidiaSmiControl::Query NvidiaSmiControl::query(const std::string& bus_id) {
  Query q;
  if (!hung_.empty()) {
    q.error = hung_;
    return q;
  }
  std::vector<std::string> argv = {program_, "--query-gpu=power.limit,persistence_mode",
                                   "--format=csv,noheader,nounits", "-i", bus_id};
  RunOptions opt;
  opt.timeout = std::chrono::milliseconds(10000);
  CommandResult r = runner_.run(argv, opt);
  if (!r.ok()) {
    q.error = note_timeout(argv, r);
    return q;
  }
  std::string line;
  for (auto l : split_lines(r.out)) {
    if (!trim(l).empty()) {
      line = std::string(trim(l));
      break;
    }
  }
  auto cells = split(line, ',');
  if (cells.size() < 2) {
    q.error = join_argv(argv) + ": unexpected output '" + line.substr(0, 120) + "'";
    return q;
  }
  std::string power(trim(cells[0])), pm(trim(cells[1]));
  if (!is_missing_marker(power)) {
    if (auto w = parse_watts(power)) q.power_limit_w = *w;
  }
  std::string p = to_lower(pm);
  if (p == "enabled")
    q.persistence = true;
  else if (p == "disabled")
    q.persistence = false;
  return q;
}

void NvidiaSmiControl::probe(DeviceState& state) {
  Query q = query(state.bus_id);
  if (!q.error.empty()) {
    state.notes.push_back(q.error);
    return;
  }
  state.nvidia_smi = true;
  if (q.power_limit_w) state.power_limit_w = q.power_limit_w;
  if (q.persistence) state.persistence = q.persistence;
}

ReadResult NvidiaSmiControl::read(const SettingRef& ref) {
  ReadResult out;
  Query q = query(ref.bus_id);
  if (!q.error.empty()) {
    out.error = q.error;
  } else if (ref.setting == kSettingPowerLimit) {
    if (q.power_limit_w)
      out.value = watts_text(*q.power_limit_w);
    else
      out.error = "nvidia-smi reports no power.limit for " + ref.bus_id;
  } else if (ref.setting == kSettingPersistence) {
    if (q.persistence)
      out.value = onoff(*q.persistence);
    else
      out.error = "nvidia-smi reports no persistence_mode for " + ref.bus_id;
  } else {
    out.error = "nvidia-smi cannot read setting '" + ref.setting + "'";
  }
  return out;
}

std::string NvidiaSmiControl::write(const SettingRef& ref, const std::string& value) {
  if (ref.setting != kSettingPowerLimit && ref.setting != kSettingPersistence)
    return "nvidia-smi cannot write setting '" + ref.setting + "'";
  if (ref.setting == kSettingPowerLimit && !parse_watts(value))
    return "'" + value + "' is not a power limit in watts";
  if (ref.setting == kSettingPersistence && value != "on" && value != "off")
    return "'" + value + "' is not on/off";
  if (!hung_.empty()) return hung_;
  std::vector<std::string> argv = write_argv(ref.bus_id, ref.setting, value);
  RunOptions opt;
  opt.timeout = std::chrono::milliseconds(30000);
  CommandResult r = runner_.run(argv, opt);
  if (r.ok()) return "";
  return note_timeout(argv, r);
}

// ---------------------------------------------------------------------------------------------
// sysfs (hwmon)

namespace {

std::optional<int64_t> read_int(HostFs& fs, const std::string& path) {
  auto t = fs.read(path, 4096);
  if (!t) return std::nullopt;
  return parse_int(clean_value(*t));
}

// Only hwmon power files under /sys are ever written (the journal is a file a restore reads
// back: a path in it must not be able to point anywhere else).
std::string check_power_path(const std::string& path) {
  std::string base = basename_of(path);
  if (!starts_with(path, "/sys/") || path.find("/../") != std::string::npos ||
      (base != "power1_cap" && base != "power1_max"))
    return "refusing sysfs path '" + path + "': only hwmon power1_cap/power1_max under /sys";
  return "";
}

std::string power_file_for(const std::string& vendor, const std::optional<std::string>& driver) {
  if (driver && (*driver == "amdgpu" || *driver == "radeon")) return "power1_cap";
  if (driver && (*driver == "i915" || *driver == "xe")) return "power1_max";
  if (vendor == "amd") return "power1_cap";
  if (vendor == "intel") return "power1_max";
  return "";
}

}  // namespace

std::optional<std::string> SysfsControl::find_hwmon(const std::string& bus_id,
                                                    const std::string& power_file) {
  auto want = normalize_bus_id(bus_id);
  if (!want) return std::nullopt;
  auto search = [&](const std::string& dev_dir) -> std::optional<std::string> {
    for (const std::string& h : fs_.list(dev_dir + "/hwmon")) {
      if (!starts_with(h, "hwmon")) continue;
      std::string dir = dev_dir + "/hwmon/" + h;
      if (fs_.exists(dir + "/" + power_file)) return dir;
    }
    return std::nullopt;
  };
  if (auto d = search("/sys/bus/pci/devices/" + *want)) return d;
  for (const std::string& card : fs_.list("/sys/class/drm")) {
    if (!starts_with(card, "card") || card.find('-') != std::string::npos) continue;
    std::string dev_dir = "/sys/class/drm/" + card + "/device";
    std::optional<std::string> bus;
    if (auto link = fs_.read_link(dev_dir)) bus = sysfs::pci_address_in_path(*link);
    if (!bus) {
      if (auto ue = fs_.read(dev_dir + "/uevent", 64 * 1024)) bus = sysfs::parse_uevent(*ue).slot;
    }
    if (!bus || *bus != *want) continue;
    if (auto d = search(dev_dir)) return d;
  }
  return std::nullopt;
}

void SysfsControl::probe(DeviceState& state, const std::string& vendor,
                         const std::optional<std::string>& kernel_driver) {
  std::string file = power_file_for(vendor, kernel_driver);
  if (file.empty()) {
    state.notes.push_back("no sysfs power-limit file known for vendor '" + vendor + "'" +
                          (kernel_driver ? " (driver " + *kernel_driver + ")" : ""));
    return;
  }
  auto dir = find_hwmon(state.bus_id, file);
  if (!dir) {
    state.notes.push_back("no hwmon " + file + " for " + state.bus_id + " under " +
                          fs_.real_path("/sys/bus/pci/devices/" + state.bus_id + "/hwmon") +
                          " or " + fs_.real_path("/sys/class/drm") + "/card*/device/hwmon");
    return;
  }
  state.power_sysfs_path = *dir + "/" + file;
  if (auto uw = read_int(fs_, *state.power_sysfs_path); uw && *uw > 0)
    state.power_limit_w = static_cast<double>(*uw) / 1e6;
  else
    state.notes.push_back("cannot read a power limit from " +
                          fs_.real_path(*state.power_sysfs_path));
  if (file == "power1_cap") {
    auto lo = read_int(fs_, *dir + "/power1_cap_min");
    auto hi = read_int(fs_, *dir + "/power1_cap_max");
    if (lo && hi && *lo >= 0 && *hi > 0) {
      state.power_min_w = static_cast<double>(*lo) / 1e6;
      state.power_max_w = static_cast<double>(*hi) / 1e6;
      state.range_source = "power1_cap_min/power1_cap_max";
    }
  } else {
    auto hi = read_int(fs_, *dir + "/power1_rated_max");
    if (hi && *hi > 0) {  // i915 reads 0 when the card does not say
      state.power_max_w = static_cast<double>(*hi) / 1e6;
      state.range_source = "power1_rated_max";
    }
  }
}

ReadResult SysfsControl::read(const SettingRef& ref) {
  ReadResult out;
  std::string path;
  if (mechanism_kind(ref.mechanism, &path) != MechanismKind::sysfs ||
      ref.setting != kSettingPowerLimit) {
    out.error = "sysfs cannot read '" + ref.setting + "' through '" + ref.mechanism + "'";
    return out;
  }
  if (std::string e = check_power_path(path); !e.empty()) {
    out.error = e;
    return out;
  }
  auto t = fs_.read(path, 4096);
  if (!t) {
    out.error = "cannot read " + fs_.real_path(path);
    return out;
  }
  auto uw = parse_int(clean_value(*t));
  if (!uw) {
    out.error =
        fs_.real_path(path) + " reads '" + clean_value(*t).substr(0, 40) + "', not microwatts";
    return out;
  }
  out.value = watts_text(static_cast<double>(*uw) / 1e6);
  return out;
}

std::string SysfsControl::write(const SettingRef& ref, const std::string& value) {
  std::string path;
  if (mechanism_kind(ref.mechanism, &path) != MechanismKind::sysfs ||
      ref.setting != kSettingPowerLimit)
    return "sysfs cannot write '" + ref.setting + "' through '" + ref.mechanism + "'";
  if (std::string e = check_power_path(path); !e.empty()) return e;
  auto w = parse_watts(value);
  if (!w || *w <= 0 || *w > 1.0e5) return "'" + value + "' is not a power limit in watts";
  long long uw = std::llround(*w * 1e6);
  return fs_.write(path, std::to_string(uw));
}

// ---------------------------------------------------------------------------------------------
// Dispatch

SystemControl::SystemControl(HostFs& fs, Runner& runner, LibLoader& loader,
                             const ControlIsolation& isolation)
    : smi_(runner), sysfs_(fs) {
  if (isolation.exe.empty())
    nvml_ = std::make_unique<NvmlControl>(loader);
  else
    nvml_ = std::make_unique<IsolatedNvmlControl>(runner, isolation.exe, isolation.timeout);
}

DeviceState SystemControl::probe(const std::string& bus_id, const std::string& vendor,
                                 const std::optional<std::string>& kernel_driver) {
  DeviceState s;
  auto n = normalize_bus_id(bus_id);
  s.bus_id = n ? *n : bus_id;
  if (vendor == "nvidia" || (kernel_driver && *kernel_driver == "nvidia")) {
    nvml_->probe(s);
    if (!s.nvml) smi_.probe(s);
  } else {
    sysfs_.probe(s, vendor, kernel_driver);
  }
  return s;
}

void SystemControl::prefetch_nvml(const std::vector<std::string>& bus_ids) {
  std::vector<std::string> ids;
  for (const auto& b : bus_ids) {
    auto n = normalize_bus_id(b);
    ids.push_back(n ? *n : b);
  }
  if (!ids.empty()) nvml_->prefetch(ids);
}

ReadResult SystemControl::read(const SettingRef& ref) {
  switch (mechanism_kind(ref.mechanism)) {
    case MechanismKind::nvml: {
      ReadResult r = nvml_->read(ref);
      if (r.value || nvml_->broken().empty()) return r;
      // NVML hung or crashed: the same setting through nvidia-smi, where it answers.
      ReadResult s = smi_.read(ref);
      if (!s.value) s.error = r.error + "; nvidia-smi instead: " + s.error;
      return s;
    }
    case MechanismKind::nvidia_smi:
      return smi_.read(ref);
    case MechanismKind::sysfs:
      return sysfs_.read(ref);
    default:
      return ReadResult{std::nullopt, "unknown mechanism '" + ref.mechanism + "'"};
  }
}

std::string SystemControl::write(const SettingRef& ref, const std::string& value) {
  switch (mechanism_kind(ref.mechanism)) {
    case MechanismKind::nvml: {
      std::string e = nvml_->write(ref, value);
      if (e.empty() || nvml_->broken().empty()) return e;
      std::string s = smi_.write(ref, value);
      return s.empty() ? "" : e + "; nvidia-smi instead: " + s;
    }
    case MechanismKind::nvidia_smi:
      return smi_.write(ref, value);
    case MechanismKind::sysfs:
      return sysfs_.write(ref, value);
    default:
      return "unknown mechanism '" + ref.mechanism + "'";
  }
}

}  // namespace grey
