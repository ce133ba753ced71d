// NVML device control in a child process under a deadline: `grey-gpu-opt __control REQUEST`,
// run through a Runner (argv only, its own process group, killed with the group at the
// deadline). The child loads NVML, performs the one request (init, probe a device, read or
// write a setting), prints one JSON answer line and leaves with _exit (no nvmlShutdown, no
// destructor after the answer). Before each NVML call it writes "call <function>" to stderr, so
// that the parent names the call that hung or crashed.
//
// A child that does not answer within the deadline (a hung nvmlInit_v2), dies by a signal (a
// crash in the library) or prints no answer marks NVML broken for the rest of this process:
// every later call answers that error at once instead of waiting the deadline again, and
// SystemControl turns to nvidia-smi for NVML settings.
#pragma once

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "enforce/nvidia_control.h"
#include "util/lib_loader.h"
#include "util/runner.h"

namespace grey {

class IsolatedNvmlControl : public NvmlAccess {
 public:
  IsolatedNvmlControl(Runner& runner, std::string exe, std::chrono::milliseconds timeout)
      : runner_(runner), exe_(std::move(exe)), timeout_(timeout) {}

  // One child that only loads and initializes NVML (cached after the first answer).
  [[nodiscard]] std::string available() override;
  void probe(DeviceState& state) override;
  [[nodiscard]] ReadResult read(const SettingRef& ref) override;
  [[nodiscard]] std::string write(const SettingRef& ref, const std::string& value) override;
  std::string broken() const override { return broken_; }
  // One child probes all these devices; probe() answers from its answer (each once).
  void prefetch(const std::vector<std::string>& bus_ids) override;
  // How many child processes were started (tests: a broken NVML is not tried again).
  int children_started() const { return children_; }

 private:
  // Runs one request; the answer object, or nullopt with *error set (and broken_ when the
  // child hung, crashed or printed no answer).
  [[nodiscard]] std::optional<nlohmann::json> call(const nlohmann::json& request,
                                                   std::string* error);

  Runner& runner_;
  std::string exe_;
  std::chrono::milliseconds timeout_;
  std::string broken_;
  std::optional<std::string> available_;
  std::map<std::string, nlohmann::json> prefetched_;  // bus id -> probe answer
  int children_ = 0;
};

// The `__control REQUEST` side: performs the request with an in-process NvmlControl and prints
// the answer as one JSON line. 0 when an answer was printed, 2 for a request it cannot parse.
int run_control_child(const std::string& request, std::ostream& out);

// What the parent makes of a finished child (exposed for tests): the answer object, or nullopt
// with *error saying why ("NVML did not answer within 1 s (nvmlInit_v2 hung)...").
[[nodiscard]] std::optional<nlohmann::json> parse_control_result(const CommandResult& r,
                                                                 std::chrono::milliseconds timeout,
                                                                 std::string* error);

// "" when NVML can be loaded into THIS process without risk as far as one isolated init (and
// device count) shows, else why not (hung or crashed in a child). An NVML that is merely absent
// or answers an error is no risk. Used before in-process NVML telemetry.
[[nodiscard]] std::string nvml_in_process_risk(Runner& runner, const std::string& exe,
                                               std::chrono::milliseconds timeout);

// A LibLoader that refuses one soname with a reason and passes the rest to `inner`.
class RefusingLoader : public LibLoader {
 public:
  RefusingLoader(std::shared_ptr<LibLoader> inner, std::string soname, std::string why)
      : inner_(std::move(inner)), soname_(std::move(soname)), why_(std::move(why)) {}
  LoadResult load(const std::string& soname, const std::string& env_override) override;

 private:
  std::shared_ptr<LibLoader> inner_;
  std::string soname_, why_;
};

}  // namespace grey
