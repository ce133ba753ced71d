// Which GPU a plan entry is, and where a process goes: the plan's GPU entries matched to the
// saved specs (bus id or UUID), the least-loaded choice by free VRAM that `run --gpu auto`
// makes, the variables that put a process on the chosen GPU, and the device targets `apply`
// hands to plan_actions. Pure: the telemetry sample is given by the caller.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "enforce/actions.h"
#include "model/gpu_spec.h"
#include "plan/plan.h"
#include "telemetry/telemetry.h"

namespace grey {

// The saved spec a plan entry describes (same bus id or same UUID), or nullptr.
const GpuSpec* spec_for(const std::vector<GpuSpec>& specs, const GpuPlan& gp);
// That spec's total VRAM, when there is a spec and it reports one.
std::optional<int64_t> vram_total_for(const std::vector<GpuSpec>& specs, const GpuPlan& gp);

// The plan's GPU with this index, or nullptr.
const GpuPlan* plan_gpu_at(const Plan& plan, int64_t index);

struct Placement {
  const GpuPlan* gpu = nullptr;    // nullptr only when the plan has no GPU
  std::optional<int64_t> free_mb;  // the chosen GPU's free VRAM, when known
};
// The GPU with the most free VRAM: from the sample (a fresh row with total and used), else the
// saved spec's free VRAM; the first GPU when no free VRAM is known for any.
Placement place_least_loaded(const Plan& plan, const TelemetrySnapshot& sample,
                             const std::vector<GpuSpec>& specs);

// gpu_environment for the chosen GPU plus CUDA_VISIBLE_DEVICES (its UUID, which names it in any
// enumeration order; else its index with CUDA_DEVICE_ORDER=PCI_BUS_ID) and GREY_GPU_INDEX.
// `vram_total_mb` replaces the spec's VRAM (a MIG instance's own memory) when given.
std::map<std::string, std::string> placement_environment(
    const GpuPlan& chosen, const std::vector<GpuSpec>& specs,
    std::optional<int64_t> vram_total_mb = std::nullopt);

// One target per plan entry with a bus id: vendor and driver from the saved spec, persistence
// for NVIDIA, the plan's power limit and the device's range.
std::vector<DeviceTarget> device_targets(const Plan& plan, const std::vector<GpuSpec>& specs);

}  // namespace grey
