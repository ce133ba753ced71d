#include "detect/software.h"

#include <array>
#include <utility>

#include "util/strings.h"

namespace grey {

namespace {

struct Rule {
  const char* needle;  // lower-case substring of the model name
  const char* reason;
};

constexpr std::array<Rule, 17> kNameRules = {{
    {"llvmpipe", "llvmpipe is Mesa's software rasterizer running on the CPU"},
    {"lavapipe", "lavapipe is Mesa's software Vulkan driver running on the CPU"},
    {"softpipe", "softpipe is Mesa's reference software rasterizer"},
    {"swrast", "swrast is a software rasterizer"},
    {"swiftshader", "SwiftShader is a CPU implementation of Vulkan/GL"},
    {"software rasterizer", "a software rasterizer, not a GPU"},
    {"portable computing language", "PoCL runs OpenCL kernels on the CPU"},
    {"pthread-", "PoCL CPU device (OpenCL on the CPU)"},
    {"microsoft basic render", "Windows' software renderer"},
    {"virgl", "virgl is a virtual GPU of a virtual machine"},
    {"virtio", "virtio display adapter of a virtual machine"},
    {"svga3d", "VMware SVGA virtual display adapter"},
    {"vmware svga", "VMware SVGA virtual display adapter"},
    {"virtualbox", "VirtualBox virtual display adapter"},
    {"qxl", "QXL paravirtual display adapter of a virtual machine"},
    {"aspeed", "ASPEED BMC display adapter (server management controller)"},
    {"es1000", "ATI ES1000 on-board server display adapter (management video), not a compute GPU"},
}};

std::optional<std::string> by_pci_vendor(uint32_t v) {
  switch (v) {
    case 0x1af4:
      return "virtio display adapter of a virtual machine (PCI vendor 1af4)";
    case 0x1234:
      return "QEMU/Bochs standard VGA of a virtual machine (PCI vendor 1234)";
    case 0x15ad:
      return "VMware virtual display adapter (PCI vendor 15ad)";
    case 0x80ee:
      return "VirtualBox virtual display adapter (PCI vendor 80ee)";
    case 0x1414:
      return "Hyper-V virtual display adapter (PCI vendor 1414)";
    case 0x1013:
      return "Cirrus Logic display adapter emulated by virtual machines (PCI vendor 1013)";
    case 0x1a03:
      return "ASPEED BMC display adapter (server management controller, PCI vendor 1a03)";
    case 0x102b:
      return "Matrox display adapter (server BMC video, PCI vendor 102b)";
    case 0x10005:
      return "Mesa software device (Vulkan vendor id 0x10005)";
    default:
      return std::nullopt;
  }
}

std::optional<std::string> by_driver(const std::string& d) {
  static const std::pair<const char*, const char*> kDrivers[] = {
      {"virtio-pci", "virtio display adapter of a virtual machine"},
      {"virtio_gpu", "virtio display adapter of a virtual machine"},
      {"virtio-gpu", "virtio display adapter of a virtual machine"},
      {"bochs", "QEMU/Bochs display adapter of a virtual machine"},
      {"bochs-drm", "QEMU/Bochs display adapter of a virtual machine"},
      {"cirrus", "Cirrus display adapter emulated by a virtual machine"},
      {"cirrus-qemu", "Cirrus display adapter emulated by a virtual machine"},
      {"qxl", "QXL paravirtual display adapter"},
      {"vmwgfx", "VMware virtual display adapter"},
      {"vboxvideo", "VirtualBox virtual display adapter"},
      {"hyperv_drm", "Hyper-V virtual display adapter"},
      {"hyperv_fb", "Hyper-V virtual display adapter"},
      {"simpledrm", "firmware framebuffer (simpledrm), not a GPU"},
      {"simplefb", "firmware framebuffer, not a GPU"},
      {"efifb", "firmware framebuffer, not a GPU"},
      {"ast", "ASPEED BMC display adapter (server management controller)"},
      {"mgag200", "Matrox G200 BMC display adapter (server management video)"},
  };
  for (const auto& [name, reason] : kDrivers)
    if (d == name) return reason;
  return std::nullopt;
}

}  // namespace

std::optional<std::string> software_reason(const Observation& o) {
  if (o.software_reason) return o.software_reason;
  if (o.f.pci_vendor_id)
    if (auto r = by_pci_vendor(*o.f.pci_vendor_id)) return r;
  if (o.f.kernel_driver)
    if (auto r = by_driver(*o.f.kernel_driver)) return r;
  if (o.f.model) {
    std::string m = to_lower(*o.f.model);
    // PoCL names its CPU device after the host CPU: "pthread-skylake-..." (PoCL <= 4),
    // "cpu-skylake-avx512-Intel(R) Xeon(R) ..." (PoCL 5, seen on the H100 machine).
    if (starts_with(m, "cpu-") || starts_with(m, "pthread-"))
      return std::string("PoCL CPU device (OpenCL on the CPU)");
    for (const auto& rule : kNameRules)
      if (m.find(rule.needle) != std::string::npos) return std::string(rule.reason);
    if (m.find("matrox") != std::string::npos && m.find("g200") != std::string::npos)
      return std::string("Matrox G200 BMC display adapter (server management video)");
    if (m.find("cirrus") != std::string::npos)
      return std::string("Cirrus display adapter emulated by a virtual machine");
    if (m.find("bochs") != std::string::npos || m.find("qemu") != std::string::npos)
      return std::string("QEMU/Bochs display adapter of a virtual machine");
  }
  return std::nullopt;
}

}  // namespace grey
