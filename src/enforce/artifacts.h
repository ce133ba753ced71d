// SPEC §5 artifacts, built only from real telemetry samples (never placeholder rows) and
// rewritten atomically: vram_reclamation.json, thermal_signature.csv, fairness_heatmap.csv.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "plan/plan.h"
#include "telemetry/telemetry.h"

namespace grey {

std::string thermal_signature_csv(const std::vector<TelemetrySnapshot>& history, const Plan* plan);
std::string fairness_heatmap_csv(const std::vector<TelemetrySnapshot>& history);
// Processes that held VRAM while idle (utilization known and 0) in every sample of the window,
// and groups of the same command holding near-equal VRAM (within 5%).
nlohmann::json vram_reclamation(const std::vector<TelemetrySnapshot>& history);

// Writes the three files into <state_dir>/artifacts (0700 dir, 0600 files). Returns the paths
// written; errors are appended to *errors.
std::vector<std::string> write_artifacts(const std::string& state_dir,
                                         const std::vector<TelemetrySnapshot>& history,
                                         const Plan* plan, bool heatmap,
                                         std::vector<std::string>* errors);

}  // namespace grey
