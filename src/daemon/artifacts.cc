#include "daemon/artifacts.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>
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

namespace {

std::string ratio_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  std::string s = buf;
  while (s.back() == '0') s.pop_back();
  if (s.back() == '.') s += '0';
  return s;
}

template <typename T>
nlohmann::json value_json(const std::optional<T>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

}  // namespace

nlohmann::json vram_reclamation(const SampleWindow& window) {
  using nlohmann::json;
  const size_t n = window.size();
  const ReclaimAnalysis a = window.reclaim(0);
  json j;
  j["samples"] = n;
  j["window_start"] = n == 0 ? json(nullptr) : json(window.timestamp(0));
  j["window_end"] = n == 0 ? json(nullptr) : json(window.timestamp(n - 1));

  // Per GPU: exactly the figures the plan gets for that GPU (plan/reclaim.h).
  json gpus = json::array(), idle = json::array(), groups = json::array();
  std::optional<int64_t> reclaimable, dedup;
  int64_t group_total = 0, group_one = 0;
  std::string reclaim_gpus, dedup_gpus;
  for (const auto& g : a.gpus) {
    gpus.push_back({{"gpu_index", g.gpu_index},
                    {"estimated_reclaimed_mb", value_json(g.estimated_reclaimed_mb.value)},
                    {"dedup_buffer_count", value_json(g.dedup_buffer_count.value)},
                    {"compression_ratio", value_json(g.compression_ratio.value)},
                    {"processes", g.processes},
                    {"processes_without_utilization", g.no_utilization},
                    {"provenance",
                     {{"estimated_reclaimed_mb", g.estimated_reclaimed_mb.provenance},
                      {"dedup_buffer_count", g.dedup_buffer_count.provenance},
                      {"compression_ratio", g.compression_ratio.provenance}}},
                    {"rationale",
                     {{"estimated_reclaimed_mb", g.estimated_reclaimed_mb.rationale},
                      {"dedup_buffer_count", g.dedup_buffer_count.rationale},
                      {"compression_ratio", g.compression_ratio.rationale}}}});
    const std::string gi = std::to_string(g.gpu_index);
    if (g.estimated_reclaimed_mb.value) {
      reclaimable = reclaimable.value_or(0) + *g.estimated_reclaimed_mb.value;
      reclaim_gpus += (reclaim_gpus.empty() ? "" : ", ") + gi;
    }
    if (g.dedup_buffer_count.value) {
      dedup = dedup.value_or(0) + *g.dedup_buffer_count.value;
      dedup_gpus += (dedup_gpus.empty() ? "" : ", ") + gi;
    }
    for (const auto& p : g.idle)
      idle.push_back({{"pid", p.pid},
                      {"command", p.command},
                      {"user", p.user},
                      {"gpu_index", p.gpu_index},
                      {"vram_mb", p.vram_mb}});
    for (const auto& d : g.groups) {
      groups.push_back({{"command", d.command},
                        {"gpu_index", d.gpu_index},
                        {"pids", d.pids},
                        {"vram_mb_each", d.vram_mb_smallest},
                        {"vram_mb_largest", d.vram_mb_largest},
                        {"vram_mb_total", d.vram_mb_total}});
      group_total += d.vram_mb_total;
      group_one += d.vram_mb_largest;
    }
  }
  std::optional<double> ratio;
  if (dedup)
    ratio = group_one > 0 ? std::round(static_cast<double>(group_total) /
                                       static_cast<double>(group_one) * 100.0) /
                                100.0
                          : 1.0;

  // The whole window: the sums over the GPUs that measured them; null when none did.
  const std::string unmeasured =
      n == 0           ? "null: not measured: no process telemetry was given."
      : a.gpus.empty() ? "null: not measured: no process with a GPU index was seen in the " +
                             std::to_string(n) + (n == 1 ? " sample." : " samples.")
                       : "null: not measured on any GPU (see gpus).";
  j["estimated_reclaimable_mb"] = value_json(reclaimable);
  j["dedup_buffer_count"] = value_json(dedup);
  j["compression_ratio"] = value_json(ratio);
  j["provenance"] = {{"estimated_reclaimable_mb", kReclaimProvenance},
                     {"dedup_buffer_count", kDedupProvenance},
                     {"compression_ratio", kRatioProvenance}};
  j["rationale"] = {
      {"estimated_reclaimable_mb", reclaimable ? std::to_string(*reclaimable) +
                                                     " MiB: measured, the sum over GPU(s) " +
                                                     reclaim_gpus + " (see gpus)."
                                               : unmeasured},
      {"dedup_buffer_count", dedup ? std::to_string(*dedup) +
                                         ": derived from measured VRAM, the sum over GPU(s) " +
                                         dedup_gpus + " (see gpus)."
                                   : unmeasured},
      {"compression_ratio",
       ratio ? ratio_text(*ratio) +
                   ": derived, not measured: the duplicate groups' VRAM over one copy each (the "
                   "largest member of each group), if each group could share one copy; 1.0 when "
                   "there is no group."
             : unmeasured}};
  j["gpus"] = gpus;
  j["idle_processes"] = idle;
  j["duplicate_groups"] = groups;
  j["unattributed_processes"] = a.unattributed_processes;
  j["measured"] = reclaimable.has_value() || dedup.has_value();
  if (n == 0)
    j["note"] = "not measured: no telemetry samples";
  else if (n < 2)
    j["note"] = "a single sample: idleness over time needs the daemon's window";
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
