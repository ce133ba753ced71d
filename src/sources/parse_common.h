// What every text parser in sources/ does the same way: the empty-input answer, the guard that
// turns an exception into a "could not be read" result, and tolerant JSON parsing.
#pragma once

#include <exception>
#include <nlohmann/json.hpp>
#include <string_view>

#include "sources/source.h"

namespace grey {

// Drops the devices read so far, marks `r` not recognized and notes "<what> could not be
// read[: <detail>]" (no detail when `detail` is null).
void note_unreadable(ParseResult& r, std::string_view what, const char* detail);

// True, with `r` not recognized and the note "output is empty", when `text` is blank.
bool reject_empty(std::string_view text, ParseResult& r);

// `parse(text)`; an exception from it (bad_alloc, a bug) never leaves the parser: the result is
// then note_unreadable(r, what, ...) on an empty result.
template <class Parse>
ParseResult guarded_parse(std::string_view what, Parse&& parse, std::string_view text) noexcept {
  try {
    return parse(text);
  } catch (const std::exception& e) {
    ParseResult r;
    note_unreadable(r, what, e.what());
    return r;
  } catch (...) {
    ParseResult r;
    note_unreadable(r, what, nullptr);
    return r;
  }
}

// `body` as JSON; when it does not parse, once more up to the last of the characters in
// `closers` (tools print trailing text after the document). A discarded value when neither
// parses.
nlohmann::json parse_json_tolerant(std::string_view body, std::string_view closers);

}  // namespace grey
