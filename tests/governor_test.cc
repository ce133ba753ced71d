// The thermal governor (src/daemon/governor.h): transitions, hysteresis, the N-consecutive
// rule, the preemptive margin, power steps within the device's range, stale samples.
#include "daemon/governor.h"

#include <gtest/gtest.h>

namespace grey {
namespace {

using Kind = PowerAction::Kind;

// GPU 0 like the fake H100: limit 700 W, range 200..700, default 700.
GovernorInput h100(double temp, std::optional<double> limit = 700.0) {
  GovernorInput in;
  in.gpu = 0;
  in.temperature_c = temp;
  in.power_limit_w = limit;
  in.min_w = 200;
  in.max_w = 700;
  in.default_w = 700;
  return in;
}

Governor make(int cooldown = 80, int resume = 65, bool preemptive = false, int n = 3) {
  Governor g;
  GovernorConfig c;
  c.cooldown_c = cooldown;
  c.resume_c = resume;
  c.preemptive = preemptive;
  c.resume_samples = n;
  g.configure(0, c);
  return g;
}

TEST(Governor, StaysNormalBelowCooldown) {
  Governor g = make();
  for (double t : {40.0, 65.0, 79.0, 79.9}) EXPECT_TRUE(g.step({h100(t)}).empty()) << t;
  EXPECT_EQ(g.gpu(0)->state, GovState::kNormal);
  EXPECT_EQ(g.gpu(0)->last_temperature_c, 79.9);
}

TEST(Governor, EntersCoolingAtCooldownAndLowersOneStep) {
  Governor g = make();
  auto d = g.step({h100(80)});  // exactly the threshold counts
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].from, GovState::kNormal);
  EXPECT_EQ(d[0].to, GovState::kCooling);
  EXPECT_TRUE(d[0].transition());
  EXPECT_EQ(d[0].power.kind, Kind::kSet);
  EXPECT_DOUBLE_EQ(d[0].power.from_w, 700);
  EXPECT_DOUBLE_EQ(d[0].power.to_w, 630);  // 10% of the 700 W default
  EXPECT_NE(d[0].reason.find("80 °C >= cooldown threshold 80 °C"), std::string::npos)
      << d[0].reason;
  EXPECT_EQ(to_string(g.gpu(0)->state), "cooling");
}

TEST(Governor, EachHotTickLowersAnotherStepAndWarmTicksDoNot) {
  Governor g = make();
  g.step({h100(85)});
  auto d = g.step({h100(86, 630)});
  ASSERT_EQ(d.size(), 1u);
  EXPECT_FALSE(d[0].transition());
  EXPECT_EQ(d[0].power.kind, Kind::kSet);
  EXPECT_DOUBLE_EQ(d[0].power.from_w, 630);
  EXPECT_DOUBLE_EQ(d[0].power.to_w, 560);
  // Between resume and cooldown: still cooling, no step, no decision.
  EXPECT_TRUE(g.step({h100(75, 560)}).empty());
  EXPECT_EQ(g.gpu(0)->state, GovState::kCooling);
  d = g.step({h100(81, 560)});
  ASSERT_EQ(d.size(), 1u);
  EXPECT_DOUBLE_EQ(d[0].power.to_w, 490);
  EXPECT_EQ(g.gpu(0)->steps, 3);
  EXPECT_EQ(g.gpu(0)->original_w, 700);
}

TEST(Governor, LeavesOnlyAfterNConsecutiveSamplesAtOrBelowResume) {
  Governor g = make(80, 65, false, 3);
  g.step({h100(90)});
  g.step({h100(90, 630)});
  EXPECT_TRUE(g.step({h100(65, 560)}).empty());  // 1 (at resume counts)
  EXPECT_TRUE(g.step({h100(60, 560)}).empty());  // 2
  EXPECT_TRUE(g.step({h100(66, 560)}).empty());  // above resume: the count starts again
  EXPECT_EQ(g.gpu(0)->below_resume_count, 0);
  EXPECT_TRUE(g.step({h100(60, 560)}).empty());  // 1
  EXPECT_TRUE(g.step({h100(60, 560)}).empty());  // 2
  auto d = g.step({h100(60, 560)});              // 3
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].from, GovState::kCooling);
  EXPECT_EQ(d[0].to, GovState::kNormal);
  EXPECT_EQ(d[0].power.kind, Kind::kRestore);
  EXPECT_DOUBLE_EQ(d[0].power.from_w, 560);
  EXPECT_DOUBLE_EQ(d[0].power.to_w, 700);
  EXPECT_NE(d[0].reason.find("3 consecutive samples"), std::string::npos) << d[0].reason;
  EXPECT_FALSE(g.gpu(0)->target_w);
  EXPECT_FALSE(g.gpu(0)->original_w);
  // A new episode starts from the device's limit again.
  d = g.step({h100(95, 700)});
  ASSERT_EQ(d.size(), 1u);
  EXPECT_DOUBLE_EQ(d[0].power.from_w, 700);
  EXPECT_DOUBLE_EQ(d[0].power.to_w, 630);
}

TEST(Governor, ResumeSamplesIsConfigurable) {
  Governor one = make(80, 65, false, 1);
  one.step({h100(90)});
  EXPECT_EQ(one.step({h100(60, 630)}).size(), 1u);
  EXPECT_EQ(one.gpu(0)->state, GovState::kNormal);

  Governor five = make(80, 65, false, 5);
  five.step({h100(90)});
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(five.step({h100(60, 630)}).empty()) << i;
  EXPECT_EQ(five.step({h100(60, 630)}).size(), 1u);

  Governor zero = make(80, 65, false, 0);  // clamped to 1
  EXPECT_EQ(zero.gpu(0)->config.resume_samples, 1);
}

TEST(Governor, PreemptiveThrottleStartsThreeDegreesEarlier) {
  EXPECT_EQ(kPreemptiveMarginC, 3);
  Governor g = make(80, 65, true);
  EXPECT_EQ(g.gpu(0)->config.trigger_c(), 77);
  EXPECT_TRUE(g.step({h100(76.9)}).empty());
  auto d = g.step({h100(77)});
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].to, GovState::kCooling);
  EXPECT_EQ(d[0].power.kind, Kind::kSet);
  EXPECT_NE(d[0].reason.find("preemptive"), std::string::npos) << d[0].reason;
  EXPECT_NE(d[0].reason.find("3 °C"), std::string::npos) << d[0].reason;
  // Without the preemptive flag the same temperature does nothing.
  Governor plain = make(80, 65, false);
  EXPECT_TRUE(plain.step({h100(77)}).empty());
}

TEST(Governor, StepsNeverGoBelowTheDeviceMinimum) {
  Governor g = make();
  GovernorInput in = h100(95);
  in.min_w = 600;
  auto d = g.step({in});
  ASSERT_EQ(d.size(), 1u);
  EXPECT_DOUBLE_EQ(d[0].power.to_w, 630);
  in.power_limit_w = 630;
  d = g.step({in});
  ASSERT_EQ(d.size(), 1u);
  EXPECT_DOUBLE_EQ(d[0].power.to_w, 600);  // clamped, not 560
  in.power_limit_w = 600;
  EXPECT_TRUE(g.step({in}).empty());  // at the minimum: nothing more to do
  EXPECT_DOUBLE_EQ(*g.gpu(0)->target_w, 600);
}

TEST(Governor, StepBaseFallsBackToMaximumThenOriginal) {
  Governor g = make();
  GovernorInput in = h100(95, 300);
  in.default_w.reset();
  in.max_w = 400;
  auto d = g.step({in});
  ASSERT_EQ(d.size(), 1u);
  EXPECT_DOUBLE_EQ(d[0].power.to_w, 260);  // 10% of the 400 W maximum

  Governor h = make();
  GovernorInput in2 = h100(95, 250);
  in2.default_w.reset();
  in2.max_w.reset();
  d = h.step({in2});
  ASSERT_EQ(d.size(), 1u);
  EXPECT_DOUBLE_EQ(d[0].power.to_w, 225);  // 10% of the limit it found
}

// A Radeon's power1_cap_min of 0 (or no minimum at all, as on Intel) is "no lower bound given":
// the governor steps toward half of the default limit and never below it.
TEST(Governor, AMinimumOfZeroStepsDownToHalfTheDefaultLimit) {
  for (std::optional<double> min : {std::optional<double>(0.0), std::optional<double>()}) {
    Governor g = make();
    GovernorInput in = h100(95, 260);
    in.min_w = min;
    in.default_w = 260;
    in.max_w = 390;
    std::vector<double> got;
    for (int i = 0; i < 10; ++i) {
      auto d = g.step({in});
      if (d.empty() || d[0].power.kind != Kind::kSet) break;
      got.push_back(d[0].power.to_w);
      in.power_limit_w = d[0].power.to_w;
    }
    EXPECT_EQ(got, (std::vector<double>{234, 208, 182, 156, 130})) << "min " << min.value_or(-1);
    EXPECT_DOUBLE_EQ(*g.gpu(0)->target_w, 130);
    // Cooling down restores the limit read before the first step.
    for (int i = 0; i < 2; ++i) EXPECT_TRUE(g.step({h100(50, 130)}).empty());
    auto d = g.step({h100(50, 130)});
    ASSERT_EQ(d.size(), 1u);
    EXPECT_EQ(d[0].power.kind, Kind::kRestore);
    EXPECT_DOUBLE_EQ(d[0].power.to_w, 260);
  }
}

TEST(Governor, WithoutMinimumOrDefaultTheFloorIsHalfTheLimitFoundAndTheReasonSaysSo) {
  Governor g = make();
  GovernorInput in = h100(95, 55);  // Intel Arc A380: power1_max 55 W, power1_rated_max 0
  in.min_w.reset();
  in.default_w.reset();
  in.max_w.reset();
  std::vector<double> got;
  std::string last_reason;
  for (int i = 0; i < 10; ++i) {
    auto d = g.step({in});
    if (d.empty() || d[0].power.kind != Kind::kSet) break;
    got.push_back(d[0].power.to_w);
    in.power_limit_w = d[0].power.to_w;
  }
  EXPECT_EQ(got, (std::vector<double>{49.5, 44, 38.5, 33, 27.5}));
}

TEST(Governor, UnknownLimitChangesStateButNotPower) {
  Governor g0 = make();
  GovernorInput in = h100(95, 100);
  in.min_w.reset();
  in.default_w = 200;  // already below half the default: nothing to lower, and it says why
  auto d = g0.step({in});
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].to, GovState::kCooling);
  EXPECT_EQ(d[0].power.kind, Kind::kNone);
  EXPECT_NE(d[0].reason.find("already at the floor 100 W (50% of the default limit 200 W"),
            std::string::npos)
      << d[0].reason;
  EXPECT_TRUE(g0.step({in}).empty());  // still hot, still nothing to lower: no spam

  Governor h = make();
  d = h.step({h100(95, std::nullopt)});
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].power.kind, Kind::kNone);
  EXPECT_NE(d[0].reason.find("current power limit is unknown"), std::string::npos);
  // Leaving cooling without having lowered anything restores nothing.
  for (int i = 0; i < 2; ++i) EXPECT_TRUE(h.step({h100(50, std::nullopt)}).empty());
  d = h.step({h100(50, std::nullopt)});
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].power.kind, Kind::kNone);
}

TEST(Governor, StaleSamplesChangeNothing) {
  Governor g = make();
  GovernorInput hot = h100(99);
  hot.stale = true;
  EXPECT_TRUE(g.step({hot}).empty());
  EXPECT_EQ(g.gpu(0)->state, GovState::kNormal);
  EXPECT_FALSE(g.gpu(0)->last_temperature_c);

  g.step({h100(90)});
  g.step({h100(60, 630)});
  g.step({h100(60, 630)});
  EXPECT_EQ(g.gpu(0)->below_resume_count, 2);
  GovernorInput stale_hot = h100(99, 630);
  stale_hot.stale = true;
  EXPECT_TRUE(g.step({stale_hot}).empty());  // neither a step nor a reset of the count
  EXPECT_EQ(g.gpu(0)->below_resume_count, 2);
  EXPECT_EQ(g.gpu(0)->steps, 1);
  GovernorInput no_temp = h100(0, 630);
  no_temp.temperature_c.reset();
  EXPECT_TRUE(g.step({no_temp}).empty());
  EXPECT_EQ(g.step({h100(60, 630)}).size(), 1u);  // the third fresh sample
}

TEST(Governor, GpusAreIndependent) {
  Governor g;
  GovernorConfig a, b;
  a.cooldown_c = 80;
  a.resume_c = 65;
  b.cooldown_c = 90;
  b.resume_c = 70;
  g.configure(0, a);
  g.configure(1, b);
  GovernorInput g1 = h100(85);
  g1.gpu = 1;
  auto d = g.step({h100(85), g1});
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].gpu, 0);
  EXPECT_EQ(g.gpu(1)->state, GovState::kNormal);
  // A GPU never configured gets the defaults (80/65).
  GovernorInput g7 = h100(81);
  g7.gpu = 7;
  d = g.step({g7});
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].gpu, 7);
}

TEST(Governor, ReleaseAllRestoresWhatItLowered) {
  Governor g;
  GovernorConfig c;
  g.configure(0, c);
  g.configure(1, c);
  g.configure(2, c);
  GovernorInput g1 = h100(85, std::nullopt);
  g1.gpu = 1;  // cooling but nothing lowered (its limit is unknown)
  g.step({h100(85), g1});
  g.step({h100(85, 630)});
  auto d = g.release_all("stopping");
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].gpu, 0);
  EXPECT_EQ(d[0].power.kind, Kind::kRestore);
  EXPECT_DOUBLE_EQ(d[0].power.from_w, 560);
  EXPECT_DOUBLE_EQ(d[0].power.to_w, 700);
  EXPECT_EQ(d[1].gpu, 1);
  EXPECT_EQ(d[1].power.kind, Kind::kNone);
  EXPECT_EQ(g.gpu(0)->state, GovState::kNormal);
  EXPECT_TRUE(g.release_all("again").empty());
}

TEST(Governor, UndoStepForgetsAFailedWrite) {
  Governor g = make();
  g.step({h100(90)});   // 700 -> 630
  g.undo_step(0, 700);  // the device refused it
  EXPECT_FALSE(g.gpu(0)->target_w);
  EXPECT_FALSE(g.gpu(0)->original_w);
  auto d = g.step({h100(90, 700)});
  ASSERT_EQ(d.size(), 1u);
  EXPECT_DOUBLE_EQ(d[0].power.from_w, 700);
  EXPECT_DOUBLE_EQ(d[0].power.to_w, 630);
  g.step({h100(90, 630)});  // 630 -> 560
  g.undo_step(0, 630);
  EXPECT_DOUBLE_EQ(*g.gpu(0)->target_w, 630);
  EXPECT_DOUBLE_EQ(*g.gpu(0)->original_w, 700);
}

TEST(Governor, ReconfigureKeepsState) {
  Governor g = make(80, 65);
  g.step({h100(85)});
  GovernorConfig c;
  c.cooldown_c = 90;
  c.resume_c = 75;
  g.configure(0, c);
  EXPECT_EQ(g.gpu(0)->state, GovState::kCooling);
  EXPECT_TRUE(g.step({h100(85, 630)}).empty());  // below the new cooldown: no step
  for (int i = 0; i < 2; ++i) g.step({h100(74, 630)});
  EXPECT_EQ(g.step({h100(74, 630)}).size(), 1u);  // the new resume threshold applies
}

}  // namespace
}  // namespace grey
