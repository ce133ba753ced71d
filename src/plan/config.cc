#include "plan/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "util/state_dir.h"
#include "util/strings.h"

namespace grey {

namespace {

enum class Kind { kNull, kBool, kInt, kFloat, kString, kList, kMap };

struct Scalar {
  Kind kind = Kind::kNull;
  OverrideValue value;
  std::string shown;  // as it reads in the file
};

// Text from the file as it goes into a message: at most 80 bytes, control characters as spaces,
// and valid UTF-8 (a cut through a multi-byte character or an invalid byte becomes U+FFFD).
std::string shorten(std::string s) {
  if (s.size() > 80) s = s.substr(0, 77) + "...";
  for (char& c : s)
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  return sanitize_utf8(s);
}

Scalar classify(const YAML::Node& n) {
  Scalar r;
  switch (n.Type()) {
    case YAML::NodeType::Sequence:
      r.kind = Kind::kList;
      r.shown = "a list";
      return r;
    case YAML::NodeType::Map:
      r.kind = Kind::kMap;
      r.shown = "a mapping";
      return r;
    case YAML::NodeType::Scalar:
      break;
    default:
      r.shown = "null (empty)";
      return r;
  }
  const std::string& s = n.Scalar();
  if (n.Tag() == "!") {
    r.kind = Kind::kString;
    r.value = s;
    r.shown = "\"" + shorten(s) + "\"";
    return r;
  }
  r.shown = shorten(s);
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") {
    r.kind = Kind::kNull;
    return r;
  }
  if (s == "true" || s == "True" || s == "TRUE") {
    r.kind = Kind::kBool;
    r.value = true;
    return r;
  }
  if (s == "false" || s == "False" || s == "FALSE") {
    r.kind = Kind::kBool;
    r.value = false;
    return r;
  }
  if (s.find_first_not_of("+-0123456789") == std::string::npos)
    if (auto i = parse_int(s)) {
      r.kind = Kind::kInt;
      r.value = *i;
      return r;
    }
  if (s.find_first_not_of("+-0123456789.eE") == std::string::npos)
    if (auto d = parse_double(s)) {
      r.kind = Kind::kFloat;
      r.value = *d;
      return r;
    }
  r.kind = Kind::kString;
  r.value = s;
  return r;
}

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::kNull:
      return "null";
    case Kind::kBool:
      return "a boolean";
    case Kind::kInt:
      return "an integer";
    case Kind::kFloat:
      return "a decimal number";
    case Kind::kString:
      return "a string";
    case Kind::kList:
      return "a list";
    case Kind::kMap:
      return "a mapping";
  }
  return "?";
}

// The settable fields and what each allows.
struct Rule {
  const char* key;
  const char* allowed;
  // Returns true when the value is acceptable.
  bool (*check)(const Scalar&);
};

bool int_in(const Scalar& s, int64_t lo, int64_t hi) {
  if (s.kind != Kind::kInt) return false;
  int64_t v = std::get<int64_t>(s.value);
  return v >= lo && v <= hi;
}
bool is_number(const Scalar& s) {
  return s.kind == Kind::kInt || s.kind == Kind::kFloat;
}
double number(const Scalar& s) {
  return s.kind == Kind::kInt ? static_cast<double>(std::get<int64_t>(s.value))
                              : std::get<double>(s.value);
}
bool str_in(const Scalar& s, std::initializer_list<const char*> words) {
  if (s.kind != Kind::kString) return false;
  const auto& v = std::get<std::string>(s.value);
  for (const char* w : words)
    if (v == w) return true;
  return false;
}

const Rule kRules[] = {
    {"per_process_vram_cap_mb", "an integer number of MiB, at least 1 and at most the GPU's VRAM",
     [](const Scalar& s) { return int_in(s, 1, kMibMax); }},
    {"recommended_batch_size", "an integer from 1 to 65536",
     [](const Scalar& s) { return int_in(s, kBatchMin, kBatchMax); }},
    {"tensor_chunk_size_mb", "an integer number of MiB, at least 1",
     [](const Scalar& s) { return int_in(s, 1, kMibMax); }},
    {"cooldown_threshold_c", "an integer from 30 to 110 (°C)",
     [](const Scalar& s) { return int_in(s, kTempMin, kTempMax); }},
    {"resume_threshold_c", "an integer from 30 to 110 (°C), below cooldown_threshold_c",
     [](const Scalar& s) { return int_in(s, kTempMin, kTempMax); }},
    {"fair_scheduling_policy", "one of round_robin, priority_based",
     [](const Scalar& s) {
       return str_in(s, {"round_robin", "priority_based"});
     }},
    {"placement_policy", "least_loaded_free_vram or null",
     [](const Scalar& s) {
       return s.kind == Kind::kNull || str_in(s, {"least_loaded_free_vram"});
     }},
    {"preemptive_throttle", "true or false", [](const Scalar& s) { return s.kind == Kind::kBool; }},
    {"power_limit_w", "a positive number of watts within the GPU's power limit range, or null",
     [](const Scalar& s) {
       return s.kind == Kind::kNull || (is_number(s) && number(s) > 0 && number(s) < kPowerMaxW);
     }},
    {"max_concurrent_kernels", "an integer from 1 to 128",
     [](const Scalar& s) { return int_in(s, kKernelsMin, kKernelsMax); }},
    {"fairness_weight_per_process", "a number greater than 0 and at most 100",
     [](const Scalar& s) { return is_number(s) && number(s) > 0 && number(s) <= kWeightMax; }},
    {"utilization_heatmap_enabled", "true or false",
     [](const Scalar& s) { return s.kind == Kind::kBool; }},
};

const Rule* rule_for(const std::string& key) {
  for (const auto& r : kRules)
    if (key == r.key) return &r;
  return nullptr;
}

bool is_measured_field(const std::string& k) {
  return k == "estimated_reclaimed_mb" || k == "dedup_buffer_count" || k == "compression_ratio";
}

std::string keys_list() {
  std::string s;
  for (const auto& k : config_keys()) s += (s.empty() ? "" : ", ") + k;
  return s;
}

struct Parser {
  std::string file;
  ConfigResult res;

  std::string at(const YAML::Node& key) const {
    return file + ":" + std::to_string(key.Mark().line + 1);
  }

  void error(const std::string& msg) { res.errors.push_back(msg); }

  // Parses the fields of one section (top level or one GPU). `prefix` is "" or "gpus.X.".
  void section(const YAML::Node& map, const std::string& prefix, bool top,
               std::vector<FieldOverride>& out) {
    std::map<std::string, int> seen;
    std::optional<std::pair<int64_t, int>> cool, resume;  // value, line
    for (const auto& kv : map) {
      const YAML::Node& k = kv.first;
      if (!k.IsScalar()) {
        error(at(k) + ": " + prefix + "a key is " + kind_name(classify(k).kind) +
              "; keys must be plain names such as per_process_vram_cap_mb.");
        continue;
      }
      const std::string key = k.Scalar();
      const int line = k.Mark().line + 1;
      if (auto it = seen.find(key); it != seen.end()) {
        error(at(k) + ": " + prefix + key + " appears twice (lines " + std::to_string(it->second) +
              " and " + std::to_string(line) + "); allowed is one value per key.");
        continue;
      }
      seen[key] = line;
      Scalar v = classify(kv.second);
      if (key == "gpus") {
        if (!top) {
          error(at(k) + ": " + prefix +
                "gpus cannot be nested inside a GPU section; allowed "
                "there are the plan fields.");
        } else {
          gpus(kv.second, k);
        }
        continue;
      }
      if (key == "mode") {
        if (!top) {
          error(at(k) + ": " + prefix + "mode = " + v.shown +
                ": mode can only be set at the top level, for every GPU at once.");
        } else if (!str_in(v, {"safe", "aggressive"})) {
          error(at(k) + ": mode = " + v.shown + " is not allowed; allowed: safe or aggressive.");
        } else {
          res.overrides.mode = parse_plan_mode(std::get<std::string>(v.value));
          res.overrides.mode_file = file;
        }
        continue;
      }
      if (key == "signal_over_cap") {
        // The daemon's switch (SPEC §4): signal processes above their VRAM cap. Not a plan
        // field; validated here so one config file serves both.
        if (!top)
          error(at(k) + ": " + prefix + "signal_over_cap = " + v.shown +
                ": signal_over_cap can only be set at the top level.");
        else if (v.kind != Kind::kBool)
          error(at(k) + ": signal_over_cap = " + v.shown +
                " is not allowed; allowed: true or false.");
        continue;
      }
      if (is_measured_field(key)) {
        error(at(k) + ": " + prefix + key + " = " + v.shown +
              ": this field is measured from process telemetry and cannot be set in a config "
              "file.");
        continue;
      }
      const Rule* r = rule_for(key);
      if (!r) {
        std::string near = nearest_key(key, config_keys());
        error(at(k) + ": unknown key " + prefix + shorten(key) + " (value " + v.shown + ")" +
              (near.empty() ? "" : "; did you mean " + near + "?") +
              " Allowed keys: " + keys_list() + ".");
        continue;
      }
      if (!r->check(v)) {
        std::string what = v.kind == Kind::kString || v.kind == Kind::kBool
                               ? std::string(" (") + kind_name(v.kind) + ")"
                               : "";
        error(at(k) + ": " + prefix + key + " = " + v.shown + what +
              " is not allowed; allowed: " + r->allowed + ".");
        continue;
      }
      if (key == "cooldown_threshold_c") cool = {std::get<int64_t>(v.value), line};
      if (key == "resume_threshold_c") resume = {std::get<int64_t>(v.value), line};
      out.push_back(FieldOverride{key, v.value, file, line});
    }
    if (cool && resume && resume->first >= cool->first)
      error(file + ":" + std::to_string(resume->second) + ": " + prefix + "resume_threshold_c = " +
            std::to_string(resume->first) + " is not allowed; allowed: below " + prefix +
            "cooldown_threshold_c = " + std::to_string(cool->first) + " (line " +
            std::to_string(cool->second) + "), so at most " + std::to_string(cool->first - 1) +
            ".");
  }

  void gpus(const YAML::Node& n, const YAML::Node& key) {
    if (n.IsNull()) return;
    if (!n.IsMap()) {
      error(at(key) + ": gpus = " + classify(n).shown +
            " is not allowed; allowed: a mapping from GPU index (\"0\") or uuid to fields.");
      return;
    }
    std::map<std::string, int> seen;
    for (const auto& kv : n) {
      const YAML::Node& k = kv.first;
      if (!k.IsScalar() || k.Scalar().empty()) {
        error(at(k) + ": a key under gpus is " + classify(k).shown +
              "; allowed: a GPU index (\"0\") or uuid.");
        continue;
      }
      // A key reaches the plan's notes: the UTF-8 rule applies from here on.
      std::string id = sanitize_utf8(k.Scalar());
      if (id.find_first_not_of("0123456789") == std::string::npos) {
        auto i = parse_int(id);
        if (!i || *i > 1000000) {
          error(at(k) + ": gpus." + shorten(id) +
                " is not a valid GPU index; allowed: 0 to "
                "1000000 or a uuid.");
          continue;
        }
        id = std::to_string(*i);
      } else if (id.find_first_of("+-") == 0 && parse_int(id)) {
        error(at(k) + ": gpus." + shorten(id) +
              " is not a valid GPU index; allowed: 0 or more, "
              "or a uuid.");
        continue;
      }
      const int line = k.Mark().line + 1;
      if (auto it = seen.find(id); it != seen.end()) {
        error(at(k) + ": gpus." + shorten(id) + " appears twice (lines " +
              std::to_string(it->second) + " and " + std::to_string(line) +
              "); allowed is one section per GPU.");
        continue;
      }
      seen[id] = line;
      const std::string prefix = "gpus." + shorten(id) + ".";
      if (kv.second.IsNull()) continue;
      if (!kv.second.IsMap()) {
        error(at(k) + ": gpus." + shorten(id) + " = " + classify(kv.second).shown +
              " is not allowed; allowed: a mapping of plan fields, e.g. {recommended_batch_size: "
              "64}.");
        continue;
      }
      auto& list = res.overrides.per_gpu[id];
      section(kv.second, prefix, false, list);
      res.overrides.per_gpu_file[id] = file;
    }
  }
};

}  // namespace

const std::vector<std::string>& config_keys() {
  static const std::vector<std::string> keys = [] {
    std::vector<std::string> k{"mode", "gpus"};
    for (const auto& r : kRules) k.push_back(r.key);
    k.push_back("signal_over_cap");  // the daemon's switch
    return k;
  }();
  return keys;
}

size_t levenshtein(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string nearest_key(const std::string& key, const std::vector<std::string>& candidates) {
  if (key.size() > 200) return "";
  std::string lk = to_lower(key);
  std::string best;
  size_t best_d = SIZE_MAX;
  for (const auto& c : candidates) {
    size_t d = levenshtein(lk, c);
    if (d < best_d) best_d = d, best = c;
  }
  size_t limit = std::max<size_t>(2, best.size() / 3);
  return best_d <= limit ? best : "";
}

ConfigResult parse_config_text(const std::string& text, const std::string& file) {
  Parser p;
  p.file = file;
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    p.error(file + ": invalid YAML at line " + std::to_string(e.mark.line + 1) + ", column " +
            std::to_string(e.mark.column + 1) + ": " + e.msg +
            "; allowed: a YAML mapping of "
            "plan field names to values.");
    return p.res;
  } catch (const std::exception& e) {
    p.error(file + ": cannot read it as YAML: " + e.what());
    return p.res;
  }
  try {
    if (root.IsNull()) {
      p.res.ok = true;
      return p.res;
    }
    if (!root.IsMap()) {
      p.error(file + ":" + std::to_string(root.Mark().line + 1) + ": the top level is " +
              classify(root).shown +
              "; allowed: a mapping of plan field names to values, e.g. "
              "\"recommended_batch_size: 64\".");
      return p.res;
    }
    p.section(root, "", true, p.res.overrides.global);
  } catch (const std::exception& e) {
    p.error(file + ": cannot read it as a config: " + e.what());
  }
  p.res.ok = p.res.errors.empty();
  if (!p.res.ok) p.res.overrides = PlanOverrides{};
  return p.res;
}

ConfigResult load_config_file(const std::string& path, FileTrust trust) {
  std::string err;
  constexpr size_t kMax = 1u << 20;
  auto text = read_file_checked(path, trust, &err, kMax + 1);
  if (!text || text->size() > kMax) {
    ConfigResult r;
    r.errors.push_back(
        path + ": cannot read the config file: " + (text ? std::string("larger than 1 MiB") : err));
    return r;
  }
  return parse_config_text(*text, path);
}

namespace {

// The saved spec a plan GPU belongs to: by bus id or uuid (as apply matches them), else by index.
const GpuSpec* spec_for(const std::vector<GpuSpec>& specs, const GpuPlan& g) {
  for (const auto& s : specs)
    if ((g.device_id && s.f.bus_id == g.device_id) || (g.uuid && s.f.uuid == g.uuid)) return &s;
  for (const auto& s : specs)
    if (s.index == g.index) return &s;
  return nullptr;
}

// A number as it is: whole numbers in plain digits, others in their shortest exact form
// (250.5, 1e+308); never through an integer cast.
std::string number_text(double d) {
  if (std::isfinite(d) && std::fabs(d) < 1e15 && std::floor(d) == d) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.0f", d);
    return buf;
  }
  return shortest_double(d);
}

std::string shown_int(std::optional<int64_t> v) {
  return v ? std::to_string(*v) : "null";
}

}  // namespace

std::vector<std::string> validate_plan(const Plan& p, const std::vector<GpuSpec>& specs,
                                       const std::string& file) {
  std::vector<std::string> errors;
  std::map<int, size_t> seen;
  for (size_t i = 0; i < p.gpus.size(); ++i) {
    const GpuPlan& g = p.gpus[i];
    const std::string at = file + ": gpus[" + std::to_string(i) + "].";
    auto bad = [&](const std::string& key, const std::string& value, const std::string& allowed) {
      errors.push_back(at + key + " = " + value + " is not allowed; allowed: " + allowed + ".");
    };
    // The GPU itself.
    if (g.index < 0 || g.index > 1000000) {
      bad("index", std::to_string(g.index), "0 to 1000000");
      continue;
    }
    if (auto it = seen.find(g.index); it != seen.end()) {
      bad("index", std::to_string(g.index),
          "one entry per GPU (gpus[" + std::to_string(it->second) + "] has it too)");
      continue;
    }
    seen[g.index] = i;
    const GpuSpec* s = spec_for(specs, g);
    if (!specs.empty()) {
      bool known = false;
      std::string have;
      for (const auto& x : specs) {
        known = known || x.index == g.index;
        have += (have.empty() ? "" : ", ") + std::to_string(x.index);
      }
      if (!known) {
        bad("index", std::to_string(g.index),
            "a GPU of the saved specs (index " + have + "); run `grey-gpu-opt plan` again");
        continue;
      }
      if (s && s->index != g.index) {
        bad("index", std::to_string(g.index),
            std::to_string(s->index) + ", the index the saved specs give " +
                shorten(g.device_id && s->f.bus_id == g.device_id ? *g.device_id
                                                                  : g.uuid.value_or("")) +
                "; run `grey-gpu-opt plan` again");
        continue;
      }
    }
    // The VRAM the saved specs give, 0 when unknown (a plain integer: GCC 12 -O2 misreads an
    // optional here as maybe-uninitialized).
    const int64_t vram_mb =
        s && s->f.vram_total_mb && *s->f.vram_total_mb > 0 ? *s->f.vram_total_mb : 0;
    const bool vram = vram_mb > 0;
    const std::string gpu = "GPU " + std::to_string(g.index);

    // Sizes in MiB and the batch size.
    if (g.per_process_vram_cap_mb) {
      int64_t v = *g.per_process_vram_cap_mb;
      if (v < 1 || v > (vram ? vram_mb : kMibMax))
        bad("per_process_vram_cap_mb", shown_int(v),
            vram ? "1 to " + std::to_string(vram_mb) + " (MiB), the VRAM " + gpu + " reports"
                 : "1 to " + std::to_string(kMibMax) + " (MiB)");
    }
    if (g.tensor_chunk_size_mb) {
      // The planner's minimum chunk is 512 MiB, also on a GPU with less VRAM.
      int64_t v = *g.tensor_chunk_size_mb, hi = vram ? std::max<int64_t>(vram_mb, 512) : kMibMax;
      if (v < 1 || v > hi)
        bad("tensor_chunk_size_mb", shown_int(v),
            "1 to " + std::to_string(hi) + " (MiB)" +
                (vram ? ", within the VRAM " + gpu + " reports" : std::string()));
    }
    if (g.recommended_batch_size &&
        (*g.recommended_batch_size < kBatchMin || *g.recommended_batch_size > kBatchMax))
      bad("recommended_batch_size", shown_int(g.recommended_batch_size), "1 to 65536");

    // Temperatures.
    std::optional<int> slowdown;
    if (s && s->f.thermal.slowdown_c && *s->f.thermal.slowdown_c >= kSlowdownPlausibleMin &&
        *s->f.thermal.slowdown_c <= kSlowdownPlausibleMax)
      slowdown = *s->f.thermal.slowdown_c;
    const int cool_hi = slowdown ? std::min(kTempMax, *slowdown - 2) : kTempMax;
    const bool cool_ok = g.cooldown_threshold_c >= kTempMin && g.cooldown_threshold_c <= cool_hi;
    if (!cool_ok)
      bad("cooldown_threshold_c", std::to_string(g.cooldown_threshold_c),
          std::to_string(kTempMin) + " to " + std::to_string(cool_hi) + " (°C)" +
              (slowdown ? ", 2 °C under the " + std::to_string(*slowdown) + " °C at which " + gpu +
                              " slows itself down"
                        : std::string()));
    if (g.resume_threshold_c < kTempMin || g.resume_threshold_c > kTempMax)
      bad("resume_threshold_c", std::to_string(g.resume_threshold_c), "30 to 110 (°C)");
    else if (cool_ok && g.resume_threshold_c >= g.cooldown_threshold_c)
      bad("resume_threshold_c", std::to_string(g.resume_threshold_c),
          "below cooldown_threshold_c = " + std::to_string(g.cooldown_threshold_c) +
              ", so at most " + std::to_string(g.cooldown_threshold_c - 1));

    // Policies and the power limit.
    if (g.placement_policy && *g.placement_policy != "least_loaded_free_vram")
      bad("placement_policy", "\"" + shorten(*g.placement_policy) + "\"",
          "least_loaded_free_vram or null");
    if (g.power_limit_w) {
      const double w = *g.power_limit_w;
      std::optional<double> lo, hi;
      if (s && s->f.power_limit_min_w && *s->f.power_limit_min_w > 0) lo = s->f.power_limit_min_w;
      if (s && s->f.power_limit_max_w && *s->f.power_limit_max_w > 0) hi = s->f.power_limit_max_w;
      if (lo && hi && *lo > *hi) lo = hi = std::nullopt;  // a range the planner does not believe
      const double min_w = lo.value_or(0), max_w = hi.value_or(kPowerMaxW);
      const bool pos = std::isfinite(w) && w > 0;
      if (!pos || (lo && w < min_w) || w > max_w || (!hi && w >= kPowerMaxW))
        bad("power_limit_w", number_text(w),
            lo && hi ? "from " + number_text(*lo) + " to " + number_text(*hi) + " (W), the range " +
                           gpu + " reports, or null"
            : hi ? "more than 0 and at most " + number_text(*hi) + " (W), the maximum " + gpu +
                       " reports, or null"
            : lo ? "at least " + number_text(*lo) + " (W), the minimum " + gpu +
                       " reports, and below " + number_text(kPowerMaxW) + ", or null"
                 : "a positive number of watts below " + number_text(kPowerMaxW) + ", or null");
    }
    if (g.max_concurrent_kernels < kKernelsMin || g.max_concurrent_kernels > kKernelsMax)
      bad("max_concurrent_kernels", std::to_string(g.max_concurrent_kernels), "1 to 128");
    if (!(g.fairness_weight_per_process > 0 && g.fairness_weight_per_process <= kWeightMax))
      bad("fairness_weight_per_process", number_text(g.fairness_weight_per_process),
          "a number greater than 0 and at most 100");
    // The measured fields: null (not measured) or a sane measurement.
    if (g.estimated_reclaimed_mb && *g.estimated_reclaimed_mb < 0)
      bad("estimated_reclaimed_mb", std::to_string(*g.estimated_reclaimed_mb),
          "0 or more, or null");
    if (g.dedup_buffer_count && *g.dedup_buffer_count < 0)
      bad("dedup_buffer_count", std::to_string(*g.dedup_buffer_count), "0 or more, or null");
    if (g.compression_ratio && !(*g.compression_ratio >= 0))
      bad("compression_ratio", number_text(*g.compression_ratio), "0 or more, or null");
  }
  return errors;
}

void merge_overrides(PlanOverrides& base, const PlanOverrides& top) {
  if (top.mode) {
    base.mode = top.mode;
    base.mode_file = top.mode_file;
  }
  auto merge_list = [](std::vector<FieldOverride>& b, const std::vector<FieldOverride>& t) {
    for (const auto& o : t) {
      b.erase(std::remove_if(b.begin(), b.end(),
                             [&](const FieldOverride& x) { return x.field == o.field; }),
              b.end());
      b.push_back(o);
    }
  };
  merge_list(base.global, top.global);
  for (const auto& [k, list] : top.per_gpu) {
    merge_list(base.per_gpu[k], list);
    if (auto f = top.per_gpu_file.find(k); f != top.per_gpu_file.end())
      base.per_gpu_file[k] = f->second;
  }
}

}  // namespace grey
