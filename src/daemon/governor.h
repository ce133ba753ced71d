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
//   the limit read before the first step), never below the device's minimum. A minimum that is
//   unknown or reported as 0 ("no lower bound given": most consumer Radeons, Intel) means the
//   floor is floor_fraction (half) of the default limit, else of the limit read before the
//   first step. Without a known current limit nothing is lowered (the state machine still runs).
//   Leaving cooling restores the limit read before the first step (only when it lowered it).
//   A stale sample, or one without a temperature, changes nothing (not even the count).
//
// PowerEnforcer (below) is the I/O half: it carries out the decisions' power actions through
// the applier (enforce/applier.h), the one path every device write takes.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "enforce/actions.h"
#include "enforce/device_control.h"
#include "enforce/journal.h"

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
  // Without a reported minimum (none, or 0): the lowest limit as a share of the default limit
  // (else of the limit before the first step).
  double floor_fraction = 0.5;
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

// ---- Carrying out the power actions ---------------------------------------------------------

// Where one GPU's power limit is written (the daemon probes each GPU once).
struct PowerTarget {
  std::string bus_id;  // normalized "0000:01:00.0"
  std::string uuid;
  std::string mechanism_kind;  // "nvml" | "nvidia-smi" | "sysfs" | "" (none: why_none)
  std::string sysfs_path;      // for "sysfs"
  std::string why_none;
  // The Action::mechanism text for writing `value` ("" without a mechanism).
  std::string mechanism(const std::string& value) const;
};

// The applier's Action for a kSet decision: id "daemon.gpu<N>.power_limit_w.<serial>", from
// the governor's view of the limit to the step's target.
[[nodiscard]] Action governor_set_action(const GovernorDecision& d, const PowerTarget& t,
                                         uint64_t serial);

// One thing to log: the daemon writes `event` with `details` to its log and `line` to its
// output (`error`: to its error stream).
struct EnforceEvent {
  std::string event;
  nlohmann::json details;
  std::string line;
  bool error = false;
};

// Performs the governor's power actions through the applier: a set is one Action given to
// apply_actions (read, journal "set" first, write, read back, journal "result"); a restore is
// restore_sets over the journal ids this object wrote for that GPU since its last restore (one
// write back to the limit before the episode's first step; every set line gets its restore
// line). A journal line that cannot be written leaves the device untouched and is reported as
// a "journal_write_failed" error event; a set that was not carried out is undone in the
// governor (undo_step), so its view stays what the device holds.
class PowerEnforcer {
 public:
  PowerEnforcer(DeviceControl& control, Journal& journal) : control_(control), journal_(journal) {}

  // The power action of `d` (kSet or kRestore; kNone does nothing).
  [[nodiscard]] std::vector<EnforceEvent> carry_out(const GovernorDecision& d, const PowerTarget& t,
                                                    Governor& governor);
  // Restores what this object wrote to `gpu` and has not restored yet ("" reason: none given).
  [[nodiscard]] std::vector<EnforceEvent> restore(int gpu, const std::string& why);
  // GPUs with writes not yet restored.
  std::vector<int> gpus_with_writes() const;

 private:
  std::vector<EnforceEvent> set(const GovernorDecision& d, const PowerTarget& t,
                                Governor& governor);
  std::vector<EnforceEvent> settle(int gpu, const std::vector<std::string>& ids,
                                   const std::string& why);
  DeviceControl& control_;
  Journal& journal_;
  std::map<int, std::vector<std::string>> episodes_;  // gpu -> journal set ids, oldest first
  uint64_t serial_ = 0;
};

}  // namespace grey
