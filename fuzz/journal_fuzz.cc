// Fuzzes the enforcement journal reader (a journal can be torn by a crash, cut by a full disk or
// edited by hand): parse_journal with the normal line bound and with a tiny one, and the restore
// report of what it finds. Lines are glued onto a valid set entry too, so the fuzzer reaches the
// result/restore matching and the glued-entry recovery without guessing a whole set line.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "enforce/journal.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* d, size_t n) {
  std::string_view s(reinterpret_cast<const char*>(d), n);
  for (size_t bound : {grey::kJournalMaxLine, size_t{16}}) {
    grey::JournalContents c = grey::parse_journal(s, bound);
    for (const auto& u : c.unreadable) (void)u.describe();
    for (const auto& set : c.sets) (void)set.settled();
  }
  std::string with_set =
      R"({"op":"set","id":"r1/a","gpu_index":0,"bus_id":"0000:01:00.0","setting":"power_limit_w",)"
      R"("old":"260","new":"200","mechanism":"m"})"
      "\n" +
      std::string(s);
  grey::JournalContents c = grey::parse_journal(with_set);
  for (const auto& u : c.unreadable) (void)u.describe();
  return 0;
}
