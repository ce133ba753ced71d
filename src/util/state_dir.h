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

// Creates the directory (0700) if needed and checks it. Refused (error message returned,
// nothing created or changed): a symlink, a directory owned by another user, one that others
// can write (group/world write bits, sticky or not), and one below a parent that another user
// could replace (a parent writable by others without the sticky bit, or owned by a user other
// than us or root). The permissions of an existing directory are never changed.
// Returns an error message, empty on success.
[[nodiscard]] std::string ensure_state_dir(const std::string& dir);

// Who a file we open may belong to, and what it may be (SPEC §0).
enum class FileTrust {
  kAny,         // a regular file (a FIFO, device or socket is refused, never opened blocking)
  kUserConfig,  // kAny, owned by us or root, not writable by group/others (symlinks followed)
  kState,       // a state-directory file: not a symlink, regular, owned by us
  kConfig,      // kState, and not writable by group/others (config.yaml)
};

// Opens `path` with `flags` (O_CLOEXEC added; O_NOFOLLOW for kState/kConfig; files created
// 0600) after checking it against `trust`, and checks the opened file again (fstat). Never
// blocks on a FIFO. Returns the descriptor, or -1 with *error set ("refusing <path>: it is a
// symbolic link", "... not a regular file (FIFO)", "... owned by uid 1001, not by us (uid 0)",
// "... writable by other users (mode 0666)") and errno kept (ENOENT when it does not exist).
[[nodiscard]] int open_checked(const std::string& path, int flags, FileTrust trust,
                               std::string* error);

// Whole file through open_checked; nullopt with *error set when missing or refused
// (*missing set when it does not exist).
[[nodiscard]] std::optional<std::string> read_file_checked(const std::string& path, FileTrust trust,
                                                           std::string* error,
                                                           size_t cap = 64u << 20,
                                                           bool* missing = nullptr);

// Creates a temporary file next to `path` (".<name>.tmp.<random>", O_CREAT|O_EXCL|O_NOFOLLOW,
// `mode`) for an atomic replace. Returns the descriptor (name in *tmp_path), or -1 with *error.
[[nodiscard]] int create_temp_file(const std::string& path, int mode, std::string* tmp_path,
                                   std::string* error);

// Writes `content` to `path` atomically with `mode` (create_temp_file, fsync, rename). A symlink
// or a non-regular file at `path` is refused, not replaced. Returns an error message, empty on
// success.
[[nodiscard]] std::string write_file_atomic(const std::string& path, const std::string& content,
                                            int mode = 0600);
// The same replace (exclusive temp file, rename; a symlink or non-regular file at `path`
// refused), without the fsyncs: readers see the old file or the new one, never a torn one, but a
// power cut may lose it. For files rewritten every second (daemon_status.json).
[[nodiscard]] std::string write_file_replace(const std::string& path, const std::string& content,
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

// Streams a state file (opened with open_checked, FileTrust::kState: a symlink, FIFO or file
// not ours is refused) of any size line by line, never holding more than one line (at most
// `max_line` bytes) in memory; `on_line(text, line_number, kind)` (1-based numbers) returning
// false stops early. Returns an error message (open or read failure, naming the path) or empty;
// after an error the lines seen so far are only part of the file.
[[nodiscard]] std::string read_lines(
    const std::string& path, size_t max_line,
    const std::function<bool(std::string_view text, long line_number, LineKind kind)>& on_line);

// Whole file; nullopt when it cannot be read (errno text in *error) or is not a regular file
// (read_file_checked with FileTrust::kAny: a FIFO is refused, never waited on).
[[nodiscard]] std::optional<std::string> read_whole_file(const std::string& path,
                                                         std::string* error = nullptr,
                                                         size_t cap = 64u << 20);

}  // namespace grey
