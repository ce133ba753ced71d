// Software renderers, CPU compute devices, virtual-machine and BMC display adapters are not
// GPUs. This decides, for one observation, whether it is one of those and why.
#pragma once

#include <optional>
#include <string>

#include "model/gpu_spec.h"

namespace grey {

std::optional<std::string> software_reason(const Observation& o);

}  // namespace grey
