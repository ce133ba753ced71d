// NVML probe through the one binding (bindings/nvml.h). Every call that fails becomes a precise
// note and the probe goes on with the other fields and devices; a symbol the library lacks leaves
// its field unknown and is named in a note. NVML is initialized once per collect() and shut down at
// the end.
#include "sources/nvml_source.h"

#include <chrono>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "bindings/nvml.h"
#include "sources/library_probe.h"
#include "util/strings.h"

namespace grey {
namespace {

using namespace nvml;  // NOLINT(build/namespaces): the vendor API's own names
using Clock = std::chrono::steady_clock;

// "12040" -> "12.4" (NVML and the CUDA driver encode 1000*major + 10*minor).
std::string cuda_version_text(int v) {
  return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
}

// A note per symbol the probe uses and the library lacks, naming the field that stays unknown.
std::vector<std::string> missing_notes(const Api& api) {
  std::vector<std::string> n;
  api.require(api.init, "everything", &n);
  if (!api.shutdown) n.push_back("nvmlShutdown not found in " + api.path());
  api.require(api.driver_version, "driver_version", &n);
  api.require(api.cuda_driver_version, "cuda_version", &n);
  api.require(api.device_count, "the device count", &n);
  api.require(api.handle_by_index, "every device", &n);
  api.require(api.name, "model", &n);
  api.require(api.uuid, "uuid", &n);
  api.require(api.pci_info, "bus_id and pci ids", &n);
  api.require(api.memory_info, "vram", &n);
  api.require(api.compute_capability, "compute_capability", &n);
  api.require(api.max_clock, "clock_mhz", &n);
  api.require(api.memory_bus_width, "memory_bus_width", &n);
  api.require(api.max_pcie_gen, "pcie_gen", &n);
  api.require(api.max_pcie_width, "pcie_width", &n);
  api.require(api.temperature_threshold, "thermal limits", &n);
  api.require(api.temperature, "temperature", &n);
  if (!api.power_limit && !api.enforced_power_limit) {
    n.push_back(
        "nvmlDeviceGetPowerManagementLimit and nvmlDeviceGetEnforcedPowerLimit not found in " +
        api.path() + "; power_limit unknown");
  }
  api.require(api.power_limit_constraints, "power_limit_min/max", &n);
  api.require(api.default_power_limit, "power_limit_default", &n);
  api.require(api.power_usage, "power draw", &n);
  api.require(api.mig_mode, "mig_mode", &n);
  api.require(api.persistence_mode, "persistence_mode", &n);
  api.require(api.utilization, "utilization", &n);
  // nvmlDeviceGetMemoryInfo_v2 (optional: used without reserved memory) and nvmlDeviceGetIndex
  // (else the enumeration order) need no note.
  return n;
}

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

// The MIG instances of a GPU in MIG mode (SPEC §9): one partition per MIG device handle, with
// its GPU/compute instance ids, UUID and memory. Empty slots answer NOT_FOUND. NVML has no
// profile name on a MIG handle; the profile comes from nvidia-smi -L when it ran.
void read_mig_instances(const Api& api, nvmlDevice_t dev, GpuFields& f,
                        std::vector<std::string>& notes) {
  if (!api.max_mig_device_count || !api.mig_device_handle_by_index) {
    notes.push_back("MIG is enabled but this libnvidia-ml has no MIG device calls");
    return;
  }
  unsigned max = 0;
  nvmlReturn_t r = api.max_mig_device_count(dev, &max);
  if (r != NVML_SUCCESS) {
    notes.push_back(api.failure("nvmlDeviceGetMaxMigDeviceCount", r));
    return;
  }
  for (unsigned k = 0; k < max && k < 64; ++k) {
    nvmlDevice_t mig = nullptr;
    r = api.mig_device_handle_by_index(dev, k, &mig);
    if (r == NVML_ERROR_NOT_FOUND) continue;
    if (r != NVML_SUCCESS || !mig) {
      notes.push_back(api.failure("nvmlDeviceGetMigDeviceHandleByIndex", r));
      continue;
    }
    Partition p;
    p.dev_index = static_cast<int>(f.partitions.size());
    unsigned v = 0;
    if (api.gpu_instance_id && api.gpu_instance_id(mig, &v) == NVML_SUCCESS)
      p.gi_id = static_cast<int>(v);
    if (api.compute_instance_id && api.compute_instance_id(mig, &v) == NVML_SUCCESS)
      p.ci_id = static_cast<int>(v);
    if (api.uuid) {
      char buf[96] = {};
      if (api.uuid(mig, buf, sizeof buf) == NVML_SUCCESS && buf[0]) p.uuid = std::string(buf);
    }
    if (api.memory_info) {
      nvmlMemory_t m{};
      if (api.memory_info(mig, &m) == NVML_SUCCESS && m.total > 0)
        p.memory_total_mb = static_cast<int64_t>(m.total >> 20);
    }
    f.partitions.push_back(std::move(p));
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
  if (api.pci_info) {
    nvmlPciInfo_t p;
    std::memset(&p, 0, sizeof p);
    if (ok(api.pci_info(dev, &p), api.pci_info.found)) {
      // The unversioned call fills the older, shorter struct: only its first 16 bytes hold
      // the bus id (where busIdLegacy is now); the rest of our buffer is not its own.
      if (api.pci_info_is_legacy()) std::memset(p.busId, 0, sizeof p.busId);
      std::string id = from_buffer(p.busId, sizeof p.busId);
      std::string legacy = from_buffer(p.busIdLegacy, sizeof p.busIdLegacy);
      if (auto b = normalize_bus_id(id)) {
        f.bus_id = *b;
      } else if (auto bl = normalize_bus_id(legacy)) {
        f.bus_id = *bl;
      } else {
        notes.push_back("PCI bus id '" + (id.empty() ? legacy : id) + "' from " +
                        api.pci_info.found + " not understood; bus_id unknown");
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
  if (api.memory_info_v2) {
    nvmlMemory_v2_t m{};
    m.version = nvmlMemory_v2;
    if (api.memory_info_v2(dev, &m) == NVML_SUCCESS) {
      f.vram_total_mb = bytes_to_mib(m.total);
      f.vram_free_mb = bytes_to_mib(m.free);
      f.vram_used_mb = bytes_to_mib(m.used);
      have_memory = true;
    }
  }
  if (api.memory_info && !have_memory) {
    nvmlMemory_t m{};
    if (ok(api.memory_info(dev, &m), "nvmlDeviceGetMemoryInfo")) {
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
  auto read_uint = [&](const Fn<nvmlDeviceGetUint_fn>& fn,
                       const char* call) -> std::optional<unsigned> {
    if (!fn) return std::nullopt;
    unsigned v = 0;
    if (!ok(fn(dev, &v), call)) return std::nullopt;
    return v;
  };
  if (auto v = read_uint(api.memory_bus_width, "nvmlDeviceGetMemoryBusWidth")) {
    f.memory_bus_width = static_cast<int>(*v);
  }
  if (auto v = read_uint(api.max_pcie_gen, "nvmlDeviceGetMaxPcieLinkGeneration")) {
    f.pcie_gen = static_cast<int>(*v);
  }
  if (auto v = read_uint(api.max_pcie_width, "nvmlDeviceGetMaxPcieLinkWidth")) {
    f.pcie_width = static_cast<int>(*v);
  }
  if (api.temperature_threshold) {
    const int kinds[] = {NVML_TEMPERATURE_THRESHOLD_SLOWDOWN, NVML_TEMPERATURE_THRESHOLD_SHUTDOWN,
                         NVML_TEMPERATURE_THRESHOLD_GPU_MAX};
    for (int k : kinds) {
      unsigned v = 0;
      std::string call =
          std::string("nvmlDeviceGetTemperatureThreshold(") + threshold_name(k) + ")";
      if (!ok(api.temperature_threshold(dev, k, &v), call)) continue;
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
  } else if (auto e = read_uint(api.enforced_power_limit, "nvmlDeviceGetEnforcedPowerLimit")) {
    f.power_limit_w = watts(*e);
  }
  if (api.power_limit_constraints) {
    unsigned lo = 0, hi = 0;
    if (ok(api.power_limit_constraints(dev, &lo, &hi),
           "nvmlDeviceGetPowerManagementLimitConstraints")) {
      f.power_limit_min_w = watts(lo);
      f.power_limit_max_w = watts(hi);
    }
  }
  if (auto v = read_uint(api.default_power_limit, "nvmlDeviceGetPowerManagementDefaultLimit")) {
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
  if (f.mig_mode == true) read_mig_instances(api, dev, f, notes);
  if (api.persistence_mode) {
    int mode = 0;
    if (ok(api.persistence_mode(dev, &mode), "nvmlDeviceGetPersistenceMode")) {
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
    Api api(std::move(lib));
    const std::vector<std::string> missing = missing_notes(api);
    if (!api.init || !api.device_count || !api.handle_by_index) {
      for (auto& n : missing) rep.notes.push_back(n);
      return done(SourceStatus::failed);
    }
    nvmlReturn_t r = api.init();
    if (r != NVML_SUCCESS) {
      rep.notes.push_back(api.failure(api.init.found, r));
      return done(SourceStatus::failed);
    }
    for (auto& n : missing) rep.notes.push_back(n);

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
    if (api.cuda_driver_version) {
      int v = 0;
      r = api.cuda_driver_version(&v);
      if (r == NVML_SUCCESS && v > 0) {
        cuda = cuda_version_text(v);
      } else if (r != NVML_SUCCESS) {
        rep.notes.push_back(api.failure(api.cuda_driver_version.found, r));
      }
    }

    unsigned count = 0;
    r = api.device_count(&count);
    SourceStatus status = SourceStatus::ok;
    if (r != NVML_SUCCESS) {
      rep.notes.push_back(api.failure(api.device_count.found, r));
      status = SourceStatus::failed;
    } else if (count == 0) {
      rep.notes.push_back(api.device_count.found + " reported 0 devices");
      status = SourceStatus::no_devices;
    } else {
      for (unsigned i = 0; i < count; ++i) {
        nvmlDevice_t dev = nullptr;
        r = api.handle_by_index(i, &dev);
        if (r != NVML_SUCCESS) {
          rep.notes.push_back(
              api.failure(api.handle_by_index.found + "(" + std::to_string(i) + ")", r) +
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
