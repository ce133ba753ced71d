#include "daemon/governor.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

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
  if (!in.min_w || *in.min_w <= 0) {
    *why = "the device's minimum power limit is unknown";
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
  double next = std::max(*current - step, *in.min_w);
  next = std::round(next * 1000.0) / 1000.0;  // mW resolution
  if (next >= *current - 1e-6) {
    *why = "already at the device's minimum " + num(*in.min_w) + " W";
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

}  // namespace grey
