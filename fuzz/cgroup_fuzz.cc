// libFuzzer target for the process identity parsers: /proc/<pid>/cgroup (whole file and each
// path), the NSpid line of /proc/<pid>/status, field 22 of /proc/<pid>/stat and the kubelet's
// log names. Besides not crashing, whatever is attributed must have the shape of the real thing:
// a container id of 64 lower-case hex digits, a runtime from the fixed list, a pod uid that is a
// UUID or 32 hex digits; anything else traps.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "telemetry/process_identity.h"

namespace {

bool lower_hex(std::string_view s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

void check(const grey::CgroupIdentity& c) {
  if (!c.container_id.empty() && (c.container_id.size() != 64 || !lower_hex(c.container_id)))
    __builtin_trap();
  const std::string& rt = c.container_runtime;
  if (!rt.empty() && rt != "containerd" && rt != "cri-o" && rt != "docker" && rt != "podman")
    __builtin_trap();
  if (!rt.empty() && c.container_id.empty()) __builtin_trap();
  if (!c.pod_uid.empty()) {
    std::string hex;
    for (char ch : c.pod_uid)
      if (ch != '-') hex += ch;
    if (!(c.pod_uid.size() == 32 || c.pod_uid.size() == 36) || hex.size() != 32 || !lower_hex(hex))
      __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* d, size_t n) {
  std::string_view text(reinterpret_cast<const char*>(d), n);
  check(grey::parse_proc_cgroup(text));
  check(grey::classify_cgroup_path(text));
  // Every cut of a cgroup file is what a short read would give: never more than the whole.
  auto whole = grey::parse_proc_cgroup(text);
  auto half = grey::parse_proc_cgroup(text.substr(0, n / 2));
  check(half);
  if (!half.container_id.empty() && !whole.container_id.empty() &&
      half.container_id != whole.container_id)
    __builtin_trap();
  if (auto v = grey::parse_nspid(text); v && *v <= 0) __builtin_trap();
  (void)grey::parse_stat_start_time(text);
  (void)grey::parse_pod_log_dir_name(text);
  (void)grey::parse_container_log_name(text);
  return 0;
}
