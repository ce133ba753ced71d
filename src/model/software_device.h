// Devices that carry a PCI display class but are not compute GPUs: virtual display adapters,
// firmware framebuffers, BMC adapters. Pure: decided from the kernel driver and PCI ids.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace grey::sysfs {

// Why a device driven by `driver` (kernel driver name) or carrying these PCI ids is not a
// compute GPU (virtual display adapters, firmware framebuffers, BMC adapters); nullopt for a
// real GPU.
std::optional<std::string> software_reason(std::optional<std::string_view> driver,
                                           std::optional<uint32_t> vendor,
                                           std::optional<uint32_t> device);

}  // namespace grey::sysfs
