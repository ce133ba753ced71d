#include "plan/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
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

std::string shorten(std::string s) {
  if (s.size() > 80) s = s.substr(0, 77) + "...";
  for (char& c : s)
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  return s;
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
     [](const Scalar& s) { return int_in(s, 1, INT64_MAX); }},
    {"recommended_batch_size", "an integer from 1 to 65536",
     [](const Scalar& s) { return int_in(s, kBatchMin, kBatchMax); }},
    {"tensor_chunk_size_mb", "an integer number of MiB, at least 1",
     [](const Scalar& s) { return int_in(s, 1, INT64_MAX); }},
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
       return s.kind == Kind::kNull || (is_number(s) && number(s) > 0 && number(s) < 1e6);
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
      std::string id = k.Scalar();
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
