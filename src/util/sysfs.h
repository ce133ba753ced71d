// sysfs text and layout helpers shared by detection (src/sources/sysfs_source.cc), telemetry
// and device control: uevent parsing, PCI addresses in paths, card and hwmon directories.
// Pure except for reads through HostFs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/host_fs.h"

namespace grey::sysfs {

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

// The last path component that is a PCI address, normalized: "../../../0000:01:00.0" and
// "../../devices/pci0000:00/0000:00:01.0/virtio0/drm/card0" -> "0000:01:00.0"/"0000:00:01.0".
std::optional<std::string> pci_address_in_path(std::string_view path);

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

// SPEC §9 power_state from the text of power/runtime_status (Documentation/ABI/testing/
// sysfs-devices-power): "active" and "resuming" -> "active" (awake, or waking anyway);
// "suspended" and "suspending" -> "suspended" (touching it would resume it or cancel the
// suspend); "unsupported" -> "unsupported"; "error" and anything else -> nullopt.
std::optional<std::string> power_state_from(std::string_view runtime_status);
inline bool is_suspended(const std::optional<std::string>& power_state) {
  return power_state && *power_state == "suspended";
}

}  // namespace grey::sysfs
