// lshw: the text tree (`lshw`, `lshw -C display`) and JSON (`lshw -json [-C display]`), detected.
// Only nodes of class "display" are devices. lshw's JSON writer has been broken in several
// releases (objects separated by commas without [ ], B.02.19 git snapshots that drop
// `"children" : [` and commas, trailing commas), so JSON is read by a small lenient parser that
// accepts all of these instead of a strict one.
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sources/parse_common.h"
#include "sources/parsers.h"
#include "util/strings.h"

namespace grey {
namespace {

// Tool text quoted in a note (control bytes replaced, cut to n).
std::string clip(std::string_view s, size_t n = 200) {
  return quote_for_note(s, n);
}

// No machine has this many GPUs; beyond it the input is junk and the rest is ignored (keeps
// time and memory bounded on huge inputs).
constexpr size_t kMaxDevices = 1024;
const char* const kTooMany = "lshw lists more than 1024 display nodes; the rest were ignored";

// ---- one display node, whatever the format ---------------------------------------------------

struct Node {
  std::optional<std::string> id, product, vendor, businfo, description, driver, logicalname;
  bool unclaimed = false, disabled = false;
  std::vector<std::string> memory_ranges;  // "d0000000-dfffffff"
};

// "Juniper XT [Radeon HD 5770] [1002:68B8]" (lshw -numeric) -> ids, and the name without them.
std::pair<std::string, std::optional<std::pair<uint32_t, uint32_t>>> split_numeric_product(
    std::string s) {
  std::string_view t = trim(s);
  if (t.size() >= 11 && t.back() == ']') {
    size_t open = t.rfind('[');
    if (open != std::string_view::npos) {
      std::string_view inner = t.substr(open + 1, t.size() - open - 2);
      auto parts = split(inner, ':');
      if (parts.size() == 2 && parts[0].size() == 4 && parts[1].size() == 4) {
        auto v = parse_hex(parts[0]);
        auto d = parse_hex(parts[1]);
        if (v && d) {
          return {std::string(trim(t.substr(0, open))),
                  std::make_pair(static_cast<uint32_t>(*v), static_cast<uint32_t>(*d))};
        }
      }
    }
  }
  return {std::string(t), std::nullopt};
}

// "NVIDIA Corporation [10DE]" (lshw -numeric) -> id and name.
std::pair<std::string, std::optional<uint32_t>> split_numeric_vendor(std::string s) {
  std::string_view t = trim(s);
  if (t.size() >= 6 && t.back() == ']') {
    size_t open = t.rfind('[');
    if (open != std::string_view::npos && t.size() - open == 6) {
      if (auto v = parse_hex(t.substr(open + 1, 4))) {
        return {std::string(trim(t.substr(0, open))), static_cast<uint32_t>(*v)};
      }
    }
  }
  return {std::string(t), std::nullopt};
}

std::string vendor_from_name(std::string_view name) {
  std::string l = to_lower(name);
  if (contains(l, "nvidia")) return "nvidia";
  if (contains(l, "advanced micro devices") || contains(l, "[amd") || contains(l, "amd/ati") ||
      starts_with(l, "amd") || starts_with(l, "ati ")) {
    return "amd";
  }
  if (contains(l, "intel")) return "intel";
  return "unknown";
}

std::optional<std::string> software_reason_for(std::string_view product) {
  std::string l = to_lower(product);
  for (const char* s : {"llvmpipe", "lavapipe", "softpipe", "swiftshader"}) {
    if (contains(l, s))
      return std::string("lshw product '") + clip(product, 80) + "' is the " + s +
             " software renderer";
  }
  return std::nullopt;
}

// Largest "memory:a-b" range, as MiB, for a note (a BAR is an address window, not VRAM).
std::optional<uint64_t> largest_range_mib(const std::vector<std::string>& ranges) {
  std::optional<uint64_t> best;
  for (const auto& r : ranges) {
    auto parts = split(r, '-');
    if (parts.size() != 2) continue;
    auto a = parse_hex(parts[0]);
    auto b = parse_hex(parts[1]);
    if (!a || !b || *b < *a) continue;
    uint64_t size = *b - *a;
    if (size == UINT64_MAX) continue;
    ++size;
    uint64_t mib = size / (1024ull * 1024ull);
    if (!best || mib > *best) best = mib;
  }
  return best;
}

Observation to_observation(const Node& n) {
  Observation o;
  if (n.product && !is_missing_marker(*n.product)) {
    auto [name, ids] = split_numeric_product(*n.product);
    if (!name.empty()) o.f.model = name;
    if (ids) {
      o.f.pci_vendor_id = ids->first;
      o.f.pci_device_id = ids->second;
    }
    if (auto sw = software_reason_for(name)) o.software_reason = sw;
  }
  std::optional<uint32_t> vid = o.f.pci_vendor_id;
  if (n.vendor && !is_missing_marker(*n.vendor)) {
    auto [name, id] = split_numeric_vendor(*n.vendor);
    if (id && !vid) vid = id;
    if (vid) {
      o.f.pci_vendor_id = vid;
      o.f.vendor = vendor_from_pci_id(*vid);
    } else {
      o.f.vendor = vendor_from_name(name);
    }
  } else if (vid) {
    o.f.vendor = vendor_from_pci_id(*vid);
  }
  if (n.businfo) {
    if (starts_with(trim(*n.businfo), "pci@")) {
      if (auto b = normalize_bus_id(*n.businfo)) {
        o.f.bus_id = *b;
      } else {
        o.notes.push_back("lshw bus info '" + clip(*n.businfo) + "' is not a PCI address; ignored");
      }
    } else {
      o.notes.push_back("lshw bus info '" + clip(*n.businfo) + "' (not PCI)");
    }
  }
  if (n.driver && !is_missing_marker(*n.driver)) o.f.kernel_driver = *n.driver;
  if (n.unclaimed) o.notes.push_back("lshw: UNCLAIMED (no kernel driver bound)");
  if (n.disabled) o.notes.push_back("lshw: DISABLED");
  if (n.description && !is_missing_marker(*n.description)) {
    o.notes.push_back("lshw description: " + clip(*n.description, 80));
  }
  if (auto mib = largest_range_mib(n.memory_ranges); mib && *mib > 0) {
    o.notes.push_back("lshw: largest memory BAR " + std::to_string(*mib) +
                      " MiB (PCI address window, not VRAM size)");
  }
  return o;
}

// ---- text tree -------------------------------------------------------------------------------

size_t indent_of(std::string_view line) {
  size_t i = 0;
  while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
  return i;
}

// "*-display:1 UNCLAIMED" -> id "display:1" and flags.
void parse_header(std::string_view h, Node& n) {
  h = trim(h.substr(2));
  size_t sp = h.find(' ');
  n.id = std::string(h.substr(0, sp));
  if (sp != std::string_view::npos) {
    std::string rest = to_lower(h.substr(sp));
    n.unclaimed = contains(rest, "unclaimed");
    n.disabled = contains(rest, "disabled");
  }
}

bool is_display_id(std::string_view id) {
  size_t colon = id.find(':');
  return id.substr(0, colon) == "display";
}

void text_field(std::string_view key, std::string_view value, Node& n) {
  std::string v(trim(value));
  if (key == "product") {
    n.product = v;
  } else if (key == "vendor") {
    n.vendor = v;
  } else if (key == "bus info") {
    n.businfo = v;
  } else if (key == "description") {
    n.description = v;
  } else if (key == "logical name") {
    n.logicalname = v;
  } else if (key == "configuration") {
    for (auto tok : split(v, ' ')) {
      if (starts_with(tok, "driver=")) n.driver = std::string(tok.substr(7));
    }
  } else if (key == "resources") {
    for (auto tok : split(v, ' ')) {
      if (starts_with(tok, "memory:")) n.memory_ranges.emplace_back(tok.substr(7));
    }
  }
}

ParseResult parse_text(std::string_view text) {
  ParseResult r;
  auto lines = split_lines(text);
  bool any_node = false, any_field = false, warned = false;
  std::vector<Node> displays;
  std::optional<Node> cur;
  size_t cur_indent = 0;
  bool too_many = false;
  auto flush = [&]() {
    if (cur && cur->id && is_display_id(*cur->id)) {
      if (displays.size() < kMaxDevices) {
        displays.push_back(std::move(*cur));
      } else {
        too_many = true;
      }
    }
    cur.reset();
  };
  for (auto line : lines) {
    if (too_many) break;
    auto t = trim(line);
    if (t.empty()) continue;
    if (starts_with(t, "WARNING:")) {
      if (!warned) r.notes.push_back("lshw: " + clip(t, 200));
      warned = true;
      continue;
    }
    size_t ind = indent_of(line);
    if (starts_with(t, "*-")) {
      flush();
      any_node = true;
      cur.emplace();
      cur_indent = ind;
      parse_header(t, *cur);
      continue;
    }
    size_t colon = t.find(": ");
    if (colon == std::string_view::npos && ends_with(t, ":")) colon = t.size() - 1;
    if (colon == std::string_view::npos || colon == 0) continue;
    std::string_view key = t.substr(0, colon);
    std::string_view value = colon + 2 <= t.size() ? t.substr(colon + 2) : std::string_view{};
    bool known_key = key == "description" || key == "product" || key == "vendor" ||
                     key == "physical id" || key == "bus info" || key == "configuration" ||
                     key == "capabilities" || key == "resources" || key == "version" ||
                     key == "logical name" || key == "width" || key == "clock";
    if (known_key) any_field = true;
    // A property belongs to the node whose header is just above it and less indented.
    if (cur && ind > cur_indent) text_field(key, value, *cur);
  }
  flush();
  if (!any_node && !any_field) {
    r.recognized = false;
    r.notes.push_back("no lshw '*-node' lines or properties: not lshw text output (first line: '" +
                      clip(trim(lines.empty() ? std::string_view{} : lines.front()), 120) + "')");
    return r;
  }
  for (const auto& n : displays) r.devices.push_back(to_observation(n));
  if (too_many) r.notes.push_back(kTooMany);
  if (displays.empty()) r.notes.push_back("lshw lists no display node");
  return r;
}

// ---- lenient JSON ----------------------------------------------------------------------------

struct JVal {
  enum Kind { Null, Scalar, Str, Obj, Arr } kind = Null;
  std::string s;  // Scalar/Str
  // Obj members (key "" = a child object without a key) and Arr items (key ""), in order.
  std::vector<std::string> keys;
  std::vector<JVal> vals;
  void add(std::string k, JVal v) {
    keys.push_back(std::move(k));
    vals.push_back(std::move(v));
  }
};

class Lenient {
 public:
  explicit Lenient(std::string_view t) : t_(t) {}
  bool truncated = false;
  bool too_deep = false;  // also set when the node budget is spent

  // Top level: any sequence of values, '[' / ']' / ',' between them ignored.
  std::vector<JVal> top() {
    std::vector<JVal> out;
    while (i_ < t_.size() && !too_deep) {
      char c = t_[i_];
      if (c == '{') {
        out.push_back(object(0));
      } else {
        ++i_;  // '[', ']', ',', whitespace and garbage
      }
    }
    return out;
  }

 private:
  static constexpr int kMaxDepth = 200;
  static constexpr size_t kMaxNodes = 200000;  // a real lshw tree has a few hundred
  std::string_view t_;
  size_t i_ = 0;
  size_t nodes_ = 0;

  bool over_budget(int depth) {
    if (depth > kMaxDepth || ++nodes_ > kMaxNodes) too_deep = true;
    return too_deep;
  }

  // Only these scalar members are read; the others are parsed and dropped to bound memory.
  static bool wanted(std::string_view k) {
    return k == "id" || k == "class" || k == "product" || k == "vendor" || k == "businfo" ||
           k == "description" || k == "logicalname" || k == "claimed" || k == "disabled" ||
           k == "driver";
  }

  void ws() {
    while (i_ < t_.size() && std::isspace(static_cast<unsigned char>(t_[i_]))) ++i_;
  }

  // At '"'.
  std::string str() {
    std::string out;
    ++i_;
    while (i_ < t_.size()) {
      char c = t_[i_++];
      if (c == '"') return out;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i_ >= t_.size()) break;
      char e = t_[i_++];
      switch (e) {
        case 'n':
          out += '\n';
          break;
        case 't':
          out += '\t';
          break;
        case 'r':
          out += '\r';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'u': {
          if (i_ + 4 <= t_.size()) {
            if (auto cp = parse_hex(t_.substr(i_, 4))) {
              i_ += 4;
              uint32_t c32 = static_cast<uint32_t>(*cp);
              if (c32 >= 0xD800 && c32 <= 0xDBFF && i_ + 6 <= t_.size() && t_[i_] == '\\' &&
                  t_[i_ + 1] == 'u') {
                if (auto lo = parse_hex(t_.substr(i_ + 2, 4));
                    lo && *lo >= 0xDC00 && *lo <= 0xDFFF) {
                  i_ += 6;
                  c32 = 0x10000 + ((c32 - 0xD800) << 10) + (static_cast<uint32_t>(*lo) - 0xDC00);
                }
              }
              if (c32 >= 0xD800 && c32 <= 0xDFFF) c32 = 0xFFFD;
              append_utf8(out, c32);
              break;
            }
          }
          out += 'u';
          break;
        }
        default:
          out += e;  // \" \\ \/ and anything else
      }
    }
    truncated = true;
    return out;
  }

  // A value; consumes nothing when the next char cannot start one.
  JVal value(int depth) {
    ws();
    JVal v;
    if (i_ >= t_.size()) {
      truncated = true;
      return v;
    }
    char c = t_[i_];
    if (c == '{') return object(depth + 1);
    if (c == '[') return array(depth + 1);
    if (c == '"') {
      v.kind = JVal::Str;
      v.s = str();
      return v;
    }
    size_t start = i_;
    while (i_ < t_.size()) {
      char d = t_[i_];
      if (d == ',' || d == '}' || d == ']' || d == '{' || d == '[' || d == '"' || d == ':' ||
          std::isspace(static_cast<unsigned char>(d)))
        break;
      ++i_;
    }
    if (i_ > start) {
      v.kind = JVal::Scalar;
      v.s = std::string(t_.substr(start, i_ - start));
      if (v.s == "null") v.kind = JVal::Null;
    }
    return v;
  }

  // At '{'.
  JVal object(int depth) {
    JVal o;
    o.kind = JVal::Obj;
    ++i_;
    if (over_budget(depth)) return o;
    while (!too_deep) {
      ws();
      if (i_ >= t_.size()) {
        truncated = true;
        return o;
      }
      char c = t_[i_];
      if (c == '}') {
        ++i_;
        return o;
      }
      if (c == ',' || c == ']' || c == ':') {
        ++i_;  // separators and stray closers of an array lshw never opened
        continue;
      }
      if (c == '{') {  // B.02.19: a child object without "children" : [
        o.add("", object(depth + 1));
        continue;
      }
      if (c == '[') {
        o.add("", array(depth + 1));
        continue;
      }
      if (c == '"') {
        std::string key = str();
        ws();
        if (i_ < t_.size() && t_[i_] == ':') {
          ++i_;
          JVal v = value(depth);
          bool structural = v.kind == JVal::Obj || v.kind == JVal::Arr;
          if (structural) {
            o.add(std::move(key), std::move(v));
          } else if (wanted(key) && !over_budget(depth)) {
            o.add(std::move(key), std::move(v));
          }
        }
        continue;
      }
      // A bare token where a key should be: skip it.
      size_t before = i_;
      value(depth);
      if (i_ == before) ++i_;
    }
    return o;
  }

  // At '['.
  JVal array(int depth) {
    JVal a;
    a.kind = JVal::Arr;
    ++i_;
    if (over_budget(depth)) return a;
    while (!too_deep) {
      ws();
      if (i_ >= t_.size()) {
        truncated = true;
        return a;
      }
      char c = t_[i_];
      if (c == ']') {
        ++i_;
        return a;
      }
      if (c == '}') return a;  // the array was never closed; its object ends here
      if (c == ',' || c == ':') {
        ++i_;
        continue;
      }
      size_t before = i_;
      JVal v = value(depth);
      if (i_ == before) {
        ++i_;
        continue;
      }
      if (v.kind == JVal::Obj || v.kind == JVal::Arr) a.add("", std::move(v));
    }
    return a;
  }
};

const JVal* member(const JVal& o, std::string_view key) {
  for (size_t i = 0; i < o.keys.size(); ++i) {
    if (o.keys[i] == key) return &o.vals[i];
  }
  return nullptr;
}

std::optional<std::string> member_str(const JVal& o, std::string_view key) {
  const JVal* v = member(o, key);
  if (!v || (v->kind != JVal::Str && v->kind != JVal::Scalar)) return std::nullopt;
  return v->s;
}

struct Walk {
  std::vector<Node> displays;
  bool too_many = false;
  size_t lshw_nodes = 0;  // objects with an lshw "class" or "id"
};

void walk(const JVal& v, Walk& w, int depth) {
  if (depth > 400) return;
  if (v.kind == JVal::Obj) {
    auto cls = member_str(v, "class");
    if (cls || member_str(v, "id")) ++w.lshw_nodes;
    if (cls && *cls == "display" && w.displays.size() >= kMaxDevices) w.too_many = true;
    if (cls && *cls == "display" && !w.too_many) {
      Node n;
      n.id = member_str(v, "id");
      n.product = member_str(v, "product");
      n.vendor = member_str(v, "vendor");
      n.businfo = member_str(v, "businfo");
      n.description = member_str(v, "description");
      n.logicalname = member_str(v, "logicalname");
      auto claimed = member_str(v, "claimed");
      n.unclaimed = !claimed || *claimed != "true";
      auto disabled = member_str(v, "disabled");
      n.disabled = disabled && *disabled == "true";
      if (const JVal* conf = member(v, "configuration"); conf && conf->kind == JVal::Obj) {
        n.driver = member_str(*conf, "driver");
      }
      w.displays.push_back(std::move(n));
    }
  }
  if (v.kind == JVal::Obj || v.kind == JVal::Arr) {
    for (const JVal& kid : v.vals) {
      if (kid.kind == JVal::Obj || kid.kind == JVal::Arr) walk(kid, w, depth + 1);
    }
  }
}

ParseResult parse_json(std::string_view text) {
  ParseResult r;
  Lenient p(text);
  std::vector<JVal> roots = p.top();
  Walk w;
  for (const auto& root : roots) walk(root, w, 0);
  if (roots.empty()) {
    std::string_view t = trim(text);
    bool only_brackets = std::all_of(t.begin(), t.end(), [](char c) {
      return c == '[' || c == ']' || c == ',' || std::isspace(static_cast<unsigned char>(c));
    });
    if (only_brackets && !t.empty() && t.front() == '[') {
      r.notes.push_back("lshw -json lists no node (no device of the requested class)");
      return r;
    }
    r.recognized = false;
    r.notes.push_back("no JSON object found: not lshw -json output");
    return r;
  }
  if (w.lshw_nodes == 0) {
    r.recognized = false;
    r.notes.push_back("JSON objects without lshw \"class\"/\"id\" keys: not lshw -json output");
    return r;
  }
  for (const auto& n : w.displays) {
    Observation o = to_observation(n);
    r.devices.push_back(std::move(o));
  }
  if (w.too_many) r.notes.push_back(kTooMany);
  if (p.truncated) r.notes.push_back("lshw JSON is truncated or malformed; read leniently");
  if (p.too_deep) {
    r.notes.push_back("lshw JSON nests too deeply or has too many nodes; the rest was ignored");
  }
  if (w.displays.empty()) r.notes.push_back("lshw lists no display node");
  return r;
}

}  // namespace

namespace {

ParseResult parse_lshw_unguarded(std::string_view text) {
  ParseResult r;
  std::string_view t = trim(text);
  if (t.empty()) {
    r.recognized = false;
    r.notes.push_back(
        "output is empty (lshw -C display prints nothing when there is no display device)");
    return r;
  }
  // Skip lshw's "WARNING: you should run this program as super-user." before deciding.
  std::string_view body = t;
  while (starts_with(body, "WARNING:")) {
    size_t nl = body.find('\n');
    if (nl == std::string_view::npos) {
      body = {};
      break;
    }
    body = trim(body.substr(nl + 1));
  }
  if (!body.empty() && (body.front() == '{' || body.front() == '[')) {
    ParseResult j = parse_json(body);
    if (body != t) j.notes.insert(j.notes.begin(), "lshw: not run as root (WARNING printed)");
    return j;
  }
  return parse_text(text);
  return r;
}

}  // namespace

ParseResult parse_lshw(std::string_view text) {
  return guarded_parse("lshw output", parse_lshw_unguarded, text);
}

}  // namespace grey
