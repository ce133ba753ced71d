// Parser micro-benchmarks on real captures. The 8-GPU nvidia-smi -q -x document is built from
// the real dual RTX 2070 capture: its two <gpu> elements repeated four times with distinct bus
// ids (the rest of the document is untouched).
#include <benchmark/benchmark.h>

#include <fstream>
#include <sstream>
#include <string>

#include "sources/parsers.h"

namespace {

std::string slurp(const std::string& rel) {
  std::ifstream in(std::string(GREY_FIXTURE_DIR) + "/" + rel, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string eight_gpu_xml() {
  std::string doc = slurp("nvidia-smi-xml/nvidia-geforce-rtx2070-x2-590.44.01-telegraf.xml");
  auto first = doc.find("<gpu id=");
  auto last_end = doc.rfind("</gpu>");
  if (first == std::string::npos || last_end == std::string::npos) return doc;
  last_end += 6;
  std::string gpus = doc.substr(first, last_end - first);
  std::string out = doc.substr(0, first);
  for (int copy = 0; copy < 4; ++copy) {
    std::string g = gpus;
    // Give each copy its own buses: 00000000:01:00.0 -> 00000000:1N:00.0 and so on.
    for (const char* bus : {"00000000:01:00.0", "00000000:02:00.0"}) {
      std::string to = bus;
      to[9] = static_cast<char>('1' + copy);
      for (size_t p = g.find(bus); p != std::string::npos; p = g.find(bus, p + 1))
        g.replace(p, to.size(), to);
    }
    out += g;
  }
  out += doc.substr(last_end);
  return out;
}

void BM_NvidiaSmiXml8Gpus(benchmark::State& st) {
  std::string doc = eight_gpu_xml();
  size_t n = grey::parse_nvidia_smi_xml(doc).devices.size();
  if (n != 8) st.SkipWithError("expected 8 GPUs");
  for (auto _ : st) benchmark::DoNotOptimize(grey::parse_nvidia_smi_xml(doc));
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations() * doc.size()));
}
BENCHMARK(BM_NvidiaSmiXml8Gpus)->Unit(benchmark::kMicrosecond);

void BM_Parse(benchmark::State& st, grey::ParseResult (*parse)(std::string_view), const char* rel) {
  std::string doc = slurp(rel);
  for (auto _ : st) benchmark::DoNotOptimize(parse(doc));
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations() * doc.size()));
}
BENCHMARK_CAPTURE(BM_Parse, a40x10, grey::parse_nvidia_smi_table,
                  "nvidia-smi-table/nvidia-a40-x10-550.127.05-thamada.txt")
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Parse, h100, grey::parse_nvidia_smi_csv,
                  "nvidia-smi-csv/nvidia-h100-80gb-hbm3-590.48.01-idle-full-query-nge.csv")
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Parse, mi100x6, grey::parse_rocm_smi_json,
                  "rocm-smi/amd-instinct-mi100-x6-rocm5.7.1-json-telegraf.json")
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Parse, full_tree, grey::parse_lshw,
                  "lshw/amd-radeon-hd5770-full-tree-athlon64-nforce4-lshw-octology.txt")
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Parse, gtx970, grey::parse_glxinfo,
                  "glxinfo/nvidia-geforce-gtx970-proprietary-glxinfo-peracotta.txt")
    ->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
