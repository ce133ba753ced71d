#include "sources/parse_common.h"

#include <string>

#include "util/strings.h"

namespace grey {

void note_unreadable(ParseResult& r, std::string_view what, const char* detail) {
  r.devices.clear();
  r.recognized = false;
  std::string note = std::string(what) + " could not be read";
  if (detail) note += std::string(": ") + detail;
  r.notes.push_back(note);
}

bool reject_empty(std::string_view text, ParseResult& r) {
  if (!trim(text).empty()) return false;
  r.recognized = false;
  r.notes.push_back("output is empty");
  return true;
}

nlohmann::json parse_json_tolerant(std::string_view body, std::string_view closers) {
  nlohmann::json j = nlohmann::json::parse(body.begin(), body.end(), nullptr, false);
  if (!j.is_discarded()) return j;
  size_t e = body.find_last_of(closers);
  if (e == std::string_view::npos) return j;
  return nlohmann::json::parse(body.begin(), body.begin() + static_cast<std::ptrdiff_t>(e + 1),
                               nullptr, false);
}

}  // namespace grey
