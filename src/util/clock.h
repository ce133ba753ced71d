// Wall-clock text in UTC, in the forms the state files, logs and artifacts use. One place for
// the formats (they appear in files that other tools read back).
#pragma once

#include <chrono>
#include <string>

namespace grey {

using WallTime = std::chrono::system_clock::time_point;

// "2026-11-26T15:00:00Z"
std::string utc_text(WallTime t);
// "2026-11-26T15:00:00.123Z"
std::string utc_text_ms(WallTime t);
// "20261126T150000Z" (file names, journal ids)
std::string utc_text_compact(WallTime t);

// The time a component reads, given to it by its caller (the daemon's ticks, durations and
// timestamps): SystemTimeSource in the program, ManualTimeSource in tests, which moves only when
// told, so that a test never waits on or bounds the wall clock.
class TimeSource {
 public:
  virtual ~TimeSource() = default;
  virtual std::chrono::steady_clock::time_point steady_now() = 0;
  virtual WallTime wall_now() = 0;
  // CPU seconds this process has used.
  virtual double cpu_seconds() = 0;
};

class SystemTimeSource : public TimeSource {
 public:
  std::chrono::steady_clock::time_point steady_now() override;
  WallTime wall_now() override;
  double cpu_seconds() override;
};

// Starts at `wall` (steady time at its epoch, no CPU used); advance() moves both clocks.
class ManualTimeSource : public TimeSource {
 public:
  explicit ManualTimeSource(WallTime wall) : wall_(wall) {}
  std::chrono::steady_clock::time_point steady_now() override { return steady_; }
  WallTime wall_now() override { return wall_; }
  double cpu_seconds() override { return cpu_s_; }
  void advance(std::chrono::nanoseconds d) {
    steady_ += d;
    wall_ += std::chrono::duration_cast<WallTime::duration>(d);
  }
  void add_cpu_seconds(double s) { cpu_s_ += s; }

 private:
  std::chrono::steady_clock::time_point steady_{};
  WallTime wall_;
  double cpu_s_ = 0;
};

inline std::string utc_now_text() {
  return utc_text(std::chrono::system_clock::now());
}
inline std::string utc_now_text_ms() {
  return utc_text_ms(std::chrono::system_clock::now());
}

}  // namespace grey
