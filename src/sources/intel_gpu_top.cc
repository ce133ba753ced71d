// intel_gpu_top -J: a stream of JSON samples. Old versions print "{...},{...}" without an
// enclosing array, newer ones open with "[" and close with "]" only on a clean exit, so a capture
// cut by a timeout ends inside an object. We split the stream into its top-level objects by brace
// matching (string aware), parse each complete one and use the LAST complete sample.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <exception>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "sources/parse_common.h"
#include "sources/parsers.h"
#include "util/strings.h"

namespace grey {
namespace {

using nlohmann::json;

struct Split {
  std::vector<std::string_view> objects;  // complete top-level {...}
  bool truncated = false;                 // an object was still open at the end
  bool saw_bracket = false;
  size_t stray = 0;  // bytes outside objects that are not '[', ']', ',' or whitespace
};

Split split_objects(std::string_view t) {
  Split out;
  size_t i = 0;
  while (i < t.size()) {
    char c = t[i];
    if (c != '{') {
      if (c == '[' || c == ']') {
        out.saw_bracket = true;
      } else if (c != ',' && !std::isspace(static_cast<unsigned char>(c))) {
        ++out.stray;
      }
      ++i;
      continue;
    }
    size_t start = i;
    int depth = 0;
    bool in_str = false, esc = false, closed = false;
    for (; i < t.size(); ++i) {
      char d = t[i];
      if (in_str) {
        if (esc) {
          esc = false;
        } else if (d == '\\') {
          esc = true;
        } else if (d == '"') {
          in_str = false;
        }
        continue;
      }
      if (d == '"') {
        in_str = true;
      } else if (d == '{') {
        ++depth;
      } else if (d == '}') {
        if (--depth == 0) {
          ++i;
          closed = true;
          break;
        }
      }
    }
    if (!closed) {
      out.truncated = true;
      break;
    }
    out.objects.push_back(t.substr(start, i - start));
  }
  return out;
}

std::optional<double> num(const json& j) {
  if (j.is_number()) {
    double v = j.get<double>();
    if (std::isfinite(v)) return v;
    return std::nullopt;
  }
  if (j.is_string()) return parse_double(j.get<std::string>());
  return std::nullopt;
}

// A sample is recognized by the groups intel_gpu_top always prints.
bool looks_like_sample(const json& j) {
  if (!j.is_object()) return false;
  return j.contains("engines") || j.contains("period") || j.contains("rc6") ||
         j.contains("frequency") || j.contains("interrupts");
}

std::string first_line(std::string_view t) {
  for (auto line : split_lines(t)) {
    auto l = trim(line);
    if (!l.empty()) return std::string(l.substr(0, 300));
  }
  return {};
}

const char* const kErrorMarkers[] = {
    "No device filter specified",
    "Failed to initialize PMU",
    "Failed to detect engines",
    "Requested device",
    "Failed to open output file",
    "Invalid option",
    "Kernel 4.16 or newer is required",
    "CAP_PERFMON",
    "command not found",
    "Permission denied",
};

void read_sample(const json& s, Observation& o) {
  // Utilization: the busiest engine (class view "Render/3D" or physical "Render/3D/0").
  std::optional<double> max_busy;
  std::string busiest;
  if (auto it = s.find("engines"); it != s.end() && it->is_object()) {
    for (auto e = it->begin(); e != it->end(); ++e) {
      if (!e.value().is_object()) continue;
      auto b = e.value().find("busy");
      if (b == e.value().end()) continue;
      auto v = num(*b);
      if (!v || *v < 0 || *v > 1000) continue;
      if (!max_busy || *v > *max_busy) {
        max_busy = *v;
        busiest = e.key();
      }
    }
  }
  if (max_busy) {
    double clamped = std::min(100.0, *max_busy);
    o.f.utilization_pct = static_cast<int>(std::lround(clamped));
    o.notes.push_back("intel_gpu_top live reading: busiest engine " + busiest + " " +
                      std::to_string(o.f.utilization_pct.value()) + "%");
  }

  // Actual frequency: the current clock, never the max. Multi-GT parts print frequency-gtN.
  std::optional<double> act;
  for (auto it = s.begin(); it != s.end(); ++it) {
    if (it.key() != "frequency" && !starts_with(it.key(), "frequency-gt")) continue;
    if (!it.value().is_object()) continue;
    auto a = it.value().find("actual");
    if (a == it.value().end()) continue;
    auto v = num(*a);
    if (v && *v > 0 && (!act || *v > *act)) act = v;
  }
  if (act) {
    o.notes.push_back("intel_gpu_top actual GPU frequency " +
                      std::to_string(static_cast<long>(std::lround(*act))) +
                      " MHz (current clock at sampling time, not the maximum)");
  }

  // Power: {"GPU": W, "Package": W, "unit": "W"}; very old versions {"value": W, "unit": "W"}.
  if (auto p = s.find("power"); p != s.end() && p->is_object()) {
    std::string unit = "W";
    if (auto u = p->find("unit"); u != p->end() && u->is_string()) unit = u->get<std::string>();
    std::optional<double> w;
    if (auto g = p->find("GPU"); g != p->end()) w = num(*g);
    if (!w) {
      if (auto v = p->find("value"); v != p->end()) w = num(*v);
    }
    if (w && *w >= 0 && *w < 100000) {
      if (unit == "W") {
        o.f.power_draw_w = *w;
      } else if (unit == "mW") {
        o.f.power_draw_w = *w / 1000.0;
      } else {
        o.notes.push_back("intel_gpu_top power in unknown unit '" + unit + "'; ignored");
      }
    }
  }
}

}  // namespace

namespace {

ParseResult parse_intel_gpu_top_json_unguarded(std::string_view text) {
  ParseResult r;
  if (reject_empty(text, r)) return r;
  Split sp = split_objects(text);
  // Parse from the end: only the last complete sample is used, so a long capture costs one
  // parse, not one per sample.
  std::optional<json> last;
  size_t unparsable = 0, skipped = 0;
  for (size_t k = sp.objects.size(); k-- > 0;) {
    auto obj = sp.objects[k];
    json j = json::parse(obj.begin(), obj.end(), nullptr, false);
    if (j.is_discarded()) {
      ++unparsable;
    } else if (looks_like_sample(j)) {
      last = std::move(j);
      break;
    }
    if (++skipped >= 64) break;  // 64 non-samples at the end: this is not a sample stream
  }
  if (!last) {
    r.recognized = false;
    for (const char* m : kErrorMarkers) {
      if (contains(text, m)) {
        // Quote the tool's line that carries the error.
        for (auto line : split_lines(text)) {
          if (contains(line, m)) {
            r.notes.push_back("intel_gpu_top reported: " + std::string(trim(line).substr(0, 300)));
            break;
          }
        }
        return r;
      }
    }
    if (sp.truncated && sp.objects.empty()) {
      r.notes.push_back("intel_gpu_top -J output ends inside its first sample: no complete sample");
    } else if (!sp.objects.empty()) {
      r.notes.push_back(
          "JSON objects found but none is an intel_gpu_top sample (no engines/period/rc6 "
          "keys)" +
          std::string(unparsable ? "; some objects are not valid JSON" : ""));
    } else if (sp.saw_bracket && sp.stray == 0) {
      r.notes.push_back("intel_gpu_top -J printed no sample (stopped before the first period)");
    } else {
      std::string fl = first_line(text);
      r.notes.push_back("no JSON object found: not intel_gpu_top -J output (first line: '" +
                        fl.substr(0, 120) + "')");
    }
    return r;
  }

  Observation o;
  o.f.vendor = "intel";
  read_sample(*last, o);
  o.notes.push_back("intel_gpu_top -J has no device name, bus id or memory size");
  r.devices.push_back(std::move(o));

  r.notes.push_back("intel_gpu_top: " + std::to_string(sp.objects.size()) +
                    " complete sample(s); used the last one");
  if (sp.truncated) r.notes.push_back("intel_gpu_top: last sample truncated; ignored");
  if (unparsable) {
    r.notes.push_back("intel_gpu_top: " + std::to_string(unparsable) +
                      " object(s) after the last sample are not valid JSON; ignored");
  }
  return r;
}

}  // namespace

ParseResult parse_intel_gpu_top_json(std::string_view text) {
  return guarded_parse("intel_gpu_top JSON", parse_intel_gpu_top_json_unguarded, text);
}

}  // namespace grey
