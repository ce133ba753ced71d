// The list of detection sources. A new source is one file plus one line here.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "sources/source.h"

namespace grey {

// With `probe_exe` (this program's path), the library probes run in child processes
// (`probe_exe __probe NAME`, see isolated_source.h); without it, in this process.
std::vector<std::unique_ptr<Source>> make_all_sources(const std::string& probe_exe = "");

}  // namespace grey
