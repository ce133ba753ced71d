// The planner (SPEC §2): numbers for specs built from the facts of real captures (see
// tests/fixtures/SOURCES.md), relations between modes and sizes, the thermal and power clamps,
// unknown inputs, multi-GPU plans, measured dedup/reclaim and overrides applied to devices.
#include "plan/plan.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "plan/plan_io.h"
#include "sources/parsers.h"
#include "test_util.h"

namespace grey {
namespace {

GpuSpec make(int index, const std::string& vendor, const std::string& model,
             std::optional<int64_t> vram, std::vector<std::string> sources) {
  GpuSpec s;
  s.index = index;
  s.f.vendor = vendor;
  s.f.model = model;
  s.f.vram_total_mb = vram;
  s.detection_sources = std::move(sources);
  s.detection_timestamp = "2026-01-01T00:00:00Z";
  return s;
}

// nvidia-smi-csv/nvidia-h100-80gb-hbm3-590.48.01-idle-full-query-nge.csv: 81559 MiB,
// power.limit/default 700 W, min 200 W, max 700 W, bus 00000000:00:09.0; 132 SMs (SPEC §7).
GpuSpec h100() {
  GpuSpec s = make(0, "nvidia", "NVIDIA H100 80GB HBM3", 81559, {"nvidia-smi", "sysfs", "lspci"});
  s.f.bus_id = "0000:00:09.0";
  s.f.uuid = "GPU-00000000-0000-0000-0000-000000000000";
  s.f.power_limit_w = 700;
  s.f.power_limit_default_w = 700;
  s.f.power_limit_min_w = 200;
  s.f.power_limit_max_w = 700;
  s.f.num_sm = 132;
  return s;
}
// nvidia-smi-table/nvidia-a100-sxm4-80gb-x4-555.42.02-thamada.txt: 81920 MiB, 500 W cap
// (the table shows the current limit only).
GpuSpec a100_80() {
  GpuSpec s = make(0, "nvidia", "NVIDIA A100-SXM4-80GB", 81920, {"nvidia-smi"});
  s.f.bus_id = "0000:68:00.0";
  s.f.power_limit_w = 500;
  return s;
}
// nvidia-smi-table/nvidia-a100-sxm4-40gb-550.144.03-computecanada-windecks.txt: 40960 MiB, 400 W.
GpuSpec a100_40() {
  GpuSpec s = make(0, "nvidia", "NVIDIA A100-SXM4-40GB", 40960, {"nvidia-smi", "lspci"});
  s.f.bus_id = "0000:81:00.0";
  s.f.power_limit_w = 400;
  return s;
}
// nvidia-smi-csv/nvidia-geforce-rtx4080-super-595.71.05-idle-full-query-nge.csv: 16376 MiB,
// default 320 W, min 150 W, max 400 W.
GpuSpec rtx4080s() {
  GpuSpec s = make(0, "nvidia", "NVIDIA GeForce RTX 4080 SUPER", 16376,
                   {"nvidia-smi", "nvml", "sysfs", "lspci"});
  s.f.bus_id = "0000:01:00.0";
  s.f.power_limit_w = 320;
  s.f.power_limit_default_w = 320;
  s.f.power_limit_min_w = 150;
  s.f.power_limit_max_w = 400;
  return s;
}
// amd-smi/mi300x-static-json-gpu0-vram-jq-fragment-rocm-blog.json: 196592 MiB;
// rocm-smi/amd-instinct-mi300x-x4-concise-thamada.txt: PwrCap 750 W.
GpuSpec mi300x() {
  GpuSpec s = make(0, "amd", "AMD Instinct MI300X", 196592, {"amd-smi", "rocm-smi", "sysfs"});
  s.f.bus_id = "0000:05:00.0";
  s.f.power_limit_w = 750;
  return s;
}
// rocm-smi/amd-instinct-mi100-x6-rocm5.7.1-json-telegraf.json: 32752 MiB.
GpuSpec mi100() {
  GpuSpec s = make(0, "amd", "Arcturus GL-XL [Instinct MI100]", 32752, {"rocm-smi", "lspci"});
  s.f.bus_id = "0000:1e:00.0";
  return s;
}
// rocm-smi/amd-radeon-rx6700xt-rocm6.1.2-json-device-name-key-telegraf.json: 12272 MiB, max 211 W.
GpuSpec rx6700xt() {
  GpuSpec s = make(0, "amd", "Navi 22 [Radeon RX 6700/6700 XT / 6800M]", 12272,
                   {"rocm-smi", "sysfs", "lspci"});
  s.f.bus_id = "0000:07:00.0";
  s.f.power_limit_w = 211;
  return s;
}
// sysfs/intel-tigerlake-igpu-xe-lact/: Iris Xe on xe, no VRAM, no hwmon.
GpuSpec intel_igpu() {
  GpuSpec s =
      make(0, "intel", "TigerLake-LP GT2 [Iris Xe Graphics]", std::nullopt, {"sysfs", "lspci"});
  s.f.bus_id = "0000:00:02.0";
  return s;
}

Plan plan_of(std::vector<GpuSpec> specs, PlanMode mode,
             std::optional<TelemetryWindow> tel = std::nullopt, PlanOverrides ov = {}) {
  PlanInput in;
  in.specs = std::move(specs);
  in.mode = mode;
  in.telemetry = std::move(tel);
  in.overrides = std::move(ov);
  in.generated_at = "2026-01-01T00:00:00Z";
  PlanOutcome o = build_plan(in);
  EXPECT_TRUE(o.ok) << (o.errors.empty() ? "" : o.errors.front());
  return o.plan;
}

GpuPlan one(const GpuSpec& s, PlanMode mode) {
  Plan p = plan_of({s}, mode);
  EXPECT_EQ(p.gpus.size(), 1u);
  return p.gpus.at(0);
}

struct Expect {
  const char* name;
  GpuSpec (*spec)();
  std::optional<int64_t> cap, batch, chunk;
  int cool, resume;
  std::optional<double> power;  // aggressive
  int kernels;
  std::optional<int64_t> cap_a, batch_a, chunk_a;
  int cool_a;
};

const Expect kExpect[] = {
    {"H100 80GB", h100, 61169, 128, 10194, 83, 70, 630.0, 8, 73403, 256, 20389, 88},
    {"A100 80GB", a100_80, 61440, 128, 10240, 83, 70, 450.0, 4, 73728, 256, 20480, 88},
    {"A100 40GB", a100_40, 30720, 128, 5120, 83, 70, 360.0, 4, 36864, 256, 10240, 88},
    {"RTX 4080 SUPER", rtx4080s, 12282, 32, 2047, 83, 70, 288.0, 4, 14738, 64, 4094, 88},
    {"MI300X", mi300x, 147444, 128, 24574, 85, 72, 675.0, 4, 176932, 256, 49148, 90},
    {"MI100", mi100, 24564, 128, 4094, 85, 72, std::nullopt, 4, 29476, 256, 8188, 90},
    {"RX 6700 XT", rx6700xt, 9204, 32, 1534, 85, 72, 189.9, 4, 11044, 64, 3068, 90},
    {"Intel iGPU", intel_igpu, std::nullopt, std::nullopt, std::nullopt, 80, 65, std::nullopt, 4,
     std::nullopt, std::nullopt, std::nullopt, 85},
};

void expect_annotated(const GpuPlan& g, const std::string& name) {
  static const std::set<std::string> prov(std::begin(kProvenanceWords), std::end(kProvenanceWords));
  static const std::set<std::string> enf(std::begin(kEnforcementWords),
                                         std::end(kEnforcementWords));
  for (const char* f : kPlanFields) {
    SCOPED_TRACE(name + " field " + f);
    ASSERT_TRUE(g.confidence.count(f));
    EXPECT_GE(g.confidence.at(f), 0.0);
    EXPECT_LE(g.confidence.at(f), 1.0);
    ASSERT_TRUE(g.rationale.count(f));
    const std::string& r = g.rationale.at(f);
    EXPECT_GT(r.size(), 10u);
    EXPECT_EQ(r.back(), '.') << r;
    ASSERT_TRUE(g.provenance.count(f));
    EXPECT_TRUE(prov.count(g.provenance.at(f))) << g.provenance.at(f);
  }
  for (const auto& [k, v] : g.enforcement) EXPECT_TRUE(enf.count(v)) << k << " " << v;
  EXPECT_EQ(g.enforcement.at("per_process_vram_cap_mb"), "advisory env");
  EXPECT_EQ(g.enforcement.at("cooldown_threshold_c"), "reactive");
  EXPECT_EQ(g.enforcement.at("resume_threshold_c"), "reactive");
  EXPECT_EQ(g.enforcement.at("power_limit_w"), "none");
}

TEST(Planner, RealSpecsEveryFieldSafeMode) {
  for (const auto& e : kExpect) {
    SCOPED_TRACE(e.name);
    GpuPlan g = one(e.spec(), PlanMode::kSafe);
    EXPECT_EQ(g.per_process_vram_cap_mb, e.cap);
    EXPECT_EQ(g.recommended_batch_size, e.batch);
    EXPECT_EQ(g.tensor_chunk_size_mb, e.chunk);
    EXPECT_EQ(g.cooldown_threshold_c, e.cool);
    EXPECT_EQ(g.resume_threshold_c, e.resume);
    EXPECT_EQ(g.fair_scheduling_policy, "round_robin");
    EXPECT_EQ(g.placement_policy, std::nullopt);
    EXPECT_FALSE(g.preemptive_throttle);
    EXPECT_EQ(g.power_limit_w, std::nullopt);
    EXPECT_EQ(g.max_concurrent_kernels, e.kernels);
    EXPECT_EQ(g.fairness_weight_per_process, 1.0);
    EXPECT_FALSE(g.utilization_heatmap_enabled);
    EXPECT_EQ(g.estimated_reclaimed_mb, std::nullopt);  // no telemetry: not measured
    EXPECT_EQ(g.dedup_buffer_count, std::nullopt);
    EXPECT_EQ(g.compression_ratio, std::nullopt);
    EXPECT_EQ(g.model, e.spec().f.model);
    EXPECT_EQ(g.device_id, e.spec().f.bus_id);
    expect_annotated(g, e.name);
  }
}

TEST(Planner, RealSpecsEveryFieldAggressiveMode) {
  for (const auto& e : kExpect) {
    SCOPED_TRACE(e.name);
    GpuPlan g = one(e.spec(), PlanMode::kAggressive);
    EXPECT_EQ(g.per_process_vram_cap_mb, e.cap_a);
    EXPECT_EQ(g.recommended_batch_size, e.batch_a);
    EXPECT_EQ(g.tensor_chunk_size_mb, e.chunk_a);
    EXPECT_EQ(g.cooldown_threshold_c, e.cool_a);
    EXPECT_EQ(g.resume_threshold_c, e.resume);
    EXPECT_EQ(g.fair_scheduling_policy, "priority_based");
    EXPECT_EQ(g.placement_policy, std::nullopt);
    EXPECT_TRUE(g.preemptive_throttle);
    EXPECT_EQ(g.power_limit_w, e.power);
    EXPECT_EQ(g.max_concurrent_kernels, e.kernels);
    EXPECT_EQ(g.fairness_weight_per_process, 1.0);
    EXPECT_TRUE(g.utilization_heatmap_enabled);
    EXPECT_EQ(g.estimated_reclaimed_mb, std::nullopt);  // no telemetry: not measured
    EXPECT_EQ(g.dedup_buffer_count, std::nullopt);
    EXPECT_EQ(g.compression_ratio, std::nullopt);
    expect_annotated(g, e.name);
  }
}

TEST(Planner, SpecExampleRationaleSentence) {
  GpuPlan g = one(h100(), PlanMode::kSafe);
  EXPECT_EQ(g.rationale.at("per_process_vram_cap_mb"),
            "75% of the 81559 MiB this GPU reports, leaving 20390 MiB for the driver and other "
            "processes.");
  EXPECT_EQ(g.provenance.at("per_process_vram_cap_mb"), "derived");
  GpuPlan a = one(h100(), PlanMode::kAggressive);
  EXPECT_EQ(a.rationale.at("per_process_vram_cap_mb"),
            "90% of the 81559 MiB this GPU reports, leaving 8156 MiB for the driver and other "
            "processes.");
  EXPECT_NE(a.rationale.at("recommended_batch_size").find("doubled in aggressive mode"),
            std::string::npos);
  EXPECT_NE(a.rationale.at("power_limit_w").find("90% of the 700 W default limit"),
            std::string::npos);
  EXPECT_NE(a.rationale.at("power_limit_w").find("range 200 W to 700 W"), std::string::npos);
  EXPECT_NE(g.rationale.at("estimated_reclaimed_mb").find("not measured"), std::string::npos);
  EXPECT_NE(g.rationale.at("compression_ratio").find("not measured"), std::string::npos);
  // The kind of the field, as in SPEC §7's example; the null value and the rationale say that
  // nothing was measured. The ratio is never "measured".
  EXPECT_EQ(g.provenance.at("estimated_reclaimed_mb"), "measured");
  EXPECT_EQ(g.provenance.at("compression_ratio"), "derived");
}

TEST(Planner, AggressiveNeverBelowSafeAndBiggerVramNeverSmaller) {
  std::vector<std::pair<int64_t, GpuPlan>> safe, aggr;
  for (const auto& e : kExpect) {
    GpuSpec s = e.spec();
    GpuPlan a = one(s, PlanMode::kAggressive), b = one(s, PlanMode::kSafe);
    SCOPED_TRACE(e.name);
    if (b.per_process_vram_cap_mb) {
      EXPECT_GT(*a.per_process_vram_cap_mb, *b.per_process_vram_cap_mb);
      EXPECT_EQ(*a.recommended_batch_size, 2 * *b.recommended_batch_size);
      EXPECT_GE(*a.tensor_chunk_size_mb, *b.tensor_chunk_size_mb);
      safe.push_back({*s.f.vram_total_mb, b});
      aggr.push_back({*s.f.vram_total_mb, a});
    }
    EXPECT_EQ(a.cooldown_threshold_c, b.cooldown_threshold_c + 5);
    EXPECT_GE(a.max_concurrent_kernels, b.max_concurrent_kernels);
  }
  for (auto* list : {&safe, &aggr}) {
    std::sort(list->begin(), list->end(),
              [](const auto& x, const auto& y) { return x.first < y.first; });
    for (size_t i = 1; i < list->size(); ++i) {
      const GpuPlan &lo = (*list)[i - 1].second, &hi = (*list)[i].second;
      EXPECT_GE(*hi.per_process_vram_cap_mb, *lo.per_process_vram_cap_mb);
      EXPECT_GE(*hi.recommended_batch_size, *lo.recommended_batch_size);
      EXPECT_GE(*hi.tensor_chunk_size_mb, *lo.tensor_chunk_size_mb);
    }
  }
}

TEST(Planner, BatchTableBoundariesInMiB) {
  EXPECT_EQ(batch_for_vram_mb(1), 8);
  EXPECT_EQ(batch_for_vram_mb(4096), 8);
  EXPECT_EQ(batch_for_vram_mb(4097), 16);
  EXPECT_EQ(batch_for_vram_mb(8192), 16);
  EXPECT_EQ(batch_for_vram_mb(8193), 32);
  EXPECT_EQ(batch_for_vram_mb(16384), 32);
  EXPECT_EQ(batch_for_vram_mb(16385), 64);
  EXPECT_EQ(batch_for_vram_mb(24576), 64);
  EXPECT_EQ(batch_for_vram_mb(24577), 128);
  GpuSpec s = make(0, "amd", "R7 240", 2048, {"sysfs", "lspci", "glxinfo"});
  GpuPlan g = one(s, PlanMode::kAggressive);
  EXPECT_EQ(g.recommended_batch_size, 16);
  EXPECT_EQ(g.tensor_chunk_size_mb, 512);  // 2048/4 = 512
  g = one(s, PlanMode::kSafe);
  EXPECT_EQ(g.recommended_batch_size, 8);
  EXPECT_EQ(g.tensor_chunk_size_mb, 512);  // 2048/8 = 256, raised to the floor
  EXPECT_NE(g.rationale.at("tensor_chunk_size_mb").find("512 MiB minimum"), std::string::npos);
}

TEST(Planner, VendorThresholds) {
  EXPECT_EQ(vendor_thermal_defaults("nvidia"), std::make_pair(83, 70));
  EXPECT_EQ(vendor_thermal_defaults("amd"), std::make_pair(85, 72));
  EXPECT_EQ(vendor_thermal_defaults("intel"), std::make_pair(80, 65));
  EXPECT_EQ(vendor_thermal_defaults("unknown"), std::make_pair(80, 65));
  GpuSpec s = make(0, "unknown", "Mystery", 8192, {"lspci"});
  GpuPlan g = one(s, PlanMode::kSafe);
  EXPECT_EQ(g.cooldown_threshold_c, 80);
  EXPECT_EQ(g.resume_threshold_c, 65);
  EXPECT_EQ(g.provenance.at("cooldown_threshold_c"), "heuristic");
  EXPECT_EQ(g.provenance.at("resume_threshold_c"), "heuristic");
  s.f.vendor.reset();
  Plan p = plan_of({s}, PlanMode::kAggressive);
  EXPECT_EQ(p.gpus[0].cooldown_threshold_c, 85);
  bool noted = false;
  for (const auto& n : p.notes) noted |= n.find("vendor is unknown") != std::string::npos;
  EXPECT_TRUE(noted);
  EXPECT_EQ(one(mi300x(), PlanMode::kSafe).provenance.at("cooldown_threshold_c"), "derived");
}

TEST(Planner, SlowdownClampAggressiveNvidia) {
  GpuSpec s = h100();
  s.f.thermal.slowdown_c = 85;
  GpuPlan safe = one(s, PlanMode::kSafe);
  EXPECT_EQ(safe.cooldown_threshold_c, 83);  // 83 <= 85-2: unchanged
  EXPECT_EQ(safe.provenance.at("cooldown_threshold_c"), "derived");
  EXPECT_NE(safe.rationale.at("cooldown_threshold_c").find("below the 85 °C"), std::string::npos);
  GpuPlan a = one(s, PlanMode::kAggressive);
  EXPECT_EQ(a.cooldown_threshold_c, 83);  // 88 clamped to 85-2
  EXPECT_EQ(a.resume_threshold_c, 70);
  EXPECT_EQ(a.provenance.at("cooldown_threshold_c"), "device");
  const std::string& r = a.rationale.at("cooldown_threshold_c");
  EXPECT_NE(r.find("would be 88 °C"), std::string::npos) << r;
  EXPECT_NE(r.find("85 °C at which this GPU slows itself down"), std::string::npos) << r;

  // SPEC §7's H100: slowdown 90 leaves aggressive 88 alone.
  s.f.thermal.slowdown_c = 90;
  EXPECT_EQ(one(s, PlanMode::kAggressive).cooldown_threshold_c, 88);
}

TEST(Planner, SlowdownClampKeepsResumeBelowCooldown) {
  GpuSpec s = mi100();
  s.f.thermal.slowdown_c = 74;  // cooldown 85 -> 72 = AMD resume 72
  GpuPlan g = one(s, PlanMode::kSafe);
  EXPECT_EQ(g.cooldown_threshold_c, 72);
  EXPECT_EQ(g.resume_threshold_c, 67);
  EXPECT_LT(g.resume_threshold_c, g.cooldown_threshold_c);
  EXPECT_NE(g.rationale.at("resume_threshold_c").find("5 °C under it"), std::string::npos);
  EXPECT_EQ(g.provenance.at("resume_threshold_c"), "device");

  s.f.thermal.slowdown_c = 20;  // implausible: ignored, with a note
  Plan p = plan_of({s}, PlanMode::kSafe);
  EXPECT_EQ(p.gpus[0].cooldown_threshold_c, 85);
  bool noted = false;
  for (const auto& n : p.notes) noted |= n.find("implausible") != std::string::npos;
  EXPECT_TRUE(noted);
}

TEST(Planner, PowerLimitClampAndSources) {
  GpuSpec s = rtx4080s();
  s.f.power_limit_default_w = 160;  // 144 < min 150
  GpuPlan g = one(s, PlanMode::kAggressive);
  EXPECT_EQ(g.power_limit_w, 150.0);
  EXPECT_NE(g.rationale.at("power_limit_w").find("raised to the device's minimum"),
            std::string::npos);
  s.f.power_limit_default_w = 500;  // 450 > max 400
  s.f.power_limit_max_w = 420;
  g = one(s, PlanMode::kAggressive);
  EXPECT_EQ(g.power_limit_w, 420.0);
  EXPECT_NE(g.rationale.at("power_limit_w").find("lowered to the device's maximum"),
            std::string::npos);
  // Without a default, the current limit is taken as the default, and it says so.
  g = one(a100_80(), PlanMode::kAggressive);
  EXPECT_EQ(g.power_limit_w, 450.0);
  EXPECT_NE(g.rationale.at("power_limit_w").find("current limit"), std::string::npos);
  EXPECT_NE(g.rationale.at("power_limit_w").find("no full min/max range"), std::string::npos);
  EXPECT_LT(g.confidence.at("power_limit_w"),
            one(h100(), PlanMode::kAggressive).confidence.at("power_limit_w"));
  // Unknown power: null, confidence 0. Safe: always null.
  g = one(mi100(), PlanMode::kAggressive);
  EXPECT_EQ(g.power_limit_w, std::nullopt);
  EXPECT_EQ(g.confidence.at("power_limit_w"), 0.0);
  EXPECT_EQ(one(h100(), PlanMode::kSafe).power_limit_w, std::nullopt);
  EXPECT_NE(one(h100(), PlanMode::kSafe).rationale.at("power_limit_w").find("(700 W)"),
            std::string::npos);
}

TEST(Planner, MaxConcurrentKernels) {
  auto k = [](std::optional<int> sm) {
    GpuSpec s = make(0, "nvidia", "X", 8192, {"nvml", "nvidia-smi", "lspci"});
    s.f.num_sm = sm;
    return one(s, PlanMode::kSafe).max_concurrent_kernels;
  };
  EXPECT_EQ(k(132), 8);
  EXPECT_EQ(k(304), 8);  // MI300X CUs
  EXPECT_EQ(k(80), 5);   // RTX 4080 SUPER
  EXPECT_EQ(k(40), 2);
  EXPECT_EQ(k(20), 2);
  EXPECT_EQ(k(std::nullopt), 4);
  EXPECT_EQ(k(0), 4);
}

TEST(Planner, UnknownOrZeroVramGivesNullsNotGuesses) {
  for (std::optional<int64_t> v : {std::optional<int64_t>(), std::optional<int64_t>(0)}) {
    GpuSpec s = make(0, "intel", "UHD", v, {"sysfs", "lspci", "glxinfo"});
    Plan p = plan_of({s}, PlanMode::kAggressive);
    const GpuPlan& g = p.gpus[0];
    for (const char* f :
         {"per_process_vram_cap_mb", "recommended_batch_size", "tensor_chunk_size_mb"}) {
      EXPECT_EQ(g.confidence.at(f), 0.0) << f;
      EXPECT_EQ(g.rationale.at(f).rfind("Unknown:", 0), 0u) << g.rationale.at(f);
    }
    EXPECT_FALSE(g.per_process_vram_cap_mb);
    EXPECT_FALSE(g.recommended_batch_size);
    EXPECT_FALSE(g.tensor_chunk_size_mb);
    if (v) {
      EXPECT_NE(g.rationale.at("per_process_vram_cap_mb").find("reported 0 MiB"),
                std::string::npos);
    }
    EXPECT_LT(p.confidence_overall, 0.5);
  }
}

TEST(Planner, ConfidenceFromSourcesAndCompleteness) {
  // >= 3 agreeing sources with VRAM known -> >= 0.7, even with nothing else known.
  GpuSpec s = make(0, "unknown", std::string(), 8192, {"a", "b", "c"});
  s.f.model.reset();
  EXPECT_GE(plan_of({s}, PlanMode::kSafe).confidence_overall, 0.7);
  EXPECT_GE(plan_of({h100()}, PlanMode::kSafe).confidence_overall, 0.7);
  // One source: lower.
  GpuSpec one_src = h100();
  one_src.detection_sources = {"nvidia-smi"};
  double c1 = plan_of({one_src}, PlanMode::kSafe).confidence_overall;
  double c3 = plan_of({h100()}, PlanMode::kSafe).confidence_overall;
  EXPECT_LT(c1, c3);
  EXPECT_LE(c1, 0.5);
  // More sources, more confidence.
  GpuSpec five = h100();
  five.detection_sources = {"nvml", "nvidia-smi", "sysfs", "cuda", "lspci"};
  EXPECT_GT(plan_of({five}, PlanMode::kSafe).confidence_overall, c3);
  // Contradicting sources lower the VRAM-based fields and the overall.
  GpuSpec conflict = h100();
  conflict.notes.push_back("sources disagree on total VRAM: using nvml 81559 MiB, lspci 81920 MiB");
  Plan pc = plan_of({conflict}, PlanMode::kSafe);
  EXPECT_LT(pc.confidence_overall, c3);
  EXPECT_LT(pc.gpus[0].confidence.at("per_process_vram_cap_mb"),
            plan_of({h100()}, PlanMode::kSafe).gpus[0].confidence.at("per_process_vram_cap_mb"));
  // The plan's confidence is its weakest GPU's.
  Plan mixed = plan_of({h100(), intel_igpu()}, PlanMode::kSafe);
  EXPECT_EQ(mixed.confidence_overall, plan_of({intel_igpu()}, PlanMode::kSafe).confidence_overall);
  EXPECT_LT(mixed.confidence_overall, 0.5);
}

TEST(Planner, NoGpuPlan) {
  Plan p = plan_of({}, PlanMode::kSafe);
  EXPECT_TRUE(p.gpus.empty());
  EXPECT_EQ(p.confidence_overall, 0.0);
  EXPECT_EQ(p.schema_version, 1);
  ASSERT_FALSE(p.notes.empty());
  EXPECT_NE(p.notes[0].find("no GPU found"), std::string::npos);
  EXPECT_EQ(p.gpu_specs_hash.size(), 16u);
}

TEST(Planner, MultiGpuEachOwnNumbersAndPlacement) {
  GpuSpec a = h100(), b = mi300x(), c = intel_igpu();
  b.index = 1;
  c.index = 2;
  Plan p = plan_of({a, b, c}, PlanMode::kSafe);
  ASSERT_EQ(p.gpus.size(), 3u);
  for (const auto& g : p.gpus) {
    EXPECT_EQ(g.placement_policy, "least_loaded_free_vram");
    EXPECT_NE(g.rationale.at("placement_policy").find("3 GPUs"), std::string::npos);
  }
  EXPECT_EQ(p.gpus[0].per_process_vram_cap_mb, 61169);
  EXPECT_EQ(p.gpus[0].cooldown_threshold_c, 83);
  EXPECT_EQ(p.gpus[1].per_process_vram_cap_mb, 147444);
  EXPECT_EQ(p.gpus[1].cooldown_threshold_c, 85);
  EXPECT_FALSE(p.gpus[2].per_process_vram_cap_mb);
  EXPECT_EQ(p.gpus[2].cooldown_threshold_c, 80);
  EXPECT_EQ(p.gpus[1].index, 1);
  // One GPU: no placement.
  EXPECT_EQ(plan_of({a}, PlanMode::kAggressive).gpus[0].placement_policy, std::nullopt);
}

PlanProcessSample proc(int64_t pid, const std::string& cmd, int gpu, int64_t mb,
                       std::optional<double> util) {
  PlanProcessSample s;
  s.pid = pid;
  s.command = cmd;
  s.user = "u";
  s.gpu_index = gpu;
  s.vram_mb = mb;
  s.utilization_pct = util;
  return s;
}

TEST(Planner, DedupAndReclaimOnlyFromMeasurements) {
  TelemetryWindow w;
  w.duration_s = 30;
  for (int t = 0; t < 3; ++t) {
    std::vector<PlanProcessSample> tick;
    tick.push_back(proc(10, "python train.py", 0, 1000, 0.0));                  // idle throughout
    tick.push_back(proc(11, "python train.py", 0, 1020, t == 1 ? 50.0 : 0.0));  // busy once
    tick.push_back(proc(12, "python train.py", 0, 1040, std::nullopt));         // unknown util
    tick.push_back(proc(13, "python train.py", 0, 2000, 0.0));  // idle, not near-equal
    tick.push_back(proc(14, "jupyter", 1, 500, 0.0));           // other GPU
    w.samples.push_back(tick);
  }
  GpuSpec b = mi300x();
  b.index = 1;
  Plan p = plan_of({h100(), b}, PlanMode::kSafe, w);
  const GpuPlan& g = p.gpus[0];
  EXPECT_EQ(g.estimated_reclaimed_mb, 3000);  // pids 10 and 13; 12 is unknown, not idle
  EXPECT_EQ(g.dedup_buffer_count, 2);         // 1000, 1020, 1040 within 5% of 1000
  ASSERT_TRUE(g.compression_ratio);
  EXPECT_DOUBLE_EQ(*g.compression_ratio, 2.94);  // 3060 / 1040
  EXPECT_EQ(g.provenance.at("estimated_reclaimed_mb"), "measured");
  // The duplication and the ratio are inferred from measured VRAM, not measured.
  EXPECT_EQ(g.provenance.at("dedup_buffer_count"), "derived");
  EXPECT_EQ(g.provenance.at("compression_ratio"), "derived");
  for (const char* f : {"estimated_reclaimed_mb", "dedup_buffer_count", "compression_ratio"})
    EXPECT_GT(g.confidence.at(f), 0.0) << f;
  EXPECT_NE(g.rationale.at("estimated_reclaimed_mb").find("10, 13"), std::string::npos);
  EXPECT_NE(g.rationale.at("estimated_reclaimed_mb").find("3 samples over 30 s"),
            std::string::npos);
  EXPECT_NE(g.rationale.at("estimated_reclaimed_mb").find("1 process (pid 12) had no utilization"),
            std::string::npos)
      << g.rationale.at("estimated_reclaimed_mb");
  EXPECT_EQ(g.rationale.at("compression_ratio").rfind("2.94: derived, not measured", 0), 0u)
      << g.rationale.at("compression_ratio");
  EXPECT_EQ(p.gpus[1].estimated_reclaimed_mb, 500);
  EXPECT_EQ(p.gpus[1].dedup_buffer_count, 0);
  EXPECT_EQ(p.gpus[1].compression_ratio, 1.0);
  EXPECT_EQ(p.gpus[1].provenance.at("compression_ratio"), "derived");

  // The same specs with no telemetry, or an empty window: null / null / null, "not measured"
  // (never a made-up 0 / 0 / 1.0).
  for (auto tel :
       {std::optional<TelemetryWindow>(), std::optional<TelemetryWindow>(TelemetryWindow{})}) {
    Plan q = plan_of({h100()}, PlanMode::kAggressive, tel);
    EXPECT_FALSE(q.gpus[0].estimated_reclaimed_mb);
    EXPECT_FALSE(q.gpus[0].dedup_buffer_count);
    EXPECT_FALSE(q.gpus[0].compression_ratio);
    for (const char* f : {"estimated_reclaimed_mb", "dedup_buffer_count", "compression_ratio"}) {
      EXPECT_EQ(q.gpus[0].confidence.at(f), 0.0) << f;
      EXPECT_EQ(q.gpus[0].rationale.at(f).rfind("null: not measured", 0), 0u) << f;
    }
    bool noted = false;
    for (const auto& n : q.notes) noted |= n.find("not measured") != std::string::npos;
    EXPECT_TRUE(noted);
    std::string js = plan_to_json_text(q);
    for (const char* f : {"estimated_reclaimed_mb", "dedup_buffer_count", "compression_ratio"})
      EXPECT_NE(js.find("\"" + std::string(f) + "\": null"), std::string::npos) << f << js;
  }
}

// Issue 10: three processes of one command at 100, 104 and 108 MiB. The rule: a group starts
// at the smallest and takes what is within 5% of it: {100, 104} and 108 alone, one duplicate.
TEST(Planner, NearEqualGroupsStartAtTheSmallest) {
  TelemetryWindow w;
  w.samples.push_back({proc(1, "worker", 0, 100, 5.0), proc(2, "worker", 0, 104, 5.0),
                       proc(3, "worker", 0, 108, 5.0)});
  GpuPlan g = plan_of({h100()}, PlanMode::kSafe, w).gpus[0];
  EXPECT_EQ(g.dedup_buffer_count, 1);
  EXPECT_EQ(g.compression_ratio, 1.96);    // 204 / 104
  EXPECT_EQ(g.estimated_reclaimed_mb, 0);  // all busy: measured, nothing idle
}

// A process NVML gave no utilization sample for is unknown, not idle: it is not counted, the
// rationale says so, and with nothing decided the reclaim estimate is null.
TEST(Planner, NoUtilizationSampleIsNotIdle) {
  TelemetryWindow w;
  for (int t = 0; t < 2; ++t)
    w.samples.push_back(
        {proc(7, "python", 0, 4096, t == 0 ? std::optional<double>(0.0) : std::nullopt)});
  GpuPlan g = plan_of({h100()}, PlanMode::kSafe, w).gpus[0];
  EXPECT_FALSE(g.estimated_reclaimed_mb) << g.rationale.at("estimated_reclaimed_mb");
  EXPECT_NE(g.rationale.at("estimated_reclaimed_mb").find("null: not measured"), std::string::npos);
  EXPECT_NE(g.rationale.at("estimated_reclaimed_mb").find("no utilization sample"),
            std::string::npos);
  EXPECT_EQ(g.dedup_buffer_count, 0);  // VRAM is known: measured

  // Next to a measured idle process, the unknown one is left out and counted.
  for (auto& tick : w.samples) tick.push_back(proc(8, "other", 0, 100, 0.0));
  g = plan_of({h100()}, PlanMode::kSafe, w).gpus[0];
  EXPECT_EQ(g.estimated_reclaimed_mb, 100);
  EXPECT_NE(g.rationale.at("estimated_reclaimed_mb").find("1 process (pid 7) had no utilization"),
            std::string::npos)
      << g.rationale.at("estimated_reclaimed_mb");
}

// Several rows of one (pid, GPU) in one tick are one sample: idle only if every row is idle,
// unknown if any row has no utilization sample; a pid on two GPUs is two processes.
TEST(Reclaim, RowsOfOnePairInATickAreOneSample) {
  TelemetryWindow w;
  for (int t = 0; t < 2; ++t)
    w.samples.push_back({proc(1, "a", 0, 100, 0.0), proc(1, "a", 0, 100, std::nullopt),
                         proc(2, "b", 0, 300, 0.0), proc(2, "b", 0, 300, 0.0),
                         proc(3, "c", 0, 50, 0.0), proc(3, "c", 0, 50, 9.0),
                         proc(2, "b", 1, 700, 0.0)});
  ReclaimAnalysis a = analyze_reclaim(w);
  ASSERT_EQ(a.gpus.size(), 2u);
  const GpuReclaim& g0 = a.gpus[0];
  EXPECT_EQ(g0.processes, 3u);
  EXPECT_EQ(g0.estimated_reclaimed_mb.value, 300);  // pid 2 only
  EXPECT_EQ(g0.no_utilization, 1u);                 // pid 1
  ASSERT_EQ(g0.idle.size(), 1u);
  EXPECT_EQ(g0.idle[0].pid, 2);
  EXPECT_EQ(a.gpus[1].estimated_reclaimed_mb.value, 700);
  EXPECT_EQ(a.for_gpu(5).dedup_buffer_count.value, std::nullopt);
  EXPECT_NE(a.for_gpu(5).dedup_buffer_count.rationale.find("no process on this GPU was seen"),
            std::string::npos);
}

TEST(Planner, NoConstantFractionOfVramInDedupFields) {
  // Bigger VRAM, same (empty) measurements: the dedup fields stay null.
  for (auto spec : {h100, mi300x, rx6700xt}) {
    GpuPlan g = one(spec(), PlanMode::kAggressive);
    EXPECT_FALSE(g.estimated_reclaimed_mb);
    EXPECT_FALSE(g.dedup_buffer_count);
    EXPECT_FALSE(g.compression_ratio);
  }
}

FieldOverride fo(const std::string& k, OverrideValue v) {
  return FieldOverride{k, std::move(v), "/etc/x.yaml", 3};
}

PlanOutcome with(std::vector<GpuSpec> specs, PlanOverrides ov, PlanMode m = PlanMode::kSafe) {
  PlanInput in;
  in.specs = std::move(specs);
  in.mode = m;
  in.overrides = std::move(ov);
  in.generated_at = "t";
  return build_plan(in);
}

TEST(Planner, OverridesApplyWithProvenanceConfigAndNotes) {
  GpuSpec b = rtx4080s();
  b.index = 1;
  b.f.uuid = "GPU-abc";
  PlanOverrides ov;
  ov.global.push_back(fo("per_process_vram_cap_mb", int64_t{12000}));
  ov.per_gpu["1"].push_back(fo("recommended_batch_size", int64_t{48}));
  ov.per_gpu["gpu-ABC"].push_back(fo("power_limit_w", 300.5));
  ov.per_gpu["7"].push_back(fo("recommended_batch_size", int64_t{8}));
  PlanOutcome o = with({h100(), b}, ov);
  ASSERT_TRUE(o.ok) << o.errors.front();
  const GpuPlan& g0 = o.plan.gpus[0];
  const GpuPlan& g1 = o.plan.gpus[1];
  EXPECT_EQ(g0.per_process_vram_cap_mb, 12000);
  EXPECT_EQ(g0.provenance.at("per_process_vram_cap_mb"), "config");
  EXPECT_EQ(g0.confidence.at("per_process_vram_cap_mb"), 1.0);
  EXPECT_NE(g0.rationale.at("per_process_vram_cap_mb").find("/etc/x.yaml:3"), std::string::npos);
  EXPECT_NE(g0.rationale.at("per_process_vram_cap_mb").find("61169"), std::string::npos);
  EXPECT_EQ(g0.recommended_batch_size, 128);
  EXPECT_EQ(g1.per_process_vram_cap_mb, 12000);
  EXPECT_EQ(g1.recommended_batch_size, 48);
  EXPECT_EQ(g1.power_limit_w, 300.5);
  EXPECT_EQ(g1.provenance.at("power_limit_w"), "config");
  int notes = 0;
  bool unmatched = false;
  for (const auto& n : o.plan.notes) {
    notes += n.find("/etc/x.yaml") != std::string::npos;
    unmatched |=
        n.find("gpus.7") != std::string::npos && n.find("matches no GPU") != std::string::npos;
  }
  EXPECT_GE(notes, 4);
  EXPECT_TRUE(unmatched);
}

TEST(Planner, OverridesTheDevicesRefuse) {
  struct Case {
    std::string key;
    OverrideValue v;
    GpuSpec (*spec)();
    std::string expect;
  };
  const Case cases[] = {
      {"per_process_vram_cap_mb", int64_t{20000}, rtx4080s, "at most 16376 MiB"},
      {"tensor_chunk_size_mb", int64_t{90000}, h100, "at most 81559 MiB"},
      {"power_limit_w", int64_t{450}, rtx4080s, "from 150 W to 400 W"},
      {"power_limit_w", 100.0, rtx4080s, "from 150 W to 400 W"},
      {"power_limit_w", int64_t{300}, mi100, "does not report its power limit range"},
  };
  for (const auto& c : cases) {
    PlanOverrides ov;
    ov.global.push_back(fo(c.key, c.v));
    PlanOutcome o = with({c.spec()}, ov);
    EXPECT_FALSE(o.ok) << c.key;
    ASSERT_EQ(o.errors.size(), 1u) << c.key;
    EXPECT_NE(o.errors[0].find(c.expect), std::string::npos) << o.errors[0];
    EXPECT_NE(o.errors[0].find("/etc/x.yaml:3"), std::string::npos) << o.errors[0];
    EXPECT_NE(o.errors[0].find(c.key), std::string::npos) << o.errors[0];
  }
  // Cooldown above the device's slowdown - 2.
  GpuSpec s = h100();
  s.f.thermal.slowdown_c = 85;
  PlanOverrides ov;
  ov.global.push_back(fo("cooldown_threshold_c", int64_t{84}));
  PlanOutcome o = with({s}, ov);
  ASSERT_FALSE(o.ok);
  EXPECT_NE(o.errors[0].find("at most 83 °C"), std::string::npos) << o.errors[0];
  // resume >= cooldown after merging (resume from the config).
  ov = {};
  ov.global.push_back(fo("resume_threshold_c", int64_t{83}));
  o = with({h100()}, ov);
  ASSERT_FALSE(o.ok);
  EXPECT_NE(o.errors[0].find("must be below cooldown_threshold_c 83"), std::string::npos)
      << o.errors[0];
  // Only cooldown set: the planner's resume is lowered to stay below it.
  ov = {};
  ov.global.push_back(fo("cooldown_threshold_c", int64_t{70}));
  o = with({h100()}, ov);
  ASSERT_TRUE(o.ok);
  EXPECT_EQ(o.plan.gpus[0].cooldown_threshold_c, 70);
  EXPECT_EQ(o.plan.gpus[0].resume_threshold_c, 65);
  // Null power in aggressive mode: leave it alone.
  ov = {};
  ov.global.push_back(fo("power_limit_w", std::monostate{}));
  o = with({h100()}, ov, PlanMode::kAggressive);
  ASSERT_TRUE(o.ok);
  EXPECT_EQ(o.plan.gpus[0].power_limit_w, std::nullopt);
  EXPECT_EQ(o.plan.gpus[0].provenance.at("power_limit_w"), "config");
}

TEST(Planner, HashIsFnv1a64OfTheCanonicalSpecJson) {
  EXPECT_EQ(fnv1a64_hex(""), "cbf29ce484222325");
  EXPECT_EQ(fnv1a64_hex("a"), "af63dc4c8601ec8c");
  EXPECT_EQ(fnv1a64_hex("foobar"), "85944171f73967e8");
  EXPECT_EQ(gpu_specs_hash({h100()}), gpu_specs_hash({h100()}));
  EXPECT_NE(gpu_specs_hash({h100()}), gpu_specs_hash({a100_80()}));
  EXPECT_EQ(plan_of({h100()}, PlanMode::kSafe).gpu_specs_hash, gpu_specs_hash({h100()}));
}

TEST(Planner, PureAndDeterministic) {
  EXPECT_EQ(plan_of({h100(), mi300x()}, PlanMode::kAggressive),
            plan_of({h100(), mi300x()}, PlanMode::kAggressive));
  Plan p = plan_of({h100()}, PlanMode::kAggressive);
  EXPECT_EQ(p.generated_at, "2026-01-01T00:00:00Z");
  EXPECT_EQ(p.mode, PlanMode::kAggressive);
  EXPECT_EQ(to_string(PlanMode::kSafe), "safe");
  EXPECT_EQ(parse_plan_mode("aggressive"), PlanMode::kAggressive);
  EXPECT_EQ(parse_plan_mode("Aggressive"), std::nullopt);
}

TEST(Planner, InvalidUtf8InModelIsReplaced) {
  GpuSpec s = h100();
  s.f.model = std::string("GPU \xff\xfe name");
  GpuPlan g = one(s, PlanMode::kSafe);
  EXPECT_EQ(*g.model, "GPU \xEF\xBF\xBD\xEF\xBF\xBD name");
}

}  // namespace
}  // namespace grey

namespace grey {
namespace {

// SPEC §9: each MIG instance gets its own cap and batch size from its own memory (the real
// H200 capture: 71424, 71424, 33280, 16384, 16384 MiB).
TEST(PlanPartitions, EachMigInstanceGetsItsOwnCapAndBatch) {
  ParseResult r = parse_nvidia_smi_table(
      test::read_fixture("nvidia-smi-table/nvidia-h200-mig-5-devices-590.48.01-idle-nge.txt"));
  ASSERT_EQ(r.devices.size(), 1u);
  GpuSpec s;
  s.f = r.devices[0].f;
  s.detection_sources = {"nvidia-smi"};
  PlanInput in;
  in.specs = {s};
  in.generated_at = "2026-12-03T00:00:00Z";
  auto out = build_plan(in);
  ASSERT_TRUE(out.ok);
  const auto& parts = out.plan.gpus[0].partitions;
  ASSERT_EQ(parts.size(), 5u);
  EXPECT_EQ(parts[0].gi_id, 2);
  EXPECT_EQ(parts[0].per_process_vram_cap_mb, 71424 * 3 / 4);
  EXPECT_EQ(parts[2].per_process_vram_cap_mb, 33280 * 3 / 4);
  EXPECT_EQ(parts[4].per_process_vram_cap_mb, 16384 * 3 / 4);
  EXPECT_EQ(parts[4].recommended_batch_size, batch_for_vram_mb(16384));
  EXPECT_EQ(parts[0].recommended_batch_size, batch_for_vram_mb(71424));
  // The whole GPU's cap stays the GPU's.
  EXPECT_EQ(out.plan.gpus[0].per_process_vram_cap_mb, 143771 * 3 / 4);

  in.mode = PlanMode::kAggressive;
  auto ag = build_plan(in);
  EXPECT_EQ(ag.plan.gpus[0].partitions[3].per_process_vram_cap_mb,
            static_cast<int64_t>(16384 * 0.90));
  EXPECT_EQ(ag.plan.gpus[0].partitions[3].recommended_batch_size, 2 * batch_for_vram_mb(16384));

  // Round trip through JSON and YAML keeps them; a GPU without MIG prints no key.
  Plan back = plan_from_json(nlohmann::json::parse(plan_to_json_text(out.plan)));
  EXPECT_EQ(back.gpus[0].partitions, parts);
  std::string err;
  auto y = plan_from_yaml_text(plan_to_yaml(out.plan), &err);
  ASSERT_TRUE(y) << err;
  EXPECT_EQ(y->gpus[0].partitions, parts);
  Plan none = out.plan;
  none.gpus[0].partitions.clear();
  EXPECT_FALSE(plan_to_json(none)["gpus"][0].contains("partitions"));
}

TEST(PlanPartitions, UnknownInstanceMemoryGivesNoCap) {
  GpuSpec s;
  s.f.vendor = "nvidia";
  s.f.vram_total_mb = 81920;
  Partition p;
  p.uuid = "MIG-1";
  s.f.partitions = {p};
  auto parts = plan_partitions(s, PlanMode::kSafe);
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(parts[0].uuid, "MIG-1");
  EXPECT_FALSE(parts[0].per_process_vram_cap_mb);
  EXPECT_FALSE(parts[0].recommended_batch_size);
}

}  // namespace
}  // namespace grey
