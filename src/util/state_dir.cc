#include "util/state_dir.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/file.h>
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
  // Read access too: the last byte is looked at before writing. Never through a symlink.
  int fd = ::open(path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    if (errno == ELOOP)
      return "refusing to append to " + path +
             ": it is a symbolic link (a link could redirect our writes elsewhere)";
    return errstr("open " + path, errno);
  }
  auto fail = [&](const std::string& what) {
    int e = errno;
    ::close(fd);
    return errstr(what, e);
  };
  // One appender at a time, so that the end we look at is the end we write after.
  while (::flock(fd, LOCK_EX) != 0) {
    if (errno != EINTR) return fail("lock " + path);
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) return fail("stat " + path);
  std::string l;
  l.reserve(line.size() + 2);
  if (st.st_size > 0) {
    char last = 0;
    ssize_t n;
    do {
      n = ::pread(fd, &last, 1, st.st_size - 1);
    } while (n < 0 && errno == EINTR);
    if (n != 1) {
      if (n == 0) errno = EIO;
      return fail("read the last byte of " + path);
    }
    if (last != '\n') l += '\n';  // terminate a torn line instead of gluing onto it
  }
  l += line;
  if (line.empty() || line.back() != '\n') l += '\n';
  if (!write_all(fd, l) || ::fsync(fd) != 0) {
    int e = errno;
    // Under the lock nothing else was appended since: cut our partial line back off.
    if (::ftruncate(fd, st.st_size) == 0) ::fsync(fd);
    ::close(fd);
    return errstr("append to " + path, e);
  }
  if (::close(fd) != 0) return errstr("close " + path, errno);
  return "";
}

std::string read_lines(
    const std::string& path, size_t max_line,
    const std::function<bool(std::string_view text, long line_number, LineKind kind)>& on_line) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errstr(path, errno);
  std::vector<char> buf(1u << 16);
  std::string cur;  // the line so far when it spans reads
  bool too_long = false;
  long line_no = 0;
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      return errstr("read " + path + " (after line " + std::to_string(line_no) + ")", e);
    }
    if (n == 0) break;
    const char* p = buf.data();
    const char* end = p + n;
    while (p < end) {
      const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
      size_t len = static_cast<size_t>((nl ? nl : end) - p);
      bool go = true;
      if (nl && cur.empty() && !too_long && len <= max_line) {
        go = on_line(std::string_view(p, len), ++line_no, LineKind::kComplete);  // no copy
      } else {
        if (!too_long) {
          if (cur.size() + len > max_line) {
            cur.append(p, max_line - cur.size());
            too_long = true;
          } else {
            cur.append(p, len);
          }
        }
        if (!nl) break;
        go = on_line(cur, ++line_no, too_long ? LineKind::kTooLong : LineKind::kComplete);
        cur.clear();
        too_long = false;
      }
      if (!go) {
        ::close(fd);
        return "";
      }
      p = nl + 1;
    }
  }
  ::close(fd);
  if (!cur.empty() || too_long)
    on_line(cur, ++line_no, too_long ? LineKind::kTooLong : LineKind::kUnterminated);
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
