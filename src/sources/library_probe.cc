#include "sources/library_probe.h"

namespace grey {

std::optional<SourceStatus> begin_library_probe(const SourceContext& ctx, const std::string& soname,
                                                const std::string& env_override, SourceReport& rep,
                                                std::unique_ptr<DynLib>* lib) {
  if (ctx.replay_dir) {
    rep.notes.push_back("library probes do not run in replay");
    return SourceStatus::skipped;
  }
  DlLoader fallback_loader;
  LibLoader* loader = ctx.loader ? ctx.loader : &fallback_loader;
  LoadResult lr = loader->load(soname, env_override);
  rep.what = lr.path;
  if (!lr.lib) {
    // dlerror() usually names the file already ("libcuda.so.1: cannot open shared object
    // file: ..."): say the path once.
    rep.notes.push_back(lr.error.rfind(lr.path + ":", 0) == 0 ? lr.error
                                                              : lr.path + ": " + lr.error);
    return SourceStatus::missing;
  }
  *lib = std::move(lr.lib);
  return std::nullopt;
}

}  // namespace grey
