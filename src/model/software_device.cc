#include "model/software_device.h"

#include <algorithm>

#include "util/strings.h"

namespace grey {

std::optional<std::string> sysfs::software_reason(std::optional<std::string_view> driver,
                                                  std::optional<uint32_t> vendor,
                                                  std::optional<uint32_t> device) {
  if (driver) {
    std::string d = to_lower(trim(*driver));
    std::replace(d.begin(), d.end(), '-', '_');
    struct Entry {
      const char* name;
      const char* reason;
    };
    static const Entry kDrivers[] = {
        {"virtio_gpu", "virtual GPU of a virtual machine (virtio-gpu)"},
        {"bochs", "emulated QEMU/Bochs VGA adapter of a virtual machine (bochs)"},
        {"bochs_drm", "emulated QEMU/Bochs VGA adapter of a virtual machine (bochs)"},
        {"cirrus", "emulated Cirrus Logic VGA adapter of a virtual machine (cirrus)"},
        {"cirrus_qemu", "emulated Cirrus Logic VGA adapter of a virtual machine (cirrus)"},
        {"qxl", "QXL paravirtual display adapter of a virtual machine (qxl)"},
        {"vmwgfx", "VMware SVGA virtual display adapter (vmwgfx)"},
        {"vboxvideo", "VirtualBox virtual display adapter (vboxvideo)"},
        {"hyperv_drm", "Hyper-V synthetic video device (hyperv_drm)"},
        {"hyperv_fb", "Hyper-V synthetic video device (hyperv_fb)"},
        {"xen_drm_front", "Xen paravirtual display frontend (xen-drm-front)"},
        {"simpledrm", "firmware framebuffer (simpledrm), not a GPU driver"},
        {"simple_framebuffer", "firmware framebuffer (simpledrm), not a GPU driver"},
        {"simplefb", "firmware framebuffer (simplefb), not a GPU driver"},
        {"efifb", "firmware framebuffer (efifb), not a GPU driver"},
        {"efi_framebuffer", "firmware framebuffer (efifb), not a GPU driver"},
        {"vesafb", "firmware framebuffer (vesafb), not a GPU driver"},
        {"vesa_framebuffer", "firmware framebuffer (vesafb), not a GPU driver"},
        {"ofdrm", "firmware framebuffer (ofdrm), not a GPU driver"},
        {"ast", "ASPEED BMC display adapter of a server's management controller (ast)"},
        {"mgag200",
         "Matrox G200 BMC display adapter of a server's management controller (mgag200)"},
        {"vkms", "virtual kernel mode-setting device without hardware (vkms)"},
        {"vgem", "virtual GEM memory provider without hardware (vgem)"},
        {"udl", "USB DisplayLink display adapter (udl)"},
        {"evdi", "virtual DisplayLink display adapter (evdi)"},
        {"gud", "USB display adapter (gud)"},
    };
    for (const Entry& e : kDrivers)
      if (d == e.name) return std::string(e.reason);
  }
  if (vendor) {
    switch (*vendor) {
      case 0x1af4:
        return std::string("virtio device of a virtual machine (PCI vendor 1af4)");
      case 0x1234:
        return std::string("emulated QEMU/Bochs VGA adapter of a virtual machine (PCI 1234:" +
                           hex4(device.value_or(0)) + ")");
      case 0x1b36:
        return std::string("QEMU/Red Hat paravirtual display adapter (PCI vendor 1b36)");
      case 0x15ad:
        return std::string("VMware SVGA virtual display adapter (PCI vendor 15ad)");
      case 0x80ee:
        return std::string("VirtualBox virtual display adapter (PCI vendor 80ee)");
      case 0x1414:
        return std::string("Hyper-V synthetic video device (PCI vendor 1414)");
      case 0x1013:
        return std::string(
            "Cirrus Logic VGA adapter, as emulated by virtual machines (PCI vendor 1013)");
      case 0x1a03:
        return std::string(
            "ASPEED BMC display adapter of a server's management controller (PCI vendor 1a03)");
      case 0x102b:
        return std::string(
            "Matrox BMC display adapter of a server's management controller (PCI vendor 102b)");
      default:
        break;
    }
  }
  return std::nullopt;
}

}  // namespace grey
