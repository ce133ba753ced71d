#include "cli/text_table.h"

#include <algorithm>
#include <utility>

namespace grey {

size_t display_width(std::string_view s) {
  size_t cols = 0;
  for (unsigned char c : s) cols += (c & 0xc0) != 0x80;
  return cols;
}

std::string truncate_display(std::string_view s, size_t width) {
  if (display_width(s) <= width) return std::string(s);
  if (width == 0) return "";
  // Keep width - 1 code points, then the ellipsis.
  size_t kept = 0, i = 0;
  for (; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if ((c & 0xc0) != 0x80) {
      if (kept == width - 1) break;
      ++kept;
    }
  }
  return std::string(s.substr(0, i)) + "…";
}

TextTable::TextTable(std::vector<std::string> headers, std::vector<size_t> max_width)
    : headers_(std::move(headers)), max_(std::move(max_width)) {
  max_.resize(headers_.size(), 0);
}

void TextTable::add_row(std::vector<std::string> cells) {
  cells.resize(headers_.size());
  rows_.push_back(std::move(cells));
}

std::string TextTable::render(const std::string& indent) const {
  const size_t n = headers_.size();
  std::vector<size_t> w(n, 0);
  auto cell = [&](const std::string& s, size_t i) {
    return max_[i] ? truncate_display(s, std::max<size_t>(max_[i], 1)) : s;
  };
  auto measure = [&](const std::vector<std::string>& r) {
    for (size_t i = 0; i < n; ++i) w[i] = std::max(w[i], display_width(cell(r[i], i)));
  };
  measure(headers_);
  for (const auto& r : rows_) measure(r);
  std::string out;
  auto line = [&](const std::vector<std::string>& r) {
    std::string l = indent;
    for (size_t i = 0; i < n; ++i) {
      std::string c = cell(r[i], i);
      l += c;
      if (i + 1 < n) l.append(w[i] - display_width(c) + 2, ' ');
    }
    while (!l.empty() && l.back() == ' ') l.pop_back();
    out += l + "\n";
  };
  line(headers_);
  for (const auto& r : rows_) line(r);
  return out;
}

}  // namespace grey
