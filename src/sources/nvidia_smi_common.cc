#include "sources/nvidia_smi_common.h"

#include "util/strings.h"

namespace grey::nvsmi {
namespace {
constexpr size_t kMaxQuoted = 240;
}  // namespace

std::string clip(std::string_view s) {
  return quote_for_note(s, kMaxQuoted);
}

bool is_error_marker(std::string_view s) {
  std::string l = to_lower(trim(s));
  return l == "err!" || l == "unknown error" || l == "gpu is lost";
}

bool is_missing_value(std::string_view s) {
  if (is_missing_marker(s) || is_error_marker(s)) return true;
  std::string l = to_lower(trim(s));
  return l == "requested functionality has been deprecated" || l == "insufficient permissions" ||
         l == "not found" || l == "unsupported";
}

bool is_tool_error_line(std::string_view line, std::initializer_list<const char*> extra) {
  static const char* const kPatterns[] = {
      "nvidia-smi has failed",
      "failed to initialize nvml",
      "couldn't communicate",
      "no supported gpus were found",
      "unable to determine the number",
      "driver/library version mismatch",
      "modprobe:",
      "insufficient permissions",
      "unable to load",
      "nvml library",
      "gpu is lost",
      "unknown error",
      "command not found",
      "no such file or directory",
      "error",
  };
  std::string low = to_lower(line);
  for (const char* p : kPatterns)
    if (low.find(p) != std::string::npos) return true;
  for (const char* p : extra)
    if (low.find(p) != std::string::npos) return true;
  return false;
}

}  // namespace grey::nvsmi
