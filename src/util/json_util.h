#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace grey {

// Never throws on invalid UTF-8 from a tool's output: bad bytes become U+FFFD.
inline std::string dump_json(const nlohmann::json& j, int indent = -1) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace grey
