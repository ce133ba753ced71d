#include "enforce/apply_result.h"

#include <nlohmann/json.hpp>

namespace grey {

nlohmann::json ApplyResult::to_json() const {
  return nlohmann::json{{"schema_version", kApplyResultSchemaVersion},
                        {"success", success},
                        {"dry_run", dry_run},
                        {"actions_applied", actions_applied},
                        {"actions_skipped", actions_skipped},
                        {"errors", errors},
                        {"metrics",
                         {{"timestamp", metrics.timestamp},
                          {"plan_mode", metrics.plan_mode},
                          {"actions_count", metrics.actions_count},
                          {"dry_run", metrics.dry_run}}},
                        {"artifacts", artifacts}};
}

}  // namespace grey
