#include "detect/registry.h"

#include <string>

#include "detect/isolated_source.h"
#include "sources/cuda_source.h"
#include "sources/nvml_source.h"
#include "sources/opencl_source.h"
#include "sources/parsers.h"
#include "sources/sysfs_source.h"

namespace grey {

namespace {

std::unique_ptr<Source> cmd(std::string name, int authority, std::vector<CommandVariant> v) {
  return std::make_unique<CommandSource>(std::move(name), authority, std::move(v));
}

}  // namespace

// Authority (higher wins per field): NVML > vendor CLIs > sysfs > library probes >
// vulkan/gl/cl > lspci/lshw (SPEC §1).
std::vector<std::unique_ptr<Source>> make_all_sources(const std::string& probe_exe) {
  auto lib = [&](std::unique_ptr<Source> src) -> std::unique_ptr<Source> {
    if (probe_exe.empty()) return src;
    return std::make_unique<IsolatedSource>(std::move(src), probe_exe);
  };
  std::vector<std::unique_ptr<Source>> s;
  s.push_back(lib(make_nvml_source()));
  s.push_back(
      cmd("nvidia-smi", 90,
          {{{"nvidia-smi", "-q", "-x"}, "nvidia-smi.xml", parse_nvidia_smi_xml},
           {{"nvidia-smi", std::string("--query-gpu=") + kNvidiaSmiQueryFields, "--format=csv"},
            "nvidia-smi.csv",
            parse_nvidia_smi_csv},
           {{"nvidia-smi"}, "nvidia-smi.txt", parse_nvidia_smi_table}}));
  // MIG device UUIDs and profiles (the XML and the table do not show both).
  s.push_back(cmd("nvidia-smi -L", 89,
                  {{{"nvidia-smi", "-L"}, "nvidia-smi-L.txt", parse_nvidia_smi_list}}));
  s.push_back(cmd("amd-smi", 88,
                  {{{"amd-smi", "static", "--json"}, "amd-smi.json", parse_amd_smi_json},
                   {{"amd-smi", "static"}, "amd-smi.txt", parse_amd_smi_text}}));
  s.push_back(cmd("rocm-smi", 86,
                  {{{"rocm-smi", "--showproductname", "--showbus", "--showmeminfo", "vram",
                     "--showtemp", "--showpower", "--showmaxpower", "--showdriverversion",
                     "--showid", "--showuniqueid", "--json"},
                    "rocm-smi.json",
                    parse_rocm_smi_json},
                   {{"rocm-smi"}, "rocm-smi.txt", parse_rocm_smi_text}}));
  s.push_back(cmd("xpu-smi", 84,
                  {{{"xpu-smi", "discovery", "-j"}, "xpu-smi.json", parse_xpu_smi},
                   {{"xpu-smi", "discovery"}, "xpu-smi.txt", parse_xpu_smi}}));
  // intel_gpu_top streams samples until stopped: sample for a second and parse what came.
  CommandVariant igt{
      {"intel_gpu_top", "-J", "-s", "500"}, "intel_gpu_top.json", parse_intel_gpu_top_json};
  igt.sample_for = std::chrono::milliseconds(1200);
  s.push_back(cmd("intel_gpu_top", 80, {igt}));
  s.push_back(make_sysfs_source());
  s.push_back(lib(make_cuda_source()));
  s.push_back(lib(make_opencl_source()));
  s.push_back(cmd("vulkaninfo", 50,
                  {{{"vulkaninfo", "--summary"}, "vulkaninfo.txt", parse_vulkaninfo},
                   {{"vulkaninfo"}, "vulkaninfo-full.txt", parse_vulkaninfo}}));
  s.push_back(cmd("clinfo", 48,
                  {{{"clinfo", "--json"}, "clinfo.json", parse_clinfo},
                   {{"clinfo"}, "clinfo.txt", parse_clinfo}}));
  s.push_back(cmd("glxinfo", 45, {{{"glxinfo", "-B"}, "glxinfo.txt", parse_glxinfo}}));
  s.push_back(cmd("lspci", 30,
                  {{{"lspci", "-vmm", "-nn", "-D", "-k"}, "lspci.txt", parse_lspci},
                   {{"lspci", "-nn"}, "lspci-nn.txt", parse_lspci}}));
  s.push_back(cmd("lshw", 25,
                  {{{"lshw", "-json", "-C", "display"}, "lshw.json", parse_lshw},
                   {{"lshw", "-C", "display"}, "lshw.txt", parse_lshw}}));
  return s;
}

}  // namespace grey
