// The sysfs source: every DRM card under /sys/class/drm (and display-class PCI devices that
// have no DRM card), read through HostFs so that a replay tree or a test root works the same
// as the live /sys. AMD devices are completed from the KFD topology (/sys/class/kfd).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/software_device.h"
#include "sources/source.h"
#include "util/host_fs.h"
#include "util/sysfs.h"

namespace grey {

// Pure except for reads through `fs`. Never throws.
ParseResult scan_drm_sysfs(HostFs& fs);

// Name "sysfs", authority 70. collect() runs scan_drm_sysfs(*ctx.fs).
std::unique_ptr<Source> make_sysfs_source();

// Pure text helpers of the scan, exposed for tests and the fuzz target.
namespace sysfs {

// "key value" lines of a KFD topology properties file. Values that are not integers are
// skipped.
std::map<std::string, int64_t> parse_kfd_properties(std::string_view text);

// KFD gfx_target_version (major*10000 + minor*100 + stepping) as the LLVM target name:
// 90010 -> "gfx90a", 100300 -> "gfx1030", 110003 -> "gfx1103". nullopt for 0 or a value that
// does not decode (minor or stepping above 15).
std::optional<std::string> gfx_target_name(int64_t gfx_target_version);

// KFD location_id (bus << 8 | device << 3 | function) plus domain -> "0000:64:00.0".
std::optional<std::string> kfd_bus_id(int64_t domain, int64_t location_id);

// Highest clock in an amdgpu pp_dpm_sclk listing ("0: 500Mhz\n1: 2554Mhz *").
std::optional<int> max_dpm_clock_mhz(std::string_view text);

// The upper bound of the OD_SCLK section of amdgpu's pp_od_clk_voltage: the highest
// "N: <clock>MHz" entry there ("OD_SCLK:\n0: 500Mhz\n1: 2735Mhz\nOD_MCLK:..." -> 2735; the
// per-state tables of Polaris/Vega10 "N: <clock>MHz <volt>mV" too). Other sections (OD_MCLK,
// OD_VDDC_CURVE, OD_RANGE) are ignored. nullopt when there is no OD_SCLK section with a clock.
std::optional<int> od_sclk_max_mhz(std::string_view text);

// power_state_from and is_suspended live in util/sysfs.h.
// Reads /sys/bus/pci/devices/<bus_id>/power/runtime_status (a plain kernel value: reading it
// never wakes the device) and maps it with power_state_from.
std::optional<std::string> runtime_power_state(HostFs& fs, const std::string& bus_id);
// Display-class PCI devices and their power state, from cached attributes only (DRM cards'
// device directories, then /sys/bus/pci/devices): what detect checks before it runs sources
// that would wake a suspended GPU.
struct PowerEntry {
  std::string bus_id;  // may be empty (a hand-made tree without one)
  std::optional<uint32_t> pci_vendor;
  std::optional<std::string> power_state;
};
std::vector<PowerEntry> scan_power_states(HostFs& fs);

}  // namespace sysfs
}  // namespace grey
