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

#include "detect/source.h"
#include "util/host_fs.h"

namespace grey {

// Pure except for reads through `fs`. Never throws.
ParseResult scan_drm_sysfs(HostFs& fs);

// Name "sysfs", authority 70. collect() runs scan_drm_sysfs(*ctx.fs).
std::unique_ptr<Source> make_sysfs_source();

// Pure text helpers of the scan, exposed for tests and the fuzz target.
namespace sysfs {

// A PCI device's uevent ("DRIVER=amdgpu\nPCI_ID=1002:687F\n...").
struct Uevent {
  std::optional<std::string> driver;
  std::optional<uint32_t> vendor, device;                // PCI_ID
  std::optional<uint32_t> subsys_vendor, subsys_device;  // PCI_SUBSYS_ID
  std::optional<uint32_t> pci_class;                     // PCI_CLASS (hex, "30000")
  std::optional<std::string> slot;                       // PCI_SLOT_NAME, normalized
  std::optional<std::string> modalias;                   // "pci:v00001002d..." / "virtio:d..."
};
Uevent parse_uevent(std::string_view text);

// "key value" lines of a KFD topology properties file. Values that are not integers are
// skipped.
std::map<std::string, int64_t> parse_kfd_properties(std::string_view text);

// KFD gfx_target_version (major*10000 + minor*100 + stepping) as the LLVM target name:
// 90010 -> "gfx90a", 100300 -> "gfx1030", 110003 -> "gfx1103". nullopt for 0 or a value that
// does not decode (minor or stepping above 15).
std::optional<std::string> gfx_target_name(int64_t gfx_target_version);

// KFD location_id (bus << 8 | device << 3 | function) plus domain -> "0000:64:00.0".
std::optional<std::string> kfd_bus_id(int64_t domain, int64_t location_id);

// The last path component that is a PCI address, normalized: "../../../0000:01:00.0" and
// "../../devices/pci0000:00/0000:00:01.0/virtio0/drm/card0" -> "0000:01:00.0"/"0000:00:01.0".
std::optional<std::string> pci_address_in_path(std::string_view path);

// Highest clock in an amdgpu pp_dpm_sclk listing ("0: 500Mhz\n1: 2554Mhz *").
std::optional<int> max_dpm_clock_mhz(std::string_view text);

// Why a device driven by `driver` (kernel driver name) or carrying these PCI ids is not a
// compute GPU (virtual display adapters, firmware framebuffers, BMC adapters); nullopt for a
// real GPU.
std::optional<std::string> software_reason(std::optional<std::string_view> driver,
                                           std::optional<uint32_t> vendor,
                                           std::optional<uint32_t> device);

// ---- Pieces shared with the telemetry layer (src/telemetry/sysfs_telemetry.cc) ----

// Last path component ("/sys/class/drm/card0/" -> "card0").
std::string basename_of(std::string_view path);
// "card12" -> 12; nullopt for "card0-DP-1", "renderD128", "version".
std::optional<int> card_number(std::string_view name);
// Number after `prefix` at the start of `s` ("temp12_input", "temp" -> 12); -1 when none.
int number_after(std::string_view s, std::string_view prefix);

struct HwmonChoice {
  std::string dir;   // absolute: <dev_dir>/hwmon/hwmonN
  std::string name;  // its `name` file ("amdgpu"), "" if unreadable
  size_t count = 0;  // how many hwmon directories the device has
};
// The hwmon directory of a device: the one whose `name` is the driver's, else the lowest
// numbered. nullopt when the device has none.
std::optional<HwmonChoice> choose_hwmon(HostFs& fs, const std::string& dev_dir,
                                        const std::optional<std::string>& driver);
// The N of every temp<N>_input in a hwmon directory, ascending.
std::vector<int> hwmon_temp_inputs(HostFs& fs, const std::string& hwmon_dir);

}  // namespace sysfs
}  // namespace grey
