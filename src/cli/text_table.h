// Plain-text tables for the CLI: columns size to their content (in UTF-8 code points, not
// bytes), a cell wider than its column's limit is cut with an ellipsis, and two spaces always
// separate one column from the next.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace grey {

// Display width of UTF-8 text, counted in code points (continuation bytes take no column).
size_t display_width(std::string_view s);

// s cut to at most `width` code points; when cut, the last one kept is "…".
std::string truncate_display(std::string_view s, size_t width);

class TextTable {
 public:
  // max_width[i] limits column i (0 = no limit); missing entries mean no limit.
  explicit TextTable(std::vector<std::string> headers, std::vector<size_t> max_width = {});
  void add_row(std::vector<std::string> cells);
  // Each line starts with `indent`; the last column is not padded (no trailing blanks).
  std::string render(const std::string& indent = "") const;
  size_t rows() const { return rows_.size(); }

 private:
  std::vector<std::string> headers_;
  std::vector<size_t> max_;
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace grey
