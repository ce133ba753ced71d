// The environment a plan exports: per-GPU advisory variables (GREY_*, CuPy, JAX/XLA, TF), the
// whole plan's variables (the tightest GPU plus GREY_GPU<i>_* per GPU), the env file's shell,
// fish and JSON renderings and its strict parser. Pure: strings in, strings out; `apply` writes
// the file, `env` prints it, `run` and the daemon's tests use the same values.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/gpu_spec.h"
#include "plan/plan.h"

namespace grey {

// The variables for a process on one GPU; vram_total_mb (when known and positive) gives JAX/XLA's
// memory fraction.
std::map<std::string, std::string> gpu_environment(const GpuPlan& gp,
                                                   std::optional<int64_t> vram_total_mb);
// The plan's variables: the most constrained GPU's, and with more than one GPU each GPU's GREY_*
// variables again as GREY_GPU<index>_*; GREY_PLAN_MODE.
std::map<std::string, std::string> plan_environment(const Plan& p,
                                                    const std::vector<GpuSpec>& specs);

// [A-Za-z_][A-Za-z0-9_]* (ASCII only).
bool is_env_name(std::string_view name);
// Empty when every name is a variable name and no value holds a NUL; else why not.
std::string check_environment(const std::map<std::string, std::string>& env);
std::string sh_single_quote(std::string_view v);
std::string fish_single_quote(std::string_view v);
// shell: "sh" (export NAME='v'), "fish" (set -gx NAME 'v';) or "json". Variables that
// check_environment would refuse are left out.
std::string render_env(const std::map<std::string, std::string>& env, const std::string& shell);

struct EnvFile {
  bool ok = false;
  std::map<std::string, std::string> vars;
  std::string error;  // names the file and line
};
// Reads the env file as `apply` writes it (render_env(..., "sh"), comments, empty lines) and
// nothing else: any other line fails the whole file.
EnvFile parse_env_file(std::string_view text, const std::string& file);

}  // namespace grey
