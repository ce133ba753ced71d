// Helpers shared by the AMD tool parsers (amd-smi and rocm-smi).
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "sources/source.h"

namespace grey::amd {

// Deeper JSON than amd-smi or rocm-smi ever write; deeper input is rejected unparsed.
constexpr size_t kMaxJsonDepth = 64;

// rocm-smi and old amd-smi print the gfx target with a decimal stepping ("gfx9010" for gfx90a).
// LLVM names use one hex digit per minor/stepping. Returns the normalized name (or the input
// when it is already in LLVM form or cannot be interpreted); *changed says whether it was
// rewritten.
std::string normalize_gfx(std::string_view raw, bool* changed);

// Deepest bracket nesting outside strings; bounded work.
size_t json_depth(std::string_view s);

// When `body` nests deeper than kMaxJsonDepth: marks `r` not recognized with the note "JSON
// nested deeper than <tool> ever writes: not <tool> output" and returns true.
bool reject_too_deep(std::string_view body, std::string_view tool, ParseResult& r);

// A JSON string or number as text ("%.6g" for floats); "" for anything else.
std::string json_scalar(const nlohmann::json& v);

}  // namespace grey::amd
