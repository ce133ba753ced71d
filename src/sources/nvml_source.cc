// NVML probe. Every call that fails becomes a precise note and the probe goes on with the
// other fields and devices; a symbol the library lacks leaves its field unknown and is named
// in a note. NVML is initialized once per collect() and shut down at the end.
#include "sources/nvml_source.h"

#include <chrono>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "bindings/nvml_api.h"
#include "bindings/nvml_process_api.h"
#include "sources/library_probe.h"
#include "util/strings.h"

namespace grey {
namespace {

using namespace nvml;  // NOLINT(build/namespaces): the vendor API's own names
using Clock = std::chrono::steady_clock;

constexpr const char* kSoname = "libnvidia-ml.so.1";
constexpr const char* kEnvOverride = "GREY_NVML_LIBRARY";

// "12040" -> "12.4" (NVML and the CUDA driver encode 1000*major + 10*minor).
std::string cuda_version_text(int v) {
  return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
}

// A string NVML wrote into a fixed buffer: stops at the NUL (or the buffer's end), trimmed.
std::string from_buffer(const char* buf, size_t size) {
  size_t n = 0;
  while (n < size && buf[n] != '\0') ++n;
  return std::string(trim(std::string_view(buf, n)));
}

struct Api {
  const DynLib* lib = nullptr;
  nvmlInit_fn init = nullptr;
  nvmlShutdown_fn shutdown = nullptr;
  nvmlErrorString_fn error_string = nullptr;
  nvmlSystemGetDriverVersion_fn driver_version = nullptr;
  nvmlSystemGetCudaDriverVersion_fn cuda_version = nullptr;
  nvmlDeviceGetCount_fn count = nullptr;
  nvmlDeviceGetHandleByIndex_fn handle = nullptr;
  nvmlDeviceGetString_fn name = nullptr;
  nvmlDeviceGetString_fn uuid = nullptr;
  nvmlDeviceGetPciInfo_fn pci = nullptr;
  nvmlDeviceGetMemoryInfo_fn memory = nullptr;
  nvmlDeviceGetMemoryInfo_v2_fn memory_v2 = nullptr;  // optional: used without reserved memory
  nvmlDeviceGetCudaComputeCapability_fn compute_capability = nullptr;
  nvmlDeviceGetMaxClockInfo_fn max_clock = nullptr;
  nvmlDeviceGetUint_fn bus_width = nullptr;
  nvmlDeviceGetUint_fn pcie_gen = nullptr;
  nvmlDeviceGetUint_fn pcie_width = nullptr;
  nvmlDeviceGetTemperatureThreshold_fn temp_threshold = nullptr;
  nvmlDeviceGetTemperature_fn temperature = nullptr;
  nvmlDeviceGetUint_fn power_limit = nullptr;
  nvmlDeviceGetPowerManagementLimitConstraints_fn power_constraints = nullptr;
  nvmlDeviceGetUint_fn power_default = nullptr;
  nvmlDeviceGetUint_fn power_enforced = nullptr;
  nvmlDeviceGetUint_fn power_usage = nullptr;
  nvmlDeviceGetMigMode_fn mig_mode = nullptr;
  nvmlDeviceGetPersistenceMode_fn persistence = nullptr;
  nvmlDeviceGetUtilizationRates_fn utilization = nullptr;
  nvmlDeviceGetUint_fn index = nullptr;

  // The symbol names actually found (the versioned one when it exists).
  std::string init_name, count_name, handle_name, pci_name, cuda_version_name;
  std::vector<std::string> missing_notes;

  // Resolves `names` (newest first); when none exists, notes which field stays unknown.
  template <typename F>
  F get(std::initializer_list<const char*> names, const char* what, std::string* found = nullptr) {
    return lib->fn_or_note<F>(names, what, &missing_notes, found);
  }

  void resolve(const DynLib& l) {
    lib = &l;
    init = get<nvmlInit_fn>({"nvmlInit_v2", "nvmlInit"}, "everything", &init_name);
    shutdown = l.fn<nvmlShutdown_fn>({"nvmlShutdown"});
    if (!shutdown) missing_notes.push_back("nvmlShutdown not found in " + l.path());
    error_string = l.fn<nvmlErrorString_fn>({"nvmlErrorString"});  // optional: notes only
    driver_version =
        get<nvmlSystemGetDriverVersion_fn>({"nvmlSystemGetDriverVersion"}, "driver_version");
    cuda_version = get<nvmlSystemGetCudaDriverVersion_fn>(
        {"nvmlSystemGetCudaDriverVersion_v2", "nvmlSystemGetCudaDriverVersion"}, "cuda_version",
        &cuda_version_name);
    count = get<nvmlDeviceGetCount_fn>({"nvmlDeviceGetCount_v2", "nvmlDeviceGetCount"},
                                       "the device count", &count_name);
    handle = get<nvmlDeviceGetHandleByIndex_fn>(
        {"nvmlDeviceGetHandleByIndex_v2", "nvmlDeviceGetHandleByIndex"}, "every device",
        &handle_name);
    name = get<nvmlDeviceGetString_fn>({"nvmlDeviceGetName"}, "model");
    uuid = get<nvmlDeviceGetString_fn>({"nvmlDeviceGetUUID"}, "uuid");
    pci = get<nvmlDeviceGetPciInfo_fn>(
        {"nvmlDeviceGetPciInfo_v3", "nvmlDeviceGetPciInfo_v2", "nvmlDeviceGetPciInfo"},
        "bus_id and pci ids", &pci_name);
    memory = get<nvmlDeviceGetMemoryInfo_fn>({"nvmlDeviceGetMemoryInfo"}, "vram");
    memory_v2 = l.fn<nvmlDeviceGetMemoryInfo_v2_fn>({"nvmlDeviceGetMemoryInfo_v2"});
    compute_capability = get<nvmlDeviceGetCudaComputeCapability_fn>(
        {"nvmlDeviceGetCudaComputeCapability"}, "compute_capability");
    max_clock = get<nvmlDeviceGetMaxClockInfo_fn>({"nvmlDeviceGetMaxClockInfo"}, "clock_mhz");
    bus_width = get<nvmlDeviceGetUint_fn>({"nvmlDeviceGetMemoryBusWidth"}, "memory_bus_width");
    pcie_gen = get<nvmlDeviceGetUint_fn>({"nvmlDeviceGetMaxPcieLinkGeneration"}, "pcie_gen");
    pcie_width = get<nvmlDeviceGetUint_fn>({"nvmlDeviceGetMaxPcieLinkWidth"}, "pcie_width");
    temp_threshold = get<nvmlDeviceGetTemperatureThreshold_fn>(
        {"nvmlDeviceGetTemperatureThreshold"}, "thermal limits");
    temperature = get<nvmlDeviceGetTemperature_fn>({"nvmlDeviceGetTemperature"}, "temperature");
    power_limit = l.fn<nvmlDeviceGetUint_fn>({"nvmlDeviceGetPowerManagementLimit"});
    power_enforced = l.fn<nvmlDeviceGetUint_fn>({"nvmlDeviceGetEnforcedPowerLimit"});
    if (!power_limit && !power_enforced) {
      missing_notes.push_back(
          "nvmlDeviceGetPowerManagementLimit and nvmlDeviceGetEnforcedPowerLimit not found in " +
          l.path() + "; power_limit unknown");
    }
    power_constraints = get<nvmlDeviceGetPowerManagementLimitConstraints_fn>(
        {"nvmlDeviceGetPowerManagementLimitConstraints"}, "power_limit_min/max");
    power_default = get<nvmlDeviceGetUint_fn>({"nvmlDeviceGetPowerManagementDefaultLimit"},
                                              "power_limit_default");
    power_usage = get<nvmlDeviceGetUint_fn>({"nvmlDeviceGetPowerUsage"}, "power draw");
    mig_mode = get<nvmlDeviceGetMigMode_fn>({"nvmlDeviceGetMigMode"}, "mig_mode");
    persistence =
        get<nvmlDeviceGetPersistenceMode_fn>({"nvmlDeviceGetPersistenceMode"}, "persistence_mode");
    utilization =
        get<nvmlDeviceGetUtilizationRates_fn>({"nvmlDeviceGetUtilizationRates"}, "utilization");
    index = l.fn<nvmlDeviceGetUint_fn>({"nvmlDeviceGetIndex"});  // else the enumeration order
  }

  // "nvmlInit_v2 failed: NVML_ERROR_DRIVER_NOT_LOADED (9): Driver Not Loaded".
  std::string failure(const std::string& call, nvmlReturn_t r) const {
    return describe_failure(call, r, error_string);
  }
};

const char* threshold_name(int t) {
  switch (t) {
    case NVML_TEMPERATURE_THRESHOLD_SHUTDOWN:
      return "SHUTDOWN";
    case NVML_TEMPERATURE_THRESHOLD_SLOWDOWN:
      return "SLOWDOWN";
    case NVML_TEMPERATURE_THRESHOLD_GPU_MAX:
      return "GPU_MAX";
    default:
      return "?";
  }
}

// Reads one device; every failed call leaves its field unknown and adds a note.
Observation read_device(const Api& api, nvmlDevice_t dev, unsigned i,
                        const std::optional<std::string>& driver,
                        const std::optional<std::string>& cuda) {
  Observation o;
  GpuFields& f = o.f;
  auto& notes = o.notes;
  auto ok = [&](nvmlReturn_t r, const std::string& call) {
    if (r == NVML_SUCCESS) return true;
    notes.push_back(api.failure(call, r));
    return false;
  };
  f.vendor = "nvidia";
  f.kernel_driver = "nvidia";
  f.driver_version = driver;
  f.cuda_version = cuda;
  f.tool_index = static_cast<int>(i);
  if (api.index) {
    unsigned v = 0;
    if (ok(api.index(dev, &v), "nvmlDeviceGetIndex")) f.tool_index = static_cast<int>(v);
  }
  if (api.name) {
    char buf[NVML_DEVICE_NAME_V2_BUFFER_SIZE] = {};
    if (ok(api.name(dev, buf, sizeof buf), "nvmlDeviceGetName")) {
      std::string s = from_buffer(buf, sizeof buf);
      if (!s.empty()) f.model = s;
    }
  }
  if (api.uuid) {
    char buf[NVML_DEVICE_UUID_V2_BUFFER_SIZE] = {};
    if (ok(api.uuid(dev, buf, sizeof buf), "nvmlDeviceGetUUID")) {
      std::string s = from_buffer(buf, sizeof buf);
      if (!s.empty()) f.uuid = s;
    }
  }
  if (api.pci) {
    nvmlPciInfo_t p;
    std::memset(&p, 0, sizeof p);
    if (ok(api.pci(dev, &p), api.pci_name)) {
      // The unversioned call fills the older, shorter struct: only its first 16 bytes hold
      // the bus id (where busIdLegacy is now); the rest of our buffer is not its own.
      if (api.pci_name == "nvmlDeviceGetPciInfo") std::memset(p.busId, 0, sizeof p.busId);
      std::string id = from_buffer(p.busId, sizeof p.busId);
      std::string legacy = from_buffer(p.busIdLegacy, sizeof p.busIdLegacy);
      if (auto b = normalize_bus_id(id)) {
        f.bus_id = *b;
      } else if (auto bl = normalize_bus_id(legacy)) {
        f.bus_id = *bl;
      } else {
        notes.push_back("PCI bus id '" + (id.empty() ? legacy : id) + "' from " + api.pci_name +
                        " not understood; bus_id unknown");
      }
      if (p.pciDeviceId != 0) {
        f.pci_device_id = p.pciDeviceId >> 16;
        f.pci_vendor_id = p.pciDeviceId & 0xffffu;
      }
    }
  }
  // v2 first: its "used" leaves out the driver's reserved memory, as nvidia-smi's does (v1
  // counts it as used); v1 when the driver has no v2 or refuses it.
  bool have_memory = false;
  if (api.memory_v2) {
    nvmlMemory_v2_t m{};
    m.version = nvmlMemory_v2;
    if (api.memory_v2(dev, &m) == NVML_SUCCESS) {
      f.vram_total_mb = bytes_to_mib(m.total);
      f.vram_free_mb = bytes_to_mib(m.free);
      f.vram_used_mb = bytes_to_mib(m.used);
      have_memory = true;
    }
  }
  if (api.memory && !have_memory) {
    nvmlMemory_t m{};
    if (ok(api.memory(dev, &m), "nvmlDeviceGetMemoryInfo")) {
      f.vram_total_mb = bytes_to_mib(m.total);
      f.vram_free_mb = bytes_to_mib(m.free);
      f.vram_used_mb = bytes_to_mib(m.used);
    }
  }
  if (api.compute_capability) {
    int major = 0, minor = 0;
    if (ok(api.compute_capability(dev, &major, &minor), "nvmlDeviceGetCudaComputeCapability")) {
      f.compute_capability = std::to_string(major) + "." + std::to_string(minor);
    }
  }
  if (api.max_clock) {
    unsigned v = 0;
    if (ok(api.max_clock(dev, NVML_CLOCK_GRAPHICS, &v),
           "nvmlDeviceGetMaxClockInfo(NVML_CLOCK_GRAPHICS)")) {
      f.clock_mhz = static_cast<int>(v);
    }
  }
  auto read_uint = [&](nvmlDeviceGetUint_fn fn, const char* call) -> std::optional<unsigned> {
    if (!fn) return std::nullopt;
    unsigned v = 0;
    if (!ok(fn(dev, &v), call)) return std::nullopt;
    return v;
  };
  if (auto v = read_uint(api.bus_width, "nvmlDeviceGetMemoryBusWidth")) {
    f.memory_bus_width = static_cast<int>(*v);
  }
  if (auto v = read_uint(api.pcie_gen, "nvmlDeviceGetMaxPcieLinkGeneration")) {
    f.pcie_gen = static_cast<int>(*v);
  }
  if (auto v = read_uint(api.pcie_width, "nvmlDeviceGetMaxPcieLinkWidth")) {
    f.pcie_width = static_cast<int>(*v);
  }
  if (api.temp_threshold) {
    const int kinds[] = {NVML_TEMPERATURE_THRESHOLD_SLOWDOWN, NVML_TEMPERATURE_THRESHOLD_SHUTDOWN,
                         NVML_TEMPERATURE_THRESHOLD_GPU_MAX};
    for (int k : kinds) {
      unsigned v = 0;
      std::string call =
          std::string("nvmlDeviceGetTemperatureThreshold(") + threshold_name(k) + ")";
      if (!ok(api.temp_threshold(dev, k, &v), call)) continue;
      int c = static_cast<int>(v);
      if (k == NVML_TEMPERATURE_THRESHOLD_SLOWDOWN) f.thermal.slowdown_c = c;
      if (k == NVML_TEMPERATURE_THRESHOLD_SHUTDOWN) f.thermal.shutdown_c = c;
      if (k == NVML_TEMPERATURE_THRESHOLD_GPU_MAX) f.thermal.max_operating_c = c;
    }
  }
  if (api.temperature) {
    unsigned v = 0;
    if (ok(api.temperature(dev, NVML_TEMPERATURE_GPU, &v),
           "nvmlDeviceGetTemperature(NVML_TEMPERATURE_GPU)")) {
      f.temperature_c = static_cast<double>(v);
    }
  }
  auto watts = [](unsigned mw) { return static_cast<double>(mw) / 1000.0; };
  if (auto v = read_uint(api.power_limit, "nvmlDeviceGetPowerManagementLimit")) {
    f.power_limit_w = watts(*v);
  } else if (auto e = read_uint(api.power_enforced, "nvmlDeviceGetEnforcedPowerLimit")) {
    f.power_limit_w = watts(*e);
  }
  if (api.power_constraints) {
    unsigned lo = 0, hi = 0;
    if (ok(api.power_constraints(dev, &lo, &hi), "nvmlDeviceGetPowerManagementLimitConstraints")) {
      f.power_limit_min_w = watts(lo);
      f.power_limit_max_w = watts(hi);
    }
  }
  if (auto v = read_uint(api.power_default, "nvmlDeviceGetPowerManagementDefaultLimit")) {
    f.power_limit_default_w = watts(*v);
  }
  if (auto v = read_uint(api.power_usage, "nvmlDeviceGetPowerUsage")) {
    f.power_draw_w = watts(*v);
  }
  if (api.mig_mode) {
    unsigned current = 0, pending = 0;
    nvmlReturn_t r = api.mig_mode(dev, &current, &pending);
    // GPUs without MIG (everything before Ampere, and GeForce) answer NOT_SUPPORTED: that is
    // a plain "MIG off", not a failure worth a note.
    if (r == NVML_ERROR_NOT_SUPPORTED) {
      f.mig_mode = false;
    } else if (ok(r, "nvmlDeviceGetMigMode")) {
      f.mig_mode = current == NVML_DEVICE_MIG_ENABLE;
      if (pending != current) {
        notes.push_back(std::string("MIG mode is pending a change to ") +
                        (pending == NVML_DEVICE_MIG_ENABLE ? "enabled" : "disabled") +
                        " (takes effect after a GPU reset)");
      }
    }
  }
  if (api.persistence) {
    int mode = 0;
    if (ok(api.persistence(dev, &mode), "nvmlDeviceGetPersistenceMode")) {
      f.persistence_mode = mode == NVML_FEATURE_ENABLED;
    }
  }
  if (api.utilization) {
    nvmlUtilization_t u{};
    if (ok(api.utilization(dev, &u), "nvmlDeviceGetUtilizationRates")) {
      f.utilization_pct = static_cast<int>(u.gpu);
    }
  }
  return o;
}

class NvmlSource : public Source {
 public:
  std::string name() const override { return "nvml"; }
  int authority() const override { return 100; }

  SourceReport collect(SourceContext& ctx) override {
    SourceReport rep;
    rep.source = name();
    auto t0 = Clock::now();
    auto done = [&](SourceStatus s) {
      rep.status = s;
      rep.duration_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
      return rep;
    };
    std::unique_ptr<DynLib> lib;
    if (auto stop = begin_library_probe(ctx, kSoname, kEnvOverride, rep, &lib)) return done(*stop);
    Api api;
    api.resolve(*lib);
    if (!api.init || !api.count || !api.handle) {
      for (auto& n : api.missing_notes) rep.notes.push_back(n);
      return done(SourceStatus::failed);
    }
    nvmlReturn_t r = api.init();
    if (r != NVML_SUCCESS) {
      rep.notes.push_back(api.failure(api.init_name, r));
      return done(SourceStatus::failed);
    }
    for (auto& n : api.missing_notes) rep.notes.push_back(n);

    std::optional<std::string> driver, cuda;
    if (api.driver_version) {
      char buf[NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE] = {};
      r = api.driver_version(buf, sizeof buf);
      if (r == NVML_SUCCESS) {
        std::string s = from_buffer(buf, sizeof buf);
        if (!s.empty()) driver = s;
      } else {
        rep.notes.push_back(api.failure("nvmlSystemGetDriverVersion", r));
      }
    }
    if (api.cuda_version) {
      int v = 0;
      r = api.cuda_version(&v);
      if (r == NVML_SUCCESS && v > 0) {
        cuda = cuda_version_text(v);
      } else if (r != NVML_SUCCESS) {
        rep.notes.push_back(api.failure(api.cuda_version_name, r));
      }
    }

    unsigned count = 0;
    r = api.count(&count);
    SourceStatus status = SourceStatus::ok;
    if (r != NVML_SUCCESS) {
      rep.notes.push_back(api.failure(api.count_name, r));
      status = SourceStatus::failed;
    } else if (count == 0) {
      rep.notes.push_back(api.count_name + " reported 0 devices");
      status = SourceStatus::no_devices;
    } else {
      for (unsigned i = 0; i < count; ++i) {
        nvmlDevice_t dev = nullptr;
        r = api.handle(i, &dev);
        if (r != NVML_SUCCESS) {
          rep.notes.push_back(api.failure(api.handle_name + "(" + std::to_string(i) + ")", r) +
                              "; device " + std::to_string(i) + " skipped");
          continue;
        }
        rep.devices.push_back(read_device(api, dev, i, driver, cuda));
      }
      if (rep.devices.empty()) status = SourceStatus::failed;
    }
    if (api.shutdown) {
      r = api.shutdown();
      if (r != NVML_SUCCESS) rep.notes.push_back(api.failure("nvmlShutdown", r));
    }
    return done(status);
  }
};

}  // namespace

std::unique_ptr<Source> make_nvml_source() {
  return std::make_unique<NvmlSource>();
}

}  // namespace grey
