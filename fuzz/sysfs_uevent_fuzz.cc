// Fuzzes the sysfs source's text helpers (uevent, KFD properties, pp_dpm_sclk, link paths) and
// the whole scan over an in-memory /sys whose file contents come from the input.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "sources/sysfs_source.h"
#include "util/host_fs.h"

namespace {

class MemFs : public grey::HostFs {
 public:
  std::map<std::string, std::string> files, links;
  std::optional<std::string> read(const std::string& path, size_t cap) override {
    auto it = files.find(path);
    if (it == files.end()) return std::nullopt;
    return it->second.substr(0, cap);
  }
  std::vector<std::string> list(const std::string& dir) override {
    std::vector<std::string> out;
    std::string pre = dir + "/";
    auto add = [&](const std::string& p) {
      if (p.compare(0, pre.size(), pre) != 0) return;
      std::string rest = p.substr(pre.size());
      rest = rest.substr(0, rest.find('/'));
      if (!rest.empty() && (out.empty() || out.back() != rest)) out.push_back(rest);
    };
    for (const auto& [p, c] : files) add(p);
    for (const auto& [p, c] : links) add(p);
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
  }
  bool exists(const std::string& path) override {
    if (files.count(path) || links.count(path)) return true;
    return !list(path).empty();
  }
  std::optional<std::string> read_link(const std::string& path) override {
    auto it = links.find(path);
    if (it == links.end()) return std::nullopt;
    return it->second;
  }
  std::string real_path(const std::string& path) override { return path; }
  std::string write(const std::string&, const std::string&) override { return "read-only"; }
};

const char* const kFiles[] = {
    "/sys/class/drm/card0/device/uevent",
    "/sys/class/drm/card0/device/vendor",
    "/sys/class/drm/card0/device/device",
    "/sys/class/drm/card0/device/class",
    "/sys/class/drm/card0/device/mem_info_vram_total",
    "/sys/class/drm/card0/device/mem_info_vram_used",
    "/sys/class/drm/card0/device/gpu_busy_percent",
    "/sys/class/drm/card0/device/max_link_speed",
    "/sys/class/drm/card0/device/max_link_width",
    "/sys/class/drm/card0/device/current_link_speed",
    "/sys/class/drm/card0/device/current_link_width",
    "/sys/class/drm/card0/device/numa_node",
    "/sys/class/drm/card0/device/product_name",
    "/sys/class/drm/card0/device/pp_dpm_sclk",
    "/sys/class/drm/card0/device/pp_od_clk_voltage",
    "/sys/class/drm/card0/device/hwmon/hwmon0/name",
    "/sys/class/drm/card0/device/hwmon/hwmon0/temp1_input",
    "/sys/class/drm/card0/device/hwmon/hwmon0/temp1_label",
    "/sys/class/drm/card0/device/hwmon/hwmon0/temp1_crit",
    "/sys/class/drm/card0/device/hwmon/hwmon0/temp1_emergency",
    "/sys/class/drm/card0/device/hwmon/hwmon0/power1_cap",
    "/sys/class/drm/card0/device/hwmon/hwmon0/power1_average",
    "/sys/class/drm/card0/device/tile0/gt0/freq0/rp0_freq",
    "/sys/class/drm/card0/gt_RP0_freq_mhz",
    "/sys/class/kfd/kfd/topology/nodes/1/properties",
    "/sys/class/drm/card1/device/uevent",
    "/sys/bus/pci/devices/0000:41:00.0/class",
};
const char* const kLinks[] = {
    "/sys/class/drm/card0/device",
    "/sys/class/drm/card0/device/driver",
    "/sys/class/drm/card1",
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* d, size_t n) {
  std::string_view in(reinterpret_cast<const char*>(d), n);
  grey::sysfs::parse_uevent(in);
  grey::sysfs::parse_kfd_properties(in);
  grey::sysfs::max_dpm_clock_mhz(in);
  grey::sysfs::od_sclk_max_mhz(in);
  grey::sysfs::pci_address_in_path(in);
  grey::sysfs::software_reason(in, std::nullopt, std::nullopt);

  // Split the input on 0x1e into the contents of the files, then the link targets.
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (start <= in.size()) {
    size_t pos = in.find('\x1e', start);
    if (pos == std::string_view::npos) pos = in.size();
    parts.push_back(in.substr(start, pos - start));
    start = pos + 1;
  }
  MemFs fs;
  size_t i = 0;
  for (const char* f : kFiles) {
    if (i < parts.size()) fs.files[f] = std::string(parts[i]);
    ++i;
  }
  for (const char* l : kLinks) {
    if (i < parts.size()) fs.links[l] = std::string(parts[i]);
    ++i;
  }
  grey::scan_drm_sysfs(fs);
  return 0;
}
