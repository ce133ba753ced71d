// The state directory (SPEC §0): $GREY_CONFIG_DIR or ~/.grey_optimizer, created 0700, files
// 0600, every write atomic (temp file in the same directory, fsync, rename, fsync dir).
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace grey {

// Where the state directory is (not created).
std::string default_state_dir();

// Creates the directory (0700) if needed and checks it: a symlink or a directory owned by
// another user is refused. Returns an error message, empty on success. Group/world bits on
// an existing directory are removed (and `*fixed` set).
[[nodiscard]] std::string ensure_state_dir(const std::string& dir, bool* fixed = nullptr);

// Writes `content` to `path` atomically with `mode`. Returns an error message, empty on success.
[[nodiscard]] std::string write_file_atomic(const std::string& path, const std::string& content,
                                            int mode = 0600);
// The same for text in pieces, written with writev instead of being joined first.
[[nodiscard]] std::string write_file_atomic_parts(const std::string& path,
                                                  const std::vector<std::string_view>& parts,
                                                  int mode = 0600);

// Appends one line and fsyncs it (journal). Creates the file 0600. Error message or empty.
// The line always starts on a fresh line: when the file does not end in '\n' (a line torn by a
// crash or a full disk), a '\n' is written first, in the same write, so the torn tail is
// terminated instead of swallowing this line. Appenders are serialized with flock(2); a write
// that fails part-way is cut back off (ftruncate), so a failed append leaves no torn line. A
// symbolic link at `path` is refused.
[[nodiscard]] std::string append_line_synced(const std::string& path, const std::string& line);

// How read_lines hands over one line.
enum class LineKind {
  kComplete,      // ended by '\n' (not included)
  kUnterminated,  // the last bytes of the file, with no '\n' after them
  kTooLong,       // longer than max_line: `text` is its first max_line bytes, the rest skipped
};

// Streams a file of any size line by line, never holding more than one line (at most
// `max_line` bytes) in memory; `on_line(text, line_number, kind)` (1-based numbers) returning
// false stops early. Returns an error message (open or read failure, naming the path) or empty;
// after an error the lines seen so far are only part of the file.
[[nodiscard]] std::string read_lines(
    const std::string& path, size_t max_line,
    const std::function<bool(std::string_view text, long line_number, LineKind kind)>& on_line);

// Whole file; nullopt when it cannot be read (errno text in *error).
[[nodiscard]] std::optional<std::string> read_whole_file(const std::string& path,
                                                         std::string* error = nullptr,
                                                         size_t cap = 64u << 20);

}  // namespace grey
