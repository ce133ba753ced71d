// Every vendor library is dlopen'ed through LibLoader; GREY_NVML_LIBRARY, GREY_CUDA_LIBRARY
// and GREY_OPENCL_LIBRARY name another file to load instead of the default soname.
#pragma once

#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

namespace grey {

class DynLib {
 public:
  DynLib(void* handle, std::string path) : handle_(handle), path_(std::move(path)) {}
  ~DynLib();
  DynLib(const DynLib&) = delete;
  DynLib& operator=(const DynLib&) = delete;
  // First symbol found among the names (newest versioned name first). nullptr if none.
  void* sym(std::initializer_list<const char*> names, std::string* found = nullptr) const;
  template <typename F>
  F fn(std::initializer_list<const char*> names, std::string* found = nullptr) const {
    return reinterpret_cast<F>(sym(names, found));
  }
  // fn(), and when none of the names exists, a note "a/b not found in <path>; <what> unknown"
  // appended to *notes.
  template <typename F>
  F fn_or_note(std::initializer_list<const char*> names, const std::string& what,
               std::vector<std::string>* notes, std::string* found = nullptr) const {
    F p = fn<F>(names, found);
    if (!p && notes) notes->push_back(missing_note(names, what));
    return p;
  }
  std::string missing_note(std::initializer_list<const char*> names, const std::string& what) const;
  const std::string& path() const { return path_; }

 private:
  void* handle_;
  std::string path_;
};

struct LoadResult {
  std::unique_ptr<DynLib> lib;
  std::string path;   // what was tried
  std::string error;  // dlerror() text when lib is null
};

class LibLoader {
 public:
  virtual ~LibLoader() = default;
  // `env_override` names an environment variable that may hold another path to load.
  [[nodiscard]] virtual LoadResult load(const std::string& soname,
                                        const std::string& env_override) = 0;
};

class DlLoader : public LibLoader {
 public:
  [[nodiscard]] LoadResult load(const std::string& soname,
                                const std::string& env_override) override;
};

}  // namespace grey
