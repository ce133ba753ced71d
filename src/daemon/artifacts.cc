#include "daemon/artifacts.h"

#include <algorithm>
#include <map>
#include <string_view>

#include "util/json_util.h"
#include "util/state_dir.h"

namespace grey {

namespace {

constexpr std::string_view kThermalHeader =
    "timestamp,gpu_index,bus_id,temperature_c,cooldown_threshold_c,resume_threshold_c,"
    "power_w,power_limit_w,utilization_pct,vram_used_mb,backend\n";
constexpr std::string_view kHeatmapHeader =
    "timestamp,gpu_index,pid,command,user,utilization_pct,vram_mb\n";

SampleWindow window_of(const std::vector<TelemetrySnapshot>& history) {
  SampleWindow w(history.size());
  for (const auto& s : history) w.push(s);
  return w;
}

}  // namespace

std::string thermal_signature_csv(const SampleWindow& window, const Plan* plan) {
  // The threshold cells per GPU index (the first plan entry with that index), "," without one.
  std::vector<std::pair<int, std::string>> cells;
  if (plan)
    for (const auto& g : plan->gpus)
      if (std::none_of(cells.begin(), cells.end(),
                       [&](const auto& c) { return c.first == g.index; }))
        cells.emplace_back(g.index, std::to_string(g.cooldown_threshold_c) + "," +
                                        std::to_string(g.resume_threshold_c));
  static const std::string kNone = ",";
  auto thresholds = [&](int index) -> const std::string& {
    for (const auto& c : cells)
      if (c.first == index) return c.second;
    return kNone;
  };
  size_t bytes = kThermalHeader.size();
  for (size_t i = 0; i < window.size(); ++i)
    bytes += window.thermal_rows_bytes(i) + window.thermal_row_count(i) * 8;
  std::string out;
  out.reserve(bytes);
  out += kThermalHeader;
  for (size_t i = 0; i < window.size(); ++i) window.append_thermal_rows(i, out, thresholds);
  return out;
}

std::string fairness_heatmap_csv(const SampleWindow& window) {
  size_t bytes = kHeatmapHeader.size();
  for (size_t i = 0; i < window.size(); ++i) bytes += window.heatmap_rows(i).size();
  std::string out;
  out.reserve(bytes);
  out += kHeatmapHeader;
  for (size_t i = 0; i < window.size(); ++i) out += window.heatmap_rows(i);
  return out;
}

nlohmann::json vram_reclamation(const SampleWindow& window) {
  using nlohmann::json;
  const size_t n = window.size();
  json j;
  j["samples"] = n;
  j["window_start"] = n == 0 ? json(nullptr) : json(window.timestamp(0));
  j["window_end"] = n == 0 ? json(nullptr) : json(window.timestamp(n - 1));
  const auto& procs = window.pid_summaries();
  json idle = json::array();
  int64_t reclaimable = 0;
  for (const auto& [pid, s] : procs) {
    if (s.seen == n && s.idle == s.seen && s.vram > 0) {
      idle.push_back({{"pid", pid},
                      {"command", window.str(s.command)},
                      {"user", window.str(s.user)},
                      {"gpu_index", s.has_gpu ? json(s.gpu) : json(nullptr)},
                      {"vram_mb", s.vram}});
      reclaimable += s.vram;
    }
  }
  // Same command on the same GPU holding near-equal VRAM.
  std::map<std::pair<std::string, int>, std::vector<std::pair<int, int64_t>>> by_cmd;
  for (const auto& [pid, s] : procs)
    if (s.vram > 0 && !window.str(s.command).empty())
      by_cmd[{window.str(s.command), s.has_gpu ? s.gpu : -1}].push_back({pid, s.vram});
  json groups = json::array();
  int64_t dup_count = 0;
  for (const auto& [key, members] : by_cmd) {
    if (members.size() < 2) continue;
    int64_t lo = members.front().second, hi = lo, total = 0;
    json pids = json::array();
    for (const auto& [pid, v] : members) {
      lo = std::min(lo, v);
      hi = std::max(hi, v);
      total += v;
      pids.push_back(pid);
    }
    if (hi - lo > hi / 20) continue;  // not near-equal
    dup_count += static_cast<int64_t>(members.size()) - 1;
    groups.push_back({{"command", key.first},
                      {"gpu_index", key.second >= 0 ? json(key.second) : json(nullptr)},
                      {"pids", pids},
                      {"vram_mb_each", lo},
                      {"vram_mb_total", total}});
  }
  j["idle_processes"] = idle;
  j["estimated_reclaimable_mb"] = reclaimable;
  j["duplicate_groups"] = groups;
  j["dedup_buffer_count"] = dup_count;
  j["measured"] = n != 0;
  if (n < 2) j["note"] = "a single sample: idleness over time needs the daemon's window";
  return j;
}

std::string thermal_signature_csv(const std::vector<TelemetrySnapshot>& history, const Plan* plan) {
  return thermal_signature_csv(window_of(history), plan);
}

std::string fairness_heatmap_csv(const std::vector<TelemetrySnapshot>& history) {
  return fairness_heatmap_csv(window_of(history));
}

nlohmann::json vram_reclamation(const std::vector<TelemetrySnapshot>& history) {
  return vram_reclamation(window_of(history));
}

std::vector<std::string> write_artifacts(const std::string& state_dir, const SampleWindow& window,
                                         const Plan* plan, bool heatmap,
                                         std::vector<std::string>* errors) {
  std::vector<std::string> written;
  std::string dir = state_dir + "/artifacts";
  std::string e = ensure_state_dir(dir);
  if (!e.empty()) {
    if (errors) errors->push_back(e);
    return written;
  }
  auto done = [&](const std::string& path, const std::string& err) {
    if (err.empty())
      written.push_back(path);
    else if (errors)
      errors->push_back(err);
  };
  auto put = [&](const std::string& name, const std::string& body) {
    std::string path = dir + "/" + name;
    done(path, write_file_atomic(path, body));
  };
  put("vram_reclamation.json", dump_json(vram_reclamation(window), 2) + "\n");
  put("thermal_signature.csv", thermal_signature_csv(window, plan));
  if (heatmap) {
    // The biggest of the three (a row per process per tick): written from the window's
    // per-tick rows as they are.
    std::vector<std::string_view> parts;
    parts.reserve(window.size() + 1);
    parts.push_back(kHeatmapHeader);
    for (size_t i = 0; i < window.size(); ++i)
      if (!window.heatmap_rows(i).empty()) parts.push_back(window.heatmap_rows(i));
    std::string path = dir + "/fairness_heatmap.csv";
    done(path, write_file_atomic_parts(path, parts, 0600));
  }
  return written;
}

std::vector<std::string> write_artifacts(const std::string& state_dir,
                                         const std::vector<TelemetrySnapshot>& history,
                                         const Plan* plan, bool heatmap,
                                         std::vector<std::string>* errors) {
  return write_artifacts(state_dir, window_of(history), plan, heatmap, errors);
}

}  // namespace grey
