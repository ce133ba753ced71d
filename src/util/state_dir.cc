#include "util/state_dir.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace grey {

namespace {

std::string errstr(const std::string& what, int err) {
  return what + ": " + std::strerror(err);
}

std::string dir_of(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

bool write_all(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::write(fd, s.data() + off, s.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    off += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

std::string default_state_dir() {
  const char* env = std::getenv("GREY_CONFIG_DIR");
  if (env && *env) return env;
  const char* home = std::getenv("HOME");
  std::string h;
  if (home && *home) {
    h = home;
  } else if (passwd* pw = ::getpwuid(::geteuid())) {
    h = pw->pw_dir;
  } else {
    h = "/root";
  }
  return h + "/.grey_optimizer";
}

std::string ensure_state_dir(const std::string& dir, bool* fixed) {
  if (fixed) *fixed = false;
  struct stat st;
  if (::lstat(dir.c_str(), &st) != 0) {
    if (errno != ENOENT) return errstr("state directory " + dir, errno);
    // Create parents as needed (0700 for the last component only).
    std::string parent = dir_of(dir);
    struct stat pst;
    if (parent != dir && ::stat(parent.c_str(), &pst) != 0) {
      std::string perr = ensure_state_dir(parent, nullptr);
      if (!perr.empty()) return perr;
    }
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
      return errstr("cannot create state directory " + dir, errno);
    if (::lstat(dir.c_str(), &st) != 0) return errstr("state directory " + dir, errno);
  }
  if (S_ISLNK(st.st_mode))
    return "refusing state directory " + dir +
           ": it is a symbolic link (a link could redirect our writes elsewhere); use a real "
           "directory or set GREY_CONFIG_DIR";
  if (!S_ISDIR(st.st_mode)) return "state directory " + dir + " exists but is not a directory";
  if (st.st_uid != ::geteuid())
    return "refusing state directory " + dir + ": it is owned by uid " + std::to_string(st.st_uid) +
           ", not by us (uid " + std::to_string(::geteuid()) + ")";
  if ((st.st_mode & 0077) != 0) {
    if (::chmod(dir.c_str(), 0700) != 0) return errstr("chmod 0700 " + dir, errno);
    if (fixed) *fixed = true;
  }
  return "";
}

std::string write_file_atomic_parts(const std::string& path,
                                    const std::vector<std::string_view>& parts, int mode) {
  std::string dir = dir_of(path);
  std::string tmpl = path + ".tmp.XXXXXX";
  int fd = ::mkstemp(tmpl.data());
  if (fd < 0) return errstr("cannot create a temporary file next to " + path, errno);
  auto fail = [&](const std::string& what) {
    int e = errno;
    ::close(fd);
    ::unlink(tmpl.c_str());
    return errstr(what, e);
  };
  if (::fchmod(fd, static_cast<mode_t>(mode)) != 0) return fail("fchmod " + tmpl);
  constexpr size_t kBatch = 256;  // well under IOV_MAX
  iovec iov[kBatch];
  size_t next = 0;
  while (next < parts.size()) {
    size_t n = 0;
    for (; n < kBatch && next < parts.size(); ++next) {
      if (parts[next].empty()) continue;  // so that writing 0 bytes below means an error
      iov[n].iov_base = const_cast<char*>(parts[next].data());
      iov[n].iov_len = parts[next].size();
      ++n;
    }
    size_t first = 0;
    while (first < n) {
      ssize_t w = ::writev(fd, iov + first, static_cast<int>(n - first));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        if (w == 0) errno = EIO;
        return fail("write " + tmpl);
      }
      auto left = static_cast<size_t>(w);
      while (first < n && left >= iov[first].iov_len) left -= iov[first++].iov_len;
      if (first < n) {
        iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + left;
        iov[first].iov_len -= left;
      }
    }
  }
  if (::fsync(fd) != 0) return fail("fsync " + tmpl);
  if (::close(fd) != 0) {
    int e = errno;
    ::unlink(tmpl.c_str());
    return errstr("close " + tmpl, e);
  }
  if (::rename(tmpl.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmpl.c_str());
    return errstr("rename to " + path, e);
  }
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return "";
}

std::string write_file_atomic(const std::string& path, const std::string& content, int mode) {
  return write_file_atomic_parts(path, {std::string_view(content)}, mode);
}

std::string append_line_synced(const std::string& path, const std::string& line) {
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return errstr("open " + path, errno);
  std::string l = line;
  if (l.empty() || l.back() != '\n') l += '\n';
  if (!write_all(fd, l) || ::fsync(fd) != 0) {
    int e = errno;
    ::close(fd);
    return errstr("append to " + path, e);
  }
  ::close(fd);
  return "";
}

std::optional<std::string> read_whole_file(const std::string& path, std::string* error,
                                           size_t cap) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (error) *error = errstr(path, errno);
    return std::nullopt;
  }
  std::string out;
  char buf[65536];
  while (out.size() < cap) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (error) *error = errstr(path, errno);
      ::close(fd);
      return std::nullopt;
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

}  // namespace grey
