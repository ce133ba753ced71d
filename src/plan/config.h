// config.yaml: user overrides of plan fields (SPEC §2). Keys are the plan field names, at the
// top level (every GPU) or under `gpus:` keyed by GPU index ("1") or uuid; plus `mode`.
//
//   mode: aggressive
//   per_process_vram_cap_mb: 60000
//   gpus:
//     "1": {cooldown_threshold_c: 80, resume_threshold_c: 68}
//     "GPU-3f2a7c1e-...": {recommended_batch_size: 64}
//
// Everything that can be checked without the devices is checked here (type, range, enum,
// resume < cooldown within one section); what needs the device (cap <= VRAM, power within the
// device's range, cooldown under the device's slowdown) is checked by build_plan.
#pragma once

#include <string>
#include <vector>

#include "plan/plan.h"
#include "util/state_dir.h"

namespace grey {

struct ConfigResult {
  bool ok = false;
  PlanOverrides overrides;
  std::vector<std::string> errors;  // each names the file, line, key, value and what is allowed
};

// `file` is the name used in messages. Never throws. Empty text = no overrides.
ConfigResult parse_config_text(const std::string& text, const std::string& file);
// Reads and parses a file; a missing or unreadable file is an error, and so is one `trust`
// refuses (a FIFO or device is never opened blocking; --config: owned by us or root and not
// writable by others; <state dir>/config.yaml: FileTrust::kConfig, no symlink, ours).
ConfigResult load_config_file(const std::string& path, FileTrust trust = FileTrust::kUserConfig);

// The checks a config value gets, for a whole plan read from a file (`apply --plan FILE`, the
// saved last_plan.yaml): every field within the range the planner or a config can produce, and,
// for a GPU the saved specs know, within that device's limits (cap and chunk size against its
// VRAM, cooldown 2 °C under its slowdown temperature, power limit within its range). With saved
// specs, each GPU's index must be one of theirs. Each error names the file, the field
// (gpus[i].key), the value as it is (1e308 reads "1e+308") and what is allowed. Empty = valid.
std::vector<std::string> validate_plan(const Plan& p, const std::vector<GpuSpec>& specs,
                                       const std::string& file);

// `top` over `base`: the same field in the same section is replaced.
void merge_overrides(PlanOverrides& base, const PlanOverrides& top);

// The keys a config file may hold (plan fields that can be set, plus mode and gpus).
const std::vector<std::string>& config_keys();

size_t levenshtein(const std::string& a, const std::string& b);
// The closest key, when it is close enough to be a likely typo; empty otherwise.
std::string nearest_key(const std::string& key, const std::vector<std::string>& candidates);

}  // namespace grey
