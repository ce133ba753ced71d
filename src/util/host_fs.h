// Every file, sysfs and procfs read goes through HostFs, rooted so that a container that
// mounts the host's /sys elsewhere (or a test, or a replay) can point it somewhere else.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace grey {

class HostFs {
 public:
  virtual ~HostFs() = default;
  // Absolute host paths ("/sys/class/drm/card0/device/vendor"). Reads stop at `cap` bytes.
  virtual std::optional<std::string> read(const std::string& path, size_t cap = 1 << 20) = 0;
  // Entry names of a directory, sorted; empty if absent.
  virtual std::vector<std::string> list(const std::string& dir) = 0;
  virtual bool exists(const std::string& path) = 0;
  // Target of a symlink (as written); nullopt if not a link.
  virtual std::optional<std::string> read_link(const std::string& path) = 0;
  // Where a host path really lives (for notes and capture).
  virtual std::string real_path(const std::string& path) = 0;
  // Writes (sysfs knobs). Returns an error message, empty on success.
  [[nodiscard]] virtual std::string write(const std::string& path, const std::string& value) = 0;
};

// Maps /sys/... to sys_root/... and /proc/... to proc_root/...; other paths unchanged.
class RootedFs : public HostFs {
 public:
  RootedFs(std::string sys_root = "/sys", std::string proc_root = "/proc");
  std::optional<std::string> read(const std::string& path, size_t cap) override;
  std::vector<std::string> list(const std::string& dir) override;
  bool exists(const std::string& path) override;
  std::optional<std::string> read_link(const std::string& path) override;
  std::string real_path(const std::string& path) override;
  [[nodiscard]] std::string write(const std::string& path, const std::string& value) override;
  const std::string& sys_root() const { return sys_root_; }
  const std::string& proc_root() const { return proc_root_; }

 private:
  std::string sys_root_, proc_root_;
};

// A door that forwards to another and records every path it is asked about (read, list,
// exists, read_link, write), in order. Tests use it to prove what was (not) touched.
class RecordingFs : public HostFs {
 public:
  explicit RecordingFs(HostFs& inner) : inner_(inner) {}
  std::optional<std::string> read(const std::string& path, size_t cap) override;
  std::vector<std::string> list(const std::string& dir) override;
  bool exists(const std::string& path) override;
  std::optional<std::string> read_link(const std::string& path) override;
  std::string real_path(const std::string& path) override { return inner_.real_path(path); }
  [[nodiscard]] std::string write(const std::string& path, const std::string& value) override;
  const std::vector<std::string>& paths() const { return paths_; }
  // True if any recorded path starts with `prefix`.
  bool touched(const std::string& prefix) const;

 private:
  HostFs& inner_;
  std::vector<std::string> paths_;
};

}  // namespace grey
