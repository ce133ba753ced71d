// Small, allocation-light string helpers shared by every parser.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace grey {

std::string_view trim(std::string_view s);
std::string to_lower(std::string_view s);
bool starts_with(std::string_view s, std::string_view prefix);
bool ends_with(std::string_view s, std::string_view suffix);
bool contains(std::string_view s, std::string_view needle);
bool icontains(std::string_view s, std::string_view needle);
std::vector<std::string_view> split(std::string_view s, char sep);
std::vector<std::string_view> split_lines(std::string_view s);

// Length (1-4) of the valid UTF-8 sequence that starts at s[i]; 0 when the bytes there are not
// valid UTF-8 (a stray continuation byte, an overlong form, a surrogate, a code point above
// U+10FFFF, a sequence cut short).
size_t utf8_sequence_length(std::string_view s, size_t i);
// Appends the code point as UTF-8 bytes.
void append_utf8(std::string& out, uint32_t cp);
// The one rule for text that reaches an output (device fields, plan notes, keys, paths): every
// byte that does not start a valid sequence (utf8_sequence_length) becomes U+FFFD. The result is
// always valid UTF-8, and sanitizing it again changes nothing.
std::string sanitize_utf8(std::string_view s);

// `v` with exactly `decimals` decimals ("%.*f").
std::string fixed_decimals(double v, int decimals);
// `v` with at most `max_decimals` decimals, trailing zeros (and a bare '.') dropped: 2.50 -> "2.5",
// 3.0 -> "3".
std::string compact_decimal(double v, int max_decimals);
// `x` rounded to 2 decimals.
double round2(double x);

// Tool text made safe to quote in a note: trimmed, control bytes as '?', cut to at most `max`
// bytes (never inside a UTF-8 sequence) with "..." when cut.
std::string quote_for_note(std::string_view s, size_t max);
// The first non-empty line of `s`, through quote_for_note.
std::string quote_first_line(std::string_view s, size_t max = 160);

// True for a non-empty string of ASCII digits.
bool all_digits(std::string_view s);

// Stops at the first NUL (some sysfs snapshots are NUL padded) and trims whitespace.
std::string clean_value(std::string_view raw);

// Values a tool prints when it has nothing: "[N/A]", "N/A", "[Not Supported]",
// "Not Supported", "[Unknown Error]", "[Requested functionality has been deprecated]", "", "-".
bool is_missing_marker(std::string_view s);

// Strict numeric parsing of a whole (trimmed) token; nullopt on anything else.
std::optional<int64_t> parse_int(std::string_view s);
std::optional<double> parse_double(std::string_view s);
// The shortest text that reads back as exactly `d` ("0.1", "1e+308", "-5", "inf", "nan"); never
// a wrapped integer.
std::string shortest_double(double d);
// "0x10de", "10DE", "0x233010DE" -> value; nullopt when not hex.
std::optional<uint64_t> parse_hex(std::string_view s);
// Leading number of a token with a unit: "81559 MiB" -> 81559, "69.85 W" -> 69.85, "41 C" -> 41.
std::optional<double> leading_number(std::string_view s);

// Converts "<number> <unit>" memory text to MiB: MiB, MB (taken as MiB, as nvidia-smi and
// amd-smi use it), GiB, GB, KiB, kB, B/bytes.
std::optional<int64_t> memory_to_mib(std::string_view s);
int64_t bytes_to_mib(uint64_t bytes);

// Normalizes a PCI bus id to "dddd:bb:dd.f" lower case. Accepts nvidia-smi's 8-digit domain
// ("00000000:01:00.0"), short forms ("01:00.0" -> domain 0000) and "pci@0000:05:00.0".
std::optional<std::string> normalize_bus_id(std::string_view s);

// PCIe generation from a transfer rate ("32.0 GT/s PCIe", "8 GT/s", "16GT/s").
std::optional<int> pcie_gen_from_speed(std::string_view s);
std::string pci_bandwidth(int gen, int width);

std::string hex4(uint32_t v);  // 0x10de -> "10de"

}  // namespace grey
