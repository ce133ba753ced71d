// Helpers shared by the nvidia-smi parsers (XML, CSV and table forms).
#pragma once

#include <exception>
#include <initializer_list>
#include <string>
#include <string_view>

#include "sources/source.h"

namespace grey::nvsmi {

// A quotable excerpt: trimmed, at most 240 bytes, control bytes replaced by '?'.
std::string clip(std::string_view s);

// The error spellings nvidia-smi prints in place of a value: "ERR!", "Unknown Error",
// "GPU is Lost" (case-insensitive, trimmed).
bool is_error_marker(std::string_view s);

// is_missing_marker() plus every unbracketed spelling nvidia-smi uses for an unknown value:
// is_error_marker() and "Requested functionality has been deprecated", "Insufficient
// Permissions", "Not Found", "Unsupported".
bool is_missing_value(std::string_view s);

// True when `line` looks like an error text nvidia-smi prints instead of its output
// ("NVIDIA-SMI has failed ...", "Failed to initialize NVML ...", ...). `extra` adds
// format-specific patterns (lower case, matched as substrings).
bool is_tool_error_line(std::string_view line, std::initializer_list<const char*> extra = {});

}  // namespace grey::nvsmi
