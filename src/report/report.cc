#include "report/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "util/state_dir.h"
#include "util/strings.h"

namespace grey {

namespace {

constexpr size_t kMaxRows = 500000;      // per table; the rest is counted, not drawn
constexpr size_t kMaxLinePoints = 1200;  // per series after min/max decimation
constexpr size_t kMaxHeatmapColumns = 120;
constexpr size_t kMaxHeatmapRows = 60;
constexpr size_t kMaxVramBars = 40;
constexpr size_t kMaxNoteExamples = 3;

const char* const kThermalFile = "thermal_signature.csv";
const char* const kHeatmapFile = "fairness_heatmap.csv";
const char* const kReclaimFile = "vram_reclamation.json";

// ---- CSV -----------------------------------------------------------------------------------

// Splits RFC 4180-style CSV into records. Quoted cells may hold commas, doubled quotes and
// line breaks; \r before \n is dropped. `line` of each record is its first line (1-based).
struct Record {
  size_t line = 0;
  std::vector<std::string> cells;
};

std::vector<Record> split_csv(std::string_view text, size_t max_records) {
  std::vector<Record> out;
  Record cur;
  std::string cell;
  bool quoted = false, cell_started = false, any = false;
  size_t line = 1;
  cur.line = 1;
  auto end_cell = [&] {
    cur.cells.push_back(std::move(cell));
    cell.clear();
    cell_started = false;
  };
  auto end_record = [&] {
    if (any) {
      end_cell();
      out.push_back(std::move(cur));
    }
    cur = Record{};
    cell.clear();
    cell_started = false;
    any = false;
  };
  for (size_t i = 0; i < text.size() && out.size() < max_records; ++i) {
    char c = text[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          cell += '"';
          ++i;
        } else {
          quoted = false;
        }
      } else {
        if (c == '\n') ++line;
        cell += c;
      }
      continue;
    }
    if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') continue;
    if (c == '\n') {
      end_record();
      ++line;
      cur.line = line;
      continue;
    }
    any = true;
    if (c == ',') {
      end_cell();
    } else if (c == '"' && !cell_started) {
      quoted = true;
      cell_started = true;
    } else {
      cell += c;
      cell_started = true;
    }
  }
  if (out.size() < max_records) end_record();
  return out;
}

std::optional<int64_t> days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

int num(std::string_view s) {
  int v = 0;
  for (char c : s) v = v * 10 + (c - '0');
  return v;
}

// Finds each required and optional column by name.
struct Columns {
  std::map<std::string, size_t> at;
  std::optional<size_t> get(const std::string& name) const {
    auto it = at.find(name);
    if (it == at.end()) return std::nullopt;
    return it->second;
  }
};

Columns header_columns(const Record& r) {
  Columns c;
  for (size_t i = 0; i < r.cells.size(); ++i)
    c.at.emplace(std::string(trim(r.cells[i])), i);  // first occurrence wins
  return c;
}

// A numeric cell: nullopt when empty; `bad` set when present but not a number in [lo, hi].
std::optional<double> number_cell(const Record& r, std::optional<size_t> col, double lo, double hi,
                                  bool* bad) {
  if (!col || *col >= r.cells.size()) return std::nullopt;
  std::string_view s = trim(r.cells[*col]);
  if (s.empty()) return std::nullopt;
  auto v = parse_double(s);
  if (!v || *v < lo || *v > hi) {
    *bad = true;
    return std::nullopt;
  }
  return v;
}

std::string cell_text(const Record& r, std::optional<size_t> col) {
  if (!col || *col >= r.cells.size()) return "";
  return r.cells[*col];
}

template <typename Row, typename Fn>
CsvTable<Row> parse_table(std::string_view text, const std::vector<std::string>& required,
                          Fn&& make_row) {
  CsvTable<Row> t;
  std::vector<Record> recs = split_csv(text, kMaxRows + 2);
  if (recs.empty()) {
    t.notes.push_back("the file is empty (no header)");
    return t;
  }
  Columns cols = header_columns(recs.front());
  std::vector<std::string> lacking;
  for (const auto& name : required)
    if (!cols.get(name)) lacking.push_back(name);
  if (!lacking.empty()) {
    std::string l;
    for (const auto& n : lacking) l += (l.empty() ? "" : ", ") + n;
    t.notes.push_back("the header lacks the column(s) " + l + ": no row used");
    t.skipped = recs.size() - 1;
    return t;
  }
  t.header_ok = true;
  size_t width = recs.front().cells.size();
  for (size_t i = 1; i < recs.size(); ++i) {
    const Record& r = recs[i];
    if (t.rows.size() >= kMaxRows) {
      t.notes.push_back("more than " + std::to_string(kMaxRows) + " rows: the rest is not shown");
      break;
    }
    std::string why;
    if (r.cells.size() < width) {
      why = std::to_string(r.cells.size()) + " cells, the header has " + std::to_string(width);
    } else {
      Row row;
      why = make_row(r, cols, row);
      if (why.empty()) {
        t.rows.push_back(std::move(row));
        continue;
      }
    }
    ++t.skipped;
    if (t.skipped <= kMaxNoteExamples)
      t.notes.push_back("line " + std::to_string(r.line) + " skipped: " + why);
  }
  return t;
}

// ---- formatting ------------------------------------------------------------------------------

std::string fmt(double v, int decimals = 1) {
  return fixed_decimals(v, decimals);
}

// A value for people: integers without decimals, else up to 2 decimals.
std::string human(double v) {
  if (std::fabs(v - std::round(v)) < 1e-9 && std::fabs(v) < 1e15) return fmt(v, 0);
  return compact_decimal(v, 2);
}

std::string time_text(double t, bool with_date) {
  if (!std::isfinite(t)) return "?";
  time_t tt = static_cast<time_t>(std::floor(t));
  struct tm tm {};
  if (!gmtime_r(&tt, &tm)) return "?";
  char buf[64];
  std::strftime(buf, sizeof buf, with_date ? "%Y-%m-%d %H:%M:%S" : "%H:%M:%S", &tm);
  return buf;
}

std::string truncate_text(const std::string& s, size_t max_chars) {
  // Counts UTF-8 code points so that a multi-byte character is never cut in half.
  size_t chars = 0, i = 0;
  while (i < s.size()) {
    if (chars == max_chars) return s.substr(0, i) + "\u2026";
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    i += len;
    ++chars;
  }
  return s;
}

// ---- SVG line charts -------------------------------------------------------------------------

struct Pt {
  double t, v;
};

struct Series {
  std::string name, css_class;
  std::vector<Pt> pts;
  bool step = false;  // a threshold: drawn as steps, held to the end of the chart
};

// At most `max_points`: for each bucket of consecutive points, its lowest and highest, in order
// (keeps peaks that plain striding would lose).
std::vector<Pt> decimate(const std::vector<Pt>& pts, size_t max_points) {
  if (pts.size() <= max_points || max_points < 4) return pts;
  size_t buckets = max_points / 2;
  std::vector<Pt> out;
  out.reserve(max_points);
  for (size_t b = 0; b < buckets; ++b) {
    size_t lo = pts.size() * b / buckets, hi = pts.size() * (b + 1) / buckets;
    if (lo >= hi) continue;
    size_t mn = lo, mx = lo;
    for (size_t i = lo; i < hi; ++i) {
      if (pts[i].v < pts[mn].v) mn = i;
      if (pts[i].v > pts[mx].v) mx = i;
    }
    out.push_back(pts[std::min(mn, mx)]);
    if (mn != mx) out.push_back(pts[std::max(mn, mx)]);
  }
  return out;
}

// Only the points where the value changes (and the last one).
std::vector<Pt> step_points(const std::vector<Pt>& pts) {
  std::vector<Pt> out;
  for (size_t i = 0; i < pts.size(); ++i)
    if (i == 0 || pts[i].v != pts[i - 1].v || i + 1 == pts.size()) out.push_back(pts[i]);
  return out;
}

double nice_step(double span, int target) {
  if (!(span > 0) || !std::isfinite(span)) return 1;
  double raw = span / target;
  double mag = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (raw <= m * mag) return m * mag;
  return 10 * mag;
}

std::string line_chart(const std::string& css_id, const std::string& aria,
                       const std::vector<Series>& series, const std::string& unit, double t0,
                       double t1) {
  const double W = 960, H = 280, L = 60, R = 150, T = 14, B = 34;
  const double pw = W - L - R, ph = H - T - B;
  double lo = INFINITY, hi = -INFINITY;
  for (const auto& s : series)
    for (const auto& p : s.pts) {
      lo = std::min(lo, p.v);
      hi = std::max(hi, p.v);
    }
  if (!std::isfinite(lo)) lo = 0, hi = 1;
  double pad = std::max((hi - lo) * 0.08, 1.0);
  lo -= pad;
  hi += pad;
  double step = nice_step(hi - lo, 5);
  lo = std::floor(lo / step) * step;
  hi = std::ceil(hi / step) * step;
  if (!(hi > lo)) hi = lo + 1;
  if (!(t1 > t0)) t1 = t0 + 1;
  auto X = [&](double t) { return L + (t - t0) / (t1 - t0) * pw; };
  auto Y = [&](double v) { return T + (hi - v) / (hi - lo) * ph; };

  std::ostringstream o;
  o << "<svg class=\"chart\" id=\"" << css_id << "\" viewBox=\"0 0 " << W << ' ' << H
    << "\" role=\"img\" aria-label=\"" << html_escape(aria) << "\">\n";
  o << "<rect class=\"plot\" x=\"" << L << "\" y=\"" << T << "\" width=\"" << pw << "\" height=\""
    << ph << "\"/>\n";
  // Y grid and labels.
  int guard = 0;
  for (double v = lo; v <= hi + step * 1e-6 && guard < 64; v += step, ++guard) {
    o << "<line class=\"grid\" x1=\"" << L << "\" x2=\"" << L + pw << "\" y1=\"" << fmt(Y(v))
      << "\" y2=\"" << fmt(Y(v)) << "\"/>"
      << "<text class=\"tick\" x=\"" << L - 6 << "\" y=\"" << fmt(Y(v) + 4)
      << "\" text-anchor=\"end\">" << html_escape(human(v)) << "</text>\n";
  }
  o << "<text class=\"unit\" x=\"" << 12 << "\" y=\"" << T + ph / 2
    << "\" transform=\"rotate(-90 12 " << T + ph / 2 << ")\" text-anchor=\"middle\">"
    << html_escape(unit) << "</text>\n";
  // X labels (UTC).
  bool dated = t1 - t0 > 86400;
  for (int i = 0; i <= 5; ++i) {
    double t = t0 + (t1 - t0) * i / 5;
    o << "<text class=\"tick\" x=\"" << fmt(X(t)) << "\" y=\"" << H - 12 << "\" text-anchor=\""
      << (i == 0   ? "start"
          : i == 5 ? "end"
                   : "middle")
      << "\">" << html_escape(time_text(t, dated)) << "</text>\n";
  }
  // Series.
  double ly = T + 12;
  for (const auto& s : series) {
    if (s.pts.empty()) continue;
    std::vector<Pt> pts = s.step ? step_points(s.pts) : decimate(s.pts, kMaxLinePoints);
    o << "<polyline class=\"series " << s.css_class << "\" data-series=\"" << s.css_class
      << "\" points=\"";
    for (size_t i = 0; i < pts.size(); ++i) {
      if (s.step && i > 0) o << fmt(X(pts[i].t)) << ',' << fmt(Y(pts[i - 1].v)) << ' ';
      o << fmt(X(pts[i].t)) << ',' << fmt(Y(pts[i].v)) << (i + 1 < pts.size() ? " " : "");
    }
    if (s.step) o << ' ' << fmt(X(t1)) << ',' << fmt(Y(pts.back().v));
    o << "\"><title>" << html_escape(s.name) << "</title></polyline>\n";
    if (pts.size() == 1 && !s.step)
      o << "<circle class=\"series " << s.css_class << "\" cx=\"" << fmt(X(pts[0].t)) << "\" cy=\""
        << fmt(Y(pts[0].v)) << "\" r=\"3\"/>\n";
    // Legend.
    o << "<line class=\"series " << s.css_class << "\" x1=\"" << L + pw + 12 << "\" x2=\""
      << L + pw + 34 << "\" y1=\"" << ly << "\" y2=\"" << ly << "\"/>"
      << "<text class=\"legend\" x=\"" << L + pw + 40 << "\" y=\"" << ly + 4 << "\">"
      << html_escape(s.name) << "</text>\n";
    ly += 18;
  }
  o << "</svg>\n";
  return o.str();
}

// ---- heatmap colours ----------------------------------------------------------------------

std::string heat_color(double pct) {
  pct = std::clamp(pct, 0.0, 100.0) / 100.0;
  // #eef3fb (idle) -> #fdae61 (half) -> #d7191c (busy)
  struct C {
    double r, g, b;
  };
  C a{238, 243, 251}, m{253, 174, 97}, z{215, 25, 28};
  C x = pct < 0.5 ? a : m, y = pct < 0.5 ? m : z;
  double f = pct < 0.5 ? pct * 2 : (pct - 0.5) * 2;
  char buf[16];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", static_cast<int>(x.r + (y.r - x.r) * f),
                static_cast<int>(x.g + (y.g - x.g) * f), static_cast<int>(x.b + (y.b - x.b) * f));
  return buf;
}

struct ProcKey {
  int gpu;  // -1 when unknown
  int pid;
  std::string command;
  bool operator<(const ProcKey& o) const {
    return std::tie(gpu, pid, command) < std::tie(o.gpu, o.pid, o.command);
  }
};

std::string proc_label(const ProcKey& k, const std::string& user) {
  std::string s = (k.gpu >= 0 ? "GPU " + std::to_string(k.gpu) : std::string("GPU ?")) +
                  " \u00b7 " + std::to_string(k.pid) + " " + (k.command.empty() ? "?" : k.command);
  if (!user.empty()) s += " (" + user + ")";
  return s;
}

// ---- sections ------------------------------------------------------------------------------

std::string thermal_section(const CsvTable<ThermalRow>& t) {
  std::ostringstream o;
  std::map<int, std::vector<const ThermalRow*>> by_gpu;
  for (const auto& r : t.rows) by_gpu[r.gpu_index].push_back(&r);
  if (by_gpu.empty()) {
    o << "<p class=\"empty\">No temperature samples yet.</p>\n";
    return o.str();
  }
  for (auto& [gpu, rows] : by_gpu) {
    std::stable_sort(rows.begin(), rows.end(),
                     [](const ThermalRow* a, const ThermalRow* b) { return a->t < b->t; });
    double t0 = rows.front()->t, t1 = rows.back()->t;
    std::string bus, backend;
    Series temp{"temperature", "temperature", {}, false};
    Series cool{"cooldown threshold", "cooldown", {}, true};
    Series res{"resume threshold", "resume", {}, true};
    Series pw{"power", "power", {}, false};
    Series pl{"power limit", "power-limit", {}, true};
    double tmax = -INFINITY, tsum = 0;
    for (const ThermalRow* r : rows) {
      if (!r->bus_id.empty()) bus = r->bus_id;
      if (!r->backend.empty()) backend = r->backend;
      temp.pts.push_back({r->t, r->temperature_c});
      tmax = std::max(tmax, r->temperature_c);
      tsum += r->temperature_c;
      if (r->cooldown_c) cool.pts.push_back({r->t, *r->cooldown_c});
      if (r->resume_c) res.pts.push_back({r->t, *r->resume_c});
      if (r->power_w) pw.pts.push_back({r->t, *r->power_w});
      if (r->power_limit_w) pl.pts.push_back({r->t, *r->power_limit_w});
    }
    size_t above = 0;
    if (!cool.pts.empty())
      for (const ThermalRow* r : rows)
        if (r->cooldown_c && r->temperature_c >= *r->cooldown_c) ++above;
    std::string id = "gpu" + std::to_string(gpu);
    o << "<section class=\"gpu\" id=\"" << id << "\">\n<h3>GPU " << gpu;
    if (!bus.empty()) o << " <span class=\"muted\">" << html_escape(bus) << "</span>";
    o << "</h3>\n<p class=\"muted\">" << rows.size() << " samples, "
      << html_escape(time_text(t0, true)) << " to " << html_escape(time_text(t1, true))
      << " UTC; max " << human(tmax) << " \u00b0C, mean "
      << fmt(tsum / static_cast<double>(rows.size()), 1) << " \u00b0C";
    if (!cool.pts.empty()) o << "; " << above << " samples at or above cooldown";
    if (!backend.empty()) o << "; source " << html_escape(backend);
    o << "</p>\n";
    if (cool.pts.empty() && res.pts.empty())
      o << "<p class=\"muted\">No thresholds recorded (no plan was loaded).</p>\n";
    o << line_chart(id + "-temperature", "GPU " + std::to_string(gpu) + " temperature",
                    {temp, cool, res}, "\u00b0C", t0, t1);
    if (!pw.pts.empty() || !pl.pts.empty())
      o << line_chart(id + "-power", "GPU " + std::to_string(gpu) + " power", {pw, pl}, "W", t0,
                      t1);
    o << "</section>\n";
  }
  return o.str();
}

std::string heatmap_section(const CsvTable<HeatmapRow>& t) {
  std::ostringstream o;
  if (t.rows.empty()) {
    o << "<p class=\"empty\">No process samples yet.</p>\n";
    return o.str();
  }
  double t0 = INFINITY, t1 = -INFINITY;
  std::set<double> stamps;
  for (const auto& r : t.rows) {
    t0 = std::min(t0, r.t);
    t1 = std::max(t1, r.t);
    if (stamps.size() <= kMaxHeatmapColumns) stamps.insert(r.t);
  }
  size_t ncol = std::clamp<size_t>(stamps.size(), 1, kMaxHeatmapColumns);
  double span = t1 > t0 ? t1 - t0 : 1;
  auto col_of = [&](double tt) {
    if (ncol == 1) return size_t{0};
    // The last column holds t1 itself.
    auto c = static_cast<size_t>((tt - t0) / span * static_cast<double>(ncol - 1) + 0.5);
    return std::min(c, ncol - 1);
  };
  struct Agg {
    std::vector<double> sum;
    std::vector<int> n;
    double total = 0;
    int count = 0;
    std::string user;
  };
  std::map<ProcKey, Agg> procs;
  for (const auto& r : t.rows) {
    auto& a = procs[{r.gpu_index.value_or(-1), r.pid, r.command}];
    if (a.sum.empty()) {
      a.sum.assign(ncol, 0);
      a.n.assign(ncol, 0);
    }
    if (!r.user.empty()) a.user = r.user;
    if (!r.utilization_pct) continue;
    size_t c = col_of(r.t);
    a.sum[c] += *r.utilization_pct;
    ++a.n[c];
    a.total += *r.utilization_pct;
    ++a.count;
  }
  std::vector<std::pair<ProcKey, const Agg*>> order;
  for (const auto& [k, a] : procs) order.push_back({k, &a});
  std::stable_sort(order.begin(), order.end(), [](const auto& x, const auto& y) {
    double mx = x.second->count ? x.second->total / x.second->count : -1;
    double my = y.second->count ? y.second->total / y.second->count : -1;
    if (x.first.gpu != y.first.gpu) return x.first.gpu < y.first.gpu;
    return mx > my;
  });
  size_t shown = std::min(order.size(), kMaxHeatmapRows);
  const double L = 300, T = 10, cell_h = 18, W = 960, R = 10;
  const double cw = (W - L - R) / static_cast<double>(ncol);
  const double H = T + cell_h * static_cast<double>(shown) + 40;
  o << "<svg class=\"chart heatmap\" id=\"heatmap\" viewBox=\"0 0 " << W << ' ' << fmt(H)
    << "\" role=\"img\" aria-label=\"per-process GPU utilization over time\">\n";
  for (size_t i = 0; i < shown; ++i) {
    const auto& [k, a] = order[i];
    double y = T + cell_h * static_cast<double>(i);
    std::string label = proc_label(k, a->user);
    o << "<text class=\"rowlabel\" x=\"" << L - 6 << "\" y=\"" << fmt(y + cell_h - 5)
      << "\" text-anchor=\"end\">" << html_escape(truncate_text(label, 44)) << "<title>"
      << html_escape(label) << "</title></text>\n";
    for (size_t c = 0; c < ncol; ++c) {
      double x = L + cw * static_cast<double>(c);
      bool known = a->n[c] > 0;
      double v = known ? a->sum[c] / a->n[c] : 0;
      o << "<rect class=\"cell" << (known ? "" : " unknown") << "\" x=\"" << fmt(x, 2) << "\" y=\""
        << fmt(y) << "\" width=\"" << fmt(cw, 2) << "\" height=\"" << cell_h - 2 << "\" data-pid=\""
        << k.pid << "\"";
      if (known) o << " data-util=\"" << fmt(v, 1) << "\" fill=\"" << heat_color(v) << "\"";
      o << "><title>" << html_escape(label) << ": "
        << (known ? fmt(v, 1) + "% busy" : std::string("utilization unknown")) << "</title></rect>";
    }
    o << '\n';
  }
  double ay = T + cell_h * static_cast<double>(shown) + 16;
  o << "<text class=\"tick\" x=\"" << L << "\" y=\"" << fmt(ay) << "\">"
    << html_escape(time_text(t0, t1 - t0 > 86400)) << "</text>"
    << "<text class=\"tick\" x=\"" << W - R << "\" y=\"" << fmt(ay) << "\" text-anchor=\"end\">"
    << html_escape(time_text(t1, t1 - t0 > 86400)) << " UTC</text>\n";
  // Colour scale.
  for (int i = 0; i <= 10; ++i)
    o << "<rect class=\"scale\" x=\"" << 10 + i * 16 << "\" y=\"" << fmt(ay - 10)
      << "\" width=\"16\" height=\"10\" fill=\"" << heat_color(i * 10) << "\"/>";
  o << "<text class=\"tick\" x=\"" << 10 << "\" y=\"" << fmt(ay + 14)
    << "\">0%</text><text class=\"tick\" x=\"" << 186 << "\" y=\"" << fmt(ay + 14)
    << "\" text-anchor=\"end\">100%</text>\n</svg>\n";
  if (order.size() > shown)
    o << "<p class=\"muted\">" << order.size() - shown
      << " more processes not shown (the busiest per GPU come first).</p>\n";
  return o.str();
}

std::string vram_section(const CsvTable<HeatmapRow>& t) {
  std::ostringstream o;
  struct V {
    double peak = 0, last = 0, last_t = -INFINITY;
    std::string user;
  };
  std::map<ProcKey, V> procs;
  for (const auto& r : t.rows) {
    if (!r.vram_mb) continue;
    auto& v = procs[{r.gpu_index.value_or(-1), r.pid, r.command}];
    v.peak = std::max(v.peak, *r.vram_mb);
    if (r.t >= v.last_t) {
      v.last = *r.vram_mb;
      v.last_t = r.t;
    }
    if (!r.user.empty()) v.user = r.user;
  }
  if (procs.empty()) {
    o << "<p class=\"empty\">No per-process VRAM samples yet.</p>\n";
    return o.str();
  }
  std::vector<std::pair<ProcKey, V>> order(procs.begin(), procs.end());
  std::stable_sort(order.begin(), order.end(),
                   [](const auto& a, const auto& b) { return a.second.peak > b.second.peak; });
  size_t shown = std::min(order.size(), kMaxVramBars);
  double maxv = std::max(order.front().second.peak, 1.0);
  const double L = 300, W = 960, R = 110, T = 6, bh = 18;
  const double H = T + bh * static_cast<double>(shown) + 8;
  o << "<svg class=\"chart vram\" id=\"vram\" viewBox=\"0 0 " << W << ' ' << fmt(H)
    << "\" role=\"img\" aria-label=\"VRAM per process\">\n";
  for (size_t i = 0; i < shown; ++i) {
    const auto& [k, v] = order[i];
    double y = T + bh * static_cast<double>(i);
    std::string label = proc_label(k, v.user);
    double w = v.peak / maxv * (W - L - R), wl = v.last / maxv * (W - L - R);
    o << "<text class=\"rowlabel\" x=\"" << L - 6 << "\" y=\"" << fmt(y + bh - 5)
      << "\" text-anchor=\"end\">" << html_escape(truncate_text(label, 44)) << "</text>"
      << "<rect class=\"vram-bar peak\" x=\"" << L << "\" y=\"" << fmt(y) << "\" width=\""
      << fmt(w, 2) << "\" height=\"" << bh - 3 << "\" data-pid=\"" << k.pid << "\" data-mib=\""
      << human(v.peak) << "\"><title>" << html_escape(label) << ": peak " << human(v.peak)
      << " MiB, last " << human(v.last) << " MiB</title></rect>"
      << "<rect class=\"vram-bar last\" x=\"" << L << "\" y=\"" << fmt(y + 5) << "\" width=\""
      << fmt(wl, 2) << "\" height=\"" << bh - 13 << "\"/>"
      << "<text class=\"tick\" x=\"" << fmt(L + w + 6) << "\" y=\"" << fmt(y + bh - 5) << "\">"
      << human(v.peak) << " MiB</text>\n";
  }
  o << "</svg>\n<p class=\"muted\">Bars: peak VRAM per process over the window; the thin dark "
       "bar is the last sample.";
  if (order.size() > shown) o << " " << order.size() - shown << " smaller processes not shown.";
  o << "</p>\n";
  return o.str();
}

std::string json_text(const nlohmann::json& j, const char* key) {
  if (!j.is_object()) return "\u2014";
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return "\u2014";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_boolean()) return it->get<bool>() ? "yes" : "no";
  if (it->is_number_integer()) return std::to_string(it->get<int64_t>());
  if (it->is_number_unsigned()) return std::to_string(it->get<uint64_t>());
  if (it->is_number_float()) return human(it->get<double>());
  if (it->is_array()) {
    std::string s;
    size_t n = 0;
    for (const auto& e : *it) {
      if (n++ == 32) {
        s += ", \u2026";
        break;
      }
      if (!s.empty()) s += ", ";
      s += e.is_primitive() ? e.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                            : std::string("\u2026");
    }
    return s;
  }
  return "\u2026";
}

std::string reclamation_section(const nlohmann::json& j) {
  std::ostringstream o;
  o << "<dl class=\"facts\">";
  for (auto [key, label] :
       {std::pair{"samples", "samples in the window"}, std::pair{"window_start", "window start"},
        std::pair{"window_end", "window end"}})
    o << "<dt>" << label << "</dt><dd class=\"" << key << "\">" << html_escape(json_text(j, key))
      << "</dd>";
  // The analysis' figures (plan/reclaim.h): null is "not measured", never shown as 0; each
  // with its provenance and rationale when the file has them.
  for (auto [key, label] : {std::pair{"estimated_reclaimable_mb", "estimated reclaimable (MiB)"},
                            std::pair{"dedup_buffer_count", "duplicate buffers"},
                            std::pair{"compression_ratio", "compression ratio"}}) {
    auto it = j.find(key);
    if (it == j.end()) continue;  // an older file without it
    std::string text = it->is_null() ? "not measured" : json_text(j, key);
    auto prov = j.find("provenance");
    if (prov != j.end() && prov->is_object() && !it->is_null())
      if (auto pv = prov->find(key); pv != prov->end() && pv->is_string())
        text += " (" + pv->get<std::string>() + ")";
    o << "<dt>" << label << "</dt><dd class=\"" << key << "\">" << html_escape(text);
    auto why = j.find("rationale");
    if (why != j.end() && why->is_object())
      if (auto w = why->find(key); w != why->end() && w->is_string())
        o << " <span class=\"muted\">" << html_escape(w->get<std::string>()) << "</span>";
    o << "</dd>";
  }
  o << "</dl>\n";
  if (j.contains("note") && j["note"].is_string())
    o << "<p class=\"muted\">" << html_escape(j["note"].get<std::string>()) << "</p>\n";
  auto table = [&](const char* key, const char* title,
                   const std::vector<std::pair<const char*, const char*>>& cols) {
    o << "<h3>" << title << "</h3>\n";
    auto it = j.find(key);
    if (it == j.end() || !it->is_array() || it->empty()) {
      o << "<p class=\"empty\">None.</p>\n";
      return;
    }
    o << "<table class=\"" << key << "\"><tr>";
    for (const auto& c : cols) o << "<th>" << c.second << "</th>";
    o << "</tr>\n";
    size_t n = 0;
    for (const auto& e : *it) {
      if (n++ == 200) {
        o << "<tr><td colspan=\"" << cols.size() << "\">\u2026 " << it->size() - 200
          << " more</td></tr>\n";
        break;
      }
      o << "<tr>";
      for (const auto& c : cols) o << "<td>" << html_escape(json_text(e, c.first)) << "</td>";
      o << "</tr>\n";
    }
    o << "</table>\n";
  };
  table("idle_processes", "Processes holding VRAM while idle for the whole window",
        {{"pid", "pid"},
         {"command", "command"},
         {"user", "user"},
         {"gpu_index", "GPU"},
         {"vram_mb", "VRAM (MiB)"}});
  table("duplicate_groups", "Same command holding near-equal VRAM",
        {{"command", "command"},
         {"gpu_index", "GPU"},
         {"pids", "pids"},
         {"vram_mb_each", "VRAM each (MiB)"},
         {"vram_mb_total", "VRAM total (MiB)"}});
  return o.str();
}

const char* kStyle = R"css(
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1000px;color:#1d2330;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #dde3ee;padding-bottom:4px}
h3{font-size:15px;margin:16px 0 4px}.muted{color:#5b6577}.empty{color:#5b6577;font-style:italic}
.notice{background:#fff6e0;border:1px solid #f0c36d;padding:8px 12px;border-radius:4px}
.notice li{margin:2px 0}svg.chart{width:100%;height:auto;display:block;margin:6px 0}
svg .plot{fill:#fbfcfe;stroke:#c9d1de}svg .grid{stroke:#e6eaf1;stroke-width:1}
svg text{font:11px system-ui,sans-serif;fill:#3c4558}svg .unit{font-size:12px}
svg .series{fill:none;stroke-width:1.6}svg circle.series{stroke-width:1.6}
svg .temperature{stroke:#c0392b}svg circle.temperature{fill:#c0392b}
svg .cooldown{stroke:#e67e22;stroke-dasharray:6 4}svg .resume{stroke:#2471a3;stroke-dasharray:6 4}
svg .power{stroke:#7d3c98}svg circle.power{fill:#7d3c98}svg .power-limit{stroke:#117a65;stroke-dasharray:6 4}
svg .cell{stroke:#fff;stroke-width:.5}svg .cell.unknown{fill:#e3e6ea}
svg .vram-bar.peak{fill:#8fb3de}svg .vram-bar.last{fill:#2c5d99}
table{border-collapse:collapse;margin:4px 0}td,th{border:1px solid #dde3ee;padding:3px 8px;text-align:left}
th{background:#f3f6fa}dl.facts{display:grid;grid-template-columns:max-content auto;gap:2px 16px}
dl.facts dt{color:#5b6577}dl.facts dd{margin:0}
)css";

}  // namespace

std::optional<double> parse_iso8601_utc(std::string_view s) {
  s = trim(s);
  // YYYY-MM-DD[T ]HH:MM:SS
  if (s.size() < 19 || s[4] != '-' || s[7] != '-' ||
      (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || s[13] != ':' || s[16] != ':')
    return std::nullopt;
  std::string_view Y = s.substr(0, 4), M = s.substr(5, 2), D = s.substr(8, 2), h = s.substr(11, 2),
                   m = s.substr(14, 2), sec = s.substr(17, 2);
  for (auto p : {Y, M, D, h, m, sec})
    if (!all_digits(p)) return std::nullopt;
  int y = num(Y), mo = num(M), d = num(D), hh = num(h), mi = num(m), ss = num(sec);
  static const int kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > kDays[mo - 1] || hh > 23 || mi > 59 || ss > 60)
    return std::nullopt;
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (mo == 2 && d == 29 && !leap) return std::nullopt;
  std::string_view rest = s.substr(19);
  double frac = 0;
  if (!rest.empty() && rest.front() == '.') {
    size_t i = 1;
    double scale = 0.1;
    while (i < rest.size() && rest[i] >= '0' && rest[i] <= '9') {
      frac += (rest[i] - '0') * scale;
      scale /= 10;
      ++i;
    }
    if (i == 1) return std::nullopt;
    rest.remove_prefix(i);
  }
  int offset = 0;
  if (rest == "Z" || rest == "z" || rest.empty()) {
    offset = 0;
  } else if ((rest.front() == '+' || rest.front() == '-') &&
             ((rest.size() == 6 && rest[3] == ':' && all_digits(rest.substr(1, 2)) &&
               all_digits(rest.substr(4, 2))) ||
              (rest.size() == 5 && all_digits(rest.substr(1, 4))))) {
    int oh = num(rest.substr(1, 2)), om = num(rest.substr(rest.size() - 2, 2));
    if (oh > 23 || om > 59) return std::nullopt;
    offset = (oh * 60 + om) * 60 * (rest.front() == '-' ? -1 : 1);
  } else {
    return std::nullopt;
  }
  auto days = days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
  if (!days) return std::nullopt;
  return static_cast<double>(*days) * 86400.0 + hh * 3600 + mi * 60 + ss + frac - offset;
}

std::string html_escape(std::string_view s) {
  std::string o;
  o.reserve(s.size() + 16);
  for (char c : s) {
    switch (c) {
      case '&':
        o += "&amp;";
        break;
      case '<':
        o += "&lt;";
        break;
      case '>':
        o += "&gt;";
        break;
      case '"':
        o += "&quot;";
        break;
      case '\'':
        o += "&#39;";
        break;
      case '\0':
        o += "\xef\xbf\xbd";
        break;
      default:
        o += c;
    }
  }
  return o;
}

CsvTable<ThermalRow> parse_thermal_csv(std::string_view text) {
  return parse_table<ThermalRow>(
      text, {"timestamp", "gpu_index", "temperature_c"},
      [](const Record& r, const Columns& c, ThermalRow& row) -> std::string {
        row.timestamp = std::string(trim(cell_text(r, c.get("timestamp"))));
        auto t = parse_iso8601_utc(row.timestamp);
        if (!t) return "timestamp '" + truncate_text(row.timestamp, 40) + "' is not ISO 8601 UTC";
        row.t = *t;
        bool bad = false;
        auto gpu = number_cell(r, c.get("gpu_index"), 0, 65535, &bad);
        if (!gpu || bad || *gpu != std::floor(*gpu)) return "gpu_index is not an index";
        row.gpu_index = static_cast<int>(*gpu);
        auto temp = number_cell(r, c.get("temperature_c"), -100, 500, &bad);
        if (!temp || bad) return "temperature_c is not a temperature";
        row.temperature_c = *temp;
        row.cooldown_c = number_cell(r, c.get("cooldown_threshold_c"), -100, 500, &bad);
        row.resume_c = number_cell(r, c.get("resume_threshold_c"), -100, 500, &bad);
        row.power_w = number_cell(r, c.get("power_w"), 0, 1e5, &bad);
        row.power_limit_w = number_cell(r, c.get("power_limit_w"), 0, 1e5, &bad);
        row.utilization_pct = number_cell(r, c.get("utilization_pct"), 0, 1000, &bad);
        row.vram_used_mb = number_cell(r, c.get("vram_used_mb"), 0, 1e9, &bad);
        if (bad) return "a numeric cell is not a plausible number";
        row.bus_id = cell_text(r, c.get("bus_id"));
        row.backend = cell_text(r, c.get("backend"));
        return "";
      });
}

CsvTable<HeatmapRow> parse_heatmap_csv(std::string_view text) {
  return parse_table<HeatmapRow>(
      text, {"timestamp", "pid"},
      [](const Record& r, const Columns& c, HeatmapRow& row) -> std::string {
        row.timestamp = std::string(trim(cell_text(r, c.get("timestamp"))));
        auto t = parse_iso8601_utc(row.timestamp);
        if (!t) return "timestamp '" + truncate_text(row.timestamp, 40) + "' is not ISO 8601 UTC";
        row.t = *t;
        bool bad = false;
        auto pid = number_cell(r, c.get("pid"), 0, 2147483647.0, &bad);
        if (!pid || bad || *pid != std::floor(*pid)) return "pid is not a process id";
        row.pid = static_cast<int>(*pid);
        auto gpu = number_cell(r, c.get("gpu_index"), 0, 65535, &bad);
        if (bad || (gpu && *gpu != std::floor(*gpu))) return "gpu_index is not an index";
        if (gpu) row.gpu_index = static_cast<int>(*gpu);
        row.utilization_pct = number_cell(r, c.get("utilization_pct"), 0, 1000, &bad);
        row.vram_mb = number_cell(r, c.get("vram_mb"), 0, 1e9, &bad);
        if (bad) return "a numeric cell is not a plausible number";
        row.command = cell_text(r, c.get("command"));
        row.user = cell_text(r, c.get("user"));
        return "";
      });
}

namespace {

// The three artifacts parsed, and what the summary says of them.
struct ParsedArtifacts {
  ReportSummary sum;
  CsvTable<ThermalRow> thermal;
  CsvTable<HeatmapRow> heat;
  nlohmann::json recl;
  std::string recl_error;
};

ParsedArtifacts parse_artifacts(const ReportInputs& in) {
  ParsedArtifacts r;
  if (in.thermal_csv) {
    r.thermal = parse_thermal_csv(*in.thermal_csv);
  } else {
    r.sum.missing.push_back(kThermalFile);
  }
  if (in.heatmap_csv) {
    r.heat = parse_heatmap_csv(*in.heatmap_csv);
  } else {
    r.sum.missing.push_back(kHeatmapFile);
  }
  if (in.reclamation_json) {
    r.recl = nlohmann::json::parse(*in.reclamation_json, nullptr, false);
    if (r.recl.is_discarded()) {
      r.recl_error = "vram_reclamation.json is not valid JSON";
      r.recl = nlohmann::json();
    } else if (!r.recl.is_object()) {
      r.recl_error = "vram_reclamation.json is not a JSON object";
      r.recl = nlohmann::json();
    } else {
      r.sum.reclamation_ok = true;
    }
  } else {
    r.sum.missing.push_back(kReclaimFile);
  }
  r.sum.thermal_rows = r.thermal.rows.size();
  r.sum.thermal_skipped = r.thermal.skipped;
  r.sum.heatmap_rows = r.heat.rows.size();
  r.sum.heatmap_skipped = r.heat.skipped;
  return r;
}

// The document's head, title and the time span of the samples.
void write_head(std::ostream& o, const ReportInputs& in, const ParsedArtifacts& a) {
  o << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
    << "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
       "style-src 'unsafe-inline'\">\n"
    << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    << "<title>" << html_escape(in.title) << "</title>\n<style>" << kStyle << "</style>\n"
    << "</head>\n<body>\n<h1>" << html_escape(in.title) << "</h1>\n";
  double t0 = INFINITY, t1 = -INFINITY;
  for (const auto& r : a.thermal.rows) t0 = std::min(t0, r.t), t1 = std::max(t1, r.t);
  for (const auto& r : a.heat.rows) t0 = std::min(t0, r.t), t1 = std::max(t1, r.t);
  o << "<p class=\"muted\">";
  if (std::isfinite(t0))
    o << "Samples from " << html_escape(time_text(t0, true)) << " to "
      << html_escape(time_text(t1, true)) << " UTC. ";
  o << "Built from the daemon's artifacts (thermal_signature.csv, fairness_heatmap.csv, "
       "vram_reclamation.json); times in UTC.</p>\n";
}

// What is missing or was skipped, as a notice box (nothing when all is well).
void write_notices(std::ostream& o, const ReportInputs& in, const ParsedArtifacts& a) {
  const auto& sum = a.sum;
  const auto& thermal = a.thermal;
  const auto& heat = a.heat;
  const auto& recl_error = a.recl_error;
  std::vector<std::string> notices;
  for (const auto& m : sum.missing) {
    std::string hint = m == kHeatmapFile ? "start-daemon writes it when the plan enables "
                                           "utilization_heatmap_enabled"
                                         : "start-daemon writes it every 10 ticks";
    notices.push_back("<b>" + html_escape(m) + "</b> is missing (" + hint + ").");
  }
  for (const auto& e : in.read_errors) notices.push_back(html_escape(e));
  auto table_notes = [&](const char* file, size_t skipped, bool header_ok,
                         const std::vector<std::string>& notes) {
    if (!header_ok || skipped)
      notices.push_back("<b>" + std::string(file) + "</b>: " + std::to_string(skipped) +
                        " malformed row(s) skipped.");
    for (const auto& n : notes) notices.push_back(std::string(file) + ": " + html_escape(n));
  };
  if (in.thermal_csv) table_notes(kThermalFile, thermal.skipped, thermal.header_ok, thermal.notes);
  if (in.heatmap_csv) table_notes(kHeatmapFile, heat.skipped, heat.header_ok, heat.notes);
  if (!recl_error.empty()) notices.push_back(html_escape(recl_error) + ".");
  if (!notices.empty()) {
    o << "<div class=\"notice\" id=\"notices\"><ul>\n";
    for (const auto& n : notices) o << "<li>" << n << "</li>\n";
    o << "</ul></div>\n";
  }
}

// One section: its heading, then its chart when the artifact is there, else why not.
void write_section(std::ostream& o, const char* id, const char* heading, bool present,
                   const std::function<std::string()>& chart, const std::string& absent) {
  o << "<h2 id=\"" << id << "\">" << heading << "</h2>\n";
  if (present)
    o << chart();
  else
    o << "<p class=\"empty\">" << absent << "</p>\n";
}

}  // namespace

std::string render_report_html(const ReportInputs& in, ReportSummary* summary) {
  const ParsedArtifacts a = parse_artifacts(in);
  std::ostringstream o;
  write_head(o, in, a);
  write_notices(o, in, a);
  write_section(
      o, "thermal", "Temperature against the governor's thresholds", in.thermal_csv.has_value(),
      [&] { return thermal_section(a.thermal); },
      "No thermal signature (thermal_signature.csv is missing).");
  write_section(
      o, "fairness", "Per-process GPU utilization", in.heatmap_csv.has_value(),
      [&] { return heatmap_section(a.heat); }, "No heatmap (fairness_heatmap.csv is missing).");
  write_section(
      o, "vram", "VRAM per process", in.heatmap_csv.has_value(),
      [&] { return vram_section(a.heat); },
      "No per-process VRAM (fairness_heatmap.csv is missing).");
  // Reclamation: a file that is there but unreadable says why.
  write_section(
      o, "reclamation", "VRAM reclamation", a.sum.reclamation_ok || !a.recl_error.empty(),
      [&] {
        return a.sum.reclamation_ok ? reclamation_section(a.recl)
                                    : "<p class=\"empty\">" + html_escape(a.recl_error) + ".</p>\n";
      },
      "No reclamation data (vram_reclamation.json is missing).");
  o << "</body>\n</html>\n";
  if (summary) *summary = a.sum;
  return o.str();
}

std::string render_report_html(const std::string& thermal_csv, const std::string& heatmap_csv,
                               const std::string& reclamation_json, const std::string& title) {
  ReportInputs in;
  if (!thermal_csv.empty()) in.thermal_csv = thermal_csv;
  if (!heatmap_csv.empty()) in.heatmap_csv = heatmap_csv;
  if (!reclamation_json.empty()) in.reclamation_json = reclamation_json;
  in.title = title;
  return render_report_html(in);
}

int run_report_command(const std::string& state_dir, std::ostream& out, std::ostream& err) {
  std::string dir = state_dir + "/artifacts";
  ReportInputs in;
  auto load = [&](const char* name) -> std::optional<std::string> {
    std::string path = dir + "/" + name, e;
    auto text = read_whole_file(path, &e);
    if (!text && !icontains(e, "no such file"))
      in.read_errors.push_back(std::string(name) + " could not be read (" + e + ")");
    return text;
  };
  in.thermal_csv = load(kThermalFile);
  in.heatmap_csv = load(kHeatmapFile);
  in.reclamation_json = load(kReclaimFile);

  ReportSummary sum;
  std::string html = render_report_html(in, &sum);

  std::string e = ensure_state_dir(state_dir);
  if (e.empty()) e = ensure_state_dir(dir);
  if (!e.empty()) {
    err << "report: cannot prepare " << dir << ": " << e << "\n";
    return 1;
  }
  std::string path = dir + "/report.html";
  e = write_file_atomic(path, html, 0600);
  if (!e.empty()) {
    err << "report: cannot write " << path << ": " << e << "\n";
    return 1;
  }
  for (const auto& r : in.read_errors) err << "report: " << r << "\n";
  for (const auto& m : sum.missing)
    err << "report: " << dir << "/" << m << " is missing"
        << (m == std::string(kHeatmapFile)
                ? " (written only when the plan enables utilization_heatmap_enabled)"
                : " (start-daemon writes it every 10 ticks)")
        << "; the report says so\n";
  if (sum.thermal_skipped)
    err << "report: " << kThermalFile << ": " << sum.thermal_skipped
        << " malformed row(s) skipped\n";
  if (sum.heatmap_skipped)
    err << "report: " << kHeatmapFile << ": " << sum.heatmap_skipped
        << " malformed row(s) skipped\n";
  out << "wrote " << path << " (" << sum.thermal_rows << " thermal samples, " << sum.heatmap_rows
      << " process samples";
  if (!sum.missing.empty()) out << "; " << sum.missing.size() << " artifact(s) missing";
  out << ")\n";
  return 0;
}

}  // namespace grey
