// The NVML telemetry backend, through the one NVML binding (bindings/nvml.h). Loaded and
// initialized once (the first sample), devices enumerated then (index, uuid, bus id are fixed while
// the driver is loaded), nvmlShutdown in the destructor. Per sample and device: memory
// (nvmlDeviceGetMemoryInfo_v2 with the version field when exported, so that "used" excludes the
// driver's reserved memory as nvidia-smi prints it since R510; else the v1 call, whose "used"
// includes it), temperature, utilization rates, power usage (mW), power management limit (else the
// enforced limit) and its constraints, persistence mode; processes from
// nvmlDeviceGetComputeRunningProcesses and nvmlDeviceGetGraphicsRunningProcesses (_v3, _v2 or
// plain, each with its own struct layout: see src/bindings/nvml_api.h), merged by pid; per-process
// SM utilization from nvmlDeviceGetProcessUtilization (NOT_FOUND, or a pid missing from the
// samples: no sample since the last one, so its utilization is unknown, never a made-up idle 0%).
// A failed call leaves its field unknown with a note; a missing symbol is named once.
#include <chrono>
#include <cstring>
#include <map>
#include <set>
#include <unordered_map>

#include "bindings/nvml.h"
#include "telemetry/telemetry.h"
#include "util/strings.h"

namespace grey {

namespace {

using namespace nvml;  // NOLINT(build/namespaces): the vendor API's own names
using Clock = std::chrono::steady_clock;

struct Device {
  nvmlDevice_t handle = nullptr;
  int index = 0;
  std::optional<std::string> bus_id, uuid;
  unsigned long long last_seen_us = 0;  // nvmlDeviceGetProcessUtilization cursor
};

}  // namespace

struct NvmlTelemetry::State {
  std::shared_ptr<LibLoader> loader;
  std::shared_ptr<HostFs> fs;
  bool tried = false;
  bool initialized = false;
  std::vector<std::string> fatal;  // why the backend is unavailable, repeated every sample
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

  std::unique_ptr<Api> api;

  std::string failure(const std::string& call, nvmlReturn_t r) const {
    return api->failure(call, r);
  }

  void load() {
    tried = true;
    LoadResult lr;
    api = Api::load(*loader, &lr);
    if (!api) {
      fatal.push_back("NVML unavailable: " + lr.path + ": " + lr.error);
      return;
    }
    const Api& a = *api;
    a.require(a.init, "everything", &missing);
    a.require(a.device_count, "the device count", &missing);
    a.require(a.handle_by_index, "every device", &missing);
    if (!a.init || !a.device_count || !a.handle_by_index) {
      for (auto& m : missing) fatal.push_back("NVML unavailable: " + m);
      missing.clear();
      return;
    }
    a.require(a.uuid, "uuid", &missing);
    a.require(a.pci_info, "bus_id", &missing);
    if (!a.memory_info && !a.memory_info_v2)
      missing.push_back("nvmlDeviceGetMemoryInfo_v2/nvmlDeviceGetMemoryInfo not found in " +
                        a.path() + "; vram unknown");
    a.require(a.temperature, "temperature", &missing);
    a.require(a.utilization, "utilization", &missing);
    a.require(a.power_usage, "power draw", &missing);
    if (!a.power_limit && !a.enforced_power_limit)
      missing.push_back(
          "nvmlDeviceGetPowerManagementLimit and nvmlDeviceGetEnforcedPowerLimit not found in " +
          a.path() + "; power limit unknown");
    a.require(a.power_limit_constraints, "power limit range", &missing);
    a.require(a.persistence_mode, "persistence mode", &missing);
    a.require(a.compute_processes, "compute processes", &missing);
    a.require(a.graphics_processes, "graphics processes", &missing);

    nvmlReturn_t r = a.init();
    if (r != NVML_SUCCESS) {
      fatal.push_back("NVML unavailable: " + failure(a.init.found, r));
      return;
    }
    initialized = true;
    unsigned n = 0;
    r = a.device_count(&n);
    if (r != NVML_SUCCESS) {
      fatal.push_back("NVML: " + failure(a.device_count.found, r));
      return;
    }
    for (unsigned i = 0; i < n; ++i) {
      Device d;
      d.index = static_cast<int>(i);
      r = a.handle_by_index(i, &d.handle);
      if (r != NVML_SUCCESS) {
        missing.push_back(failure(a.handle_by_index.found + "(" + std::to_string(i) + ")", r) +
                          "; device " + std::to_string(i) + " not sampled");
        continue;
      }
      if (a.index) {
        unsigned v = 0;
        if (a.index(d.handle, &v) == NVML_SUCCESS) d.index = static_cast<int>(v);
      }
      if (a.uuid) {
        char buf[NVML_DEVICE_UUID_V2_BUFFER_SIZE] = {};
        if (a.uuid(d.handle, buf, sizeof buf) == NVML_SUCCESS) {
          std::string s = from_buffer(buf, sizeof buf);
          if (!s.empty()) d.uuid = s;
        }
      }
      if (a.pci_info) {
        nvmlPciInfo_t p;
        std::memset(&p, 0, sizeof p);
        if (a.pci_info(d.handle, &p) == NVML_SUCCESS) {
          // The unversioned call fills the older struct: only busIdLegacy's place is its own.
          if (a.pci_info_is_legacy()) std::memset(p.busId, 0, sizeof p.busId);
          d.bus_id = normalize_bus_id(from_buffer(p.busId, sizeof p.busId));
          if (!d.bus_id) d.bus_id = normalize_bus_id(from_buffer(p.busIdLegacy, 16));
        }
      }
      devices.push_back(d);
    }
    if (n == 0) fatal.push_back("NVML: " + a.device_count.found + " reported 0 devices");
  }

  // Processes of one device: pid -> used bytes (NVML_VALUE_NOT_AVAILABLE when unknown).
  void list_procs(const Fn<nvmlDeviceGetRunningProcesses_fn>& pf, Device& d,
                  std::map<unsigned, unsigned long long>& out,
                  std::vector<std::string>& notes) const {
    if (!pf) return;
    const int layout = Api::process_info_layout(pf);
    std::vector<unsigned char> buf;
    size_t stride = layout == 1 ? sizeof(nvmlProcessInfo_v1_t) : sizeof(nvmlProcessInfo_v2_t);
    unsigned cnt = 0;
    nvmlReturn_t r = pf(d.handle, &cnt, nullptr);
    for (int attempt = 0; attempt < 3 && r == NVML_ERROR_INSUFFICIENT_SIZE; ++attempt) {
      cnt += 8;  // processes may start between the two calls
      buf.assign(static_cast<size_t>(cnt) * stride, 0);
      r = pf(d.handle, &cnt, buf.data());
    }
    if (r != NVML_SUCCESS) {
      notes.push_back(failure(pf.found, r));
      return;
    }
    if (buf.empty()) cnt = 0;  // the first call succeeded with no buffer: none running
    cnt = std::min<unsigned>(cnt, static_cast<unsigned>(buf.size() / stride));
    for (unsigned i = 0; i < cnt; ++i) {
      unsigned pid;
      unsigned long long used;
      if (layout == 1) {
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
    const auto& process_util = api->process_utilization;
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

  void read_device(Device& d, BackendSample& res) {
    const Api& a = *api;
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
    if (a.temperature) {
      unsigned v = 0;
      if (ok(a.temperature(d.handle, NVML_TEMPERATURE_GPU, &v), "nvmlDeviceGetTemperature"))
        s.temperature_c = static_cast<double>(v);
    }
    bool have_mem = false;
    if (a.memory_info_v2) {
      nvmlMemory_v2_t m{};
      m.version = nvmlMemory_v2;
      nvmlReturn_t r = a.memory_info_v2(d.handle, &m);
      if (r == NVML_SUCCESS) {
        s.vram_total_mb = bytes_to_mib(m.total);
        s.vram_used_mb = bytes_to_mib(m.used);
        have_mem = true;
      } else if (!a.memory_info) {
        ok(r, "nvmlDeviceGetMemoryInfo_v2");
      }
    }
    if (!have_mem && a.memory_info) {
      nvmlMemory_t m{};
      if (ok(a.memory_info(d.handle, &m), "nvmlDeviceGetMemoryInfo")) {
        s.vram_total_mb = bytes_to_mib(m.total);
        s.vram_used_mb = bytes_to_mib(m.used);
      }
    }
    if (a.utilization) {
      nvmlUtilization_t u{};
      if (ok(a.utilization(d.handle, &u), "nvmlDeviceGetUtilizationRates"))
        s.utilization_pct = static_cast<double>(u.gpu);
    }
    auto w = [](unsigned mw) { return static_cast<double>(mw) / 1000.0; };
    if (a.power_usage) {
      unsigned v = 0;
      nvmlReturn_t r = a.power_usage(d.handle, &v);
      if (r == NVML_SUCCESS)
        s.power_w = w(v);
      else if (r != NVML_ERROR_NOT_SUPPORTED)
        ok(r, "nvmlDeviceGetPowerUsage");
    }
    {
      unsigned v = 0;
      nvmlReturn_t r = a.power_limit ? a.power_limit(d.handle, &v) : NVML_ERROR_NOT_SUPPORTED;
      if (r == NVML_SUCCESS) {
        s.power_limit_w = w(v);
      } else if (a.enforced_power_limit && a.enforced_power_limit(d.handle, &v) == NVML_SUCCESS) {
        s.power_limit_w = w(v);
      } else if (a.power_limit && r != NVML_ERROR_NOT_SUPPORTED) {
        ok(r, "nvmlDeviceGetPowerManagementLimit");
      }
    }
    if (a.power_limit_constraints) {
      unsigned lo = 0, hi = 0;
      nvmlReturn_t r = a.power_limit_constraints(d.handle, &lo, &hi);
      if (r == NVML_SUCCESS) {
        s.power_limit_min_w = w(lo);
        s.power_limit_max_w = w(hi);
      } else if (r != NVML_ERROR_NOT_SUPPORTED) {
        ok(r, "nvmlDeviceGetPowerManagementLimitConstraints");
      }
    }
    if (a.persistence_mode) {
      int mode = 0;
      nvmlReturn_t r = a.persistence_mode(d.handle, &mode);
      if (r == NVML_SUCCESS)
        s.persistence_mode = mode == NVML_FEATURE_ENABLED;
      else if (r != NVML_ERROR_NOT_SUPPORTED)
        ok(r, "nvmlDeviceGetPersistenceMode");
    }

    std::map<unsigned, unsigned long long> procs;
    list_procs(a.compute_processes, d, procs, s.notes);
    list_procs(a.graphics_processes, d, procs, s.notes);
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
        if (p.command.empty() && a.process_name) {
          char buf[256] = {};
          if (a.process_name(pid, buf, sizeof buf) == NVML_SUCCESS) {
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

NvmlTelemetry::NvmlTelemetry(std::shared_ptr<LibLoader> loader, std::shared_ptr<HostFs> fs)
    : s_(std::make_unique<State>()) {
  s_->loader = std::move(loader);
  s_->fs = std::move(fs);
}

NvmlTelemetry::~NvmlTelemetry() {
  if (s_->initialized && s_->api->shutdown) s_->api->shutdown();
}

BackendSample NvmlTelemetry::sample(uint64_t /*now_ns*/) {
  BackendSample res;
  res.available = false;
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

}  // namespace grey
