// parse_glxinfo: `glxinfo -B` and full `glxinfo`. One observation per X screen that has an
// OpenGL renderer (in practice one). Reads the GL strings, the GLX_MESA_query_renderer block
// ("Extended renderer info"), and the GL_NVX_gpu_memory_info / GL_ATI_meminfo blocks.
#include <algorithm>
#include <cctype>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sources/parse_common.h"
#include "sources/parsers.h"
#include "util/strings.h"

namespace grey {
namespace {

constexpr size_t kMaxQuote = 160;

std::string quote_line(std::string_view s) {
  return quote_for_note(s, kMaxQuote);
}

// "4096MB" / "4096 MB" -> 4096; a number without a unit (a cut-off line) is not read.
std::optional<int64_t> mib_with_unit(std::string_view s) {
  s = trim(s);
  if (s.empty() || !std::isalpha(static_cast<unsigned char>(s.back()))) return std::nullopt;
  return memory_to_mib(s);
}

enum class Block { none, mesa_renderer, nvx_meminfo, ati_meminfo };

struct Screen {
  std::string display;  // "display: :0  screen: 0" line, as printed
  std::optional<std::string> gl_vendor, gl_renderer, gl_version, gl_core_version;
  std::optional<std::string> ext_vendor, ext_device, ext_version;
  std::optional<bool> accelerated, unified;
  std::optional<int64_t> ext_video_mb;
  std::optional<int64_t> nvx_dedicated_mb, nvx_avail_mb;
  std::optional<int64_t> ati_vbo_free_mb;
  bool any() const {
    return gl_vendor || gl_renderer || gl_version || gl_core_version || ext_device || ext_vendor;
  }
};

// "X.Org (0x1002)" -> 0x1002 and "X.Org"; ids above 0xffff (Mesa prints 0xffffffff for
// software renderers) are not PCI ids.
std::string_view strip_hex_suffix(std::string_view s, std::optional<uint64_t>& id) {
  s = trim(s);
  if (s.empty() || s.back() != ')') return s;
  size_t open = s.rfind('(');
  if (open == std::string_view::npos) return s;
  std::string_view inner = s.substr(open + 1, s.size() - open - 2);
  if (!starts_with(inner, "0x") && !starts_with(inner, "0X")) return s;
  auto v = parse_hex(inner);
  if (!v) return s;
  id = v;
  return trim(s.substr(0, open));
}

// "4.6.0 NVIDIA 390.116" / "4.5 (Core Profile) Mesa 18.3.4" -> "4.6" / "4.5".
std::optional<std::string> gl_major_minor(std::string_view v) {
  v = trim(v);
  size_t i = 0;
  auto digits = [&] {
    size_t s = i;
    while (i < v.size() && i - s < 4 && std::isdigit(static_cast<unsigned char>(v[i]))) ++i;
    return i > s;
  };
  if (!digits()) return std::nullopt;
  if (i >= v.size() || v[i] != '.') return std::nullopt;
  ++i;
  if (!digits()) return std::nullopt;
  return std::string(v.substr(0, i));
}

bool version_less(const std::string& a, const std::string& b) {
  auto parts = [](const std::string& s) {
    auto p = split(s, '.');
    int maj = static_cast<int>(parse_int(p[0]).value_or(0));
    int min = p.size() > 1 ? static_cast<int>(parse_int(p[1]).value_or(0)) : 0;
    return std::pair<int, int>(maj, min);
  };
  return parts(a) < parts(b);
}

// The word after `marker` in s ("4.6.0 NVIDIA 390.116", "NVIDIA") -> "390.116".
std::optional<std::string> word_after(std::string_view s, std::string_view marker) {
  size_t p = s.find(marker);
  if (p == std::string_view::npos) return std::nullopt;
  std::string_view rest = trim(s.substr(p + marker.size()));
  size_t e = 0;
  while (e < rest.size() && !std::isspace(static_cast<unsigned char>(rest[e]))) ++e;
  std::string_view w = rest.substr(0, e);
  if (w.empty() || !std::isdigit(static_cast<unsigned char>(w[0]))) return std::nullopt;
  return std::string(w);
}

std::optional<std::string> software_reason_for(const std::string& renderer) {
  std::string l = to_lower(renderer);
  if (contains(l, "llvmpipe")) return "OpenGL software rasterizer (llvmpipe)";
  if (contains(l, "softpipe")) return "OpenGL software rasterizer (softpipe)";
  if (contains(l, "swrast")) return "OpenGL software rasterizer (swrast)";
  if (contains(l, "software rasterizer")) return "OpenGL software rasterizer";
  if (contains(l, "swiftshader")) return "OpenGL software rasterizer (SwiftShader)";
  if (contains(l, "microsoft basic render driver"))
    return "Microsoft Basic Render Driver (software)";
  if (contains(l, "gdi generic")) return "OpenGL software renderer (GDI Generic)";
  if (contains(l, "svga3d")) return "virtual GPU (VMware SVGA3D)";
  if (contains(l, "virgl")) return "virtual GPU (virtio-gpu virgl)";
  return std::nullopt;
}

std::string vendor_from_strings(const std::string& vendor, const std::string& renderer) {
  std::string v = to_lower(vendor);
  std::string r = to_lower(renderer);
  if (contains(v, "nvidia") || contains(v, "nouveau")) return "nvidia";
  if (v == "amd" || starts_with(v, "amd ") || contains(v, "advanced micro devices") ||
      starts_with(v, "ati ") || contains(v, "r300 project"))
    return "amd";
  if (starts_with(v, "intel")) return "intel";
  // Mesa drivers that name the hardware in the renderer (X.Org radeon, D3D12, zink, ...).
  if (contains(r, "llvmpipe") || contains(r, "softpipe")) return "unknown";
  if (contains(r, "nvidia") || contains(r, "geforce") || contains(r, "quadro")) return "nvidia";
  if (starts_with(r, "amd ") || contains(r, "radeon") || contains(r, "(amd ")) return "amd";
  if (contains(r, "intel")) return "intel";
  return "unknown";
}

Observation build(const Screen& s) {
  Observation o;
  GpuFields& f = o.f;
  std::optional<uint64_t> vid, did;
  std::string ext_vendor_name, ext_device_name;
  if (s.ext_vendor) ext_vendor_name = std::string(strip_hex_suffix(*s.ext_vendor, vid));
  if (s.ext_device) ext_device_name = std::string(strip_hex_suffix(*s.ext_device, did));
  if (vid && *vid > 0 && *vid <= 0xffff) f.pci_vendor_id = static_cast<uint32_t>(*vid);
  if (did && *did <= 0xffff && f.pci_vendor_id) f.pci_device_id = static_cast<uint32_t>(*did);

  if (s.gl_renderer && !trim(*s.gl_renderer).empty()) {
    f.model = std::string(trim(*s.gl_renderer));
  } else if (!ext_device_name.empty()) {
    f.model = ext_device_name;
  }
  std::string renderer = f.model.value_or("");
  std::string vendor_str = s.gl_vendor.value_or(ext_vendor_name);

  if (f.pci_vendor_id) {
    f.vendor = vendor_from_pci_id(*f.pci_vendor_id);
    if (*f.vendor == "unknown") {
      std::string by_name = vendor_from_strings(vendor_str, renderer);
      if (by_name != "unknown") f.vendor = by_name;
    }
  } else if (!vendor_str.empty() || !renderer.empty()) {
    f.vendor = vendor_from_strings(vendor_str, renderer);
  }

  // OpenGL version: the highest of the compatibility and core profile versions.
  for (const auto* v : {&s.gl_version, &s.gl_core_version}) {
    if (!*v) continue;
    auto mm = gl_major_minor(**v);
    if (mm && (!f.opengl_version || version_less(*f.opengl_version, *mm))) f.opengl_version = mm;
  }
  // Driver version: NVIDIA prints it after "NVIDIA" in the version strings.
  for (const auto* v : {&s.gl_core_version, &s.gl_version}) {
    if (!*v || f.driver_version) continue;
    if (f.vendor == "nvidia" || icontains(vendor_str, "nvidia")) {
      if (auto w = word_after(**v, "NVIDIA")) f.driver_version = *w;
    }
  }
  if (!f.driver_version) {
    for (const auto* v : {&s.gl_core_version, &s.gl_version}) {
      if (!*v) continue;
      if (auto w = word_after(**v, "Mesa")) {
        o.notes.push_back("OpenGL driver: Mesa " + quote_line(*w));
        break;
      }
    }
  }

  if (s.ext_video_mb && *s.ext_video_mb > 0) {
    f.vram_total_mb = s.ext_video_mb;
  } else if (s.nvx_dedicated_mb && *s.nvx_dedicated_mb > 0) {
    f.vram_total_mb = s.nvx_dedicated_mb;
  }
  if (s.nvx_avail_mb) {
    f.vram_free_mb = s.nvx_avail_mb;
  } else if (s.ati_vbo_free_mb) {
    f.vram_free_mb = s.ati_vbo_free_mb;
  }
  if (s.unified.value_or(false)) {
    std::string mem = f.vram_total_mb ? std::to_string(*f.vram_total_mb) + " MiB" : "video memory";
    o.notes.push_back("GLX_MESA_query_renderer reports unified memory: the " + mem +
                      " of 'video memory' is shared system RAM, not dedicated VRAM");
  }

  o.software_reason = software_reason_for(renderer);
  if (!o.software_reason && s.accelerated && !*s.accelerated)
    o.software_reason =
        "OpenGL renderer is not hardware accelerated (GLX_MESA_query_renderer "
        "Accelerated: no)";
  if (!s.display.empty()) o.notes.push_back("X " + quote_line(s.display));
  return o;
}

bool error_line(std::string_view t) {
  if (starts_with(t, "0x")) return false;  // visual / fbconfig table rows
  t = t.substr(0, 512);
  return starts_with(t, "Error:") || starts_with(t, "X Error of failed request") ||
         starts_with(t, "glxinfo: ") || contains(t, "unable to open display") ||
         contains(t, "couldn't find RGB GLX visual") || contains(t, "glXCreateContext failed") ||
         contains(t, "command not found");
}

}  // namespace

namespace {

ParseResult parse_glxinfo_unguarded(std::string_view text) {
  ParseResult r;
  if (reject_empty(text, r)) return r;
  std::vector<Screen> screens(1);
  Block block = Block::none;
  std::optional<std::string> first_error, first_libgl_error, first_line;
  bool saw_glxinfo_header = false;
  for (auto raw : split_lines(text)) {
    std::string_view t = trim(raw);
    if (t.empty()) continue;
    if (!first_line) first_line = quote_line(t);
    bool indented = raw[0] == ' ' || raw[0] == '\t';
    if (!indented) block = Block::none;
    Screen& s = screens.back();
    auto value_of = [&](std::string_view key) -> std::optional<std::string> {
      if (!starts_with(t, key)) return std::nullopt;
      return std::string(trim(t.substr(key.size())));
    };
    if (indented) {
      switch (block) {
        case Block::mesa_renderer:
          if (auto v = value_of("Vendor:")) {
            s.ext_vendor = v;
          } else if (auto v2 = value_of("Device:")) {
            s.ext_device = v2;
          } else if (auto v3 = value_of("Version:")) {
            s.ext_version = v3;
          } else if (auto v4 = value_of("Accelerated:")) {
            if (starts_with(*v4, "yes")) s.accelerated = true;
            if (starts_with(*v4, "no")) s.accelerated = false;
          } else if (auto v5 = value_of("Video memory:")) {
            s.ext_video_mb = mib_with_unit(*v5);
          } else if (auto v6 = value_of("Unified memory:")) {
            if (starts_with(*v6, "yes")) s.unified = true;
            if (starts_with(*v6, "no")) s.unified = false;
          }
          break;
        case Block::nvx_meminfo:
          if (auto v = value_of("Dedicated video memory:")) {
            s.nvx_dedicated_mb = mib_with_unit(*v);
          } else if (auto v2 = value_of("Currently available dedicated video memory:")) {
            s.nvx_avail_mb = mib_with_unit(*v2);
          }
          break;
        case Block::ati_meminfo:
          if (auto v = value_of("VBO free memory - total:")) {
            s.ati_vbo_free_mb = mib_with_unit(v->substr(0, v->find(',')));
          }
          break;
        case Block::none:
          break;
      }
      continue;
    }
    if (starts_with(t, "name of display:")) {
      saw_glxinfo_header = true;
    } else if (starts_with(t, "display:") && contains(t, "screen:")) {
      saw_glxinfo_header = true;
      if (s.any()) screens.emplace_back();
      screens.back().display = std::string(t.substr(0, 80));
    } else if (starts_with(t, "Extended renderer info")) {
      block = Block::mesa_renderer;
    } else if (starts_with(t, "Memory info (GL_NVX_gpu_memory_info)")) {
      block = Block::nvx_meminfo;
    } else if (starts_with(t, "Memory info (GL_ATI_meminfo)")) {
      block = Block::ati_meminfo;
    } else if (auto v = value_of("OpenGL vendor string:")) {
      s.gl_vendor = v;
    } else if (auto v2 = value_of("OpenGL renderer string:")) {
      s.gl_renderer = v2;
    } else if (auto v3 = value_of("OpenGL version string:")) {
      s.gl_version = v3;
    } else if (auto v4 = value_of("OpenGL core profile version string:")) {
      s.gl_core_version = v4;
    } else if (starts_with(t, "libGL error:") || starts_with(t, "MESA-LOADER:")) {
      if (!first_libgl_error) first_libgl_error = quote_line(t);
    } else if (!first_error && error_line(t)) {
      first_error = quote_line(t);
    }
  }

  std::vector<std::string> seen;
  size_t with_gl = 0;
  for (const Screen& s : screens) {
    if (!s.any()) continue;
    ++with_gl;
    Observation o = build(s);
    std::string key = o.f.model.value_or("") + "|" + o.f.vendor.value_or("") + "|" +
                      (o.f.pci_device_id ? std::to_string(*o.f.pci_device_id) : "");
    if (std::find(seen.begin(), seen.end(), key) != seen.end()) continue;  // same GPU
    seen.push_back(key);
    r.devices.push_back(std::move(o));
  }
  // With a single screen the display line is noise.
  if (with_gl <= 1) {
    for (auto& o : r.devices) {
      o.notes.erase(std::remove_if(o.notes.begin(), o.notes.end(),
                                   [](const std::string& n) { return starts_with(n, "X "); }),
                    o.notes.end());
    }
  }
  if (first_libgl_error) r.notes.push_back("glxinfo reported: " + *first_libgl_error);
  if (r.devices.empty()) {
    r.recognized = false;
    if (first_error) {
      r.notes.push_back("glxinfo reported: " + *first_error);
    } else if (saw_glxinfo_header) {
      r.notes.push_back(
          "glxinfo printed no 'OpenGL renderer string': no GL context could be created");
    } else {
      r.notes.push_back("no 'OpenGL renderer string' line: not glxinfo output (first line: '" +
                        first_line.value_or("") + "')");
    }
  }
  return r;
}

}  // namespace

ParseResult parse_glxinfo(std::string_view text) {
  return guarded_parse("glxinfo output", parse_glxinfo_unguarded, text);
}

}  // namespace grey
