// JSON text for the daemon's per-tick daemon_status.json without building an nlohmann::json
// tree first (issue 5: the tree of ~150 map nodes was a tenth of a tick's CPU). The text is
// what nlohmann::json::dump(indent) (util/json_util.h's dump_json) gives for the same object:
// keys in std::map order, `indent` spaces per level, numbers, strings and null as nlohmann
// writes them (doubles and strings outside printable ASCII are written by nlohmann itself).
#pragma once

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/json_util.h"

namespace grey {

// A JSON string literal as dump_json writes it.
inline void append_json_string(std::string& out, std::string_view s) {
  bool plain = true;
  for (unsigned char c : s)
    if (c < 0x20 || c > 0x7e) {
      plain = false;
      break;
    }
  if (!plain) {
    out += dump_json(nlohmann::json(std::string(s)));
    return;
  }
  out += '"';
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
}

inline std::string json_string_text(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

inline std::string json_number_text(double v) {
  return dump_json(nlohmann::json(v));
}

template <typename Int>
inline std::string json_int_text(Int v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

// One object at nesting `level` (0: the top), its keys distinct. Values are JSON text; a nested
// object or array must have been rendered for level + 1.
class JsonObjectText {
 public:
  explicit JsonObjectText(int level, int indent = 1) : level_(level), indent_(indent) {}
  int child_level() const { return level_ + 1; }

  JsonObjectText& raw(std::string_view key, std::string text) {
    fields_.emplace_back(key, std::move(text));
    return *this;
  }
  JsonObjectText& str(std::string_view key, std::string_view v) {
    return raw(key, json_string_text(v));
  }
  JsonObjectText& num(std::string_view key, double v) { return raw(key, json_number_text(v)); }
  JsonObjectText& opt_num(std::string_view key, const std::optional<double>& v) {
    return raw(key, v ? json_number_text(*v) : "null");
  }
  template <typename Int>
  JsonObjectText& integer(std::string_view key, Int v) {
    return raw(key, json_int_text(v));
  }
  JsonObjectText& boolean(std::string_view key, bool v) { return raw(key, v ? "true" : "false"); }
  JsonObjectText& null(std::string_view key) { return raw(key, "null"); }

  std::string text() {
    if (fields_.empty()) return "{}";
    std::sort(fields_.begin(), fields_.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    const std::string pad(static_cast<size_t>((level_ + 1) * indent_), ' ');
    size_t bytes = 4 + static_cast<size_t>(level_ * indent_);
    for (const auto& f : fields_) bytes += pad.size() + f.first.size() + f.second.size() + 6;
    std::string out;
    out.reserve(bytes);
    out += "{\n";
    for (size_t i = 0; i < fields_.size(); ++i) {
      if (i) out += ",\n";
      out += pad;
      append_json_string(out, fields_[i].first);
      out += ": ";
      out += fields_[i].second;
    }
    out += '\n';
    out.append(static_cast<size_t>(level_ * indent_), ' ');
    out += '}';
    return out;
  }

 private:
  int level_, indent_;
  std::vector<std::pair<std::string_view, std::string>> fields_;
};

// An array at nesting `level` of items already rendered for level + 1.
inline std::string json_array_text(const std::vector<std::string>& items, int level,
                                   int indent = 1) {
  if (items.empty()) return "[]";
  std::string out = "[\n";
  const std::string pad(static_cast<size_t>((level + 1) * indent), ' ');
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ",\n";
    out += pad;
    out += items[i];
  }
  out += '\n';
  out.append(static_cast<size_t>(level * indent), ' ');
  out += ']';
  return out;
}

}  // namespace grey
