#include "plan/plan_io.h"

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string_view>

#include "util/json_util.h"
#include "util/state_dir.h"
#include "util/strings.h"

namespace grey {

namespace {

using ojson = nlohmann::ordered_json;
using json = nlohmann::json;

template <typename T>
ojson opt(const std::optional<T>& v) {
  return v ? ojson(*v) : ojson(nullptr);
}

// Field maps in the canonical field order, then any other keys in their sorted order.
template <typename V>
ojson field_map(const std::map<std::string, V>& m) {
  ojson o = ojson::object();
  for (const char* f : kPlanFields)
    if (auto it = m.find(f); it != m.end()) o[f] = it->second;
  for (const auto& [k, v] : m)
    if (!o.contains(k)) o[k] = v;
  return o;
}

ojson gpu_to_json(const GpuPlan& g) {
  ojson o = ojson::object();
  o["index"] = g.index;
  o["device_id"] = opt(g.device_id);
  o["uuid"] = opt(g.uuid);
  o["model"] = opt(g.model);
  o["per_process_vram_cap_mb"] = opt(g.per_process_vram_cap_mb);
  o["recommended_batch_size"] = opt(g.recommended_batch_size);
  o["tensor_chunk_size_mb"] = opt(g.tensor_chunk_size_mb);
  o["cooldown_threshold_c"] = g.cooldown_threshold_c;
  o["resume_threshold_c"] = g.resume_threshold_c;
  o["fair_scheduling_policy"] = g.fair_scheduling_policy;
  o["placement_policy"] = opt(g.placement_policy);
  o["preemptive_throttle"] = g.preemptive_throttle;
  o["power_limit_w"] = opt(g.power_limit_w);
  o["max_concurrent_kernels"] = g.max_concurrent_kernels;
  o["fairness_weight_per_process"] = g.fairness_weight_per_process;
  o["utilization_heatmap_enabled"] = g.utilization_heatmap_enabled;
  o["estimated_reclaimed_mb"] = opt(g.estimated_reclaimed_mb);  // null: not measured
  o["dedup_buffer_count"] = opt(g.dedup_buffer_count);
  o["compression_ratio"] = opt(g.compression_ratio);
  o["confidence"] = field_map(g.confidence);
  ojson parts = ojson::array();
  for (const auto& pp : g.partitions) {
    ojson e = ojson::object();
    e["gi_id"] = opt(pp.gi_id);
    e["ci_id"] = opt(pp.ci_id);
    e["profile"] = opt(pp.profile);
    e["uuid"] = opt(pp.uuid);
    e["memory_total_mb"] = opt(pp.memory_total_mb);
    e["per_process_vram_cap_mb"] = opt(pp.per_process_vram_cap_mb);
    e["recommended_batch_size"] = opt(pp.recommended_batch_size);
    parts.push_back(std::move(e));
  }
  o["rationale"] = field_map(g.rationale);
  o["provenance"] = field_map(g.provenance);
  o["enforcement"] = field_map(g.enforcement);
  // Only GPUs with MIG instances carry the key (older plan files stay byte-identical).
  if (!parts.empty()) o["partitions"] = std::move(parts);
  return o;
}

// ---- reading, strictly typed ----
[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw std::runtime_error(where + ": " + what);
}

const json* find(const json& o, const char* key) {
  auto it = o.find(key);
  return it == o.end() ? nullptr : &*it;
}

const json& need(const json& o, const char* key, const std::string& where) {
  const json* v = find(o, key);
  if (!v) fail(where, "missing key \"" + std::string(key) + "\"");
  return *v;
}

int64_t get_int(const json& v, const std::string& where) {
  if (!v.is_number_integer()) fail(where, "expected an integer, got " + dump_json(v));
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
    fail(where, "integer too large");
  return v.get<int64_t>();
}

int get_int32(const json& v, const std::string& where) {
  int64_t x = get_int(v, where);
  if (x < INT32_MIN || x > INT32_MAX) fail(where, "integer out of range");
  return static_cast<int>(x);
}

double get_double(const json& v, const std::string& where) {
  if (!v.is_number()) fail(where, "expected a number, got " + dump_json(v));
  double d = v.get<double>();
  if (!std::isfinite(d)) fail(where, "expected a finite number");
  return d;
}

// Text read from a file gets the rule every plan string follows (util/strings.h): a plan read
// back from YAML holds no byte the writers would have to replace.
std::string get_string(const json& v, const std::string& where) {
  if (!v.is_string()) fail(where, "expected a string, got " + dump_json(v));
  return sanitize_utf8(v.get_ref<const std::string&>());
}

bool get_bool(const json& v, const std::string& where) {
  if (!v.is_boolean()) fail(where, "expected true or false, got " + dump_json(v));
  return v.get<bool>();
}

// Absent or null -> nullopt.
template <typename T, typename F>
std::optional<T> get_opt(const json& o, const char* key, const std::string& where, F f) {
  const json* v = find(o, key);
  if (!v || v->is_null()) return std::nullopt;
  return f(*v, where + "." + key);
}

template <typename F>
auto get_req(const json& o, const char* key, const std::string& where, F f) {
  return f(need(o, key, where), where + "." + key);
}

template <typename V, typename F>
std::map<std::string, V> get_map(const json& o, const char* key, const std::string& where, F f) {
  std::map<std::string, V> m;
  const json* v = find(o, key);
  if (!v || v->is_null()) return m;
  if (!v->is_object()) fail(where + "." + key, "expected a mapping");
  for (auto it = v->begin(); it != v->end(); ++it) {
    std::string k = sanitize_utf8(it.key());
    m[k] = f(it.value(), where + "." + key + "." + k);
  }
  return m;
}

bool one_of(const std::string& s, const char* const* words, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (s == words[i]) return true;
  return false;
}

GpuPlan gpu_from_json(const json& o, const std::string& where) {
  if (!o.is_object()) fail(where, "expected a mapping");
  GpuPlan g;
  g.index = get_req(o, "index", where, get_int32);
  g.device_id = get_opt<std::string>(o, "device_id", where, get_string);
  g.uuid = get_opt<std::string>(o, "uuid", where, get_string);
  g.model = get_opt<std::string>(o, "model", where, get_string);
  g.per_process_vram_cap_mb = get_opt<int64_t>(o, "per_process_vram_cap_mb", where, get_int);
  g.recommended_batch_size = get_opt<int64_t>(o, "recommended_batch_size", where, get_int);
  g.tensor_chunk_size_mb = get_opt<int64_t>(o, "tensor_chunk_size_mb", where, get_int);
  g.cooldown_threshold_c = get_req(o, "cooldown_threshold_c", where, get_int32);
  g.resume_threshold_c = get_req(o, "resume_threshold_c", where, get_int32);
  g.fair_scheduling_policy = get_req(o, "fair_scheduling_policy", where, get_string);
  if (g.fair_scheduling_policy != "round_robin" && g.fair_scheduling_policy != "priority_based")
    fail(where + ".fair_scheduling_policy",
         "\"" + g.fair_scheduling_policy + "\" is not round_robin or priority_based");
  g.placement_policy = get_opt<std::string>(o, "placement_policy", where, get_string);
  g.preemptive_throttle = get_req(o, "preemptive_throttle", where, get_bool);
  g.power_limit_w = get_opt<double>(o, "power_limit_w", where, get_double);
  g.max_concurrent_kernels = get_req(o, "max_concurrent_kernels", where, get_int32);
  g.fairness_weight_per_process = get_req(o, "fairness_weight_per_process", where, get_double);
  g.utilization_heatmap_enabled = get_req(o, "utilization_heatmap_enabled", where, get_bool);
  // null (or absent): not measured.
  g.estimated_reclaimed_mb = get_opt<int64_t>(o, "estimated_reclaimed_mb", where, get_int);
  g.dedup_buffer_count = get_opt<int64_t>(o, "dedup_buffer_count", where, get_int);
  g.compression_ratio = get_opt<double>(o, "compression_ratio", where, get_double);
  g.confidence = get_map<double>(o, "confidence", where, [](const json& v, const std::string& w) {
    double d = get_double(v, w);
    if (d < 0 || d > 1) fail(w, "confidence must be within [0, 1]");
    return d;
  });
  g.rationale = get_map<std::string>(o, "rationale", where, get_string);
  g.provenance =
      get_map<std::string>(o, "provenance", where, [](const json& v, const std::string& w) {
        std::string s = get_string(v, w);
        if (!one_of(s, kProvenanceWords, std::size(kProvenanceWords)))
          fail(w, "\"" + s + "\" is not one of measured, device, derived, heuristic, config");
        return s;
      });
  g.enforcement =
      get_map<std::string>(o, "enforcement", where, [](const json& v, const std::string& w) {
        std::string s = get_string(v, w);
        if (!one_of(s, kEnforcementWords, std::size(kEnforcementWords)))
          fail(w, "\"" + s + "\" is not one of advisory env, shim, mps, kernel, reactive, none");
        return s;
      });
  if (auto it = o.find("partitions"); it != o.end() && !it->is_null()) {
    if (!it->is_array()) fail(where + ".partitions", "expected a list");
    for (size_t i = 0; i < it->size(); ++i) {
      const json& e = (*it)[i];
      std::string w = where + ".partitions[" + std::to_string(i) + "]";
      if (!e.is_object()) fail(w, "expected a mapping");
      PartitionPlan pp;
      pp.gi_id = get_opt<int>(e, "gi_id", w, get_int32);
      pp.ci_id = get_opt<int>(e, "ci_id", w, get_int32);
      pp.profile = get_opt<std::string>(e, "profile", w, get_string);
      pp.uuid = get_opt<std::string>(e, "uuid", w, get_string);
      pp.memory_total_mb = get_opt<int64_t>(e, "memory_total_mb", w, get_int);
      pp.per_process_vram_cap_mb = get_opt<int64_t>(e, "per_process_vram_cap_mb", w, get_int);
      pp.recommended_batch_size = get_opt<int64_t>(e, "recommended_batch_size", w, get_int);
      g.partitions.push_back(std::move(pp));
    }
  }
  return g;
}

// ---- YAML ----
std::string shortest(double d) {
  std::string s = shortest_double(d);
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
  return s;
}

// ---- YAML out ------------------------------------------------------------------------------
// Block-style YAML written by hand: yaml-cpp's emitter decides the quoting of every scalar with
// regular expressions and took a third of `plan`'s time for a few GPUs. Strings are always
// double-quoted (escapes as YAML 1.2 §5.7 allows: \\, \", \n, \t, \r, \xXX for other
// control bytes; invalid UTF-8 becomes U+FFFD), keys are plain when they are simple names and
// double-quoted otherwise, null/true/false/numbers plain. yaml-cpp (and any YAML 1.2 reader)
// reads it back: tests/plan_io_test.cc.

void yaml_quoted(std::string& out, std::string_view s) {
  out += '"';
  for (size_t i = 0; i < s.size();) {
    const char c = s[i];
    size_t len = 1;
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x",
                    static_cast<unsigned>(static_cast<unsigned char>(c)));
      out += buf;
    } else if (static_cast<unsigned char>(c) < 0x80) {
      out += c;
    } else if ((len = utf8_sequence_length(s, i)) != 0) {
      out.append(s.substr(i, len));
    } else {
      out += "\\uFFFD";
      len = 1;
    }
    i += len;
  }
  out += '"';
}

void yaml_key(std::string& out, const std::string& k) {
  bool plain = !k.empty() && (std::isalpha(static_cast<unsigned char>(k[0])) || k[0] == '_');
  for (char c : k)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') plain = false;
  // Words a YAML reader would take as something other than a string.
  for (const char* w : {"null", "true", "false", "yes", "no", "on", "off", "y", "n", "Null", "NULL",
                        "True", "TRUE", "False", "FALSE", "Yes", "No", "On", "Off"})
    if (k == w) plain = false;
  if (plain)
    out += k;
  else
    yaml_quoted(out, k);
}

bool yaml_is_block(const ojson& v) {
  return (v.is_object() || v.is_array()) && !v.empty();
}

void yaml_scalar(std::string& out, const ojson& v) {
  switch (v.type()) {
    case ojson::value_t::boolean:
      out += v.get<bool>() ? "true" : "false";
      break;
    case ojson::value_t::number_integer:
      out += std::to_string(v.get<int64_t>());
      break;
    case ojson::value_t::number_unsigned:
      out += std::to_string(v.get<uint64_t>());
      break;
    case ojson::value_t::number_float:
      out += shortest(v.get<double>());
      break;
    case ojson::value_t::string:
      yaml_quoted(out, v.get_ref<const std::string&>());
      break;
    case ojson::value_t::array:
      out += "[]";
      break;
    case ojson::value_t::object:
      out += "{}";
      break;
    default:
      out += "null";
  }
}

// A block collection whose first line continues the current line (after "- ") when `inline_first`
// is set; every other line starts with `indent` spaces.
void yaml_block(std::string& out, const ojson& v, size_t indent, bool inline_first) {
  bool first = true;
  auto line_start = [&] {
    if (!(first && inline_first)) out.append(indent, ' ');
    first = false;
  };
  if (v.is_object()) {
    for (auto it = v.begin(); it != v.end(); ++it) {
      line_start();
      yaml_key(out, it.key());
      out += ':';
      if (yaml_is_block(it.value())) {
        out += '\n';
        yaml_block(out, it.value(), indent + 2, false);
      } else {
        out += ' ';
        yaml_scalar(out, it.value());
        out += '\n';
      }
    }
  } else {
    for (const auto& x : v) {
      line_start();
      out += "- ";
      if (yaml_is_block(x)) {
        yaml_block(out, x, indent + 2, true);
      } else {
        yaml_scalar(out, x);
        out += '\n';
      }
    }
  }
}

// YAML node -> JSON. Quoted scalars are strings; plain ones are null, booleans, integers or
// floats when they read as one, else strings. `budget` bounds the nodes visited (aliases can
// make a small file expand exponentially).
json to_json(const YAML::Node& n, size_t& budget) {
  if (budget == 0) throw std::runtime_error("the document is too large (or expands too much)");
  --budget;
  switch (n.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nullptr;
    case YAML::NodeType::Scalar: {
      const std::string& s = n.Scalar();
      if (n.Tag() == "!") return s;
      if (s == "~" || s == "null" || s == "Null" || s == "NULL" || s.empty()) return nullptr;
      if (s == "true" || s == "True" || s == "TRUE") return true;
      if (s == "false" || s == "False" || s == "FALSE") return false;
      if (s.find_first_not_of("+-0123456789") == std::string::npos)
        if (auto i = parse_int(s)) return *i;
      if (s.find_first_not_of("+-0123456789.eE") == std::string::npos)
        if (auto d = parse_double(s)) return *d;
      return s;
    }
    case YAML::NodeType::Sequence: {
      json a = json::array();
      for (const auto& x : n) a.push_back(to_json(x, budget));
      return a;
    }
    case YAML::NodeType::Map: {
      json o = json::object();
      for (const auto& kv : n) {
        if (!kv.first.IsScalar()) throw std::runtime_error("a mapping key is not a plain value");
        o[kv.first.Scalar()] = to_json(kv.second, budget);
      }
      return o;
    }
  }
  return nullptr;
}

}  // namespace

ojson plan_to_json(const Plan& p) {
  ojson o = ojson::object();
  o["schema_version"] = p.schema_version;
  o["mode"] = to_string(p.mode);
  o["generated_at"] = p.generated_at;
  o["gpu_specs_hash"] = p.gpu_specs_hash;
  o["confidence_overall"] = p.confidence_overall;
  o["notes"] = p.notes;
  o["gpus"] = ojson::array();
  for (const auto& g : p.gpus) o["gpus"].push_back(gpu_to_json(g));
  return o;
}

Plan plan_from_json(const json& j) {
  if (!j.is_object()) fail("plan", "expected a mapping at the top level");
  Plan p;
  p.schema_version = get_req(j, "schema_version", "plan", get_int32);
  if (p.schema_version != 1)
    fail("plan.schema_version", "version " + std::to_string(p.schema_version) +
                                    " is not supported (this tool reads version 1)");
  std::string mode = get_req(j, "mode", "plan", get_string);
  auto m = parse_plan_mode(mode);
  if (!m) fail("plan.mode", "\"" + mode + "\" is not safe or aggressive");
  p.mode = *m;
  p.generated_at = get_req(j, "generated_at", "plan", get_string);
  p.gpu_specs_hash = get_req(j, "gpu_specs_hash", "plan", get_string);
  p.confidence_overall = get_req(j, "confidence_overall", "plan", get_double);
  if (p.confidence_overall < 0 || p.confidence_overall > 1)
    fail("plan.confidence_overall", "must be within [0, 1]");
  if (const json* n = find(j, "notes"); n && !n->is_null()) {
    if (!n->is_array()) fail("plan.notes", "expected a list");
    for (size_t i = 0; i < n->size(); ++i)
      p.notes.push_back(get_string((*n)[i], "plan.notes[" + std::to_string(i) + "]"));
  }
  const json& gs = need(j, "gpus", "plan");
  if (!gs.is_array()) fail("plan.gpus", "expected a list");
  for (size_t i = 0; i < gs.size(); ++i)
    p.gpus.push_back(gpu_from_json(gs[i], "plan.gpus[" + std::to_string(i) + "]"));
  return p;
}

std::string plan_to_json_text(const Plan& p, int indent) {
  return plan_to_json(p).dump(indent, ' ', false, ojson::error_handler_t::replace) + "\n";
}

std::string plan_to_yaml(const Plan& p) {
  const ojson j = plan_to_json(p);
  std::string out;
  out.reserve(4096);
  if (yaml_is_block(j)) {
    yaml_block(out, j, 0, false);
  } else {
    yaml_scalar(out, j);
    out += '\n';
  }
  return out;
}

std::optional<Plan> plan_from_json_text(const std::string& text, std::string* error) {
  try {
    return plan_from_json(json::parse(text));
  } catch (const std::exception& ex) {
    if (error) *error = ex.what();
  }
  return std::nullopt;
}

std::optional<Plan> plan_from_yaml_text(const std::string& text, std::string* error) {
  try {
    size_t budget = 100000;  // a plan of ~1000 GPUs
    return plan_from_json(to_json(YAML::Load(text), budget));
  } catch (const YAML::Exception& ex) {
    if (error) *error = "invalid YAML at line " + std::to_string(ex.mark.line + 1) + ": " + ex.msg;
  } catch (const std::exception& ex) {
    if (error) *error = ex.what();
  }
  return std::nullopt;
}

std::optional<std::string> plan_format_for_path(const std::string& path) {
  std::string l = to_lower(path);
  if (ends_with(l, ".yaml") || ends_with(l, ".yml")) return "yaml";
  if (ends_with(l, ".json")) return "json";
  return std::nullopt;
}

std::optional<Plan> load_plan_file(const std::string& path, std::string* error) {
  std::string e;
  auto text = read_whole_file(path, &e);
  if (!text) {
    if (error) *error = "cannot read the plan " + path + ": " + e;
    return std::nullopt;
  }
  auto fmt = plan_format_for_path(path);
  auto p = fmt && *fmt == "json" ? plan_from_json_text(*text, &e) : plan_from_yaml_text(*text, &e);
  if (!p && error)
    *error = path + " is not a valid plan (" + e + "); run `grey-gpu-opt plan` to write it again";
  return p;
}

}  // namespace grey
