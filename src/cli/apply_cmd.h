// apply, env, run, restore (SPEC §3): enforcement behind consent, journaled and reversible.
#pragma once

#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "cli/detect_cmd.h"
#include "plan/plan.h"

namespace grey {

struct ApplyCliOptions {
  bool dry_run = true;
  bool destructive = false;
  bool yes = false;
  bool json = false;
  std::optional<std::string> plan_file;  // default: <state>/last_plan.yaml
  // Typed confirmation on a terminal; tests pass their own. Returns the line typed.
  std::optional<std::string> (*confirm)(std::ostream& err) = nullptr;
};

int run_apply_command(const GlobalOptions& g, const ApplyCliOptions& o, std::ostream& out,
                      std::ostream& err);

// env [--shell sh|fish|json]: the applied environment, for eval.
int run_env_command(const GlobalOptions& g, const std::string& shell, std::ostream& out,
                    std::ostream& err);

struct RunCliOptions {
  std::string gpu = "auto";  // "auto" or an index
  // Run the command under libgrey_cap.so with the applied plan's per-process VRAM cap (and,
  // when an MPS control daemon runs, CUDA_MPS_PINNED_DEVICE_MEM_LIMIT too).
  bool enforce_cap = false;
  std::vector<std::string> command;
};
// Builds the child's environment and argv; exec_fn replaces the process (execvp by default;
// tests pass a recorder). Returns an exit code only when it could not exec.
int run_run_command(const GlobalOptions& g, const RunCliOptions& o, std::ostream& err,
                    int (*exec_fn)(const std::vector<std::string>& argv,
                                   const std::map<std::string, std::string>& env) = nullptr);

int run_restore_command(const GlobalOptions& g, bool dry_run, bool json, std::ostream& out,
                        std::ostream& err);

// The environment apply writes for a plan: GREY_* for the most constrained GPU (safe for any
// placement), GREY_GPU<i>_* per GPU, and the framework-native caps that are safe to set.
std::map<std::string, std::string> plan_environment(const Plan& p,
                                                    const std::vector<GpuSpec>& specs);
// GREY_* (and framework caps) of one GPU, for `run --gpu N`.
std::map<std::string, std::string> gpu_environment(const GpuPlan& gp,
                                                   std::optional<int64_t> vram_total_mb);

// The applied environment, the one model `apply` writes and `env` prints: names of
// [A-Za-z_][A-Za-z0-9_]*, values of any bytes but NUL.
bool is_env_name(std::string_view name);
// Empty when every name and value is valid; else what is wrong with the first bad one.
std::string check_environment(const std::map<std::string, std::string>& env);
// sh: the value in single quotes, each ' as '\'' ; eval gives back the bytes exactly.
std::string sh_single_quote(std::string_view v);
// fish: the value in single quotes, ' and \ escaped with a backslash.
std::string fish_single_quote(std::string_view v);
// sh (export NAME='v'), fish (set -gx NAME 'v';) or json (an object of strings). Prints only
// entries check_environment accepts.
std::string render_env(const std::map<std::string, std::string>& env, const std::string& shell);

struct EnvFile {
  bool ok = false;
  std::map<std::string, std::string> vars;
  std::string error;  // names the file and line
};
// Reads the env file apply wrote, strictly: every line is empty, a # comment, or
// export NAME='value' with the value as sh_single_quote writes it (it may span lines). Anything
// else (a bad name, an unterminated quote, text after the closing quote) is an error, and no
// variable is returned at all.
EnvFile parse_env_file(std::string_view text, const std::string& file);

}  // namespace grey
