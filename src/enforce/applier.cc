#include "enforce/applier.h"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace grey {

namespace {

constexpr const char* kDryRunPrefix = "[DRY-RUN] ";

std::string with_unit(const Action& a, const std::string& v) {
  return a.unit.empty() ? v : v + " " + a.unit;
}

SettingRef ref_of(const Action& a) {
  return SettingRef{a.bus_id, a.setting, a.mechanism};
}

ActionOutcome run_one(const Action& a, DeviceControl& control, Journal& journal) {
  ActionOutcome o;
  o.action = a;
  if (a.skip) {
    o.status = a.refused ? kRefused : kSkipped;
    if (a.refused) o.error = a.skip_reason;
    o.line = std::string(a.refused ? "refused: " : "skipped: ") + describe(a);
    return o;
  }
  auto fail = [&](std::string error) {
    o.status = kFailed;
    o.error = std::move(error);
    o.line = "FAILED: " + describe(a) + ": " + o.error;
    return o;
  };
  SettingRef ref = ref_of(a);
  ReadResult before = control.read(ref);
  if (!before.value)
    return fail("cannot read the current value (" + before.error +
                "); not written, since the change could not be undone");
  o.old_value = *before.value;
  if (same_value(a.setting, o.old_value, a.wanted)) {
    o.status = kSkipped;
    o.line = "skipped: " + describe(a) + "; skipped: already " + with_unit(a, o.old_value);
    return o;
  }
  if (std::string e = journal.append_set(a, o.old_value, a.wanted, &o.journal_id); !e.empty()) {
    o.journal_id.clear();
    o.journal_error = e;
    return fail("journal: " + e + "; not written, since the change could not be undone");
  }
  std::string werr = control.write(ref, a.wanted);
  if (werr.empty()) {
    ReadResult after = control.read(ref);
    if (after.value) {
      o.read_back = after.value;
      if (!same_value(a.setting, *after.value, a.wanted))
        werr = "the device reads back " + with_unit(a, *after.value) + " after writing " +
               with_unit(a, a.wanted);
    } else {
      werr = "written, but reading it back failed: " + after.error;
    }
  }
  std::string jerr = journal.append_result(o.journal_id, werr.empty(), o.read_back, werr);
  o.journal_error = jerr;
  if (!werr.empty()) {
    if (!jerr.empty()) werr += "; journal: " + jerr;
    return fail(werr);
  }
  o.status = kApplied;
  o.line = "applied: " + describe(a) + " (was " + with_unit(a, o.old_value) + ", reads back " +
           with_unit(a, *o.read_back) + ")";
  if (!jerr.empty()) {
    // The device changed and the journal has its "set" line: restore still works.
    o.error = "journal result line not written: " + jerr;
    o.line += "; " + o.error;
  }
  return o;
}

}  // namespace

ApplyOutcome apply_actions(const std::vector<Action>& actions, DeviceControl& control,
                           Journal& journal, bool dry_run) {
  ApplyOutcome out;
  out.dry_run = dry_run;
  for (const Action& a : actions) {
    ActionOutcome o;
    if (dry_run) {
      o.action = a;
      o.status = a.skip ? (a.refused ? kRefused : kSkipped) : kWouldApply;
      if (a.refused) o.error = a.skip_reason;
      o.line = kDryRunPrefix + describe(a);
    } else {
      o = run_one(a, control, journal);
    }
    if (o.status == kRefused || o.status == kFailed) out.success = false;
    out.actions.push_back(std::move(o));
  }
  return out;
}

ApplyResult to_apply_result(const ApplyOutcome& outcome, const std::string& plan_mode,
                            const std::string& timestamp) {
  ApplyResult r;
  r.success = outcome.success;
  r.dry_run = outcome.dry_run;
  r.metrics.timestamp = timestamp;
  r.metrics.plan_mode = plan_mode;
  r.metrics.actions_count = static_cast<int>(outcome.actions.size());
  r.metrics.dry_run = outcome.dry_run;
  for (const ActionOutcome& o : outcome.actions) {
    if (o.status == kApplied || o.status == kWouldApply) {
      r.actions_applied.push_back(o.line);
      if (!o.error.empty()) r.errors.push_back(describe(o.action) + ": " + o.error);
    } else if (o.status == kSkipped) {
      r.actions_skipped.push_back(o.line);
    } else if (o.status == kRefused) {
      r.actions_skipped.push_back(o.line);
      r.errors.push_back("GPU " + std::to_string(o.action.gpu_index) + " " + o.action.setting +
                         " " + with_unit(o.action, o.action.wanted) + " refused: " + o.error);
    } else {
      r.errors.push_back(o.line);
    }
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// restore

nlohmann::json RestoreOutcome::to_json() const {
  nlohmann::json steps_j = nlohmann::json::array();
  for (const RestoreStep& s : steps) {
    steps_j.push_back({{"id", s.id},
                       {"gpu_index", s.gpu_index},
                       {"bus_id", s.bus_id},
                       {"setting", s.setting},
                       {"mechanism", s.mechanism},
                       {"wrote", s.wrote},
                       {"restore_to", s.restore_to},
                       {"current", s.current},
                       {"status", s.status},
                       {"message", s.message}});
  }
  nlohmann::json left_j = nlohmann::json::array();
  for (const RestoreStep* s : left_changed()) {
    left_j.push_back({{"id", s->id},
                      {"gpu_index", s->gpu_index},
                      {"bus_id", s->bus_id},
                      {"setting", s->setting},
                      {"current", s->current},
                      {"should_be", s->restore_to},
                      {"message", s->message}});
  }
  nlohmann::json unreadable_j = nlohmann::json::array();
  for (const JournalUnreadable& u : unreadable)
    unreadable_j.push_back({{"line", u.line}, {"reason", u.reason}, {"text", u.text}});
  return nlohmann::json{{"success", success},     {"dry_run", dry_run},         {"steps", steps_j},
                        {"left_changed", left_j}, {"unreadable", unreadable_j}, {"notes", notes},
                        {"errors", errors}};
}

std::vector<const RestoreStep*> RestoreOutcome::left_changed() const {
  std::vector<const RestoreStep*> out;
  for (const RestoreStep& s : steps)
    if (s.status == kRestoreFailed) out.push_back(&s);
  return out;
}

namespace {

RestoreOutcome restore_impl(Journal& journal, DeviceControl& control, bool dry_run,
                            const std::vector<std::string>* only) {
  RestoreOutcome out;
  out.dry_run = dry_run;
  JournalContents jc = journal.load();
  out.notes = jc.notes;
  if (!jc.error.empty()) {
    // Part of a journal could hide a later restore line or a later change: act on none of it.
    out.success = false;
    out.errors.push_back(jc.error +
                         "; nothing was restored, since what was read is only part of "
                         "the journal");
    return out;
  }
  int settled = 0;
  // What one step undoes: one set entry, or (restore_sets) every entry of this run for one
  // setting of one device, newest first: one write puts back the oldest entry's old value.
  std::vector<std::vector<const JournalSet*>> units;
  for (auto it = jc.sets.rbegin(); it != jc.sets.rend(); ++it) {
    const JournalSet& s = *it;
    if (only && std::find(only->begin(), only->end(), s.id) == only->end()) continue;
    if (s.settled()) {
      ++settled;
      continue;
    }
    auto same_target = [&](const std::vector<const JournalSet*>& u) {
      return u.front()->bus_id == s.bus_id && u.front()->setting == s.setting;
    };
    auto u = only ? std::find_if(units.begin(), units.end(), same_target) : units.end();
    if (u == units.end())
      units.push_back({&s});
    else
      u->push_back(&s);
  }
  for (const auto& unit : units) {
    const JournalSet& s = *unit.front();  // the newest: what the device should hold now
    const JournalSet& first = *unit.back();
    RestoreStep st;
    st.id = s.id;
    st.gpu_index = s.gpu_index;
    st.bus_id = s.bus_id;
    st.setting = s.setting;
    st.mechanism = s.mechanism;
    st.wrote = (s.result_ok.value_or(false) && s.read_back) ? *s.read_back : s.new_value;
    st.restore_to = first.old_value;
    std::string unit_text = s.setting == kSettingPowerLimit ? " W" : "";
    std::string what = "GPU " + std::to_string(s.gpu_index) + " (" + s.bus_id + ") " + s.setting;
    bool no_result = !s.result_ok.has_value();
    SettingRef ref{s.bus_id, s.setting, s.mechanism};

    ReadResult now = control.read(ref);
    st.current = now.value.value_or("unknown");
    std::optional<std::string> left_at = now.value;  // what the device holds when we are done
    if (!now.value) {
      st.status = kRestoreFailed;
      st.message = "cannot read the current value: " + now.error;
    } else if (same_value(s.setting, *now.value, st.wrote) ||
               same_value(s.setting, *now.value, s.new_value)) {
      if (same_value(s.setting, *now.value, st.restore_to)) {
        st.status = kRestoreNotNeeded;  // old == new: nothing we did is visible
        st.message = "already " + st.restore_to + unit_text;
      } else if (dry_run) {
        st.status = kWouldRestore;
        st.message = "would set " + st.restore_to + unit_text + " (now " + *now.value + unit_text +
                     ", which we wrote" + (no_result ? " before the process stopped" : "") + ")";
      } else {
        std::string werr = control.write(ref, st.restore_to);
        if (werr.empty()) {
          ReadResult after = control.read(ref);
          left_at = after.value;
          if (!after.value)
            werr = "written, but reading it back failed: " + after.error;
          else if (!same_value(s.setting, *after.value, st.restore_to))
            werr = "the device reads back " + *after.value + unit_text + " after writing " +
                   st.restore_to + unit_text;
        }
        if (werr.empty()) {
          st.status = kRestoreRestored;
          st.message =
              "set back to " + st.restore_to + unit_text + " (was " + *now.value + unit_text + ")";
        } else {
          st.status = kRestoreFailed;
          st.message = werr;
        }
      }
    } else if (same_value(s.setting, *now.value, st.restore_to)) {
      st.status = kRestoreNotNeeded;
      st.message = "nothing to undo: the device still has the old value " + st.restore_to +
                   unit_text +
                   (no_result              ? " (the process stopped before or during its write)"
                    : s.result_ok == false ? " (our write had failed)"
                                           : "");
    } else {
      st.status = kRestoreChangedSince;
      st.message = "skipped: someone else changed it since: now " + *now.value + unit_text +
                   ", we wrote " + st.wrote + unit_text;
    }
    if (!dry_run) {
      for (const JournalSet* member : unit) {
        std::string jerr = journal.append_restore(
            *member, st.current, st.status == kRestoreRestored ? st.restore_to : st.current,
            st.status, st.message);
        if (!jerr.empty()) {
          out.errors.push_back("journal: " + jerr);
          out.success = false;
        }
      }
    }
    if (st.status == kRestoreFailed) {
      out.success = false;
      st.current = left_at.value_or("unknown");
      out.errors.push_back(
          what + " is left changed: " +
          (left_at ? "it reads " + *left_at + unit_text : "it cannot be read now") +
          " and should be " + st.restore_to + unit_text + " (via " + s.mechanism +
          "): " + st.message);
    }
    st.line = (dry_run ? std::string(kDryRunPrefix) : std::string()) + st.status + ": " + what +
              " via " + s.mechanism + ": " + st.message;
    out.steps.push_back(std::move(st));
  }
  if (settled > 0)
    out.notes.push_back(std::to_string(settled) + " journal entr" +
                        (settled == 1 ? "y was" : "ies were") +
                        " settled by an earlier restore; left alone");
  if (!only && jc.sets.empty() && jc.unreadable.empty() && jc.exists)
    out.notes.push_back("the journal holds no changes");
  for (const JournalUnreadable& u : jc.unreadable) {
    out.success = false;
    out.errors.push_back(u.describe() +
                         " -- restore cannot tell what this entry changed, so it was not undone; "
                         "check that device by hand, then remove or fix the line");
  }
  out.unreadable = std::move(jc.unreadable);
  return out;
}

}  // namespace

RestoreOutcome restore(Journal& journal, DeviceControl& control, bool dry_run) {
  return restore_impl(journal, control, dry_run, nullptr);
}

RestoreOutcome restore_sets(Journal& journal, DeviceControl& control,
                            const std::vector<std::string>& set_ids, bool dry_run) {
  return restore_impl(journal, control, dry_run, &set_ids);
}

}  // namespace grey
