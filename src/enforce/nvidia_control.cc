// NVIDIA device control (see nvidia_control.h).
#include "enforce/nvidia_control.h"

#include <cmath>
#include <cstring>

#include "bindings/nvml.h"
#include "enforce/isolated_control.h"
#include "util/strings.h"

namespace grey {

// ---------------------------------------------------------------------------------------------
// NVML

struct NvmlControl::Impl {
  std::unique_ptr<nvml::Api> api;
  bool tried = false;
  bool ready = false;
  std::string error;
  void (*hook)(const char* call) = nullptr;

  // Right before each call into the library.
  void at(const std::string& call) const {
    if (hook) hook(call.c_str());
  }

  // "nvmlDeviceSetPowerManagementLimit failed: NVML_ERROR_NO_PERMISSION (4): Insufficient
  // Permissions".
  std::string failure(const std::string& call, nvml::nvmlReturn_t r) const {
    return api->failure(call, r);
  }

  // The power limit getter: nvmlDeviceGetPowerManagementLimit, else the enforced limit.
  const nvml::Fn<nvml::nvmlDeviceGetUint_fn>& get_limit() const {
    return api->power_limit ? api->power_limit : api->enforced_power_limit;
  }

  // The handle of the device at `bus` (normalized), or why not.
  nvml::nvmlDevice_t find(const std::string& bus, std::string* err) const {
    const nvml::Api& a = *api;
    auto want = normalize_bus_id(bus);
    if (!want) {
      *err = "'" + bus + "' is not a PCI bus id";
      return nullptr;
    }
    if (a.handle_by_pci_bus_id) {
      nvml::nvmlDevice_t d = nullptr;
      at(a.handle_by_pci_bus_id.found);
      if (a.handle_by_pci_bus_id(want->c_str(), &d) == nvml::NVML_SUCCESS && d) return d;
    }
    if (!a.device_count || !a.handle_by_index || !a.pci_info) {
      *err = "NVML lacks the calls to find a device by bus id";
      return nullptr;
    }
    unsigned n = 0;
    at(a.device_count.found);
    nvml::nvmlReturn_t r = a.device_count(&n);
    if (r != nvml::NVML_SUCCESS) {
      *err = failure("nvmlDeviceGetCount", r);
      return nullptr;
    }
    for (unsigned i = 0; i < n; ++i) {
      nvml::nvmlDevice_t d = nullptr;
      at(a.handle_by_index.found);
      if (a.handle_by_index(i, &d) != nvml::NVML_SUCCESS || !d) continue;
      nvml::nvmlPciInfo_t p;
      std::memset(&p, 0, sizeof p);
      at(a.pci_info.found);
      if (a.pci_info(d, &p) != nvml::NVML_SUCCESS) continue;
      if (a.pci_info_is_legacy()) std::memset(p.busId, 0, sizeof p.busId);
      auto id = normalize_bus_id(nvml::from_buffer(p.busId, sizeof p.busId));
      if (!id) id = normalize_bus_id(nvml::from_buffer(p.busIdLegacy, sizeof p.busIdLegacy));
      if (id && *id == *want) return d;
    }
    *err = "NVML lists no device at " + *want;
    return nullptr;
  }
};

NvmlControl::NvmlControl(LibLoader& loader) : loader_(loader), impl_(std::make_unique<Impl>()) {}

NvmlControl::~NvmlControl() {
  if (impl_->ready && impl_->api->shutdown) impl_->api->shutdown();
}

void NvmlControl::set_call_hook(void (*hook)(const char* call)) {
  impl_->hook = hook;
}

std::string NvmlControl::available() {
  Impl& m = *impl_;
  if (m.tried) return m.ready ? "" : m.error;
  m.tried = true;
  LoadResult lr;
  m.api = nvml::Api::load(loader_, &lr);
  if (!m.api) {
    m.error = "NVML: " + lr.path + ": " + lr.error;
    return m.error;
  }
  const nvml::Api& a = *m.api;
  if (!a.init) {
    m.error = "NVML: nvmlInit_v2/nvmlInit not found in " + a.path();
    return m.error;
  }
  m.at(a.init.found);
  nvml::nvmlReturn_t r = a.init();
  if (r != nvml::NVML_SUCCESS) {
    m.error = "NVML: " + m.failure(a.init.found, r);
    return m.error;
  }
  m.ready = true;
  return "";
}

std::string NvmlControl::device_count_error() {
  std::string err = available();
  if (!err.empty()) return err;
  Impl& m = *impl_;
  const nvml::Api& a = *m.api;
  if (!a.device_count)
    return "NVML: nvmlDeviceGetCount_v2/nvmlDeviceGetCount not found in " + a.path();
  unsigned n = 0;
  m.at(a.device_count.found);
  nvml::nvmlReturn_t r = a.device_count(&n);
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
  if (m.get_limit()) {
    unsigned mw = 0;
    m.at("nvmlDeviceGetPowerManagementLimit");
    nvml::nvmlReturn_t r = m.get_limit()(d, &mw);
    if (r == nvml::NVML_SUCCESS)
      state.power_limit_w = mw / 1000.0;
    else
      state.notes.push_back(m.failure("nvmlDeviceGetPowerManagementLimit", r));
  }
  if (m.api->power_limit_constraints) {
    unsigned lo = 0, hi = 0;
    m.at("nvmlDeviceGetPowerManagementLimitConstraints");
    nvml::nvmlReturn_t r = m.api->power_limit_constraints(d, &lo, &hi);
    if (r == nvml::NVML_SUCCESS && hi > 0) {
      state.power_min_w = lo / 1000.0;
      state.power_max_w = hi / 1000.0;
      state.range_source = "NVML power management limit constraints";
    } else if (r != nvml::NVML_SUCCESS) {
      state.notes.push_back(m.failure("nvmlDeviceGetPowerManagementLimitConstraints", r));
    }
  }
  if (m.api->persistence_mode) {
    int mode = 0;
    m.at("nvmlDeviceGetPersistenceMode");
    nvml::nvmlReturn_t r = m.api->persistence_mode(d, &mode);
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
    if (!m.get_limit()) {
      out.error = "nvmlDeviceGetPowerManagementLimit not found in " + m.api->path();
      return out;
    }
    unsigned mw = 0;
    m.at("nvmlDeviceGetPowerManagementLimit");
    nvml::nvmlReturn_t r = m.get_limit()(d, &mw);
    if (r != nvml::NVML_SUCCESS)
      out.error = m.failure("nvmlDeviceGetPowerManagementLimit", r);
    else
      out.value = watts_text(mw / 1000.0);
  } else if (ref.setting == kSettingPersistence) {
    if (!m.api->persistence_mode) {
      out.error = "nvmlDeviceGetPersistenceMode not found in " + m.api->path();
      return out;
    }
    int mode = 0;
    m.at("nvmlDeviceGetPersistenceMode");
    nvml::nvmlReturn_t r = m.api->persistence_mode(d, &mode);
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
    if (!m.api->set_power_limit)
      return "nvmlDeviceSetPowerManagementLimit not found in " + m.api->path();
    auto w = parse_watts(value);
    if (!w || *w <= 0 || *w > 4.0e6) return "'" + value + "' is not a power limit in watts";
    m.at("nvmlDeviceSetPowerManagementLimit");
    nvml::nvmlReturn_t r =
        m.api->set_power_limit(d, static_cast<unsigned>(std::llround(*w * 1000.0)));
    return r == nvml::NVML_SUCCESS ? "" : m.failure("nvmlDeviceSetPowerManagementLimit", r);
  }
  if (ref.setting == kSettingPersistence) {
    if (!m.api->set_persistence_mode)
      return "nvmlDeviceSetPersistenceMode not found in " + m.api->path();
    if (value != "on" && value != "off") return "'" + value + "' is not on/off";
    m.at("nvmlDeviceSetPersistenceMode");
    nvml::nvmlReturn_t r =
        m.api->set_persistence_mode(d, value == "on" ? nvml::NVML_FEATURE_ENABLED : 0);
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
// The vendor control

NvidiaControl::NvidiaControl(Runner& runner, LibLoader& loader, const ControlIsolation& isolation)
    : smi_(runner) {
  if (isolation.exe.empty())
    nvml_ = std::make_unique<NvmlControl>(loader);
  else
    nvml_ = std::make_unique<IsolatedNvmlControl>(runner, isolation.exe, isolation.timeout);
}

bool NvidiaControl::drives(const std::string& vendor,
                           const std::optional<std::string>& kernel_driver) const {
  return vendor == "nvidia" || (kernel_driver && *kernel_driver == "nvidia");
}

bool NvidiaControl::handles(const std::string& mechanism) const {
  MechanismKind k = mechanism_kind(mechanism);
  return k == MechanismKind::nvml || k == MechanismKind::nvidia_smi;
}

void NvidiaControl::probe(DeviceState& state) {
  nvml_->probe(state);
  if (!state.nvml) smi_.probe(state);
}

void NvidiaControl::prefetch(const std::vector<std::string>& bus_ids) {
  if (!bus_ids.empty()) nvml_->prefetch(bus_ids);
}

ReadResult NvidiaControl::read(const SettingRef& ref) {
  if (mechanism_kind(ref.mechanism) == MechanismKind::nvidia_smi) return smi_.read(ref);
  ReadResult r = nvml_->read(ref);
  if (r.value || nvml_->broken().empty()) return r;
  // NVML hung or crashed: the same setting through nvidia-smi, where it answers.
  ReadResult s = smi_.read(ref);
  if (!s.value) s.error = r.error + "; nvidia-smi instead: " + s.error;
  return s;
}

std::string NvidiaControl::write(const SettingRef& ref, const std::string& value) {
  if (mechanism_kind(ref.mechanism) == MechanismKind::nvidia_smi) return smi_.write(ref, value);
  std::string e = nvml_->write(ref, value);
  if (e.empty() || nvml_->broken().empty()) return e;
  std::string s = smi_.write(ref, value);
  return s.empty() ? "" : e + "; nvidia-smi instead: " + s;
}

}  // namespace grey
