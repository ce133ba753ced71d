// The enforcement journal: journal.jsonl in the state directory, one JSON object per line,
// every line appended and fsync'ed before the next step (append_line_synced).
//
//   {"op":"set", "time","id","gpu_index","bus_id","uuid","setting","old","new","mechanism","pid"}
//       appended BEFORE the device is written;
//   {"op":"result", "time","id","ok","read_back","error","pid"}
//       appended after the write and its read-back (missing when the process died between);
//   {"op":"restore", "time","id","gpu_index","bus_id","setting","mechanism","from","to",
//    "status","message","pid"}
//       appended by `restore` for each set entry it settled or tried to.
//
// "id" of a set line is unique across runs: "<UTC time>-<pid>-<serial>/<action id>"; result and
// restore lines refer to it. The file is only ever appended to, and every append starts on a
// fresh line (append_line_synced terminates a torn tail first). It is read as a stream, one line
// at a time, whatever its size.
//
// Reading: a line cut short by a crash while it was written (the start of a JSON object that ends
// early) is skipped with a note: it was never made durable, so its writer did nothing after it (a
// set line is written before its device write). An older journal may hold such a cut line with
// the next entry glued onto it; that entry is recovered. Every other line that cannot be read (not
// JSON, a field of the wrong type, no id, an unknown op, longer than the line bound) is an
// "unreadable" entry: restore cannot know what it recorded, reports it as an error and fails.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "enforce/actions.h"
#include "util/state_dir.h"

namespace grey {

// Restore statuses that settle a set entry for good (it is never undone again).
inline constexpr const char* kRestoreRestored = "restored";     // we put the old value back
inline constexpr const char* kRestoreNotNeeded = "not_needed";  // the device has the old value
inline constexpr const char* kRestoreChangedSince = "changed_since";  // someone else changed it
// Not settling: retried by the next restore.
inline constexpr const char* kRestoreFailed = "failed";

// One "set" line and what the journal says happened to it afterwards.
struct JournalSet {
  long line = 0;  // 1-based line number of the set entry
  std::string id;
  std::string time;
  int gpu_index = -1;
  std::string bus_id;
  std::string uuid;
  std::string setting;
  std::string old_value;
  std::string new_value;
  std::string mechanism;
  long pid = 0;
  // From the matching "result" line, when there is one.
  std::optional<bool> result_ok;
  std::optional<std::string> read_back;
  std::string result_error;
  // The status of the last "restore" line for this id ("" when none).
  std::string restore_status;
  bool settled() const {
    return restore_status == kRestoreRestored || restore_status == kRestoreNotNeeded ||
           restore_status == kRestoreChangedSince;
  }
};

// The longest journal line read (ours are well under 4 KiB); a longer one is unreadable.
inline constexpr size_t kJournalMaxLine = 1u << 20;
// How much of an unreadable line's text is kept for the report.
inline constexpr size_t kJournalExcerpt = 200;

// A line that could not be read: restore cannot know what it recorded.
struct JournalUnreadable {
  long line = 0;  // 1-based
  std::string
      reason;        // "is not JSON", "(set r1/x) has a \"gpu_index\" field that is not an integer"
  std::string text;  // the raw text, at most kJournalExcerpt bytes (then "..."), control bytes
                     // written as \xNN
  // "journal line 7 is not JSON: <text>"
  std::string describe() const;
};

struct JournalContents {
  bool exists = false;
  std::vector<JournalSet> sets;               // in file order (oldest first)
  std::vector<std::string> notes;             // cut-short lines, orphan results, ...
  std::vector<JournalUnreadable> unreadable;  // in file order
  long lines = 0;                             // lines read
  std::string error;  // the journal exists but cannot be read (in full): nothing above is whole
};

// Builds JournalContents from lines fed in file order (read_lines' callback). Never throws.
class JournalParser {
 public:
  JournalParser();
  void feed(std::string_view line, long line_number, LineKind kind);
  JournalContents finish() &&;

 private:
  void unreadable(long line_number, std::string reason, std::string_view text);
  JournalContents c_;
  std::unordered_map<std::string, size_t> newest_;  // set id -> index in c_.sets
};

// Pure: parses the text of a journal (lines longer than max_line are unreadable). Never throws.
[[nodiscard]] JournalContents parse_journal(std::string_view text,
                                            size_t max_line = kJournalMaxLine);

class Journal {
 public:
  // `path` is the journal file; its directory must exist (ensure_state_dir). Nothing is
  // created until the first append.
  explicit Journal(std::string path);
  static std::string path_in(const std::string& state_dir) { return state_dir + "/journal.jsonl"; }
  const std::string& path() const { return path_; }
  // The prefix of every set id this object writes ("20261126T150000Z-4242-1").
  const std::string& run_id() const { return run_id_; }

  // Each returns "" on success, else why the line could not be made durable.
  [[nodiscard]] std::string append_set(const Action& a, const std::string& old_value,
                                       const std::string& new_value, std::string* id);
  [[nodiscard]] std::string append_result(const std::string& id, bool ok,
                                          const std::optional<std::string>& read_back,
                                          const std::string& error);
  [[nodiscard]] std::string append_restore(const JournalSet& s, const std::string& from,
                                           const std::string& to, const std::string& status,
                                           const std::string& message);

  // Streams the whole file (any size). `error` is set when it could not be read to its end.
  [[nodiscard]] JournalContents load() const;

  // The line bound of load() (kJournalMaxLine); tests make it small.
  void set_max_line(size_t n) { max_line_ = n; }

 private:
  [[nodiscard]] std::string append(nlohmann::json j);
  std::string path_;
  std::string run_id_;
  size_t max_line_ = kJournalMaxLine;
};

}  // namespace grey
