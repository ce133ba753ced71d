// Parser for `nvidia-smi --query-gpu=<fields> --format=csv` (also with `,nounits`).
//
// Columns are mapped by their header name, so the field order is free and unknown fields are
// ignored. Header cells carry the unit ("memory.total [MiB]"); values carry it too unless
// `nounits` was given ("81559 MiB" or "81559"). `noheader` output cannot be mapped and is
// reported as not recognized. A `--query-compute-apps` listing (pid, process_name, ...) has no
// GPU rows: it parses to zero devices.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <exception>
#include <string>
#include <string_view>
#include <unordered_map>

#include "sources/nvidia_smi_common.h"
#include "sources/parse_common.h"
#include "sources/parsers.h"
#include "util/strings.h"

namespace grey {

const char* const kNvidiaSmiQueryFields =
    "index,uuid,name,pci.bus_id,pci.device_id,driver_version,memory.total,memory.used,"
    "memory.free,compute_cap,clocks.max.graphics,temperature.gpu,power.draw,power.limit,"
    "power.default_limit,power.min_limit,power.max_limit,mig.mode.current,persistence_mode,"
    "utilization.gpu,pcie.link.gen.max,pcie.link.width.max";

namespace {

using nvsmi::clip;

// is_missing_marker() plus the unbracketed spellings nvidia-smi uses.
bool missing(std::string_view s) {
  return nvsmi::is_missing_value(s);
}

// Far more than any real query (the full capture has 212 columns); bounds the work on junk.
constexpr size_t kMaxColumns = 4096;
// More GPUs than any machine has; bounds memory on junk input.
constexpr size_t kMaxDevices = 1024;

// One CSV record: cells separated by ',', optionally double-quoted ("" inside quotes is a
// literal quote). Cells are trimmed (nvidia-smi separates with ", "). Stops after max_cells + 1
// cells (enough to tell that the record has too many).
std::vector<std::string> split_record(std::string_view line, size_t max_cells) {
  std::vector<std::string> cells;
  std::string cur;
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < line.size() && line[i + 1] == '"') {
          cur += '"';
          ++i;
        } else {
          quoted = false;
        }
      } else {
        cur += c;
      }
    } else if (c == '"' && trim(cur).empty()) {
      cur.clear();
      quoted = true;
    } else if (c == ',') {
      cells.emplace_back(trim(cur));
      cur.clear();
      if (cells.size() > max_cells) return cells;
    } else {
      cur += c;
    }
  }
  cells.emplace_back(trim(cur));
  return cells;
}

// Fields this parser understands, by canonical --query-gpu name.
enum class Field {
  index,
  uuid,
  name,
  bus_id,
  device_id,
  driver_version,
  kmd_version,
  mem_total,
  mem_used,
  mem_free,
  compute_cap,
  clock_max_graphics,
  temperature,
  power_draw,
  power_draw_instant,
  power_draw_average,
  power_limit,
  enforced_power_limit,
  power_default,
  power_min,
  power_max,
  mig_current,
  persistence,
  util_gpu,
  pcie_gen_max,
  pcie_gen_gpumax,
  pcie_gen_current,
  pcie_width_max,
  pcie_width_current,
};

const std::unordered_map<std::string, Field>& field_names() {
  static const std::unordered_map<std::string, Field> m = {
      {"index", Field::index},
      {"uuid", Field::uuid},
      {"gpu_uuid", Field::uuid},
      {"name", Field::name},
      {"gpu_name", Field::name},
      {"pci.bus_id", Field::bus_id},
      {"gpu_bus_id", Field::bus_id},
      {"pci.device_id", Field::device_id},
      {"driver_version", Field::driver_version},
      {"kmd_version", Field::kmd_version},
      {"memory.total", Field::mem_total},
      {"memory.used", Field::mem_used},
      {"memory.free", Field::mem_free},
      {"compute_cap", Field::compute_cap},
      {"clocks.max.graphics", Field::clock_max_graphics},
      {"clocks.max.gr", Field::clock_max_graphics},
      {"temperature.gpu", Field::temperature},
      {"power.draw", Field::power_draw},
      {"power.draw.instant", Field::power_draw_instant},
      {"power.draw.average", Field::power_draw_average},
      {"power.limit", Field::power_limit},
      {"enforced.power.limit", Field::enforced_power_limit},
      {"power.default_limit", Field::power_default},
      {"power.min_limit", Field::power_min},
      {"power.max_limit", Field::power_max},
      {"mig.mode.current", Field::mig_current},
      {"persistence_mode", Field::persistence},
      {"utilization.gpu", Field::util_gpu},
      {"pcie.link.gen.max", Field::pcie_gen_max},
      {"pcie.link.gen.gpumax", Field::pcie_gen_gpumax},
      {"pcie.link.gen.current", Field::pcie_gen_current},
      {"pcie.link.width.max", Field::pcie_width_max},
      {"pcie.link.width.current", Field::pcie_width_current},
  };
  return m;
}

// "memory.total [MiB]" -> name "memory.total", unit "MiB".
struct Column {
  std::string name;  // lower case
  std::string unit;
  std::optional<Field> field;
};

Column column_of(std::string_view header_cell) {
  Column c;
  std::string_view h = trim(header_cell);
  size_t br = h.find(" [");
  if (br == std::string_view::npos) br = h.find('[');
  if (br != std::string_view::npos) {
    std::string_view u = h.substr(br);
    u = trim(u);
    if (starts_with(u, "[")) u.remove_prefix(1);
    if (ends_with(u, "]")) u.remove_suffix(1);
    c.unit = std::string(trim(u));
    h = trim(h.substr(0, br));
  }
  c.name = to_lower(h);
  auto it = field_names().find(c.name);
  if (it != field_names().end()) c.field = it->second;
  return c;
}

// Looks like a --query-gpu / --query-* field name (lower case, dots, underscores, digits).
bool looks_like_field_name(std::string_view name) {
  if (name.empty() || name.size() > 96) return false;
  for (char ch : name) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (!(std::islower(c) || std::isdigit(c) || c == '.' || c == '_')) return false;
  }
  return std::islower(static_cast<unsigned char>(name.front())) != 0;
}

bool is_tool_error_line(std::string_view l) {
  return nvsmi::is_tool_error_line(l, {"is not a valid field", "invalid combination"});
}

std::optional<double> number_of(std::string_view v) {
  if (missing(v)) return std::nullopt;
  auto d = leading_number(v);
  if (!d || std::fabs(*d) > 1e9) return std::nullopt;
  return d;
}

std::optional<int> int_of(std::string_view v) {
  auto d = number_of(v);
  if (!d) return std::nullopt;
  return static_cast<int>(std::lround(*d));
}

std::optional<double> watts_of(std::string_view v) {
  auto d = number_of(v);
  if (!d || *d < 0) return std::nullopt;
  return d;
}

// Memory value with or without its unit; a bare number takes the header's unit (MiB).
std::optional<int64_t> mib_of(std::string_view v, const std::string& unit) {
  if (missing(v)) return std::nullopt;
  if (parse_double(v))
    return memory_to_mib(std::string(trim(v)) + " " + (unit.empty() ? "MiB" : unit));
  return memory_to_mib(v);
}

std::optional<bool> enabled_of(std::string_view v) {
  std::string l = to_lower(trim(v));
  if (l == "enabled" || l == "on" || l == "yes") return true;
  if (l == "disabled" || l == "off" || l == "no") return false;
  return std::nullopt;
}

bool all_zero_uuid(std::string_view u) {
  if (starts_with(u, "GPU-") || starts_with(u, "MIG-")) u.remove_prefix(4);
  if (u.empty()) return false;
  for (char c : u)
    if (c != '0' && c != '-') return false;
  return true;
}

void set_device_id(std::string_view raw, Observation& o) {
  auto v = parse_hex(raw);
  if (!v || *v > 0xffffffffull) {
    o.notes.push_back("pci device id '" + clip(raw) + "' is not hex; ignored");
    return;
  }
  uint32_t vendor = static_cast<uint32_t>(*v & 0xffffu);
  uint32_t device = static_cast<uint32_t>((*v >> 16) & 0xffffu);
  if (vendor != 0x10de || device == 0) {
    o.notes.push_back("pci device id '" + clip(raw) + "' is not a valid NVIDIA id; ignored");
    return;
  }
  o.f.pci_vendor_id = vendor;
  o.f.pci_device_id = device;
}

Observation read_row(const std::vector<Column>& cols, const std::vector<std::string>& cells) {
  Observation o;
  o.f.vendor = "nvidia";
  o.f.kernel_driver = "nvidia";  // nvidia-smi only talks to the NVIDIA kernel driver
  // Fallback values, used when the preferred column is absent or empty.
  std::optional<double> draw_instant, draw_average, enforced;
  std::optional<int> gen_gpumax, gen_current, width_current;
  std::optional<std::string> kmd;

  const size_t n = std::min(cols.size(), cells.size());
  for (size_t i = 0; i < n; ++i) {
    if (!cols[i].field) continue;
    std::string_view v = trim(cells[i]);
    if (missing(v)) continue;
    const std::string& unit = cols[i].unit;
    switch (*cols[i].field) {
      case Field::index:
        if (auto x = parse_int(v); x && *x >= 0 && *x < 1'000'000)
          o.f.tool_index = static_cast<int>(*x);
        break;
      case Field::uuid:
        if (all_zero_uuid(v))
          o.notes.push_back("uuid '" + clip(v) + "' is all zeros (masked); ignored");
        else
          o.f.uuid = std::string(v);
        break;
      case Field::name:
        o.f.model = std::string(v);
        break;
      case Field::bus_id:
        if (auto b = normalize_bus_id(v))
          o.f.bus_id = *b;
        else
          o.notes.push_back("pci bus id '" + clip(v) + "' is not a PCI address; ignored");
        break;
      case Field::device_id:
        set_device_id(v, o);
        break;
      case Field::driver_version:
        o.f.driver_version = std::string(v);
        break;
      case Field::kmd_version:
        kmd = std::string(v);
        break;
      case Field::mem_total:
        o.f.vram_total_mb = mib_of(v, unit);
        break;
      case Field::mem_used:
        o.f.vram_used_mb = mib_of(v, unit);
        break;
      case Field::mem_free:
        o.f.vram_free_mb = mib_of(v, unit);
        break;
      case Field::compute_cap: {
        auto parts = split(v, '.');
        if (parts.size() == 2 && parse_int(parts[0]) && parse_int(parts[1]))
          o.f.compute_capability = std::string(v);
        break;
      }
      case Field::clock_max_graphics:
        if (auto c = int_of(v); c && *c > 0) o.f.clock_mhz = *c;
        break;
      case Field::temperature:
        if (auto t = number_of(v)) o.f.temperature_c = *t;
        break;
      case Field::power_draw:
        o.f.power_draw_w = watts_of(v);
        break;
      case Field::power_draw_instant:
        draw_instant = watts_of(v);
        break;
      case Field::power_draw_average:
        draw_average = watts_of(v);
        break;
      case Field::power_limit:
        o.f.power_limit_w = watts_of(v);
        break;
      case Field::enforced_power_limit:
        enforced = watts_of(v);
        break;
      case Field::power_default:
        o.f.power_limit_default_w = watts_of(v);
        break;
      case Field::power_min:
        o.f.power_limit_min_w = watts_of(v);
        break;
      case Field::power_max:
        o.f.power_limit_max_w = watts_of(v);
        break;
      case Field::mig_current:
        o.f.mig_mode = enabled_of(v);
        break;
      case Field::persistence:
        o.f.persistence_mode = enabled_of(v);
        break;
      case Field::util_gpu:
        if (auto u = int_of(v); u && *u >= 0 && *u <= 100) o.f.utilization_pct = *u;
        break;
      case Field::pcie_gen_max:
        if (auto g = int_of(v); g && *g >= 1 && *g <= 16) o.f.pcie_gen = *g;
        break;
      case Field::pcie_gen_gpumax:
        if (auto g = int_of(v); g && *g >= 1 && *g <= 16) gen_gpumax = *g;
        break;
      case Field::pcie_gen_current:
        if (auto g = int_of(v); g && *g >= 1 && *g <= 16) gen_current = *g;
        break;
      case Field::pcie_width_max:
        if (auto w = int_of(v); w && *w >= 1 && *w <= 64) o.f.pcie_width = *w;
        break;
      case Field::pcie_width_current:
        if (auto w = int_of(v); w && *w >= 1 && *w <= 64) width_current = *w;
        break;
    }
  }
  if (!o.f.driver_version && kmd) o.f.driver_version = kmd;
  if (!o.f.power_draw_w) o.f.power_draw_w = draw_instant ? draw_instant : draw_average;
  if (!o.f.power_limit_w) o.f.power_limit_w = enforced;
  if (!o.f.pcie_gen) o.f.pcie_gen = gen_gpumax ? gen_gpumax : gen_current;
  if (!o.f.pcie_width) o.f.pcie_width = width_current;
  return o;
}

ParseResult parse_csv(std::string_view text) {
  ParseResult r;
  if (reject_empty(text, r)) return r;
  std::vector<std::string_view> lines = split_lines(text);
  size_t hi = 0;
  while (hi < lines.size() && trim(lines[hi]).empty()) ++hi;
  // hi < lines.size(): the text is not blank.

  std::string_view first = trim(lines[hi]);
  if (icontains(first.substr(0, 512), "No devices were found")) {
    r.notes.push_back("nvidia-smi reported: " + clip(first) + " (zero GPUs)");
    return r;
  }

  std::vector<std::string> header = split_record(first, kMaxColumns);
  if (header.size() > kMaxColumns) {
    r.recognized = false;
    r.notes.push_back("not nvidia-smi --query-gpu CSV: first line has more than " +
                      std::to_string(kMaxColumns) + " cells");
    return r;
  }
  std::vector<Column> cols;
  cols.reserve(header.size());
  size_t known = 0, field_like = 0;
  bool has_pid = false, has_process = false;
  for (const auto& h : header) {
    cols.push_back(column_of(h));
    const Column& c = cols.back();
    if (c.field) ++known;
    if (looks_like_field_name(c.name)) ++field_like;
    if (c.name == "pid") has_pid = true;
    if (c.name == "process_name") has_process = true;
  }

  // Every header cell must read like a field name; otherwise this is an error message,
  // `noheader` output or something else.
  if (field_like != header.size() || (known == 0 && !has_pid)) {
    r.recognized = false;
    std::vector<std::string> quoted;
    for (size_t i = hi; i < lines.size() && i < hi + 50 && quoted.size() < 4; ++i) {
      auto t = trim(lines[i].substr(0, 1024));
      if (!t.empty() && is_tool_error_line(t)) quoted.push_back(clip(t));
    }
    if (!quoted.empty()) {
      std::string note = "nvidia-smi reported: ";
      for (size_t i = 0; i < quoted.size(); ++i) note += (i ? " / " : "") + quoted[i];
      r.notes.push_back(note);
    } else if (header.size() >= 2 && field_like < header.size() / 2 + 1) {
      r.notes.push_back(
          "CSV has no header row (--format=csv,noheader?): columns cannot be mapped; first "
          "line: '" +
          clip(first) + "'");
    } else {
      r.notes.push_back("not nvidia-smi --query-gpu CSV: first line is '" + clip(first) + "'");
    }
    return r;
  }

  size_t rows = 0;
  for (size_t i = hi + 1; i < lines.size(); ++i)
    if (!trim(lines[i]).empty()) ++rows;

  if (has_pid || has_process) {
    r.notes.push_back("per-process listing (--query-compute-apps): " + std::to_string(rows) +
                      " process row(s), no GPU rows");
    return r;
  }

  size_t odd_rows = 0, extra_rows = 0;
  for (size_t i = hi + 1; i < lines.size(); ++i) {
    std::string_view line = trim(lines[i]);
    if (line.empty()) continue;
    if (r.devices.size() >= kMaxDevices) {
      ++extra_rows;
      continue;
    }
    std::vector<std::string> cells = split_record(line, cols.size());
    if (cells.size() > cols.size()) {
      if (odd_rows++ == 0)
        r.notes.push_back("row " + std::to_string(i - hi) + " has more cells than the " +
                          std::to_string(cols.size()) + " columns the header names; row ignored");
      continue;
    }
    if (cells.size() < cols.size()) {
      if (cells.size() == 1 && is_tool_error_line(line.substr(0, 1024))) {
        if (odd_rows++ == 0) r.notes.push_back("nvidia-smi reported: " + clip(line));
        continue;
      }
      if (odd_rows++ == 0)
        r.notes.push_back("row " + std::to_string(i - hi) + " has " + std::to_string(cells.size()) +
                          " cells but the header names " + std::to_string(cols.size()) +
                          " columns (truncated?); only the complete leading columns were read");
      cells.pop_back();  // the last cell may have been cut in half
    }
    r.devices.push_back(read_row(cols, cells));
  }
  if (odd_rows > 1)
    r.notes.push_back(std::to_string(odd_rows) + " rows did not match the header in all");
  if (extra_rows > 0)
    r.notes.push_back("more than " + std::to_string(kMaxDevices) + " GPU rows; " +
                      std::to_string(extra_rows) + " further rows ignored");
  if (r.devices.empty()) r.notes.push_back("nvidia-smi CSV has a header but no GPU rows");
  return r;
}

}  // namespace

ParseResult parse_nvidia_smi_csv(std::string_view text) {
  return guarded_parse("nvidia-smi CSV", parse_csv, text);
}

}  // namespace grey
