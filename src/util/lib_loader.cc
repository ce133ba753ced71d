#include "util/lib_loader.h"

#include <dlfcn.h>

#include <cstdlib>

namespace grey {

DynLib::~DynLib() {
  // Vendor libraries are not unloaded: some (NVML, the CUDA driver) keep threads alive and
  // crash when their code is unmapped under them.
  (void)handle_;
}

void* DynLib::sym(std::initializer_list<const char*> names, std::string* found) const {
  for (const char* n : names) {
    if (void* p = ::dlsym(handle_, n)) {
      if (found) *found = n;
      return p;
    }
  }
  return nullptr;
}

LoadResult DlLoader::load(const std::string& soname, const std::string& env_override) {
  LoadResult r;
  r.path = soname;
  if (!env_override.empty()) {
    const char* v = std::getenv(env_override.c_str());
    if (v && *v) r.path = v;
  }
  ::dlerror();
  void* h = ::dlopen(r.path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char* e = ::dlerror();
    r.error = e ? e : "dlopen failed";
    return r;
  }
  r.lib = std::make_unique<DynLib>(h, r.path);
  return r;
}

std::string DynLib::missing_note(std::initializer_list<const char*> names,
                                 const std::string& what) const {
  // Appended piece by piece: `(a ? "" : "/") + std::string(n)` makes GCC 12 at -O2/-O3 warn
  // -Wrestrict inside std::string's operator+ (a false positive, GCC bug 105329).
  std::string list;
  for (const char* n : names) {
    if (!list.empty()) list += '/';
    list += n;
  }
  list += " not found in ";
  list += path_;
  list += "; ";
  list += what;
  list += " unknown";
  return list;
}

}  // namespace grey
