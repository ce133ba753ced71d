// The hwmon power-cap mechanism shared by AMD and Intel (see hwmon_control.h).
#include "enforce/hwmon_control.h"

#include <cmath>

#include "enforce/amd_control.h"
#include "enforce/intel_control.h"
#include "util/strings.h"
#include "util/sysfs.h"

namespace grey {

namespace {

std::optional<int64_t> read_int(HostFs& fs, const std::string& path) {
  auto t = fs.read(path, 4096);
  if (!t) return std::nullopt;
  return parse_int(clean_value(*t));
}

std::string basename_of(const std::string& p) {
  auto slash = p.rfind('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

// Only hwmon power files under /sys are ever written (the journal is a file a restore reads
// back: a path in it must not be able to point anywhere else).
std::string check_power_path(const std::string& path) {
  std::string base = basename_of(path);
  if (!starts_with(path, "/sys/") || path.find("/../") != std::string::npos ||
      (base != "power1_cap" && base != "power1_max" && base != "power2_max"))
    return "refusing sysfs path '" + path +
           "': only hwmon power1_cap/power1_max/power2_max under /sys";
  return "";
}

}  // namespace

std::optional<std::string> SysfsControl::find_hwmon(const std::string& bus_id,
                                                    const std::string& power_file) {
  auto want = normalize_bus_id(bus_id);
  if (!want) return std::nullopt;
  auto search = [&](const std::string& dev_dir) -> std::optional<std::string> {
    for (const std::string& h : fs_.list(dev_dir + "/hwmon")) {
      if (!starts_with(h, "hwmon")) continue;
      std::string dir = dev_dir + "/hwmon/" + h;
      if (fs_.exists(dir + "/" + power_file)) return dir;
    }
    return std::nullopt;
  };
  if (auto d = search("/sys/bus/pci/devices/" + *want)) return d;
  for (const std::string& card : fs_.list("/sys/class/drm")) {
    if (!starts_with(card, "card") || card.find('-') != std::string::npos) continue;
    std::string dev_dir = "/sys/class/drm/" + card + "/device";
    std::optional<std::string> bus;
    if (auto link = fs_.read_link(dev_dir)) bus = sysfs::pci_address_in_path(*link);
    if (!bus) {
      if (auto ue = fs_.read(dev_dir + "/uevent", 64 * 1024)) bus = sysfs::parse_uevent(*ue).slot;
    }
    if (!bus || *bus != *want) continue;
    if (auto d = search(dev_dir)) return d;
  }
  return std::nullopt;
}

void SysfsControl::probe(DeviceState& state, const std::string& vendor,
                         const std::optional<std::string>& kernel_driver) {
  AmdControl amd(*this);
  IntelControl intel(*this);
  if (amd.drives(vendor, kernel_driver))
    amd.probe(state);
  else if (intel.drives(vendor, kernel_driver))
    intel.probe(state);
  else
    state.notes.push_back(no_control_note(vendor, kernel_driver));
}

std::optional<int64_t> SysfsControl::read_microwatts(const std::string& path) {
  return read_int(fs_, path);
}

std::optional<std::string> SysfsControl::probe_power_file(DeviceState& state,
                                                          const std::string& file) {
  auto dir = find_hwmon(state.bus_id, file);
  if (!dir) {
    state.notes.push_back("no hwmon " + file + " for " + state.bus_id + " under " +
                          fs_.real_path("/sys/bus/pci/devices/" + state.bus_id + "/hwmon") +
                          " or " + fs_.real_path("/sys/class/drm") + "/card*/device/hwmon");
    return std::nullopt;
  }
  state.power_sysfs_path = *dir + "/" + file;
  if (auto uw = read_int(fs_, *state.power_sysfs_path); uw && *uw > 0)
    state.power_limit_w = static_cast<double>(*uw) / 1e6;
  else
    state.notes.push_back("cannot read a power limit from " +
                          fs_.real_path(*state.power_sysfs_path));
  return dir;
}

ReadResult SysfsControl::read(const SettingRef& ref) {
  ReadResult out;
  std::string path;
  if (mechanism_kind(ref.mechanism, &path) != MechanismKind::sysfs ||
      ref.setting != kSettingPowerLimit) {
    out.error = "sysfs cannot read '" + ref.setting + "' through '" + ref.mechanism + "'";
    return out;
  }
  if (std::string e = check_power_path(path); !e.empty()) {
    out.error = e;
    return out;
  }
  auto t = fs_.read(path, 4096);
  if (!t) {
    out.error = "cannot read " + fs_.real_path(path);
    return out;
  }
  auto uw = parse_int(clean_value(*t));
  if (!uw) {
    out.error =
        fs_.real_path(path) + " reads '" + clean_value(*t).substr(0, 40) + "', not microwatts";
    return out;
  }
  out.value = watts_text(static_cast<double>(*uw) / 1e6);
  return out;
}

std::string SysfsControl::write(const SettingRef& ref, const std::string& value) {
  std::string path;
  if (mechanism_kind(ref.mechanism, &path) != MechanismKind::sysfs ||
      ref.setting != kSettingPowerLimit)
    return "sysfs cannot write '" + ref.setting + "' through '" + ref.mechanism + "'";
  if (std::string e = check_power_path(path); !e.empty()) return e;
  auto w = parse_watts(value);
  if (!w || *w <= 0 || *w > 1.0e5) return "'" + value + "' is not a power limit in watts";
  long long uw = std::llround(*w * 1e6);
  return fs_.write(path, std::to_string(uw));
}

}  // namespace grey
