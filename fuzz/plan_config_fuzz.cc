// Fuzzes the config.yaml parser and validator, then the planner with whatever overrides
// survive (the device checks), then the plan YAML reader and the plan validator of `apply`.
// Nothing may throw or crash, and:
//   - a plan the planner builds reads back equal from its YAML and its JSON (every string in it
//     is valid UTF-8, so no writer has anything to replace), and passes the checks `apply`
//     makes (validate_plan): what the planner accepts, apply accepts;
//   - a plan read from any text writes and reads back equal.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "plan/config.h"
#include "plan/plan.h"
#include "plan/plan_io.h"

namespace {

void round_trip(const grey::Plan& p) {
  std::string e;
  auto back = grey::plan_from_yaml_text(grey::plan_to_yaml(p), &e);
  if (!back || !(*back == p)) std::abort();
  auto back_json = grey::plan_from_json_text(grey::plan_to_json_text(p), &e);
  if (!back_json || !(*back_json == p)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* d, size_t n) {
  std::string text(reinterpret_cast<const char*>(d), n);
  grey::ConfigResult r = grey::parse_config_text(text, "fuzz.yaml");
  if (r.ok != r.errors.empty()) std::abort();
  if (r.ok) {
    grey::GpuSpec a;
    a.index = 0;
    a.f.vendor = "nvidia";
    a.f.uuid = "GPU-1";
    a.f.vram_total_mb = 16376;
    a.f.power_limit_min_w = 150;
    a.f.power_limit_max_w = 400;
    a.f.power_limit_default_w = 320;
    a.f.thermal.slowdown_c = 90;
    a.detection_sources = {"nvml"};
    grey::GpuSpec b;
    b.index = 1;
    grey::PlanInput in;
    in.specs = {a, b};
    in.mode = r.overrides.mode.value_or(grey::PlanMode::kSafe);
    in.overrides = r.overrides;
    grey::PlanOutcome o = grey::build_plan(in);
    if (o.ok) {
      round_trip(o.plan);
      if (!grey::validate_plan(o.plan, in.specs, "fuzz.yaml").empty()) std::abort();
    }
  }
  std::string e;
  if (auto p = grey::plan_from_yaml_text(text, &e)) {
    round_trip(*p);
    (void)grey::validate_plan(*p, {}, "fuzz.yaml");
  }
  return 0;
}
