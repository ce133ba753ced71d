// Runs a command source's variants (richest first) under the shared deadline, or reads their
// captured output in replay, and keeps the first recognized answer.
#include <filesystem>
#include <fstream>
#include <sstream>

#include "sources/source.h"
#include "util/state_dir.h"
#include "util/strings.h"

namespace grey {

const char* to_string(SourceStatus s) {
  switch (s) {
    case SourceStatus::ok:
      return "ok";
    case SourceStatus::no_devices:
      return "no devices";
    case SourceStatus::missing:
      return "missing";
    case SourceStatus::failed:
      return "failed";
    case SourceStatus::timed_out:
      return "timed out";
    case SourceStatus::skipped:
      return "skipped";
  }
  return "?";
}

namespace {

using Clock = std::chrono::steady_clock;

std::optional<std::string> read_capped(const std::string& path, size_t cap, bool* truncated) {
  // read_whole_file refuses a FIFO or device instead of waiting on it (a replay path is the
  // user's).
  auto read = read_whole_file(path, nullptr, cap + 1);
  if (!read) return std::nullopt;
  std::string data = std::move(*read);
  *truncated = data.size() > cap;
  if (*truncated) data.resize(cap);
  return data;
}

// Notes name the command; a long --query-gpu field list would drown the message.
std::string short_cmd(const std::vector<std::string>& argv) {
  std::string s = join_argv(argv);
  return s.size() > 64 ? s.substr(0, 61) + "..." : s;
}

void absorb(SourceReport& rep, ParseResult&& pr) {
  for (auto& d : pr.devices) rep.devices.push_back(std::move(d));
  for (auto& i : pr.ignored) rep.ignored.push_back(std::move(i));
}

}  // namespace

SourceReport CommandSource::collect(SourceContext& ctx) {
  SourceReport rep;
  rep.source = name_;
  auto t0 = Clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  };
  const size_t cap = 16u << 20;

  if (ctx.replay_dir) {
    std::vector<std::string> tried;
    bool any_file = false;
    for (const auto& v : variants_) {
      std::string path = *ctx.replay_dir + "/" + v.replay_file;
      tried.push_back(v.replay_file);
      bool truncated = false;
      auto text = read_capped(path, cap, &truncated);
      if (!text) continue;
      any_file = true;
      if (rep.what.empty()) rep.what = path;
      ParseResult pr = v.parse(*text);
      if (truncated)
        rep.notes.push_back(v.replay_file + ": larger than 16 MiB; read the first 16 MiB");
      for (auto& n : pr.notes) rep.notes.push_back(v.replay_file + ": " + n);
      if (pr.recognized) {
        rep.what = path;
        absorb(rep, std::move(pr));
        rep.status = (rep.devices.empty() && rep.ignored.empty()) ? SourceStatus::no_devices
                                                                  : SourceStatus::ok;
        rep.duration_ms = elapsed();
        return rep;
      }
    }
    if (!any_file) {
      std::string list;
      for (const auto& t : tried) list += (list.empty() ? "" : ", ") + t;
      rep.status = SourceStatus::skipped;
      rep.what = *ctx.replay_dir;
      rep.notes.push_back("replay directory holds none of: " + list);
    } else {
      rep.status = SourceStatus::failed;
    }
    rep.duration_ms = elapsed();
    return rep;
  }

  auto deadline = t0 + ctx.timeout;
  bool have_answer = false;
  for (const auto& v : variants_) {
    auto now = Clock::now();
    if (now >= deadline) {
      rep.notes.push_back(short_cmd(v.argv) + ": not run, the deadline had passed");
      if (!have_answer) rep.status = SourceStatus::timed_out;
      break;
    }
    RunOptions opt;
    opt.output_cap = cap;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    bool sampling = v.sample_for.count() > 0 && v.sample_for < left;
    opt.timeout = sampling ? v.sample_for : left;
    CommandResult r = ctx.runner->run(v.argv, opt);
    if (ctx.capture) ctx.capture->command(v.replay_file, v.argv, r);
    if (have_answer) continue;  // capture mode: record every variant, keep the first answer
    std::string cmd = short_cmd(v.argv);
    if (rep.what.empty()) rep.what = join_argv(v.argv);
    if (!r.started) {
      rep.status = SourceStatus::missing;
      rep.what = join_argv(v.argv);
      rep.notes.push_back(r.error);
      break;  // every variant runs the same program
    }
    if (r.timed_out && !sampling) {
      rep.status = SourceStatus::timed_out;
      rep.what = join_argv(v.argv);
      rep.notes.push_back(cmd + ": " + r.describe_failure());
      break;
    }
    if (r.truncated)
      rep.notes.push_back(cmd + ": output larger than 16 MiB; parsed the first 16 MiB");
    // Many tools print their errors on stdout (nvidia-smi does); parse stdout, and stderr
    // when stdout is empty.
    ParseResult pr = v.parse(r.out.empty() ? std::string_view(r.err) : std::string_view(r.out));
    bool exit_ok = sampling ? true : r.exit_code == 0 && r.signal == 0;
    if (pr.recognized) {
      rep.what = join_argv(v.argv);
      for (auto& n : pr.notes) rep.notes.push_back(n);
      if (!exit_ok) rep.notes.push_back(cmd + ": " + r.describe_failure());
      absorb(rep, std::move(pr));
      rep.status = (rep.devices.empty() && rep.ignored.empty()) ? SourceStatus::no_devices
                                                                : SourceStatus::ok;
      have_answer = true;
      if (!ctx.capture) break;
      continue;
    }
    std::string why = exit_ok ? "output not recognized" : r.describe_failure();
    rep.notes.push_back(cmd + ": " + why);
    for (auto& n : pr.notes) rep.notes.push_back(cmd + ": " + n);
    rep.status = SourceStatus::failed;
  }
  if (!have_answer && rep.status == SourceStatus::skipped) rep.status = SourceStatus::failed;
  rep.duration_ms = elapsed();
  return rep;
}

}  // namespace grey
