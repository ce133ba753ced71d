// last_gpu_spec.json in the state directory.
#pragma once

#include <string>
#include <vector>

#include "model/gpu_spec.h"

namespace grey {

// Error message, empty on success.
[[nodiscard]] std::string save_specs(const std::string& state_dir,
                                     const std::vector<GpuSpec>& specs);

struct LoadedSpecs {
  bool ok = false;
  bool missing = false;  // no file yet (not an error of the file itself)
  std::vector<GpuSpec> specs;
  std::string error;  // what is wrong and what to do about it
};
[[nodiscard]] LoadedSpecs load_specs(const std::string& state_dir);
[[nodiscard]] LoadedSpecs load_specs_file(const std::string& path);

}  // namespace grey
