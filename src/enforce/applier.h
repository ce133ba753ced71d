// The thin applier: performs a planned action list (actions.h) through a DeviceControl,
// journaling each write before it happens, and undoes journaled writes (restore).
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "enforce/actions.h"
#include "enforce/apply_result.h"
#include "enforce/device_control.h"
#include "enforce/journal.h"
#include "util/clock.h"

namespace grey {

// Statuses of one action's outcome.
inline constexpr const char* kWouldApply = "would_apply";  // dry run
inline constexpr const char* kApplied = "applied";
inline constexpr const char* kSkipped = "skipped";  // nothing to do (already at the value)
inline constexpr const char* kRefused = "refused";  // planner refused it; nothing written
inline constexpr const char* kFailed = "failed";    // the device (or the journal) said no

struct ActionOutcome {
  Action action;
  std::string status;
  std::string old_value;                 // read right before the write (real run)
  std::optional<std::string> read_back;  // read right after it
  std::string error;                     // the device's own message, for failed/refused
  std::string journal_id;                // id of the journal "set" line, "" if none
  // Why a journal line could not be written ("" when all were): with no journal_id the device
  // was not touched; with one, only the "result" line is missing (restore still works).
  std::string journal_error;
  std::string line;  // one human line ("[DRY-RUN] ..." in a dry run)
};

struct ApplyOutcome {
  bool success = true;  // false when any action was refused or failed
  bool dry_run = true;
  std::vector<ActionOutcome> actions;
};

// Dry run: writes nothing, creates no journal, only describes each action ("[DRY-RUN] ...").
// Real run, per action: read the current value (an unreadable one is not written: it could
// not be undone); skip if already there; journal "set" (fsync'ed; if that fails, nothing is
// written); write; read back; journal "result". A failure fails that action only.
[[nodiscard]] ApplyOutcome apply_actions(const std::vector<Action>& actions, DeviceControl& control,
                                         Journal& journal, bool dry_run);

// The SPEC §3 shape of an outcome (artifacts empty; the caller adds its own lines/files).
[[nodiscard]] ApplyResult to_apply_result(const ApplyOutcome& outcome, const std::string& plan_mode,
                                          const std::string& timestamp = utc_now_text());

struct RestoreStep {
  std::string id;  // the journal set id
  int gpu_index = -1;
  std::string bus_id;
  std::string setting;
  std::string mechanism;
  std::string wrote;       // what we had written (read back value when known)
  std::string restore_to;  // the old value
  std::string current;     // read now ("unknown" when unreadable)
  // restored | not_needed | changed_since | failed, or in a dry run would_restore too.
  std::string status;
  std::string message;
  std::string line;  // one human line ("[DRY-RUN] ..." in a dry run)
};

struct RestoreOutcome {
  // True only when every journaled change is settled (restored, not_needed, changed_since; in a
  // dry run would_restore too), the whole journal was read, and no line of it was unreadable.
  bool success = true;
  bool dry_run = false;
  std::vector<RestoreStep> steps;  // newest journal entry first
  std::vector<std::string> notes;  // journal oddities, how many were settled earlier
  // Journal lines restore could not read, so could not undo (each is also in `errors`).
  std::vector<JournalUnreadable> unreadable;
  // One line per setting left changed (or that may be: unreadable now), then one per unreadable
  // journal line, then journal write failures.
  std::vector<std::string> errors;
  // The steps whose setting is left changed (status failed).
  std::vector<const RestoreStep*> left_changed() const;
  nlohmann::json to_json() const;
};

inline constexpr const char* kWouldRestore = "would_restore";

// Undoes the journal's unsettled "set" entries newest first: each only while the device still
// holds the value we wrote (else "changed_since", left alone). A set with no result line (the
// process died around the write) is judged the same way: the device still at the old value
// means there is nothing to undo. Every step is journaled ("restore" lines) except in a dry run,
// which neither writes nor journals. Unreadable journal lines do not stop the readable entries
// from being restored; they make the outcome fail, each named with its line number and text. A
// journal that cannot be read to its end restores nothing and fails.
[[nodiscard]] RestoreOutcome restore(Journal& journal, DeviceControl& control, bool dry_run);

// The same, limited to the set entries whose ids are in `set_ids` (the daemon undoes only what
// it wrote in this run). Entries of other runs are left alone and not counted; unreadable lines
// still make the outcome fail (one of them could be ours).
[[nodiscard]] RestoreOutcome restore_sets(Journal& journal, DeviceControl& control,
                                          const std::vector<std::string>& set_ids, bool dry_run);

}  // namespace grey
