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

inline std::string utc_now_text() {
  return utc_text(std::chrono::system_clock::now());
}
inline std::string utc_now_text_ms() {
  return utc_text_ms(std::chrono::system_clock::now());
}

}  // namespace grey
