// The list of detection sources. A new source is one file plus one line here.
#pragma once

#include <memory>
#include <vector>

#include "detect/source.h"

namespace grey {

std::vector<std::unique_ptr<Source>> make_all_sources();

}  // namespace grey
