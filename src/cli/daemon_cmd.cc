#include "cli/daemon_cmd.h"

#include <time.h>

#include "daemon/daemon.h"
#include "daemon/daemon_status.h"
#include "daemon/metrics.h"
#include "fleet/labels.h"
#include "util/json_util.h"

namespace grey {

int run_start_daemon_command(const GlobalOptions& g, const DaemonCliOptions& o, std::ostream& out,
                             std::ostream& err, bool* abandoned_work) {
  if (!(o.interval_s >= 0.01 && o.interval_s <= 86400)) {
    err << "error: --interval must be between 0.01 and 86400 seconds, got " << o.interval_s << "\n";
    return 2;
  }
  // Every option is checked before any work: nothing is detected or written on a bad one.
  if (o.metrics_listen && !o.metrics_listen->empty()) {
    std::string why;
    if (!parse_listen_address(*o.metrics_listen, &why)) {
      err << "error: --metrics-listen: " << why << "\n";
      return 2;
    }
  }
  if (std::string e = check_label_prefix(o.labels_prefix); !e.empty()) {
    err << "error: --labels-prefix: " << e << "\n";
    return 2;
  }
  if (o.labels_dir) {
    if (std::string e = check_features_dir(*o.labels_dir); !e.empty()) {
      err << "error: --labels-dir " << e << "\n";
      return 2;
    }
  }
  if (o.consent && o.dry_run)
    err << "note: --consent has no effect in a dry run; add --no-dry-run to let the daemon "
           "change power limits\n";
  DaemonOptions d;
  d.interval_s = o.interval_s;
  d.dry_run = o.dry_run;
  d.consent = o.consent;
  d.metrics_listen = o.metrics_listen;
  d.state_dir = g.state_dir;
  d.labels_dir = o.labels_dir;
  d.labels_prefix = o.labels_prefix;
  d.timeout_s = g.timeout_s;
  d.sysfs_root = g.sysfs_root;
  d.procfs_root = g.procfs_root;
  d.pod_log_root = g.pod_log_root;
  d.control_exe = g.probe_exe;
  // The caller's own options (probe executable and all), not the copy the daemon rebuilds.
  d.detector = [g](const GlobalOptions&, const std::optional<std::string>& replay) {
    return detect_now(g, replay);
  };
  return run_daemon(d, out, err, abandoned_work);
}

int run_status_command(const GlobalOptions& g, bool json, std::ostream& out, std::ostream& err) {
  DaemonStatusView v = read_daemon_status(g.state_dir);
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  double now = static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
  if (json)
    out << dump_json(daemon_status_json(v, now), 2) << "\n";
  else
    out << render_daemon_status(v, now);
  if (!v.status_error.empty() && json) err << "warning: " << v.status_error << "\n";
  return v.running ? 0 : 3;
}

}  // namespace grey
