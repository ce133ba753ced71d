// Every external command goes through a Runner: argv only (never a shell), LC_ALL=C, a
// deadline after which the whole process group is killed, and capped output.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace grey {

struct CommandResult {
  bool started = false;    // false: not found / not executable (see error)
  int exit_code = -1;      // valid when exited normally
  int signal = 0;          // terminating signal, 0 if none
  bool timed_out = false;  // killed because the deadline passed
  bool truncated = false;  // output exceeded the cap and was cut
  std::string out;         // stdout
  std::string err;         // stderr
  std::string error;       // why it could not start ("not found on PATH", strerror)
  double duration_ms = 0;
  bool ok() const { return started && !timed_out && signal == 0 && exit_code == 0; }
  // One line for notes: "exit code 255: Failed to initialize NVML: ...".
  std::string describe_failure() const;
};

struct RunOptions {
  std::chrono::milliseconds timeout{5000};
  size_t output_cap = 16u << 20;
  std::map<std::string, std::string> extra_env;
};

class Runner {
 public:
  virtual ~Runner() = default;
  [[nodiscard]] virtual CommandResult run(const std::vector<std::string>& argv,
                                          const RunOptions& opt) = 0;
};

// fork/exec with its own process group; PATH lookup done here (no shell).
class PosixRunner : public Runner {
 public:
  [[nodiscard]] CommandResult run(const std::vector<std::string>& argv,
                                  const RunOptions& opt) override;
};

// Resolves a program name on $PATH (or returns it unchanged if it contains '/').
std::string find_on_path(const std::string& prog);

std::string join_argv(const std::vector<std::string>& argv);

}  // namespace grey
