#include "daemon/window.h"

#include <algorithm>
#include <charconv>

namespace grey {

namespace {

// The cells below print exactly what `std::ostream << value` printed in the renderer this
// replaces: integers in decimal, doubles as "%.6g" (the stream default).
void put_int(std::string& out, int64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

void put_double(std::string& out, double v) {
  char buf[40];
  auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general, 6);
  out.append(buf, r.ptr);
}

template <typename T>
void put_opt_int(std::string& out, const std::optional<T>& v) {
  if (v) put_int(out, static_cast<int64_t>(*v));
}

void put_opt_double(std::string& out, const std::optional<double>& v) {
  if (v) put_double(out, *v);
}

// A CSV cell: as is unless it holds a comma, quote or newline; then quoted, quotes doubled,
// newlines as spaces.
void put_csv_text(std::string& out, const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) {
    out += s;
    return;
  }
  out += '"';
  for (char c : s) {
    if (c == '"')
      out += "\"\"";
    else
      out += c == '\n' ? ' ' : c;
  }
  out += '"';
}

}  // namespace

SampleWindow::SampleWindow(size_t capacity) : capacity_(capacity) {}

void SampleWindow::clear() {
  slots_.clear();
  head_ = 0;
  size_ = 0;
  strings_.clear();
  free_.clear();
  ids_.clear();
  prune_at_ = kPruneMin;
}

int64_t SampleWindow::find_string(const std::string& text) const {
  auto it = ids_.find(text);
  return it == ids_.end() ? -1 : static_cast<int64_t>(it->second);
}

uint32_t SampleWindow::intern(const std::string& text, uint64_t seq) {
  auto it = ids_.find(text);
  if (it != ids_.end()) {
    strings_[it->second].last_seq = seq;
    return it->second;
  }
  uint32_t id;
  if (!free_.empty()) {
    id = free_.back();
    free_.pop_back();
  } else {
    id = static_cast<uint32_t>(strings_.size());
    strings_.emplace_back();
  }
  auto ins = ids_.emplace(text, id).first;
  strings_[id].text = &ins->first;
  strings_[id].last_seq = seq;
  return id;
}

// Drops the strings no tick in the window uses (their newest use is older than the oldest
// tick); their ids go to the free list.
void SampleWindow::prune() {
  const uint64_t oldest = size_ ? slot(0).seq : next_seq_;
  for (uint32_t id = 0; id < strings_.size(); ++id) {
    Entry& e = strings_[id];
    if (!e.text || e.last_seq >= oldest) continue;
    ids_.erase(*e.text);
    e.text = nullptr;
    free_.push_back(id);
  }
  prune_at_ = std::max(kPruneMin, 2 * string_count());
}

void SampleWindow::push(const TelemetrySnapshot& snap) {
  if (capacity_ == 0) return;
  size_t at;
  if (size_ < capacity_ && slots_.size() < capacity_) {
    slots_.emplace_back();
    at = slots_.size() - 1;
    ++size_;
  } else if (size_ < capacity_) {
    at = (head_ + size_) % capacity_;
    ++size_;
  } else {
    at = head_;
    head_ = (head_ + 1) % capacity_;
  }
  Slot& s = slots_[at];
  const uint64_t seq = next_seq_++;
  s.seq = seq;
  s.timestamp = snap.timestamp;

  // Processes, and their fairness_heatmap.csv rows:
  // timestamp,gpu_index,pid,command,user,utilization_pct,vram_mb
  // (Rendered into scratch_ first and then copied: a slot's string is then allocated at its
  // size, not at the doubling steps of growing it row by row.)
  s.procs.clear();
  s.procs.reserve(snap.processes.size());
  std::string& heat = scratch_;
  heat.clear();
  for (const auto& p : snap.processes) {
    Process r;
    r.pid = p.pid;
    if (p.gpu_index) {
      r.has |= Process::kGpu;
      r.gpu_index = *p.gpu_index;
    }
    if (p.vram_mb) {
      r.has |= Process::kVram;
      r.vram_mb = *p.vram_mb;
    }
    if (p.utilization_pct) {
      r.has |= Process::kUtil;
      r.utilization_pct = *p.utilization_pct;
    }
    r.command = intern(p.command, seq);
    r.user = intern(p.user, seq);
    s.procs.push_back(r);

    heat += s.timestamp;
    heat += ',';
    put_opt_int(heat, p.gpu_index);
    heat += ',';
    put_int(heat, p.pid);
    heat += ',';
    put_csv_text(heat, p.command);
    heat += ',';
    put_csv_text(heat, p.user);
    heat += ',';
    put_opt_double(heat, p.utilization_pct);
    heat += ',';
    put_opt_int(heat, p.vram_mb);
    heat += '\n';
  }

  s.heat.assign(heat);

  // thermal_signature.csv rows, real readings only: timestamp,gpu_index,bus_id,temperature_c,
  // [cooldown_threshold_c,resume_threshold_c],power_w,power_limit_w,utilization_pct,
  // vram_used_mb,backend
  s.gpus.clear();
  s.gpus.reserve(snap.gpus.size());
  std::string& thermal = scratch_;
  thermal.clear();
  for (const auto& g : snap.gpus) {
    if (g.stale || !g.temperature_c) continue;
    Gpu r;
    r.index = g.index;
    thermal += s.timestamp;
    thermal += ',';
    put_int(thermal, g.index);
    thermal += ',';
    if (g.bus_id) thermal += *g.bus_id;
    thermal += ',';
    put_double(thermal, *g.temperature_c);
    thermal += ',';
    r.head_end = static_cast<uint32_t>(thermal.size());
    thermal += ',';
    put_opt_double(thermal, g.power_w);
    thermal += ',';
    put_opt_double(thermal, g.power_limit_w);
    thermal += ',';
    put_opt_double(thermal, g.utilization_pct);
    thermal += ',';
    put_opt_int(thermal, g.vram_used_mb);
    thermal += ',';
    thermal += g.backend;
    thermal += '\n';
    r.row_end = static_cast<uint32_t>(thermal.size());
    s.gpus.push_back(r);
  }
  s.thermal.assign(thermal);

  if (string_count() > prune_at_) prune();
}

TelemetryWindow SampleWindow::plan_window(double interval_s) const {
  TelemetryWindow w;
  w.duration_s = interval_s * static_cast<double>(size_);
  w.samples.reserve(size_);
  for (size_t i = 0; i < size_; ++i) {
    std::vector<PlanProcessSample> v;
    for (const auto& p : slot(i).procs) {
      if (!(p.has & Process::kGpu)) continue;
      PlanProcessSample ps;
      ps.pid = p.pid;
      ps.command = str(p.command);
      ps.user = str(p.user);
      ps.gpu_index = p.gpu_index;
      if (p.has & Process::kVram) ps.vram_mb = p.vram_mb;
      if (p.has & Process::kUtil) ps.utilization_pct = p.utilization_pct;
      v.push_back(std::move(ps));
    }
    w.samples.push_back(std::move(v));
  }
  return w;
}

}  // namespace grey

namespace grey {

ReclaimAnalysis SampleWindow::reclaim(double interval_s) const {
  ReclaimTally t;
  std::vector<ReclaimRow> rows;
  for (size_t i = 0; i < size_; ++i) {
    rows.clear();
    for (const auto& p : slot(i).procs) {
      ReclaimRow r;
      r.pid = p.pid;
      if (p.has & Process::kGpu) r.gpu_index = p.gpu_index;
      if (p.has & Process::kVram) r.vram_mb = p.vram_mb;
      if (p.has & Process::kUtil) r.utilization_pct = p.utilization_pct;
      r.command = str(p.command);
      r.user = str(p.user);
      rows.push_back(r);
    }
    t.add_tick(rows);
  }
  return t.analyze(interval_s * static_cast<double>(size_));
}

}  // namespace grey
