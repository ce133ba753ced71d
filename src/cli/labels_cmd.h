// `grey-gpu-opt labels` (SPEC §8): the Node Feature Discovery feature file of this node,
// independent of argument parsing (tested directly and through the binary).
#pragma once

#include <optional>
#include <ostream>
#include <string>

#include "detect/global_options.h"
#include "fleet/labels.h"

namespace grey {

struct LabelsCliOptions {
  std::string output_dir = kDefaultFeaturesDir;
  std::string prefix = kDefaultLabelPrefix;
  bool to_stdout = false;             // print the file instead of writing it
  std::optional<std::string> replay;  // detect from a capture directory (as `detect --replay`)
};

// Detects (as `detect`, without saving the spec), reads the applied plan of the state
// directory, and writes OUTPUT_DIR/grey-gpu-opt atomically (or prints it with --stdout).
// Exit codes: 0 written (also with no GPU: gpu.count=0), 1 the file could not be written,
// 2 bad usage (prefix, --replay or --output-dir not a directory, --timeout).
int run_labels_command(const GlobalOptions& g, const LabelsCliOptions& o, std::ostream& out,
                       std::ostream& err, bool* abandoned_work);

}  // namespace grey
