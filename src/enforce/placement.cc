#include "enforce/placement.h"

#include "enforce/env_export.h"

namespace grey {

const GpuSpec* spec_for(const std::vector<GpuSpec>& specs, const GpuPlan& gp) {
  for (const auto& s : specs)
    if ((gp.device_id && s.f.bus_id == gp.device_id) || (gp.uuid && s.f.uuid == gp.uuid)) return &s;
  return nullptr;
}

std::optional<int64_t> vram_total_for(const std::vector<GpuSpec>& specs, const GpuPlan& gp) {
  const GpuSpec* s = spec_for(specs, gp);
  return s ? s->f.vram_total_mb : std::nullopt;
}

const GpuPlan* plan_gpu_at(const Plan& plan, int64_t index) {
  const GpuPlan* found = nullptr;
  for (const auto& gp : plan.gpus)
    if (gp.index == index) found = &gp;
  return found;
}

Placement place_least_loaded(const Plan& plan, const TelemetrySnapshot& sample,
                             const std::vector<GpuSpec>& specs) {
  Placement r;
  if (plan.gpus.empty()) return r;
  int64_t best_free = -1;
  for (const auto& gp : plan.gpus) {
    std::optional<int64_t> free_mb;
    for (const auto& s : sample.gpus)
      if (s.index == gp.index && !s.stale && s.vram_total_mb && s.vram_used_mb)
        free_mb = *s.vram_total_mb - *s.vram_used_mb;
    if (!free_mb)
      if (const GpuSpec* sp = spec_for(specs, gp)) free_mb = sp->f.vram_free_mb;
    if (free_mb && *free_mb > best_free) {
      best_free = *free_mb;
      r.gpu = &gp;
    }
  }
  if (!r.gpu)
    r.gpu = &plan.gpus.front();
  else
    r.free_mb = best_free;
  return r;
}

std::map<std::string, std::string> placement_environment(const GpuPlan& chosen,
                                                         const std::vector<GpuSpec>& specs,
                                                         std::optional<int64_t> vram_total_mb) {
  auto env = gpu_environment(chosen, vram_total_mb ? vram_total_mb : vram_total_for(specs, chosen));
  env["CUDA_VISIBLE_DEVICES"] = chosen.uuid ? *chosen.uuid : std::to_string(chosen.index);
  if (!chosen.uuid) env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID";
  env["GREY_GPU_INDEX"] = std::to_string(chosen.index);
  return env;
}

std::vector<DeviceTarget> device_targets(const Plan& plan, const std::vector<GpuSpec>& specs) {
  std::vector<DeviceTarget> targets;
  for (const auto& gp : plan.gpus) {
    const GpuSpec* s = spec_for(specs, gp);
    if (!gp.device_id) continue;
    DeviceTarget t;
    t.index = gp.index;
    t.bus_id = *gp.device_id;
    t.uuid = gp.uuid;
    t.vendor = s && s->f.vendor ? *s->f.vendor : "unknown";
    t.kernel_driver = s ? s->f.kernel_driver : std::nullopt;
    t.want_persistence = t.vendor == "nvidia";
    t.want_power_limit_w = gp.power_limit_w;
    if (s) {
      t.device_min_w = s->f.power_limit_min_w;
      t.device_max_w = s->f.power_limit_max_w;
    }
    targets.push_back(t);
  }
  return targets;
}

}  // namespace grey
