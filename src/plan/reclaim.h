// The one dedup / reclaim / compression analysis (SPEC §2, issue 10): the plan
// (estimated_reclaimed_mb, dedup_buffer_count, compression_ratio), the daemon's re-planning and
// artifacts/vram_reclamation.json all call analyze_reclaim() on the same window of process
// samples, so they give the same numbers. Pure: no I/O, no clock.
//
// The rules, per GPU (processes without a GPU index are left out and only counted):
//  - A process is a (pid, GPU) pair. Several rows of one pair in one tick are one sample: idle
//    only if every row is idle, without a utilization sample if any row has none, VRAM from
//    the last row that knows it.
//  - estimated_reclaimed_mb: the VRAM (newest known value) of processes seen in every tick of
//    the window with a utilization sample of 0% (or less) in every tick. A process with no
//    utilization sample in some tick is unknown, never idle: it is not counted, and the
//    rationale says how many there were. null ("not measured") when the window is empty, when
//    no process of this GPU was seen, or when no process's idleness could be decided (every
//    one that was never seen busy lacks a sample somewhere).
//  - dedup_buffer_count: among the processes in the newest tick with a known VRAM > 0 and a
//    command, per command, sorted by VRAM: a group starts at the smallest remaining process
//    and takes every following one whose VRAM is at most 5% above that smallest one (integer
//    test: vram * 100 <= smallest * 105). A group of k processes counts k - 1 duplicate
//    buffers. So 100, 104 and 108 MiB give the group {100, 104} and 108 alone: 1. null when
//    no process of this GPU was seen, or none in the newest tick knows its VRAM.
//    Provenance "derived": the VRAM is measured, the duplication is inferred from it.
//  - compression_ratio: the groups' total VRAM over one copy each (the largest member of each
//    group), rounded to 0.01; 1.0 when there is no group; null when dedup_buffer_count is.
//    Provenance "derived": inferred from the groups, assuming each shared one copy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace grey {

// ---- Telemetry (measured data for the dedup/reclaim fields) ----
// The planner's own minimal view of a process sample, so it stays independent of the
// telemetry backends: a caller holding telemetry/telemetry.h's ProcessSample converts it
// (gpu_index unknown -> skip the sample).
struct PlanProcessSample {
  int64_t pid = 0;
  std::string command;
  std::string user;
  int gpu_index = 0;                      // GpuSpec::index
  std::optional<int64_t> vram_mb;         // unknown when the tool could not tell
  std::optional<double> utilization_pct;  // unknown when the tool gave no sample
};

struct TelemetryWindow {
  double duration_s = 0;
  std::vector<std::vector<PlanProcessSample>> samples;  // one vector per tick, oldest first
};

// The provenance words the analysis uses.
inline constexpr const char* kReclaimProvenance = "measured";  // estimated_reclaimed_mb
inline constexpr const char* kDedupProvenance = "derived";     // dedup_buffer_count
inline constexpr const char* kRatioProvenance = "derived";     // compression_ratio

// One value of the analysis: the value (nullopt: not measured), its provenance, confidence and
// one-line rationale (starting with the value, or "null: not measured: ...").
template <typename T>
struct ReclaimFigure {
  std::optional<T> value;
  std::string provenance;
  double confidence = 0;
  std::string rationale;
  bool operator==(const ReclaimFigure&) const = default;
};

struct IdleProcess {
  int64_t pid = 0;
  int gpu_index = 0;
  std::string command, user;
  int64_t vram_mb = 0;
};

struct DuplicateGroup {
  int gpu_index = 0;
  std::string command;
  std::vector<int64_t> pids;  // by VRAM, then pid
  int64_t vram_mb_smallest = 0, vram_mb_largest = 0, vram_mb_total = 0;
};

struct GpuReclaim {
  int gpu_index = 0;
  ReclaimFigure<int64_t> estimated_reclaimed_mb;
  ReclaimFigure<int64_t> dedup_buffer_count;
  ReclaimFigure<double> compression_ratio;
  std::vector<IdleProcess> idle;
  std::vector<DuplicateGroup> groups;
  size_t processes = 0;       // (pid, GPU) pairs seen in the window
  size_t no_utilization = 0;  // of those, never busy but without a sample in some tick
  std::vector<int64_t> no_utilization_pids;
};

struct ReclaimAnalysis {
  size_t ticks = 0;
  double duration_s = 0;
  std::vector<GpuReclaim> gpus;       // GPUs with process data, ascending index
  size_t unattributed_processes = 0;  // pids seen without a GPU index (left out)
  // The figures for one GPU; a GPU with no process data gets the "not measured" ones.
  GpuReclaim for_gpu(int gpu_index) const;
};

// One process row as the analysis needs it (gpu_index nullopt: unknown).
struct ReclaimRow {
  int64_t pid = 0;
  std::optional<int> gpu_index;
  std::optional<int64_t> vram_mb;
  std::optional<double> utilization_pct;
  std::string_view command, user;
};

// Accumulates a window tick by tick, oldest first, then analyzes it.
class ReclaimTally {
 public:
  // One tick's rows (any order; duplicates of a (pid, GPU) pair are merged as above).
  void add_tick(const std::vector<ReclaimRow>& rows);
  ReclaimAnalysis analyze(double duration_s) const;

 private:
  struct Proc {
    std::string command, user;
    size_t samples = 0, idle = 0, busy = 0, no_util = 0;
    std::optional<int64_t> vram_mb;
    size_t last_tick = 0;
  };
  size_t ticks_ = 0;
  std::map<std::pair<int, int64_t>, Proc> procs_;  // (gpu, pid)
  std::set<int64_t> unattributed_;                 // pids seen without a GPU index
};

ReclaimAnalysis analyze_reclaim(const TelemetryWindow& w);
ReclaimAnalysis analyze_reclaim(const std::optional<TelemetryWindow>& w);

}  // namespace grey
