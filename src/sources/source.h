// One interface for every detection source. A source either runs a command (through the
// Runner), reads sysfs (through HostFs) or dlopens a vendor library (through LibLoader), and
// reports what it saw as Observations plus precise notes. It never throws.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "model/gpu_spec.h"
#include "util/host_fs.h"
#include "util/lib_loader.h"
#include "util/runner.h"

namespace grey {

enum class SourceStatus {
  ok,          // ran and found at least one device (GPU or ignored)
  no_devices,  // ran fine and found nothing
  missing,     // tool not installed / library not present
  failed,      // ran but failed (exit code, malformed output, library error)
  timed_out,   // deadline passed
  skipped,     // not applicable (e.g. library probes during --replay)
};
const char* to_string(SourceStatus s);

// What a parser makes of one text: pure, no I/O.
struct ParseResult {
  std::vector<Observation> devices;
  std::vector<IgnoredDevice> ignored;
  std::vector<std::string> notes;
  // False when the text is not this format at all (garbage, an error message, empty). The
  // notes then say what was seen instead ("couldn't communicate with the NVIDIA driver").
  bool recognized = true;
};

struct SourceReport {
  std::string source;
  SourceStatus status = SourceStatus::skipped;
  std::string what;  // command line, library path or sysfs root
  double duration_ms = 0;
  std::vector<Observation> devices;
  std::vector<IgnoredDevice> ignored;
  std::vector<std::string> notes;
};

// Records what a capture run saw: one file per command, named in manifest.json.
class CaptureSink {
 public:
  virtual ~CaptureSink() = default;
  virtual void command(const std::string& file_name, const std::vector<std::string>& argv,
                       const CommandResult& r) = 0;
};

struct SourceContext {
  Runner* runner = nullptr;
  HostFs* fs = nullptr;
  LibLoader* loader = nullptr;
  std::chrono::milliseconds timeout{5000};
  std::optional<std::string> replay_dir;  // read captured files instead of running
  CaptureSink* capture = nullptr;         // capture mode: run every variant and record it
};

class Source {
 public:
  virtual ~Source() = default;
  virtual std::string name() const = 0;
  // Higher wins when two sources disagree on a field.
  virtual int authority() const = 0;
  virtual SourceReport collect(SourceContext& ctx) = 0;
};

using ParseFn = ParseResult (*)(std::string_view);

// A command source tries its variants in order (richest first) and keeps the first that
// yields a recognized answer. In replay it reads `replay_file` from the replay directory.
struct CommandVariant {
  std::vector<std::string> argv;
  std::string replay_file;  // e.g. "nvidia-smi.xml"
  ParseFn parse;
  // For tools that stream until stopped (intel_gpu_top -J): run this long, stop it, and
  // parse what it printed. Zero means "runs to completion".
  std::chrono::milliseconds sample_for{0};
};

class CommandSource : public Source {
 public:
  CommandSource(std::string name, int authority, std::vector<CommandVariant> variants)
      : name_(std::move(name)), authority_(authority), variants_(std::move(variants)) {}
  std::string name() const override { return name_; }
  int authority() const override { return authority_; }
  SourceReport collect(SourceContext& ctx) override;
  const std::vector<CommandVariant>& variants() const { return variants_; }

 private:
  std::string name_;
  int authority_;
  std::vector<CommandVariant> variants_;
};

}  // namespace grey
