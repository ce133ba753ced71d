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

#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <string>

#include "detect/detector.h"
#include "detect/global_options.h"

namespace grey {

// "127.0.0.1:<port>" used when --metrics-listen is given without an address.
inline constexpr const char* kDefaultMetricsListen = "127.0.0.1:9835";

struct DaemonOptions {
  double interval_s = 1.0;
  bool dry_run = true;
  bool consent = false;
  std::optional<std::string> metrics_listen;  // "ADDR:PORT", ":PORT", "PORT"
  std::string state_dir;
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

// Runs the daemon in the foreground until SIGINT/SIGTERM (or max_ticks). Human lines go to
// `out` (start, transitions, power actions, stop), problems to `err`.
// Exit codes: 0 clean stop, 1 cannot start (another daemon, state dir, metrics listen),
// 2 bad options or an invalid config.yaml at start.
// `abandoned_work` is set when a detection or telemetry thread was left stuck in a library.
int run_daemon(const DaemonOptions& o, std::ostream& out, std::ostream& err,
               bool* abandoned_work = nullptr);

// The `signal_over_cap` switch of a config.yaml text: nullopt and *error when the YAML is
// broken or the value is not a boolean; false when absent.
std::optional<bool> parse_signal_over_cap(const std::string& text, std::string* error);

}  // namespace grey
