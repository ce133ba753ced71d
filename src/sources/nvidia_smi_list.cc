// Parser for `nvidia-smi -L`: one line per GPU, then one indented line per MIG instance:
//   GPU 0: NVIDIA H200 (UUID: GPU-00000000-0000-0000-0000-000000000000)
//     MIG 1c.3g.71gb  Device  0: (UUID: MIG-00000000-0000-0000-0000-000000000000)
// A MIG line becomes a partition of the GPU line above it (profile, device index, uuid),
// never a GPU of its own. Error texts are quoted like the other nvidia-smi parsers do.
#include <string>
#include <string_view>

#include "sources/nvidia_smi_common.h"
#include "sources/parse_common.h"
#include "sources/parsers.h"
#include "util/strings.h"

namespace grey {
namespace {

constexpr size_t kMaxDevices = 1024;
constexpr size_t kMaxPartitions = 1024;

// "(UUID: X)" at the end of a line -> X.
std::optional<std::string> uuid_of(std::string_view l) {
  size_t p = l.rfind("(UUID:");
  if (p == std::string_view::npos) return std::nullopt;
  std::string_view rest = l.substr(p + 6);
  size_t e = rest.find(')');
  if (e == std::string_view::npos) return std::nullopt;
  std::string_view u = trim(rest.substr(0, e));
  if (u.empty() || u.size() > 128) return std::nullopt;
  return std::string(u);
}

ParseResult parse_list(std::string_view text) {
  ParseResult r;
  if (reject_empty(text, r)) return r;
  auto lines = split_lines(text);
  bool any = false;
  for (auto raw : lines) {
    std::string_view l = trim(raw);
    if (starts_with(l, "GPU ")) {
      size_t colon = l.find(':');
      if (colon == std::string_view::npos) continue;
      auto idx = parse_int(trim(l.substr(4, colon - 4)));
      if (!idx || *idx < 0 || *idx >= 100000) continue;
      any = true;
      if (r.devices.size() >= kMaxDevices) continue;
      Observation o;
      o.f.vendor = "nvidia";
      o.f.kernel_driver = "nvidia";
      o.f.tool_index = static_cast<int>(*idx);
      std::string_view name = l.substr(colon + 1);
      if (size_t p = name.rfind("(UUID:"); p != std::string_view::npos) name = name.substr(0, p);
      name = trim(name);
      if (!name.empty()) o.f.model = nvsmi::clip(name);
      o.f.uuid = uuid_of(l);
      r.devices.push_back(std::move(o));
    } else if (starts_with(l, "MIG ")) {
      any = true;
      if (r.devices.empty()) {
        r.notes.push_back("MIG line before any GPU line; ignored: '" + nvsmi::clip(l) + "'");
        continue;
      }
      auto& parts = r.devices.back().f.partitions;
      if (parts.size() >= kMaxPartitions) continue;
      Partition p;
      // "MIG <profile>  Device  N: (UUID: ...)"
      std::string_view rest = trim(l.substr(4));
      size_t dev = rest.find("Device");
      if (dev != std::string_view::npos) {
        std::string_view prof = trim(rest.substr(0, dev));
        if (!prof.empty() && prof.find(' ') == std::string_view::npos)
          p.profile = std::string(prof);
        std::string_view after = rest.substr(dev + 6);
        size_t colon = after.find(':');
        if (colon != std::string_view::npos) {
          if (auto n = parse_int(trim(after.substr(0, colon))); n && *n >= 0 && *n < 100000)
            p.dev_index = static_cast<int>(*n);
        }
      }
      p.uuid = uuid_of(l);
      // The compute-instance prefix "2c." says the GPU instance holds several compute
      // instances; the memory in the profile name ("71gb") is rounded, so it is not used.
      parts.push_back(std::move(p));
    }
  }
  if (!any) {
    r.recognized = false;
    std::vector<std::string> quoted;
    for (size_t i = 0; i < lines.size() && i < 50 && quoted.size() < 4; ++i) {
      auto t = trim(lines[i].substr(0, 1024));
      if (!t.empty() && nvsmi::is_tool_error_line(t, {"failed"})) quoted.push_back(nvsmi::clip(t));
    }
    if (quoted.empty()) {
      r.notes.push_back("not nvidia-smi -L output");
    } else {
      std::string note = "nvidia-smi reported: ";
      for (size_t i = 0; i < quoted.size(); ++i) note += (i ? " / " : "") + quoted[i];
      r.notes.push_back(note);
    }
  }
  return r;
}

}  // namespace

ParseResult parse_nvidia_smi_list(std::string_view text) {
  return guarded_parse("nvidia-smi -L", parse_list, text);
}

}  // namespace grey
