// The telemetry layer: one sample per GPU (VRAM used/total, temperature, utilization, power,
// power limit, persistence mode) and per GPU process (pid, command, user, VRAM, utilization).
//
// Every backend implements one interface, TelemetryBackend (name() and sample()):
//   NvmlTelemetry ("nvml"): libnvidia-ml.so.1 or $GREY_NVML_LIBRARY through the one NVML
//     binding (bindings/nvml.h), loaded and initialized once (on the first sample) and shut
//     down when the backend is destroyed.
//   SysfsTelemetry ("sysfs"): amdgpu, i915, xe (and other non-NVIDIA DRM drivers) under
//     /sys/class/drm through HostFs.
//   FdinfoScanner ("fdinfo"): processes from DRM fdinfo under /proc.
//   NvidiaSmiTelemetry ("nvidia-smi"): the fallback, through the Runner.
// TelemetryCollector::sample() composes them:
//   1. NVML on a worker thread; the caller waits at most the per-source deadline.
//   2. sysfs then fdinfo on a second worker thread under the same deadline, in parallel with
//      NVML.
//   3. nvidia-smi only when NVML did not load or initialize AND an NVIDIA GPU (from the specs,
//      or any GPU when there are no specs) was answered by no other backend. Runs through the
//      Runner with the deadline as its timeout.
// Read-only: nothing here writes to a device.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/gpu_spec.h"
#include "model/process_identity.h"
#include "util/host_fs.h"
#include "util/lib_loader.h"
#include "util/runner.h"

namespace grey {

struct GpuSample {
  int index = 0;  // the matching spec's index (matched by bus id); see TelemetryCollector
  std::optional<std::string> bus_id, uuid;
  std::optional<int64_t> vram_used_mb, vram_total_mb;
  std::optional<double> temperature_c, utilization_pct, power_w, power_limit_w, power_limit_min_w,
      power_limit_max_w;
  std::optional<bool> persistence_mode;
  // power/runtime_status (SPEC §9): "active" | "suspended" | "unsupported"; a suspended GPU's
  // readings are all unknown, because nothing that would wake it is read.
  std::optional<std::string> power_state;
  std::string backend;  // "nvml" | "sysfs" | "nvidia-smi"
  // True when the backend did not answer in time: every reading above is then unknown (a
  // stale sample never carries old values that could be mistaken for fresh ones).
  bool stale = false;
  std::vector<std::string> notes;
  double collect_ms = 0;  // wall time of the backend call that produced (or gave up on) it
};

struct ProcessSample {
  int pid = 0;
  std::string command;  // /proc/<pid>/comm, else the backend's own name for it; "" if unknown
  std::string user;     // user name of the real uid; the uid as digits if it has no name
  std::optional<std::string> gpu_bus_id;
  std::optional<int> gpu_index;
  std::optional<int64_t> vram_mb;
  std::optional<double> utilization_pct;
  std::string backend;  // "nvml" | "fdinfo" | "nvidia-smi"
  // Container, pod and unit (SPEC §8), filled by the collector (telemetry/process_identity.h).
  ProcessIdentity identity;
};

struct TelemetrySnapshot {
  std::string timestamp;  // UTC, "2026-11-26T15:00:00.123Z"
  std::vector<GpuSample> gpus;
  std::vector<ProcessSample> processes;
  std::vector<std::string> notes;
  // Wall time spent per backend in this sample ("nvml", "sysfs", "fdinfo", "nvidia-smi");
  // a backend that did not run has no entry.
  std::map<std::string, double> source_ms;
};

nlohmann::json to_json(const GpuSample& s);
nlohmann::json to_json(const ProcessSample& p);
nlohmann::json to_json(const TelemetrySnapshot& s);

// ---- The backend interface --------------------------------------------------------------

// What one backend answered in one sample.
struct BackendSample {
  // False when the backend cannot work on this host at all (NVML did not load or initialize):
  // `notes` then say why, and the collector reports them once.
  bool available = true;
  std::vector<GpuSample> gpus;
  std::vector<ProcessSample> processes;
  std::vector<std::string> notes;
};

// One telemetry backend. Not thread-safe: the collector calls each from one worker thread at a
// time, and waits for it at most its deadline.
class TelemetryBackend {
 public:
  virtual ~TelemetryBackend() = default;
  // "nvml" | "sysfs" | "fdinfo" | "nvidia-smi": the TelemetrySnapshot::source_ms key.
  virtual std::string name() const = 0;
  // One sample; `now_ns` is the monotonic time of the sample (rates from two samples use it;
  // tests pass their own). Never throws.
  virtual BackendSample sample(uint64_t now_ns) = 0;
};

class TelemetryCollector {
 public:
  TelemetryCollector(std::shared_ptr<HostFs> fs, std::shared_ptr<LibLoader> loader,
                     std::shared_ptr<Runner> runner, const std::vector<GpuSpec>& specs,
                     std::chrono::milliseconds per_source_deadline,
                     std::string pod_log_root = "/var/log/pods");
  ~TelemetryCollector();
  TelemetryCollector(const TelemetryCollector&) = delete;
  TelemetryCollector& operator=(const TelemetryCollector&) = delete;

  // Never throws. Blocks at most about per_source_deadline for NVML and sysfs/fdinfo (which
  // run in parallel); when the nvidia-smi fallback runs, its two queries share one more
  // deadline. A backend still stuck in an earlier call is not called again: its GPUs come
  // back stale at once (no thread is started per call; the collector owns two workers).
  TelemetrySnapshot sample();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// ---- Pieces of the backends, exposed for tests and the fuzz target -------------------------

// One /proc/<pid>/fdinfo/<fd> of a DRM file (Documentation/gpu/drm-usage-stats.rst).
struct DrmFdinfo {
  std::string driver;                         // drm-driver ("amdgpu", "i915", "xe", ...)
  std::optional<std::string> pdev;            // drm-pdev, normalized bus id
  std::optional<uint64_t> client_id;          // drm-client-id
  std::optional<uint64_t> vram_bytes;         // device-local memory of this client (see fdinfo.cc)
  std::map<std::string, uint64_t> engine_ns;  // drm-engine-<e>: <n> ns
  std::map<std::string, uint64_t> cycles;     // drm-cycles-<e> (xe)
  std::map<std::string, uint64_t> total_cycles;  // drm-total-cycles-<e> (xe)
  std::map<std::string, uint64_t> capacity;      // drm-engine-capacity-<e> (absent: 1)
  // Pre-5.19 amdgpu format ("pdev:", "vram mem: N kB", "gfx0: 12.5%"): no client id, and a
  // busy percentage instead of counters.
  bool legacy_amdgpu = false;
  std::optional<double> legacy_busy_pct;
};

// Pure; never throws. nullopt when the text is not a DRM fdinfo (no drm-driver key and not the
// legacy amdgpu format), e.g. the fdinfo of a plain file or socket.
std::optional<DrmFdinfo> parse_drm_fdinfo(std::string_view text);

// "<n>", "<n> KiB", "<n> MiB", "<n> GiB", "<n> kB" -> bytes. nullopt on anything else.
std::optional<uint64_t> parse_fdinfo_size(std::string_view value);

// Engine busy percentage of one DRM client between two readings `dt_ns` apart: the busiest
// engine, each engine's time divided by its capacity (drm-engine-* ns); for xe, cycles over
// total cycles (drm-cycles-* / drm-total-cycles-*). Counters that went backwards count as 0.
// nullopt when the two readings share no counter.
std::optional<double> drm_busy_pct(const DrmFdinfo& before, const DrmFdinfo& after, uint64_t dt_ns);

// Walks /proc through HostFs and returns one ProcessSample per (pid, GPU) with DRM clients of
// a non-NVIDIA driver. A client (drm-pdev + drm-client-id) shared by several fds or processes
// is counted once, for the lowest pid holding it. Utilization needs two scans: the first
// leaves it unknown. `now_ns` is the monotonic time of the scan (tests pass their own).
class FdinfoScanner : public TelemetryBackend {
 public:
  explicit FdinfoScanner(std::shared_ptr<HostFs> fs);
  std::vector<ProcessSample> scan(uint64_t now_ns, std::vector<std::string>& notes);
  std::string name() const override { return "fdinfo"; }
  BackendSample sample(uint64_t now_ns) override;  // scan(): processes and notes

 private:
  std::shared_ptr<HostFs> fs_;
  struct Prev {
    DrmFdinfo info;
    uint64_t at_ns;
  };
  std::map<std::string, Prev> prev_;  // by client key
};

// The sysfs backend: one GpuSample per DRM card not driven by the NVIDIA driver. Power from
// energy1_input (i915/xe) needs two samples. `now_ns` as for FdinfoScanner.
class SysfsTelemetry : public TelemetryBackend {
 public:
  explicit SysfsTelemetry(std::shared_ptr<HostFs> fs);
  std::string name() const override { return "sysfs"; }
  BackendSample sample(uint64_t now_ns) override;  // gpus only

 private:
  std::shared_ptr<HostFs> fs_;
  std::map<std::string, std::pair<uint64_t, uint64_t>> energy_;  // card dir -> (uJ, at_ns)
};

// nvidia-smi fallback parsers (pure). The query-gpu text is
// `--query-gpu=index,pci.bus_id,uuid,memory.used,memory.total,temperature.gpu,utilization.gpu,
// power.draw,power.limit,persistence_mode --format=csv,noheader,nounits`; the apps text is
// `--query-compute-apps=gpu_bus_id,pid,process_name,used_gpu_memory --format=csv`.
std::vector<GpuSample> parse_smi_gpu_query(std::string_view text, std::vector<std::string>& notes);
std::vector<ProcessSample> parse_smi_apps_query(std::string_view text,
                                                std::vector<std::string>& notes);

// Process identity through HostFs: /proc/<pid>/comm and the real uid of /proc/<pid>/status
// (named through getpwuid_r). Empty strings when unreadable.
std::string process_command(HostFs& fs, int pid);
std::string process_user(HostFs& fs, int pid);

// The NVML backend (nvml_telemetry.cc). Per sample and device: memory, temperature,
// utilization, power, power limit and range, persistence mode; processes with their VRAM and
// SM utilization.
class NvmlTelemetry : public TelemetryBackend {
 public:
  NvmlTelemetry(std::shared_ptr<LibLoader> loader, std::shared_ptr<HostFs> fs);
  ~NvmlTelemetry() override;  // nvmlShutdown when nvmlInit succeeded
  NvmlTelemetry(const NvmlTelemetry&) = delete;
  NvmlTelemetry& operator=(const NvmlTelemetry&) = delete;

  std::string name() const override { return "nvml"; }
  // Loads and initializes on the first call (never retried after a failure); `available` is
  // false until then and after a failure.
  BackendSample sample(uint64_t now_ns) override;

 private:
  struct State;
  std::unique_ptr<State> s_;
};

// The nvidia-smi fallback (nvidia_smi_telemetry.cc): both queries, sharing `deadline`.
class NvidiaSmiTelemetry : public TelemetryBackend {
 public:
  NvidiaSmiTelemetry(std::shared_ptr<Runner> runner, std::shared_ptr<HostFs> fs,
                     std::chrono::milliseconds deadline)
      : runner_(std::move(runner)), fs_(std::move(fs)), deadline_(deadline) {}
  std::string name() const override { return "nvidia-smi"; }
  // `available` is false when nvidia-smi did not start or its GPU query failed.
  BackendSample sample(uint64_t now_ns) override;

 private:
  std::shared_ptr<Runner> runner_;
  std::shared_ptr<HostFs> fs_;
  std::chrono::milliseconds deadline_;
};

}  // namespace grey
