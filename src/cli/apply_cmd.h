// apply, env, run, restore (SPEC §3): enforcement behind consent, journaled and reversible.
#pragma once

#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "cli/detect_cmd.h"
#include "enforce/env_export.h"  // the env file `apply` writes and `env` prints
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

}  // namespace grey
