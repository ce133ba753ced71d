// The options every command and the daemon share: where the host's /sys and /proc are, the
// per-source deadline, the state directory, and how library probes run. A plain struct below
// the cli and daemon layers so that both can take it.
#pragma once

#include <string>

namespace grey {

struct GlobalOptions {
  double timeout_s = 5.0;
  std::string sysfs_root = "/sys";
  std::string procfs_root = "/proc";
  // The kubelet's pod log directory: pod, namespace and container names (SPEC §8).
  std::string pod_log_root = "/var/log/pods";
  bool verbose = false;
  std::string state_dir;  // resolved (GREY_CONFIG_DIR or ~/.grey_optimizer)
  // This program's path: library probes then run as `probe_exe __probe NAME` child processes.
  // Empty: they run in this process.
  std::string probe_exe;
};

}  // namespace grey
