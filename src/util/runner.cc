#include "util/runner.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "util/strings.h"

extern char** environ;

namespace grey {

namespace {

using Clock = std::chrono::steady_clock;

bool is_executable(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0;
}

}  // namespace

std::string find_on_path(const std::string& prog) {
  if (prog.find('/') != std::string::npos) return is_executable(prog) ? prog : "";
  const char* path = std::getenv("PATH");
  std::string p = path ? path : "/usr/local/bin:/usr/bin:/bin";
  for (auto dir : split(p, ':')) {
    std::string cand = (dir.empty() ? std::string(".") : std::string(dir)) + "/" + prog;
    if (is_executable(cand)) return cand;
  }
  return "";
}

std::string join_argv(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) {
    if (!s.empty()) s += ' ';
    bool plain = !a.empty() && a.find_first_of(" \t\"'\\$") == std::string::npos;
    s += plain ? a : "'" + a + "'";
  }
  return s;
}

std::string CommandResult::describe_failure() const {
  if (!started) return error;
  std::string first_err;
  for (auto line : split_lines(err)) {
    if (!trim(line).empty()) {
      first_err = std::string(trim(line));
      break;
    }
  }
  if (first_err.empty()) {
    for (auto line : split_lines(out)) {
      if (!trim(line).empty()) {
        first_err = std::string(trim(line));
        break;
      }
    }
  }
  if (first_err.size() > 200) first_err = first_err.substr(0, 200) + "...";
  std::string what;
  if (timed_out)
    what = "timed out after " + std::to_string(static_cast<long>(duration_ms)) + " ms (killed)";
  else if (signal != 0)
    what = std::string("killed by signal ") + strsignal(signal);
  else
    what = "exit code " + std::to_string(exit_code);
  if (!first_err.empty() && !timed_out) what += ": " + first_err;
  return what;
}

CommandResult PosixRunner::run(const std::vector<std::string>& argv, const RunOptions& opt) {
  CommandResult r;
  auto t0 = Clock::now();
  auto finish = [&] {
    r.duration_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    return r;
  };
  if (argv.empty()) {
    r.error = "empty command";
    return finish();
  }
  std::string exe = find_on_path(argv[0]);
  if (exe.empty()) {
    r.error = argv[0] + ": not found on PATH";
    return finish();
  }

  // Everything the child needs is prepared before fork: after fork in a threaded process
  // only async-signal-safe calls are allowed.
  std::vector<std::string> env_store;
  for (char** e = environ; e && *e; ++e) {
    std::string_view kv(*e);
    if (starts_with(kv, "LC_ALL=") || starts_with(kv, "LANG=") || starts_with(kv, "LANGUAGE="))
      continue;
    bool overridden = false;
    for (const auto& [k, v] : opt.extra_env)
      if (starts_with(kv, k + "=")) overridden = true;
    if (!overridden) env_store.emplace_back(kv);
  }
  env_store.emplace_back("LC_ALL=C");
  env_store.emplace_back("LANG=C");
  for (const auto& [k, v] : opt.extra_env) env_store.push_back(k + "=" + v);
  std::vector<char*> envp, args;
  for (auto& s : env_store) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_store = argv;
  for (auto& s : argv_store) args.push_back(s.data());
  args.push_back(nullptr);

  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) {
    r.error = std::string("pipe: ") + std::strerror(errno);
    return finish();
  }
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    r.error = std::string("pipe: ") + std::strerror(errno);
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    return finish();
  }
  pid_t pid = ::fork();
  if (pid < 0) {
    r.error = std::string("fork: ") + std::strerror(errno);
    for (int fd : {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]}) ::close(fd);
    return finish();
  }
  if (pid == 0) {
    ::setpgid(0, 0);
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::dup2(out_pipe[1], 1);
    ::dup2(err_pipe[1], 2);
    ::execve(exe.c_str(), args.data(), envp.data());
    _exit(127);
  }
  ::setpgid(pid, pid);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  r.started = true;

  auto deadline = t0 + opt.timeout;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  int open_fds = 2;
  bool exited = false;
  int status = 0;
  char buf[65536];
  while (open_fds > 0) {
    auto now = Clock::now();
    if (now >= deadline) {
      r.timed_out = true;
      break;
    }
    int wait_ms = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count() + 1);
    if (exited) wait_ms = std::min(wait_ms, 50);  // grandchildren may hold the pipes open
    int n = ::poll(fds, 2, wait_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (n == 0) {
      if (exited) break;
      continue;
    }
    for (auto& p : fds) {
      if (p.fd < 0 || !(p.revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t got = ::read(p.fd, buf, sizeof buf);
      if (got <= 0) {
        if (got < 0 && errno == EINTR) continue;
        ::close(p.fd);
        p.fd = -1;
        --open_fds;
        continue;
      }
      std::string& dst = (&p == &fds[0]) ? r.out : r.err;
      size_t room = opt.output_cap > dst.size() ? opt.output_cap - dst.size() : 0;
      dst.append(buf, std::min(room, static_cast<size_t>(got)));
      if (static_cast<size_t>(got) > room) r.truncated = true;
    }
    if (r.truncated) break;  // a runaway producer: stop it rather than read forever
    if (!exited) {
      // Peek without reaping: the zombie keeps its pid (and so the group id) reserved until
      // we have killed whatever it left in its process group.
      siginfo_t si{};
      if (::waitid(P_PID, static_cast<id_t>(pid), &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
          si.si_pid == pid)
        exited = true;
    }
  }
  for (auto& p : fds)
    if (p.fd >= 0) ::close(p.fd);
  if (r.timed_out || r.truncated || exited) {
    // Not yet reaped, so the group id cannot belong to anyone else: whatever the command
    // (or what it left behind) is still doing goes.
    ::kill(-pid, SIGKILL);
  } else {
    // The pipes closed: the child is finishing. It still gets only its deadline.
    bool done = false;
    while (!done && Clock::now() < deadline) {
      siginfo_t si{};
      if (::waitid(P_PID, static_cast<id_t>(pid), &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
          si.si_pid == pid)
        done = true;
      else
        ::usleep(1000);
    }
    if (!done) r.timed_out = true;
    ::kill(-pid, SIGKILL);
  }
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) {
    r.exit_code = WEXITSTATUS(status);
    if (r.exit_code == 127 && r.out.empty() && r.err.empty()) r.error = exe + ": exec failed";
  } else if (WIFSIGNALED(status)) {
    r.signal = WTERMSIG(status);
  }
  return finish();
}

}  // namespace grey
