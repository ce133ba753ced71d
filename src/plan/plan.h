// The planner (SPEC §2): a pure function of (specs, mode, overrides, optional telemetry) that
// gives every GPU its own numbers, and says for each one how sure it is (confidence), why
// (rationale), where the number came from (provenance) and what will back it (enforcement).
// No I/O here: the clock and the config file are read by the caller.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "model/gpu_spec.h"
#include "plan/reclaim.h"

namespace grey {

enum class PlanMode { kSafe, kAggressive };
std::string to_string(PlanMode m);                            // "safe" | "aggressive"
std::optional<PlanMode> parse_plan_mode(std::string_view s);  // exact, lower case

// The words allowed in `provenance` and `enforcement` (SPEC §2).
inline constexpr const char* kProvenanceWords[] = {"measured", "device", "derived", "heuristic",
                                                   "config"};
inline constexpr const char* kEnforcementWords[] = {"advisory env", "shim",     "mps",
                                                    "kernel",       "reactive", "none"};

// The per-GPU plan fields, in the order they are printed.
inline constexpr const char* kPlanFields[] = {
    "per_process_vram_cap_mb", "recommended_batch_size",      "tensor_chunk_size_mb",
    "cooldown_threshold_c",    "resume_threshold_c",          "fair_scheduling_policy",
    "placement_policy",        "preemptive_throttle",         "power_limit_w",
    "max_concurrent_kernels",  "fairness_weight_per_process", "utilization_heatmap_enabled",
    "estimated_reclaimed_mb",  "dedup_buffer_count",          "compression_ratio"};

// ---- Telemetry: PlanProcessSample and TelemetryWindow are in plan/reclaim.h ----

// ---- Overrides (parsed and statically validated by plan/config.h) ----
using OverrideValue = std::variant<std::monostate /*null*/, bool, int64_t, double, std::string>;

struct FieldOverride {
  std::string field;  // one of kPlanFields
  OverrideValue value;
  std::string file;  // where it was read, for messages
  int line = 0;      // 1-based, 0 when unknown
};

struct PlanOverrides {
  std::optional<PlanMode> mode;  // `mode:` in a config file (the CLI's --mode wins)
  std::string mode_file;
  std::vector<FieldOverride> global;
  // Per GPU, keyed by index ("1") or uuid, as written in the file.
  std::map<std::string, std::vector<FieldOverride>> per_gpu;
  std::map<std::string, std::string> per_gpu_file;  // key -> file that named it
};

// ---- The plan ----
// One MIG instance's own cap and batch size, from the instance's memory (SPEC §9).
struct PartitionPlan {
  std::optional<int> gi_id;
  std::optional<int> ci_id;
  std::optional<std::string> profile;
  std::optional<std::string> uuid;
  std::optional<int64_t> memory_total_mb;
  std::optional<int64_t> per_process_vram_cap_mb;  // null when the memory is unknown
  std::optional<int64_t> recommended_batch_size;
  bool operator==(const PartitionPlan&) const = default;
};

struct GpuPlan {
  int index = 0;
  std::optional<std::string> device_id;  // PCI bus id
  std::optional<std::string> uuid;
  std::optional<std::string> model;

  std::optional<int64_t> per_process_vram_cap_mb;  // null when VRAM is unknown
  std::optional<int64_t> recommended_batch_size;
  std::optional<int64_t> tensor_chunk_size_mb;
  int cooldown_threshold_c = 80;
  int resume_threshold_c = 65;
  std::string fair_scheduling_policy = "round_robin";  // round_robin | priority_based
  std::optional<std::string> placement_policy;         // null | least_loaded_free_vram
  bool preemptive_throttle = false;
  std::optional<double> power_limit_w;  // aggressive only; null = leave it as it is
  int max_concurrent_kernels = 4;
  double fairness_weight_per_process = 1.0;
  bool utilization_heatmap_enabled = false;
  // From plan/reclaim.h's analysis of the telemetry window; null when not measured.
  std::optional<int64_t> estimated_reclaimed_mb;
  std::optional<int64_t> dedup_buffer_count;
  std::optional<double> compression_ratio;

  std::map<std::string, double> confidence;        // field -> [0,1]
  std::map<std::string, std::string> rationale;    // field -> one sentence
  std::map<std::string, std::string> provenance;   // field -> kProvenanceWords
  std::map<std::string, std::string> enforcement;  // cap field -> kEnforcementWords
  std::vector<PartitionPlan> partitions;           // one per MIG instance; [] without MIG

  bool operator==(const GpuPlan&) const = default;
};

struct Plan {
  int schema_version = 1;
  PlanMode mode = PlanMode::kSafe;
  std::string generated_at;    // UTC ISO 8601
  std::string gpu_specs_hash;  // FNV-1a 64 of the canonical spec JSON, 16 hex digits
  double confidence_overall = 0;
  std::vector<std::string> notes;
  std::vector<GpuPlan> gpus;

  bool operator==(const Plan&) const = default;
};

struct PlanInput {
  std::vector<GpuSpec> specs;
  PlanMode mode = PlanMode::kSafe;
  PlanOverrides overrides;
  std::optional<TelemetryWindow> telemetry;
  std::string generated_at;  // supplied by the caller (the planner reads no clock)
  // The strongest mechanism found on this machine that backs the VRAM cap of CUDA programs
  // started with `grey-gpu-opt run --enforce-cap` ("shim" or "mps"; empty: none, the cap stays
  // "advisory env"), and a sentence saying where it was found. The caller looks (see
  // enforce/cap_mechanisms.h); the planner only reports it, for NVIDIA GPUs with a cap.
  std::string cuda_cap_tier;
  std::string cuda_cap_how;
};

struct PlanOutcome {
  bool ok = false;
  Plan plan;                        // complete when ok
  std::vector<std::string> errors;  // override values the devices refuse (exit 2)
};

PlanOutcome build_plan(const PlanInput& in);

// FNV-1a 64-bit (implemented here), as 16 lower-case hex digits.
std::string fnv1a64_hex(std::string_view data);
// Hash of the canonical spec JSON (sorted keys, no spaces).
std::string gpu_specs_hash(const std::vector<GpuSpec>& specs);

// Batch-size table of SPEC §2 for safe mode (aggressive doubles it).
int64_t batch_for_vram_mb(int64_t vram_mb);
// The plan of each partition of `s` (same percentages and batch table as a whole GPU).
std::vector<PartitionPlan> plan_partitions(const GpuSpec& s, PlanMode mode);
// Vendor thermal defaults (safe mode): {cooldown, resume}.
std::pair<int, int> vendor_thermal_defaults(const std::string& vendor);

// The limits config values are checked against (shared with plan/config.cc).
inline constexpr int64_t kBatchMin = 1, kBatchMax = 65536;
inline constexpr int kTempMin = 30, kTempMax = 110;
inline constexpr int kKernelsMin = 1, kKernelsMax = 128;
inline constexpr double kWeightMax = 100.0;
// The largest MiB count whose byte count (CUPY_GPU_MEMORY_LIMIT) still fits an int64.
inline constexpr int64_t kMibMax = INT64_MAX / (1024 * 1024);
// A power limit above this is no GPU's (the check when the device reports no range).
inline constexpr double kPowerMaxW = 1e6;
// A device slowdown temperature outside this range is not believed.
inline constexpr int kSlowdownPlausibleMin = 50, kSlowdownPlausibleMax = 150;

}  // namespace grey
