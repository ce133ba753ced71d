// SPEC §5 artifacts, built only from real telemetry samples (never placeholder rows) and
// rewritten atomically: vram_reclamation.json, thermal_signature.csv, fairness_heatmap.csv.
//
// The daemon renders them from its compact window (telemetry/window.h), whose ticks keep their
// rows rendered since they entered it; the overloads taking snapshots (apply, tests) build
// such a window from them first. Both give the same bytes.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "daemon/window.h"
#include "plan/plan.h"
#include "telemetry/telemetry.h"

namespace grey {

std::string thermal_signature_csv(const SampleWindow& window, const Plan* plan);
std::string fairness_heatmap_csv(const SampleWindow& window);
// Processes that held VRAM while idle (utilization known and 0) in every sample of the window,
// and groups of the same command holding near-equal VRAM (within 5%).
nlohmann::json vram_reclamation(const SampleWindow& window);

std::string thermal_signature_csv(const std::vector<TelemetrySnapshot>& history, const Plan* plan);
std::string fairness_heatmap_csv(const std::vector<TelemetrySnapshot>& history);
nlohmann::json vram_reclamation(const std::vector<TelemetrySnapshot>& history);

// Writes the three files into <state_dir>/artifacts (0700 dir, 0600 files; each written to a
// temporary file, fsynced and renamed over the old one). Returns the paths written; errors are
// appended to *errors.
std::vector<std::string> write_artifacts(const std::string& state_dir, const SampleWindow& window,
                                         const Plan* plan, bool heatmap,
                                         std::vector<std::string>* errors);
std::vector<std::string> write_artifacts(const std::string& state_dir,
                                         const std::vector<TelemetrySnapshot>& history,
                                         const Plan* plan, bool heatmap,
                                         std::vector<std::string>* errors);

}  // namespace grey
