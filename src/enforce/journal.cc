#include "enforce/journal.h"

#include <unistd.h>

#include <atomic>
#include <ctime>

#include "util/json_util.h"
#include "util/state_dir.h"
#include "util/strings.h"

namespace grey {

namespace {

std::string time_text(const char* fmt) {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, fmt, &tm);
  return buf;
}

std::string str_field(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return "";
  return it->get<std::string>();
}

std::optional<long> int_field(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer()) return std::nullopt;
  return it->get<long>();
}

}  // namespace

std::string utc_timestamp_now() {
  return time_text("%Y-%m-%dT%H:%M:%SZ");
}

JournalContents parse_journal(std::string_view text) {
  JournalContents c;
  c.exists = true;
  size_t start = 0;
  int line_no = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    bool complete = nl != std::string_view::npos;
    std::string_view line = text.substr(start, complete ? nl - start : std::string_view::npos);
    start = complete ? nl + 1 : text.size();
    ++line_no;
    if (trim(line).empty()) continue;
    std::string where = "journal line " + std::to_string(line_no);
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) {
      c.notes.push_back(where + (complete ? " is not a JSON object" : " is cut short") +
                        (complete ? "" : " (the process died while writing it?)") + "; skipped");
      continue;
    }
    try {
      std::string op = str_field(j, "op");
      std::string id = str_field(j, "id");
      if (id.empty()) {
        c.notes.push_back(where + " has no id; skipped");
        continue;
      }
      if (op == "set") {
        JournalSet s;
        s.line = line_no;
        s.id = id;
        s.time = str_field(j, "time");
        s.gpu_index = static_cast<int>(int_field(j, "gpu_index").value_or(-1));
        s.bus_id = str_field(j, "bus_id");
        s.uuid = str_field(j, "uuid");
        s.setting = str_field(j, "setting");
        s.old_value = str_field(j, "old");
        s.new_value = str_field(j, "new");
        s.mechanism = str_field(j, "mechanism");
        s.pid = int_field(j, "pid").value_or(0);
        if (s.bus_id.empty() || s.setting.empty() || s.mechanism.empty() || s.old_value.empty() ||
            s.new_value.empty()) {
          c.notes.push_back(where + " (set " + id +
                            ") lacks bus_id, setting, mechanism, old or new; skipped");
          continue;
        }
        c.sets.push_back(std::move(s));
        continue;
      }
      // result / restore: attach to the newest set with that id.
      JournalSet* target = nullptr;
      for (auto it = c.sets.rbegin(); it != c.sets.rend(); ++it) {
        if (it->id == id) {
          target = &*it;
          break;
        }
      }
      if (op != "result" && op != "restore") {
        c.notes.push_back(where + " has unknown op '" + op + "'; skipped");
      } else if (!target) {
        c.notes.push_back(where + " (" + op + ") refers to unknown set " + id + "; skipped");
      } else if (op == "result") {
        auto ok = j.find("ok");
        target->result_ok = ok != j.end() && ok->is_boolean() && ok->get<bool>();
        auto rb = j.find("read_back");
        if (rb != j.end() && rb->is_string()) target->read_back = rb->get<std::string>();
        target->result_error = str_field(j, "error");
      } else {
        target->restore_status = str_field(j, "status");
      }
    } catch (const std::exception& e) {
      c.notes.push_back(where + ": " + e.what() + "; skipped");
    }
  }
  return c;
}

Journal::Journal(std::string path) : path_(std::move(path)) {
  // Unique across processes (pid) and across journals of one process (the counter).
  static std::atomic<int> serial{0};
  run_id_ = time_text("%Y%m%dT%H%M%SZ") + "-" + std::to_string(::getpid()) + "-" +
            std::to_string(++serial);
}

std::string Journal::append(nlohmann::json j) {
  j["pid"] = static_cast<long>(::getpid());
  return append_line_synced(path_, dump_json(j));
}

std::string Journal::append_set(const Action& a, const std::string& old_value,
                                const std::string& new_value, std::string* id) {
  std::string set_id = run_id_ + "/" + a.id;
  if (id) *id = set_id;
  return append(nlohmann::json{{"time", utc_timestamp_now()},
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
  return append(nlohmann::json{{"time", utc_timestamp_now()},
                               {"op", "result"},
                               {"id", id},
                               {"ok", ok},
                               {"read_back", read_back ? nlohmann::json(*read_back) : nullptr},
                               {"error", error}});
}

std::string Journal::append_restore(const JournalSet& s, const std::string& from,
                                    const std::string& to, const std::string& status,
                                    const std::string& message) {
  return append(nlohmann::json{{"time", utc_timestamp_now()},
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
  if (::access(path_.c_str(), F_OK) != 0) {
    JournalContents c;
    c.notes.push_back("no journal at " + path_ + ": nothing was ever applied from here");
    return c;
  }
  std::string err;
  auto text = read_whole_file(path_, &err);
  if (!text) {
    JournalContents c;
    c.exists = true;
    c.error = "cannot read the journal: " + err;
    return c;
  }
  return parse_journal(*text);
}

}  // namespace grey
