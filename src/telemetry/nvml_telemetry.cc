// The NVML telemetry backend. Loaded and initialized once (the first sample), devices
// enumerated then (index, uuid, bus id are fixed while the driver is loaded), nvmlShutdown in
// the destructor. Per sample and device: memory (nvmlDeviceGetMemoryInfo_v2 with the version
// field when exported, so that "used" excludes the driver's reserved memory as nvidia-smi
// prints it since R510; else the v1 call, whose "used" includes it), temperature, utilization
// rates, power usage (mW), power management limit (else the enforced limit) and its
// constraints, persistence mode; processes from nvmlDeviceGetComputeRunningProcesses and
// nvmlDeviceGetGraphicsRunningProcesses (_v3, _v2 or plain, each with its own struct layout:
// see src/bindings/nvml_process_api.h), merged by pid; per-process SM utilization from
// nvmlDeviceGetProcessUtilization (NOT_FOUND, or a pid missing from the samples: no sample
// since the last one, so its utilization is unknown, never a made-up idle 0%).
// A failed call leaves its field unknown with a note; a missing symbol is named once.
#include <chrono>
#include <cstring>
#include <map>
#include <set>
#include <unordered_map>

#include "bindings/nvml_process_api.h"
#include "telemetry/telemetry.h"
#include "util/strings.h"

namespace grey::telemetry_internal {

namespace {

using namespace nvml;  // NOLINT(build/namespaces): the vendor API's own names
using Clock = std::chrono::steady_clock;

constexpr const char* kSoname = "libnvidia-ml.so.1";
constexpr const char* kEnvOverride = "GREY_NVML_LIBRARY";

std::string from_buffer(const char* buf, size_t size) {
  size_t n = 0;
  while (n < size && buf[n] != '\0') ++n;
  return std::string(trim(std::string_view(buf, n)));
}

struct ProcFn {
  nvmlDeviceGetRunningProcesses_fn fn = nullptr;
  std::string name;
  int version = 0;  // 1: nvmlProcessInfo_v1_t, 2 and 3: the v2 layout
};

struct Device {
  nvmlDevice_t handle = nullptr;
  int index = 0;
  std::optional<std::string> bus_id, uuid;
  unsigned long long last_seen_us = 0;  // nvmlDeviceGetProcessUtilization cursor
};

}  // namespace

struct NvmlBackend::State {
  std::shared_ptr<LibLoader> loader;
  std::shared_ptr<HostFs> fs;
  bool tried = false;
  bool initialized = false;
  std::vector<std::string> fatal;  // why the backend is unavailable, repeated every sample
  std::unique_ptr<DynLib> lib;
  std::vector<Device> devices;
  std::vector<std::string> missing;  // symbol notes, reported with the first sample only
  bool missing_reported = false;
  // Command and user of the processes listed in the previous sample: a pid listed again is not
  // looked up again (a /proc/<pid>/comm and status read and a passwd lookup per process and
  // tick otherwise). A pid that leaves the list is forgotten, so a new process that reuses it
  // later is read afresh; only an exit and a reuse within one interval would go unnoticed.
  struct Names {
    std::string command, user;
  };
  std::unordered_map<unsigned, Names> names_prev, names_now;

  nvmlInit_fn init = nullptr;
  nvmlShutdown_fn shutdown = nullptr;
  nvmlErrorString_fn error_string = nullptr;
  nvmlDeviceGetCount_fn count = nullptr;
  nvmlDeviceGetHandleByIndex_fn handle = nullptr;
  nvmlDeviceGetUint_fn index = nullptr;
  nvmlDeviceGetString_fn uuid = nullptr;
  nvmlDeviceGetPciInfo_fn pci = nullptr;
  std::string init_name, count_name, handle_name, pci_name;
  nvmlDeviceGetMemoryInfo_v2_fn memory_v2 = nullptr;
  nvmlDeviceGetMemoryInfo_fn memory = nullptr;
  nvmlDeviceGetTemperature_fn temperature = nullptr;
  nvmlDeviceGetUtilizationRates_fn utilization = nullptr;
  nvmlDeviceGetUint_fn power_usage = nullptr;
  nvmlDeviceGetUint_fn power_limit = nullptr;
  nvmlDeviceGetUint_fn power_enforced = nullptr;
  nvmlDeviceGetPowerManagementLimitConstraints_fn power_constraints = nullptr;
  nvmlDeviceGetPersistenceMode_fn persistence = nullptr;
  ProcFn compute, graphics;
  nvmlDeviceGetProcessUtilization_fn process_util = nullptr;
  nvmlSystemGetProcessName_fn process_name = nullptr;

  std::string failure(const std::string& call, nvmlReturn_t r) const {
    return describe_failure(call, r, error_string);
  }

  template <typename F>
  F get(std::initializer_list<const char*> names, const char* what, std::string* found = nullptr) {
    return lib->fn_or_note<F>(names, what, &missing, found);
  }

  ProcFn procs(const char* base, const char* what) {
    ProcFn p;
    std::string b(base);
    std::string v3 = b + "_v3", v2 = b + "_v2";
    p.fn = get<nvmlDeviceGetRunningProcesses_fn>({v3.c_str(), v2.c_str(), base}, what, &p.name);
    p.version = p.name == v3 ? 3 : p.name == v2 ? 2 : 1;
    return p;
  }

  void load() {
    tried = true;
    LoadResult lr = loader->load(kSoname, kEnvOverride);
    if (!lr.lib) {
      fatal.push_back("NVML unavailable: " + lr.path + ": " + lr.error);
      return;
    }
    lib = std::move(lr.lib);
    init = get<nvmlInit_fn>({"nvmlInit_v2", "nvmlInit"}, "everything", &init_name);
    count = get<nvmlDeviceGetCount_fn>({"nvmlDeviceGetCount_v2", "nvmlDeviceGetCount"},
                                       "the device count", &count_name);
    handle = get<nvmlDeviceGetHandleByIndex_fn>(
        {"nvmlDeviceGetHandleByIndex_v2", "nvmlDeviceGetHandleByIndex"}, "every device",
        &handle_name);
    if (!init || !count || !handle) {
      for (auto& m : missing) fatal.push_back("NVML unavailable: " + m);
      missing.clear();
      return;
    }
    shutdown = lib->fn<nvmlShutdown_fn>({"nvmlShutdown"});
    error_string = lib->fn<nvmlErrorString_fn>({"nvmlErrorString"});
    index = lib->fn<nvmlDeviceGetUint_fn>({"nvmlDeviceGetIndex"});
    uuid = get<nvmlDeviceGetString_fn>({"nvmlDeviceGetUUID"}, "uuid");
    pci = get<nvmlDeviceGetPciInfo_fn>(
        {"nvmlDeviceGetPciInfo_v3", "nvmlDeviceGetPciInfo_v2", "nvmlDeviceGetPciInfo"}, "bus_id",
        &pci_name);
    memory_v2 = lib->fn<nvmlDeviceGetMemoryInfo_v2_fn>({"nvmlDeviceGetMemoryInfo_v2"});
    memory = lib->fn<nvmlDeviceGetMemoryInfo_fn>({"nvmlDeviceGetMemoryInfo"});
    if (!memory && !memory_v2)
      missing.push_back("nvmlDeviceGetMemoryInfo_v2/nvmlDeviceGetMemoryInfo not found in " +
                        lib->path() + "; vram unknown");
    temperature = get<nvmlDeviceGetTemperature_fn>({"nvmlDeviceGetTemperature"}, "temperature");
    utilization =
        get<nvmlDeviceGetUtilizationRates_fn>({"nvmlDeviceGetUtilizationRates"}, "utilization");
    power_usage = get<nvmlDeviceGetUint_fn>({"nvmlDeviceGetPowerUsage"}, "power draw");
    power_limit = lib->fn<nvmlDeviceGetUint_fn>({"nvmlDeviceGetPowerManagementLimit"});
    power_enforced = lib->fn<nvmlDeviceGetUint_fn>({"nvmlDeviceGetEnforcedPowerLimit"});
    if (!power_limit && !power_enforced)
      missing.push_back(
          "nvmlDeviceGetPowerManagementLimit and nvmlDeviceGetEnforcedPowerLimit not found in " +
          lib->path() + "; power limit unknown");
    power_constraints = get<nvmlDeviceGetPowerManagementLimitConstraints_fn>(
        {"nvmlDeviceGetPowerManagementLimitConstraints"}, "power limit range");
    persistence =
        get<nvmlDeviceGetPersistenceMode_fn>({"nvmlDeviceGetPersistenceMode"}, "persistence mode");
    compute = procs("nvmlDeviceGetComputeRunningProcesses", "compute processes");
    graphics = procs("nvmlDeviceGetGraphicsRunningProcesses", "graphics processes");
    process_util = lib->fn<nvmlDeviceGetProcessUtilization_fn>({"nvmlDeviceGetProcessUtilization"});
    process_name = lib->fn<nvmlSystemGetProcessName_fn>({"nvmlSystemGetProcessName"});

    nvmlReturn_t r = init();
    if (r != NVML_SUCCESS) {
      fatal.push_back("NVML unavailable: " + failure(init_name, r));
      return;
    }
    initialized = true;
    unsigned n = 0;
    r = count(&n);
    if (r != NVML_SUCCESS) {
      fatal.push_back("NVML: " + failure(count_name, r));
      return;
    }
    for (unsigned i = 0; i < n; ++i) {
      Device d;
      d.index = static_cast<int>(i);
      r = handle(i, &d.handle);
      if (r != NVML_SUCCESS) {
        missing.push_back(failure(handle_name + "(" + std::to_string(i) + ")", r) + "; device " +
                          std::to_string(i) + " not sampled");
        continue;
      }
      if (index) {
        unsigned v = 0;
        if (index(d.handle, &v) == NVML_SUCCESS) d.index = static_cast<int>(v);
      }
      if (uuid) {
        char buf[NVML_DEVICE_UUID_V2_BUFFER_SIZE] = {};
        if (uuid(d.handle, buf, sizeof buf) == NVML_SUCCESS) {
          std::string s = from_buffer(buf, sizeof buf);
          if (!s.empty()) d.uuid = s;
        }
      }
      if (pci) {
        nvmlPciInfo_t p;
        std::memset(&p, 0, sizeof p);
        if (pci(d.handle, &p) == NVML_SUCCESS) {
          // The unversioned call fills the older struct: only busIdLegacy's place is its own.
          if (pci_name == "nvmlDeviceGetPciInfo") std::memset(p.busId, 0, sizeof p.busId);
          d.bus_id = normalize_bus_id(from_buffer(p.busId, sizeof p.busId));
          if (!d.bus_id) d.bus_id = normalize_bus_id(from_buffer(p.busIdLegacy, 16));
        }
      }
      devices.push_back(d);
    }
    if (n == 0) fatal.push_back("NVML: " + count_name + " reported 0 devices");
  }

  // Processes of one device: pid -> used bytes (NVML_VALUE_NOT_AVAILABLE when unknown).
  void list_procs(const ProcFn& pf, Device& d, std::map<unsigned, unsigned long long>& out,
                  std::vector<std::string>& notes) const {
    if (!pf.fn) return;
    std::vector<unsigned char> buf;
    size_t stride = pf.version == 1 ? sizeof(nvmlProcessInfo_v1_t) : sizeof(nvmlProcessInfo_v2_t);
    unsigned cnt = 0;
    nvmlReturn_t r = pf.fn(d.handle, &cnt, nullptr);
    for (int attempt = 0; attempt < 3 && r == NVML_ERROR_INSUFFICIENT_SIZE; ++attempt) {
      cnt += 8;  // processes may start between the two calls
      buf.assign(static_cast<size_t>(cnt) * stride, 0);
      r = pf.fn(d.handle, &cnt, buf.data());
    }
    if (r != NVML_SUCCESS) {
      notes.push_back(failure(pf.name, r));
      return;
    }
    if (buf.empty()) cnt = 0;  // the first call succeeded with no buffer: none running
    cnt = std::min<unsigned>(cnt, static_cast<unsigned>(buf.size() / stride));
    for (unsigned i = 0; i < cnt; ++i) {
      unsigned pid;
      unsigned long long used;
      if (pf.version == 1) {
        nvmlProcessInfo_v1_t p;
        std::memcpy(&p, buf.data() + i * stride, sizeof p);
        pid = p.pid;
        used = p.usedGpuMemory;
      } else {
        nvmlProcessInfo_v2_t p;
        std::memcpy(&p, buf.data() + i * stride, sizeof p);
        pid = p.pid;
        used = p.usedGpuMemory;
      }
      auto [it, inserted] = out.emplace(pid, used);
      // Listed both as compute and graphics: the same memory, not twice as much.
      if (!inserted && (it->second == NVML_VALUE_NOT_AVAILABLE ||
                        (used != NVML_VALUE_NOT_AVAILABLE && used > it->second)))
        it->second = used;
    }
  }

  // pid -> average SM utilization of the samples since the last call.
  std::map<unsigned, double> proc_util(Device& d, std::vector<std::string>& notes) const {
    std::map<unsigned, double> out;
    if (!process_util) return out;
    unsigned cnt = 0;
    nvmlReturn_t r = process_util(d.handle, nullptr, &cnt, d.last_seen_us);
    if (r == NVML_ERROR_NOT_FOUND || (r == NVML_SUCCESS && cnt == 0)) return out;
    std::vector<nvmlProcessUtilizationSample_t> s;
    for (int attempt = 0; attempt < 3 && r == NVML_ERROR_INSUFFICIENT_SIZE; ++attempt) {
      cnt += 8;
      s.assign(cnt, nvmlProcessUtilizationSample_t{});
      r = process_util(d.handle, s.data(), &cnt, d.last_seen_us);
    }
    if (r == NVML_ERROR_NOT_FOUND) return out;
    if (r != NVML_SUCCESS) {
      if (r != NVML_ERROR_NOT_SUPPORTED)
        notes.push_back(failure("nvmlDeviceGetProcessUtilization", r));
      return out;
    }
    std::map<unsigned, std::pair<double, int>> acc;
    cnt = std::min<unsigned>(cnt, static_cast<unsigned>(s.size()));
    for (unsigned i = 0; i < cnt; ++i) {
      auto& a = acc[s[i].pid];
      a.first += std::min(100u, s[i].smUtil);
      a.second += 1;
      if (s[i].timeStamp > d.last_seen_us) d.last_seen_us = s[i].timeStamp;
    }
    for (auto& [pid, a] : acc) out[pid] = a.first / a.second;
    return out;
  }

  void read_device(Device& d, NvmlBackend::Result& res) {
    auto t0 = Clock::now();
    GpuSample s;
    s.index = d.index;
    s.bus_id = d.bus_id;
    s.uuid = d.uuid;
    s.backend = "nvml";
    auto ok = [&](nvmlReturn_t r, const char* call) {
      if (r == NVML_SUCCESS) return true;
      s.notes.push_back(failure(call, r));
      return false;
    };
    // Temperature first: the reading the thermal governor acts on, taken before the rest.
    if (temperature) {
      unsigned v = 0;
      if (ok(temperature(d.handle, NVML_TEMPERATURE_GPU, &v), "nvmlDeviceGetTemperature"))
        s.temperature_c = static_cast<double>(v);
    }
    bool have_mem = false;
    if (memory_v2) {
      nvmlMemory_v2_t m{};
      m.version = nvmlMemory_v2;
      nvmlReturn_t r = memory_v2(d.handle, &m);
      if (r == NVML_SUCCESS) {
        s.vram_total_mb = bytes_to_mib(m.total);
        s.vram_used_mb = bytes_to_mib(m.used);
        have_mem = true;
      } else if (!memory) {
        ok(r, "nvmlDeviceGetMemoryInfo_v2");
      }
    }
    if (!have_mem && memory) {
      nvmlMemory_t m{};
      if (ok(memory(d.handle, &m), "nvmlDeviceGetMemoryInfo")) {
        s.vram_total_mb = bytes_to_mib(m.total);
        s.vram_used_mb = bytes_to_mib(m.used);
      }
    }
    if (utilization) {
      nvmlUtilization_t u{};
      if (ok(utilization(d.handle, &u), "nvmlDeviceGetUtilizationRates"))
        s.utilization_pct = static_cast<double>(u.gpu);
    }
    auto w = [](unsigned mw) { return static_cast<double>(mw) / 1000.0; };
    if (power_usage) {
      unsigned v = 0;
      nvmlReturn_t r = power_usage(d.handle, &v);
      if (r == NVML_SUCCESS)
        s.power_w = w(v);
      else if (r != NVML_ERROR_NOT_SUPPORTED)
        ok(r, "nvmlDeviceGetPowerUsage");
    }
    {
      unsigned v = 0;
      nvmlReturn_t r = power_limit ? power_limit(d.handle, &v) : NVML_ERROR_NOT_SUPPORTED;
      if (r == NVML_SUCCESS) {
        s.power_limit_w = w(v);
      } else if (power_enforced && power_enforced(d.handle, &v) == NVML_SUCCESS) {
        s.power_limit_w = w(v);
      } else if (power_limit && r != NVML_ERROR_NOT_SUPPORTED) {
        ok(r, "nvmlDeviceGetPowerManagementLimit");
      }
    }
    if (power_constraints) {
      unsigned lo = 0, hi = 0;
      nvmlReturn_t r = power_constraints(d.handle, &lo, &hi);
      if (r == NVML_SUCCESS) {
        s.power_limit_min_w = w(lo);
        s.power_limit_max_w = w(hi);
      } else if (r != NVML_ERROR_NOT_SUPPORTED) {
        ok(r, "nvmlDeviceGetPowerManagementLimitConstraints");
      }
    }
    if (persistence) {
      int mode = 0;
      nvmlReturn_t r = persistence(d.handle, &mode);
      if (r == NVML_SUCCESS)
        s.persistence_mode = mode == NVML_FEATURE_ENABLED;
      else if (r != NVML_ERROR_NOT_SUPPORTED)
        ok(r, "nvmlDeviceGetPersistenceMode");
    }

    std::map<unsigned, unsigned long long> procs;
    list_procs(compute, d, procs, s.notes);
    list_procs(graphics, d, procs, s.notes);
    std::map<unsigned, double> util;
    if (!procs.empty()) util = proc_util(d, s.notes);
    for (const auto& [pid, used] : procs) {
      ProcessSample p;
      p.pid = static_cast<int>(pid);
      if (auto known = names_prev.find(pid); known != names_prev.end()) {
        p.command = known->second.command;
        p.user = known->second.user;
      } else {
        if (fs) {
          p.command = process_command(*fs, p.pid);
          p.user = process_user(*fs, p.pid);
        }
        if (p.command.empty() && process_name) {
          char buf[256] = {};
          if (process_name(pid, buf, sizeof buf) == NVML_SUCCESS) {
            std::string n = from_buffer(buf, sizeof buf);
            size_t slash = n.rfind('/');
            p.command = slash == std::string::npos ? n : n.substr(slash + 1);
          }
        }
      }
      names_now[pid] = Names{p.command, p.user};
      p.gpu_bus_id = d.bus_id;
      p.gpu_index = d.index;
      if (used != NVML_VALUE_NOT_AVAILABLE) p.vram_mb = bytes_to_mib(used);
      // No sample for this pid: unknown (not idle; plan/reclaim.h counts it as unknown).
      if (auto it = util.find(pid); it != util.end()) p.utilization_pct = it->second;
      p.backend = "nvml";
      res.processes.push_back(std::move(p));
    }
    s.collect_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    res.gpus.push_back(std::move(s));
  }
};

NvmlBackend::NvmlBackend(std::shared_ptr<LibLoader> loader, std::shared_ptr<HostFs> fs)
    : s_(std::make_unique<State>()) {
  s_->loader = std::move(loader);
  s_->fs = std::move(fs);
}

NvmlBackend::~NvmlBackend() {
  if (s_->initialized && s_->shutdown) s_->shutdown();
}

NvmlBackend::Result NvmlBackend::sample() {
  Result res;
  try {
    if (!s_->tried) {
      if (!s_->loader) {
        s_->tried = true;
        s_->fatal.push_back("NVML unavailable: no library loader");
      } else {
        s_->load();
      }
    }
    res.notes = s_->fatal;
    if (!s_->initialized) return res;
    res.available = true;
    if (!s_->missing_reported) {
      for (auto& m : s_->missing) res.notes.push_back(m);
      s_->missing_reported = true;
    }
    s_->names_now.clear();
    for (Device& d : s_->devices) s_->read_device(d, res);
    s_->names_prev.swap(s_->names_now);
  } catch (const std::exception& e) {
    res.notes.push_back(std::string("NVML sample stopped: ") + e.what());
  }
  return res;
}

}  // namespace grey::telemetry_internal
