// Process identity (SPEC §8): container, runtime, pod uid and systemd unit from
// /proc/<pid>/cgroup (cgroup v1 and v2; the systemd and cgroupfs drivers), the innermost pid
// from the NSpid line of /proc/<pid>/status, and pod, namespace and container names from the
// kubelet's log directory (`<pod-log-root>/<namespace>_<pod>_<uid>/<container>/`). No API
// server, no kubelet socket.
//
// Never a wrong attribution: an id that is cut short, a line without its newline (a truncated
// read), lines that name different containers, a pid reused while it was being read, a pod
// with several containers and no log link naming the id: each leaves the field empty, with a
// note saying why.
//
// Cost: a process already known (same pid and same start time, /proc/<pid>/stat field 22) costs
// one read of /proc/<pid>/stat; a new one four small reads and one listing of its pod's log
// directory. The log directories' own listings are cached and re-read at most once per round
// (end_round()), and only when a lookup misses.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "model/process_identity.h"
#include "util/host_fs.h"

namespace grey {

// The SPEC §8 fields of a process record (all but the host `pid`, which the record has):
// ns_pid (null when unknown), container_id, container_runtime, pod_uid, systemd_unit, pod,
// namespace, container ("" when unknown), and identity_notes (why some are empty).
nlohmann::json to_json(const ProcessIdentity& id);

// What one cgroup path (or a whole /proc/<pid>/cgroup) says. Pure.
struct CgroupIdentity {
  std::string container_id, container_runtime, pod_uid, systemd_unit;
  std::vector<std::string> notes;
};

// One cgroup path ("/kubepods.slice/.../cri-containerd-<id>.scope").
CgroupIdentity classify_cgroup_path(std::string_view path);
// A whole /proc/<pid>/cgroup text: every complete "hierarchy:controllers:path" line (v2's
// "0::/path" and v1's controller lines alike); lines that disagree on the container or pod
// leave both empty.
CgroupIdentity parse_proc_cgroup(std::string_view text);
// Innermost pid of the "NSpid:" line of /proc/<pid>/status; nullopt without one.
std::optional<int> parse_nspid(std::string_view status);
// Field 22 (starttime, clock ticks since boot) of /proc/<pid>/stat; the command in field 2 may
// hold spaces and parentheses.
std::optional<uint64_t> parse_stat_start_time(std::string_view stat);

// "<namespace>_<pod>_<uid>" (kubelet >= 1.14) or "<uid>" (older kubelets: names empty).
struct PodLogDir {
  std::string pod_namespace, pod, uid;
};
std::optional<PodLogDir> parse_pod_log_dir_name(std::string_view name);
// "<pod>_<namespace>_<container>-<container id>.log", the kubelet's links in /var/log/containers.
struct ContainerLogLink {
  std::string pod, pod_namespace, container, container_id;
};
std::optional<ContainerLogLink> parse_container_log_name(std::string_view name);

struct ProcessIdentityOptions {
  std::string pod_log_root = "/var/log/pods";
  // The kubelet's per-container links; empty: `containers` beside pod_log_root.
  std::string container_log_root;
  // A known process not seen for this many rounds is forgotten.
  int forget_after_rounds = 3;
};

// Not thread-safe: one owner (the telemetry collector's sampling thread).
class ProcessIdentityResolver {
 public:
  explicit ProcessIdentityResolver(std::shared_ptr<HostFs> fs, ProcessIdentityOptions o = {});

  // The identity of host pid `pid`, from the cache when the pid and its start time are known.
  // Never throws; a process that ended (or whose pid was reused) while being read gets an empty
  // identity with a note, and is not cached.
  ProcessIdentity resolve(int pid);
  // Ends a round (one telemetry sample): forgets processes not seen for a while and lets the
  // log directories be listed again on the next miss.
  void end_round();

  size_t cached() const { return known_.size(); }
  // How many times each directory was listed (tests and the benchmark).
  uint64_t pod_root_listings() const { return pod_root_listings_; }
  uint64_t container_root_listings() const { return container_root_listings_; }

 private:
  struct Known {
    uint64_t start_time = 0;
    uint64_t last_round = 0;
    ProcessIdentity id;
  };
  void name_pod(ProcessIdentity& id);
  const PodLogDir* pod_dir(const std::string& uid, std::string* dir_name, std::string* why);
  const ContainerLogLink* container_link(const std::string& container_id, bool* index_readable);

  std::shared_ptr<HostFs> fs_;
  ProcessIdentityOptions o_;
  std::unordered_map<int, Known> known_;
  uint64_t round_ = 0;
  // uid -> (directory name, parsed)
  std::unordered_map<std::string, std::pair<std::string, PodLogDir>> pods_;
  std::unordered_map<std::string, ContainerLogLink> links_;  // by container id
  bool pods_listed_this_round_ = false, links_listed_this_round_ = false;
  std::string pod_root_problem_;
  bool links_readable_ = false;
  uint64_t pod_root_listings_ = 0, container_root_listings_ = 0;
};

}  // namespace grey
