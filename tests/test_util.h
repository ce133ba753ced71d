// Helpers shared by the tests: fixture paths, temporary directories, file I/O.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "util/runner.h"

namespace grey::test {

// Runs the built grey-gpu-opt (GREY_BINARY) with `args`, `env` added to this process's
// environment, killed after `limit`.
CommandResult run_grey(const std::vector<std::string>& args,
                       const std::map<std::string, std::string>& env,
                       std::chrono::milliseconds limit = std::chrono::seconds(60));

// Absolute path of a fixture copied into tests/fixtures ("nvidia-smi-xml/x.xml").
std::string fixture_path(const std::string& rel);
// Whole file as bytes; fails the current test if unreadable.
std::string read_fixture(const std::string& rel);
std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& content, int mode = 0644);

// A fresh directory under $TMPDIR removed when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

 private:
  std::string path_;
};

}  // namespace grey::test
