// Fuzzes the report's input handling: the thermal and heatmap CSV parsers, the timestamp
// parser, and the whole renderer with the input split into the three artifacts at NUL bytes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "report/report.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* d, size_t n) {
  std::string_view s(reinterpret_cast<const char*>(d), n);
  grey::parse_thermal_csv(s);
  grey::parse_heatmap_csv(s);
  grey::parse_iso8601_utc(s.substr(0, 64));
  // "<thermal>\0<heatmap>\0<reclamation json>"; a part left out is a missing artifact.
  grey::ReportInputs in;
  size_t a = s.find('\0');
  in.thermal_csv = std::string(s.substr(0, a));
  if (a != std::string_view::npos) {
    size_t b = s.find('\0', a + 1);
    in.heatmap_csv = std::string(s.substr(a + 1, b == std::string_view::npos ? b : b - a - 1));
    if (b != std::string_view::npos) in.reclamation_json = std::string(s.substr(b + 1));
  }
  // Headers glued on, so the fuzzer reaches the row parsing without guessing them.
  grey::parse_thermal_csv(
      "timestamp,gpu_index,bus_id,temperature_c,cooldown_threshold_c,resume_threshold_c,"
      "power_w,power_limit_w,utilization_pct,vram_used_mb,backend\n" +
      std::string(s));
  grey::render_report_html(in);
  in.heatmap_csv = "timestamp,gpu_index,pid,command,user,utilization_pct,vram_mb\n" +
                   in.heatmap_csv.value_or("");
  grey::render_report_html(in);
  return 0;
}
