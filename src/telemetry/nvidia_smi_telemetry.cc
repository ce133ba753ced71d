// The nvidia-smi fallback: used only when NVML did not load/initialize and some NVIDIA GPU
// was answered by no other backend. Two queries through the Runner (argv, LC_ALL=C, killed
// at the deadline), which share one deadline:
//   nvidia-smi --query-gpu=index,pci.bus_id,uuid,memory.used,memory.total,temperature.gpu,
//              utilization.gpu,power.draw,power.limit,persistence_mode
//              --format=csv,noheader,nounits
//   nvidia-smi --query-compute-apps=gpu_bus_id,pid,process_name,used_gpu_memory --format=csv
// Cells reading "[N/A]", "[Not Supported]" and the like are unknown.
#include <chrono>

#include "telemetry/telemetry.h"
#include "util/strings.h"

namespace grey {

namespace {

std::vector<std::string> csv_cells(std::string_view line) {
  std::vector<std::string> out;
  for (std::string_view c : split(line, ',')) out.emplace_back(trim(c));
  return out;
}

std::optional<double> num(const std::string& c) {
  if (is_missing_marker(c) || starts_with(c, "[")) return std::nullopt;
  return parse_double(c);
}

bool looks_like_error(std::string_view text) {
  return icontains(text, "NVIDIA-SMI has failed") || icontains(text, "Failed to initialize NVML") ||
         icontains(text, "No devices were found");
}

std::string first_line(std::string_view text) {
  for (std::string_view l : split_lines(text)) {
    std::string_view t = trim(l);
    if (!t.empty()) return std::string(t.substr(0, 200));
  }
  return "";
}

}  // namespace

std::vector<GpuSample> parse_smi_gpu_query(std::string_view text, std::vector<std::string>& notes) {
  std::vector<GpuSample> out;
  if (looks_like_error(text)) {
    notes.push_back("nvidia-smi reported: " + first_line(text));
    return out;
  }
  for (std::string_view line : split_lines(text)) {
    if (trim(line).empty()) continue;
    std::vector<std::string> c = csv_cells(line);
    if (c.size() != 10) {
      notes.push_back("nvidia-smi --query-gpu line with " + std::to_string(c.size()) +
                      " fields instead of 10 ignored: " + std::string(trim(line).substr(0, 120)));
      continue;
    }
    auto idx = parse_int(c[0]);
    if (!idx || *idx < 0 || *idx > 1 << 20) {
      notes.push_back("nvidia-smi --query-gpu index '" + c[0].substr(0, 32) + "' not a number");
      continue;
    }
    GpuSample s;
    s.index = static_cast<int>(*idx);
    s.backend = "nvidia-smi";
    s.bus_id = normalize_bus_id(c[1]);
    if (!c[2].empty() && !is_missing_marker(c[2]) && !starts_with(c[2], "[")) s.uuid = c[2];
    if (auto v = num(c[3]); v && *v >= 0) s.vram_used_mb = static_cast<int64_t>(*v);
    if (auto v = num(c[4]); v && *v >= 0) s.vram_total_mb = static_cast<int64_t>(*v);
    s.temperature_c = num(c[5]);
    s.utilization_pct = num(c[6]);
    s.power_w = num(c[7]);
    s.power_limit_w = num(c[8]);
    std::string pm = to_lower(c[9]);
    if (pm == "enabled")
      s.persistence_mode = true;
    else if (pm == "disabled")
      s.persistence_mode = false;
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<ProcessSample> parse_smi_apps_query(std::string_view text,
                                                std::vector<std::string>& notes) {
  std::vector<ProcessSample> out;
  if (looks_like_error(text)) {
    notes.push_back("nvidia-smi reported: " + first_line(text));
    return out;
  }
  for (std::string_view line : split_lines(text)) {
    std::string_view t = trim(line);
    if (t.empty() || starts_with(t, "gpu_bus_id")) continue;  // the header
    std::vector<std::string> c = csv_cells(t);
    if (c.size() < 4) {
      notes.push_back("nvidia-smi --query-compute-apps line ignored: " +
                      std::string(t.substr(0, 120)));
      continue;
    }
    auto pid = parse_int(c[1]);
    if (!pid || *pid <= 0 || *pid > (1 << 30)) continue;
    ProcessSample p;
    p.pid = static_cast<int>(*pid);
    p.gpu_bus_id = normalize_bus_id(c[0]);
    // A process name may itself hold commas: everything between pid and the last cell.
    std::string name;
    for (size_t i = 2; i + 1 < c.size(); ++i) name += (i > 2 ? ", " : "") + c[i];
    size_t slash = name.rfind('/');
    p.command = slash == std::string::npos ? name : name.substr(slash + 1);
    if (!is_missing_marker(c.back()) && !starts_with(c.back(), "["))
      p.vram_mb = memory_to_mib(c.back());
    p.backend = "nvidia-smi";
    out.push_back(std::move(p));
  }
  return out;
}

BackendSample NvidiaSmiTelemetry::sample(uint64_t /*now_ns*/) {
  BackendSample res;
  res.available = false;
  if (!runner_ || !fs_) return res;
  Runner& runner = *runner_;
  HostFs& fs = *fs_;
  const std::chrono::milliseconds deadline = deadline_;
  auto t0 = std::chrono::steady_clock::now();
  RunOptions opt;
  opt.timeout = deadline;
  opt.output_cap = 1 << 20;
  CommandResult r =
      runner.run({"nvidia-smi",
                  "--query-gpu=index,pci.bus_id,uuid,memory.used,memory.total,temperature.gpu,"
                  "utilization.gpu,power.draw,power.limit,persistence_mode",
                  "--format=csv,noheader,nounits"},
                 opt);
  if (!r.ok()) {
    std::string why = r.started ? r.describe_failure() : r.error;
    res.notes.push_back("nvidia-smi --query-gpu: " + why);
    return res;
  }
  res.available = true;
  res.gpus = parse_smi_gpu_query(r.out, res.notes);
  double gpu_ms = r.duration_ms;
  for (GpuSample& s : res.gpus) s.collect_ms = gpu_ms;

  auto left = deadline - std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::steady_clock::now() - t0);
  if (left < std::chrono::milliseconds(10)) {
    res.notes.push_back("no time left in the deadline for nvidia-smi --query-compute-apps");
    return res;
  }
  opt.timeout = left;
  CommandResult a =
      runner.run({"nvidia-smi", "--query-compute-apps=gpu_bus_id,pid,process_name,used_gpu_memory",
                  "--format=csv"},
                 opt);
  if (!a.ok()) {
    res.notes.push_back("nvidia-smi --query-compute-apps: " +
                        (a.started ? a.describe_failure() : a.error));
    return res;
  }
  res.processes = parse_smi_apps_query(a.out, res.notes);
  for (ProcessSample& p : res.processes) {
    // /proc's comm where readable, for the same names as the other backends.
    std::string comm = process_command(fs, p.pid);
    if (!comm.empty()) p.command = comm;
    p.user = process_user(fs, p.pid);
    for (const GpuSample& g : res.gpus)
      if (g.bus_id && p.gpu_bus_id == g.bus_id) p.gpu_index = g.index;
  }
  return res;
}

}  // namespace grey
