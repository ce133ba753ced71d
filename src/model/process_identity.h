// Which pod, which container (SPEC §8): the identity of a host process, as plain data. Filled
// by telemetry/process_identity.h from /proc/<pid>/cgroup, /proc/<pid>/status and the kubelet's
// log directory; carried by every process record (telemetry, daemon events, /metrics,
// artifacts). The host pid itself is the record's own `pid`.
//
// Unknown stays empty: a field is set only when the source names it without doubt, and
// `notes` says why one that could have been known is empty.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace grey {

struct ProcessIdentity {
  std::optional<int> ns_pid;                  // innermost pid namespace's pid (last NSpid entry)
  std::string container_id;                   // 64 hex digits
  std::string container_runtime;              // "containerd" | "cri-o" | "docker" | "podman" | ""
  std::string pod_uid;                        // "1b2c...-..." (dashes restored from systemd's '_')
  std::string systemd_unit;                   // innermost .service or .scope unit ("nginx.service")
  std::string pod, pod_namespace, container;  // from the kubelet's log directory
  std::vector<std::string> notes;

  bool operator==(const ProcessIdentity&) const = default;
};

}  // namespace grey
