// util/clock: the UTC text forms written into state files, logs and artifacts.
#include "util/clock.h"

#include <gtest/gtest.h>

namespace grey {
namespace {

using namespace std::chrono;

TEST(Clock, UtcTextForms) {
  // 2026-11-26T15:00:00.123Z
  WallTime t = WallTime(seconds(1795705200)) + milliseconds(123);
  EXPECT_EQ(utc_text(t), "2026-11-26T15:00:00Z");
  EXPECT_EQ(utc_text_ms(t), "2026-11-26T15:00:00.123Z");
  EXPECT_EQ(utc_text_compact(t), "20261126T150000Z");
  EXPECT_EQ(utc_text_ms(WallTime(milliseconds(5))), "1970-01-01T00:00:00.005Z");
  // Before the epoch the milliseconds are floored, never negative.
  EXPECT_EQ(utc_text_ms(WallTime(milliseconds(-1))), "1969-12-31T23:59:59.999Z");
}

TEST(Clock, NowIsWellFormed) {
  std::string s = utc_now_text_ms();
  ASSERT_EQ(s.size(), 24u) << s;
  EXPECT_EQ(s[10], 'T');
  EXPECT_EQ(s.back(), 'Z');
  EXPECT_EQ(utc_now_text().size(), 20u);
}

}  // namespace
}  // namespace grey
