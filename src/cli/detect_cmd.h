// The detect and capture commands, independent of argument parsing (tested directly).
#pragma once

#include <optional>
#include <ostream>
#include <string>

#include "detect/detector.h"
#include "detect/global_options.h"

namespace grey {

struct DetectCliOptions {
  bool json = false;
  bool explain = false;
  bool no_save = false;
  std::optional<std::string> replay;
};

// Exit codes: 0 ok (also with no GPU), 1 failure, 2 bad usage.
int run_detect_command(const GlobalOptions& g, const DetectCliOptions& o, std::ostream& out,
                       std::ostream& err, bool* abandoned_work);
int run_capture_command(const GlobalOptions& g, const std::string& dir, std::ostream& out,
                        std::ostream& err, bool* abandoned_work);

// Detection with the real runner/fs/loader (or the replay directory).
DetectionResult detect_now(const GlobalOptions& g, const std::optional<std::string>& replay);

std::string render_table(const std::vector<GpuSpec>& gpus);
std::string render_explain(const DetectionResult& r);
std::string render_timings(const DetectionResult& r);

}  // namespace grey
