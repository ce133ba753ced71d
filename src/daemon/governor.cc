#include "daemon/governor.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "enforce/applier.h"

namespace grey {

namespace {

std::string num(double v) {
  char buf[32];
  if (std::fabs(v - std::round(v)) < 1e-9)
    std::snprintf(buf, sizeof buf, "%.0f", v);
  else
    std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

std::string trigger_text(const GovernorConfig& c) {
  if (!c.preemptive) return "cooldown threshold " + std::to_string(c.cooldown_c) + " °C";
  return "preemptive trigger " + std::to_string(c.trigger_c()) + " °C (cooldown " +
         std::to_string(c.cooldown_c) + " °C minus the " + std::to_string(kPreemptiveMarginC) +
         " °C preemptive margin)";
}

// The next lower limit, or nullopt when no step is possible (and why in *why).
std::optional<double> next_step(const GovernorGpuState& g, const GovernorInput& in,
                                std::string* why) {
  std::optional<double> current = g.target_w ? g.target_w : in.power_limit_w;
  if (!current) {
    *why = "the current power limit is unknown";
    return std::nullopt;
  }
  double base = in.default_w && *in.default_w > 0 ? *in.default_w
                : in.max_w && *in.max_w > 0       ? *in.max_w
                : g.original_w                    ? *g.original_w
                                                  : *current;
  double step = base * g.config.step_fraction;
  if (!(step > 0)) {
    *why = "no usable step size";
    return std::nullopt;
  }
  // The floor: the device's own minimum when it reports one (> 0); a reported 0 (most consumer
  // Radeons' power1_cap_min, Intel's missing one) means "no lower bound given": then never
  // below floor_fraction of the default limit (else of the limit read before the first step).
  double floor_w = 0;
  std::string floor_text;
  if (in.min_w && *in.min_w > 0) {
    floor_w = *in.min_w;
    floor_text = "the device's minimum " + num(floor_w) + " W";
  } else {
    bool by_default = in.default_w && *in.default_w > 0;
    double floor_base = by_default ? *in.default_w : g.original_w ? *g.original_w : *current;
    floor_w = std::round(floor_base * g.config.floor_fraction * 1000.0) / 1000.0;
    floor_text = "the floor " + num(floor_w) + " W (" +
                 std::to_string(static_cast<int>(std::lround(g.config.floor_fraction * 100))) +
                 "% of the " + (by_default ? "default limit" : "limit before the first step") +
                 " " + num(floor_base) + " W; the device reports no minimum)";
  }
  if (!(floor_w > 0)) {
    *why = "no usable floor for the power limit";
    return std::nullopt;
  }
  double next = std::max(*current - step, floor_w);
  next = std::round(next * 1000.0) / 1000.0;  // mW resolution
  if (next >= *current - 1e-6) {
    *why = "already at " + floor_text;
    return std::nullopt;
  }
  return next;
}

}  // namespace

std::string to_string(GovState s) {
  return s == GovState::kCooling ? "cooling" : "normal";
}

void Governor::configure(int gpu, const GovernorConfig& c) {
  GovernorConfig cc = c;
  if (cc.resume_samples < 1) cc.resume_samples = 1;
  gpus_[gpu].config = cc;
}

const GovernorGpuState* Governor::gpu(int index) const {
  auto it = gpus_.find(index);
  return it == gpus_.end() ? nullptr : &it->second;
}

std::vector<GovernorDecision> Governor::step(const std::vector<GovernorInput>& inputs) {
  std::vector<GovernorDecision> out;
  for (const auto& in : inputs) {
    if (in.stale || !in.temperature_c || !std::isfinite(*in.temperature_c)) continue;
    GovernorGpuState& g = gpus_[in.gpu];
    const GovernorConfig& c = g.config;
    const double t = *in.temperature_c;
    g.last_temperature_c = t;
    GovernorDecision d;
    d.gpu = in.gpu;
    d.from = d.to = g.state;
    bool emit = false;
    if (t >= c.trigger_c()) {
      g.below_resume_count = 0;
      if (g.state == GovState::kNormal) {
        d.to = g.state = GovState::kCooling;
        d.reason = "temperature " + num(t) + " °C >= " + trigger_text(c);
        emit = true;
      } else {
        d.reason = "temperature " + num(t) + " °C still >= " + trigger_text(c);
      }
      std::string why;
      if (auto next = next_step(g, in, &why)) {
        double from = g.target_w ? *g.target_w : *in.power_limit_w;
        if (!g.original_w) g.original_w = from;
        g.target_w = *next;
        ++g.steps;
        d.power = {PowerAction::Kind::kSet, from, *next};
        d.reason += "; lowering the power limit one step (" +
                    std::to_string(static_cast<int>(std::lround(c.step_fraction * 100))) +
                    "% of the default limit)";
        emit = true;
      } else if (emit) {
        d.reason += "; power limit left as it is: " + why;
      }
    } else if (g.state == GovState::kCooling) {
      if (t <= c.resume_c) {
        ++g.below_resume_count;
        if (g.below_resume_count >= c.resume_samples) {
          d.to = g.state = GovState::kNormal;
          d.reason = "temperature " + num(t) + " °C <= resume threshold " +
                     std::to_string(c.resume_c) + " °C for " +
                     std::to_string(g.below_resume_count) + " consecutive samples";
          if (g.original_w && g.target_w) {
            d.power = {PowerAction::Kind::kRestore, *g.target_w, *g.original_w};
            d.reason += "; restoring the power limit it lowered";
          }
          g.below_resume_count = 0;
          g.original_w.reset();
          g.target_w.reset();
          g.steps = 0;
          emit = true;
        }
      } else {
        g.below_resume_count = 0;
      }
    }
    if (emit) out.push_back(std::move(d));
  }
  return out;
}

std::vector<GovernorDecision> Governor::release_all(const std::string& why) {
  std::vector<GovernorDecision> out;
  for (auto& [index, g] : gpus_) {
    if (g.state != GovState::kCooling && !g.target_w) continue;
    GovernorDecision d;
    d.gpu = index;
    d.from = g.state;
    d.to = GovState::kNormal;
    d.reason = why;
    if (g.original_w && g.target_w) {
      d.power = {PowerAction::Kind::kRestore, *g.target_w, *g.original_w};
      d.reason += "; restoring the power limit it lowered";
    }
    g.state = GovState::kNormal;
    g.below_resume_count = 0;
    g.original_w.reset();
    g.target_w.reset();
    g.steps = 0;
    out.push_back(std::move(d));
  }
  return out;
}

void Governor::undo_step(int gpu, double previous_w) {
  auto it = gpus_.find(gpu);
  if (it == gpus_.end()) return;
  GovernorGpuState& g = it->second;
  if (g.steps > 0) --g.steps;
  if (g.steps == 0 || (g.original_w && std::fabs(*g.original_w - previous_w) < 1e-6)) {
    g.original_w.reset();
    g.target_w.reset();
    g.steps = 0;
  } else {
    g.target_w = previous_w;
  }
}

// ---- PowerEnforcer ---------------------------------------------------------------------------

std::string PowerTarget::mechanism(const std::string& value) const {
  if (mechanism_kind == "nvml") return kMechNvmlPowerLimit;
  if (mechanism_kind == "nvidia-smi")
    return nvidia_smi_mechanism(bus_id, kSettingPowerLimit, value);
  if (mechanism_kind == "sysfs") return kMechSysfsPrefix + sysfs_path;
  return "";
}

Action governor_set_action(const GovernorDecision& d, const PowerTarget& t, uint64_t serial) {
  Action a;
  a.id = "daemon.gpu" + std::to_string(d.gpu) + ".power_limit_w." + std::to_string(serial);
  a.gpu_index = d.gpu;
  a.bus_id = t.bus_id;
  a.uuid = t.uuid;
  a.setting = kSettingPowerLimit;
  a.current = watts_text(d.power.from_w);
  a.wanted = watts_text(d.power.to_w);
  a.mechanism = t.mechanism(a.wanted);
  a.unit = "W";
  a.note = d.reason;
  return a;
}

std::vector<EnforceEvent> PowerEnforcer::carry_out(const GovernorDecision& d, const PowerTarget& t,
                                                   Governor& governor) {
  if (d.power.kind == PowerAction::Kind::kSet) return set(d, t, governor);
  if (d.power.kind == PowerAction::Kind::kRestore) return restore(d.gpu, d.reason);
  return {};
}

std::vector<EnforceEvent> PowerEnforcer::set(const GovernorDecision& d, const PowerTarget& t,
                                             Governor& governor) {
  std::vector<EnforceEvent> ev;
  const std::string gpu = std::to_string(d.gpu);
  auto failed = [&](const std::string& error, const std::string& id) {
    governor.undo_step(d.gpu, d.power.from_w);
    nlohmann::json j = {
        {"gpu", d.gpu}, {"from_w", d.power.from_w}, {"to_w", d.power.to_w}, {"error", error}};
    if (!id.empty()) j["journal_id"] = id;
    ev.push_back({"power_limit_failed", j,
                  "error: GPU " + gpu + ": cannot lower the power limit to " +
                      watts_text(d.power.to_w) + " W: " + error,
                  true});
    return ev;
  };
  if (t.mechanism_kind.empty())
    return failed(
        t.why_none.empty() ? "no way to change GPU " + gpu + "'s power limit" : t.why_none, "");
  ApplyOutcome out =
      apply_actions({governor_set_action(d, t, ++serial_)}, control_, journal_, false);
  const ActionOutcome& o = out.actions.front();
  if (!o.journal_error.empty()) {
    nlohmann::json j = {{"gpu", d.gpu},
                        {"line", o.journal_id.empty() ? "set" : "result"},
                        {"error", o.journal_error},
                        {"journal", journal_.path()},
                        {"device_written", !o.journal_id.empty()}};
    if (!o.journal_id.empty()) j["journal_id"] = o.journal_id;
    ev.push_back({"journal_write_failed", j,
                  "error: GPU " + gpu + ": journal " + journal_.path() +
                      " not written: " + o.journal_error +
                      (o.journal_id.empty()
                           ? "; the power limit was not changed"
                           : "; the set line is durable, so `grey-gpu-opt restore` still works"),
                  true});
  }
  if (o.status == kApplied) {
    episodes_[d.gpu].push_back(o.journal_id);
    ev.push_back({"power_limit_lowered",
                  {{"gpu", d.gpu},
                   {"from_w", o.old_value},
                   {"to_w", o.action.wanted},
                   {"read_back", o.read_back ? nlohmann::json(*o.read_back) : nlohmann::json()},
                   {"mechanism", o.action.mechanism},
                   {"journal_id", o.journal_id}},
                  "GPU " + gpu + ": power limit " + o.old_value + " W -> " + o.action.wanted +
                      " W (read back " + o.read_back.value_or("unknown") + " W), journaled as " +
                      o.journal_id,
                  false});
    return ev;
  }
  if (o.status == kSkipped) {
    ev.push_back({"power_limit_unchanged",
                  {{"gpu", d.gpu}, {"to_w", o.action.wanted}, {"message", o.line}},
                  "GPU " + gpu + ": power limit already " + o.old_value + " W",
                  false});
    return ev;
  }
  failed(o.error, o.journal_id);
  if (!o.journal_id.empty()) {
    // The write (or its read-back) failed after its set line: settle that line now, judged by
    // the device, so the episode's chain stays what the device holds.
    auto more = settle(d.gpu, {o.journal_id}, "the write failed");
    ev.insert(ev.end(), more.begin(), more.end());
  }
  return ev;
}

std::vector<EnforceEvent> PowerEnforcer::restore(int gpu, const std::string& why) {
  auto it = episodes_.find(gpu);
  if (it == episodes_.end() || it->second.empty()) return {};
  std::vector<std::string> ids = std::move(it->second);
  episodes_.erase(it);
  return settle(gpu, ids, why);
}

std::vector<EnforceEvent> PowerEnforcer::settle(int gpu, const std::vector<std::string>& ids,
                                                const std::string& why) {
  std::vector<EnforceEvent> ev;
  const std::string g = std::to_string(gpu);
  RestoreOutcome r = restore_sets(journal_, control_, ids, false);
  nlohmann::json errors = nlohmann::json::array();
  for (const std::string& e : r.errors) {
    if (e.rfind("journal: ", 0) == 0)
      ev.push_back({"journal_write_failed",
                    {{"gpu", gpu},
                     {"line", "restore"},
                     {"error", e.substr(9)},
                     {"journal", journal_.path()},
                     {"journal_ids", ids}},
                    "error: GPU " + g + ": journal restore line not written: " + e.substr(9) +
                        " (a later `grey-gpu-opt restore` judges it again)",
                    true});
    else
      errors.push_back(e);
  }
  if (r.steps.empty()) {
    // Nothing was read for these ids (the journal could not be read, or they are settled).
    if (!r.success)
      ev.push_back(
          {"power_limit_restore_failed",
           {{"gpu", gpu}, {"status", kRestoreFailed}, {"journal_ids", ids}, {"errors", errors}},
           "GPU " + g + ": power limit restore: failed: " +
               (r.errors.empty() ? std::string("nothing restored") : r.errors.front()),
           true});
    return ev;
  }
  for (const RestoreStep& st : r.steps) {
    const bool bad = st.status == kRestoreFailed;
    std::string message = st.message + (why.empty() ? "" : " (" + why + ")");
    ev.push_back({bad ? "power_limit_restore_failed" : "power_limit_restored",
                  {{"gpu", gpu},
                   {"status", st.status},
                   {"from_w", st.wrote},
                   {"to_w", st.restore_to},
                   {"current", st.current},
                   {"mechanism", st.mechanism},
                   {"message", message},
                   {"journal_ids", ids},
                   {"errors", errors}},
                  "GPU " + g + ": power limit restore: " + st.status + ": " + message,
                  bad});
  }
  return ev;
}

std::vector<int> PowerEnforcer::gpus_with_writes() const {
  std::vector<int> out;
  for (const auto& [gpu, ids] : episodes_)
    if (!ids.empty()) out.push_back(gpu);
  return out;
}

}  // namespace grey
