// detect: runs every source concurrently under one deadline, classifies software devices,
// and merges what is left into one record per physical GPU.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sources/source.h"

namespace grey {

struct DetectOptions {
  std::chrono::milliseconds timeout{5000};
  std::optional<std::string> replay_dir;
  CaptureSink* capture = nullptr;
};

struct DetectEnv {
  std::shared_ptr<Runner> runner;
  std::shared_ptr<HostFs> fs;
  std::shared_ptr<LibLoader> loader;
};

struct DetectionResult {
  std::vector<GpuSpec> gpus;
  std::vector<SourceReport> reports;  // one per source, registry order
  std::vector<IgnoredDevice> ignored;
  std::vector<std::string> notes;
  double duration_ms = 0;
  std::string timestamp;
  // A source was still running when the deadline passed (a blocked library call). Its
  // thread is abandoned; the process should leave with _exit once output is written.
  bool abandoned_work = false;
};

[[nodiscard]] DetectionResult run_detection(std::vector<std::unique_ptr<Source>> sources,
                                            const DetectEnv& env, const DetectOptions& opt);

// Pure: merge the sources' observations (authority: higher wins per field).
std::vector<GpuSpec> merge_reports(const std::vector<SourceReport>& reports,
                                   const std::map<std::string, int>& authority,
                                   std::vector<IgnoredDevice>* ignored,
                                   const std::string& timestamp);

}  // namespace grey
