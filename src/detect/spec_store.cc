#include "detect/spec_store.h"

#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "util/json_util.h"
#include "util/state_dir.h"

namespace grey {

std::string save_specs(const std::string& state_dir, const std::vector<GpuSpec>& specs) {
  std::string err = ensure_state_dir(state_dir);
  if (!err.empty()) return err;
  return write_file_atomic(state_dir + "/last_gpu_spec.json",
                           dump_json(specs_to_json(specs), 2) + "\n");
}

LoadedSpecs load_specs_file(const std::string& path) {
  LoadedSpecs r;
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    r.missing = true;
    r.error = "no saved GPU spec at " + path + "; run `grey-gpu-opt detect` first";
    return r;
  }
  std::string err;
  auto text = read_whole_file(path, &err);
  if (!text) {
    r.error = "cannot read the saved GPU spec: " + err;
    return r;
  }
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(*text);
  } catch (const nlohmann::json::parse_error& e) {
    r.error = path + " is corrupt (not valid JSON: " + e.what() +
              "); run `grey-gpu-opt detect` to write it again";
    return r;
  }
  try {
    r.specs = specs_from_json(j);
  } catch (const std::exception& e) {
    r.error =
        path + " is not a GPU spec (" + e.what() + "); run `grey-gpu-opt detect` to write it again";
    return r;
  }
  r.ok = true;
  return r;
}

LoadedSpecs load_specs(const std::string& state_dir) {
  return load_specs_file(state_dir + "/last_gpu_spec.json");
}

}  // namespace grey
