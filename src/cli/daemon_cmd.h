// start-daemon and status (SPEC §4), independent of argument parsing.
#pragma once

#include <optional>
#include <ostream>
#include <string>

#include "cli/detect_cmd.h"

namespace grey {

struct DaemonCliOptions {
  double interval_s = 1.0;
  bool dry_run = true;  // --no-dry-run clears it
  bool consent = false;
  // --metrics-listen: nullopt when not given; "" when given without a value (binds
  // 127.0.0.1 on the default port, kDefaultMetricsListen); else "ADDR:PORT", ":PORT", "PORT".
  std::optional<std::string> metrics_listen;
  // --labels-dir DIR: keep DIR/grey-gpu-opt current (fleet/labels.h); nullopt: no labels.
  std::optional<std::string> labels_dir;
  std::string labels_prefix = "grey-gpu-opt";
};

// Runs the daemon in the foreground (daemon/daemon.h). Exit codes: 0 clean stop, 1 cannot
// start (another daemon is running, state dir, metrics listen), 2 bad usage or an invalid
// config.yaml. `abandoned_work`: leave with _exit (a library call is stuck in a thread).
int run_start_daemon_command(const GlobalOptions& g, const DaemonCliOptions& o, std::ostream& out,
                             std::ostream& err, bool* abandoned_work = nullptr);

// Exit codes: 0 a daemon is running, 3 none is (LSB "not running"), 1 error.
int run_status_command(const GlobalOptions& g, bool json, std::ostream& out, std::ostream& err);

}  // namespace grey
