// The plan command, independent of argument parsing (tested directly).
#pragma once

#include <functional>
#include <optional>
#include <ostream>
#include <string>

#include "cli/detect_cmd.h"
#include "plan/plan.h"

namespace grey {

// The detection to run when there is no saved spec or --detect is given. main.cc passes
// grey::detect_now; tests pass a fake. Left empty, a missing spec is an error that says to
// run `grey-gpu-opt detect`.
using DetectFn =
    std::function<DetectionResult(const GlobalOptions&, const std::optional<std::string>&)>;

struct PlanCliOptions {
  std::optional<std::string> mode;           // "safe" | "aggressive"; else config's mode, else safe
  std::optional<std::string> output;         // .yaml/.yml/.json
  std::optional<std::string> config_file;    // on top of <state_dir>/config.yaml
  bool json = false;                         // print the plan as JSON instead of the table
  bool detect = false;                       // detect again even when a spec is saved
  bool explain = false;                      // the table also lists every field's rationale
  DetectFn detector;                         // see DetectFn
  std::optional<TelemetryWindow> telemetry;  // measured process data, when a caller has it
};

// Exit codes: 0 ok (also with no GPU), 1 failure (corrupt saved spec, write error),
// 2 bad usage or a bad config value (nothing is written then).
int run_plan_command(const GlobalOptions& g, const PlanCliOptions& o, std::ostream& out,
                     std::ostream& err, bool* abandoned_work = nullptr);

// The human summary: one row per GPU, or per group of identical GPUs (cap, batch, chunk,
// cooldown/resume, power, what enforces the cap, confidence); with `explain`, every field of each
// row with its value, confidence, provenance, enforcement and rationale; then the plan's notes.
std::string render_plan_table(const Plan& p, bool explain = false);

}  // namespace grey
