// Per-process GPU usage from DRM fdinfo (Documentation/gpu/drm-usage-stats.rst and the
// driver pages amdgpu, i915, xe-drm-usage-stats):
//   drm-driver, drm-pdev (PCI slot), drm-client-id (one per struct drm_file: several fds or
//   processes may share one client, which must be counted once),
//   drm-engine-<e>: <n> ns (busy time; amdgpu gfx/compute/dma/dec/enc..., i915 render/copy/
//   video/video-enhance/compute) with drm-engine-capacity-<e> (instances; default 1),
//   drm-cycles-<e> / drm-total-cycles-<e> (xe: busy cycles over GPU timestamp cycles),
//   drm-memory-<r> (older amdgpu/i915), drm-total-<r>, drm-resident-<r> ... "<n> [KiB|MiB]".
// Device-local memory ("VRAM") is the sum over the regions named vram* (amdgpu "vram", xe
// "vram0", "vram1") and local* (i915 "local0"): per region drm-resident-<r> where present
// (what is actually in VRAM), else drm-memory-<r>, else drm-total-<r>. GTT, system and stolen
// memory are not VRAM.
// Kernels before 5.19 printed an older amdgpu format ("pdev:", "pasid:", "vram mem: N kB",
// "gfx0: 12.5%"): read as well (legacy_amdgpu).
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <limits>
#include <mutex>
#include <set>
#include <unordered_map>
#include <vector>

#include "telemetry/telemetry.h"
#include "util/strings.h"
#include "util/sysfs.h"

namespace grey {

namespace {

constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();

// Leading decimal digits of `s` (after trimming); `rest` gets what follows, trimmed.
std::optional<uint64_t> leading_uint(std::string_view s, std::string_view* rest) {
  s = trim(s);
  size_t n = 0;
  uint64_t v = 0;
  while (n < s.size() && std::isdigit(static_cast<unsigned char>(s[n]))) {
    uint64_t d = static_cast<uint64_t>(s[n] - '0');
    if (v > (kMax - d) / 10) return std::nullopt;  // overflow
    v = v * 10 + d;
    ++n;
  }
  if (n == 0) return std::nullopt;
  if (rest) *rest = trim(s.substr(n));
  return v;
}

// "<n> ns" or "<n>".
std::optional<uint64_t> parse_ns(std::string_view s) {
  std::string_view rest;
  auto v = leading_uint(s, &rest);
  if (!v || !(rest.empty() || rest == "ns")) return std::nullopt;
  return v;
}

std::optional<uint64_t> parse_plain(std::string_view s) {
  std::string_view rest;
  auto v = leading_uint(s, &rest);
  if (!v || !rest.empty()) return std::nullopt;
  return v;
}

std::optional<double> parse_percent(std::string_view s) {
  s = trim(s);
  if (!ends_with(s, "%")) return std::nullopt;
  auto v = parse_double(s.substr(0, s.size() - 1));
  if (!v || *v < 0 || *v > 100000) return std::nullopt;
  return v;
}

bool is_local_region(std::string_view r) {
  return starts_with(r, "vram") || starts_with(r, "local");
}

struct Region {
  std::optional<uint64_t> resident, memory, total;
};

uint64_t sat_add(uint64_t a, uint64_t b) {
  return a > kMax - b ? kMax : a + b;
}

}  // namespace

std::optional<uint64_t> parse_fdinfo_size(std::string_view value) {
  std::string_view unit;
  auto v = leading_uint(value, &unit);
  if (!v) return std::nullopt;
  uint64_t mul = 1;
  if (unit.empty() || unit == "B") {
    mul = 1;
  } else if (unit == "KiB" || unit == "kB" || unit == "KB" || unit == "kiB") {
    mul = 1024;  // the legacy amdgpu "kB" is KiB (the kernel printed bytes / 1024)
  } else if (unit == "MiB") {
    mul = 1024 * 1024;
  } else if (unit == "GiB") {
    mul = 1024ull * 1024 * 1024;
  } else {
    return std::nullopt;
  }
  if (*v > kMax / mul) return std::nullopt;
  return *v * mul;
}

std::optional<DrmFdinfo> parse_drm_fdinfo(std::string_view text) {
  size_t nul = text.find('\0');
  if (nul != std::string_view::npos) text = text.substr(0, nul);
  DrmFdinfo d;
  bool has_driver = false;
  std::optional<std::string> legacy_pdev;
  std::optional<uint64_t> legacy_vram, legacy_pasid;
  std::map<std::string, Region, std::less<>> regions;
  for (std::string_view line : split_lines(text)) {
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) continue;
    std::string_view key = trim(line.substr(0, colon));
    std::string_view val = trim(line.substr(colon + 1));
    if (key.empty()) continue;
    if (starts_with(key, "drm-")) {
      std::string_view k = key.substr(4);
      if (k == "driver") {
        if (!val.empty()) {
          d.driver = std::string(val);
          has_driver = true;
        }
      } else if (k == "pdev") {
        d.pdev = normalize_bus_id(val);
      } else if (k == "client-id") {
        d.client_id = parse_plain(val);
      } else if (starts_with(k, "engine-capacity-")) {
        auto v = parse_plain(val);
        if (v && *v > 0) d.capacity[std::string(k.substr(16))] = *v;
      } else if (starts_with(k, "engine-")) {
        if (auto v = parse_ns(val)) d.engine_ns[std::string(k.substr(7))] = *v;
      } else if (starts_with(k, "total-cycles-")) {
        if (auto v = parse_plain(val)) d.total_cycles[std::string(k.substr(13))] = *v;
      } else if (starts_with(k, "cycles-")) {
        if (auto v = parse_plain(val)) d.cycles[std::string(k.substr(7))] = *v;
      } else {
        struct Kind {
          const char* prefix;
          std::optional<uint64_t> Region::*field;
        };
        static const Kind kinds[] = {{"memory-", &Region::memory},
                                     {"resident-", &Region::resident},
                                     {"total-", &Region::total}};
        for (const Kind& kd : kinds) {
          if (!starts_with(k, kd.prefix)) continue;
          std::string_view region = k.substr(std::strlen(kd.prefix));
          if (!is_local_region(region)) break;
          if (auto v = parse_fdinfo_size(val)) regions[std::string(region)].*(kd.field) = *v;
          break;
        }
      }
      continue;
    }
    // The pre-5.19 amdgpu format.
    if (key == "pdev") {
      legacy_pdev = normalize_bus_id(val);
    } else if (key == "pasid") {
      legacy_pasid = parse_plain(val);
    } else if (key == "vram mem") {
      legacy_vram = parse_fdinfo_size(val);
    } else if (starts_with(key, "gfx") || starts_with(key, "compute") || starts_with(key, "dma") ||
               starts_with(key, "dec") || starts_with(key, "enc")) {
      if (auto p = parse_percent(val)) {
        if (!d.legacy_busy_pct || *p > *d.legacy_busy_pct) d.legacy_busy_pct = *p;
      }
    }
  }
  if (!has_driver) {
    if (!legacy_pdev || !legacy_vram) return std::nullopt;
    d.driver = "amdgpu";
    d.legacy_amdgpu = true;
    d.pdev = legacy_pdev;
    d.vram_bytes = legacy_vram;
    d.client_id = legacy_pasid;  // one GPU VM per pasid: the closest thing to a client id
    if (d.legacy_busy_pct && *d.legacy_busy_pct > 100) d.legacy_busy_pct = 100.0;
    return d;
  }
  d.legacy_busy_pct.reset();
  if (!regions.empty()) {
    uint64_t sum = 0;
    bool any = false;
    for (const auto& [name, r] : regions) {
      std::optional<uint64_t> v = r.resident ? r.resident : r.memory ? r.memory : r.total;
      if (!v) continue;
      sum = sat_add(sum, *v);
      any = true;
    }
    if (any) d.vram_bytes = sum;
  }
  return d;
}

std::optional<double> drm_busy_pct(const DrmFdinfo& before, const DrmFdinfo& after,
                                   uint64_t dt_ns) {
  std::optional<double> best;
  auto consider = [&](double pct) {
    pct = std::clamp(pct, 0.0, 100.0);
    if (!best || pct > *best) best = pct;
  };
  auto capacity = [&](const std::string& e) -> double {
    auto it = after.capacity.find(e);
    return it == after.capacity.end() ? 1.0 : static_cast<double>(it->second);
  };
  if (dt_ns > 0) {
    for (const auto& [e, ns] : after.engine_ns) {
      auto it = before.engine_ns.find(e);
      if (it == before.engine_ns.end()) continue;
      uint64_t d = ns >= it->second ? ns - it->second : 0;
      consider(100.0 * static_cast<double>(d) / (static_cast<double>(dt_ns) * capacity(e)));
    }
  }
  for (const auto& [e, cyc] : after.cycles) {
    auto b = before.cycles.find(e);
    auto ta = after.total_cycles.find(e);
    if (b == before.cycles.end() || ta == after.total_cycles.end()) continue;
    auto tb = before.total_cycles.find(e);
    if (tb == before.total_cycles.end() || ta->second <= tb->second) continue;
    uint64_t d = cyc >= b->second ? cyc - b->second : 0;
    double total = static_cast<double>(ta->second - tb->second);
    consider(100.0 * static_cast<double>(d) / (total * capacity(e)));
  }
  return best;
}

namespace {

// The name of a uid (its digits when it has none), remembered: a passwd lookup may go through
// NSS (LDAP, sssd) and every sample asks for the same few users.
std::string user_name_of(uid_t uid) {
  static std::mutex mu;
  static std::unordered_map<uid_t, std::string> known;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (auto it = known.find(uid); it != known.end()) return it->second;
  }
  struct passwd pw;
  struct passwd* found = nullptr;
  std::vector<char> buf(16384);
  std::string name = std::to_string(uid);
  if (getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) == 0 && found && found->pw_name &&
      *found->pw_name)
    name = found->pw_name;
  std::lock_guard<std::mutex> lock(mu);
  if (known.size() >= 4096) known.clear();
  known.emplace(uid, name);
  return name;
}

}  // namespace

std::string process_command(HostFs& fs, int pid) {
  auto t = fs.read("/proc/" + std::to_string(pid) + "/comm", 4096);
  if (!t) return "";
  return clean_value(*t);
}

std::string process_user(HostFs& fs, int pid) {
  auto t = fs.read("/proc/" + std::to_string(pid) + "/status", 64 * 1024);
  if (!t) return "";
  for (std::string_view line : split_lines(*t)) {
    if (!starts_with(line, "Uid:")) continue;
    std::string_view rest;
    auto uid = leading_uint(line.substr(4), &rest);
    if (!uid || *uid > std::numeric_limits<uid_t>::max()) return "";
    return user_name_of(static_cast<uid_t>(*uid));
  }
  return "";
}

FdinfoScanner::FdinfoScanner(std::shared_ptr<HostFs> fs) : fs_(std::move(fs)) {}

BackendSample FdinfoScanner::sample(uint64_t now_ns) {
  BackendSample res;
  // SPEC §9: reading a DRM client's fdinfo goes to its driver (xe takes a runtime-PM
  // reference for the engine cycles), and which device an fd belongs to is only known from
  // the fdinfo itself. So while any non-NVIDIA DRM card is runtime-suspended, no fdinfo is read.
  if (fs_) {
    for (const std::string& e : fs_->list("/sys/class/drm")) {
      if (!sysfs::card_number(e)) continue;
      std::string dev = "/sys/class/drm/" + e + "/device";
      auto rs = fs_->read(dev + "/power/runtime_status", 64);
      if (!rs || !sysfs::is_suspended(sysfs::power_state_from(*rs))) continue;
      auto u = fs_->read(dev + "/uevent", 4096);
      if (u && sysfs::parse_uevent(*u).driver == std::optional<std::string>("nvidia")) continue;
      res.notes.push_back("fdinfo not scanned: " + e +
                          " is runtime-suspended and reading its clients' fdinfo could wake it");
      return res;
    }
  }
  res.processes = scan(now_ns, res.notes);
  return res;
}

std::vector<ProcessSample> FdinfoScanner::scan(uint64_t now_ns, std::vector<std::string>& notes) {
  std::vector<ProcessSample> out;
  if (!fs_) return out;
  std::vector<int> pids;
  for (const std::string& e : fs_->list("/proc")) {
    auto v = parse_int(e);
    if (v && *v > 0 && *v <= std::numeric_limits<int>::max() && std::to_string(*v) == e)
      pids.push_back(static_cast<int>(*v));
  }
  std::sort(pids.begin(), pids.end());

  struct Agg {
    uint64_t vram = 0;
    bool has_vram = false;
    double util = 0;
    bool has_util = false;
  };
  std::map<std::pair<int, std::string>, Agg> agg;  // (pid, bus id or "") -> usage
  std::map<std::string, Prev> next;
  size_t unreadable = 0;
  for (int pid : pids) {
    std::string base = "/proc/" + std::to_string(pid);
    for (const std::string& fd : fs_->list(base + "/fdinfo")) {
      // Only DRM device files have DRM fdinfo: skip every fd whose link names something else.
      // (An fd directory that cannot be read — another user's process — is tried anyway.)
      if (auto link = fs_->read_link(base + "/fd/" + fd);
          link && !starts_with(*link, "/dev/dri/") && !starts_with(*link, "/dev/accel/"))
        continue;
      auto text = fs_->read(base + "/fdinfo/" + fd, 64 * 1024);
      if (!text) {
        ++unreadable;
        continue;
      }
      auto info = parse_drm_fdinfo(*text);
      if (!info || info->driver == "nvidia") continue;  // NVIDIA processes come from NVML
      std::string dev = info->pdev ? *info->pdev : info->driver;
      std::string key = info->client_id ? dev + "#" + std::to_string(*info->client_id)
                                        : dev + "#pid" + std::to_string(pid) + "/fd" + fd;
      if (next.count(key)) continue;  // the same client through another fd or process
      Agg& a = agg[{pid, info->pdev.value_or("")}];
      if (info->vram_bytes) {
        a.vram = sat_add(a.vram, *info->vram_bytes);
        a.has_vram = true;
      }
      std::optional<double> util;
      if (info->legacy_amdgpu) {
        util = info->legacy_busy_pct;
      } else if (auto p = prev_.find(key); p != prev_.end() && now_ns > p->second.at_ns) {
        util = drm_busy_pct(p->second.info, *info, now_ns - p->second.at_ns);
      }
      if (util) {
        a.util = std::min(100.0, a.util + *util);
        a.has_util = true;
      }
      next.emplace(key, Prev{std::move(*info), now_ns});
    }
  }
  prev_ = std::move(next);
  if (unreadable > 0)
    notes.push_back(std::to_string(unreadable) +
                    " fdinfo file(s) under /proc could not be read (other users' processes "
                    "need root)");
  for (const auto& [k, a] : agg) {
    ProcessSample p;
    p.pid = k.first;
    p.command = process_command(*fs_, p.pid);
    p.user = process_user(*fs_, p.pid);
    if (!k.second.empty()) p.gpu_bus_id = k.second;
    if (a.has_vram) p.vram_mb = bytes_to_mib(a.vram);
    if (a.has_util) p.utilization_pct = a.util;
    p.backend = "fdinfo";
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace grey
