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
// plan/reclaim.h's analysis of the window, the one the plan uses: per GPU the plan's
// estimated_reclaimed_mb, dedup_buffer_count and compression_ratio (null: not measured) with
// provenance and rationale, their sums over the GPUs, the idle processes and the duplicate
// groups.
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
