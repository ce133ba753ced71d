// NVIDIA device control: NVML through the one binding (bindings/nvml.h), in this process
// (NvmlControl) or in a __control child under a deadline (IsolatedNvmlControl,
// isolated_control.h), and nvidia-smi (NvidiaSmiControl). NvidiaControl is the vendor's
// VendorControl: NVML first; nvidia-smi for a device NVML does not answer for, and for NVML
// settings once NVML hung or crashed.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "enforce/control.h"
#include "util/lib_loader.h"
#include "util/runner.h"

namespace grey {

// NVML device control, in this process (NvmlControl) or in a child process under a deadline
// (IsolatedNvmlControl, isolated_control.h).
class NvmlAccess : public DeviceControl {
 public:
  // "" when NVML is loaded and initialized, else why not.
  [[nodiscard]] virtual std::string available() = 0;
  // Fills power limit, range, persistence and `nvml` for the device at state.bus_id.
  virtual void probe(DeviceState& state) = 0;
  // Non-empty once NVML hung or crashed in this run (isolated control only): it is not called
  // again, every later call answers this at once.
  virtual std::string broken() const { return ""; }
  // Probes these devices ahead, all at once where that is cheaper (one child process for all);
  // probe() then answers from what was found. A no-op in process.
  virtual void prefetch(const std::vector<std::string>& bus_ids) { (void)bus_ids; }
};

// NVML through the one binding (nvml::Api: libnvidia-ml.so.1 or $GREY_NVML_LIBRARY).
// Initialized on first use, shut down when destroyed. Devices are found by PCI bus id. Runs the
// library in THIS process: a hang or a crash inside NVML is ours (use IsolatedNvmlControl
// outside tests).
class NvmlControl : public NvmlAccess {
 public:
  explicit NvmlControl(LibLoader& loader);
  ~NvmlControl() override;
  NvmlControl(const NvmlControl&) = delete;
  NvmlControl& operator=(const NvmlControl&) = delete;

  [[nodiscard]] std::string available() override;
  void probe(DeviceState& state) override;
  [[nodiscard]] ReadResult read(const SettingRef& ref) override;
  [[nodiscard]] std::string write(const SettingRef& ref, const std::string& value) override;
  // Called with the NVML function's name right before each call into the library (the control
  // child writes it to stderr, so that the parent can name the call that hung or crashed).
  void set_call_hook(void (*hook)(const char* call));
  // "" when NVML is available and nvmlDeviceGetCount answers, else why not.
  [[nodiscard]] std::string device_count_error();

  struct Impl;

 private:
  LibLoader& loader_;
  std::unique_ptr<Impl> impl_;
};

// nvidia-smi through a Runner (argv only): `-i <bus> -pm 1`, `-i <bus> -pl <W>`, read back by
// `--query-gpu=power.limit,persistence_mode --format=csv,noheader,nounits -i <bus>`.
class NvidiaSmiControl : public DeviceControl {
 public:
  explicit NvidiaSmiControl(Runner& runner, std::string program = "nvidia-smi");
  void probe(DeviceState& state);
  [[nodiscard]] ReadResult read(const SettingRef& ref) override;
  [[nodiscard]] std::string write(const SettingRef& ref, const std::string& value) override;
  // The argv a write runs (exposed for tests and dry-run descriptions).
  std::vector<std::string> write_argv(const std::string& bus_id, const std::string& setting,
                                      const std::string& value) const;

 private:
  struct Query {
    std::optional<double> power_limit_w;
    std::optional<bool> persistence;
    std::string error;
  };
  Query query(const std::string& bus_id);
  // A timed-out nvidia-smi (stuck in the driver like NVML) is not run again in this process.
  std::string note_timeout(const std::vector<std::string>& argv, const CommandResult& r);
  Runner& runner_;
  std::string program_;
  std::string hung_;
};

// How NvidiaControl reaches NVML: `exe` empty: in this process (tests, GREY_PROBE_IN_PROCESS);
// else each request runs as `exe __control REQUEST` under `timeout` (isolated_control.h).
struct ControlIsolation {
  std::string exe;
  std::chrono::milliseconds timeout{5000};
};

class NvidiaControl : public VendorControl {
 public:
  NvidiaControl(Runner& runner, LibLoader& loader, const ControlIsolation& isolation = {});
  std::string vendor() const override { return "nvidia"; }
  bool drives(const std::string& vendor,
              const std::optional<std::string>& kernel_driver) const override;
  bool handles(const std::string& mechanism) const override;  // nvml:*, nvidia-smi *
  // NVML; nvidia-smi when NVML does not answer for the device.
  void probe(DeviceState& state) override;
  void prefetch(const std::vector<std::string>& bus_ids) override;
  [[nodiscard]] ReadResult read(const SettingRef& ref) override;
  [[nodiscard]] std::string write(const SettingRef& ref, const std::string& value) override;

  NvmlAccess& nvml() { return *nvml_; }
  NvidiaSmiControl& nvidia_smi() { return smi_; }

 private:
  std::unique_ptr<NvmlAccess> nvml_;
  NvidiaSmiControl smi_;
};

}  // namespace grey
