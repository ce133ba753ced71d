// Parser for the plain `nvidia-smi` table, the last resort of the nvidia-smi source.
//
// Reads the banner ("Driver Version: X   CUDA Version: Y", or the 610-series
// "KMD Version: X   CUDA UMD Version: Y") and the GPU table: each GPU is a block of two or
// three lines between "+---" separators whose cells are split by '|':
//   |   0  NVIDIA A100-SXM4-40GB          Off |   00000000:81:00.0 Off |                    0 |
//   | N/A   32C    P0             52W /  400W |       1MiB /  40960MiB |      0%      Default |
//   |                                         |                        |             Disabled |
// The layout works for the wide (>= 535) and the narrow older tables alike. The "MIG devices:"
// block that may follow gives each MIG instance a row "| GPU GI CI MIG-Dev | used / total |"
// (the instance's memory); those become partitions of their GPU, never GPUs of their own.
// The process table is ignored. Error texts ("couldn't communicate
// with the NVIDIA driver", "No supported GPUs were found") are not recognized and quoted.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <exception>
#include <string>
#include <string_view>

#include "sources/nvidia_smi_common.h"
#include "sources/parse_common.h"
#include "sources/parsers.h"
#include "util/strings.h"

namespace grey {
namespace {

constexpr size_t kMaxCells = 16;
constexpr size_t kMaxDevices = 1024;  // more GPUs than any machine has; bounds junk input

using nvsmi::clip;

bool missing(std::string_view s) {
  return is_missing_marker(s) || nvsmi::is_error_marker(s);
}

bool is_tool_error_line(std::string_view l) {
  return nvsmi::is_tool_error_line(l, {"failed"});
}

std::vector<std::string_view> tokens(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    size_t b = i;
    while (i < s.size() && !std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    if (i > b) out.push_back(s.substr(b, i - b));
  }
  return out;
}

// Cells of a table line: "| a | b | c |" -> {" a ", " b ", " c "}. A line cut short (no
// closing '|') loses its last, incomplete cell.
std::vector<std::string_view> cells_of(std::string_view line) {
  line = trim(line);
  if (starts_with(line, "|")) line.remove_prefix(1);
  bool closed = ends_with(line, "|");
  if (closed) line.remove_suffix(1);
  std::vector<std::string_view> cells;
  size_t start = 0;
  while (cells.size() < kMaxCells) {  // real rows have 3 cells; junk may have millions
    size_t bar = line.find('|', start);
    if (bar == std::string_view::npos) {
      cells.push_back(line.substr(start));
      break;
    }
    cells.push_back(line.substr(start, bar - start));
    start = bar + 1;
  }
  if (!closed && !cells.empty()) cells.pop_back();
  return cells;
}

// Value following `key` on a banner line, up to whitespace or '|'.
std::optional<std::string> value_after(std::string_view line, std::string_view key) {
  size_t p = line.find(key);
  if (p == std::string_view::npos) return std::nullopt;
  std::string_view rest = line.substr(p + key.size());
  size_t b = 0;
  while (b < rest.size() && rest[b] == ' ') ++b;
  size_t e = b;
  while (e < rest.size() && rest[e] != ' ' && rest[e] != '|' && rest[e] != '\t') ++e;
  std::string_view v = rest.substr(b, e - b);
  if (v.empty() || missing(v)) return std::nullopt;
  return std::string(v);
}

std::optional<double> number_of(std::string_view v) {
  if (missing(v)) return std::nullopt;
  auto d = leading_number(v);
  if (!d || std::fabs(*d) > 1e9) return std::nullopt;
  return d;
}

// "1474MiB" (the table always prints the unit; a bare number would be a cut value).
bool has_memory_unit(std::string_view tok) {
  return !missing(tok) && (ends_with(tok, "MiB") || ends_with(tok, "GiB") ||
                           ends_with(tok, "KiB") || ends_with(tok, "MB") || ends_with(tok, "GB"));
}

bool is_separator(std::string_view t) {
  return starts_with(t, "+-") || starts_with(t, "|-");
}
bool is_rule(std::string_view t) {
  return starts_with(t, "|=") || starts_with(t, "+=");
}

struct Banner {
  std::optional<std::string> driver;
  std::optional<std::string> cuda;
  bool seen = false;
};

Banner read_banner(std::string_view line) {
  Banner b;
  if (!contains(line, "NVIDIA-SMI") && !contains(line, "Version:")) return b;
  b.driver = value_after(line, "Driver Version:");
  if (!b.driver) b.driver = value_after(line, "KMD Version:");
  b.cuda = value_after(line, "CUDA UMD Version:");
  if (!b.cuda) b.cuda = value_after(line, "CUDA Version:");
  b.seen = contains(line, "NVIDIA-SMI") || b.driver.has_value();
  return b;
}

// First line of a GPU block: index, name, persistence | bus id, Disp.A | ECC.
bool read_first_line(std::string_view line, Observation& o) {
  auto cells = cells_of(line);
  if (cells.empty()) return false;
  auto t = tokens(cells[0]);
  if (t.empty()) return false;
  auto idx = parse_int(t[0]);
  if (!idx || *idx < 0 || *idx >= 100000) return false;
  o.f.tool_index = static_cast<int>(*idx);

  std::string_view c0 = trim(cells[0]);
  std::string_view rest = trim(c0.substr(t[0].size()));
  // The last token is the persistence mode (or the driver model on Windows: WDDM / TCC).
  auto rt = tokens(rest);
  if (rt.size() >= 2) {
    std::string_view last = rt.back();
    std::string l = to_lower(last);
    bool mode = true;
    if (l == "on") {
      o.f.persistence_mode = true;
    } else if (l == "off") {
      o.f.persistence_mode = false;
    } else if (l != "wddm" && l != "tcc" && l != "mcdm" && !missing(last)) {
      mode = false;
    }
    if (mode) rest = trim(rest.substr(0, static_cast<size_t>(last.data() - rest.data())));
  }
  if (!rest.empty()) {
    o.f.model = std::string(rest);
    if (ends_with(rest, "...") || ends_with(rest, "\xE2\x80\xA6"))
      o.notes.push_back("nvidia-smi's table truncates long names: '" + clip(rest) +
                        "' is incomplete");
  }
  if (cells.size() >= 2) {
    auto bt = tokens(cells[1]);
    if (!bt.empty()) {
      if (auto b = normalize_bus_id(bt[0]))
        o.f.bus_id = *b;
      else if (!missing(bt[0]))
        o.notes.push_back("bus id '" + clip(bt[0]) + "' is not a PCI address; ignored");
    }
  }
  return true;
}

// Second line: fan, temperature, perf state, power draw / cap | memory used / total | util.
void read_second_line(std::string_view line, Observation& o) {
  auto cells = cells_of(line);
  if (cells.empty()) return;
  auto t = tokens(cells[0]);
  for (size_t i = 0; i < t.size(); ++i) {
    std::string_view tok = t[i];
    if (tok == "/") {
      if (i > 0) {
        if (auto d = number_of(t[i - 1]); d && *d >= 0 && ends_with(t[i - 1], "W"))
          o.f.power_draw_w = *d;
      }
      if (i + 1 < t.size()) {
        if (auto c = number_of(t[i + 1]); c && *c > 0 && ends_with(t[i + 1], "W"))
          o.f.power_limit_w = *c;
      }
    } else if (tok.size() >= 2 && tok.back() == 'C' &&
               std::isdigit(static_cast<unsigned char>(tok.front()))) {
      if (auto d = parse_double(tok.substr(0, tok.size() - 1))) o.f.temperature_c = *d;
    }
  }
  if (cells.size() >= 2) {
    auto m = tokens(cells[1]);
    for (size_t i = 0; i < m.size(); ++i) {
      if (m[i] != "/") continue;
      if (i > 0 && has_memory_unit(m[i - 1])) o.f.vram_used_mb = memory_to_mib(m[i - 1]);
      if (i + 1 < m.size() && has_memory_unit(m[i + 1]))
        o.f.vram_total_mb = memory_to_mib(m[i + 1]);
      break;
    }
  }
  if (cells.size() >= 3) {
    auto u = tokens(cells[2]);
    if (!u.empty() && ends_with(u[0], "%")) {
      if (auto p = parse_int(u[0].substr(0, u[0].size() - 1)); p && *p >= 0 && *p <= 100)
        o.f.utilization_pct = static_cast<int>(*p);
    }
  }
}

// Third line (drivers >= 450): MIG mode in the last cell.
void read_third_line(std::string_view line, Observation& o) {
  auto cells = cells_of(line);
  if (cells.size() < 3) return;
  std::string l = to_lower(trim(cells.back()));
  if (l == "enabled") o.f.mig_mode = true;
  if (l == "disabled") o.f.mig_mode = false;
}

// "|   3  NVIDIA A40   On  |   00000000:56:00.0 Off |": an index and a PCI address.
bool starts_gpu_block(std::string_view line) {
  auto cells = cells_of(line);
  if (cells.size() < 2) return false;
  auto t = tokens(cells[0]);
  if (t.empty() || !parse_int(t[0])) return false;
  auto bt = tokens(cells[1]);
  return !bt.empty() && normalize_bus_id(bt[0]).has_value();
}

void quote_errors(const std::vector<std::string_view>& lines, ParseResult& r) {
  std::vector<std::string> quoted;
  for (size_t i = 0; i < lines.size() && i < 50 && quoted.size() < 4; ++i) {
    auto t = trim(lines[i].substr(0, 1024));
    if (!t.empty() && is_tool_error_line(t)) quoted.push_back(clip(t));
  }
  if (quoted.empty()) return;
  std::string note = "nvidia-smi reported: ";
  for (size_t i = 0; i < quoted.size(); ++i) note += (i ? " / " : "") + quoted[i];
  r.notes.push_back(note);
}

// The "MIG devices:" block: rows "|  0    2   0   0  |  22MiB / 71424MiB | ..." where the
// first cell is GPU index, GPU instance id, compute instance id, MIG device index. The
// second line of each entry (BAR1) starts with an empty first cell and is skipped.
void read_mig_block(const std::vector<std::string_view>& lines, size_t from, ParseResult& r) {
  for (size_t i = from; i < lines.size(); ++i) {
    std::string_view t = trim(lines[i]);
    if (t.empty() || (!starts_with(t, "|") && !starts_with(t, "+"))) break;
    if (contains(t, "Processes:")) break;
    auto cells = cells_of(t);
    if (cells.size() < 2) continue;
    auto ids = tokens(cells[0]);
    if (ids.size() != 4) continue;
    std::optional<int64_t> v[4];
    bool all = true;
    for (size_t k = 0; k < 4; ++k) {
      v[k] = parse_int(ids[k]);
      if (!v[k] || *v[k] < 0 || *v[k] >= 100000) all = false;
    }
    if (!all) continue;
    auto gpu = std::find_if(r.devices.begin(), r.devices.end(), [&](const Observation& o) {
      return o.f.tool_index && *o.f.tool_index == *v[0];
    });
    if (gpu == r.devices.end()) {
      r.notes.push_back("MIG device row for GPU " + std::to_string(*v[0]) +
                        ", which the GPU table does not list; ignored");
      continue;
    }
    if (gpu->f.partitions.size() >= kMaxDevices) continue;
    Partition p;
    p.gi_id = static_cast<int>(*v[1]);
    p.ci_id = static_cast<int>(*v[2]);
    p.dev_index = static_cast<int>(*v[3]);
    auto m = tokens(cells[1]);
    for (size_t k = 0; k + 1 < m.size(); ++k)
      if (m[k] == "/" && has_memory_unit(m[k + 1])) {
        p.memory_total_mb = memory_to_mib(m[k + 1]);
        break;
      }
    gpu->f.partitions.push_back(std::move(p));
  }
}

ParseResult parse_table(std::string_view text) {
  ParseResult r;
  if (reject_empty(text, r)) return r;
  std::vector<std::string_view> lines = split_lines(text);

  // Banner and the GPU table header ("| GPU  Name ... | Bus-Id ...").
  Banner banner;
  size_t header = lines.size();
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string_view t = trim(lines[i]);
    if (!banner.seen && contains(t, "NVIDIA-SMI") && contains(t, "Version")) {
      banner = read_banner(t);
      continue;
    }
    if (starts_with(t, "|") && contains(t, "GPU") && contains(t, "Name") && contains(t, "Bus-Id")) {
      header = i;
      break;
    }
  }

  if (header == lines.size()) {
    for (size_t i = 0; i < lines.size() && i < 50; ++i) {
      auto t = trim(lines[i]);
      if (icontains(t.substr(0, 512), "No devices were found")) {
        r.notes.push_back("nvidia-smi reported: " + clip(t) + " (zero GPUs)");
        return r;
      }
    }
    r.recognized = false;
    quote_errors(lines, r);
    if (r.notes.empty()) {
      std::string fl;
      for (auto l : lines)
        if (!trim(l).empty()) {
          fl = clip(l);
          break;
        }
      r.notes.push_back(std::string(banner.seen ? "nvidia-smi banner without a GPU table"
                                                : "not an nvidia-smi table") +
                        ": first line is '" + fl + "'");
    }
    return r;
  }

  // Warnings printed before the table (e.g. "WARNING: infoROM is corrupted at gpu ...").
  for (size_t i = 0; i < header && i < 50; ++i) {
    std::string_view t = trim(lines[i].substr(0, 1024));
    if (t.empty() || starts_with(t, "+") || starts_with(t, "|")) continue;
    if (is_tool_error_line(t) || icontains(t, "warning"))
      r.notes.push_back("nvidia-smi reported: " + clip(t));
  }

  // Skip the rest of the header down to the "|====" rule.
  size_t i = header + 1;
  for (size_t j = i; j < lines.size() && j < header + 8; ++j) {
    if (is_rule(trim(lines[j]))) {
      i = j + 1;
      break;
    }
  }

  std::vector<std::string_view> block;
  auto flush = [&]() {
    if (block.empty()) return;
    Observation o;
    o.f.vendor = "nvidia";
    o.f.kernel_driver = "nvidia";  // nvidia-smi only talks to the NVIDIA kernel driver
    o.f.driver_version = banner.driver;
    o.f.cuda_version = banner.cuda;
    if (r.devices.size() < kMaxDevices && read_first_line(block[0], o)) {
      if (block.size() >= 2) read_second_line(block[1], o);
      if (block.size() >= 3) read_third_line(block[2], o);
      r.devices.push_back(std::move(o));
    }
    block.clear();
  };
  for (; i < lines.size(); ++i) {
    std::string_view t = trim(lines[i]);
    if (t.empty() || (!starts_with(t, "|") && !starts_with(t, "+"))) break;  // end of table
    if (contains(t, "Processes:") || contains(t, "MIG devices:")) break;
    if (is_separator(t) || is_rule(t)) {
      flush();
      continue;
    }
    // Some layouts have no separator between GPUs: a new index row starts a new block.
    if (!block.empty() && starts_gpu_block(t)) flush();
    if (block.size() < 8) block.push_back(t);
  }
  flush();
  // The MIG devices block follows the GPU table after a blank line.
  for (; i < lines.size(); ++i) {
    std::string_view t = trim(lines[i]);
    if (contains(t, "Processes:")) break;
    if (starts_with(t, "|") && contains(t, "MIG devices:")) {
      read_mig_block(lines, i + 1, r);
      break;
    }
  }

  if (!banner.driver) r.notes.push_back("nvidia-smi table banner has no driver version");
  if (r.devices.empty()) r.notes.push_back("nvidia-smi table lists no GPU rows");
  return r;
}

}  // namespace

ParseResult parse_nvidia_smi_table(std::string_view text) {
  return guarded_parse("nvidia-smi table", parse_table, text);
}

}  // namespace grey
