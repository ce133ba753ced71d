#include "detect/capture.h"

#include <unistd.h>

#include <filesystem>

#include "util/json_util.h"
#include "util/state_dir.h"
#include "util/strings.h"

namespace grey {

namespace {
std::string mkparents(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  return ec ? ec.message() : "";
}
}  // namespace

void DirCapture::command(const std::string& file_name, const std::vector<std::string>& argv,
                         const CommandResult& r) {
  nlohmann::json e;
  e["file"] = file_name;
  e["argv"] = argv;
  e["started"] = r.started;
  e["exit_code"] = r.started ? nlohmann::json(r.exit_code) : nlohmann::json(nullptr);
  e["signal"] = r.signal;
  e["timed_out"] = r.timed_out;
  e["truncated"] = r.truncated;
  e["duration_ms"] = r.duration_ms;
  if (!r.error.empty()) e["error"] = r.error;
  std::string err_head = r.err.substr(0, 4096);
  e["stderr_head"] = err_head;
  std::string err;
  if (r.started) {
    const std::string& body = r.out.empty() ? r.err : r.out;
    err = write_file_atomic(dir_ + "/" + file_name, body, 0644);
  }
  std::lock_guard<std::mutex> lk(mu_);
  if (!err.empty()) errors_.push_back(err);
  e["saved"] = r.started && err.empty();
  entries_.push_back(std::move(e));
}

std::string DirCapture::finish(const nlohmann::json& extra) {
  nlohmann::json m = extra;
  {
    std::lock_guard<std::mutex> lk(mu_);
    m["commands"] = entries_;
  }
  return write_file_atomic(dir_ + "/manifest.json", dump_json(m, 2) + "\n", 0644);
}

std::vector<std::string> DirCapture::errors() const {
  std::lock_guard<std::mutex> lk(mu_);
  return errors_;
}

std::optional<std::string> CapturingFs::read(const std::string& path, size_t cap) {
  auto v = inner_->read(path, cap);
  if (v && (starts_with(path, "/sys/") || starts_with(path, "/proc/"))) {
    std::string dst = dir_ + path;
    std::lock_guard<std::mutex> lk(mu_);
    if (mkparents(dst).empty() && write_file_atomic(dst, *v, 0644).empty()) ++copied_;
  }
  return v;
}

std::optional<std::string> CapturingFs::read_link(const std::string& path) {
  auto v = inner_->read_link(path);
  // Links other than the device link are kept as links (their target names the driver);
  // the device link becomes a plain directory holding the copied files.
  if (v && starts_with(path, "/sys/") && !ends_with(path, "/device")) {
    std::string dst = dir_ + path;
    std::lock_guard<std::mutex> lk(mu_);
    if (mkparents(dst).empty()) {
      ::unlink(dst.c_str());
      if (::symlink(v->c_str(), dst.c_str()) == 0) ++copied_;
    }
  }
  return v;
}

size_t CapturingFs::files_copied() const {
  std::lock_guard<std::mutex> lk(mu_);
  return copied_;
}

}  // namespace grey
