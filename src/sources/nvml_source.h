// The NVML probe: dlopens libnvidia-ml.so.1 (or $GREY_NVML_LIBRARY) through the LibLoader and
// reads every NVIDIA GPU the driver manages. Name "nvml", authority 100 (the highest).
#pragma once

#include <memory>

#include "sources/source.h"

namespace grey {

std::unique_ptr<Source> make_nvml_source();

}  // namespace grey
