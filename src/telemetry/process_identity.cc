// Process identity from procfs and the kubelet's log directory (process_identity.h).
//
// The cgroup path formats recognized, outermost component first (real examples, with their
// sources, in tests/process_identity_test.cc):
//   systemd driver   .../kubepods-<qos>-pod<uid with '_'>.slice/<prefix>-<id>.scope
//                    prefixes: cri-containerd (containerd), crio (CRI-O), docker, libpod
//                    (podman); crio-conmon / libpod-conmon scopes hold the monitor, not the
//                    container. kind nests it all under kubelet.slice/kubelet-kubepods.slice.
//   systemd, v1 controllers systemd does not manage:
//                    .../kubepods-<qos>-pod<uid>.slice:<prefix>:<id>
//   cgroupfs driver  /kubepods/<qos>/pod<uid>/<id> (runtime not named), .../crio-<id> (CRI-O)
//   plain Docker     /docker/<id>, /system.slice/docker-<id>.scope
//   podman           /machine.slice/libpod-<id>.scope[/container],
//                    /user.slice/user-<uid>.slice/user@<uid>.service/user.slice/libpod-<id>.scope
//                    (rootless), .../<unit>.service/libpod-payload-<id> (--cgroups=split),
//                    /libpod_parent/libpod-<id> (cgroupfs)
//   services         /system.slice/<name>.service, user units under user@<uid>.service
#include "telemetry/process_identity.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "util/strings.h"

namespace grey {

namespace {

bool is_lower_hex(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  });
}

bool is_container_id(std::string_view s) {
  return s.size() == 64 && is_lower_hex(s);
}

// A Kubernetes pod UID: an RFC 4122 UUID, or the 32 hex digits of a static pod's hash.
bool is_pod_uid(std::string_view s) {
  if (s.size() == 32) return is_lower_hex(s);
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !is_lower_hex(s.substr(i, 1))) return false;
  }
  return true;
}

// A DNS-1123 label, as Kubernetes requires of namespace and container names.
bool is_dns_label(std::string_view s) {
  if (s.empty() || s.size() > 63 || s.front() == '-' || s.back() == '-') return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

// A pod name: a DNS-1123 subdomain (labels joined by dots).
bool is_dns_subdomain(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  for (std::string_view part : split(s, '.'))
    if (!is_dns_label(part)) return false;
  return true;
}

std::string short_id(std::string_view id) {
  return std::string(id.substr(0, 12));
}

// "kubepods-burstable-pod1b2c_..._.slice" -> "1b2c-...-..." when it is one.
std::string pod_uid_of_slice(std::string_view slice) {
  if (!ends_with(slice, ".slice")) return "";
  slice.remove_suffix(6);
  size_t p = slice.rfind("-pod");
  if (p == std::string_view::npos) return "";
  std::string uid(slice.substr(p + 4));
  std::replace(uid.begin(), uid.end(), '_', '-');
  return is_pod_uid(uid) ? uid : "";
}

struct Prefix {
  std::string_view prefix, runtime;  // runtime "" : a container monitor, not a container
};
// Longest first where one prefix starts another.
constexpr Prefix kScopePrefixes[] = {
    {"cri-containerd-", "containerd"},
    {"crio-conmon-", ""},
    {"crio-", "cri-o"},
    {"docker-", "docker"},
    {"libpod-conmon-", ""},
    {"libpod-", "podman"},
};

const Prefix* match_prefix(std::string_view name, std::string_view* rest) {
  for (const Prefix& p : kScopePrefixes)
    if (starts_with(name, p.prefix)) {
      *rest = name.substr(p.prefix.size());
      return &p;
    }
  return nullptr;
}

// The runtime of the middle field of "<slice>:<prefix>:<id>".
std::string_view runtime_of_prefix(std::string_view p) {
  if (p == "cri-containerd") return "containerd";
  if (p == "crio") return "cri-o";
  if (p == "docker") return "docker";
  if (p == "libpod") return "podman";
  return "";
}

void add_note(std::vector<std::string>& notes, std::string note) {
  if (std::find(notes.begin(), notes.end(), note) == notes.end()) notes.push_back(std::move(note));
}

}  // namespace

nlohmann::json to_json(const ProcessIdentity& id) {
  return {{"ns_pid", id.ns_pid ? nlohmann::json(*id.ns_pid) : nlohmann::json(nullptr)},
          {"container_id", id.container_id},
          {"container_runtime", id.container_runtime},
          {"pod_uid", id.pod_uid},
          {"systemd_unit", id.systemd_unit},
          {"pod", id.pod},
          {"namespace", id.pod_namespace},
          {"container", id.container},
          {"identity_notes", id.notes}};
}

CgroupIdentity classify_cgroup_path(std::string_view path) {
  CgroupIdentity r;
  std::vector<std::string_view> parts;
  for (std::string_view c : split(path, '/'))
    if (!c.empty()) parts.push_back(c);
  bool kube = false;
  std::string unit, unit_of_container;
  // The innermost container wins (a kind or minikube node is itself a container; the pod's
  // container is inside it); the unit is the innermost one at or above that container.
  auto take = [&](std::string_view id, std::string_view runtime) {
    r.container_id = std::string(id);
    r.container_runtime = std::string(runtime);
    unit_of_container = unit;
  };
  auto monitor = [&](std::string_view what, std::string_view id) {
    add_note(r.notes, "a container monitor (" + std::string(what) + ") of container " +
                          short_id(id) + ", not the container itself");
  };
  for (size_t i = 0; i < parts.size(); ++i) {
    std::string_view c = parts[i];
    if (contains(c, "kubepods")) kube = true;
    if (contains(c, ":")) {
      // "<slice>:<prefix>:<id>": runc's systemd path, seen as is in v1 hierarchies that
      // systemd does not manage.
      auto f = split(c, ':');
      if (f.size() != 3) continue;
      std::string uid = kube ? pod_uid_of_slice(f[0]) : "";
      if (!uid.empty()) r.pod_uid = uid;
      std::string_view rt = runtime_of_prefix(f[1]);
      if (!rt.empty() && is_container_id(f[2])) {
        unit = std::string(f[1]) + "-" + std::string(f[2]) + ".scope";  // the unit runc makes
        take(f[2], rt);
      }
      continue;
    }
    if (ends_with(c, ".slice")) {
      std::string uid = kube ? pod_uid_of_slice(c) : "";
      if (!uid.empty()) r.pod_uid = uid;
      continue;
    }
    if (ends_with(c, ".service")) {
      unit = std::string(c);
      continue;
    }
    std::string_view id;
    if (ends_with(c, ".scope")) {
      unit = std::string(c);
      const Prefix* p = match_prefix(c.substr(0, c.size() - 6), &id);
      if (p && is_container_id(id)) {
        if (p->runtime.empty())
          monitor(p->prefix.substr(0, p->prefix.size() - 1), id);
        else
          take(id, p->runtime);
      }
      continue;
    }
    // cgroupfs names.
    if (kube && starts_with(c, "pod") && is_pod_uid(c.substr(3))) {
      r.pod_uid = std::string(c.substr(3));
      continue;
    }
    if (starts_with(c, "libpod-payload-") && is_container_id(c.substr(15))) {
      take(c.substr(15), "podman");
      continue;
    }
    if (const Prefix* p = match_prefix(c, &id); p && is_container_id(id)) {
      if (p->runtime.empty())
        monitor(p->prefix.substr(0, p->prefix.size() - 1), id);
      else
        take(id, p->runtime);
      continue;
    }
    if (c == "docker" && i + 1 < parts.size() && is_container_id(parts[i + 1])) {
      take(parts[++i], "docker");
      continue;
    }
    if (kube && !r.pod_uid.empty() && is_container_id(c)) take(c, "");
  }
  if (!r.container_id.empty()) {
    r.systemd_unit = unit_of_container;
    if (r.container_runtime.empty())
      add_note(r.notes, "cgroupfs driver: the cgroup path does not name the container runtime");
  } else {
    r.systemd_unit = unit;
  }
  return r;
}

CgroupIdentity parse_proc_cgroup(std::string_view text) {
  CgroupIdentity r;
  struct Line {
    CgroupIdentity c;
    int rank;  // which line names the systemd unit best: 0 "0::", 1 "name=systemd", 2 others
    std::string_view path;
  };
  std::vector<Line> lines;
  size_t malformed = 0;
  bool truncated = false;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) {
      truncated = true;  // /proc always ends each line: this one was cut short
      break;
    }
    std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    size_t a = line.find(':');
    size_t b = a == std::string_view::npos ? a : line.find(':', a + 1);
    if (b == std::string_view::npos) {
      ++malformed;
      continue;
    }
    std::string_view hid = line.substr(0, a), ctl = line.substr(a + 1, b - a - 1),
                     path = line.substr(b + 1);
    if (hid.empty() || hid.find_first_not_of("0123456789") != std::string_view::npos ||
        path.empty() || path.front() != '/') {
      ++malformed;
      continue;
    }
    int rank = hid == "0" && ctl.empty() ? 0 : (ctl == "name=systemd" ? 1 : 2);
    lines.push_back({classify_cgroup_path(path), rank, path});
  }
  if (truncated) add_note(r.notes, "the cgroup file ends in a cut-short line (ignored)");
  if (malformed) add_note(r.notes, std::to_string(malformed) + " malformed cgroup line(s) ignored");
  if (lines.empty()) {
    add_note(r.notes, "no readable cgroup line");
    return r;
  }
  std::set<std::string> ids, pods;
  for (const Line& l : lines) {
    if (!l.c.container_id.empty()) ids.insert(l.c.container_id);
    if (!l.c.pod_uid.empty()) pods.insert(l.c.pod_uid);
    for (const auto& n : l.c.notes) add_note(r.notes, n);
  }
  if (pods.size() == 1) r.pod_uid = *pods.begin();
  if (pods.size() > 1) add_note(r.notes, "cgroup lines name different pods: none taken");
  std::stable_sort(lines.begin(), lines.end(),
                   [](const Line& a, const Line& b) { return a.rank < b.rank; });
  if (ids.size() > 1) {
    std::string list;
    for (const auto& id : ids) list += (list.empty() ? "" : ", ") + short_id(id);
    add_note(r.notes, "cgroup lines name different containers (" + list + "): none taken");
  } else if (ids.size() == 1) {
    r.container_id = *ids.begin();
    std::set<std::string> runtimes;
    for (const Line& l : lines) {
      if (l.c.container_id != r.container_id) continue;
      if (!l.c.container_runtime.empty()) runtimes.insert(l.c.container_runtime);
      if (r.systemd_unit.empty()) r.systemd_unit = l.c.systemd_unit;
    }
    if (runtimes.size() == 1) {
      r.container_runtime = *runtimes.begin();
      // The cgroupfs note of a line that did not name the runtime no longer applies.
      r.notes.erase(std::remove_if(r.notes.begin(), r.notes.end(),
                                   [](const std::string& n) { return starts_with(n, "cgroupfs"); }),
                    r.notes.end());
    } else if (runtimes.size() > 1) {
      add_note(r.notes, "cgroup lines name different runtimes: none taken");
    }
    return r;
  }
  for (const Line& l : lines)
    if (r.systemd_unit.empty()) r.systemd_unit = l.c.systemd_unit;
  if (ids.empty())
    add_note(r.notes, "not in a container (cgroup " + std::string(lines[0].path) + ")");
  return r;
}

std::optional<int> parse_nspid(std::string_view status) {
  size_t pos = 0;
  while (pos < status.size()) {
    size_t nl = status.find('\n', pos);
    if (nl == std::string_view::npos) return std::nullopt;  // a cut-short line proves nothing
    std::string_view line = status.substr(pos, nl - pos);
    pos = nl + 1;
    if (!starts_with(line, "NSpid:")) continue;
    std::optional<int> last;
    size_t i = 6;
    while (i < line.size()) {
      while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
      size_t j = i;
      while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
      if (j == i) break;
      auto v = parse_int(line.substr(i, j - i));
      if (!v || *v <= 0 || *v > 0x7fffffff) return std::nullopt;
      last = static_cast<int>(*v);
      i = j;
    }
    return last;
  }
  return std::nullopt;
}

std::optional<uint64_t> parse_stat_start_time(std::string_view stat) {
  size_t close = stat.rfind(')');
  if (close == std::string_view::npos) return std::nullopt;
  std::string_view rest = stat.substr(close + 1);
  // Fields 3.. follow, one space apart; starttime is field 22, the 20th of them. Field 23 must
  // follow too, so that a read cut inside field 22 is not taken for a shorter number.
  int field = 2;
  size_t i = 0;
  while (i < rest.size()) {
    while (i < rest.size() && rest[i] == ' ') ++i;
    size_t j = i;
    while (j < rest.size() && rest[j] != ' ' && rest[j] != '\n') ++j;
    if (j == i) break;
    ++field;
    if (field == 22) {
      std::string_view tok = rest.substr(i, j - i);
      if (j >= rest.size() || tok.size() > 19 ||
          tok.find_first_not_of("0123456789") != std::string_view::npos)
        return std::nullopt;
      uint64_t v = 0;
      for (char c : tok) v = v * 10 + static_cast<uint64_t>(c - '0');
      return v;
    }
    i = j;
    if (i < rest.size() && rest[i] == '\n') break;
  }
  return std::nullopt;
}

std::optional<PodLogDir> parse_pod_log_dir_name(std::string_view name) {
  auto f = split(name, '_');
  if (f.size() == 1 && is_pod_uid(f[0])) return PodLogDir{"", "", std::string(f[0])};
  if (f.size() != 3 || !is_dns_label(f[0]) || !is_dns_subdomain(f[1]) || !is_pod_uid(f[2]))
    return std::nullopt;
  return PodLogDir{std::string(f[0]), std::string(f[1]), std::string(f[2])};
}

std::optional<ContainerLogLink> parse_container_log_name(std::string_view name) {
  if (!ends_with(name, ".log")) return std::nullopt;
  name.remove_suffix(4);
  size_t dash = name.rfind('-');
  if (dash == std::string_view::npos || !is_container_id(name.substr(dash + 1)))
    return std::nullopt;
  auto f = split(name.substr(0, dash), '_');
  if (f.size() != 3 || !is_dns_subdomain(f[0]) || !is_dns_label(f[1]) || !is_dns_label(f[2]))
    return std::nullopt;
  return ContainerLogLink{std::string(f[0]), std::string(f[1]), std::string(f[2]),
                          std::string(name.substr(dash + 1))};
}

ProcessIdentityResolver::ProcessIdentityResolver(std::shared_ptr<HostFs> fs,
                                                 ProcessIdentityOptions o)
    : fs_(std::move(fs)), o_(std::move(o)) {
  while (o_.pod_log_root.size() > 1 && o_.pod_log_root.back() == '/') o_.pod_log_root.pop_back();
  if (o_.container_log_root.empty()) {
    size_t slash = o_.pod_log_root.rfind('/');
    o_.container_log_root =
        (slash == std::string::npos ? std::string(".") : o_.pod_log_root.substr(0, slash)) +
        "/containers";
  }
}

ProcessIdentity ProcessIdentityResolver::resolve(int pid) {
  ProcessIdentity id;
  if (!fs_ || pid <= 0) {
    id.notes.push_back("no host pid");
    return id;
  }
  const std::string base = "/proc/" + std::to_string(pid);
  auto stat = fs_->read(base + "/stat", 4096);
  if (!stat) {
    id.notes.push_back(base + "/stat is unreadable: the process has ended");
    return id;
  }
  auto start = parse_stat_start_time(*stat);
  if (!start) {
    id.notes.push_back(base + "/stat has no start time");
    return id;
  }
  auto it = known_.find(pid);
  if (it != known_.end() && it->second.start_time == *start) {
    Known& k = it->second;
    k.last_round = round_;
    // Names only: a pod whose log directory was missing may have one now (one listing a
    // round at most, shared by every process).
    if (!k.id.pod_uid.empty() && k.id.pod.empty() && k.id.pod_namespace.empty()) {
      ProcessIdentity again = k.id;
      again.notes.erase(std::remove_if(again.notes.begin(), again.notes.end(),
                                       [](const std::string& n) { return starts_with(n, "pod "); }),
                        again.notes.end());
      name_pod(again);
      if (!again.pod.empty()) k.id = std::move(again);
    }
    return k.id;
  }
  auto cgroup = fs_->read(base + "/cgroup", 1 << 16);
  auto status = fs_->read(base + "/status", 1 << 14);
  // The pid may have been reused between the first read and the others: the start time read
  // again after them must be the same.
  auto stat2 = fs_->read(base + "/stat", 4096);
  auto start2 = stat2 ? parse_stat_start_time(*stat2) : std::nullopt;
  if (start2 != start) {
    id.notes.push_back("process " + std::to_string(pid) +
                       " ended (or its pid was reused) while it was read");
    if (it != known_.end()) known_.erase(it);
    return id;
  }
  if (cgroup) {
    CgroupIdentity c = parse_proc_cgroup(*cgroup);
    id.container_id = std::move(c.container_id);
    id.container_runtime = std::move(c.container_runtime);
    id.pod_uid = std::move(c.pod_uid);
    id.systemd_unit = std::move(c.systemd_unit);
    id.notes = std::move(c.notes);
  } else {
    id.notes.push_back(base + "/cgroup is unreadable");
  }
  if (status) {
    id.ns_pid = parse_nspid(*status);
    if (!id.ns_pid) id.notes.push_back(base + "/status has no NSpid line (kernel before 4.1?)");
  } else {
    id.notes.push_back(base + "/status is unreadable");
  }
  name_pod(id);
  Known k;
  k.start_time = *start;
  k.last_round = round_;
  k.id = id;
  known_[pid] = std::move(k);
  return id;
}

void ProcessIdentityResolver::end_round() {
  ++round_;
  for (auto it = known_.begin(); it != known_.end();) {
    if (round_ - it->second.last_round > static_cast<uint64_t>(std::max(1, o_.forget_after_rounds)))
      it = known_.erase(it);
    else
      ++it;
  }
  pods_listed_this_round_ = false;
  links_listed_this_round_ = false;
}

const PodLogDir* ProcessIdentityResolver::pod_dir(const std::string& uid, std::string* dir_name,
                                                  std::string* why) {
  auto it = pods_.find(uid);
  if (it == pods_.end() && !pods_listed_this_round_) {
    pods_listed_this_round_ = true;
    ++pod_root_listings_;
    pods_.clear();
    std::vector<std::string> names = fs_->list(o_.pod_log_root);
    for (const auto& n : names) {
      auto p = parse_pod_log_dir_name(n);
      if (!p) continue;
      auto& slot = pods_[p->uid];
      // Both layouts for one uid (an in-place kubelet upgrade): the named one wins.
      if (slot.first.empty() || !p->pod.empty()) slot = {n, *p};
    }
    if (names.empty())
      pod_root_problem_ = fs_->exists(o_.pod_log_root)
                              ? o_.pod_log_root + " is empty or unreadable"
                              : o_.pod_log_root + " does not exist (see --pod-log-root)";
    else
      pod_root_problem_.clear();
    it = pods_.find(uid);
  }
  if (it == pods_.end()) {
    *why =
        "pod " + uid + ": " +
        (pod_root_problem_.empty() ? "no log directory in " + o_.pod_log_root : pod_root_problem_);
    return nullptr;
  }
  *dir_name = it->second.first;
  return &it->second.second;
}

const ContainerLogLink* ProcessIdentityResolver::container_link(const std::string& container_id,
                                                                bool* index_readable) {
  auto it = links_.find(container_id);
  if (it == links_.end() && !links_listed_this_round_) {
    links_listed_this_round_ = true;
    ++container_root_listings_;
    links_.clear();
    std::vector<std::string> names = fs_->list(o_.container_log_root);
    links_readable_ = !names.empty();
    for (const auto& n : names)
      if (auto l = parse_container_log_name(n)) links_[l->container_id] = *l;
    it = links_.find(container_id);
  }
  *index_readable = links_readable_;
  return it == links_.end() ? nullptr : &it->second;
}

void ProcessIdentityResolver::name_pod(ProcessIdentity& id) {
  if (id.pod_uid.empty()) return;
  std::string dir, why;
  const PodLogDir* p = pod_dir(id.pod_uid, &dir, &why);
  if (!p) {
    add_note(id.notes, why);
    return;
  }
  if (p->pod.empty()) {
    add_note(id.notes, "pod " + id.pod_uid + ": its log directory " + dir +
                           " has the pre-1.14 layout, which carries no names");
    return;
  }
  id.pod = p->pod;
  id.pod_namespace = p->pod_namespace;
  if (id.container_id.empty()) return;
  const std::string cid = short_id(id.container_id);
  bool links_readable = false;
  if (const ContainerLogLink* l = container_link(id.container_id, &links_readable)) {
    if (l->pod == p->pod && l->pod_namespace == p->pod_namespace)
      id.container = l->container;
    else
      add_note(id.notes, "the log link of container " + cid + " names pod " + l->pod_namespace +
                             "/" + l->pod + ", not " + p->pod_namespace + "/" + p->pod);
    return;
  }
  if (links_readable) {
    // Every running container has a link: none for this id means it logs nowhere, e.g. the
    // pod's sandbox (pause) container.
    add_note(id.notes, "no log link in " + o_.container_log_root + " names container " + cid +
                           " (a pod sandbox?)");
    return;
  }
  std::vector<std::string> names;
  for (auto& n : fs_->list(o_.pod_log_root + "/" + dir))
    if (is_dns_label(n)) names.push_back(std::move(n));
  if (names.size() == 1) {
    id.container = names[0];
    return;
  }
  std::string list;
  for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
  add_note(id.notes, "pod " + p->pod_namespace + "/" + p->pod + " has " +
                         std::to_string(names.size()) + " container log directories" +
                         (list.empty() ? "" : " (" + list + ")") + " and " + o_.container_log_root +
                         " is unreadable: container " + cid + " is not named");
}

}  // namespace grey
