// The daemon's files in the state directory and the `status` command's view of them.
//   daemon.pid          the pid of the running daemon, held with flock while it runs
//   daemon_status.json  rewritten atomically every tick (and once more at stop, "state":
//                       "stopped"); fields: docs/FIELDS.md
//   logs/daemon.jsonl   the daemon's JSON-lines log
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace grey {

inline std::string daemon_pid_path(const std::string& state_dir) {
  return state_dir + "/daemon.pid";
}
inline std::string daemon_status_path(const std::string& state_dir) {
  return state_dir + "/daemon_status.json";
}
inline std::string daemon_log_path(const std::string& state_dir) {
  return state_dir + "/logs/daemon.jsonl";
}

// The versions of the JSON shapes (docs/schema/), each written as "schema_version": `status
// --json`, daemon_status.json and one line of logs/daemon.jsonl. Raise one with any change of
// its shape.
inline constexpr int kStatusSchemaVersion = 1;
inline constexpr int kDaemonStatusSchemaVersion = 1;
inline constexpr int kDaemonLogSchemaVersion = 1;

// The executable name a daemon's /proc/<pid>/comm is compared with when daemon_status.json
// does not name its own.
inline constexpr const char* kDaemonComm = "grey-gpu-opt";

struct DaemonStatusView {
  bool running = false;
  std::optional<long> pid;      // from daemon.pid
  bool stale_pid_file = false;  // daemon.pid names a process that is gone (or another program)
  std::string why;              // one sentence: how running/not running was decided
  std::optional<nlohmann::json> status;  // daemon_status.json, when readable
  std::string status_error;              // why it is not (absent file: empty)
};

// Reads daemon.pid and daemon_status.json. A daemon is running when the pid file names a
// live process (kill(pid, 0) succeeds or says EPERM) whose /proc/<pid>/comm is the comm the
// daemon recorded (else kDaemonComm). `proc_root` is the real /proc (tests pass their own).
// Changes nothing (a stale pid file is reported, not removed).
DaemonStatusView read_daemon_status(const std::string& state_dir,
                                    const std::string& proc_root = "/proc");

// The `status` text: running or not, pid, last tick (and how long ago, from `now_unix`),
// governor state and temperature per GPU.
std::string render_daemon_status(const DaemonStatusView& v, double now_unix);
// {"schema_version", "running", "pid", "stale_pid_file", "why", "last_tick", "last_tick_age_s",
// "status"}.
nlohmann::json daemon_status_json(const DaemonStatusView& v, double now_unix);

}  // namespace grey
