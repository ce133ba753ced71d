#include "report/report.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <optional>
#include <regex>
#include <sstream>

#include "daemon/artifacts.h"
#include "test_util.h"
#include "util/json_util.h"
#include "util/runner.h"

namespace grey {
namespace {

std::string ts(int second) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "2026-11-26T15:%02d:%02d.000Z", second / 60, second % 60);
  return buf;
}

Plan test_plan() {
  Plan p;
  GpuPlan g0;
  g0.index = 0;
  g0.cooldown_threshold_c = 83;
  g0.resume_threshold_c = 70;
  GpuPlan g1;
  g1.index = 1;
  g1.cooldown_threshold_c = 90;
  g1.resume_threshold_c = 75;
  p.gpus = {g0, g1};
  return p;
}

// 30 samples a second apart: GPU 0 rises from 60 °C past cooldown (83) and falls back under
// resume; GPU 1 stays at 50 °C; GPU 2 is stale throughout (no rows). Three processes; the one
// named like a script tag is idle and holds VRAM the whole time.
std::vector<TelemetrySnapshot> history(int n = 30) {
  std::vector<TelemetrySnapshot> h;
  for (int i = 0; i < n; ++i) {
    TelemetrySnapshot s;
    s.timestamp = ts(i);
    GpuSample a;
    a.index = 0;
    a.bus_id = "0000:1b:00.0";
    a.temperature_c = i < 15 ? 60 + 2 * i : 88 - 2 * (i - 15);
    a.power_w = 300 + i;
    a.power_limit_w = i >= 12 && i < 20 ? 600 : 700;
    a.utilization_pct = 90;
    a.vram_used_mb = 4096;
    a.backend = "nvml";
    GpuSample b;
    b.index = 1;
    b.bus_id = "0000:2c:00.0";
    b.temperature_c = 50;
    b.backend = "sysfs";
    GpuSample c;
    c.index = 2;
    c.stale = true;
    c.backend = "sysfs";
    s.gpus = {a, b, c};
    ProcessSample p1;
    p1.pid = 100;
    p1.command = "python,train \"big\"";
    p1.user = "alice";
    p1.gpu_index = 0;
    p1.utilization_pct = i * 3;
    p1.vram_mb = 1000 + 10 * i;
    p1.backend = "nvml";
    ProcessSample p2;
    p2.pid = 200;
    p2.command = "<script>alert(1)</script>";
    p2.user = "m&m's";
    p2.gpu_index = 0;
    p2.utilization_pct = 0;
    p2.vram_mb = 512;
    p2.backend = "nvml";
    ProcessSample p3;  // utilization unknown (first fdinfo scan), no GPU index
    p3.pid = 300;
    p3.command = "blender";
    p3.user = "1001";
    p3.vram_mb = 64;
    p3.backend = "fdinfo";
    s.processes = {p1, p2, p3};
    h.push_back(s);
  }
  return h;
}

size_t count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
  return n;
}

// The points of the first <polyline> whose class attribute contains `cls` after `from`.
std::vector<std::pair<double, double>> polyline_points(const std::string& html,
                                                       const std::string& cls, size_t from = 0) {
  std::vector<std::pair<double, double>> pts;
  size_t p = html.find("<polyline class=\"series " + cls + "\"", from);
  if (p == std::string::npos) return pts;
  size_t a = html.find("points=\"", p);
  size_t b = html.find('"', a + 8);
  std::istringstream in(html.substr(a + 8, b - a - 8));
  for (std::string tok; in >> tok;) {
    auto comma = tok.find(',');
    pts.push_back({std::stod(tok.substr(0, comma)), std::stod(tok.substr(comma + 1))});
  }
  return pts;
}

struct Rendered {
  std::string thermal, heat, recl, html;
  ReportSummary sum;
};

Rendered render(const std::vector<TelemetrySnapshot>& h) {
  Plan plan = test_plan();
  Rendered r;
  r.thermal = thermal_signature_csv(h, &plan);
  r.heat = fairness_heatmap_csv(h);
  r.recl = dump_json(vram_reclamation(h), 2);
  ReportInputs in;
  in.thermal_csv = r.thermal;
  in.heatmap_csv = r.heat;
  in.reclamation_json = r.recl;
  r.html = render_report_html(in, &r.sum);
  return r;
}

TEST(Report, ParsesWhatArtifactsWrites) {
  Rendered r = render(history());
  auto th = parse_thermal_csv(r.thermal);
  EXPECT_TRUE(th.header_ok);
  EXPECT_EQ(th.skipped, 0u);
  ASSERT_EQ(th.rows.size(), 60u);  // 30 samples x 2 GPUs (the stale GPU has none)
  const ThermalRow& first = th.rows[0];
  EXPECT_EQ(first.gpu_index, 0);
  EXPECT_EQ(first.bus_id, "0000:1b:00.0");
  EXPECT_DOUBLE_EQ(first.temperature_c, 60);
  EXPECT_EQ(first.cooldown_c, 83);
  EXPECT_EQ(first.resume_c, 70);
  EXPECT_EQ(first.power_limit_w, 700);
  EXPECT_EQ(first.vram_used_mb, 4096);
  EXPECT_EQ(first.backend, "nvml");
  EXPECT_DOUBLE_EQ(th.rows[2].t - th.rows[0].t, 1.0);
  EXPECT_FALSE(th.rows[1].power_w);  // GPU 1 has no power reading

  auto hm = parse_heatmap_csv(r.heat);
  EXPECT_TRUE(hm.header_ok);
  EXPECT_EQ(hm.skipped, 0u);
  ASSERT_EQ(hm.rows.size(), 90u);
  EXPECT_EQ(hm.rows[0].command, "python,train \"big\"");  // quoted cell
  EXPECT_EQ(hm.rows[0].user, "alice");
  EXPECT_EQ(hm.rows[1].command, "<script>alert(1)</script>");
  EXPECT_EQ(hm.rows[1].user, "m&m's");
  EXPECT_FALSE(hm.rows[2].gpu_index);
  EXPECT_FALSE(hm.rows[2].utilization_pct);
  EXPECT_EQ(hm.rows[2].vram_mb, 64);
  EXPECT_EQ(r.sum.thermal_rows, 60u);
  EXPECT_EQ(r.sum.heatmap_rows, 90u);
  EXPECT_TRUE(r.sum.missing.empty());
  EXPECT_TRUE(r.sum.reclamation_ok);
}

TEST(Report, TemperatureChartsAgainstThresholds) {
  Rendered r = render(history());
  const std::string& h = r.html;
  EXPECT_EQ(count(h, "<polyline class=\"series temperature\""), 2u);
  EXPECT_EQ(count(h, "<polyline class=\"series cooldown\""), 2u);
  EXPECT_EQ(count(h, "<polyline class=\"series resume\""), 2u);
  EXPECT_EQ(count(h, "<polyline class=\"series power\""), 1u);  // GPU 1 has no power
  EXPECT_EQ(count(h, "<polyline class=\"series power-limit\""), 1u);
  EXPECT_NE(h.find("id=\"gpu0-temperature\""), std::string::npos);
  EXPECT_NE(h.find("id=\"gpu1-temperature\""), std::string::npos);
  EXPECT_EQ(h.find("id=\"gpu2-"), std::string::npos);  // stale GPU: no rows, no chart

  size_t g0 = h.find("id=\"gpu0-temperature\"");
  auto temp = polyline_points(h, "temperature", g0);
  auto cool = polyline_points(h, "cooldown", g0);
  auto res = polyline_points(h, "resume", g0);
  ASSERT_EQ(temp.size(), 30u);
  // Time runs left to right, evenly.
  for (size_t i = 1; i < temp.size(); ++i) EXPECT_GT(temp[i].first, temp[i - 1].first);
  // A constant threshold is one flat line spanning the chart.
  ASSERT_GE(cool.size(), 2u);
  for (const auto& p : cool) EXPECT_DOUBLE_EQ(p.second, cool[0].second);
  EXPECT_DOUBLE_EQ(cool.front().first, temp.front().first);
  EXPECT_DOUBLE_EQ(cool.back().first, temp.back().first);
  // SVG y grows downwards: cooldown (83) above resume (70); the peak (88 °C at sample 15) is
  // above the cooldown line, the first sample (60 °C) below the resume line.
  EXPECT_LT(cool[0].second, res[0].second);
  EXPECT_LT(temp[14].second, cool[0].second);
  EXPECT_GT(temp[0].second, res[0].second);
  // 88 - 83 = 5 °C and 83 - 70 = 13 °C: the pixel distances keep the ratio.
  double px_per_c = (res[0].second - cool[0].second) / 13.0;
  EXPECT_NEAR(cool[0].second - temp[15].second, 5 * px_per_c, 0.2);
  // The power limit dropped for a while: a step line with more than two points.
  size_t p0 = h.find("id=\"gpu0-power\"");
  EXPECT_GT(polyline_points(h, "power-limit", p0).size(), 2u);
  EXPECT_NE(h.find("samples at or above cooldown"), std::string::npos);
}

// One line chart's <svg> element, by id; empty when there is none.
std::string chart_svg(const std::string& html, const std::string& id) {
  size_t a = html.find("<svg class=\"chart\" id=\"" + id + "\"");
  if (a == std::string::npos) return "";
  return html.substr(a, html.find("</svg>", a) - a);
}

// A line chart's axes as drawn: the plot area's x span (the chart's first and last sample) and
// two labelled grid lines (pixel y, value) that fix the value scale.
struct Axes {
  double x_left = 0, width = 0;
  double y_lo = 0, v_lo = 0, y_hi = 0, v_hi = 0;
  double t0 = 0, t1 = 1;
  double value(double y) const { return v_lo + (y - y_lo) * (v_hi - v_lo) / (y_hi - y_lo); }
  double x_of(double t) const { return x_left + (t - t0) / (t1 - t0) * width; }
  double time(double x) const { return t0 + (x - x_left) / width * (t1 - t0); }
  // How far a value may be off from the 0.1 px rounding of a point and of the two grid lines.
  double value_tolerance() const { return 0.25 * std::fabs((v_hi - v_lo) / (y_hi - y_lo)); }
};

Axes chart_axes(const std::string& svg, double t0, double t1) {
  Axes a;
  a.t0 = t0;
  a.t1 = t1;
  std::smatch m;
  static const std::regex plot(
      R"re(<rect class="plot" x="([-0-9.]+)" y="[-0-9.]+" width="([-0-9.]+)")re");
  EXPECT_TRUE(std::regex_search(svg, m, plot)) << svg;
  if (m.empty()) return a;
  a.x_left = std::stod(m[1]);
  a.width = std::stod(m[2]);
  static const std::regex grid(
      R"re(<line class="grid" x1="[^"]*" x2="[^"]*" y1="([-0-9.]+)" y2="[^"]*"/><text class="tick"[^>]*>([-0-9.]+)</text>)re");
  std::vector<std::pair<double, double>> ticks;
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), grid); it != std::sregex_iterator();
       ++it)
    ticks.push_back({std::stod((*it)[1]), std::stod((*it)[2])});
  EXPECT_GE(ticks.size(), 2u) << svg;
  if (ticks.size() < 2) return a;
  std::tie(a.y_lo, a.v_lo) = ticks.front();
  std::tie(a.y_hi, a.v_hi) = ticks.back();
  return a;
}

// The value a drawn series shows at time t: a line's point at t (exactly one sample there), a
// step line's level at t (its last vertex at or left of t).
double step_value_at(const std::vector<std::pair<double, double>>& pts, const Axes& a, double t) {
  double x = a.x_of(t), y = NAN;
  for (const auto& p : pts)
    if (p.first <= x + 0.06) y = p.second;
  return a.value(y);
}

// Issue 10: the charts show the artifacts' values. Every drawn point of every GPU's temperature
// and power line, read back through the chart's own axes, is the CSV row at that time, and each
// threshold and power-limit step line holds the row's value at each sample: a chart that plotted
// another column (or another GPU's rows) fails here.
TEST(Report, ChartsPlotTheArtifactsValues) {
  Rendered r = render(history());
  auto th = parse_thermal_csv(r.thermal);
  ASSERT_TRUE(th.header_ok);
  std::map<int, std::vector<ThermalRow>> by_gpu;
  for (const auto& row : th.rows) by_gpu[row.gpu_index].push_back(row);
  ASSERT_EQ(by_gpu.size(), 2u);
  for (auto& [gpu, rows] : by_gpu) {
    SCOPED_TRACE("GPU " + std::to_string(gpu));
    std::stable_sort(rows.begin(), rows.end(),
                     [](const ThermalRow& x, const ThermalRow& y) { return x.t < y.t; });
    const double t0 = rows.front().t, t1 = rows.back().t;
    const std::string id = "gpu" + std::to_string(gpu);

    std::string temp_svg = chart_svg(r.html, id + "-temperature");
    ASSERT_FALSE(temp_svg.empty());
    Axes ta = chart_axes(temp_svg, t0, t1);
    auto temp = polyline_points(temp_svg, "temperature");
    ASSERT_EQ(temp.size(), rows.size());
    for (size_t i = 0; i < rows.size(); ++i) {
      EXPECT_NEAR(ta.time(temp[i].first), rows[i].t, 0.01) << "point " << i;
      EXPECT_NEAR(ta.value(temp[i].second), rows[i].temperature_c, ta.value_tolerance())
          << "point " << i;
    }
    auto cool = polyline_points(temp_svg, "cooldown");
    auto res = polyline_points(temp_svg, "resume");
    for (const auto& row : rows) {
      ASSERT_TRUE(row.cooldown_c && row.resume_c);
      EXPECT_NEAR(step_value_at(cool, ta, row.t), *row.cooldown_c, ta.value_tolerance());
      EXPECT_NEAR(step_value_at(res, ta, row.t), *row.resume_c, ta.value_tolerance());
    }

    std::string power_svg = chart_svg(r.html, id + "-power");
    if (!rows.front().power_w) {
      EXPECT_TRUE(power_svg.empty());  // GPU 1 reports no power
      continue;
    }
    ASSERT_FALSE(power_svg.empty());
    Axes pa = chart_axes(power_svg, t0, t1);
    auto power = polyline_points(power_svg, "power");
    auto limit = polyline_points(power_svg, "power-limit");
    ASSERT_EQ(power.size(), rows.size());
    for (size_t i = 0; i < rows.size(); ++i) {
      ASSERT_TRUE(rows[i].power_w && rows[i].power_limit_w);
      EXPECT_NEAR(pa.time(power[i].first), rows[i].t, 0.01) << "point " << i;
      EXPECT_NEAR(pa.value(power[i].second), *rows[i].power_w, pa.value_tolerance())
          << "point " << i;
      EXPECT_NEAR(step_value_at(limit, pa, rows[i].t), *rows[i].power_limit_w, pa.value_tolerance())
          << "sample " << i;
    }
  }
}

// The heatmap's cells are the CSV's utilization per process and time column, in time order, and
// the VRAM bars' lengths are in the ratio of the processes' peaks.
TEST(Report, HeatmapCellsAndVramBarsAreTheCsvValues) {
  Rendered r = render(history());
  auto hm = parse_heatmap_csv(r.heat);
  ASSERT_TRUE(hm.header_ok);
  std::map<int, std::vector<const HeatmapRow*>> by_pid;
  std::map<int, double> peak;
  for (const auto& row : hm.rows) {
    by_pid[row.pid].push_back(&row);
    if (row.vram_mb) peak[row.pid] = std::max(peak[row.pid], *row.vram_mb);
  }
  static const std::regex cell(
      R"re(<rect class="cell( unknown)?" x="([0-9.]+)"[^>]*data-pid="([0-9]+)"( data-util="([0-9.]+)")?)re");
  std::map<int, std::vector<std::pair<double, std::optional<double>>>> cells;  // pid: (x, util)
  for (auto it = std::sregex_iterator(r.html.begin(), r.html.end(), cell);
       it != std::sregex_iterator(); ++it) {
    std::optional<double> util;
    if ((*it)[5].matched) util = std::stod((*it)[5]);
    cells[std::stoi((*it)[3])].push_back({std::stod((*it)[2]), util});
  }
  ASSERT_EQ(cells.size(), by_pid.size());
  for (auto& [pid, rows] : by_pid) {
    SCOPED_TRACE("pid " + std::to_string(pid));
    std::stable_sort(rows.begin(), rows.end(),
                     [](const HeatmapRow* x, const HeatmapRow* y) { return x->t < y->t; });
    auto& cs = cells[pid];
    std::stable_sort(cs.begin(), cs.end());
    ASSERT_EQ(cs.size(), rows.size());  // one sample per column here
    for (size_t i = 0; i < rows.size(); ++i) {
      ASSERT_EQ(cs[i].second.has_value(), rows[i]->utilization_pct.has_value()) << "column " << i;
      if (cs[i].second) {
        EXPECT_NEAR(*cs[i].second, *rows[i]->utilization_pct, 0.05);
      }
    }
  }
  static const std::regex bar(
      R"re(<rect class="vram-bar peak" x="[0-9.]+" y="[0-9.]+" width="([0-9.]+)"[^>]*data-pid="([0-9]+)" data-mib="([0-9.]+)")re");
  std::map<int, std::pair<double, double>> bars;  // pid: (width, MiB)
  for (auto it = std::sregex_iterator(r.html.begin(), r.html.end(), bar);
       it != std::sregex_iterator(); ++it)
    bars[std::stoi((*it)[2])] = {std::stod((*it)[1]), std::stod((*it)[3])};
  ASSERT_EQ(bars.size(), peak.size());
  double top = 0;
  for (const auto& [pid, mib] : peak) top = std::max(top, mib);
  const double full = bars.begin()->second.first / (peak.begin()->second / top);
  for (const auto& [pid, mib] : peak) {
    EXPECT_DOUBLE_EQ(bars[pid].second, mib) << "pid " << pid;
    EXPECT_NEAR(bars[pid].first, mib / top * full, 0.02) << "pid " << pid;
  }
}

TEST(Report, HeatmapAndVram) {
  Rendered r = render(history());
  const std::string& h = r.html;
  // 3 processes x 30 time columns.
  EXPECT_EQ(count(h, "<rect class=\"cell"), 90u);
  EXPECT_EQ(count(h, "<rect class=\"cell unknown\""), 30u);  // pid 300: utilization unknown
  // pid 100 goes 0, 3, ... 87 %: its last column reads 87.
  EXPECT_NE(h.find("data-pid=\"100\" data-util=\"87.0\""), std::string::npos);
  EXPECT_NE(h.find("data-pid=\"200\" data-util=\"0.0\""), std::string::npos);
  // VRAM per process: one bar each, peak values.
  EXPECT_EQ(count(h, "<rect class=\"vram-bar peak\""), 3u);
  EXPECT_NE(h.find("data-pid=\"100\" data-mib=\"1290\""), std::string::npos);
  EXPECT_NE(h.find("data-pid=\"200\" data-mib=\"512\""), std::string::npos);
  EXPECT_NE(h.find("data-pid=\"300\" data-mib=\"64\""), std::string::npos);
  // Reclamation: pid 200 idle with VRAM the whole window.
  EXPECT_NE(h.find("<table class=\"idle_processes\">"), std::string::npos);
  EXPECT_NE(h.find("<td>200</td><td>&lt;script&gt;alert(1)&lt;/script&gt;</td>"),
            std::string::npos);
  EXPECT_NE(h.find("<dd class=\"estimated_reclaimable_mb\">512 (measured) "), std::string::npos)
      << h;
  EXPECT_NE(h.find("<dd class=\"compression_ratio\">"), std::string::npos);
}

// Issue 10: what was not measured reads "not measured" in the report, never 0; an older file
// (numbers, no provenance or rationale) still renders.
TEST(Report, UnmeasuredReclamationIsNotMeasured) {
  ReportInputs in;
  in.reclamation_json = dump_json(vram_reclamation(std::vector<TelemetrySnapshot>{}), 2);
  ReportSummary sum;
  std::string h = render_report_html(in, &sum);
  EXPECT_TRUE(sum.reclamation_ok);
  for (const char* k : {"estimated_reclaimable_mb", "dedup_buffer_count", "compression_ratio"})
    EXPECT_NE(h.find("<dd class=\"" + std::string(k) + "\">not measured <span"), std::string::npos)
        << k << "\n"
        << h;
  EXPECT_NE(h.find("no process telemetry was given"), std::string::npos);
  in.reclamation_json =
      R"({"samples": 2, "estimated_reclaimable_mb": 0, "dedup_buffer_count": 0,
          "idle_processes": [], "duplicate_groups": [], "measured": true})";
  h = render_report_html(in, &sum);
  EXPECT_NE(h.find("<dd class=\"dedup_buffer_count\">0</dd>"), std::string::npos) << h;
}

TEST(Report, SelfContainedAndEscaped) {
  Rendered r = render(history());
  const std::string& h = r.html;
  EXPECT_EQ(h.find("http://"), std::string::npos);
  EXPECT_EQ(h.find("https://"), std::string::npos);
  EXPECT_EQ(h.find("<script"), std::string::npos);
  EXPECT_EQ(h.find("src="), std::string::npos);
  EXPECT_EQ(h.find("href="), std::string::npos);
  EXPECT_EQ(h.find("url("), std::string::npos);
  EXPECT_EQ(h.find("@import"), std::string::npos);
  EXPECT_NE(h.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
  EXPECT_NE(h.find("m&amp;m&#39;s"), std::string::npos);
  EXPECT_EQ(h.find("m&m"), std::string::npos);
  EXPECT_NE(h.find("python,train &quot;big&quot;"), std::string::npos);
  EXPECT_NE(h.find("Content-Security-Policy"), std::string::npos);
  EXPECT_EQ(h.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(h.find("</html>"), std::string::npos);
  // The title is escaped too.
  std::string t = render_report_html(r.thermal, r.heat, r.recl, "<b>x</b> & y");
  EXPECT_NE(t.find("<title>&lt;b&gt;x&lt;/b&gt; &amp; y</title>"), std::string::npos);
}

TEST(Report, MissingArtifactsAreNamed) {
  ReportSummary sum;
  std::string h = render_report_html(ReportInputs{}, &sum);
  EXPECT_EQ(sum.missing.size(), 3u);
  for (const char* f : {"thermal_signature.csv", "fairness_heatmap.csv", "vram_reclamation.json"})
    EXPECT_NE(h.find(std::string("<b>") + f + "</b> is missing"), std::string::npos) << f;
  EXPECT_EQ(h.find("<polyline"), std::string::npos);
  // Only the heatmap missing (a plan without utilization_heatmap_enabled).
  Rendered r = render(history());
  std::string only = render_report_html(r.thermal, "", r.recl, "t");
  EXPECT_NE(only.find("<b>fairness_heatmap.csv</b> is missing"), std::string::npos);
  EXPECT_EQ(only.find("<b>thermal_signature.csv</b> is missing"), std::string::npos);
  EXPECT_EQ(count(only, "<polyline class=\"series temperature\""), 2u);
  EXPECT_EQ(only.find("<rect class=\"cell"), std::string::npos);
  // Header-only files: no samples yet, nothing drawn, nothing skipped.
  Rendered empty = render({});
  EXPECT_EQ(empty.sum.thermal_rows, 0u);
  EXPECT_EQ(empty.sum.thermal_skipped, 0u);
  EXPECT_NE(empty.html.find("No temperature samples yet."), std::string::npos);
  EXPECT_NE(empty.html.find("No process samples yet."), std::string::npos);
  EXPECT_EQ(empty.html.find("<polyline"), std::string::npos);
}

TEST(Report, MalformedRowsAreSkippedAndCounted) {
  Rendered r = render(history(3));
  std::string thermal = r.thermal +
                        "garbage\n"                                     // too few
                        "2026-11-26T15:00:09Z,0,,hot,,,,,,,nvml\n"      // not a number
                        "yesterday,0,,50,,,,,,,nvml\n"                  // timestamp
                        "2026-11-26T15:00:09Z,0,,1e308,,,,,,,nvml\n"    // implausible
                        "2026-11-26T15:00:09Z,0.5,,50,,,,,,,nvml\n"     // index
                        "2026-11-26T15:00:10Z,0,,nan,,,,,,,nvml\n"      // nan
                        "2026-11-26T15:00:11Z,0,,51,80,68,,,,,nvml\n";  // good
  std::string heat = r.heat + "2026-11-26T15:00:09Z,0,-5,x,u,1,1\n" +
                     "2026-11-26T15:00:09Z,0,77,\"unterminated,u,1,1\n";
  ReportInputs in;
  in.thermal_csv = thermal;
  in.heatmap_csv = heat;
  in.reclamation_json = "{not json";
  ReportSummary sum;
  std::string h = render_report_html(in, &sum);
  EXPECT_EQ(sum.thermal_rows, 7u);
  EXPECT_EQ(sum.thermal_skipped, 6u);
  EXPECT_EQ(sum.heatmap_rows, 9u);
  EXPECT_EQ(sum.heatmap_skipped, 2u);
  EXPECT_FALSE(sum.reclamation_ok);
  EXPECT_NE(h.find("<b>thermal_signature.csv</b>: 6 malformed row(s) skipped."), std::string::npos);
  EXPECT_NE(h.find("<b>fairness_heatmap.csv</b>: 2 malformed row(s) skipped."), std::string::npos);
  EXPECT_NE(h.find("line 8 skipped: 1 cells, the header has 11"),
            std::string::npos);  // the first bad line is named
  EXPECT_NE(h.find("vram_reclamation.json is not valid JSON"), std::string::npos);

  auto t = parse_thermal_csv("timestamp,gpu_index\n2026-11-26T15:00:00Z,0\n");
  EXPECT_FALSE(t.header_ok);
  EXPECT_EQ(t.skipped, 1u);
  ASSERT_FALSE(t.notes.empty());
  EXPECT_NE(t.notes[0].find("temperature_c"), std::string::npos);
  EXPECT_FALSE(parse_heatmap_csv("").header_ok);
  // Columns are found by name, in any order; \r\n line ends are fine.
  auto re = parse_thermal_csv(
      "backend,temperature_c,gpu_index,timestamp,extra\r\nnvml,71.5,3,2026-11-26 15:00:00,x\r\n");
  ASSERT_EQ(re.rows.size(), 1u);
  EXPECT_EQ(re.rows[0].gpu_index, 3);
  EXPECT_DOUBLE_EQ(re.rows[0].temperature_c, 71.5);
  EXPECT_EQ(re.rows[0].backend, "nvml");
  // A JSON value that is not an object.
  in.reclamation_json = "[1,2,3]";
  h = render_report_html(in, &sum);
  EXPECT_NE(h.find("vram_reclamation.json is not a JSON object"), std::string::npos);
}

TEST(Report, GarbageNeverCrashes) {
  std::string junk;
  for (int i = 0; i < 20000; ++i) junk += static_cast<char>((i * 7919 + 13) % 256);
  Rendered r = render(history(5));
  for (const std::string& s : {junk, std::string("\"\"\"\n,,,\n\""), std::string(1, '\0'),
                               std::string("timestamp,gpu_index,temperature_c\n") + junk,
                               std::string("timestamp,pid\n") + junk, r.thermal.substr(0, 77),
                               r.heat.substr(0, 101), r.recl.substr(0, 40)}) {
    std::string h = render_report_html(s, s, s, "junk");
    EXPECT_NE(h.find("</html>"), std::string::npos);
  }
  // Every cut of real artifacts renders.
  for (size_t cut = 0; cut < r.thermal.size(); cut += 37)
    EXPECT_NE(render_report_html(r.thermal.substr(0, cut), r.heat.substr(0, cut),
                                 r.recl.substr(0, cut), "cut")
                  .find("</html>"),
              std::string::npos);
  // Deeply nested JSON.
  std::string deep(100000, '[');
  EXPECT_NE(render_report_html("", "", deep, "deep").find("not valid JSON"), std::string::npos);
}

TEST(Report, LongHistoriesAreDecimatedKeepingPeaks) {
  auto h = history(3);
  std::vector<TelemetrySnapshot> many;
  for (int i = 0; i < 5000; ++i) {
    TelemetrySnapshot s = h[0];
    char buf[64];
    std::snprintf(buf, sizeof buf, "2026-11-26T%02d:%02d:%02d.000Z", i / 3600, (i / 60) % 60,
                  i % 60);
    s.timestamp = buf;
    s.gpus[0].temperature_c = i == 2500 ? 99 : 60;
    s.processes.resize(1);
    many.push_back(s);
  }
  Rendered r = render(many);
  auto temp = polyline_points(r.html, "temperature", r.html.find("id=\"gpu0-temperature\""));
  EXPECT_LE(temp.size(), 1200u);
  EXPECT_GE(temp.size(), 100u);
  double top = 1e9;
  for (const auto& p : temp) top = std::min(top, p.second);
  EXPECT_LT(top, temp.front().second - 20);              // the single 99 °C spike survived
  EXPECT_LE(count(r.html, "<rect class=\"cell"), 120u);  // columns capped
}

TEST(Report, Iso8601) {
  EXPECT_EQ(parse_iso8601_utc("1970-01-01T00:00:00Z"), 0.0);
  EXPECT_EQ(parse_iso8601_utc("2026-11-26T15:00:00.5Z"), 1795705200.5);
  EXPECT_EQ(parse_iso8601_utc("2026-11-26T16:00:00+01:00"), 1795705200.0);
  EXPECT_EQ(parse_iso8601_utc("2026-11-26 15:00:00"), 1795705200.0);
  EXPECT_EQ(parse_iso8601_utc("2024-02-29T00:00:00Z"), 1709164800.0);
  for (const char* bad :
       {"", "2026-11-26", "2026-13-01T00:00:00Z", "2025-02-29T00:00:00Z", "2026-11-26T24:00:00Z",
        "2026-11-26T15:00:00.Z", "2026-11-26T15:00:00Q", "1969-12-31T23:59:59Z",
        "2026-11-26T15:00:00+99:00", "abcd-ef-ghTij:kl:mn"})
    EXPECT_FALSE(parse_iso8601_utc(bad)) << bad;
}

TEST(ReportCommand, WritesReportAtomicallyWithMode0600) {
  test::TempDir tmp;
  std::string state = tmp / "state";
  Plan plan = test_plan();
  std::vector<std::string> errors;
  auto written = write_artifacts(state, history(), &plan, true, &errors);
  ASSERT_EQ(written.size(), 3u) << (errors.empty() ? "" : errors[0]);
  std::ostringstream out, err;
  EXPECT_EQ(run_report_command(state, out, err), 0) << err.str();
  std::string path = state + "/artifacts/report.html";
  EXPECT_NE(out.str().find("wrote " + path), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("60 thermal samples, 90 process samples"), std::string::npos);
  EXPECT_EQ(err.str(), "");
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::string html = test::read_file(path);
  EXPECT_EQ(count(html, "<polyline class=\"series temperature\""), 2u);
  EXPECT_EQ(count(html, "<rect class=\"cell"), 90u);
  // No temp files left behind.
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(state + "/artifacts")) {
    (void)e;
    ++files;
  }
  EXPECT_EQ(files, 4u);
}

TEST(ReportCommand, MissingArtifactsStillWriteAReport) {
  test::TempDir tmp;
  std::string state = tmp / "state";
  std::ostringstream out, err;
  EXPECT_EQ(run_report_command(state, out, err), 0);
  EXPECT_NE(err.str().find("thermal_signature.csv is missing"), std::string::npos) << err.str();
  EXPECT_NE(err.str().find("fairness_heatmap.csv is missing"), std::string::npos);
  EXPECT_NE(err.str().find("vram_reclamation.json is missing"), std::string::npos);
  EXPECT_NE(out.str().find("3 artifact(s) missing"), std::string::npos);
  std::string html = test::read_file(state + "/artifacts/report.html");
  EXPECT_NE(html.find("<b>thermal_signature.csv</b> is missing"), std::string::npos);

  // Heatmap disabled by the plan: only that one is missing; malformed rows are reported.
  Plan plan = test_plan();
  write_artifacts(state, history(), &plan, false, nullptr);
  test::write_file(state + "/artifacts/thermal_signature.csv",
                   thermal_signature_csv(history(2), &plan) + "bad,row\n", 0600);
  std::ostringstream out2, err2;
  EXPECT_EQ(run_report_command(state, out2, err2), 0);
  EXPECT_NE(err2.str().find("fairness_heatmap.csv is missing (written only when"),
            std::string::npos)
      << err2.str();
  EXPECT_EQ(err2.str().find("thermal_signature.csv is missing"), std::string::npos);
  EXPECT_NE(err2.str().find("thermal_signature.csv: 1 malformed row(s) skipped"),
            std::string::npos);
}

TEST(ReportCommand, UnwritableStateDirFails) {
  test::TempDir tmp;
  test::write_file(tmp / "file", "x");
  std::ostringstream out, err;
  EXPECT_EQ(run_report_command(tmp / "file", out, err), 1);
  EXPECT_NE(err.str().find("report: cannot"), std::string::npos);
  EXPECT_EQ(out.str(), "");
  // An artifact that is a directory cannot be read: said, not a crash.
  std::string state = tmp / "s";
  std::filesystem::create_directories(state + "/artifacts/thermal_signature.csv");
  ::chmod(state.c_str(), 0700);
  ::chmod((state + "/artifacts").c_str(), 0700);
  std::ostringstream out2, err2;
  EXPECT_EQ(run_report_command(state, out2, err2), 0) << err2.str();
  EXPECT_NE(err2.str().find("thermal_signature.csv could not be read"), std::string::npos)
      << err2.str();
}

// ---- headless Chromium -------------------------------------------------------------------

TEST(ReportChromium, ScreenshotOfTheReport) {
  const std::string chromium = "/usr/bin/chromium";
  if (access(chromium.c_str(), X_OK) != 0) GTEST_SKIP() << "chromium not installed";
  test::TempDir tmp;
  std::string state = tmp / "state";
  Plan plan = test_plan();
  write_artifacts(state, history(), &plan, true, nullptr);
  std::ostringstream out, err;
  ASSERT_EQ(run_report_command(state, out, err), 0);
  std::string report = state + "/artifacts/report.html";
  std::string shot = tmp / "shot.png";
  PosixRunner runner;
  RunOptions opt;
  opt.timeout = std::chrono::seconds(60);
  opt.extra_env = {{"HOME", tmp.path()}};
  CommandResult res =
      runner.run({chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--user-data-dir=" + (tmp / "profile"), "--screenshot=" + shot,
                  "--window-size=1200,900", "file://" + report},
                 opt);
  ASSERT_TRUE(res.started) << res.error;
  ASSERT_FALSE(res.timed_out) << "chromium did not finish in 60 s";
  ASSERT_TRUE(std::filesystem::exists(shot)) << res.describe_failure() << "\n" << res.err;
  std::string png = test::read_file(shot);
  ASSERT_GT(png.size(), 24u);
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  auto be32 = [&](size_t at) {
    return (static_cast<uint32_t>(static_cast<unsigned char>(png[at])) << 24) |
           (static_cast<uint32_t>(static_cast<unsigned char>(png[at + 1])) << 16) |
           (static_cast<uint32_t>(static_cast<unsigned char>(png[at + 2])) << 8) |
           static_cast<uint32_t>(static_cast<unsigned char>(png[at + 3]));
  };
  EXPECT_EQ(be32(16), 1200u);  // IHDR width
  EXPECT_EQ(be32(20), 900u);   // IHDR height
  // A blank 1200x900 page compresses to a few KiB; charts and text do not.
  EXPECT_GT(png.size(), 30000u) << "the screenshot looks blank";
  if (const char* keep = getenv("GREY_KEEP_SCREENSHOT"))
    std::filesystem::copy_file(shot, keep, std::filesystem::copy_options::overwrite_existing);
}

}  // namespace
}  // namespace grey
