#include "cli/labels_cmd.h"

#include <sys/stat.h>

#include <cmath>

#include "cli/detect_cmd.h"

namespace grey {

int run_labels_command(const GlobalOptions& g, const LabelsCliOptions& o, std::ostream& out,
                       std::ostream& err, bool* abandoned_work) {
  if (abandoned_work) *abandoned_work = false;
  // Every option is checked before detection: nothing runs or is written on a bad one.
  if (!(std::isfinite(g.timeout_s) && g.timeout_s > 0 && g.timeout_s <= 600)) {
    err << "error: --timeout must be a number of seconds in (0, 600], got " << g.timeout_s << "\n";
    return 2;
  }
  if (std::string e = check_label_prefix(o.prefix); !e.empty()) {
    err << "error: --prefix: " << e << "\n";
    return 2;
  }
  if (o.replay) {
    struct stat st;
    if (::stat(o.replay->c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      err << "error: --replay " << *o.replay << ": not a directory\n";
      return 2;
    }
  }
  if (!o.to_stdout) {
    if (std::string e = check_features_dir(o.output_dir); !e.empty()) {
      err << "error: --output-dir " << e << "\n";
      return 2;
    }
  }
  DetectionResult r = detect_now(g, o.replay);
  if (abandoned_work) *abandoned_work = r.abandoned_work;
  if (r.gpus.empty())
    for (const auto& n : r.notes) err << "note: " << n << "\n";
  std::string perr;
  std::optional<Plan> plan = load_applied_plan(g.state_dir, &perr);
  if (!perr.empty()) err << "warning: " << perr << "; the plan.* labels are left out\n";
  FeatureFile f =
      render_feature_file(compute_node_labels(r.gpus, plan ? &*plan : nullptr), o.prefix);
  if (!f.dropped.empty()) {
    err << "warning: " << f.dropped.size() << " label(s) left out to keep the file under "
        << kMaxFeatureFileBytes << " bytes (NFD's limit):";
    for (const auto& d : f.dropped) err << " " << d;
    err << "\n";
  }
  if (o.to_stdout) {
    out << f.text;
    return 0;
  }
  std::string e = write_feature_file(o.output_dir, f.text);
  if (!e.empty()) {
    err << "error: cannot write the labels: " << e << "\n";
    return 1;
  }
  size_t n = 0;
  for (char c : f.text) n += c == '\n';
  std::string dir = o.output_dir;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  out << "wrote " << n << " label(s) for " << r.gpus.size() << " GPU(s) to " << dir << "/"
      << kFeatureFileName << "\n";
  if (g.verbose) err << render_timings(r);
  return 0;
}

}  // namespace grey
