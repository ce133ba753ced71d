// The monitoring and governing daemon (SPEC §4): `grey-gpu-opt start-daemon`.
//
// Start: one instance per state directory (<state>/daemon.pid held with flock), the saved GPU
// spec (detected through `detector` when there is none), config.yaml, and the applied plan
// (last_applied_plan.yaml; else a safe plan built here from the spec and config.yaml).
//
// Each tick, at a fixed rate with absolute deadlines (an overrun skips the missed slots):
// one TelemetryCollector sample (each backend under its deadline; a stuck one makes its GPUs
// stale), the thermal governor (governor.h), power-limit writes only with !dry_run && consent
// (journaled like apply; otherwise "[DRY-RUN] would ..." events), per-process VRAM above the
// plan's per_process_vram_cap_mb (events when it goes over and when it stops; SIGTERM to the
// process only with consent and `signal_over_cap: true` in config.yaml), a window of the last
// snapshots for the artifacts (rewritten every 10 ticks), daemon_status.json, the metrics
// board, sd_notify WATCHDOG=1.
//
// Signals: SIGINT/SIGTERM end the loop within one tick and restore every power limit the
// governor lowered (journaled restore); SIGHUP reloads config.yaml and the plan (an invalid one
// is logged as "reload_failed" and the old one kept).
//
// Log: <state>/logs/daemon.jsonl, one {"timestamp","event","details":{...}} object per line,
// rotated to daemon.jsonl.1 when it would pass log_rotate_bytes.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>

#include "detect/detector.h"
#include "detect/global_options.h"
#include "enforce/device_control.h"
#include "model/gpu_spec.h"
#include "telemetry/health.h"
#include "telemetry/telemetry.h"
#include "util/clock.h"
#include "util/host_fs.h"
#include "util/lib_loader.h"
#include "util/runner.h"

namespace grey {

// "127.0.0.1:<port>" used when --metrics-listen is given without an address.
// 9862: a port no GPU exporter uses (9835 is nvidia_gpu_exporter's, 9400 dcgm-exporter's).
inline constexpr const char* kDefaultMetricsListen = "127.0.0.1:9862";

struct DaemonOptions {
  double interval_s = 1.0;
  bool dry_run = true;
  bool consent = false;
  std::optional<std::string> metrics_listen;  // "ADDR:PORT", ":PORT", "PORT"
  std::string state_dir;
  // --labels-dir: keep DIR/grey-gpu-opt (fleet/labels.h) current while running, remove it on a
  // clean stop. nullopt: no labels.
  std::optional<std::string> labels_dir;
  std::string labels_prefix = "grey-gpu-opt";
  double timeout_s = 5.0;  // per-source deadline cap (also capped at 80% of the interval)
  std::string sysfs_root = "/sys";
  std::string procfs_root = "/proc";
  std::string pod_log_root = "/var/log/pods";  // names pods and containers (SPEC §8)
  // Signalling processes above their cap: nullopt = config.yaml's `signal_over_cap`
  // (default false). It still needs !dry_run && consent.
  std::optional<bool> signal_over_cap;
  int resume_samples = 3;    // governor: consecutive samples <= resume to leave cooling
  size_t window = 300;       // snapshots kept for the artifacts
  int artifacts_every = 10;  // ticks
  int stats_every = 10;      // ticks between "tick_stats" events
  uint64_t log_rotate_bytes = 5u << 20;
  uint64_t max_ticks = 0;  // 0: until a signal (tests and benches set a number)
  // Detection when no spec is saved (main passes grey::detect_now).
  std::function<DetectionResult(const GlobalOptions&, const std::optional<std::string>&)> detector;
  // This program's path: NVML device control then runs in `control_exe __control` children
  // under timeout_s, and NVML is loaded for telemetry only after a child initialized it
  // (enforce/isolated_control.h). Empty: all in this process (tests).
  std::string control_exe;
};

// Where the daemon's samples come from (TelemetryCollector in the program).
class TelemetrySource {
 public:
  virtual ~TelemetrySource() = default;
  virtual TelemetrySnapshot sample() = 0;
};

// How the daemon changes power limits: the applier's DeviceControl, and a probe saying which
// mechanism a device answers to (SystemControl in the program).
class PowerControl : public DeviceControl {
 public:
  virtual DeviceState probe(const std::string& bus_id, const std::string& vendor,
                            const std::optional<std::string>& kernel_driver) = 0;
};

// Everything through which the daemon reaches the machine, given by its caller. A door left
// empty gets the real one (the default named with it) when the daemon starts; tests fill them
// with fakes and drive Daemon tick by tick. Files in the state directory go through
// util/state_dir.
struct DaemonDoors {
  std::shared_ptr<HostFs> fs;         // default RootedFs(sysfs_root, procfs_root)
  std::shared_ptr<Runner> runner;     // default PosixRunner
  std::shared_ptr<LibLoader> loader;  // default DlLoader
  std::shared_ptr<TimeSource> clock;  // default SystemTimeSource
  // The telemetry of these GPUs, each backend under `deadline` (default: a TelemetryCollector
  // over fs, runner and loader, NVML only where an isolated child could initialize it).
  std::function<std::unique_ptr<TelemetrySource>(const std::vector<GpuSpec>& specs,
                                                 std::chrono::milliseconds deadline)>
      telemetry;
  // Power-limit control, made only when enforcing (default: SystemControl over fs, runner and
  // loader, NVML isolated in `control_exe` children).
  std::function<std::unique_ptr<PowerControl>()> control;
  // Device health, polled once a tick (telemetry/health.h; default: AMD RAS counters from
  // sysfs over fs for the AMD GPUs). Its XIDs and counter changes become gpu_xid / gpu_ecc
  // events and the grey_gpu_xid_errors_total / grey_gpu_ecc_errors_total metrics.
  std::function<std::unique_ptr<HealthSource>(const std::vector<GpuSpec>& specs)> health;
  // kill(2) for a process above its VRAM cap: 0 or -1 with errno (default ::kill).
  std::function<int(int pid, int signal)> signal_process;
  // run()'s wait between ticks: up to `timeout` for SIGINT, SIGTERM or SIGHUP (blocked by
  // run()); the signal, or 0 when the time is up or the wait was interrupted (default
  // sigtimedwait). A test's wait advances its manual clock and answers scripted signals.
  std::function<int(std::chrono::nanoseconds timeout)> wait_signal;
};

class DaemonCore;

// The daemon as steps, for run_daemon and for tests that drive it in process:
//   start() once (0 when started, else the exit code), tick() any number of times, stop().
// Destroying a started daemon that was not stopped stops it (its power writes are restored).
// start() and stop() do not touch the signal mask; run() blocks SIGINT/SIGTERM/SIGHUP,
// starts, ticks at the interval on the clock until a signal (or max_ticks), then stops.
class Daemon {
 public:
  Daemon(const DaemonOptions& o, DaemonDoors doors, std::ostream& out, std::ostream& err);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  int start(bool* abandoned_work = nullptr);
  void tick();
  void stop(const std::string& why);
  int run(bool* abandoned_work = nullptr);

 private:
  std::unique_ptr<DaemonCore> core_;
};

// Runs the daemon in the foreground until SIGINT/SIGTERM (or max_ticks). Human lines go to
// `out` (start, transitions, power actions, stop), problems to `err`.
// Exit codes: 0 clean stop, 1 cannot start (another daemon, state dir, metrics listen),
// 2 bad options or an invalid config.yaml at start.
// `abandoned_work` is set when a detection or telemetry thread was left stuck in a library.
int run_daemon(const DaemonOptions& o, std::ostream& out, std::ostream& err,
               bool* abandoned_work = nullptr, DaemonDoors doors = {});

// The `signal_over_cap` switch of a config.yaml text: nullopt and *error when the YAML is
// broken or the value is not a boolean; false when absent.
std::optional<bool> parse_signal_over_cap(const std::string& text, std::string* error);

}  // namespace grey
