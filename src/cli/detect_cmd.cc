#include "cli/detect_cmd.h"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <sstream>

#include "cli/text_table.h"
#include "detect/capture.h"
#include "detect/registry.h"
#include "detect/spec_store.h"
#include "util/json_util.h"
#include "util/state_dir.h"
#include "util/strings.h"

namespace grey {

namespace {

std::chrono::milliseconds to_ms(double s) {
  return std::chrono::milliseconds(static_cast<long>(std::llround(s * 1000.0)));
}

std::string opt_str(const std::optional<std::string>& v) {
  return v ? *v : "-";
}
template <typename T>
std::string opt_num(const std::optional<T>& v, const char* unit = "") {
  if (!v) return "-";
  std::ostringstream o;
  o << *v << unit;
  return o.str();
}

std::string fmt_ms(double ms) {
  std::ostringstream o;
  o.setf(std::ios::fixed);
  o.precision(ms < 10 ? 1 : 0);
  o << ms << " ms";
  return o.str();
}

bool valid_timeout(double s) {
  return std::isfinite(s) && s > 0 && s <= 600;
}

}  // namespace

DetectionResult detect_now(const GlobalOptions& g, const std::optional<std::string>& replay) {
  DetectEnv env;
  env.runner = std::make_shared<PosixRunner>();
  env.loader = std::make_shared<DlLoader>();
  if (replay)
    env.fs = std::make_shared<RootedFs>(*replay + "/sys", *replay + "/proc");
  else
    env.fs = std::make_shared<RootedFs>(g.sysfs_root, g.procfs_root);
  DetectOptions opt;
  opt.timeout = to_ms(g.timeout_s);
  opt.replay_dir = replay;
  return run_detection(make_all_sources(g.probe_exe), env, opt);
}

std::string render_table(const std::vector<GpuSpec>& gpus) {
  std::ostringstream o;
  if (gpus.empty()) {
    o << "No GPU found. Run `grey-gpu-opt detect --explain` to see what each source saw.\n";
    return o.str();
  }
  // Columns size to their content; a model name longer than 48 code points ends in "…".
  TextTable t({"IDX", "VENDOR", "MODEL", "BUS ID", "VRAM MiB", "DRIVER", "CC", "SOURCES"},
              {0, 0, 48, 0, 0, 24, 0, 0});
  for (const auto& s : gpus) {
    std::string srcs;
    for (const auto& d : s.detection_sources) srcs += (srcs.empty() ? "" : ",") + d;
    t.add_row({std::to_string(s.index), s.f.vendor.value_or("unknown"), opt_str(s.f.model),
               opt_str(s.f.bus_id), opt_num(s.f.vram_total_mb), opt_str(s.f.driver_version),
               opt_str(s.f.compute_capability), srcs});
  }
  o << t.render();
  for (const auto& s : gpus)
    for (const auto& n : s.notes) o << "  note [" << s.index << "]: " << n << "\n";
  return o.str();
}

namespace {
// This process's own peak resident set (VmHWM), not its children's.
std::string own_peak_rss() {
  auto status = RootedFs().read("/proc/self/status", 1 << 16);
  if (!status) return "unknown";
  for (auto line : split_lines(*status))
    if (starts_with(line, "VmHWM:")) return std::string(trim(line.substr(6)));
  return "unknown";
}
}  // namespace

std::string render_timings(const DetectionResult& r) {
  std::ostringstream o;
  o << "sources (" << fmt_ms(r.duration_ms) << " in all; peak RSS of this process "
    << own_peak_rss() << "):\n";
  TextTable t({"SOURCE", "STATUS", "TIME", "DEVICES"});
  for (const auto& rep : r.reports)
    t.add_row({rep.source, to_string(rep.status), fmt_ms(rep.duration_ms),
               std::to_string(rep.devices.size())});
  o << t.render("  ");
  return o.str();
}

std::string render_explain(const DetectionResult& r) {
  std::ostringstream o;
  o << "Detection at " << r.timestamp << " took " << fmt_ms(r.duration_ms) << ".\n\n";
  for (const auto& rep : r.reports) {
    o << "[" << rep.source << "] " << to_string(rep.status) << " in " << fmt_ms(rep.duration_ms)
      << "\n";
    if (!rep.what.empty()) o << "  ran/read: " << rep.what << "\n";
    if (rep.devices.empty()) o << "  found: nothing\n";
    for (const auto& d : rep.devices) {
      o << "  found: " << d.display_name();
      if (d.f.bus_id) o << " at " << *d.f.bus_id;
      if (d.software_reason) o << " (software: " << *d.software_reason << ")";
      o << "\n";
    }
    for (const auto& n : rep.notes) o << "  note: " << n << "\n";
  }
  o << "\nSeen and ignored (not GPUs):\n";
  if (r.ignored.empty()) o << "  none\n";
  for (const auto& i : r.ignored)
    o << "  " << i.name << " [" << i.source << "]: " << i.reason << "\n";
  o << "\nGPUs: " << r.gpus.size() << "\n";
  for (const auto& g : r.gpus) {
    std::string srcs;
    for (const auto& d : g.detection_sources) srcs += (srcs.empty() ? "" : ", ") + d;
    o << "  " << g.index << ": " << g.f.model.value_or("unnamed") << " from " << srcs << "\n";
    // Which source's value won, per field, grouped by source in the order they were merged.
    std::map<std::string, std::string> by_source;
    for (const auto& [field, src] : g.field_sources)
      by_source[src] += (by_source[src].empty() ? "" : ", ") + field;
    std::vector<std::string> order = g.detection_sources;
    for (const auto& [src, fields] : by_source)
      if (std::find(order.begin(), order.end(), src) == order.end()) order.push_back(src);
    for (const auto& src : order)
      if (auto it = by_source.find(src); it != by_source.end())
        o << "     fields from " << src << ": " << it->second << "\n";
  }
  for (const auto& n : r.notes) o << "note: " << n << "\n";
  return o.str();
}

int run_detect_command(const GlobalOptions& g, const DetectCliOptions& o, std::ostream& out,
                       std::ostream& err, bool* abandoned_work) {
  if (!valid_timeout(g.timeout_s)) {
    err << "error: --timeout must be a number of seconds in (0, 600], got " << g.timeout_s << "\n";
    return 2;
  }
  if (o.replay) {
    struct stat st;
    if (::stat(o.replay->c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      err << "error: --replay " << *o.replay << ": not a directory\n";
      return 2;
    }
  }
  DetectionResult r = detect_now(g, o.replay);
  if (abandoned_work) *abandoned_work = r.abandoned_work;
  if (o.json) {
    out << dump_json(specs_to_json(r.gpus), 2) << "\n";
    if (r.gpus.empty())
      for (const auto& n : r.notes) err << n << "\n";
    if (o.explain) err << render_explain(r);
  } else {
    out << render_table(r.gpus);
    if (o.explain) out << "\n" << render_explain(r);
  }
  if (g.verbose) err << render_timings(r);
  if (!o.no_save) {
    std::string e = save_specs(g.state_dir, r.gpus);
    if (!e.empty()) {
      err << "error: could not save the GPU spec: " << e << "\n";
      return 1;
    }
    if (g.verbose) err << "saved " << g.state_dir << "/last_gpu_spec.json\n";
  }
  return 0;
}

int run_capture_command(const GlobalOptions& g, const std::string& dir, std::ostream& out,
                        std::ostream& err, bool* abandoned_work) {
  if (!valid_timeout(g.timeout_s)) {
    err << "error: --timeout must be a number of seconds in (0, 600], got " << g.timeout_s << "\n";
    return 2;
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    err << "error: cannot create " << dir << ": " << ec.message() << "\n";
    return 1;
  }
  DirCapture sink(dir);
  DetectEnv env;
  env.runner = std::make_shared<PosixRunner>();
  env.loader = std::make_shared<DlLoader>();
  auto cfs =
      std::make_shared<CapturingFs>(std::make_shared<RootedFs>(g.sysfs_root, g.procfs_root), dir);
  env.fs = cfs;
  DetectOptions opt;
  opt.timeout = to_ms(g.timeout_s);
  opt.capture = &sink;
  DetectionResult r = run_detection(make_all_sources(g.probe_exe), env, opt);
  if (abandoned_work) *abandoned_work = r.abandoned_work;
  nlohmann::json extra;
  extra["tool"] = std::string("grey-gpu-opt ") + GREY_VERSION;
  extra["timestamp"] = r.timestamp;
  extra["sysfs_root"] = g.sysfs_root;
  extra["gpus"] = specs_to_json(r.gpus);
  nlohmann::json sources = nlohmann::json::array();
  for (const auto& rep : r.reports)
    sources.push_back({{"source", rep.source},
                       {"status", to_string(rep.status)},
                       {"what", rep.what},
                       {"duration_ms", rep.duration_ms},
                       {"notes", rep.notes}});
  extra["sources"] = sources;
  std::string e = sink.finish(extra);
  if (!e.empty()) {
    err << "error: " << e << "\n";
    return 1;
  }
  for (const auto& w : sink.errors()) err << "warning: " << w << "\n";
  out << "captured " << r.reports.size() << " sources and " << cfs->files_copied()
      << " sysfs files into " << dir << " (" << r.gpus.size()
      << " GPU(s)); replay with: grey-gpu-opt detect --replay " << dir << "\n";
  if (g.verbose) err << render_timings(r);
  return 0;
}

}  // namespace grey
