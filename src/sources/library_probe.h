// The common start of the NVML, CUDA and OpenCL probes.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "sources/source.h"

namespace grey {

// Library probes do not run in replay; otherwise the library is loaded through ctx.loader
// (or a DlLoader when the context has none). Sets rep.what to the path tried. Returns the
// status to finish with (its note already added) when the probe cannot go on; else nullopt,
// with the loaded library in *lib.
std::optional<SourceStatus> begin_library_probe(const SourceContext& ctx, const std::string& soname,
                                                const std::string& env_override, SourceReport& rep,
                                                std::unique_ptr<DynLib>* lib);

}  // namespace grey
