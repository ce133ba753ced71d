#include "cli/daemon_cmd.h"

#include <sys/stat.h>
#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <set>
#include <sstream>

#include "daemon/daemon.h"
#include "daemon/daemon_status.h"
#include "daemon/metrics.h"
#include "detect/spec_store.h"
#include "fleet/labels.h"
#include "plan/plan_io.h"
#include "util/json_util.h"
#include "util/state_dir.h"

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

namespace {

// What `status` says besides the daemon: the saved detection, the active plan and the
// directories (SPEC checklist: a new user sees where everything is).
struct HostStatus {
  nlohmann::json j;  // the fields added to status --json
  std::string text;  // the lines printed before the daemon's
};

std::optional<double> mtime_of(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return std::nullopt;
  return static_cast<double>(st.st_mtim.tv_sec) + static_cast<double>(st.st_mtim.tv_nsec) / 1e9;
}

std::string age_text(double s) {
  s = std::max(0.0, s);
  const long v = std::lround(s);
  if (v < 120) return std::to_string(v) + " s ago";
  if (v < 7200) return std::to_string(v / 60) + " min ago";
  if (v < 172800) return std::to_string(v / 3600) + " h ago";
  return std::to_string(v / 86400) + " days ago";
}

double round3(double v) {
  return std::round(v * 1000.0) / 1000.0;
}

std::string utc_text(double unix_s) {
  time_t t = static_cast<time_t>(unix_s);
  tm u{};
  ::gmtime_r(&t, &u);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &u);
  return buf;
}

HostStatus host_status(const std::string& state_dir, double now) {
  using nlohmann::json;
  HostStatus h;
  std::ostringstream o;
  const std::string artifacts = state_dir + "/artifacts";
  const std::string config = state_dir + "/config.yaml";
  // The state directory and artifacts/ are created when missing (0700; a symlink, or a directory
  // others can write, is refused and reported, never used).
  std::string dir_error = ensure_state_dir(state_dir);
  if (dir_error.empty()) dir_error = ensure_state_dir(artifacts);

  // Detection: the saved spec.
  const std::string spec_path = state_dir + "/last_gpu_spec.json";
  LoadedSpecs ls = load_specs(state_dir);
  json det = nullptr;
  if (ls.ok) {
    std::set<std::string> sources;
    std::string when;
    for (const auto& s : ls.specs) {
      for (const auto& d : s.detection_sources) sources.insert(d);
      if (when.empty() && !s.detection_timestamp.empty()) when = s.detection_timestamp;
    }
    auto mt = mtime_of(spec_path);
    det = {{"file", spec_path},
           {"detected_at", when.empty() ? json() : json(when)},
           {"gpu_count", ls.specs.size()},
           {"sources", std::vector<std::string>(sources.begin(), sources.end())},
           {"age_s", mt ? json(round3(now - *mt)) : json()}};
    o << "Detection: " << ls.specs.size() << (ls.specs.size() == 1 ? " GPU" : " GPUs");
    if (!sources.empty()) {
      o << " from ";
      const char* sep = "";
      for (const auto& src : sources) {
        o << sep << src;
        sep = ", ";
      }
    }
    o << (when.empty() ? "" : ", detected " + when);
    if (mt) o << " (spec saved " << age_text(now - *mt) << ")";
    o << "\n";
  } else if (ls.missing) {
    o << "Detection: none saved yet; run `grey-gpu-opt detect`\n";
  } else {
    o << "Detection: unreadable: " << ls.error << "\n";
  }

  // The active plan: the one `apply --no-dry-run` saved.
  const std::string applied = state_dir + "/last_applied_plan.yaml";
  json plan = nullptr;
  std::string perr;
  std::optional<Plan> p;
  if (mtime_of(applied)) p = load_plan_file(applied, &perr);
  if (p) {
    auto mt = mtime_of(applied);
    plan = {{"file", applied},
            {"mode", to_string(p->mode)},
            {"applied_at", mt ? json(utc_text(*mt)) : json()},
            {"generated_at", p->generated_at},
            {"confidence", p->confidence_overall},
            {"gpu_count", p->gpus.size()}};
    char conf[32];
    std::snprintf(conf, sizeof conf, "%.2f", p->confidence_overall);
    o << "Active plan: " << to_string(p->mode) << " mode, " << p->gpus.size()
      << (p->gpus.size() == 1 ? " GPU" : " GPUs") << ", confidence " << conf;
    if (mt) o << ", applied " << utc_text(*mt) << " (" << age_text(now - *mt) << ")";
    o << "\n";
  } else if (!perr.empty()) {
    o << "Active plan: unreadable: " << perr << "\n";
  } else {
    o << "Active plan: none applied; run `grey-gpu-opt plan`, then `grey-gpu-opt apply "
         "--no-dry-run`\n";
  }

  const bool has_config = mtime_of(config).has_value();
  o << "State dir: " << state_dir << "\n";
  o << "Config: " << config << (has_config ? "" : " (absent: the defaults apply)") << "\n";
  o << "Artifacts: " << artifacts << "\n";
  if (!dir_error.empty()) o << "warning: " << dir_error << "\n";
  h.j = {{"state_dir", state_dir},     {"config_file", config}, {"config_present", has_config},
         {"artifacts_dir", artifacts}, {"detection", det},      {"active_plan", plan}};
  if (!dir_error.empty()) h.j["dir_error"] = dir_error;
  h.text = o.str();
  return h;
}

}  // namespace

int run_status_command(const GlobalOptions& g, bool json, std::ostream& out, std::ostream& err) {
  DaemonStatusView v = read_daemon_status(g.state_dir);
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  double now = static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
  HostStatus h = host_status(g.state_dir, now);
  if (json) {
    nlohmann::json j = daemon_status_json(v, now);
    j.update(h.j);
    out << dump_json(j, 2) << "\n";
  } else {
    out << h.text << render_daemon_status(v, now);
  }
  if (!v.status_error.empty() && json) err << "warning: " << v.status_error << "\n";
  return v.running ? 0 : 3;
}

}  // namespace grey
