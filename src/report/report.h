// `grey-gpu-opt report`: renders the SPEC §5 artifacts (written by src/enforce/artifacts.cc)
// into one self-contained artifacts/report.html with inline SVG charts: temperature against the
// cooldown/resume thresholds per GPU over time, power against the power limit, the
// per-process utilization heatmap, VRAM per process, and the reclamation findings. No
// scripts, no external assets (no http:// or https:// anywhere), every text HTML-escaped.
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace grey {

// One row of thermal_signature.csv.
struct ThermalRow {
  std::string timestamp;
  double t = 0;  // seconds since the epoch, from timestamp
  int gpu_index = 0;
  std::string bus_id;
  double temperature_c = 0;
  std::optional<double> cooldown_c, resume_c, power_w, power_limit_w, utilization_pct;
  std::optional<double> vram_used_mb;
  std::string backend;
};

// One row of fairness_heatmap.csv.
struct HeatmapRow {
  std::string timestamp;
  double t = 0;
  std::optional<int> gpu_index;
  int pid = 0;
  std::string command, user;
  std::optional<double> utilization_pct, vram_mb;
};

template <typename Row>
struct CsvTable {
  bool header_ok = false;  // the header names the required columns
  std::vector<Row> rows;
  size_t skipped = 0;              // malformed rows (wrong cells, bad numbers, bad timestamp)
  std::vector<std::string> notes;  // why the header was refused, examples of skipped rows
};

// Pure; never throw. Columns are found by their header names (extra columns are ignored);
// thermal needs timestamp, gpu_index, temperature_c; heatmap needs timestamp, pid. Quoted
// cells ("a,b", "say ""hi""") are understood. A row is skipped (and counted) when it has fewer
// cells than the header, a required cell is empty or not a number, a number is not finite, or
// the timestamp is not ISO 8601 UTC.
CsvTable<ThermalRow> parse_thermal_csv(std::string_view text);
CsvTable<HeatmapRow> parse_heatmap_csv(std::string_view text);

// "2026-11-26T15:00:00.123Z" (also "+00:00", a space for the T, no zone) -> epoch seconds.
std::optional<double> parse_iso8601_utc(std::string_view s);

// HTML text/attribute escaping (& < > " ').
std::string html_escape(std::string_view s);

// What the report is built from. nullopt: the artifact file does not exist (or could not be
// read; `read_errors` says why); the report names it as missing.
struct ReportInputs {
  std::optional<std::string> thermal_csv, heatmap_csv, reclamation_json;
  std::string title = "Grey GPU Optimizer report";
  std::vector<std::string> read_errors;  // shown in the report
};

struct ReportSummary {
  std::vector<std::string> missing;  // artifact file names
  size_t thermal_rows = 0, heatmap_rows = 0;
  size_t thermal_skipped = 0, heatmap_skipped = 0;
  bool reclamation_ok = false;  // the JSON parsed as an object
};

std::string render_report_html(const ReportInputs& in, ReportSummary* summary = nullptr);

// Convenience form: an empty string counts as a missing artifact.
std::string render_report_html(const std::string& thermal_csv, const std::string& heatmap_csv,
                               const std::string& reclamation_json, const std::string& title);

// Reads <state_dir>/artifacts/{thermal_signature.csv, fairness_heatmap.csv,
// vram_reclamation.json} and writes <state_dir>/artifacts/report.html atomically (0600).
// Prints the path written and what was missing or skipped to `out`; problems to `err`.
// Returns 0 when the report was written (even with artifacts missing: the report says which),
// 1 when it could not be written.
int run_report_command(const std::string& state_dir, std::ostream& out, std::ostream& err);

}  // namespace grey
