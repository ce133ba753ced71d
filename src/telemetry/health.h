// Device health (SPEC §9): NVIDIA XID events and ECC counters from NVML, AMD RAS error counts
// from sysfs. Facts only: which XIDs are application errors is the one judgement made here.
//
//   XidWatcher: one NVML event set (nvmlEventTypeXidCriticalError) waited on by its own
//     thread, each wait bounded by `wait_ms`, so a tick never blocks on it: the tick drains
//     what arrived. stop() (and the destructor) ends the thread within one wait.
//   read_nvml_ecc: ECC volatile/aggregate counts, retired pages, remapped rows of one device;
//     a caller runs it where it runs its other NVML calls (under that deadline).
//   read_amd_ras: /sys/class/drm/cardN/device/ras/*_err_count ("ue: N\nce: N" per block; see
//     the kernel's Documentation/gpu/amdgpu/ras.rst).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "bindings/nvml.h"
#include "util/host_fs.h"
#include "util/lib_loader.h"

namespace grey {

// XIDs a faulting application causes (13 graphics engine exception, 31 MMU fault, 43 GPU
// stopped processing, 45 preemptive cleanup, 68 video processor exception, 109 context switch
// timeout): recorded, but they do not mark the device unhealthy.
bool xid_is_application_error(unsigned long long xid);

struct XidEvent {
  int gpu = 0;
  unsigned long long xid = 0;
  bool application = false;  // xid_is_application_error(xid)
};

class XidWatcher {
 public:
  // `devices`: (our GPU index, its NVML handle). `api` must outlive the watcher.
  XidWatcher(const nvml::Api& api, std::vector<std::pair<int, nvml::nvmlDevice_t>> devices,
             unsigned wait_ms = 500);
  ~XidWatcher();
  XidWatcher(const XidWatcher&) = delete;
  XidWatcher& operator=(const XidWatcher&) = delete;

  // Creates the event set, registers every device, starts the thread. False (and notes why)
  // when the library lacks the calls or no device could be registered.
  bool start();
  // What arrived since the last drain, oldest first. Never blocks on NVML.
  std::vector<XidEvent> drain();
  // Ends the thread (within one wait) and frees the event set. Idempotent.
  void stop();
  std::vector<std::string> notes() const;

 private:
  void loop();
  const nvml::Api& api_;
  std::vector<std::pair<int, nvml::nvmlDevice_t>> devices_;
  unsigned wait_ms_;
  nvml::nvmlEventSet_t set_ = nullptr;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  std::vector<XidEvent> pending_;
  std::vector<std::string> notes_;
};

struct NvmlEcc {
  std::optional<uint64_t> volatile_corrected, volatile_uncorrected;
  std::optional<uint64_t> aggregate_corrected, aggregate_uncorrected;
  std::optional<unsigned> retired_pages_sbe, retired_pages_dbe;
  std::optional<bool> retired_pages_pending;
  std::optional<unsigned> remapped_rows_corrected, remapped_rows_uncorrected;
  std::optional<bool> remap_pending, remap_failure;
  std::vector<std::string> notes;
};
NvmlEcc read_nvml_ecc(const nvml::Api& api, nvml::nvmlDevice_t device);

struct RasCounts {
  uint64_t ue = 0;  // uncorrectable
  uint64_t ce = 0;  // correctable
};
// "ue: N\nce: N" (either order, extra whitespace allowed); nullopt when neither is there.
std::optional<RasCounts> parse_ras_count(const std::string& text);

struct AmdRas {
  bool present = false;  // the device has a ras/ directory with at least one counter
  RasCounts total;
  std::map<std::string, RasCounts> blocks;  // "umc", "gfx", ... (file name minus _err_count)
  std::vector<std::string> notes;
};
// `device_dir`: "/sys/class/drm/cardN/device" (through `fs`).
AmdRas read_amd_ras(HostFs& fs, const std::string& device_dir);

// A device fault: a non-application XID, an uncorrected volatile ECC error, a row remapping
// failure or an uncorrectable RAS error.
struct HealthVerdict {
  bool healthy = true;
  std::vector<std::string> reasons;
};
HealthVerdict judge_health(const std::vector<XidEvent>& xids, const NvmlEcc* ecc,
                           const AmdRas* ras);

// What the daemon polls once per tick (never blocking on a vendor call): the XIDs that arrived
// and the error counters now, per GPU index and counter type ("volatile_corrected",
// "volatile_uncorrected", "aggregate_corrected", "aggregate_uncorrected", "retired_pages_sbe",
// "retired_pages_dbe", "remapped_rows_corrected", "remapped_rows_uncorrected",
// "ras_uncorrectable", "ras_correctable").
struct HealthPoll {
  std::vector<XidEvent> xids;
  std::map<int, std::map<std::string, uint64_t>> counters;
};
class HealthSource {
 public:
  virtual ~HealthSource() = default;
  virtual HealthPoll poll() = 0;
};
// The counters of one NVML device / one AMD device as HealthPoll types.
std::map<std::string, uint64_t> ecc_counters(const NvmlEcc& e);
std::map<std::string, uint64_t> ras_counters(const AmdRas& r);
// True when a counter type means a device fault once it is above 0.
bool counter_is_fault(const std::string& type);

// AMD RAS counters from sysfs: (GPU index, normalized PCI bus id) per AMD GPU; reads
// /sys/bus/pci/devices/<bus>/ras through `fs`.
class AmdRasHealth : public HealthSource {
 public:
  AmdRasHealth(std::shared_ptr<HostFs> fs, std::vector<std::pair<int, std::string>> gpus)
      : fs_(std::move(fs)), gpus_(std::move(gpus)) {}
  HealthPoll poll() override;

 private:
  std::shared_ptr<HostFs> fs_;
  std::vector<std::pair<int, std::string>> gpus_;
};

// NVIDIA: XIDs and ECC counters from NVML, every NVML call (load, init, handles, the event
// set, ECC reads every `ecc_period_ms`) on this object's own thread, so poll() never calls
// NVML and a stuck library never holds up a tick. `gpus`: (GPU index, PCI bus id).
class NvmlHealth : public HealthSource {
 public:
  NvmlHealth(std::shared_ptr<LibLoader> loader, std::vector<std::pair<int, std::string>> gpus,
             unsigned wait_ms = 500, unsigned ecc_period_ms = 10000);
  ~NvmlHealth() override;
  NvmlHealth(const NvmlHealth&) = delete;
  NvmlHealth& operator=(const NvmlHealth&) = delete;
  HealthPoll poll() override;
  std::vector<std::string> notes() const;

 private:
  void run();
  std::shared_ptr<LibLoader> loader_;
  std::vector<std::pair<int, std::string>> gpus_;
  unsigned wait_ms_, ecc_period_ms_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  XidWatcher* watcher_ = nullptr;  // owned by run(), published under mu_
  std::map<int, std::map<std::string, uint64_t>> counters_;
  std::vector<std::string> notes_;
  std::thread thread_;
};

}  // namespace grey
