// OpenCL ICD probe: one observation per device of every platform. CPU devices (PoCL's
// pthread/basic drivers, Intel's and AMD's CPU runtimes) are returned with software_reason set;
// the detector moves them to the ignored list.
#include "sources/opencl_source.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "bindings/opencl_api.h"
#include "sources/library_probe.h"
#include "util/strings.h"

namespace grey {
namespace {

using namespace opencl;  // NOLINT(build/namespaces): the vendor API's own names
using Clock = std::chrono::steady_clock;

constexpr const char* kSoname = "libOpenCL.so.1";
constexpr const char* kEnvOverride = "GREY_OPENCL_LIBRARY";
constexpr size_t kMaxString = 64 * 1024;  // no sane name or version is longer

std::string failure(const std::string& call, cl_int e) {
  const char* n = error_name(e);
  return call + " failed: " + (n ? n : "unknown OpenCL error") + " (" + std::to_string(e) + ")";
}

const char* device_param_name(cl_device_info p) {
  switch (p) {
    case CL_DEVICE_NAME:
      return "CL_DEVICE_NAME";
    case CL_DEVICE_VENDOR:
      return "CL_DEVICE_VENDOR";
    case CL_DEVICE_VENDOR_ID:
      return "CL_DEVICE_VENDOR_ID";
    case CL_DEVICE_VERSION:
      return "CL_DEVICE_VERSION";
    case CL_DRIVER_VERSION:
      return "CL_DRIVER_VERSION";
    case CL_DEVICE_TYPE:
      return "CL_DEVICE_TYPE";
    case CL_DEVICE_GLOBAL_MEM_SIZE:
      return "CL_DEVICE_GLOBAL_MEM_SIZE";
    case CL_DEVICE_MAX_COMPUTE_UNITS:
      return "CL_DEVICE_MAX_COMPUTE_UNITS";
    case CL_DEVICE_MAX_CLOCK_FREQUENCY:
      return "CL_DEVICE_MAX_CLOCK_FREQUENCY";
    default:
      return "?";
  }
}

// "OpenCL 3.0 CUDA" -> "3.0" (the spec's form: "OpenCL<space><major.minor><space><vendor>").
std::optional<std::string> opencl_version_of(std::string_view s) {
  s = trim(s);
  if (!starts_with(s, "OpenCL ")) return std::nullopt;
  s.remove_prefix(7);
  size_t end = s.find(' ');
  std::string_view v = s.substr(0, end);
  size_t dot = v.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == v.size()) return std::nullopt;
  for (char c : v) {
    if (c != '.' && (c < '0' || c > '9')) return std::nullopt;
  }
  return std::string(v);
}

std::string vendor_from_text(const std::string& v) {
  if (icontains(v, "nvidia")) return "nvidia";
  if (icontains(v, "advanced micro devices") || icontains(v, "amd")) return "amd";
  if (icontains(v, "intel")) return "intel";
  return "unknown";
}

struct Api {
  clGetPlatformIDs_fn platform_ids = nullptr;
  clGetPlatformInfo_fn platform_info = nullptr;
  clGetDeviceIDs_fn device_ids = nullptr;
  clGetDeviceInfo_fn device_info = nullptr;

  // A string parameter; nullopt (and a note) when the query fails.
  template <typename Obj, typename Fn>
  static std::optional<std::string> text(Fn fn, Obj obj, cl_uint param, const std::string& call,
                                         std::vector<std::string>* notes) {
    size_t size = 0;
    cl_int e = fn(obj, param, 0, nullptr, &size);
    if (e == CL_SUCCESS && size > kMaxString) size = kMaxString;
    std::string buf(size, '\0');
    if (e == CL_SUCCESS && size > 0) e = fn(obj, param, size, buf.data(), nullptr);
    if (e != CL_SUCCESS) {
      if (notes) notes->push_back(failure(call, e));
      return std::nullopt;
    }
    return clean_value(buf);
  }

  template <typename T>
  bool value(cl_device_id d, cl_device_info param, T* out, std::vector<std::string>* notes) const {
    size_t got = 0;
    cl_int e = device_info(d, param, sizeof(T), out, &got);
    if (e == CL_SUCCESS && got == sizeof(T)) return true;
    if (notes) {
      std::string call = std::string("clGetDeviceInfo(") + device_param_name(param) + ")";
      notes->push_back(e == CL_SUCCESS ? call + " answered " + std::to_string(got) +
                                             " bytes, expected " + std::to_string(sizeof(T))
                                       : failure(call, e));
    }
    return false;
  }
};

std::string bus_text(unsigned domain, unsigned bus, unsigned dev, unsigned fn) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%x:%x:%x.%x", domain, bus, dev, fn);
  return buf;
}

// PCI location: cl_khr_pci_bus_info, else AMD's topology query, else NVIDIA's bus/slot. A
// device that supports none of them answers an error to each: that is expected, not noted.
void read_pci(const Api& api, cl_device_id d, Observation& o) {
  std::optional<std::string> raw;
  cl_device_pci_bus_info_khr khr{};
  cl_device_topology_amd amd{};
  cl_uint nv_bus = 0, nv_slot = 0, nv_domain = 0;
  if (api.value(d, CL_DEVICE_PCI_BUS_INFO_KHR, &khr, nullptr)) {
    raw = bus_text(khr.pci_domain, khr.pci_bus, khr.pci_device, khr.pci_function);
  } else if (api.value(d, CL_DEVICE_TOPOLOGY_AMD, &amd, nullptr) &&
             amd.raw.type == CL_DEVICE_TOPOLOGY_TYPE_PCIE_AMD) {
    // cl_char is signed: buses above 0x7f come back negative.
    raw = bus_text(0, static_cast<uint8_t>(amd.pcie.bus), static_cast<uint8_t>(amd.pcie.device),
                   static_cast<uint8_t>(amd.pcie.function));
    o.notes.push_back("CL_DEVICE_TOPOLOGY_AMD carries no PCI domain; 0000 assumed");
  } else if (api.value(d, CL_DEVICE_PCI_BUS_ID_NV, &nv_bus, nullptr) &&
             api.value(d, CL_DEVICE_PCI_SLOT_ID_NV, &nv_slot, nullptr)) {
    if (!api.value(d, CL_DEVICE_PCI_DOMAIN_ID_NV, &nv_domain, nullptr)) {
      nv_domain = 0;
      o.notes.push_back("CL_DEVICE_PCI_DOMAIN_ID_NV not supported; PCI domain 0000 assumed");
    }
    raw = bus_text(nv_domain, nv_bus & 0xff, (nv_slot >> 3) & 0x1f, nv_slot & 7);
  }
  if (!raw) return;
  if (auto b = normalize_bus_id(*raw)) {
    o.f.bus_id = *b;
  } else {
    o.notes.push_back("PCI location " + *raw + " out of range; bus_id unknown");
  }
}

Observation read_device(const Api& api, cl_device_id d, int index, bool pocl) {
  Observation o;
  GpuFields& f = o.f;
  auto* notes = &o.notes;
  f.tool_index = index;
  auto text = [&](cl_device_info p) {
    return Api::text(api.device_info, d, p,
                     std::string("clGetDeviceInfo(") + device_param_name(p) + ")", notes);
  };
  if (auto s = text(CL_DEVICE_NAME); s && !s->empty()) f.model = *s;
  cl_device_type type = 0;
  bool have_type = api.value(d, CL_DEVICE_TYPE, &type, notes);
  bool cpu = have_type && (type & CL_DEVICE_TYPE_CPU);
  if (cpu) {
    o.software_reason = pocl ? "OpenCL device type CPU (PoCL runs OpenCL kernels on the CPU)"
                             : "OpenCL device type CPU";
  }
  // A CPU device's vendor and vendor id are the processor's (GenuineIntel, 0x8086): they say
  // nothing about a GPU, so they are not reported.
  auto vendor_text = text(CL_DEVICE_VENDOR);
  cl_uint vendor_id = 0;
  bool have_vendor_id = api.value(d, CL_DEVICE_VENDOR_ID, &vendor_id, notes);
  if (!cpu) {
    if (have_vendor_id && vendor_id != 0 && vendor_id <= 0xffff) f.pci_vendor_id = vendor_id;
    std::string by_id = f.pci_vendor_id ? vendor_from_pci_id(*f.pci_vendor_id) : "unknown";
    if (by_id != "unknown") {
      f.vendor = by_id;
    } else if (vendor_text && !vendor_text->empty()) {
      f.vendor = vendor_from_text(*vendor_text);
    }
  }
  if (auto s = text(CL_DEVICE_VERSION)) {
    f.opencl_version = opencl_version_of(*s);
    if (!f.opencl_version && !s->empty()) {
      o.notes.push_back("CL_DEVICE_VERSION '" + *s + "' is not 'OpenCL <major.minor> ...'");
    }
  }
  if (auto s = text(CL_DRIVER_VERSION); s && !s->empty()) f.driver_version = *s;
  cl_ulong mem = 0;
  if (api.value(d, CL_DEVICE_GLOBAL_MEM_SIZE, &mem, notes)) f.vram_total_mb = bytes_to_mib(mem);
  cl_uint cu = 0;
  if (api.value(d, CL_DEVICE_MAX_COMPUTE_UNITS, &cu, notes) && cu > 0) {
    f.num_sm = static_cast<int>(cu);
  }
  cl_uint mhz = 0;
  if (api.value(d, CL_DEVICE_MAX_CLOCK_FREQUENCY, &mhz, notes) && mhz > 0) {
    f.clock_mhz = static_cast<int>(mhz);
  }
  if (!cpu) read_pci(api, d, o);
  return o;
}

class OpenclSource : public Source {
 public:
  std::string name() const override { return "opencl"; }
  int authority() const override { return 55; }

  SourceReport collect(SourceContext& ctx) override {
    SourceReport rep;
    rep.source = name();
    auto t0 = Clock::now();
    auto done = [&](SourceStatus s) {
      rep.status = s;
      rep.duration_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
      return rep;
    };
    std::unique_ptr<DynLib> loaded;
    if (auto stop = begin_library_probe(ctx, kSoname, kEnvOverride, rep, &loaded))
      return done(*stop);
    const DynLib& lib = *loaded;
    Api api;
    api.platform_ids = lib.fn<clGetPlatformIDs_fn>({"clGetPlatformIDs"});
    api.platform_info = lib.fn<clGetPlatformInfo_fn>({"clGetPlatformInfo"});
    api.device_ids = lib.fn<clGetDeviceIDs_fn>({"clGetDeviceIDs"});
    api.device_info = lib.fn<clGetDeviceInfo_fn>({"clGetDeviceInfo"});
    {
      bool missing = false;
      auto need = [&](const void* p, const char* sym) {
        if (p) return;
        missing = true;
        rep.notes.push_back(std::string(sym) + " not found in " + lib.path() +
                            "; nothing can be read");
      };
      need(reinterpret_cast<const void*>(api.platform_ids), "clGetPlatformIDs");
      need(reinterpret_cast<const void*>(api.device_ids), "clGetDeviceIDs");
      need(reinterpret_cast<const void*>(api.device_info), "clGetDeviceInfo");
      if (missing) return done(SourceStatus::failed);
      if (!api.platform_info) {
        rep.notes.push_back("clGetPlatformInfo not found in " + lib.path() +
                            "; platform names unknown");
      }
    }

    cl_uint n = 0;
    cl_int e = api.platform_ids(0, nullptr, &n);
    if (e == CL_PLATFORM_NOT_FOUND_KHR || (e == CL_SUCCESS && n == 0)) {
      rep.notes.push_back(e == CL_SUCCESS ? "clGetPlatformIDs reported 0 platforms"
                                          : failure("clGetPlatformIDs", e) +
                                                "; no OpenCL platform (ICD) is installed");
      return done(SourceStatus::no_devices);
    }
    if (e != CL_SUCCESS) {
      rep.notes.push_back(failure("clGetPlatformIDs", e));
      return done(SourceStatus::failed);
    }
    std::vector<cl_platform_id> platforms(n);
    e = api.platform_ids(n, platforms.data(), &n);
    if (e != CL_SUCCESS) {
      rep.notes.push_back(failure("clGetPlatformIDs", e));
      return done(SourceStatus::failed);
    }
    platforms.resize(std::min<size_t>(platforms.size(), n));

    bool any_failure = false;
    int index = 0;
    for (size_t p = 0; p < platforms.size(); ++p) {
      std::string label = "platform " + std::to_string(p);
      std::optional<std::string> pname, pvendor;
      if (api.platform_info) {
        pname = Api::text(api.platform_info, platforms[p], CL_PLATFORM_NAME,
                          "clGetPlatformInfo(CL_PLATFORM_NAME)", &rep.notes);
        pvendor = Api::text(api.platform_info, platforms[p], CL_PLATFORM_VENDOR,
                            "clGetPlatformInfo(CL_PLATFORM_VENDOR)", &rep.notes);
        if (pname) label += " '" + *pname + "'";
      }
      bool pocl = (pname && icontains(*pname, "portable computing language")) ||
                  (pvendor && icontains(*pvendor, "pocl"));
      cl_uint nd = 0;
      e = api.device_ids(platforms[p], CL_DEVICE_TYPE_ALL, 0, nullptr, &nd);
      if (e == CL_DEVICE_NOT_FOUND || (e == CL_SUCCESS && nd == 0)) {
        rep.notes.push_back(label + " has no devices");
        continue;
      }
      std::vector<cl_device_id> devs(nd);
      if (e == CL_SUCCESS)
        e = api.device_ids(platforms[p], CL_DEVICE_TYPE_ALL, nd, devs.data(), &nd);
      if (e != CL_SUCCESS) {
        rep.notes.push_back(failure("clGetDeviceIDs(" + label + ")", e));
        any_failure = true;
        continue;
      }
      devs.resize(std::min<size_t>(devs.size(), nd));
      for (cl_device_id d : devs) rep.devices.push_back(read_device(api, d, index++, pocl));
    }
    if (!rep.devices.empty()) return done(SourceStatus::ok);
    return done(any_failure ? SourceStatus::failed : SourceStatus::no_devices);
  }
};

}  // namespace

std::unique_ptr<Source> make_opencl_source() {
  return std::make_unique<OpenclSource>();
}

}  // namespace grey
