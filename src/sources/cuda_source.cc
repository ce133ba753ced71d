// CUDA driver API probe. Each failed call becomes a precise note naming the call and the
// CUresult; the probe goes on with the other fields and devices.
#include "sources/cuda_source.h"

#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "bindings/cuda_api.h"
#include "sources/library_probe.h"
#include "util/strings.h"

namespace grey {
namespace {

using namespace cuda;  // NOLINT(build/namespaces): the vendor API's own names
using Clock = std::chrono::steady_clock;

constexpr const char* kSoname = "libcuda.so.1";
constexpr const char* kEnvOverride = "GREY_CUDA_LIBRARY";

struct Api {
  const DynLib* lib = nullptr;
  cuInit_fn init = nullptr;
  cuDriverGetVersion_fn driver_version = nullptr;
  cuDeviceGetCount_fn count = nullptr;
  cuDeviceGet_fn get = nullptr;
  cuDeviceGetName_fn name = nullptr;
  cuDeviceTotalMem_v2_fn total_mem = nullptr;
  cuDeviceTotalMem_v1_fn total_mem_v1 = nullptr;
  cuDeviceGetAttribute_fn attribute = nullptr;
  cuGetErrorString_fn error_name = nullptr;
  cuGetErrorString_fn error_string = nullptr;
  std::vector<std::string> missing_notes;

  template <typename F>
  F need(const char* sym, const char* what) {
    F p = lib->fn<F>({sym});
    if (!p)
      missing_notes.push_back(std::string(sym) + " not found in " + lib->path() + "; " + what);
    return p;
  }

  void resolve(const DynLib& l) {
    lib = &l;
    init = need<cuInit_fn>("cuInit", "nothing can be read");
    driver_version = need<cuDriverGetVersion_fn>("cuDriverGetVersion", "cuda_version unknown");
    count = need<cuDeviceGetCount_fn>("cuDeviceGetCount", "nothing can be read");
    get = need<cuDeviceGet_fn>("cuDeviceGet", "nothing can be read");
    name = need<cuDeviceGetName_fn>("cuDeviceGetName", "model unknown");
    total_mem = l.fn<cuDeviceTotalMem_v2_fn>({"cuDeviceTotalMem_v2"});
    if (!total_mem) total_mem_v1 = l.fn<cuDeviceTotalMem_v1_fn>({"cuDeviceTotalMem"});
    if (!total_mem && !total_mem_v1) {
      missing_notes.push_back("cuDeviceTotalMem_v2/cuDeviceTotalMem not found in " + l.path() +
                              "; vram unknown");
    }
    attribute = need<cuDeviceGetAttribute_fn>(
        "cuDeviceGetAttribute",
        "compute_capability, num_sm, memory_bus_width, clock_mhz and bus_id unknown");
    error_name = l.fn<cuGetErrorString_fn>({"cuGetErrorName"});
    error_string = l.fn<cuGetErrorString_fn>({"cuGetErrorString"});
  }

  // "cuInit failed: CUDA_ERROR_NO_DEVICE (100): no CUDA-capable device is detected".
  std::string failure(const std::string& call, CUresult r) const {
    const char* n = nullptr;
    if (error_name && error_name(r, &n) != CUDA_SUCCESS) n = nullptr;
    if (!n) n = result_name(r);
    std::string s =
        call + " failed: " + (n ? n : "unknown CUDA error") + " (" + std::to_string(r) + ")";
    const char* text = nullptr;
    if (error_string && error_string(r, &text) == CUDA_SUCCESS && text && *text) {
      s += std::string(": ") + text;
    }
    return s;
  }
};

std::string version_text(int v) {
  return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
}

Observation read_device(const Api& api, CUdevice dev, int ordinal,
                        const std::optional<std::string>& cuda_version) {
  Observation o;
  GpuFields& f = o.f;
  f.vendor = "nvidia";
  f.cuda_version = cuda_version;
  f.tool_index = ordinal;
  auto ok = [&](CUresult r, const std::string& call) {
    if (r == CUDA_SUCCESS) return true;
    o.notes.push_back(api.failure(call, r));
    return false;
  };
  if (api.name) {
    char buf[256] = {};
    if (ok(api.name(buf, static_cast<int>(sizeof buf) - 1, dev), "cuDeviceGetName")) {
      std::string s(trim(std::string_view(buf)));
      if (!s.empty()) f.model = s;
    }
  }
  if (api.total_mem) {
    size_t bytes = 0;
    if (ok(api.total_mem(&bytes, dev), "cuDeviceTotalMem_v2"))
      f.vram_total_mb = bytes_to_mib(bytes);
  } else if (api.total_mem_v1) {
    unsigned int bytes = 0;
    if (ok(api.total_mem_v1(&bytes, dev), "cuDeviceTotalMem"))
      f.vram_total_mb = bytes_to_mib(bytes);
  }
  if (!api.attribute) return o;
  auto attr = [&](int a, const char* a_name) -> std::optional<int> {
    int v = 0;
    if (!ok(api.attribute(&v, a, dev), std::string("cuDeviceGetAttribute(") + a_name + ")")) {
      return std::nullopt;
    }
    return v;
  };
  auto major = attr(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR,
                    "CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR");
  auto minor = attr(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR,
                    "CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR");
  if (major && minor) f.compute_capability = std::to_string(*major) + "." + std::to_string(*minor);
  if (auto v = attr(CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT,
                    "CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT")) {
    f.num_sm = *v;
  }
  if (auto v = attr(CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH,
                    "CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH")) {
    f.memory_bus_width = *v;
  }
  // CLOCK_RATE is the peak SM clock in kHz.
  if (auto v = attr(CU_DEVICE_ATTRIBUTE_CLOCK_RATE, "CU_DEVICE_ATTRIBUTE_CLOCK_RATE")) {
    if (*v > 0) f.clock_mhz = *v / 1000;
  }
  auto domain = attr(CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID, "CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID");
  auto bus = attr(CU_DEVICE_ATTRIBUTE_PCI_BUS_ID, "CU_DEVICE_ATTRIBUTE_PCI_BUS_ID");
  auto slot = attr(CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID, "CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID");
  if (domain && bus && slot) {
    // CUDA has no function number: its own cuDeviceGetPCIBusId prints ".0" as well.
    char buf[48];
    std::snprintf(buf, sizeof buf, "%x:%x:%x.0", static_cast<unsigned>(*domain),
                  static_cast<unsigned>(*bus), static_cast<unsigned>(*slot));
    if (auto b = normalize_bus_id(buf)) {
      f.bus_id = *b;
    } else {
      o.notes.push_back(std::string("PCI location ") + buf + " out of range; bus_id unknown");
    }
  }
  return o;
}

class CudaSource : public Source {
 public:
  std::string name() const override { return "cuda"; }
  int authority() const override { return 60; }

  SourceReport collect(SourceContext& ctx) override {
    SourceReport rep;
    rep.source = name();
    auto t0 = Clock::now();
    auto done = [&](SourceStatus s) {
      rep.status = s;
      rep.duration_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
      return rep;
    };
    std::unique_ptr<DynLib> lib;
    if (auto stop = begin_library_probe(ctx, kSoname, kEnvOverride, rep, &lib)) return done(*stop);
    Api api;
    api.resolve(*lib);
    for (auto& n : api.missing_notes) rep.notes.push_back(n);
    if (!api.init || !api.count || !api.get) return done(SourceStatus::failed);

    // cuDriverGetVersion works before cuInit (and without a device).
    std::optional<std::string> cuda_version;
    if (api.driver_version) {
      int v = 0;
      CUresult r = api.driver_version(&v);
      if (r != CUDA_SUCCESS) {
        rep.notes.push_back(api.failure("cuDriverGetVersion", r));
      } else if (v > 0) {
        cuda_version = version_text(v);
      }
    }
    CUresult r = api.init(0);
    if (r == CUDA_ERROR_NO_DEVICE) {
      rep.notes.push_back(api.failure("cuInit", r));
      return done(SourceStatus::no_devices);
    }
    if (r != CUDA_SUCCESS) {
      rep.notes.push_back(api.failure("cuInit", r));
      return done(SourceStatus::failed);
    }
    int count = 0;
    r = api.count(&count);
    if (r != CUDA_SUCCESS) {
      rep.notes.push_back(api.failure("cuDeviceGetCount", r));
      return done(SourceStatus::failed);
    }
    if (count <= 0) {
      rep.notes.push_back("cuDeviceGetCount reported 0 devices");
      return done(SourceStatus::no_devices);
    }
    for (int i = 0; i < count; ++i) {
      CUdevice dev = 0;
      r = api.get(&dev, i);
      if (r != CUDA_SUCCESS) {
        rep.notes.push_back(api.failure("cuDeviceGet(" + std::to_string(i) + ")", r) + "; device " +
                            std::to_string(i) + " skipped");
        continue;
      }
      rep.devices.push_back(read_device(api, dev, i, cuda_version));
    }
    return done(rep.devices.empty() ? SourceStatus::failed : SourceStatus::ok);
  }
};

}  // namespace

std::unique_ptr<Source> make_cuda_source() {
  return std::make_unique<CudaSource>();
}

}  // namespace grey
