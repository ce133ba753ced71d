#include "plan/plan.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>
#include <sstream>
#include <type_traits>

#include "util/json_util.h"
#include "util/strings.h"

namespace grey {

namespace {

std::string num(double v, int max_decimals = 1) {
  return compact_decimal(v, max_decimals);
}

std::string mib(int64_t v) {
  return std::to_string(v) + " MiB";
}
std::string watts(double v) {
  return num(v, 1) + " W";
}
std::string deg(int v) {
  return std::to_string(v) + " °C";
}

std::optional<std::string> opt_utf8(const std::optional<std::string>& s) {
  if (!s) return std::nullopt;
  return sanitize_utf8(*s);
}

// Every string of a plan through the one UTF-8 rule (util/strings.h), so that the plan written
// (where the YAML and JSON writers would replace invalid bytes) reads back equal. Text enters a
// plan from device fields, config keys and file names, process commands and source names.
void sanitize_strings(std::string& s) {
  s = sanitize_utf8(s);
}
void sanitize_strings(std::optional<std::string>& s) {
  if (s) sanitize_utf8(*s).swap(*s);
}
template <typename V>
void sanitize_keys(std::map<std::string, V>& m) {
  std::map<std::string, V> out;
  for (auto& [k, v] : m) {
    if constexpr (std::is_same_v<V, std::string>) sanitize_strings(v);
    out[sanitize_utf8(k)] = std::move(v);
  }
  m.swap(out);
}
void sanitize_plan(PlanOutcome& o) {
  Plan& p = o.plan;
  sanitize_strings(p.generated_at);
  sanitize_strings(p.gpu_specs_hash);
  for (auto& n : p.notes) sanitize_strings(n);
  for (auto& e : o.errors) sanitize_strings(e);
  for (auto& g : p.gpus) {
    sanitize_strings(g.device_id);
    sanitize_strings(g.uuid);
    sanitize_strings(g.model);
    sanitize_strings(g.fair_scheduling_policy);
    sanitize_strings(g.placement_policy);
    sanitize_keys(g.confidence);
    sanitize_keys(g.rationale);
    sanitize_keys(g.provenance);
    sanitize_keys(g.enforcement);
  }
}

std::string vendor_of(const GpuSpec& s) {
  std::string v = s.f.vendor ? to_lower(*s.f.vendor) : "unknown";
  if (v == "nvidia" || v == "amd" || v == "intel") return v;
  return "unknown";
}

std::string vendor_label(const std::string& v) {
  if (v == "nvidia") return "NVIDIA";
  if (v == "amd") return "AMD";
  if (v == "intel") return "Intel";
  return "unknown-vendor";
}

// Confidence in what detection says about a GPU, from the number of sources that saw it.
double source_confidence(size_t n) {
  static const double table[] = {0.3, 0.5, 0.65, 0.8, 0.88, 0.92};
  return table[std::min<size_t>(n, 5)];
}

std::string gib(int64_t vram_mb) {
  return num(static_cast<double>(vram_mb) / 1024.0, 1) + " GiB";
}

std::string batch_band(int64_t vram_mb) {
  double g = static_cast<double>(vram_mb) / 1024.0;
  if (g <= 4) return "at most 4 GiB";
  if (g <= 8) return "more than 4 and at most 8 GiB";
  if (g <= 16) return "more than 8 and at most 16 GiB";
  if (g <= 24) return "more than 16 and at most 24 GiB";
  return "more than 24 GiB";
}

std::string describe(const OverrideValue& v) {
  struct V {
    std::string operator()(std::monostate) const { return "null"; }
    std::string operator()(bool b) const { return b ? "true" : "false"; }
    std::string operator()(int64_t i) const { return std::to_string(i); }
    // Up to 6 decimals for ordinary numbers; the shortest exact form for the others, so 1e308
    // reads "1e+308" and not 309 digits.
    std::string operator()(double d) const {
      return std::isfinite(d) && std::fabs(d) < 1e15 ? num(d, 6) : shortest_double(d);
    }
    std::string operator()(const std::string& s) const { return s; }
  };
  return std::visit(V{}, v);
}

std::optional<int64_t> as_int(const OverrideValue& v) {
  if (auto* i = std::get_if<int64_t>(&v)) return *i;
  if (auto* d = std::get_if<double>(&v))
    if (std::isfinite(*d) && std::floor(*d) == *d && std::fabs(*d) < 9e15)
      return static_cast<int64_t>(*d);
  return std::nullopt;
}
std::optional<double> as_double(const OverrideValue& v) {
  if (auto* i = std::get_if<int64_t>(&v)) return static_cast<double>(*i);
  if (auto* d = std::get_if<double>(&v)) return *d;
  return std::nullopt;
}

std::string value_text(const GpuPlan& p, const std::string& f) {
  auto opt_i = [](const std::optional<int64_t>& v) { return v ? std::to_string(*v) : "null"; };
  if (f == "per_process_vram_cap_mb") return opt_i(p.per_process_vram_cap_mb);
  if (f == "recommended_batch_size") return opt_i(p.recommended_batch_size);
  if (f == "tensor_chunk_size_mb") return opt_i(p.tensor_chunk_size_mb);
  if (f == "cooldown_threshold_c") return std::to_string(p.cooldown_threshold_c);
  if (f == "resume_threshold_c") return std::to_string(p.resume_threshold_c);
  if (f == "fair_scheduling_policy") return p.fair_scheduling_policy;
  if (f == "placement_policy") return p.placement_policy.value_or("null");
  if (f == "preemptive_throttle") return p.preemptive_throttle ? "true" : "false";
  if (f == "power_limit_w") return p.power_limit_w ? num(*p.power_limit_w, 1) : "null";
  if (f == "max_concurrent_kernels") return std::to_string(p.max_concurrent_kernels);
  if (f == "fairness_weight_per_process") return num(p.fairness_weight_per_process, 6);
  if (f == "utilization_heatmap_enabled") return p.utilization_heatmap_enabled ? "true" : "false";
  return "?";
}

struct GpuContext {
  const GpuSpec* spec = nullptr;
  std::string vendor;
  std::optional<int64_t> vram;
  double src_conf = 0;
  double vram_conf = 0;
  double overall = 0;
  std::optional<int> slowdown;  // plausible device slowdown temperature
};

void set(GpuPlan& p, const std::string& field, double conf, const std::string& why,
         const std::string& prov) {
  p.confidence[field] = round2(std::clamp(conf, 0.0, 1.0));
  p.rationale[field] = why;
  p.provenance[field] = prov;
}

// VRAM-derived fields: the per-process cap, the batch size and the tensor chunk size.
void plan_vram_fields(GpuPlan& p, const GpuContext& c, bool aggr) {
  const GpuSpec& s = *c.spec;
  if (c.vram) {
    const int64_t v = *c.vram;
    const int64_t cap = aggr ? static_cast<int64_t>(static_cast<double>(v) * 0.90)
                             : static_cast<int64_t>(static_cast<double>(v) * 0.75);
    p.per_process_vram_cap_mb = cap;
    set(p, "per_process_vram_cap_mb", c.vram_conf,
        std::string(aggr ? "90%" : "75%") + " of the " + mib(v) + " this GPU reports, leaving " +
            mib(v - cap) + " for the driver and other processes.",
        "derived");
    const int64_t base = batch_for_vram_mb(v);
    p.recommended_batch_size = aggr ? base * 2 : base;
    set(p, "recommended_batch_size", c.vram_conf,
        aggr ? std::to_string(base * 2) + ": the table gives " + std::to_string(base) + " for " +
                   gib(v) + " of VRAM (" + batch_band(v) + "), doubled in aggressive mode."
             : std::to_string(base) + ": the table value for " + gib(v) + " of VRAM (" +
                   batch_band(v) + ").",
        "derived");
    const int64_t raw = aggr ? v / 4 : v / 8;
    p.tensor_chunk_size_mb = std::max<int64_t>(raw, 512);
    std::string frac = aggr ? "a quarter" : "an eighth";
    set(p, "tensor_chunk_size_mb", c.vram_conf,
        raw >= 512 ? mib(raw) + ": " + frac + " of the " + mib(v) + " of VRAM."
                   : "512 MiB: " + frac + " of the " + mib(v) + " of VRAM is only " + mib(raw) +
                         ", raised to the 512 MiB minimum.",
        "derived");
  } else {
    const bool zero = s.f.vram_total_mb && *s.f.vram_total_mb <= 0;
    std::string why = zero ? "Unknown: this GPU reported " + mib(*s.f.vram_total_mb) +
                                 " of VRAM (shared or unreported memory), so "
                           : "Unknown: no source reported this GPU's total VRAM, so ";
    set(p, "per_process_vram_cap_mb", 0, why + "no cap is set rather than a guessed one.",
        "derived");
    set(p, "recommended_batch_size", 0, why + "no batch size is recommended rather than a guess.",
        "derived");
    set(p, "tensor_chunk_size_mb", 0, why + "no chunk size is recommended rather than a guess.",
        "derived");
  }
  p.enforcement["per_process_vram_cap_mb"] = "advisory env";
  p.enforcement["recommended_batch_size"] = "advisory env";
  p.enforcement["tensor_chunk_size_mb"] = "advisory env";
}

// Thermal thresholds: cooldown and resume, from the vendor defaults and the device's own
// slowdown temperature.
void plan_thermal(GpuPlan& p, const GpuContext& c, bool aggr) {
  auto [cool0, resume0] = vendor_thermal_defaults(c.vendor);
  const bool known_vendor = c.vendor != "unknown";
  int cool = aggr ? cool0 + 5 : cool0;
  int resume = resume0;
  std::string vend = known_vendor ? "the " + vendor_label(c.vendor) + " default"
                                  : "the cautious default for a GPU of unknown vendor";
  std::string cool_why =
      aggr ? deg(cool) + ": " + vend + " of " + deg(cool0) + " plus 5 °C in aggressive mode"
           : deg(cool) + ": " + vend + " for safe mode";
  std::string cool_prov = known_vendor ? "derived" : "heuristic";
  double cool_conf = known_vendor ? (c.slowdown ? 0.9 : 0.75) : 0.3;
  bool clamped = false;
  if (c.slowdown && cool > *c.slowdown - 2) {
    int lim = *c.slowdown - 2;
    cool_why = deg(lim) + ": " + vend + " would be " + deg(cool) + ", lowered to 2 °C under the " +
               deg(*c.slowdown) + " at which this GPU slows itself down";
    cool = lim;
    cool_prov = "device";
    cool_conf = c.src_conf;
    clamped = true;
  } else if (c.slowdown) {
    cool_why += ", below the " + deg(*c.slowdown) + " at which this GPU slows itself down";
  }
  p.cooldown_threshold_c = cool;
  set(p, "cooldown_threshold_c", cool_conf, cool_why + ".", cool_prov);
  std::string resume_why =
      deg(resume) + ": " + vend + "; work resumes once the GPU has cooled to it.";
  std::string resume_prov = known_vendor ? "derived" : "heuristic";
  double resume_conf = known_vendor ? 0.75 : 0.3;
  if (resume >= cool) {
    resume_why = deg(cool - 5) + ": " + vend + " of " + deg(resume) +
                 " is not below the lowered cooldown threshold of " + deg(cool) +
                 ", so resume is set 5 °C under it.";
    resume = cool - 5;
    resume_prov = "device";
    resume_conf = c.src_conf;
  } else if (clamped) {
    resume_why = deg(resume) + ": " + vend + ", still below the lowered cooldown threshold of " +
                 deg(cool) + "; work resumes once the GPU has cooled to it.";
  }
  p.resume_threshold_c = resume;
  set(p, "resume_threshold_c", resume_conf, resume_why, resume_prov);
  p.enforcement["cooldown_threshold_c"] = "reactive";
  p.enforcement["resume_threshold_c"] = "reactive";
}

// Scheduling and placement policies and the preemptive throttle.
void plan_scheduling(GpuPlan& p, bool aggr, size_t gpu_count) {
  p.fair_scheduling_policy = aggr ? "priority_based" : "round_robin";
  std::string share =
      gpu_count <= 1 ? "processes sharing this GPU" : "processes placed on this GPU";
  set(p, "fair_scheduling_policy", 0.9,
      aggr ? "priority_based: in aggressive mode " + share + " are served by priority."
           : "round_robin: in safe mode " + share + " take equal turns.",
      "heuristic");
  if (gpu_count > 1) {
    p.placement_policy = "least_loaded_free_vram";
    set(p, "placement_policy", 0.9,
        "least_loaded_free_vram: with " + std::to_string(gpu_count) +
            " GPUs, each new process goes to the GPU with the most free VRAM.",
        "derived");
  } else {
    set(p, "placement_policy", 0.9,
        "null: there is only one GPU, so nothing is placed; the scheduling policy shares it.",
        "derived");
  }
  p.preemptive_throttle = aggr;
  set(p, "preemptive_throttle", 0.9,
      aggr ? "true: aggressive mode runs closer to the heat limit, so work is throttled early "
             "as the GPU nears its cooldown threshold."
           : "false: safe mode only throttles when the cooldown threshold is reached.",
      "heuristic");
  p.enforcement["preemptive_throttle"] = "reactive";
}

// Power limit: 90% of the default (or current) limit in aggressive mode, kept in the device's
// range; none in safe mode.
void plan_power(GpuPlan& p, const GpuContext& c, bool aggr) {
  const auto& f = c.spec->f;
  std::optional<double> dflt;
  std::string dflt_what;
  if (f.power_limit_default_w && *f.power_limit_default_w > 0) {
    dflt = *f.power_limit_default_w;
    dflt_what = "default limit";
  } else if (f.power_limit_w && *f.power_limit_w > 0) {
    dflt = *f.power_limit_w;
    dflt_what =
        "current limit (no default limit is reported, so the current one is taken as the default)";
  }
  if (!aggr) {
    set(p, "power_limit_w", 0.9,
        "null: safe mode leaves the power limit as it is" +
            (dflt ? std::string(" (") + watts(*dflt) + ")." : std::string(".")),
        "heuristic");
  } else if (!dflt) {
    set(p, "power_limit_w", 0,
        "null: this GPU reports no power limit, so none is set rather than a guessed one.",
        "derived");
  } else {
    double target = std::round(*dflt * 9.0) / 10.0;  // 90%, to 0.1 W
    // Plain values with flags: GCC 12 at -O3 misreads std::optional here
    // (-Wmaybe-uninitialized false positive).
    bool has_lo = f.power_limit_min_w.has_value() && *f.power_limit_min_w > 0;
    bool has_hi = f.power_limit_max_w.has_value() && *f.power_limit_max_w > 0;
    double lo = has_lo ? *f.power_limit_min_w : 0.0;
    double hi = has_hi ? *f.power_limit_max_w : 0.0;
    if (has_lo && has_hi && lo > hi) has_lo = has_hi = false;
    std::string why = "90% of the " + watts(*dflt) + " " + dflt_what;
    double conf = c.src_conf * (dflt_what == "default limit" ? 1.0 : 0.7);
    double value = target;
    if (has_lo && value < lo) {
      value = lo;
      why = watts(value) + ": " + why + " is " + watts(target) + ", raised to the device's minimum";
    } else if (has_hi && value > hi) {
      value = hi;
      why =
          watts(value) + ": " + why + " is " + watts(target) + ", lowered to the device's maximum";
    } else {
      why = watts(value) + ": " + why;
    }
    if (has_lo && has_hi) {
      why += " (range " + watts(lo) + " to " + watts(hi) + ").";
    } else {
      why += "; the device reports no full min/max range, so it could not be checked against one.";
      conf *= 0.7;
    }
    p.power_limit_w = value;
    set(p, "power_limit_w", conf, why, "derived");
  }
  p.enforcement["power_limit_w"] = "none";
}

// Fairness: concurrent kernels from the SM/CU count, per-process weight, heatmap.
void plan_fairness(GpuPlan& p, const GpuContext& c, bool aggr) {
  const auto& f = c.spec->f;
  if (f.num_sm && *f.num_sm > 0) {
    int q = *f.num_sm / 16;
    p.max_concurrent_kernels = std::min(8, std::max(2, q));
    std::string why = std::to_string(p.max_concurrent_kernels) + ": " + std::to_string(*f.num_sm) +
                      " SMs/CUs / 16 = " + std::to_string(q);
    if (q > 8) why += ", capped at 8";
    if (q < 2) why += ", raised to the minimum of 2";
    set(p, "max_concurrent_kernels", c.src_conf, why + ".", "derived");
  } else {
    p.max_concurrent_kernels = 4;
    set(p, "max_concurrent_kernels", 0.4,
        "4: the number of SMs/CUs is unknown, so the middle value 4 is used.", "heuristic");
  }
  p.enforcement["max_concurrent_kernels"] = "advisory env";
  p.fairness_weight_per_process = 1.0;
  set(p, "fairness_weight_per_process", 0.8,
      "1.0: every process gets an equal share; no process priorities were given.", "heuristic");
  p.utilization_heatmap_enabled = aggr;
  set(p, "utilization_heatmap_enabled", 0.9,
      aggr ? "true: aggressive mode records a utilization heatmap to find idle and duplicate work."
           : "false: safe mode records no utilization heatmap.",
      "heuristic");
}

// Dedup / reclaim: plan/reclaim.h's analysis, the one the daemon's artifacts use too.
void plan_reclaim(GpuPlan& p, const GpuSpec& s, const ReclaimAnalysis& reclaim) {
  GpuReclaim r = reclaim.for_gpu(s.index);
  auto put = [&](const char* field, const auto& fig, auto& out) {
    out = fig.value;
    set(p, field, fig.confidence, fig.rationale, fig.provenance);
  };
  put("estimated_reclaimed_mb", r.estimated_reclaimed_mb, p.estimated_reclaimed_mb);
  put("dedup_buffer_count", r.dedup_buffer_count, p.dedup_buffer_count);
  put("compression_ratio", r.compression_ratio, p.compression_ratio);
}

GpuPlan plan_gpu(const GpuContext& c, PlanMode mode, size_t gpu_count,
                 const ReclaimAnalysis& reclaim) {
  const GpuSpec& s = *c.spec;
  const bool aggr = mode == PlanMode::kAggressive;
  GpuPlan p;
  p.index = s.index;
  p.device_id = opt_utf8(s.f.bus_id);
  p.uuid = opt_utf8(s.f.uuid);
  p.model = opt_utf8(s.f.model);
  plan_vram_fields(p, c, aggr);
  plan_thermal(p, c, aggr);
  plan_scheduling(p, aggr, gpu_count);
  plan_power(p, c, aggr);
  plan_fairness(p, c, aggr);
  plan_reclaim(p, s, reclaim);
  return p;
}

// Applies one override to one GPU plan. Returns an error message, empty when applied.
std::string apply_override(GpuPlan& p, const GpuContext& c, const FieldOverride& o,
                           const std::string& scope, std::vector<std::string>& notes) {
  const std::string& k = o.field;
  const std::string where = o.file + (o.line > 0 ? ":" + std::to_string(o.line) : "");
  const std::string gpu = "GPU " + std::to_string(p.index);
  auto err = [&](const std::string& allowed) {
    return where + ": " + k + " = " + describe(o.value) + " (" + scope + ") does not fit " + gpu +
           ": allowed is " + allowed + ".";
  };
  const std::string before = value_text(p, k);
  if (k == "per_process_vram_cap_mb" || k == "tensor_chunk_size_mb") {
    auto v = as_int(o.value);
    if (!v) return err("an integer number of MiB");
    if (*v < 1) return err("at least 1");
    if (*v > kMibMax) return err("at most " + mib(kMibMax));
    if (c.vram && *v > *c.vram)
      return err("at most " + mib(*c.vram) + ", the VRAM this GPU reports");
    (k == "per_process_vram_cap_mb" ? p.per_process_vram_cap_mb : p.tensor_chunk_size_mb) = *v;
    if (!c.vram)
      notes.push_back(gpu + ": " + k + " = " + std::to_string(*v) + " from " + where +
                      " could not be checked against VRAM, which this GPU does not report.");
  } else if (k == "recommended_batch_size") {
    auto v = as_int(o.value);
    if (!v || *v < kBatchMin || *v > kBatchMax) return err("an integer from 1 to 65536");
    p.recommended_batch_size = *v;
  } else if (k == "cooldown_threshold_c" || k == "resume_threshold_c") {
    auto v = as_int(o.value);
    if (!v || *v < kTempMin || *v > kTempMax) return err("an integer from 30 to 110 (°C)");
    if (k == "cooldown_threshold_c" && c.slowdown && *v > *c.slowdown - 2)
      return err("at most " + deg(*c.slowdown - 2) + ", 2 °C under the " + deg(*c.slowdown) +
                 " at which this GPU slows itself down");
    (k == "cooldown_threshold_c" ? p.cooldown_threshold_c : p.resume_threshold_c) =
        static_cast<int>(*v);
  } else if (k == "fair_scheduling_policy") {
    auto* s = std::get_if<std::string>(&o.value);
    if (!s || (*s != "round_robin" && *s != "priority_based"))
      return err("one of round_robin, priority_based");
    p.fair_scheduling_policy = *s;
  } else if (k == "placement_policy") {
    if (std::holds_alternative<std::monostate>(o.value)) {
      p.placement_policy.reset();
    } else {
      auto* s = std::get_if<std::string>(&o.value);
      if (!s || *s != "least_loaded_free_vram") return err("least_loaded_free_vram or null");
      p.placement_policy = *s;
    }
  } else if (k == "preemptive_throttle" || k == "utilization_heatmap_enabled") {
    auto* b = std::get_if<bool>(&o.value);
    if (!b) return err("true or false");
    (k == "preemptive_throttle" ? p.preemptive_throttle : p.utilization_heatmap_enabled) = *b;
  } else if (k == "power_limit_w") {
    if (std::holds_alternative<std::monostate>(o.value)) {
      p.power_limit_w.reset();
    } else {
      auto v = as_double(o.value);
      if (!v || !std::isfinite(*v) || *v <= 0) return err("a positive number of watts, or null");
      auto lo = c.spec->f.power_limit_min_w, hi = c.spec->f.power_limit_max_w;
      if (!lo || !hi)
        return err(
            "null only: this GPU does not report its power limit range, so a limit "
            "cannot be checked");
      if (*v < *lo || *v > *hi)
        return err("from " + watts(*lo) + " to " + watts(*hi) + ", the range this GPU reports");
      p.power_limit_w = *v;
    }
  } else if (k == "max_concurrent_kernels") {
    auto v = as_int(o.value);
    if (!v || *v < kKernelsMin || *v > kKernelsMax) return err("an integer from 1 to 128");
    p.max_concurrent_kernels = static_cast<int>(*v);
  } else if (k == "fairness_weight_per_process") {
    auto v = as_double(o.value);
    if (!v || !std::isfinite(*v) || *v <= 0 || *v > kWeightMax)
      return err("a number greater than 0 and at most 100");
    p.fairness_weight_per_process = *v;
  } else {
    return where + ": " + k + " cannot be set in a config file.";
  }
  p.confidence[k] = 1.0;
  p.provenance[k] = "config";
  std::string v = value_text(p, k);
  p.rationale[k] =
      v + ": set in " + where + " (" + scope + "); the planner's own value was " + before + ".";
  notes.push_back(gpu + ": " + k + " = " + v + " from " + where + " (" + scope +
                  "; the planner's value was " + before + ").");
  return "";
}

}  // namespace

std::string to_string(PlanMode m) {
  return m == PlanMode::kAggressive ? "aggressive" : "safe";
}

std::optional<PlanMode> parse_plan_mode(std::string_view s) {
  if (s == "safe") return PlanMode::kSafe;
  if (s == "aggressive") return PlanMode::kAggressive;
  return std::nullopt;
}

std::string fnv1a64_hex(std::string_view data) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char ch : data) {
    h ^= ch;
    h *= 0x100000001b3ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::string gpu_specs_hash(const std::vector<GpuSpec>& specs) {
  return fnv1a64_hex(dump_json(specs_to_json(specs)));
}

std::vector<PartitionPlan> plan_partitions(const GpuSpec& s, PlanMode mode) {
  const bool aggr = mode == PlanMode::kAggressive;
  std::vector<PartitionPlan> out;
  for (const auto& part : s.f.partitions) {
    PartitionPlan pp;
    pp.gi_id = part.gi_id;
    pp.ci_id = part.ci_id;
    pp.profile = part.profile;
    pp.uuid = part.uuid;
    pp.memory_total_mb = part.memory_total_mb;
    if (part.memory_total_mb && *part.memory_total_mb > 0 && *part.memory_total_mb <= kMibMax) {
      const int64_t v = *part.memory_total_mb;
      pp.per_process_vram_cap_mb =
          static_cast<int64_t>(static_cast<double>(v) * (aggr ? 0.90 : 0.75));
      const int64_t base = batch_for_vram_mb(v);
      pp.recommended_batch_size = aggr ? base * 2 : base;
    }
    out.push_back(std::move(pp));
  }
  return out;
}

int64_t batch_for_vram_mb(int64_t vram_mb) {
  // Compare in MiB: "<= N GiB" is "<= N*1024 MiB".
  if (vram_mb <= 4 * 1024) return 8;
  if (vram_mb <= 8 * 1024) return 16;
  if (vram_mb <= 16 * 1024) return 32;
  if (vram_mb <= 24 * 1024) return 64;
  return 128;
}

std::pair<int, int> vendor_thermal_defaults(const std::string& vendor) {
  std::string v = to_lower(vendor);
  if (v == "nvidia") return {83, 70};
  if (v == "amd") return {85, 72};
  if (v == "intel") return {80, 65};
  return {80, 65};
}

namespace {

// What the planner knows of one GPU and how sure it is; notes name what is missing or doubtful.
GpuContext gpu_context(const GpuSpec& s, std::vector<std::string>& notes) {
  GpuContext c;
  c.spec = &s;
  c.vendor = vendor_of(s);
  const std::string gpu = "GPU " + std::to_string(s.index);
  if (s.f.vram_total_mb && *s.f.vram_total_mb > 0) c.vram = *s.f.vram_total_mb;
  std::set<std::string> srcs(s.detection_sources.begin(), s.detection_sources.end());
  c.src_conf = source_confidence(srcs.size());
  bool conflict = false;
  for (const auto& n : s.notes)
    if (contains(n, "disagree on total VRAM")) conflict = true;
  c.vram_conf = c.vram ? c.src_conf * (conflict ? 0.75 : 1.0) : 0.0;
  if (s.f.thermal.slowdown_c) {
    int sd = *s.f.thermal.slowdown_c;
    if (sd >= kSlowdownPlausibleMin && sd <= kSlowdownPlausibleMax)
      c.slowdown = sd;
    else
      notes.push_back(gpu + ": the reported slowdown temperature " + deg(sd) +
                      " is implausible and was ignored.");
  }
  int known = 0;
  known += c.vendor != "unknown";
  known += s.f.model.has_value();
  known += s.f.num_sm && *s.f.num_sm > 0;
  known += c.slowdown.has_value();
  known += (s.f.power_limit_default_w || s.f.power_limit_w) ? 1 : 0;
  double completeness = known / 5.0;
  c.overall = c.vram ? c.vram_conf * (0.9 + 0.1 * completeness) : std::min(0.4, c.src_conf * 0.5);
  c.overall = round2(c.overall);

  if (!c.vram)
    notes.push_back(gpu +
                    ": total VRAM is unknown, so its VRAM cap, batch size and "
                    "chunk size are null.");
  if (c.vendor == "unknown")
    notes.push_back(gpu +
                    ": the vendor is unknown; the cautious 80/65 °C thermal "
                    "defaults are used.");
  if (srcs.size() <= 1)
    notes.push_back(gpu +
                    (srcs.empty() ? " was reported by no named source"
                                  : " was seen by one source only (" + *srcs.begin() + ")") +
                    "; confidence is lower.");
  if (conflict)
    notes.push_back(gpu +
                    ": sources disagree on total VRAM (see `grey-gpu-opt detect "
                    "--explain`); the VRAM-based numbers are less certain.");
  return c;
}

// A CUDA cap mechanism on this machine (shim, MPS) enforces an NVIDIA GPU's VRAM cap for
// programs started with `run --enforce-cap`.
void note_cuda_cap_tier(GpuPlan& p, const GpuContext& c, const PlanInput& in) {
  if (!in.cuda_cap_tier.empty() && c.vendor == "nvidia" && p.per_process_vram_cap_mb &&
      *p.per_process_vram_cap_mb > 0) {
    p.enforcement["per_process_vram_cap_mb"] = in.cuda_cap_tier;
    p.rationale["per_process_vram_cap_mb"] +=
        " Enforced (" + in.cuda_cap_tier + ") for programs started with `grey-gpu-opt run " +
        "--enforce-cap`" + (in.cuda_cap_how.empty() ? "" : " (" + in.cuda_cap_how + ")") +
        "; other programs only see it as GREY_VRAM_CAP_MB (advisory).";
  }
}

// After the overrides, resume must stay below cooldown: an override that breaks this is an
// error; a cooldown lowered by the config drags the planner's resume 5 °C under it.
void keep_resume_below_cooldown(GpuPlan& p, const std::string& idx,
                                const std::set<std::string>& touched,
                                std::vector<std::string>& errors, std::vector<std::string>& notes) {
  if (p.resume_threshold_c < p.cooldown_threshold_c) return;
  if (touched.count("resume_threshold_c") || !touched.count("cooldown_threshold_c")) {
    errors.push_back("GPU " + idx + ": resume_threshold_c " + std::to_string(p.resume_threshold_c) +
                     " must be below cooldown_threshold_c " +
                     std::to_string(p.cooldown_threshold_c) +
                     " after the config is applied; allowed is a resume threshold of at "
                     "most " +
                     std::to_string(p.cooldown_threshold_c - 1) + ".");
  } else {
    int r = std::max(kTempMin, p.cooldown_threshold_c - 5);
    if (r >= p.cooldown_threshold_c) {
      errors.push_back("GPU " + idx + ": cooldown_threshold_c " +
                       std::to_string(p.cooldown_threshold_c) +
                       " leaves no room for a resume threshold of at least 30 °C below "
                       "it; allowed is a cooldown threshold of at least 31.");
    } else {
      std::string before = std::to_string(p.resume_threshold_c);
      p.resume_threshold_c = r;
      p.provenance["resume_threshold_c"] = "derived";
      p.confidence["resume_threshold_c"] = 1.0;
      p.rationale["resume_threshold_c"] =
          deg(r) + ": 5 °C under the cooldown threshold of " + deg(p.cooldown_threshold_c) +
          " set in the config (the planner's " + before + " °C would not be below it).";
      notes.push_back("GPU " + idx + ": resume_threshold_c lowered to " + std::to_string(r) +
                      " to stay below the configured cooldown "
                      "threshold.");
    }
  }
}

// Overrides: global, then per GPU by index, then by uuid (the more specific wins). Sections of
// the config that match no GPU become notes.
void apply_overrides(Plan& plan, const std::vector<GpuContext>& ctx, const PlanOverrides& ov,
                     std::vector<std::string>& errors) {
  std::set<std::string> matched;
  for (size_t i = 0; i < plan.gpus.size(); ++i) {
    GpuPlan& p = plan.gpus[i];
    const GpuContext& c = ctx[i];
    std::set<std::string> touched;
    auto run = [&](const std::vector<FieldOverride>& list, const std::string& scope) {
      for (const auto& o : list) {
        std::string e = apply_override(p, c, o, scope, plan.notes);
        if (!e.empty())
          errors.push_back(e);
        else
          touched.insert(o.field);
      }
    };
    run(ov.global, "global");
    std::string idx = std::to_string(p.index);
    if (auto it = ov.per_gpu.find(idx); it != ov.per_gpu.end()) {
      matched.insert(it->first);
      run(it->second, "gpus." + idx);
    }
    if (p.uuid)
      for (const auto& [key, list] : ov.per_gpu)
        if (key != idx && to_lower(key) == to_lower(*p.uuid)) {
          matched.insert(key);
          run(list, "gpus." + key);
        }
    keep_resume_below_cooldown(p, idx, touched, errors, plan.notes);
  }
  for (const auto& [key, list] : ov.per_gpu) {
    if (matched.count(key)) continue;
    auto f = ov.per_gpu_file.find(key);
    plan.notes.push_back("config section gpus." + key +
                         (f != ov.per_gpu_file.end() ? " in " + f->second : std::string()) +
                         " matches no GPU (by index or uuid) and was not used.");
  }
}

}  // namespace

PlanOutcome build_plan(const PlanInput& in) {
  PlanOutcome out;
  Plan& plan = out.plan;
  plan.mode = in.mode;
  plan.generated_at = in.generated_at;
  plan.gpu_specs_hash = gpu_specs_hash(in.specs);

  if (in.specs.empty()) {
    plan.notes.push_back(
        "no GPU found: the plan is empty; run `grey-gpu-opt detect --explain` to see what each "
        "source saw.");
  }
  if (!in.telemetry || in.telemetry->samples.empty()) {
    if (!in.specs.empty())
      plan.notes.push_back(
          "estimated_reclaimed_mb, dedup_buffer_count and compression_ratio are not measured: no "
          "process telemetry was given.");
  }

  std::vector<GpuContext> ctx;
  double overall = in.specs.empty() ? 0.0 : 1.0;
  for (const auto& s : in.specs) {
    ctx.push_back(gpu_context(s, plan.notes));
    overall = std::min(overall, ctx.back().overall);
  }
  plan.confidence_overall = round2(overall);

  const ReclaimAnalysis reclaim = analyze_reclaim(in.telemetry);
  for (const auto& c : ctx) {
    plan.gpus.push_back(plan_gpu(c, in.mode, in.specs.size(), reclaim));
    plan.gpus.back().partitions = plan_partitions(*c.spec, in.mode);
    note_cuda_cap_tier(plan.gpus.back(), c, in);
  }
  apply_overrides(plan, ctx, in.overrides, out.errors);
  sanitize_plan(out);
  out.ok = out.errors.empty();
  return out;
}

}  // namespace grey
