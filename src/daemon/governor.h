// The daemon's thermal governor: one small state machine per GPU, with hysteresis. Pure: no
// I/O, no clock. The daemon feeds it one sample per GPU per tick and carries out (or, in a dry
// run, describes) the power actions it decides.
//
//   normal  -> cooling  when the temperature is >= the trigger: the plan's cooldown threshold,
//                       or cooldown - kPreemptiveMarginC when the plan asks for a preemptive
//                       throttle (aggressive mode).
//   cooling -> normal   only after the temperature stayed <= the resume threshold for
//                       `resume_samples` consecutive fresh samples (3 by default); any sample
//                       above resume starts the count again.
//   In cooling, every sample still >= the trigger (the entering one included) lowers the power
//   limit one step: step_fraction (10%) of the device's default limit (else its maximum, else
//   the limit read before the first step), never below the device's minimum. Without a known
//   minimum or a known current limit nothing is lowered (the state machine still runs).
//   Leaving cooling restores the limit read before the first step (only when it lowered it).
//   A stale sample, or one without a temperature, changes nothing (not even the count).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace grey {

// How much earlier a preemptive throttle starts cooling (degrees C below cooldown).
inline constexpr int kPreemptiveMarginC = 3;

enum class GovState { kNormal, kCooling };
std::string to_string(GovState s);  // "normal" | "cooling"

struct GovernorConfig {
  int cooldown_c = 80;
  int resume_c = 65;
  bool preemptive = false;
  int resume_samples = 3;      // consecutive samples <= resume needed to leave cooling (>= 1)
  double step_fraction = 0.1;  // of the default limit, per step
  // The temperature that enters cooling (and keeps stepping the limit down).
  int trigger_c() const { return preemptive ? cooldown_c - kPreemptiveMarginC : cooldown_c; }
};

// One fresh (or stale) reading of one GPU.
struct GovernorInput {
  int gpu = 0;
  bool stale = false;
  std::optional<double> temperature_c;
  std::optional<double> power_limit_w;  // as read now
  std::optional<double> min_w, max_w, default_w;
};

struct PowerAction {
  enum class Kind { kNone, kSet, kRestore };
  Kind kind = Kind::kNone;
  double from_w = 0;  // the limit before (the governor's own view: what it last set)
  double to_w = 0;
};

struct GovernorDecision {
  int gpu = 0;
  GovState from = GovState::kNormal, to = GovState::kNormal;
  std::string reason;  // one sentence with the temperature and the threshold
  PowerAction power;
  bool transition() const { return from != to; }
};

// What the governor knows about one GPU (for daemon_status.json and metrics).
struct GovernorGpuState {
  GovState state = GovState::kNormal;
  int below_resume_count = 0;
  std::optional<double> last_temperature_c;
  std::optional<double> original_w;  // the limit before the first step of this episode
  std::optional<double> target_w;    // what it last set (or would have set, in a dry run)
  int steps = 0;                     // steps taken in this episode
  GovernorConfig config;
};

class Governor {
 public:
  // Sets (or replaces, e.g. after a reload) one GPU's thresholds; its state is kept.
  void configure(int gpu, const GovernorConfig& c);
  // One decision per GPU whose state changed or that has a power action; nothing for GPUs
  // that stayed where they were. GPUs never configured get a default GovernorConfig.
  std::vector<GovernorDecision> step(const std::vector<GovernorInput>& inputs);
  // Shutting down: a restore for every GPU whose limit the governor lowered (each GPU goes
  // back to normal).
  std::vector<GovernorDecision> release_all(const std::string& why);
  // The daemon could not carry out a set (the device refused it): forget that step, so the
  // governor's view stays what the device holds.
  void undo_step(int gpu, double previous_w);

  const std::map<int, GovernorGpuState>& gpus() const { return gpus_; }
  const GovernorGpuState* gpu(int index) const;

 private:
  std::map<int, GovernorGpuState> gpus_;
};

}  // namespace grey
