// ApplyResult (SPEC §3): what `apply` reports, as a value with one JSON shape.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace grey {

// The version of the JSON shape below (docs/schema/apply-result.schema.json), printed as
// "schema_version". Raise it with any change of shape.
inline constexpr int kApplyResultSchemaVersion = 1;

struct ApplyMetrics {
  std::string timestamp;  // "2026-11-26T15:00:00Z"
  std::string plan_mode;  // "safe" | "aggressive" | ...
  int actions_count = 0;
  bool dry_run = true;
};

struct ApplyResult {
  bool success = true;
  bool dry_run = true;
  std::vector<std::string> actions_applied;  // one line per action ("[DRY-RUN] ..." in a dry run)
  std::vector<std::string> actions_skipped;  // one line per skipped or refused action
  std::vector<std::string> errors;           // refused and failed actions, other failures
  ApplyMetrics metrics;
  std::vector<std::string> artifacts;  // paths of the files written

  // {"schema_version","success","dry_run","actions_applied","actions_skipped","errors",
  //  "metrics":{"timestamp","plan_mode","actions_count","dry_run"},"artifacts"}
  nlohmann::json to_json() const;
};

}  // namespace grey
