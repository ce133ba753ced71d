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
// restore lines refer to it. The file is only ever appended to; a torn last line (a crash while
// writing it) is skipped with a note when read.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "enforce/actions.h"

namespace grey {

// Restore statuses that settle a set entry for good (it is never undone again).
inline constexpr const char* kRestoreRestored = "restored";     // we put the old value back
inline constexpr const char* kRestoreNotNeeded = "not_needed";  // the device has the old value
inline constexpr const char* kRestoreChangedSince = "changed_since";  // someone else changed it
// Not settling: retried by the next restore.
inline constexpr const char* kRestoreFailed = "failed";

// One "set" line and what the journal says happened to it afterwards.
struct JournalSet {
  int line = 0;  // 1-based line number of the set entry
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

struct JournalContents {
  bool exists = false;
  std::vector<JournalSet> sets;    // in file order (oldest first)
  std::vector<std::string> notes;  // skipped lines, orphan results, ...
  std::string error;               // the journal exists but cannot be read
};

// Pure: parses the text of a journal. Never throws.
JournalContents parse_journal(std::string_view text);

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
  std::string append_set(const Action& a, const std::string& old_value,
                         const std::string& new_value, std::string* id);
  std::string append_result(const std::string& id, bool ok,
                            const std::optional<std::string>& read_back, const std::string& error);
  std::string append_restore(const JournalSet& s, const std::string& from, const std::string& to,
                             const std::string& status, const std::string& message);

  JournalContents load() const;

 private:
  std::string append(nlohmann::json j);
  std::string path_;
  std::string run_id_;
};

// "2026-11-26T15:00:00Z".
std::string utc_timestamp_now();

}  // namespace grey
