// Every JSON output checked against its JSON Schema (docs/schema/, draft 2020-12), so a change of
// shape is a deliberate, versioned change: detect --json (and last_gpu_spec.json), plan --json
// (and the saved YAML plan, plan --output), apply --json, status --json, daemon_status.json and
// every line of logs/daemon.jsonl. The outputs come from the built binary run on the fixtures the
// other tests use (replay directories, a copy of a real AMD sysfs tree, the fake NVML with its
// script, a temporary GREY_CONFIG_DIR).
//
// The validator below implements the subset of JSON Schema 2020-12 the schemas use, and refuses
// a schema that uses any other keyword (so no keyword is silently ignored). Its own tests
// (SchemaValidator.*) show that it does reject what it should.
#include <fcntl.h>
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "daemon/daemon.h"
#include "daemon/daemon_status.h"
#include "enforce/apply_result.h"
#include "model/gpu_spec.h"
#include "plan/plan.h"
#include "test_util.h"
#include "util/runner.h"

extern char** environ;

namespace grey {
namespace {

using json = nlohmann::json;
using test::read_file;
using test::TempDir;
using test::write_file;
namespace fs = std::filesystem;

// ---- A JSON Schema (2020-12 subset) validator ------------------------------------------------

class SchemaSet {
 public:
  // Loads every *.schema.json under `dir`, keyed by file name; fails the test on a schema that
  // does not parse or uses an unsupported keyword.
  explicit SchemaSet(const std::string& dir) {
    for (const auto& e : fs::directory_iterator(dir)) {
      std::string name = e.path().filename();
      if (name.size() < 12 || name.substr(name.size() - 12) != ".schema.json") continue;
      json s = json::parse(read_file(e.path()), nullptr, false);
      EXPECT_FALSE(s.is_discarded()) << name << " is not JSON";
      if (s.is_discarded()) continue;
      std::vector<std::string> problems;
      check_schema(s, name + "#", problems);
      for (const auto& p : problems) ADD_FAILURE() << p;
      docs_[name] = std::move(s);
    }
  }
  explicit SchemaSet(std::map<std::string, json> docs) : docs_(std::move(docs)) {
    for (const auto& [name, s] : docs_) {
      std::vector<std::string> problems;
      check_schema(s, name + "#", problems);
      for (const auto& p : problems) ADD_FAILURE() << p;
    }
  }

  const std::map<std::string, json>& docs() const { return docs_; }
  const json& doc(const std::string& name) const { return docs_.at(name); }

  // Every violation, one line each ("/0/vram_total_mb: ..."); empty when `v` is valid.
  std::vector<std::string> validate(const json& v, const std::string& schema_name) const {
    std::vector<std::string> errors;
    auto it = docs_.find(schema_name);
    if (it == docs_.end()) return {"no schema " + schema_name};
    check(v, it->second, schema_name, "", errors);
    return errors;
  }

 private:
  static bool known_keyword(const std::string& k) {
    static const std::set<std::string> kw = {"$schema",
                                             "$id",
                                             "title",
                                             "description",
                                             "$comment",
                                             "$defs",
                                             "examples",
                                             "default",
                                             "type",
                                             "enum",
                                             "const",
                                             "minimum",
                                             "maximum",
                                             "exclusiveMinimum",
                                             "exclusiveMaximum",
                                             "pattern",
                                             "minLength",
                                             "properties",
                                             "required",
                                             "additionalProperties",
                                             "propertyNames",
                                             "dependentRequired",
                                             "items",
                                             "minItems",
                                             "allOf",
                                             "anyOf",
                                             "oneOf",
                                             "not",
                                             "if",
                                             "then",
                                             "else",
                                             "$ref"};
    return kw.count(k) != 0;
  }

  static void check_schema(const json& s, const std::string& at, std::vector<std::string>& out) {
    if (s.is_boolean()) return;
    if (!s.is_object()) {
      out.push_back(at + ": a schema must be an object or a boolean");
      return;
    }
    for (auto it = s.begin(); it != s.end(); ++it) {
      const std::string& k = it.key();
      const json& v = it.value();
      if (!known_keyword(k)) out.push_back(at + ": unsupported keyword \"" + k + "\"");
      if (k == "properties" || k == "$defs") {
        for (auto p = v.begin(); p != v.end(); ++p)
          check_schema(*p, at + "/" + k + "/" + p.key(), out);
      } else if (k == "allOf" || k == "anyOf" || k == "oneOf") {
        for (size_t i = 0; i < v.size(); ++i)
          check_schema(v[i], at + "/" + k + "/" + std::to_string(i), out);
      } else if (k == "additionalProperties" || k == "propertyNames" || k == "items" ||
                 k == "not" || k == "if" || k == "then" || k == "else") {
        check_schema(v, at + "/" + k, out);
      } else if (k == "pattern") {
        try {
          std::regex re(v.get<std::string>(), std::regex::ECMAScript);
        } catch (const std::exception& e) {
          out.push_back(at + ": bad pattern: " + e.what());
        }
      } else if (k == "type") {
        static const std::set<std::string> types = {"null",   "boolean", "object", "array",
                                                    "number", "integer", "string"};
        json list = v.is_array() ? v : json::array({v});
        for (const auto& t : list)
          if (!t.is_string() || !types.count(t.get<std::string>()))
            out.push_back(at + ": unknown type " + t.dump());
      }
    }
  }

  static std::string type_of(const json& v) {
    switch (v.type()) {
      case json::value_t::null:
        return "null";
      case json::value_t::boolean:
        return "boolean";
      case json::value_t::object:
        return "object";
      case json::value_t::array:
        return "array";
      case json::value_t::string:
        return "string";
      case json::value_t::number_float:
        return "number";
      default:
        return "integer";
    }
  }

  static bool has_type(const json& v, const std::string& t) {
    std::string a = type_of(v);
    if (a == t) return true;
    if (t == "number" && a == "integer") return true;
    // 2020-12: a number with a zero fractional part is an integer.
    if (t == "integer" && v.is_number_float()) {
      double d = v.get<double>();
      return std::isfinite(d) && d == std::floor(d);
    }
    return false;
  }

  static size_t code_points(const std::string& s) {
    size_t n = 0;
    for (unsigned char c : s)
      if ((c & 0xC0) != 0x80) ++n;
    return n;
  }

  // The schema a $ref names: "#/$defs/x" in `doc`, "file.schema.json" or
  // "file.schema.json#/$defs/x" among the loaded ones. Sets *doc_out to the document it is in.
  const json* resolve(const std::string& ref, const std::string& doc, std::string* doc_out) const {
    std::string file = doc, pointer;
    auto hash = ref.find('#');
    if (hash == std::string::npos) {
      file = ref;
    } else {
      if (hash > 0) file = ref.substr(0, hash);
      pointer = ref.substr(hash + 1);
    }
    auto it = docs_.find(file);
    if (it == docs_.end()) return nullptr;
    *doc_out = file;
    if (pointer.empty()) return &it->second;
    try {
      return &it->second.at(json::json_pointer(pointer));
    } catch (const std::exception&) {
      return nullptr;
    }
  }

  void check(const json& v, const json& s, const std::string& doc, const std::string& path,
             std::vector<std::string>& errors) const {
    auto fail = [&](const std::string& what) {
      errors.push_back((path.empty() ? "/" : path) + ": " + what);
    };
    if (s.is_boolean()) {
      if (!s.get<bool>()) fail("not allowed here");
      return;
    }
    if (auto r = s.find("$ref"); r != s.end()) {
      std::string d;
      const json* target = resolve(r->get<std::string>(), doc, &d);
      if (!target)
        fail("unresolvable $ref " + r->dump());
      else
        check(v, *target, d, path, errors);
    }
    if (auto t = s.find("type"); t != s.end()) {
      json list = t->is_array() ? *t : json::array({*t});
      bool ok = false;
      for (const auto& x : list) ok = ok || has_type(v, x.get<std::string>());
      if (!ok) {
        fail("is " + type_of(v) + " " + v.dump() + ", expected " + t->dump());
        return;  // the other keywords would only repeat it
      }
    }
    if (auto e = s.find("enum"); e != s.end()) {
      bool ok = false;
      for (const auto& x : *e) ok = ok || x == v;
      if (!ok) fail(v.dump() + " is not one of " + e->dump());
    }
    if (auto c = s.find("const"); c != s.end() && !(*c == v))
      fail(v.dump() + " is not " + c->dump());
    if (v.is_number()) {
      double d = v.get<double>();
      if (auto m = s.find("minimum"); m != s.end() && d < m->get<double>())
        fail(v.dump() + " < minimum " + m->dump());
      if (auto m = s.find("maximum"); m != s.end() && d > m->get<double>())
        fail(v.dump() + " > maximum " + m->dump());
      if (auto m = s.find("exclusiveMinimum"); m != s.end() && d <= m->get<double>())
        fail(v.dump() + " <= exclusiveMinimum " + m->dump());
      if (auto m = s.find("exclusiveMaximum"); m != s.end() && d >= m->get<double>())
        fail(v.dump() + " >= exclusiveMaximum " + m->dump());
    }
    if (v.is_string()) {
      const std::string& str = v.get_ref<const std::string&>();
      if (auto m = s.find("minLength"); m != s.end() && code_points(str) < m->get<size_t>())
        fail(v.dump() + " is shorter than " + m->dump());
      if (auto p = s.find("pattern"); p != s.end()) {
        std::regex re(p->get<std::string>(), std::regex::ECMAScript);
        if (!std::regex_search(str, re)) fail(v.dump() + " does not match " + p->dump());
      }
    }
    if (v.is_object()) {
      if (auto r = s.find("required"); r != s.end())
        for (const auto& k : *r)
          if (!v.contains(k.get<std::string>())) fail("missing required " + k.dump());
      if (auto d = s.find("dependentRequired"); d != s.end())
        for (auto it = d->begin(); it != d->end(); ++it)
          if (v.contains(it.key()))
            for (const auto& k : it.value())
              if (!v.contains(k.get<std::string>()))
                fail("\"" + it.key() + "\" is present but " + k.dump() + " is not");
      const json* props = s.contains("properties") ? &s["properties"] : nullptr;
      for (auto it = v.begin(); it != v.end(); ++it) {
        std::string p = path + "/" + it.key();
        if (auto pn = s.find("propertyNames"); pn != s.end()) {
          std::vector<std::string> sub;
          check(json(it.key()), *pn, doc, p, sub);
          if (!sub.empty()) fail("property name \"" + it.key() + "\" not allowed: " + sub[0]);
        }
        if (props && props->contains(it.key())) {
          check(it.value(), (*props)[it.key()], doc, p, errors);
        } else if (auto ap = s.find("additionalProperties"); ap != s.end()) {
          if (ap->is_boolean() && !ap->get<bool>())
            fail("unexpected property \"" + it.key() + "\"");
          else
            check(it.value(), *ap, doc, p, errors);
        }
      }
    }
    if (v.is_array()) {
      if (auto m = s.find("minItems"); m != s.end() && v.size() < m->get<size_t>())
        fail("fewer than " + m->dump() + " items");
      if (auto items = s.find("items"); items != s.end())
        for (size_t i = 0; i < v.size(); ++i)
          check(v[i], *items, doc, path + "/" + std::to_string(i), errors);
    }
    auto passes = [&](const json& sub) {
      std::vector<std::string> e;
      check(v, sub, doc, path, e);
      return e.empty();
    };
    if (auto a = s.find("allOf"); a != s.end())
      for (const auto& sub : *a) check(v, sub, doc, path, errors);
    if (auto a = s.find("anyOf"); a != s.end()) {
      bool any = false;
      for (const auto& sub : *a) any = any || passes(sub);
      if (!any) fail("matches none of anyOf");
    }
    if (auto a = s.find("oneOf"); a != s.end()) {
      int n = 0;
      std::vector<std::string> first;
      for (const auto& sub : *a) {
        std::vector<std::string> e;
        check(v, sub, doc, path, e);
        if (e.empty())
          ++n;
        else if (first.empty())
          first = e;
      }
      if (n != 1)
        fail("matches " + std::to_string(n) + " of oneOf" +
             (n == 0 && !first.empty() ? " (" + first.back() + ")" : ""));
    }
    if (auto n = s.find("not"); n != s.end() && passes(*n)) fail("matches a \"not\" schema");
    if (auto i = s.find("if"); i != s.end()) {
      if (passes(*i)) {
        if (auto t = s.find("then"); t != s.end()) check(v, *t, doc, path, errors);
      } else if (auto e = s.find("else"); e != s.end()) {
        check(v, *e, doc, path, errors);
      }
    }
  }

  std::map<std::string, json> docs_;
};

std::string schema_dir() {
  return std::string(GREY_TEST_SOURCE_DIR) + "/../docs/schema";
}

const SchemaSet& schemas() {
  static const SchemaSet* s = new SchemaSet(schema_dir());
  return *s;
}

std::string joined(const std::vector<std::string>& v) {
  std::string o;
  for (const auto& s : v) o += s + "\n";
  return o;
}

// Documents checked with EXPECT_VALID in the current test, checked again by the standard
// validator (python3-jsonschema, tests/schema_check.py) when the test ends.
std::vector<std::pair<std::string, json>>& checked() {
  static std::vector<std::pair<std::string, json>> v;
  return v;
}

#define EXPECT_VALID(doc, schema)                                                    \
  do {                                                                               \
    auto errs_ = schemas().validate(doc, schema);                                    \
    EXPECT_TRUE(errs_.empty()) << schema << ":\n" << joined(errs_) << (doc).dump(1); \
    checked().emplace_back(schema, doc);                                             \
  } while (0)

// A python3 that has jsonschema with draft 2020-12 (Debian 12: python3-jsonschema 4.10), or "".
const std::string& python_with_jsonschema() {
  static const std::string found = [] {
    for (const char* py : {"/usr/bin/python3", "python3"}) {
      PosixRunner r;
      RunOptions o;
      o.timeout = std::chrono::seconds(60);
      auto res = r.run({py, "-c", "import jsonschema; jsonschema.Draft202012Validator"}, o);
      if (res.exit_code == 0) return std::string(py);
    }
    return std::string();
  }();
  return found;
}

// Runs tests/schema_check.py on `docs` (schema name, document): its output, its exit code in *rc.
std::string standard_check(const std::vector<std::pair<std::string, json>>& docs, int* rc) {
  TempDir t;
  std::vector<std::string> argv{python_with_jsonschema(),
                                std::string(GREY_TEST_SOURCE_DIR) + "/schema_check.py",
                                std::string(GREY_TEST_SOURCE_DIR) + "/../docs/schema"};
  for (size_t i = 0; i < docs.size(); ++i) {
    std::string f = t / ("doc" + std::to_string(i) + ".json");
    write_file(f, docs[i].second.dump());
    argv.push_back(docs[i].first);
    argv.push_back(f);
  }
  PosixRunner r;
  RunOptions o;
  o.timeout = std::chrono::seconds(120);
  auto res = r.run(argv, o);
  *rc = res.exit_code;
  return res.out + res.err;
}

// The outputs' tests: what they checked is checked by the standard validator too.
class SchemaOutputs : public ::testing::Test {
 protected:
  void SetUp() override { checked().clear(); }
  void TearDown() override {
    if (python_with_jsonschema().empty() || checked().empty()) return;
    int rc = -1;
    std::string out = standard_check(checked(), &rc);
    EXPECT_EQ(rc, 0) << "python3-jsonschema disagrees:\n" << out;
  }
};

// The first error of `doc` against `schema`, "" when it is valid.
std::string first_error(const json& doc, const std::string& schema) {
  auto e = schemas().validate(doc, schema);
  return e.empty() ? "" : e[0];
}

json parse_json(const std::string& text, const std::string& what) {
  json j = json::parse(text, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << what << " is not JSON:\n" << text;
  return j.is_discarded() ? json() : j;
}

// A YAML plan as JSON, scalars typed the way the plan reader types them (plan_io.cc): quoted
// scalars are strings; plain ones null, booleans, integers or floats when they read as one.
json yaml_to_json(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Scalar: {
      const std::string& s = n.Scalar();
      if (n.Tag() == "!") return s;
      if (s == "null" || s == "~" || s.empty()) return nullptr;
      if (s == "true") return true;
      if (s == "false") return false;
      json num = json::parse(s, nullptr, false);
      if (!num.is_discarded() && num.is_number()) return num;
      return s;
    }
    case YAML::NodeType::Sequence: {
      json a = json::array();
      for (const auto& x : n) a.push_back(yaml_to_json(x));
      return a;
    }
    case YAML::NodeType::Map: {
      json o = json::object();
      for (const auto& kv : n) o[kv.first.Scalar()] = yaml_to_json(kv.second);
      return o;
    }
    default:
      return nullptr;
  }
}

// ---- The validator itself can fail -------------------------------------------------------------

TEST(SchemaValidator, RejectsWhatTheKeywordsForbid) {
  json s = json::parse(R"({
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
      "n": {"type": ["integer", "null"], "minimum": 0},
      "s": {"type": "string", "pattern": "^a+$", "minLength": 2},
      "e": {"enum": ["x", "y"]},
      "c": {"const": 1},
      "a": {"type": "array", "items": {"$ref": "#/$defs/pos"}},
      "o": {"oneOf": [{"type": "null"}, {"$ref": "other.schema.json"}]},
      "m": {"type": "object", "propertyNames": {"enum": ["k"]}, "additionalProperties": {"type": "number"}}
    },
    "required": ["n"],
    "additionalProperties": false,
    "dependentRequired": {"e": ["c"]},
    "if": {"properties": {"e": {"const": "y"}}, "required": ["e"]},
    "then": {"required": ["s"]},
    "$defs": {"pos": {"type": "number", "exclusiveMinimum": 0}}
  })");
  json other = json::parse(R"({"type": "object", "required": ["z"]})");
  SchemaSet set(std::map<std::string, json>{{"t.schema.json", s}, {"other.schema.json", other}});
  auto errs = [&](const char* text) { return set.validate(json::parse(text), "t.schema.json"); };
  const char* good =
      R"({"n": 1, "s": "aa", "e": "x", "c": 1, "a": [1, 2.5], "o": {"z": 0}, "m": {"k": 1}})";
  EXPECT_TRUE(errs(good).empty()) << joined(errs(good));
  EXPECT_TRUE(errs(R"({"n": null, "o": null})").empty());
  EXPECT_TRUE(errs(R"({"n": 2.0})").empty());  // an integral number is an integer
  for (const char* bad :
       {R"({})", R"({"n": "1"})", R"({"n": 1.5})", R"({"n": -1})", R"({"n": 1, "extra": 0})",
        R"({"n": 1, "s": "ab"})", R"({"n": 1, "s": "a"})", R"({"n": 1, "e": "z", "c": 1})",
        R"({"n": 1, "c": 2})", R"({"n": 1, "a": [0]})", R"({"n": 1, "a": ["1"]})",
        R"({"n": 1, "o": {}})", R"({"n": 1, "o": 3})", R"({"n": 1, "m": {"j": 1}})",
        R"({"n": 1, "m": {"k": "1"}})", R"({"n": 1, "e": "x"})", R"({"n": 1, "e": "y", "c": 1})",
        R"([])"})
    EXPECT_FALSE(errs(bad).empty()) << bad;
  EXPECT_NE(joined(errs(R"({"n": 1, "extra": 0})")).find("unexpected property \"extra\""),
            std::string::npos);
  EXPECT_NE(joined(errs(R"({"n": "1"})")).find("/n: is string"), std::string::npos)
      << joined(errs(R"({"n": "1"})"));
}

TEST(SchemaValidator, RefusesASchemaWithAnUnsupportedKeyword) {
  EXPECT_NONFATAL_FAILURE(
      SchemaSet(std::map<std::string, json>{
          {"x.schema.json", json::parse(R"({"type": "object", "maxProperties": 1})")}}),
      "unsupported keyword \"maxProperties\"");
  EXPECT_NONFATAL_FAILURE(
      SchemaSet(std::map<std::string, json>{
          {"x.schema.json", json::parse(R"({"properties": {"a": {"type": "float"}}})")}}),
      "unknown type");
}

// ---- The schema files ----------------------------------------------------------------------

const char* const kSchemaFiles[] = {"detect.schema.json",        "plan.schema.json",
                                    "apply-result.schema.json",  "status.schema.json",
                                    "daemon-status.schema.json", "daemon-log-event.schema.json"};

TEST(Schemas, EveryOutputHasADraft202012SchemaWithItsVersion) {
  EXPECT_EQ(schemas().docs().size(), std::size(kSchemaFiles));
  for (const char* name : kSchemaFiles) {
    ASSERT_TRUE(schemas().docs().count(name)) << name;
    const json& s = schemas().doc(name);
    EXPECT_EQ(s.value("$schema", ""), "https://json-schema.org/draft/2020-12/schema") << name;
    std::string id = s.value("$id", "");
    EXPECT_EQ(id.substr(id.rfind('/') + 1), name);
    EXPECT_FALSE(s.value("title", "").empty()) << name;
    EXPECT_NE(s.value("description", "").find("docs/FIELDS.md"), std::string::npos) << name;
  }
  // schema_version: the constant each writer uses, required in each object.
  auto version_of = [](const json& object_schema) {
    EXPECT_NE(std::find(object_schema["required"].begin(), object_schema["required"].end(),
                        "schema_version"),
              object_schema["required"].end());
    EXPECT_EQ(object_schema["additionalProperties"], false);
    return object_schema["properties"]["schema_version"]["const"];
  };
  EXPECT_EQ(version_of(schemas().doc("detect.schema.json")["$defs"]["gpu"]), 1);
  EXPECT_EQ(version_of(schemas().doc("plan.schema.json")), Plan{}.schema_version);
  EXPECT_EQ(version_of(schemas().doc("apply-result.schema.json")), kApplyResultSchemaVersion);
  EXPECT_EQ(version_of(schemas().doc("status.schema.json")), kStatusSchemaVersion);
  EXPECT_EQ(version_of(schemas().doc("daemon-status.schema.json")), kDaemonStatusSchemaVersion);
  EXPECT_EQ(version_of(schemas().doc("daemon-log-event.schema.json")), kDaemonLogSchemaVersion);
}

// The standard validator (when this machine has it) takes the schemas as valid draft 2020-12,
// resolves the cross-file $ref, and does reject a wrong document.
TEST(Schemas, StandardValidatorAgrees) {
  if (python_with_jsonschema().empty())
    GTEST_SKIP() << "no python3 with jsonschema (Debian: python3-jsonschema)";
  json status = {{"schema_version", kStatusSchemaVersion},
                 {"running", false},
                 {"pid", nullptr},
                 {"stale_pid_file", false},
                 {"why", "no pid file"},
                 {"last_tick", nullptr},
                 {"last_tick_age_s", nullptr},
                 {"status", nullptr},
                 {"state_dir", "/s"},
                 {"config_file", "/s/config.yaml"},
                 {"config_present", false},
                 {"artifacts_dir", "/s/artifacts"},
                 {"detection", nullptr},
                 {"active_plan", nullptr}};
  int rc = -1;
  std::string out = standard_check({{"status.schema.json", status}}, &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_TRUE(schemas().validate(status, "status.schema.json").empty());
  json bad = status;
  bad["status"] = {{"schema_version", kDaemonStatusSchemaVersion}, {"pid", "1"}};
  out = standard_check({{"status.schema.json", bad}}, &rc);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("status.schema.json"), std::string::npos) << out;
  EXPECT_FALSE(schemas().validate(bad, "status.schema.json").empty());
}

// The closed lists in the schemas are the lists the code uses.
TEST(Schemas, ClosedListsMatchTheCode) {
  const json& plan = schemas().doc("plan.schema.json");
  EXPECT_EQ(plan["$defs"]["plan_field"]["enum"],
            json(std::vector<std::string>(std::begin(kPlanFields), std::end(kPlanFields))));
  const json& gp = plan["$defs"]["gpu"]["properties"];
  EXPECT_EQ(
      gp["provenance"]["additionalProperties"]["enum"],
      json(std::vector<std::string>(std::begin(kProvenanceWords), std::end(kProvenanceWords))));
  EXPECT_EQ(
      gp["enforcement"]["additionalProperties"]["enum"],
      json(std::vector<std::string>(std::begin(kEnforcementWords), std::end(kEnforcementWords))));
  for (const char* f : kPlanFields) EXPECT_TRUE(gp.contains(f)) << f;

  // detect's field_sources keys: the JSON key of every GpuFields member that is printed.
  const json& gpu = schemas().doc("detect.schema.json")["$defs"]["gpu"];
  json full = json::object();
  for (auto it = gpu["properties"].begin(); it != gpu["properties"].end(); ++it) {
    const json& t = it.value().contains("type") ? it.value()["type"] : json("string");
    std::string first = t.is_array() ? t[0].get<std::string>() : t.get<std::string>();
    if (first == "integer") full[it.key()] = 7;
    if (first == "number") full[it.key()] = 7.5;
    if (first == "boolean") full[it.key()] = true;
    if (first == "string") full[it.key()] = "x";
  }
  full["vendor"] = "amd";
  full["power_state"] = "suspended";
  full["device_id"] = "0000:0b:00.0";
  full["detection_timestamp"] = "2026-11-26T15:00:00Z";
  full["pci_id"] = "1002:687f";
  full["pci_bandwidth"] = "Gen3 x16";
  full["thermal_limits"] = {{"slowdown_c", 1}, {"shutdown_c", 2}, {"max_operating_c", 3}};
  full["partitions"] = json::array({{{"kind", "mig"},
                                     {"gi_id", 1},
                                     {"ci_id", 0},
                                     {"profile", "1g.10gb"},
                                     {"memory_total_mb", 9984},
                                     {"uuid", "MIG-x"}}});
  GpuSpec all = spec_from_json(full);
  GpuFields none;
  std::set<std::string> keys;
  for (const auto& m : fill_missing(none, all.f))
    if (std::string k = json_key_of_field(m); !k.empty()) keys.insert(k);
  std::set<std::string> in_schema;
  for (const auto& k : gpu["properties"]["field_sources"]["propertyNames"]["enum"])
    in_schema.insert(k.get<std::string>());
  EXPECT_EQ(keys, in_schema);
  // And every printed key is in the schema: a full element validates.
  json printed = spec_to_json(all);
  EXPECT_VALID(json::array({printed}), "detect.schema.json");
}

// ---- Outputs of the built binary -----------------------------------------------------------

struct Cli {
  TempDir tmp;
  std::string state = tmp / "state";
  std::string sys = tmp / "sys";
  std::map<std::string, std::string> env;
  Cli() {
    fs::create_directories(sys + "/class/drm");
    fs::create_directories(tmp / "bin");
    env = {{"PATH", tmp / "bin"},
           {"GREY_CONFIG_DIR", state},
           {"GREY_SYSFS_ROOT", sys},
           {"GREY_PROC_ROOT", tmp / "proc"},
           {"GREY_NVML_LIBRARY", "/nonexistent/libnvidia-ml.so.1"},
           {"GREY_CUDA_LIBRARY", "/nonexistent/libcuda.so.1"},
           {"GREY_OPENCL_LIBRARY", "/nonexistent/libOpenCL.so.1"}};
  }
  void amd_card() {
    fs::copy(test::fixture_path("sysfs/amd-radeon-rx-vega56-lact/card0"), sys + "/class/drm/card0",
             fs::copy_options::recursive);
  }
  void fake_nvml() {
    env["GREY_NVML_LIBRARY"] = std::string(GREY_FAKE_LIB_DIR) + "/fake_nvml.so";
    env["FAKE_NVML_RECORD"] = tmp / "nvml-record.txt";
  }
  CommandResult run(const std::vector<std::string>& args) { return test::run_grey(args, env); }
  json json_of(const std::vector<std::string>& args, int want_exit = 0) {
    auto r = run(args);
    EXPECT_EQ(r.exit_code, want_exit) << args[0] << ": " << r.err;
    return parse_json(r.out, args[0]);
  }
};

std::string replay_dir(const TempDir& t, const std::string& name,
                       const std::map<std::string, std::string>& files) {
  std::string d = t / name;
  fs::create_directories(d);
  for (const auto& [file, fixture] : files) write_file(d + "/" + file, test::read_fixture(fixture));
  return d;
}

TEST_F(SchemaOutputs, DetectJsonAndTheSavedSpec) {
  Cli c;
  std::vector<json> outputs;
  // No GPU at all: [].
  outputs.push_back(c.json_of({"detect", "--json", "--no-save", "--timeout", "3"}));
  EXPECT_EQ(outputs.back(), json::array());
  // Replays of real captures: a table of ten, NVIDIA + AMD, a sysfs tree with lspci.
  outputs.push_back(c.json_of(
      {"detect", "--json", "--no-save", "--replay",
       replay_dir(
           c.tmp, "r1",
           {{"nvidia-smi.txt", "nvidia-smi-table/nvidia-a40-x10-550.127.05-thamada.txt"}})}));
  EXPECT_EQ(outputs.back().size(), 10u);
  outputs.push_back(c.json_of(
      {"detect", "--json", "--no-save", "--replay",
       replay_dir(
           c.tmp, "r2",
           {{"nvidia-smi.xml", "nvidia-smi-xml/nvidia-geforce-rtx2070-x2-590.44.01-telegraf.xml"},
            {"rocm-smi.json", "rocm-smi/amd-instinct-mi100-x6-rocm5.7.1-json-telegraf.json"}})}));
  EXPECT_EQ(outputs.back().size(), 8u);
  // A real AMD sysfs tree, live (it is saved: last_gpu_spec.json is checked below).
  c.amd_card();
  outputs.push_back(c.json_of({"detect", "--json", "--timeout", "3"}));
  EXPECT_EQ(outputs.back().size(), 1u);
  json saved = parse_json(read_file(c.state + "/last_gpu_spec.json"), "last_gpu_spec.json");
  EXPECT_VALID(saved, "detect.schema.json");
  // The fake NVML (two GPUs, every NVML field) next to the AMD card.
  c.fake_nvml();
  outputs.push_back(c.json_of({"detect", "--json", "--no-save", "--timeout", "3"}));
  EXPECT_EQ(outputs.back().size(), 3u);

  size_t elements = 0;
  for (const auto& o : outputs) {
    EXPECT_VALID(o, "detect.schema.json");
    for (const auto& g : o) {
      ++elements;
      EXPECT_EQ(g["schema_version"], 1) << g.dump(1);
      EXPECT_FALSE(g["field_sources"].empty()) << g.dump(1);
    }
  }
  EXPECT_EQ(elements, 22u);

  // A change of shape fails: a wrong type, an added field, a missing version, an unknown vendor.
  json bad = outputs.back();
  bad[0]["vram_total_mb"] = "81559";
  EXPECT_NE(first_error(bad, "detect.schema.json").find("/0/vram_total_mb"), std::string::npos)
      << first_error(bad, "detect.schema.json");
  bad = outputs.back();
  bad[1]["vram_reserved_mb"] = 1;
  EXPECT_NE(first_error(bad, "detect.schema.json").find("vram_reserved_mb"), std::string::npos);
  bad = outputs.back();
  bad[0].erase("schema_version");
  EXPECT_NE(first_error(bad, "detect.schema.json").find("schema_version"), std::string::npos);
  bad = outputs.back();
  bad[0]["schema_version"] = 2;
  EXPECT_FALSE(first_error(bad, "detect.schema.json").empty());
  bad = outputs.back();
  bad[0]["vendor"] = "NVIDIA";
  EXPECT_FALSE(first_error(bad, "detect.schema.json").empty());
  bad = outputs.back();
  bad[0]["thermal_limits"]["slowdown_c"] = "90";
  EXPECT_FALSE(first_error(bad, "detect.schema.json").empty());
  EXPECT_FALSE(first_error(outputs.back()[0], "detect.schema.json").empty());  // not an array
}

TEST_F(SchemaOutputs, PlanJsonOutputFilesAndTheSavedYaml) {
  Cli c;
  c.amd_card();
  c.fake_nvml();
  ASSERT_EQ(c.run({"detect", "--timeout", "3"}).exit_code, 0);
  std::vector<json> plans;
  plans.push_back(c.json_of({"plan", "--json"}));
  plans.push_back(c.json_of({"plan", "--mode", "aggressive", "--json"}));
  // config.yaml overrides (provenance "config"), per GPU too.
  write_file(c.state + "/config.yaml",
             "per_process_vram_cap_mb: 1000\ncooldown_threshold_c: 80\n"
             "gpus:\n  \"1\": {recommended_batch_size: 64}\n",
             0600);
  plans.push_back(c.json_of({"plan", "--json", "--output", c.tmp / "out.json"}));
  plans.push_back(parse_json(read_file(c.tmp / "out.json"), "plan --output out.json"));
  ASSERT_EQ(c.run({"plan", "--mode", "aggressive", "--output", c.tmp / "out.yaml"}).exit_code, 0);
  plans.push_back(yaml_to_json(YAML::LoadFile(c.tmp / "out.yaml")));
  plans.push_back(yaml_to_json(YAML::LoadFile(c.state + "/last_plan.yaml")));
  bool config_seen = false;
  for (const auto& p : plans) {
    EXPECT_VALID(p, "plan.schema.json");
    EXPECT_EQ(p["schema_version"], 1);
    EXPECT_EQ(p["gpus"].size(), 3u);
    for (const auto& g : p["gpus"])
      for (const auto& [k, v] : g["provenance"].items()) config_seen = config_seen || v == "config";
  }
  EXPECT_TRUE(config_seen);

  json bad = plans[0];
  bad["gpus"][0]["confidence"]["per_process_vram_cap_mb"] = 1.5;
  EXPECT_NE(first_error(bad, "plan.schema.json").find("/gpus/0/confidence/per_process_vram_cap_mb"),
            std::string::npos)
      << first_error(bad, "plan.schema.json");
  bad = plans[0];
  bad["gpus"][0]["provenance"]["per_process_vram_cap_mb"] = "guessed";
  EXPECT_FALSE(first_error(bad, "plan.schema.json").empty());
  bad = plans[0];
  bad["gpus"][0]["rationale"]["vram_cap"] = "a field the plan does not have";
  EXPECT_FALSE(first_error(bad, "plan.schema.json").empty());
  bad = plans[0];
  bad["gpus"][0]["cooldown_threshold_c"] = nullptr;
  EXPECT_FALSE(first_error(bad, "plan.schema.json").empty());
  bad = plans[0];
  bad.erase("schema_version");
  EXPECT_FALSE(first_error(bad, "plan.schema.json").empty());
}

TEST_F(SchemaOutputs, ApplyJsonDryRunRealAndDestructive) {
  Cli c;
  c.amd_card();
  ASSERT_EQ(c.run({"detect", "--timeout", "3"}).exit_code, 0);
  ASSERT_EQ(c.run({"plan", "--mode", "aggressive"}).exit_code, 0);
  std::vector<json> results;
  results.push_back(c.json_of({"apply", "--json"}));
  EXPECT_EQ(results.back()["dry_run"], true);
  results.push_back(c.json_of({"apply", "--no-dry-run", "--json"}));
  EXPECT_FALSE(results.back()["artifacts"].empty());
  results.push_back(c.json_of({"apply", "--no-dry-run", "--destructive", "--yes", "--json"}));
  for (const auto& r : results) {
    EXPECT_VALID(r, "apply-result.schema.json");
    EXPECT_EQ(r["schema_version"], kApplyResultSchemaVersion);
    EXPECT_EQ(r["success"], true) << r.dump(1);
  }
  json bad = results[0];
  bad["success"] = "yes";
  EXPECT_NE(first_error(bad, "apply-result.schema.json").find("/success"), std::string::npos);
  bad = results[0];
  bad["metrics"]["actions_count"] = -1;
  EXPECT_FALSE(first_error(bad, "apply-result.schema.json").empty());
  bad = results[0];
  bad["metrics"].erase("plan_mode");
  EXPECT_FALSE(first_error(bad, "apply-result.schema.json").empty());
}

// ---- The daemon: daemon_status.json, logs/daemon.jsonl, status --json --------------------------

// As in daemon_test.cc: GPU 0 heats past cooldown 80 at tick 5 and cools under resume 65 from
// tick 9; process 4242 goes over the 1000 MiB cap at tick 6 and back under at 12, process 4243
// goes over at 7 and ends at 10.
const char* kScript =
    "tick 0 0 50 1000 10 100000\n"
    "tick 5 0 85 1000 90 300000\n"
    "tick 6 0 86 1000 90 300000\n"
    "tick 7 0 84 1000 90 300000\n"
    "tick 8 0 75 1000 50 300000\n"
    "tick 9 0 60 1000 10 100000\n"
    "proc 2 0 4242 500 trainer\n"
    "proc 6 0 4242 1500 trainer\n"
    "proc 12 0 4242 800 trainer\n"
    "proc 14 0 4242 -1 trainer\n"
    "proc 7 0 4243 2000 hog\n"
    "proc 10 0 4243 -1 hog\n";

using Clock = std::chrono::steady_clock;

// Polls `pred` (the daemon is another process: there is nothing to wait on but its files).
bool wait_until(const std::function<bool()>& pred, double seconds) {
  auto end = Clock::now() + std::chrono::duration<double>(seconds);
  while (Clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

std::vector<json> log_lines(const std::string& path) {
  std::vector<json> out;
  std::error_code ec;
  if (!fs::exists(path, ec)) return out;
  std::istringstream in(read_file(path));
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) out.push_back(parse_json(l, "a log line"));
  return out;
}

size_t count_event(const std::vector<json>& lines, const std::string& name) {
  size_t n = 0;
  for (const auto& j : lines) n += j.is_object() && j.value("event", "") == name;
  return n;
}

struct DaemonEnv : Cli {
  pid_t pid = -1;
  bool reaped = false;
  int status = 0;
  DaemonEnv() {
    fs::create_directories(state);
    ::chmod(state.c_str(), 0700);
    fake_nvml();
    env["FAKE_NVML_SCRIPT"] = tmp / "script.txt";
    write_file(tmp / "script.txt", kScript);
    write_file(state + "/config.yaml",
               "per_process_vram_cap_mb: 1000\ncooldown_threshold_c: 80\nresume_threshold_c: 65\n",
               0600);
  }
  ~DaemonEnv() {
    if (pid > 0 && !reaped) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
    }
  }
  void start(const std::vector<std::string>& args) {
    std::vector<std::string> argv{GREY_BINARY, "start-daemon"};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<std::string> envs;
    for (char** e = environ; e && *e; ++e) {
      std::string kv(*e);
      auto eq = kv.find('=');
      if (eq != std::string::npos && env.count(kv.substr(0, eq))) continue;
      envs.push_back(kv);
    }
    for (const auto& [k, v] : env) envs.push_back(k + "=" + v);
    std::string out = tmp / "daemon.out";
    pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      std::vector<char*> a, en;
      for (auto& s : argv) a.push_back(s.data());
      a.push_back(nullptr);
      for (auto& s : envs) en.push_back(s.data());
      en.push_back(nullptr);
      ::execve(a[0], a.data(), en.data());
      ::_exit(127);
    }
  }
  bool exited() {
    if (!reaped && ::waitpid(pid, &status, WNOHANG) == pid) reaped = true;
    return reaped;
  }
  std::vector<json> log() { return log_lines(state + "/logs/daemon.jsonl"); }
  json status_file() {
    std::error_code ec;
    if (!fs::exists(state + "/daemon_status.json", ec)) return json();
    json j = json::parse(read_file(state + "/daemon_status.json"), nullptr, false);
    return j.is_discarded() ? json() : j;
  }
};

void expect_valid_log(const std::vector<json>& lines, std::set<std::string>* seen) {
  ASSERT_FALSE(lines.empty());
  for (const auto& l : lines) {
    EXPECT_VALID(l, "daemon-log-event.schema.json");
    EXPECT_EQ(l["schema_version"], kDaemonLogSchemaVersion) << l.dump();
    if (seen) seen->insert(l.value("event", ""));
  }
}

TEST_F(SchemaOutputs, DaemonStatusLogAndStatusCommandOfAGoverningDaemon) {
  DaemonEnv e;
  // No daemon yet: status --json says so (exit 3), with no status file.
  json none = e.json_of({"status", "--json"}, 3);
  EXPECT_VALID(none, "status.schema.json");
  EXPECT_EQ(none["running"], false);
  EXPECT_TRUE(none["status"].is_null());

  e.start({"--interval", "0.05", "--no-dry-run", "--consent"});
  ASSERT_TRUE(wait_until([&] { return count_event(e.log(), "process_over_cap_end") >= 2; }, 30))
      << read_file(e.tmp / "daemon.out");
  json running_file = e.status_file();
  EXPECT_VALID(running_file, "daemon-status.schema.json");
  EXPECT_EQ(running_file["state"], "running");
  json running = e.json_of({"status", "--json"});
  EXPECT_VALID(running, "status.schema.json");
  EXPECT_EQ(running["running"], true);
  EXPECT_EQ(running["pid"], e.pid);
  EXPECT_TRUE(running["last_tick_age_s"].is_number());
  EXPECT_EQ(running["status"]["schema_version"], kDaemonStatusSchemaVersion);
  EXPECT_EQ(running["schema_version"], kStatusSchemaVersion);

  // SIGHUP: reload (and plan_reloaded); then SIGTERM stops it cleanly.
  ::kill(e.pid, SIGHUP);
  ASSERT_TRUE(wait_until([&] { return count_event(e.log(), "reload") >= 1; }, 30));
  ::kill(e.pid, SIGTERM);
  ASSERT_TRUE(wait_until([&] { return e.exited(); }, 30));
  EXPECT_EQ(WEXITSTATUS(e.status), 0) << read_file(e.tmp / "daemon.out");

  json stopped_file = e.status_file();
  EXPECT_VALID(stopped_file, "daemon-status.schema.json");
  EXPECT_EQ(stopped_file["state"], "stopped");
  EXPECT_EQ(stopped_file["schema_version"], kDaemonStatusSchemaVersion);
  json stopped = e.json_of({"status", "--json"}, 3);
  EXPECT_VALID(stopped, "status.schema.json");
  EXPECT_EQ(stopped["running"], false);
  EXPECT_EQ(stopped["status"]["state"], "stopped");

  std::set<std::string> seen;
  expect_valid_log(e.log(), &seen);
  for (const char* ev : {"spec_loaded", "plan_loaded", "daemon_started", "governor_transition",
                         "power_limit_lowered", "power_limit_restored", "process_over_cap",
                         "process_over_cap_end", "plan_reloaded", "reload", "artifacts_written",
                         "tick_stats", "daemon_stopping", "daemon_stopped"})
    EXPECT_TRUE(seen.count(ev)) << ev;

  // A change of shape fails.
  json bad = stopped_file;
  bad["gpus"][0]["state"] = "throttled";
  EXPECT_NE(first_error(bad, "daemon-status.schema.json").find("/gpus/0/state"), std::string::npos)
      << first_error(bad, "daemon-status.schema.json");
  bad = stopped_file;
  bad.erase("stopped_at");
  EXPECT_FALSE(first_error(bad, "daemon-status.schema.json").empty());
  bad = running_file;
  bad["ticks"] = "3";
  EXPECT_FALSE(first_error(bad, "daemon-status.schema.json").empty());
  bad = running;
  bad["status"]["pid"] = "1";  // the embedded daemon_status.json is checked too
  EXPECT_FALSE(first_error(bad, "status.schema.json").empty());
  bad = running;
  bad["last_tick_age_s"] = "0.1";
  EXPECT_FALSE(first_error(bad, "status.schema.json").empty());
  auto lines = e.log();
  for (auto& l : lines) {
    if (l["event"] != "power_limit_lowered") continue;
    json b = l;
    b["details"]["to_w"] = 630;  // a number where the event writes the text it wrote
    EXPECT_NE(first_error(b, "daemon-log-event.schema.json").find("/details/to_w"),
              std::string::npos)
        << first_error(b, "daemon-log-event.schema.json");
    b = l;
    b["details"]["extra"] = 1;
    EXPECT_FALSE(first_error(b, "daemon-log-event.schema.json").empty());
    b = l;
    b["event"] = "power_limit_raised";
    EXPECT_FALSE(first_error(b, "daemon-log-event.schema.json").empty());
    b = l;
    b.erase("schema_version");
    EXPECT_FALSE(first_error(b, "daemon-log-event.schema.json").empty());
  }
}

// The dry-run daemon (in this process, a fixed number of ticks): power_limit_dry_run events.
TEST_F(SchemaOutputs, DaemonDryRunLog) {
  DaemonEnv e;
  ASSERT_EQ(e.run({"detect", "--timeout", "3"}).exit_code, 0);
  for (const auto& [k, v] : e.env)
    if (k != "PATH") ::setenv(k.c_str(), v.c_str(), 1);
  DaemonOptions o;
  o.interval_s = 0.02;
  o.state_dir = e.state;
  o.sysfs_root = e.sys;
  o.procfs_root = e.tmp / "proc";
  o.max_ticks = 16;
  o.stats_every = 4;
  o.artifacts_every = 4;
  std::ostringstream out, err;
  EXPECT_EQ(run_daemon(o, out, err), 0) << err.str();
  for (const auto& [k, v] : e.env)
    if (k != "PATH") ::unsetenv(k.c_str());
  std::set<std::string> seen;
  auto lines = e.log();
  expect_valid_log(lines, &seen);
  EXPECT_EQ(count_event(lines, "power_limit_dry_run"), 4u);
  EXPECT_TRUE(seen.count("governor_transition"));
  json st = e.status_file();
  EXPECT_VALID(st, "daemon-status.schema.json");
  EXPECT_EQ(st["ticks"], 16);
  for (auto& l : lines) {
    if (l["event"] != "power_limit_dry_run") continue;
    l["details"]["action"] = "raise";
    EXPECT_FALSE(first_error(l, "daemon-log-event.schema.json").empty());
  }
}

}  // namespace
}  // namespace grey
