#include "enforce/artifacts.h"

#include <cmath>
#include <map>
#include <sstream>

#include "util/json_util.h"
#include "util/state_dir.h"

namespace grey {

namespace {

template <typename T>
std::string cell(const std::optional<T>& v) {
  if (!v) return "";
  std::ostringstream o;
  o << *v;
  return o.str();
}

std::string csv_text(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c == '\n' ? ' ' : c);
  return q + "\"";
}

const GpuPlan* plan_for(const Plan* plan, int index) {
  if (!plan) return nullptr;
  for (const auto& g : plan->gpus)
    if (g.index == index) return &g;
  return nullptr;
}

}  // namespace

std::string thermal_signature_csv(const std::vector<TelemetrySnapshot>& history, const Plan* plan) {
  std::ostringstream o;
  o << "timestamp,gpu_index,bus_id,temperature_c,cooldown_threshold_c,resume_threshold_c,"
       "power_w,power_limit_w,utilization_pct,vram_used_mb,backend\n";
  for (const auto& snap : history)
    for (const auto& g : snap.gpus) {
      if (g.stale || !g.temperature_c) continue;  // only real readings
      const GpuPlan* gp = plan_for(plan, g.index);
      o << snap.timestamp << ',' << g.index << ',' << g.bus_id.value_or("") << ','
        << *g.temperature_c << ',' << (gp ? std::to_string(gp->cooldown_threshold_c) : "") << ','
        << (gp ? std::to_string(gp->resume_threshold_c) : "") << ',' << cell(g.power_w) << ','
        << cell(g.power_limit_w) << ',' << cell(g.utilization_pct) << ',' << cell(g.vram_used_mb)
        << ',' << g.backend << '\n';
    }
  return o.str();
}

std::string fairness_heatmap_csv(const std::vector<TelemetrySnapshot>& history) {
  std::ostringstream o;
  o << "timestamp,gpu_index,pid,command,user,utilization_pct,vram_mb\n";
  for (const auto& snap : history)
    for (const auto& p : snap.processes)
      o << snap.timestamp << ',' << cell(p.gpu_index) << ',' << p.pid << ',' << csv_text(p.command)
        << ',' << csv_text(p.user) << ',' << cell(p.utilization_pct) << ',' << cell(p.vram_mb)
        << '\n';
  return o.str();
}

nlohmann::json vram_reclamation(const std::vector<TelemetrySnapshot>& history) {
  using nlohmann::json;
  json j;
  j["samples"] = history.size();
  j["window_start"] = history.empty() ? json(nullptr) : json(history.front().timestamp);
  j["window_end"] = history.empty() ? json(nullptr) : json(history.back().timestamp);
  // pid -> (samples seen, samples idle, last vram, command, gpu)
  struct Seen {
    size_t seen = 0, idle = 0;
    int64_t vram = 0;
    std::string command, user;
    std::optional<int> gpu;
  };
  std::map<int, Seen> procs;
  for (const auto& snap : history)
    for (const auto& p : snap.processes) {
      auto& s = procs[p.pid];
      ++s.seen;
      if (p.utilization_pct && *p.utilization_pct <= 0.0) ++s.idle;
      if (p.vram_mb) s.vram = *p.vram_mb;
      s.command = p.command;
      s.user = p.user;
      s.gpu = p.gpu_index;
    }
  json idle = json::array();
  int64_t reclaimable = 0;
  for (const auto& [pid, s] : procs) {
    if (s.seen == history.size() && s.idle == s.seen && s.vram > 0) {
      idle.push_back({{"pid", pid},
                      {"command", s.command},
                      {"user", s.user},
                      {"gpu_index", s.gpu ? json(*s.gpu) : json(nullptr)},
                      {"vram_mb", s.vram}});
      reclaimable += s.vram;
    }
  }
  // Same command on the same GPU holding near-equal VRAM.
  std::map<std::pair<std::string, int>, std::vector<std::pair<int, int64_t>>> by_cmd;
  for (const auto& [pid, s] : procs)
    if (s.vram > 0 && !s.command.empty())
      by_cmd[{s.command, s.gpu.value_or(-1)}].push_back({pid, s.vram});
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
  j["measured"] = !history.empty();
  if (history.size() < 2)
    j["note"] = "a single sample: idleness over time needs the daemon's window";
  return j;
}

std::vector<std::string> write_artifacts(const std::string& state_dir,
                                         const std::vector<TelemetrySnapshot>& history,
                                         const Plan* plan, bool heatmap,
                                         std::vector<std::string>* errors) {
  std::vector<std::string> written;
  std::string dir = state_dir + "/artifacts";
  std::string e = ensure_state_dir(dir);
  if (!e.empty()) {
    if (errors) errors->push_back(e);
    return written;
  }
  auto put = [&](const std::string& name, const std::string& body) {
    std::string path = dir + "/" + name;
    std::string err = write_file_atomic(path, body);
    if (err.empty())
      written.push_back(path);
    else if (errors)
      errors->push_back(err);
  };
  put("vram_reclamation.json", dump_json(vram_reclamation(history), 2) + "\n");
  put("thermal_signature.csv", thermal_signature_csv(history, plan));
  if (heatmap) put("fairness_heatmap.csv", fairness_heatmap_csv(history));
  return written;
}

}  // namespace grey
