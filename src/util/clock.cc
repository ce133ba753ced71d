#include "util/clock.h"

#include <time.h>

#include <cstdio>
#include <ctime>

namespace grey {

namespace {

struct Parts {
  std::tm tm{};
  int ms = 0;
};

Parts split(WallTime t) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  long long secs = ms / 1000;
  int rem = static_cast<int>(ms % 1000);
  if (rem < 0) {  // before 1970: floor, not truncation
    rem += 1000;
    --secs;
  }
  Parts p;
  std::time_t tt = static_cast<std::time_t>(secs);
  gmtime_r(&tt, &p.tm);
  p.ms = rem;
  return p;
}

}  // namespace

std::string utc_text(WallTime t) {
  Parts p = split(t);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02dZ", p.tm.tm_year + 1900,
                p.tm.tm_mon + 1, p.tm.tm_mday, p.tm.tm_hour, p.tm.tm_min, p.tm.tm_sec);
  return buf;
}

std::string utc_text_ms(WallTime t) {
  Parts p = split(t);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", p.tm.tm_year + 1900,
                p.tm.tm_mon + 1, p.tm.tm_mday, p.tm.tm_hour, p.tm.tm_min, p.tm.tm_sec, p.ms);
  return buf;
}

std::string utc_text_compact(WallTime t) {
  Parts p = split(t);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d%02d%02dT%02d%02d%02dZ", p.tm.tm_year + 1900, p.tm.tm_mon + 1,
                p.tm.tm_mday, p.tm.tm_hour, p.tm.tm_min, p.tm.tm_sec);
  return buf;
}

std::chrono::steady_clock::time_point SystemTimeSource::steady_now() {
  return std::chrono::steady_clock::now();
}

WallTime SystemTimeSource::wall_now() {
  return std::chrono::system_clock::now();
}

double SystemTimeSource::cpu_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

}  // namespace grey
