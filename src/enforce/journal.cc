#include "enforce/journal.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <ctime>

#include "util/clock.h"
#include "util/json_util.h"
#include "util/state_dir.h"
#include "util/strings.h"

namespace grey {

namespace {

// The start of a JSON object cut off at the end: what a crash (or a full disk) while writing a
// line leaves. Not just any unparseable text: the parser must run out of input.
bool is_cut_short(std::string_view text) {
  std::string_view t = trim(text);
  if (t.empty() || t.front() != '{') return false;
  try {
    nlohmann::json parsed = nlohmann::json::parse(t.begin(), t.end());
    return parsed.is_discarded();  // never: it throws instead
  } catch (const nlohmann::json::parse_error& e) {
    return e.byte == t.size() + 1;
  } catch (const std::exception&) {
    return false;
  }
}

// A cut-short line with the next entry glued onto it (journals written before appends checked
// for a torn tail): the complete entry at the end, if there is one.
std::optional<nlohmann::json> glued_entry(std::string_view line) {
  int tries = 0;
  for (size_t p = line.find("{\"", 1); p != std::string_view::npos && tries < 8;
       p = line.find("{\"", p + 1), ++tries) {
    if (!is_cut_short(line.substr(0, p))) continue;
    std::string_view rest = line.substr(p);
    nlohmann::json j = nlohmann::json::parse(rest.begin(), rest.end(), nullptr, false);
    if (!j.is_discarded() && j.is_object()) return j;
  }
  return std::nullopt;
}

std::string excerpt(std::string_view text) {
  std::string out;
  size_t n = std::min(text.size(), kJournalExcerpt);
  for (size_t i = 0; i < n; ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (text.size() > n) out += "...";
  return out;
}

// Typed access to one entry's fields; the first problem is kept.
struct Fields {
  const nlohmann::json& j;
  std::string problem;

  void complain(std::string p) {
    if (problem.empty()) problem = std::move(p);
  }
  const nlohmann::json* find(const char* key, bool required) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) {
      if (required) complain(std::string("has no \"") + key + "\" field");
      return nullptr;
    }
    return &*it;
  }
  // required: present and not empty.
  std::string str(const char* key, bool required) {
    const nlohmann::json* v = find(key, required);
    if (!v) return "";
    if (!v->is_string()) {
      complain(std::string("has a \"") + key + "\" field that is not a string");
      return "";
    }
    std::string s = v->get<std::string>();
    if (required && s.empty()) complain(std::string("has an empty \"") + key + "\" field");
    return s;
  }
  std::optional<long> integer(const char* key, bool required, long lo = LONG_MIN,
                              long hi = LONG_MAX) {
    const nlohmann::json* v = find(key, required);
    if (!v) return std::nullopt;
    if (!v->is_number_integer()) {
      complain(std::string("has a \"") + key + "\" field that is not an integer");
      return std::nullopt;
    }
    bool in_range = v->is_number_unsigned()
                        ? v->get<unsigned long>() <= static_cast<unsigned long>(hi)
                        : v->get<long>() >= lo && v->get<long>() <= hi;
    if (!in_range) {
      complain(std::string("has a \"") + key + "\" field out of range");
      return std::nullopt;
    }
    return v->get<long>();
  }
  std::optional<bool> boolean(const char* key, bool required) {
    const nlohmann::json* v = find(key, required);
    if (!v) return std::nullopt;
    if (!v->is_boolean()) {
      complain(std::string("has an \"") + key + "\" field that is not true or false");
      return std::nullopt;
    }
    return v->get<bool>();
  }
};

}  // namespace

std::string JournalUnreadable::describe() const {
  return "journal line " + std::to_string(line) + " " + reason + ": " + text;
}

JournalParser::JournalParser() {
  c_.exists = true;
}

void JournalParser::unreadable(long line_number, std::string reason, std::string_view text) {
  c_.unreadable.push_back(JournalUnreadable{line_number, std::move(reason), excerpt(text)});
}

void JournalParser::feed(std::string_view line, long line_no, LineKind kind) {
  c_.lines = line_no;
  if (kind == LineKind::kTooLong) {
    unreadable(line_no, "is longer than " + std::to_string(line.size()) + " bytes", line);
    return;
  }
  if (trim(line).empty()) return;
  std::string where = "journal line " + std::to_string(line_no);
  nlohmann::json j = nlohmann::json::parse(line.begin(), line.end(), nullptr,
                                           /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    if (is_cut_short(line)) {
      c_.notes.push_back(where + " is cut short (the process died while writing it?)" +
                         (kind == LineKind::kUnterminated
                              ? std::string()
                              : std::string(", and a later append ended it")) +
                         "; skipped: nothing was done after a line that was never written whole");
      return;
    }
    std::optional<nlohmann::json> glued = glued_entry(line);
    if (!glued) {
      unreadable(line_no, "is not JSON", line);
      return;
    }
    c_.notes.push_back(where +
                       " begins with an entry cut short by a crash and the next entry glued onto "
                       "it; the cut entry is skipped, the glued one read");
    j = std::move(*glued);
  }
  if (!j.is_object()) {
    unreadable(line_no, "is not a JSON object", line);
    return;
  }
  try {
    Fields f{j, {}};
    std::string op = f.str("op", true);
    std::string id = f.str("id", true);
    if (!f.problem.empty()) {
      unreadable(line_no, f.problem, line);
      return;
    }
    if (op == "set") {
      JournalSet s;
      s.line = line_no;
      s.id = id;
      s.time = f.str("time", false);
      s.gpu_index = static_cast<int>(f.integer("gpu_index", true, INT_MIN, INT_MAX).value_or(-1));
      s.bus_id = f.str("bus_id", true);
      s.uuid = f.str("uuid", false);
      s.setting = f.str("setting", true);
      s.old_value = f.str("old", true);
      s.new_value = f.str("new", true);
      s.mechanism = f.str("mechanism", true);
      s.pid = f.integer("pid", false).value_or(0);
      if (!f.problem.empty()) {
        unreadable(line_no, "(set " + id + ") " + f.problem, line);
        return;
      }
      newest_[s.id] = c_.sets.size();
      c_.sets.push_back(std::move(s));
      return;
    }
    if (op != "result" && op != "restore") {
      unreadable(line_no, "has an unknown op \"" + op + "\"", line);
      return;
    }
    auto it = newest_.find(id);
    if (op == "result") {
      std::optional<bool> ok = f.boolean("ok", true);
      std::string read_back = f.str("read_back", false);
      bool has_read_back = f.find("read_back", false) != nullptr;
      std::string error = f.str("error", false);
      if (!f.problem.empty()) {
        unreadable(line_no, "(result of " + id + ") " + f.problem, line);
        return;
      }
      if (it == newest_.end()) {
        c_.notes.push_back(where + " (result) refers to unknown set " + id + "; skipped");
        return;
      }
      JournalSet& target = c_.sets[it->second];
      target.result_ok = *ok;
      if (has_read_back) target.read_back = read_back;
      target.result_error = error;
      return;
    }
    std::string status = f.str("status", true);
    if (!f.problem.empty()) {
      unreadable(line_no, "(restore of " + id + ") " + f.problem, line);
      return;
    }
    if (it == newest_.end()) {
      c_.notes.push_back(where + " (restore) refers to unknown set " + id + "; skipped");
      return;
    }
    c_.sets[it->second].restore_status = status;
  } catch (const std::exception& e) {
    unreadable(line_no, std::string("cannot be read: ") + e.what(), line);
  }
}

JournalContents JournalParser::finish() && {
  return std::move(c_);
}

JournalContents parse_journal(std::string_view text, size_t max_line) {
  JournalParser p;
  size_t start = 0;
  long line_no = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    bool complete = nl != std::string_view::npos;
    std::string_view line = text.substr(start, complete ? nl - start : std::string_view::npos);
    start = complete ? nl + 1 : text.size();
    LineKind kind = complete ? LineKind::kComplete : LineKind::kUnterminated;
    if (line.size() > max_line) {
      line = line.substr(0, max_line);
      kind = LineKind::kTooLong;
    }
    p.feed(line, ++line_no, kind);
  }
  return std::move(p).finish();
}

Journal::Journal(std::string path) : path_(std::move(path)) {
  // Unique across processes (pid) and across journals of one process (the counter).
  static std::atomic<int> serial{0};
  run_id_ = utc_text_compact(std::chrono::system_clock::now()) + "-" + std::to_string(::getpid()) +
            "-" + std::to_string(++serial);
}

std::string Journal::append(nlohmann::json j) {
  j["pid"] = static_cast<long>(::getpid());
  return append_line_synced(path_, dump_json(j));
}

std::string Journal::append_set(const Action& a, const std::string& old_value,
                                const std::string& new_value, std::string* id) {
  std::string set_id = run_id_ + "/" + a.id;
  if (id) *id = set_id;
  return append(nlohmann::json{{"time", utc_now_text()},
                               {"op", "set"},
                               {"id", set_id},
                               {"gpu_index", a.gpu_index},
                               {"bus_id", a.bus_id},
                               {"uuid", a.uuid},
                               {"setting", a.setting},
                               {"old", old_value},
                               {"new", new_value},
                               {"mechanism", a.mechanism}});
}

std::string Journal::append_result(const std::string& id, bool ok,
                                   const std::optional<std::string>& read_back,
                                   const std::string& error) {
  return append(nlohmann::json{{"time", utc_now_text()},
                               {"op", "result"},
                               {"id", id},
                               {"ok", ok},
                               {"read_back", read_back ? nlohmann::json(*read_back) : nullptr},
                               {"error", error}});
}

std::string Journal::append_restore(const JournalSet& s, const std::string& from,
                                    const std::string& to, const std::string& status,
                                    const std::string& message) {
  return append(nlohmann::json{{"time", utc_now_text()},
                               {"op", "restore"},
                               {"id", s.id},
                               {"gpu_index", s.gpu_index},
                               {"bus_id", s.bus_id},
                               {"setting", s.setting},
                               {"mechanism", s.mechanism},
                               {"from", from},
                               {"to", to},
                               {"status", status},
                               {"message", message}});
}

JournalContents Journal::load() const {
  // lstat, not access: a symlink planted at the journal (even a dangling one) is refused by
  // read_lines below, never taken for "no journal".
  struct stat st {};
  if (::lstat(path_.c_str(), &st) != 0 && errno == ENOENT) {
    JournalContents c;
    c.notes.push_back("no journal at " + path_ + ": nothing was ever applied from here");
    return c;
  }
  JournalParser parser;
  std::string err = read_lines(path_, max_line_, [&](std::string_view text, long n, LineKind k) {
    parser.feed(text, n, k);
    return true;
  });
  JournalContents c = std::move(parser).finish();
  if (!err.empty()) c.error = "cannot read the whole journal: " + err;
  return c;
}

}  // namespace grey
