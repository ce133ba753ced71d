// parse_glxinfo against every fixture of tests/fixtures/glxinfo (facts from SOURCES.md), the
// llvmpipe captures of this dev VM (tests/fixtures/local), and bad input.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "sources/parsers.h"
#include "test_util.h"
#include "util/strings.h"

namespace grey {
namespace {

using grey::test::read_fixture;

bool has_note(const std::vector<std::string>& notes, std::string_view needle) {
  for (const auto& n : notes)
    if (contains(n, needle)) return true;
  return false;
}

ParseResult parse_file(const std::string& rel) {
  return parse_glxinfo(read_fixture(rel));
}

TEST(Glxinfo, Gtx970Proprietary) {
  auto r = parse_file("glxinfo/nvidia-geforce-gtx970-proprietary-glxinfo-peracotta.txt");
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u);
  const auto& d = r.devices[0];
  EXPECT_EQ(d.f.vendor, "nvidia");
  EXPECT_EQ(d.f.model, "GeForce GTX 970/PCIe/SSE2");
  EXPECT_EQ(d.f.opengl_version, "4.6");
  EXPECT_EQ(d.f.driver_version, "390.116");
  EXPECT_EQ(d.f.vram_total_mb, 4096);
  EXPECT_EQ(d.f.vram_free_mb, 3737);
  EXPECT_FALSE(d.f.pci_vendor_id) << "no GLX_MESA_query_renderer block";
  EXPECT_FALSE(d.f.pci_device_id);
  EXPECT_FALSE(d.f.bus_id);
  EXPECT_FALSE(d.software_reason);
  EXPECT_FALSE(has_note(d.notes, "unified"));
}

TEST(Glxinfo, Gt750mMbp2014Proprietary) {
  auto r = parse_file("glxinfo/nvidia-gt750m-mbp2014-proprietary-glxinfo-peracotta.txt");
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u);
  const auto& d = r.devices[0];
  EXPECT_EQ(d.f.vendor, "nvidia");
  EXPECT_EQ(d.f.model, "GeForce GT 750M/PCIe/SSE2");
  EXPECT_EQ(d.f.opengl_version, "4.6");
  EXPECT_EQ(d.f.driver_version, "418.43");
  EXPECT_EQ(d.f.vram_total_mb, 2048) << "2147483648 B";
  EXPECT_EQ(d.f.vram_free_mb, 1560);
  EXPECT_FALSE(d.software_reason);
}

TEST(Glxinfo, RadeonPro560xPolaris11Mesa) {
  auto r = parse_file("glxinfo/amd-radeon-pro-560x-polaris11-mbp2018-glxinfo-peracotta.txt");
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u);
  const auto& d = r.devices[0];
  EXPECT_EQ(d.f.vendor, "amd");
  EXPECT_EQ(d.f.pci_vendor_id, 0x1002u);
  EXPECT_EQ(d.f.pci_device_id, 0x67efu);
  EXPECT_EQ(d.f.model, "AMD POLARIS11 (DRM 3.27.0, 4.19.28-1-MANJARO, LLVM 7.0.1)");
  EXPECT_EQ(d.f.vram_total_mb, 4096);
  EXPECT_EQ(d.f.vram_free_mb, 3641);
  EXPECT_EQ(d.f.opengl_version, "4.5");
  EXPECT_FALSE(d.f.driver_version) << "Mesa version is not a kernel/GPU driver version";
  EXPECT_TRUE(has_note(d.notes, "Mesa 18.3.4"));
  EXPECT_FALSE(has_note(d.notes, "unified"));
  EXPECT_FALSE(d.software_reason);
}

TEST(Glxinfo, IntelHd515SkylakeMesaUnified) {
  auto r = parse_file("glxinfo/intel-hd515-skylake-mesa-glxinfo-peracotta.txt");
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u);
  const auto& d = r.devices[0];
  EXPECT_EQ(d.f.vendor, "intel");
  EXPECT_EQ(d.f.pci_vendor_id, 0x8086u);
  EXPECT_EQ(d.f.pci_device_id, 0x191eu);
  EXPECT_EQ(d.f.model, "Mesa DRI Intel(R) HD Graphics 515 (Skylake GT2)");
  EXPECT_EQ(d.f.vram_total_mb, 3072);
  EXPECT_FALSE(d.f.vram_free_mb);
  EXPECT_EQ(d.f.opengl_version, "4.5") << "core 4.5 beats compat 3.0";
  EXPECT_TRUE(has_note(d.notes, "unified memory"));
  EXPECT_TRUE(has_note(d.notes, "3072 MiB"));
  EXPECT_TRUE(has_note(d.notes, "Mesa 19.0.1"));
  EXPECT_FALSE(d.software_reason);
}

TEST(Glxinfo, IntelGm45ThinkpadR500) {
  auto r = parse_file("glxinfo/intel-gm45-thinkpad-r500-glxinfo-peracotta.txt");
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u);
  const auto& d = r.devices[0];
  EXPECT_EQ(d.f.vendor, "intel");
  EXPECT_EQ(d.f.pci_vendor_id, 0x8086u);
  EXPECT_EQ(d.f.pci_device_id, 0x2a42u);
  EXPECT_EQ(d.f.model, "Mesa DRI Mobile Intel\xC2\xAE GM45 Express Chipset x86/MMX/SSE2");
  EXPECT_EQ(d.f.vram_total_mb, 1536);
  EXPECT_EQ(d.f.opengl_version, "2.1") << "no core profile line";
  EXPECT_TRUE(has_note(d.notes, "unified memory"));
  EXPECT_FALSE(d.software_reason);
}

// ---- this dev VM: Xvfb + Mesa llvmpipe -----------------------------------------------------

class GlxinfoLocal : public ::testing::TestWithParam<const char*> {};

TEST_P(GlxinfoLocal, ExactlyOneSoftwareDevice) {
  auto r = parse_file(std::string("local/") + GetParam());
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u);
  const auto& d = r.devices[0];
  ASSERT_TRUE(d.software_reason) << "llvmpipe is not a GPU";
  EXPECT_TRUE(contains(*d.software_reason, "llvmpipe"));
  EXPECT_EQ(d.f.model, "llvmpipe (LLVM 15.0.6, 256 bits)");
  EXPECT_FALSE(d.f.pci_vendor_id) << "0xffffffff is not a PCI id";
  EXPECT_FALSE(d.f.pci_device_id);
  EXPECT_EQ(d.f.vendor, "unknown");
  EXPECT_EQ(d.f.opengl_version, "4.5");
  EXPECT_EQ(d.f.vram_total_mb, 24152);
  EXPECT_TRUE(has_note(d.notes, "unified memory"));
  EXPECT_FALSE(d.f.driver_version);
}

INSTANTIATE_TEST_SUITE_P(DevVm, GlxinfoLocal,
                         ::testing::Values("glxinfo-B-xvfb-llvmpipe-debian12-vm-no-gpu.txt",
                                           "glxinfo-full-xvfb-llvmpipe-debian12-vm-no-gpu.txt"));

// ---- other shapes (inline; layouts as glxinfo prints them) ---------------------------------

TEST(Glxinfo, ModernMesaRadeonB) {
  auto r = parse_glxinfo(
      "name of display: :0\n"
      "display: :0  screen: 0\n"
      "direct rendering: Yes\n"
      "Extended renderer info (GLX_MESA_query_renderer):\n"
      "    Vendor: AMD (0x1002)\n"
      "    Device: AMD Radeon RX 6800 XT (radeonsi, navi21, LLVM 15.0.7, DRM 3.54, 6.5.0) "
      "(0x73bf)\n"
      "    Version: 23.2.1\n"
      "    Accelerated: yes\n"
      "    Video memory: 16384MB\n"
      "    Unified memory: no\n"
      "OpenGL vendor string: AMD\n"
      "OpenGL renderer string: AMD Radeon RX 6800 XT (radeonsi, navi21, LLVM 15.0.7, DRM 3.54, "
      "6.5.0)\n"
      "OpenGL core profile version string: 4.6 (Core Profile) Mesa 23.2.1\n"
      "OpenGL version string: 4.6 (Compatibility Profile) Mesa 23.2.1\n");
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u);
  const auto& d = r.devices[0];
  EXPECT_EQ(d.f.vendor, "amd");
  EXPECT_EQ(d.f.pci_device_id, 0x73bfu);
  EXPECT_EQ(d.f.vram_total_mb, 16384);
  EXPECT_EQ(d.f.opengl_version, "4.6");
  EXPECT_FALSE(d.software_reason);
}

TEST(Glxinfo, ExtendedBlockOnlyStillGivesModel) {
  auto r = parse_glxinfo(
      "Extended renderer info (GLX_MESA_query_renderer):\n"
      "    Vendor: Intel (0x8086)\n"
      "    Device: Mesa Intel(R) Arc(tm) A770 Graphics (DG2) (0x56a0)\n"
      "    Accelerated: yes\n"
      "    Video memory: 16032MB\n"
      "    Unified memory: no\n");
  ASSERT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u);
  EXPECT_EQ(r.devices[0].f.model, "Mesa Intel(R) Arc(tm) A770 Graphics (DG2)");
  EXPECT_EQ(r.devices[0].f.vendor, "intel");
  EXPECT_EQ(r.devices[0].f.pci_device_id, 0x56a0u);
  EXPECT_EQ(r.devices[0].f.vram_total_mb, 16032);
}

TEST(Glxinfo, NotAcceleratedWithoutKnownName) {
  auto r = parse_glxinfo(
      "Extended renderer info (GLX_MESA_query_renderer):\n"
      "    Vendor: Mesa (0xffffffff)\n"
      "    Device: FancyNewRasterizer (0xffffffff)\n"
      "    Accelerated: no\n"
      "OpenGL vendor string: Mesa\n"
      "OpenGL renderer string: FancyNewRasterizer\n");
  ASSERT_EQ(r.devices.size(), 1u);
  ASSERT_TRUE(r.devices[0].software_reason);
  EXPECT_TRUE(contains(*r.devices[0].software_reason, "Accelerated: no"));
}

TEST(Glxinfo, VirtualAndSoftwareRenderers) {
  struct Case {
    const char* vendor;
    const char* renderer;
    const char* reason_has;
  };
  for (const Case& c :
       {Case{"VMware, Inc.", "SVGA3D; build: RELEASE;  LLVM;", "SVGA3D"},
        Case{"Mesa", "virgl (NVIDIA GeForce RTX 3080)", "virgl"},
        Case{"VMware, Inc.", "Gallium 0.4 on softpipe", "softpipe"},
        Case{"Mesa Project", "Software Rasterizer", "software rasterizer"},
        Case{"Microsoft Corporation", "D3D12 (Microsoft Basic Render Driver)", "Basic Render"}}) {
    std::string t = std::string("OpenGL vendor string: ") + c.vendor +
                    "\nOpenGL renderer string: " + c.renderer +
                    "\nOpenGL version string: 3.1 Mesa 21.0.3\n";
    auto r = parse_glxinfo(t);
    ASSERT_EQ(r.devices.size(), 1u) << c.renderer;
    ASSERT_TRUE(r.devices[0].software_reason) << c.renderer;
    EXPECT_TRUE(icontains(*r.devices[0].software_reason, c.reason_has)) << c.renderer;
  }
  // A real GPU behind D3D12 (WSL) is not software.
  auto wsl = parse_glxinfo(
      "OpenGL vendor string: Microsoft Corporation\n"
      "OpenGL renderer string: D3D12 (NVIDIA GeForce RTX 4070)\n"
      "OpenGL version string: 4.2 (Compatibility Profile) Mesa 23.0.4\n");
  ASSERT_EQ(wsl.devices.size(), 1u);
  EXPECT_FALSE(wsl.devices[0].software_reason);
  EXPECT_EQ(wsl.devices[0].f.vendor, "nvidia");
  EXPECT_EQ(wsl.devices[0].f.opengl_version, "4.2");
}

TEST(Glxinfo, NouveauAndOldIntelVendorStrings) {
  auto r = parse_glxinfo(
      "OpenGL vendor string: nouveau\n"
      "OpenGL renderer string: NV124\n"
      "OpenGL version string: 4.3 (Compatibility Profile) Mesa 22.3.6\n");
  ASSERT_EQ(r.devices.size(), 1u);
  EXPECT_EQ(r.devices[0].f.vendor, "nvidia");
  EXPECT_FALSE(r.devices[0].f.driver_version);

  auto r2 = parse_glxinfo(
      "OpenGL vendor string: X.Org\n"
      "OpenGL renderer string: AMD Radeon HD 7700 Series (VERDE, DRM 2.50.0, LLVM 13.0.1)\n"
      "OpenGL version string: 4.5 (Compatibility Profile) Mesa 22.0.5\n");
  ASSERT_EQ(r2.devices.size(), 1u);
  EXPECT_EQ(r2.devices[0].f.vendor, "amd");
}

TEST(Glxinfo, AtiMeminfoOnlyGivesFree) {
  auto r = parse_glxinfo(
      "Memory info (GL_ATI_meminfo):\n"
      "    VBO free memory - total: 7650 MB, largest block: 7650 MB\n"
      "    VBO free aux. memory - total: 15820 MB, largest block: 15820 MB\n"
      "OpenGL vendor string: AMD\n"
      "OpenGL renderer string: AMD Radeon RX 6600 (navi23, LLVM 15.0.6, DRM 3.49, 6.1.0)\n");
  ASSERT_EQ(r.devices.size(), 1u);
  EXPECT_EQ(r.devices[0].f.vram_free_mb, 7650);
  EXPECT_FALSE(r.devices[0].f.vram_total_mb);
}

TEST(Glxinfo, TwoScreensTwoRenderers) {
  std::string gtx = read_fixture("glxinfo/nvidia-geforce-gtx970-proprietary-glxinfo-peracotta.txt");
  std::string amd =
      read_fixture("glxinfo/amd-radeon-pro-560x-polaris11-mbp2018-glxinfo-peracotta.txt");
  // Screen 1 of the second text.
  size_t p = amd.find("display: :0  screen: 0");
  ASSERT_NE(p, std::string::npos);
  amd.replace(p, 22, "display: :0  screen: 1");
  auto r = parse_glxinfo(gtx + amd);
  ASSERT_EQ(r.devices.size(), 2u);
  EXPECT_EQ(r.devices[0].f.vendor, "nvidia");
  EXPECT_EQ(r.devices[1].f.vendor, "amd");
  EXPECT_EQ(r.devices[1].f.vram_free_mb, 3641);
  EXPECT_TRUE(has_note(r.devices[1].notes, "screen: 1"));
  // The same screen twice is one device.
  EXPECT_EQ(parse_glxinfo(gtx + gtx).devices.size(), 1u);
}

// ---- errors and bad input ------------------------------------------------------------------

TEST(Glxinfo, Empty) {
  for (const char* t : {"", " \n\n"}) {
    auto r = parse_glxinfo(t);
    EXPECT_FALSE(r.recognized);
    EXPECT_TRUE(r.devices.empty());
    EXPECT_TRUE(has_note(r.notes, "output is empty"));
  }
}

TEST(Glxinfo, UnableToOpenDisplay) {
  // As printed here by `glxinfo -B` with DISPLAY unset (trailing space included).
  auto r = parse_glxinfo("Error: unable to open display \n");
  EXPECT_FALSE(r.recognized);
  EXPECT_TRUE(r.devices.empty());
  EXPECT_TRUE(has_note(r.notes, "glxinfo reported: Error: unable to open display"));
}

TEST(Glxinfo, NoRgbVisual) {
  auto r = parse_glxinfo(
      "name of display: :0\n"
      "Error: couldn't find RGB GLX visual or fbconfig\n");
  EXPECT_FALSE(r.recognized);
  EXPECT_TRUE(r.devices.empty());
  EXPECT_TRUE(has_note(r.notes, "couldn't find RGB GLX visual"));
}

TEST(Glxinfo, LibGlErrorsNotedButDeviceKept) {
  auto r = parse_glxinfo(
      "libGL error: MESA-LOADER: failed to open iris: /usr/lib/dri/iris_dri.so: cannot open "
      "shared object file: No such file or directory (search paths /usr/lib/dri)\n"
      "libGL error: failed to load driver: iris\n"
      "name of display: :0\n"
      "display: :0  screen: 0\n"
      "OpenGL vendor string: Mesa/X.org\n"
      "OpenGL renderer string: llvmpipe (LLVM 12.0.0, 256 bits)\n"
      "OpenGL version string: 3.1 Mesa 21.0.3\n");
  EXPECT_TRUE(r.recognized);
  ASSERT_EQ(r.devices.size(), 1u);
  EXPECT_TRUE(r.devices[0].software_reason);
  EXPECT_TRUE(has_note(r.notes, "failed to open iris"));
}

TEST(Glxinfo, OtherToolsTextIsNotGlxinfo) {
  auto r = parse_glxinfo(read_fixture("lspci/nvidia-gtx970-x58-lspci-v-peracotta.txt"));
  EXPECT_FALSE(r.recognized);
  EXPECT_TRUE(r.devices.empty());
  EXPECT_TRUE(has_note(r.notes, "not glxinfo output"));
}

}  // namespace
}  // namespace grey
