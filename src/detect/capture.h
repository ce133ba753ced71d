// capture DIR: every source's command output (one file each, listed in manifest.json) and a
// copy of every sysfs file detection read under DIR/sys/..., so `detect --replay DIR`
// reproduces the detection elsewhere.
#pragma once

#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "sources/source.h"

namespace grey {

class DirCapture : public CaptureSink {
 public:
  explicit DirCapture(std::string dir) : dir_(std::move(dir)) {}
  void command(const std::string& file_name, const std::vector<std::string>& argv,
               const CommandResult& r) override;
  // Writes manifest.json; error message or empty.
  [[nodiscard]] std::string finish(const nlohmann::json& extra);
  const std::string& dir() const { return dir_; }
  std::vector<std::string> errors() const;

 private:
  std::string dir_;
  mutable std::mutex mu_;
  nlohmann::json entries_ = nlohmann::json::array();
  std::vector<std::string> errors_;
};

// Wraps a HostFs and copies each file it reads into DIR/sys/... or DIR/proc/....
class CapturingFs : public HostFs {
 public:
  CapturingFs(std::shared_ptr<HostFs> inner, std::string dir)
      : inner_(std::move(inner)), dir_(std::move(dir)) {}
  std::optional<std::string> read(const std::string& path, size_t cap) override;
  std::vector<std::string> list(const std::string& dir) override { return inner_->list(dir); }
  bool exists(const std::string& path) override { return inner_->exists(path); }
  std::optional<std::string> read_link(const std::string& path) override;
  std::string real_path(const std::string& path) override { return inner_->real_path(path); }
  [[nodiscard]] std::string write(const std::string&, const std::string&) override {
    return "capture is read-only";
  }
  size_t files_copied() const;

 private:
  std::shared_ptr<HostFs> inner_;
  std::string dir_;
  mutable std::mutex mu_;
  size_t copied_ = 0;
};

}  // namespace grey
