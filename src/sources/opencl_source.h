// The OpenCL ICD probe: dlopens libOpenCL.so.1 (or $GREY_OPENCL_LIBRARY) through the
// LibLoader and reports one observation per device of every platform. CPU devices (PoCL and
// the like) carry a software_reason. Name "opencl", authority 55.
#pragma once

#include <memory>

#include "sources/source.h"

namespace grey {

std::unique_ptr<Source> make_opencl_source();

}  // namespace grey
