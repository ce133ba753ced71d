// The daemon's window of recent telemetry samples, kept in a compact form (issue 5: the
// daemon's RSS and tick CPU). A ring of at most `capacity` ticks; per tick:
//   - the timestamp;
//   - per process: pid, GPU index, VRAM, utilization (plain values with "known" bits) and the
//     command and user as ids into one interned string table;
//   - the rows that tick contributes to fairness_heatmap.csv and thermal_signature.csv,
//     rendered once when the tick enters the window (a thermal row is kept as the text before
//     and after its two threshold cells, which come from the plan at the time of writing);
//   - nothing else: a GPU reading that thermal_signature.csv leaves out (stale, or no
//     temperature) is not kept.
// vram_reclamation.json comes from plan/reclaim.h's analysis of the window's ticks
// (the analysis the planner runs), so the plan and the artifact agree.
//
// The string table holds each command and user once; a string that no tick in the window
// uses any more is dropped when the table has grown to twice the size it had after the last
// pruning (and at least kPruneMin entries), and its id is reused.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "plan/plan.h"
#include "telemetry/telemetry.h"

namespace grey {

class SampleWindow {
 public:
  static constexpr size_t kPruneMin = 256;

  struct Process {
    enum : uint8_t { kGpu = 1, kVram = 2, kUtil = 4 };
    int pid = 0;
    int gpu_index = 0;               // valid when has & kGpu
    int64_t vram_mb = 0;             // valid when has & kVram
    double utilization_pct = 0;      // valid when has & kUtil
    uint32_t command = 0, user = 0;  // string ids (see str())
    uint8_t has = 0;
  };

  explicit SampleWindow(size_t capacity);

  // Adds one tick; the oldest one leaves first when the window is full. Capacity 0 keeps
  // nothing.
  void push(const TelemetrySnapshot& s);
  void clear();

  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }
  bool empty() const { return size_ == 0; }

  // Tick i, 0 = the oldest.
  const std::string& timestamp(size_t i) const { return slot(i).timestamp; }
  const std::vector<Process>& processes(size_t i) const { return slot(i).procs; }
  // That tick's fairness_heatmap.csv rows (no header).
  const std::string& heatmap_rows(size_t i) const { return slot(i).heat; }
  // Appends that tick's thermal_signature.csv rows (no header), with each GPU's threshold
  // cells from `thresholds(gpu_index)` ("83,70", or "," without a plan for that GPU).
  template <typename F>
  void append_thermal_rows(size_t i, std::string& out, F&& thresholds) const {
    const Slot& s = slot(i);
    size_t at = 0;
    for (const auto& g : s.gpus) {
      out.append(s.thermal, at, g.head_end - at);
      out += thresholds(g.index);
      out.append(s.thermal, g.head_end, g.row_end - g.head_end);
      at = g.row_end;
    }
  }
  size_t thermal_row_count(size_t i) const { return slot(i).gpus.size(); }
  size_t thermal_rows_bytes(size_t i) const { return slot(i).thermal.size(); }

  // The interned text of an id.
  const std::string& str(uint32_t id) const { return *strings_[id].text; }
  // Strings in the table now (live ones and any not yet pruned).
  size_t string_count() const { return strings_.size() - free_.size(); }
  // Interned id of a text, or -1 when the table does not hold it.
  int64_t find_string(const std::string& text) const;

  // The planner's view of the window (processes with a GPU index; unknown VRAM and
  // utilization stay unknown).
  TelemetryWindow plan_window(double interval_s) const;
  // plan/reclaim.h's analysis of the window (what build_plan computes from plan_window(),
  // without copying the strings); interval_s 0: the window's duration is not stated.
  ReclaimAnalysis reclaim(double interval_s) const;

 private:
  struct Gpu {
    int index = 0;
    uint32_t head_end = 0, row_end = 0;  // offsets into Slot::thermal
  };
  struct Slot {
    uint64_t seq = 0;
    std::string timestamp;
    std::vector<Process> procs;
    std::vector<Gpu> gpus;
    std::string heat, thermal;
  };
  struct Entry {
    const std::string* text = nullptr;  // the key in ids_ (nullptr: a free id)
    uint64_t last_seq = 0;              // the newest tick that uses it
  };

  const Slot& slot(size_t i) const { return slots_[(head_ + i) % capacity_]; }
  uint32_t intern(const std::string& text, uint64_t seq);
  void prune();

  size_t capacity_;
  std::vector<Slot> slots_;  // grows to capacity_, then reused in place
  size_t head_ = 0;          // the oldest tick
  size_t size_ = 0;
  uint64_t next_seq_ = 1;

  std::vector<Entry> strings_;
  std::vector<uint32_t> free_;
  std::unordered_map<std::string, uint32_t> ids_;  // node-based: Entry::text stays valid
  size_t prune_at_ = kPruneMin;

  std::string scratch_;  // rows being rendered
};

}  // namespace grey
