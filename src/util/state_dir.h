// The state directory (SPEC §0): $GREY_CONFIG_DIR or ~/.grey_optimizer, created 0700, files
// 0600, every write atomic (temp file in the same directory, fsync, rename, fsync dir).
#pragma once

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
std::string ensure_state_dir(const std::string& dir, bool* fixed = nullptr);

// Writes `content` to `path` atomically with `mode`. Returns an error message, empty on success.
std::string write_file_atomic(const std::string& path, const std::string& content, int mode = 0600);
// The same for text in pieces, written with writev instead of being joined first.
std::string write_file_atomic_parts(const std::string& path,
                                    const std::vector<std::string_view>& parts, int mode = 0600);

// Appends one line and fsyncs it (journal). Creates the file 0600. Error message or empty.
std::string append_line_synced(const std::string& path, const std::string& line);

// Whole file; nullopt when it cannot be read (errno text in *error).
std::optional<std::string> read_whole_file(const std::string& path, std::string* error = nullptr,
                                           size_t cap = 64u << 20);

}  // namespace grey
