// Fuzzes the config.yaml parser and validator, then the planner with whatever overrides
// survive (the device checks), then the plan YAML reader. Nothing may throw or crash.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "plan/config.h"
#include "plan/plan.h"
#include "plan/plan_io.h"

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
      std::string e;
      auto back = grey::plan_from_yaml_text(grey::plan_to_yaml(o.plan), &e);
      if (!back || !(*back == o.plan)) std::abort();  // round trip must hold for any plan
    }
  }
  std::string e;
  (void)grey::plan_from_yaml_text(text, &e);
  return 0;
}
