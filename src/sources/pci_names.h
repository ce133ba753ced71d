// PCI vendor and device names from the pci.ids database through libpci (pciutils).
// Thread-safe. Only names that the database really has are returned: libpci's numeric
// placeholders ("Device 744c", "Vendor 1234") count as unknown.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace grey {

// Looked up in the system pci.ids (libpci's default path; udev's hwdb is not consulted).
// nullopt when the database is absent or does not know the id.
std::optional<std::string> pci_device_name(uint32_t vendor, uint32_t device);
std::optional<std::string> pci_vendor_name(uint32_t vendor);

// The same lookups against one given ids file only (no hwdb): for tests and replays.
// nullopt when the file is absent, unreadable, malformed, or lacks the id.
std::optional<std::string> pci_device_name_in(const std::string& ids_file, uint32_t vendor,
                                              uint32_t device);
std::optional<std::string> pci_vendor_name_in(const std::string& ids_file, uint32_t vendor);

// True when `name` is one of libpci's placeholders for an unknown id ("Device 744c",
// "Vendor 1002", "<pci_lookup_name: buffer too small>") or empty.
bool is_pci_placeholder_name(const std::string& name);

// True when a tool's or driver's product name is a placeholder rather than a name: libpci's
// placeholders above, a bare id ("0x1002": old ROCm reports the vendor id as the card series,
// "0x744c"), a PCI class or generic name ("Graphics Device" from a driver older than the card,
// "Display controller", "VGA compatible controller", "3D controller", "Unknown", "N/A"), or such
// a generic name followed by an id ("Intel(R) Graphics [0x020a]").
bool is_placeholder_product_name(const std::string& name);

}  // namespace grey
