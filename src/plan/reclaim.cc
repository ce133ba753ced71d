#include "plan/reclaim.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "util/strings.h"

namespace grey {

namespace {

constexpr const char* kNoTelemetry = "null: not measured: no process telemetry was given.";
constexpr size_t kPidsShown = 8;

std::string ratio_text(double v) {
  std::string s = compact_decimal(v, 2);
  if (s.find('.') == std::string::npos) s += ".0";
  return s;
}

std::string mib(int64_t v) {
  return std::to_string(v) + " MiB";
}

std::string pid_list(const std::vector<int64_t>& pids) {
  std::string s;
  for (size_t i = 0; i < pids.size() && i < kPidsShown; ++i)
    s += (i ? ", " : "") + std::to_string(pids[i]);
  if (pids.size() > kPidsShown) s += " and " + std::to_string(pids.size() - kPidsShown) + " more";
  return s;
}

std::string processes(size_t n) {
  return std::to_string(n) + (n == 1 ? " process" : " processes");
}

std::string window_text(size_t ticks, double duration_s) {
  std::string s = std::to_string(ticks) + (ticks == 1 ? " sample" : " samples");
  if (duration_s > 0) s += " over " + compact_decimal(duration_s, 1) + " s";
  return s;
}

template <typename T>
ReclaimFigure<T> not_measured(const char* provenance, const std::string& why) {
  ReclaimFigure<T> f;
  f.provenance = provenance;
  f.confidence = 0;
  f.rationale = why;
  return f;
}

GpuReclaim unmeasured_gpu(int gpu_index, const std::string& why) {
  GpuReclaim g;
  g.gpu_index = gpu_index;
  g.estimated_reclaimed_mb = not_measured<int64_t>(kReclaimProvenance, why);
  g.dedup_buffer_count = not_measured<int64_t>(kDedupProvenance, why);
  g.compression_ratio = not_measured<double>(kRatioProvenance, why);
  return g;
}

}  // namespace

void ReclaimTally::add_tick(const std::vector<ReclaimRow>& rows) {
  ++ticks_;
  // The rows with a GPU index, ordered by (gpu, pid) and then by their order in the tick, so
  // that the rows of one pair are adjacent and the last one comes last.
  std::vector<std::pair<std::pair<int, int64_t>, size_t>> order;
  order.reserve(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    if (rows[i].gpu_index)
      order.push_back({{*rows[i].gpu_index, rows[i].pid}, i});
    else
      unattributed_.insert(rows[i].pid);
  }
  std::sort(order.begin(), order.end());
  auto hint = procs_.begin();
  for (size_t i = 0; i < order.size();) {
    const auto key = order[i].first;
    bool busy = false, no_util = false;
    std::optional<int64_t> vram;
    const ReclaimRow* last = nullptr;
    for (; i < order.size() && order[i].first == key; ++i) {
      const ReclaimRow& r = rows[order[i].second];
      if (!r.utilization_pct || !std::isfinite(*r.utilization_pct))
        no_util = true;
      else if (*r.utilization_pct > 0.0)
        busy = true;
      if (r.vram_mb) vram = r.vram_mb;
      last = &r;
    }
    hint = procs_.try_emplace(hint, key);
    Proc& p = hint->second;
    ++hint;
    ++p.samples;
    if (busy)
      ++p.busy;
    else if (no_util)
      ++p.no_util;
    else
      ++p.idle;
    if (vram) p.vram_mb = vram;
    p.command.assign(last->command);
    p.user.assign(last->user);
    p.last_tick = ticks_;
  }
}

ReclaimAnalysis ReclaimTally::analyze(double duration_s) const {
  ReclaimAnalysis a;
  a.ticks = ticks_;
  a.duration_s = std::isfinite(duration_s) && duration_s > 0 ? duration_s : 0;
  a.unattributed_processes = unattributed_.size();
  const std::string w = window_text(ticks_, a.duration_s);
  const double mconf = ticks_ >= 2 ? 0.9 : 0.6;

  for (auto it = procs_.begin(); it != procs_.end();) {
    const int gpu = it->first.first;
    auto end = it;
    while (end != procs_.end() && end->first.first == gpu) ++end;

    GpuReclaim g;
    g.gpu_index = gpu;

    // Reclaim: idle in every tick of the window.
    int64_t reclaimed = 0;
    std::vector<int64_t> idle_pids;
    size_t undecided = 0;
    for (auto p = it; p != end; ++p) {
      const Proc& s = p->second;
      const int64_t pid = p->first.second;
      ++g.processes;
      const bool throughout = s.samples == ticks_;
      if (throughout && s.busy == 0 && s.no_util > 0) {
        ++g.no_utilization;
        g.no_utilization_pids.push_back(pid);
        ++undecided;
        continue;
      }
      if (throughout && s.idle == ticks_ && s.vram_mb && *s.vram_mb > 0) {
        reclaimed += *s.vram_mb;
        idle_pids.push_back(pid);
        g.idle.push_back({pid, gpu, s.command, s.user, *s.vram_mb});
      }
    }
    auto& r = g.estimated_reclaimed_mb;
    r.provenance = kReclaimProvenance;
    const std::string unknown_part =
        g.no_utilization == 0
            ? std::string()
            : " " + processes(g.no_utilization) + " (pid " + pid_list(g.no_utilization_pids) +
                  ") had no utilization sample in some sample: unknown, not counted as idle.";
    if (undecided == g.processes) {
      r.rationale = "null: not measured: none of the " + processes(g.processes) +
                    " on this GPU had a utilization sample in every one of the " + w + "." +
                    unknown_part;
    } else {
      r.value = reclaimed;
      r.confidence = mconf * (g.no_utilization ? 0.75 : 1.0);
      if (idle_pids.empty())
        r.rationale = "0 MiB: measured over " + w + "; no process on this GPU was idle in every " +
                      "sample." + unknown_part;
      else
        r.rationale = mib(reclaimed) + ": measured over " + w + ", held by process(es) " +
                      pid_list(idle_pids) + " at 0% utilization in every sample." + unknown_part;
    }

    // Dedup: groups in the newest tick.
    std::map<std::string, std::vector<std::pair<int64_t, int64_t>>> by_cmd;  // (vram, pid)
    size_t newest = 0, newest_vram = 0;
    for (auto p = it; p != end; ++p) {
      const Proc& s = p->second;
      if (s.last_tick != ticks_) continue;
      ++newest;
      if (!s.vram_mb) continue;
      ++newest_vram;
      if (*s.vram_mb > 0 && !s.command.empty())
        by_cmd[s.command].push_back({*s.vram_mb, p->first.second});
    }
    int64_t dup = 0, total = 0, one_copy = 0;
    std::vector<std::string> cmds;
    for (auto& [cmd, v] : by_cmd) {
      std::sort(v.begin(), v.end());
      size_t i = 0;
      while (i < v.size()) {
        size_t j = i + 1;
        while (j < v.size() && v[j].first * 100 <= v[i].first * 105) ++j;
        if (j - i >= 2) {
          DuplicateGroup grp;
          grp.gpu_index = gpu;
          grp.command = cmd;
          grp.vram_mb_smallest = v[i].first;
          grp.vram_mb_largest = v[j - 1].first;
          for (size_t k = i; k < j; ++k) {
            grp.pids.push_back(v[k].second);
            grp.vram_mb_total += v[k].first;
          }
          dup += static_cast<int64_t>(j - i - 1);
          total += grp.vram_mb_total;
          one_copy += grp.vram_mb_largest;
          if (cmds.empty() || cmds.back() != cmd) cmds.push_back(cmd);
          g.groups.push_back(std::move(grp));
        }
        i = j;
      }
    }
    auto& d = g.dedup_buffer_count;
    auto& c = g.compression_ratio;
    d.provenance = kDedupProvenance;
    c.provenance = kRatioProvenance;
    if (newest > 0 && newest_vram == 0) {
      d.rationale = "null: not measured: none of the " + processes(newest) +
                    " on this GPU in the newest sample reports its VRAM.";
      c.rationale =
          "null: not measured: dedup_buffer_count is not measured, so there is "
          "nothing to derive it from.";
    } else {
      const std::string unknown_vram = newest > newest_vram
                                           ? " " + processes(newest - newest_vram) +
                                                 " without a known VRAM could not be compared."
                                           : std::string();
      d.value = dup;
      d.confidence = mconf;
      if (dup == 0) {
        d.rationale =
            "0: derived from the VRAM measured in the newest sample: no two processes "
            "of the same command hold VRAM within 5% of each other." +
            unknown_vram;
        c.value = 1.0;
        c.confidence = mconf * 0.5;
        c.rationale =
            "1.0: derived, not measured: there is no group of near-equal processes "
            "that could share one copy.";
      } else {
        std::string names;
        for (const auto& cmd : cmds) names += (names.empty() ? "`" : ", `") + cmd + "`";
        d.rationale = std::to_string(dup) +
                      ": derived from the VRAM measured in the newest sample: extra processes "
                      "of " +
                      names +
                      " hold VRAM within 5% of the smallest of their group (taken as duplicate "
                      "buffers; their contents are not compared)." +
                      unknown_vram;
        c.value = round2(static_cast<double>(total) / static_cast<double>(one_copy));
        c.confidence = mconf * 0.5;
        c.rationale = ratio_text(*c.value) +
                      ": derived, not measured: inferred from the duplicate groups, which hold " +
                      mib(total) + " in all against " + mib(one_copy) +
                      " for one copy each (the largest member), if each group could share one "
                      "copy.";
      }
    }
    a.gpus.push_back(std::move(g));
    it = end;
  }
  return a;
}

GpuReclaim ReclaimAnalysis::for_gpu(int gpu_index) const {
  for (const auto& g : gpus)
    if (g.gpu_index == gpu_index) return g;
  if (ticks == 0) return unmeasured_gpu(gpu_index, kNoTelemetry);
  return unmeasured_gpu(gpu_index, "null: not measured: no process on this GPU was seen in the " +
                                       window_text(ticks, duration_s) + ".");
}

ReclaimAnalysis analyze_reclaim(const TelemetryWindow& w) {
  ReclaimTally t;
  std::vector<ReclaimRow> rows;
  for (const auto& tick : w.samples) {
    rows.clear();
    for (const auto& p : tick)
      rows.push_back({p.pid, p.gpu_index, p.vram_mb, p.utilization_pct, p.command, p.user});
    t.add_tick(rows);
  }
  return t.analyze(w.duration_s);
}

ReclaimAnalysis analyze_reclaim(const std::optional<TelemetryWindow>& w) {
  if (!w) return ReclaimAnalysis{};
  return analyze_reclaim(*w);
}

}  // namespace grey
