// The CUDA driver API probe: dlopens libcuda.so.1 (or $GREY_CUDA_LIBRARY) through the
// LibLoader and reads each CUDA device (name, memory, compute capability, SMs, bus width,
// clock, PCI location). Name "cuda", authority 60.
#pragma once

#include <memory>

#include "sources/source.h"

namespace grey {

std::unique_ptr<Source> make_cuda_source();

}  // namespace grey
