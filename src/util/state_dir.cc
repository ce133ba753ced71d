#include "util/state_dir.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

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

std::string base_of(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string mode_text(mode_t m) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(m & 07777));
  return buf;
}

std::string type_text(mode_t m) {
  if (S_ISLNK(m)) return "symbolic link";
  if (S_ISFIFO(m)) return "FIFO";
  if (S_ISSOCK(m)) return "socket";
  if (S_ISCHR(m)) return "character device";
  if (S_ISBLK(m)) return "block device";
  if (S_ISDIR(m)) return "directory";
  return "special file";
}

// The reason `st` (of `path`) is not acceptable under `trust`, empty when it is.
std::string judge(const std::string& path, const struct stat& st, FileTrust trust) {
  const std::string head = "refusing " + path + ": ";
  if (S_ISLNK(st.st_mode))
    return head + "it is a symbolic link (a state file is never opened through a link)";
  if (!S_ISREG(st.st_mode))
    return head + "it is not a regular file (" + type_text(st.st_mode) + ")";
  const uid_t me = ::geteuid();
  const bool state = trust == FileTrust::kState || trust == FileTrust::kConfig;
  const bool config = trust == FileTrust::kConfig || trust == FileTrust::kUserConfig;
  if ((state && st.st_uid != me) ||
      (trust == FileTrust::kUserConfig && st.st_uid != me && st.st_uid != 0))
    return head + "it is owned by uid " + std::to_string(st.st_uid) + ", not by us (uid " +
           std::to_string(me) + ")";
  if (config && (st.st_mode & 0022) != 0)
    return head + "it is writable by other users (mode " + mode_text(st.st_mode) +
           "); chmod go-w it if its content is yours";
  return "";
}

// Ancestors of `dir` (absolute form) that exist, outermost first, `dir` itself excluded.
std::string check_parents(const std::string& dir) {
  std::string abs = dir;
  if (abs.empty() || abs[0] != '/') {
    std::vector<char> cwd(4096);
    if (!::getcwd(cwd.data(), cwd.size())) return errstr("getcwd", errno);
    abs = std::string(cwd.data()) + "/" + abs;
  }
  while (abs.size() > 1 && abs.back() == '/') abs.pop_back();
  const uid_t me = ::geteuid();
  for (size_t pos = abs.find('/'); pos != std::string::npos && pos < abs.size();
       pos = abs.find('/', pos + 1)) {
    std::string p = pos == 0 ? "/" : abs.substr(0, pos);
    struct stat st;
    if (::stat(p.c_str(), &st) != 0) {
      if (errno == ENOENT) break;  // the rest is created by us
      return errstr("parent directory " + p, errno);
    }
    if (!S_ISDIR(st.st_mode)) continue;  // mkdir below reports it
    if ((st.st_mode & 0022) != 0 && (st.st_mode & S_ISVTX) == 0)
      return "refusing state directory " + dir + ": its parent " + p +
             " is writable by other users (mode " + mode_text(st.st_mode) +
             ") without the sticky bit, so they could replace it; use a directory below "
             "parents only you (or root) can change, or set GREY_CONFIG_DIR";
    if (st.st_uid != me && st.st_uid != 0)
      return "refusing state directory " + dir + ": its parent " + p + " is owned by uid " +
             std::to_string(st.st_uid) +
             ", who could replace it; set GREY_CONFIG_DIR to a "
             "directory of ours";
  }
  return "";
}

}  // namespace

int open_checked(const std::string& path, int flags, FileTrust trust, std::string* error) {
  const bool state = trust == FileTrust::kState || trust == FileTrust::kConfig;
  auto fail = [&](const std::string& msg, int e) {
    if (error) *error = msg;
    errno = e;
    return -1;
  };
  // Look before opening: a FIFO or device is never opened at all when it is there already.
  struct stat st;
  if ((state ? ::lstat(path.c_str(), &st) : ::stat(path.c_str(), &st)) == 0) {
    if (std::string why = judge(path, st, trust); !why.empty()) return fail(why, EPERM);
  } else if (errno != ENOENT || (flags & O_CREAT) == 0) {
    return fail(errstr(path, errno), errno);
  }
  // ...and check what was opened: O_NONBLOCK so that a FIFO swapped in meanwhile cannot hang us.
  int f = flags | O_CLOEXEC | O_NONBLOCK | (state ? O_NOFOLLOW : 0);
  int fd = ::open(path.c_str(), f, 0600);
  if (fd < 0) {
    int e = errno;
    if (e == ELOOP && state && ::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode))
      return fail(judge(path, st, trust), e);
    if (e == ENXIO && ::lstat(path.c_str(), &st) == 0) return fail(judge(path, st, trust), e);
    return fail(errstr(path, e), e);
  }
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return fail(errstr(path, e), e);
  }
  if (std::string why = judge(path, st, trust); !why.empty()) {
    ::close(fd);
    return fail(why, EPERM);
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return fd;
}

std::optional<std::string> read_file_checked(const std::string& path, FileTrust trust,
                                             std::string* error, size_t cap, bool* missing) {
  if (missing) *missing = false;
  int fd = open_checked(path, O_RDONLY, trust, error);
  if (fd < 0) {
    if (missing && errno == ENOENT) *missing = true;
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

int create_temp_file(const std::string& path, int mode, std::string* tmp_path, std::string* error) {
  static constexpr char kChars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  const std::string dir = dir_of(path);
  const std::string prefix =
      (path.find('/') == std::string::npos ? "" : dir + "/") + "." + base_of(path) + ".tmp.";
  for (int attempt = 0; attempt < 100; ++attempt) {
    unsigned char rnd[12];
    size_t got = 0;
    while (got < sizeof rnd) {
      ssize_t n = ::getrandom(rnd + got, sizeof rnd - got, 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (error) *error = errstr("getrandom", errno);
        return -1;
      }
      got += static_cast<size_t>(n);
    }
    std::string name = prefix;
    for (unsigned char c : rnd) name += kChars[c % (sizeof kChars - 1)];
    int fd = ::open(name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                    static_cast<mode_t>(mode & 0777));
    if (fd < 0) {
      if (errno == EEXIST) continue;
      if (error) *error = errstr("cannot create a temporary file next to " + path, errno);
      return -1;
    }
    if (::fchmod(fd, static_cast<mode_t>(mode & 0777)) != 0) {
      int e = errno;
      ::close(fd);
      ::unlink(name.c_str());
      if (error) *error = errstr("fchmod " + name, e);
      return -1;
    }
    if (tmp_path) *tmp_path = name;
    return fd;
  }
  if (error) *error = "cannot create a temporary file next to " + path + ": every name was taken";
  errno = EEXIST;
  return -1;
}

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

std::string ensure_state_dir(const std::string& dir) {
  if (dir.empty()) return "the state directory path is empty; set GREY_CONFIG_DIR or HOME";
  // Parents first, so that nothing is created below a directory someone else can steer.
  if (std::string e = check_parents(dir); !e.empty()) return e;
  struct stat st;
  if (::lstat(dir.c_str(), &st) != 0) {
    if (errno != ENOENT) return errstr("state directory " + dir, errno);
    std::string parent = dir_of(dir);
    struct stat pst;
    if (parent != dir && ::lstat(parent.c_str(), &pst) != 0) {
      std::string perr = ensure_state_dir(parent);
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
  if ((st.st_mode & 0022) != 0)
    return "refusing state directory " + dir + ": it is writable by other users (mode " +
           mode_text(st.st_mode) +
           "), who could plant files in it; its permissions are left as they are. Use a "
           "private directory (chmod 0700 it if it is yours) or set GREY_CONFIG_DIR";
  return "";
}

namespace {

std::string replace_with_parts(const std::string& path, const std::vector<std::string_view>& parts,
                               int mode, bool durable) {
  std::string dir = dir_of(path);
  struct stat dst;
  if (::lstat(path.c_str(), &dst) == 0 && !S_ISREG(dst.st_mode))
    return judge(path, dst, FileTrust::kAny) + "; it was not replaced";
  std::string tmpl, terr;
  int fd = create_temp_file(path, mode, &tmpl, &terr);
  if (fd < 0) return terr;
  auto fail = [&](const std::string& what) {
    int e = errno;
    ::close(fd);
    ::unlink(tmpl.c_str());
    return errstr(what, e);
  };
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
  if (durable && ::fsync(fd) != 0) return fail("fsync " + tmpl);
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
  if (!durable) return "";
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return "";
}

}  // namespace

std::string write_file_atomic_parts(const std::string& path,
                                    const std::vector<std::string_view>& parts, int mode) {
  return replace_with_parts(path, parts, mode, true);
}

std::string write_file_replace(const std::string& path, const std::string& content, int mode) {
  return replace_with_parts(path, {std::string_view(content)}, mode, false);
}

std::string write_file_atomic(const std::string& path, const std::string& content, int mode) {
  return write_file_atomic_parts(path, {std::string_view(content)}, mode);
}

std::string append_line_synced(const std::string& path, const std::string& line) {
  // Read access too: the last byte is looked at before writing. Never through a symlink, and
  // only to a regular file of ours (open_checked).
  std::string refused;
  int fd = open_checked(path, O_RDWR | O_APPEND | O_CREAT, FileTrust::kState, &refused);
  if (fd < 0) return "cannot append to " + path + ": " + refused;
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
  // A state file (the journal): never through a symlink, never blocking on a FIFO.
  std::string refused;
  int fd = open_checked(path, O_RDONLY, FileTrust::kState, &refused);
  if (fd < 0) return refused;
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
  return read_file_checked(path, FileTrust::kAny, error, cap);
}

}  // namespace grey
