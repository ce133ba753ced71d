#include "util/host_fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace grey {

namespace {
bool has_prefix(const std::string& p, const char* pre) {
  size_t n = std::strlen(pre);
  return p.compare(0, n, pre) == 0 && (p.size() == n || p[n] == '/');
}
}  // namespace

RootedFs::RootedFs(std::string sys_root, std::string proc_root)
    : sys_root_(std::move(sys_root)), proc_root_(std::move(proc_root)) {
  while (sys_root_.size() > 1 && sys_root_.back() == '/') sys_root_.pop_back();
  while (proc_root_.size() > 1 && proc_root_.back() == '/') proc_root_.pop_back();
}

std::string RootedFs::real_path(const std::string& path) {
  if (has_prefix(path, "/sys")) return sys_root_ + path.substr(4);
  if (has_prefix(path, "/proc")) return proc_root_ + path.substr(5);
  return path;
}

std::optional<std::string> RootedFs::read(const std::string& path, size_t cap) {
  std::string real = real_path(path);
  int fd = ::open(real.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return std::nullopt;
  std::string out;
  char buf[4096];
  while (out.size() < cap) {
    ssize_t n = ::read(fd, buf, std::min(sizeof buf, cap - out.size()));
    if (n < 0) {
      if (errno == EINTR) continue;
      ::close(fd);
      // A sysfs attribute that refuses to be read (EIO, EPERM, ENODEV) is "absent".
      return out.empty() ? std::nullopt : std::optional<std::string>(out);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

std::vector<std::string> RootedFs::list(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(real_path(dir).c_str());
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    out.emplace_back(e->d_name);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

bool RootedFs::exists(const std::string& path) {
  struct stat st;
  return ::stat(real_path(path).c_str(), &st) == 0;
}

std::optional<std::string> RootedFs::read_link(const std::string& path) {
  char buf[4096];
  ssize_t n = ::readlink(real_path(path).c_str(), buf, sizeof buf - 1);
  if (n < 0) return std::nullopt;
  return std::string(buf, static_cast<size_t>(n));
}

std::string RootedFs::write(const std::string& path, const std::string& value) {
  std::string real = real_path(path);
  int fd = ::open(real.c_str(), O_WRONLY | O_CLOEXEC | O_TRUNC);
  if (fd < 0) return real + ": " + std::strerror(errno);
  ssize_t n = ::write(fd, value.data(), value.size());
  int err = errno;
  ::close(fd);
  if (n < 0) return real + ": " + std::strerror(err);
  if (static_cast<size_t>(n) != value.size()) return real + ": short write";
  return "";
}

std::optional<std::string> RecordingFs::read(const std::string& path, size_t cap) {
  paths_.push_back(path);
  return inner_.read(path, cap);
}

std::vector<std::string> RecordingFs::list(const std::string& dir) {
  paths_.push_back(dir);
  return inner_.list(dir);
}

bool RecordingFs::exists(const std::string& path) {
  paths_.push_back(path);
  return inner_.exists(path);
}

std::optional<std::string> RecordingFs::read_link(const std::string& path) {
  paths_.push_back(path);
  return inner_.read_link(path);
}

std::string RecordingFs::write(const std::string& path, const std::string& value) {
  paths_.push_back(path);
  return inner_.write(path, value);
}

bool RecordingFs::touched(const std::string& prefix) const {
  for (const std::string& p : paths_)
    if (p.compare(0, prefix.size(), prefix) == 0) return true;
  return false;
}

}  // namespace grey
