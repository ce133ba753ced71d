// A plan as JSON and as YAML, both ways. Writing then reading gives back the same Plan
// (operator==): strings are always quoted in YAML, numbers use the shortest exact form.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "plan/plan.h"

namespace grey {

// Keys in the order of SPEC §7.
nlohmann::ordered_json plan_to_json(const Plan& p);
// Throws std::runtime_error naming the key for a missing or mistyped field.
Plan plan_from_json(const nlohmann::json& j);

std::string plan_to_json_text(const Plan& p, int indent = 2);  // ends with "\n"
std::string plan_to_yaml(const Plan& p);                       // ends with "\n"

// Never throw; nullopt with a message in *error.
std::optional<Plan> plan_from_json_text(const std::string& text, std::string* error);
std::optional<Plan> plan_from_yaml_text(const std::string& text, std::string* error);

// A plan file (last_plan.yaml, or one written by `plan --output`): JSON when the name ends
// in .json, YAML otherwise. The error names the file.
std::optional<Plan> load_plan_file(const std::string& path, std::string* error);

// "yaml" for .yaml/.yml, "json" for .json (case-insensitive), nullopt otherwise.
std::optional<std::string> plan_format_for_path(const std::string& path);

}  // namespace grey
