// The enforcement journal (src/enforce/journal.h): line format, durability of appends, and a
// reader that survives whatever a crash or a careless editor leaves in the file.
#include "enforce/journal.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <string>
#include <tuple>

#include "test_util.h"
#include "util/strings.h"

namespace grey {
namespace {

using nlohmann::json;

Action power_action() {
  Action a;
  a.id = "gpu0.power_limit_w";
  a.gpu_index = 0;
  a.bus_id = "0000:0b:00.0";
  a.uuid = "";
  a.setting = kSettingPowerLimit;
  a.current = "260";
  a.wanted = "200";
  a.unit = "W";
  a.mechanism = "sysfs:/sys/class/drm/card0/device/hwmon/hwmon4/power1_cap";
  return a;
}

std::vector<json> lines_of(const std::string& path) {
  std::vector<json> out;
  std::string text = test::read_file(path);
  for (auto l : split_lines(text)) {
    if (trim(l).empty()) continue;
    out.push_back(json::parse(l));
  }
  return out;
}

TEST(Journal, NothingIsCreatedUntilTheFirstAppend) {
  test::TempDir tmp;
  Journal j(Journal::path_in(tmp.path()));
  EXPECT_EQ(j.path(), tmp.path() + "/journal.jsonl");
  JournalContents c = j.load();
  EXPECT_FALSE(c.exists);
  EXPECT_TRUE(c.sets.empty());
  ASSERT_EQ(c.notes.size(), 1u);
  EXPECT_NE(c.notes[0].find("no journal at"), std::string::npos);
  struct stat st;
  EXPECT_NE(::stat(j.path().c_str(), &st), 0);
}

TEST(Journal, SetResultRestoreLinesHaveEveryField) {
  test::TempDir tmp;
  Journal j(Journal::path_in(tmp.path()));
  std::string id;
  ASSERT_EQ(j.append_set(power_action(), "260", "200", &id), "");
  EXPECT_EQ(id, j.run_id() + "/gpu0.power_limit_w");
  ASSERT_EQ(j.append_result(id, true, std::string("200"), ""), "");

  struct stat st;
  ASSERT_EQ(::stat(j.path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  auto lines = lines_of(j.path());
  ASSERT_EQ(lines.size(), 2u);
  const json& s = lines[0];
  for (const char* k : {"time", "op", "id", "gpu_index", "bus_id", "uuid", "setting", "old", "new",
                        "mechanism", "pid"})
    EXPECT_TRUE(s.contains(k)) << k;
  EXPECT_EQ(s["op"], "set");
  EXPECT_EQ(s["old"], "260");
  EXPECT_EQ(s["new"], "200");
  EXPECT_EQ(s["pid"], static_cast<long>(::getpid()));
  EXPECT_EQ(s["mechanism"], "sysfs:/sys/class/drm/card0/device/hwmon/hwmon4/power1_cap");
  EXPECT_EQ(s["time"].get<std::string>().size(), 20u);  // 2026-11-26T15:00:00Z
  const json& r = lines[1];
  EXPECT_EQ(r["op"], "result");
  EXPECT_EQ(r["id"], id);
  EXPECT_EQ(r["ok"], true);
  EXPECT_EQ(r["read_back"], "200");
  EXPECT_EQ(r["error"], "");

  JournalContents c = j.load();
  ASSERT_EQ(c.sets.size(), 1u);
  EXPECT_TRUE(c.notes.empty());
  EXPECT_EQ(c.sets[0].id, id);
  EXPECT_EQ(c.sets[0].line, 1);
  EXPECT_EQ(c.sets[0].result_ok, true);
  EXPECT_EQ(c.sets[0].read_back, "200");
  EXPECT_FALSE(c.sets[0].settled());

  ASSERT_EQ(j.append_restore(c.sets[0], "200", "260", kRestoreRestored, "set back"), "");
  c = j.load();
  ASSERT_EQ(c.sets.size(), 1u);
  EXPECT_EQ(c.sets[0].restore_status, kRestoreRestored);
  EXPECT_TRUE(c.sets[0].settled());
  auto all = lines_of(j.path());
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[2]["op"], "restore");
  EXPECT_EQ(all[2]["from"], "200");
  EXPECT_EQ(all[2]["to"], "260");
}

TEST(Journal, IdsAreUniqueAcrossJournalObjects) {
  test::TempDir tmp;
  Journal a(Journal::path_in(tmp.path())), b(Journal::path_in(tmp.path()));
  EXPECT_NE(a.run_id(), b.run_id());
  std::string ia, ib;
  ASSERT_EQ(a.append_set(power_action(), "260", "200", &ia), "");
  ASSERT_EQ(b.append_set(power_action(), "200", "150", &ib), "");
  EXPECT_NE(ia, ib);
  ASSERT_EQ(b.append_result(ib, false, std::nullopt, "Permission denied"), "");
  JournalContents c = a.load();
  ASSERT_EQ(c.sets.size(), 2u);
  EXPECT_FALSE(c.sets[0].result_ok.has_value());
  EXPECT_EQ(c.sets[1].result_ok, false);
  EXPECT_EQ(c.sets[1].result_error, "Permission denied");
  EXPECT_FALSE(c.sets[1].read_back);
}

TEST(Journal, AppendToAMissingDirectoryReportsTheError) {
  Journal j("/nonexistent-grey-dir/journal.jsonl");
  std::string id;
  std::string err = j.append_set(power_action(), "260", "200", &id);
  EXPECT_NE(err.find("No such file or directory"), std::string::npos) << err;
}

// A crash (or a full disk) left the last line without its newline. The next append must not
// glue its line onto that tail: it terminates the tail first.
TEST(Journal, AnAppendAfterATornTailStartsOnAFreshLine) {
  test::TempDir tmp;
  Journal j(Journal::path_in(tmp.path()));
  std::string first;
  ASSERT_EQ(j.append_set(power_action(), "260", "200", &first), "");
  std::string torn = R"({"time":"2026-11-26T15:00:01Z","op":"result","id":")";
  test::write_file(j.path(), test::read_file(j.path()) + torn, 0600);
  Journal next(j.path());
  std::string second;
  ASSERT_EQ(next.append_set(power_action(), "200", "150", &second), "");
  std::string text = test::read_file(j.path());
  EXPECT_NE(text.find(torn + "\n{"), std::string::npos) << text;
  JournalContents c = next.load();
  EXPECT_TRUE(c.unreadable.empty()) << c.unreadable[0].describe();
  ASSERT_EQ(c.sets.size(), 2u);
  EXPECT_EQ(c.sets[0].id, first);
  EXPECT_EQ(c.sets[1].id, second);
  EXPECT_EQ(c.sets[1].line, 3);
  EXPECT_EQ(c.sets[1].new_value, "150");
  ASSERT_EQ(c.notes.size(), 1u);
  EXPECT_NE(c.notes[0].find("journal line 2 is cut short"), std::string::npos) << c.notes[0];
  EXPECT_NE(c.notes[0].find("a later append ended it"), std::string::npos) << c.notes[0];
  // A file that already ends in a newline gets no blank line.
  ASSERT_EQ(next.append_result(second, true, std::string("150"), ""), "");
  EXPECT_EQ(test::read_file(j.path()).find("\n\n"), std::string::npos);
}

// A write cut short (here by RLIMIT_FSIZE, as a full disk would) is taken back off: the append
// fails and leaves the journal as it was, with no torn line in it.
TEST(Journal, AFailedAppendLeavesNoTornLine) {
  test::TempDir tmp;
  Journal j(Journal::path_in(tmp.path()));
  std::string id;
  ASSERT_EQ(j.append_set(power_action(), "260", "200", &id), "");
  const std::string before = test::read_file(j.path());
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::signal(SIGXFSZ, SIG_IGN);
    rlimit rl{static_cast<rlim_t>(before.size() + 20), static_cast<rlim_t>(before.size() + 20)};
    if (::setrlimit(RLIMIT_FSIZE, &rl) != 0) ::_exit(2);
    std::string e = j.append_result(id, true, std::string("200"), "");
    ::_exit(e.find("File too large") != std::string::npos ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the append did not fail with EFBIG";
  EXPECT_EQ(test::read_file(j.path()), before);
}

TEST(Journal, AppendRefusesASymlinkedJournal) {
  test::TempDir tmp;
  std::string elsewhere = tmp / "elsewhere";
  test::write_file(elsewhere, "precious\n", 0600);
  ASSERT_EQ(::symlink(elsewhere.c_str(), (tmp / "journal.jsonl").c_str()), 0);
  Journal j(Journal::path_in(tmp.path()));
  std::string id;
  std::string err = j.append_set(power_action(), "260", "200", &id);
  EXPECT_NE(err.find("is a symbolic link"), std::string::npos) << err;
  EXPECT_EQ(test::read_file(elsewhere), "precious\n");
}

TEST(ReadLines, HandsOverEveryLineWithItsNumberAndKind) {
  test::TempDir tmp;
  std::string p = tmp / "f";
  std::string big(70000, 'b');  // spans reads
  test::write_file(p, "one\n\n" + big + "\n" + std::string(20, 'l') + "\nlast", 0600);
  std::vector<std::tuple<std::string, long, LineKind>> got;
  ASSERT_EQ(read_lines(p, 70000,
                       [&](std::string_view t, long n, LineKind k) {
                         got.emplace_back(std::string(t), n, k);
                         return true;
                       }),
            "");
  ASSERT_EQ(got.size(), 5u);
  EXPECT_EQ(got[0], std::make_tuple(std::string("one"), 1L, LineKind::kComplete));
  EXPECT_EQ(got[1], std::make_tuple(std::string(), 2L, LineKind::kComplete));
  EXPECT_EQ(got[2], std::make_tuple(big, 3L, LineKind::kComplete));
  EXPECT_EQ(got[3], std::make_tuple(std::string(20, 'l'), 4L, LineKind::kComplete));
  EXPECT_EQ(got[4], std::make_tuple(std::string("last"), 5L, LineKind::kUnterminated));

  got.clear();
  ASSERT_EQ(read_lines(p, 10,
                       [&](std::string_view t, long n, LineKind k) {
                         got.emplace_back(std::string(t), n, k);
                         return n < 4;  // stop after line 4
                       }),
            "");
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[2], std::make_tuple(std::string(10, 'b'), 3L, LineKind::kTooLong));
  EXPECT_EQ(got[3], std::make_tuple(std::string(10, 'l'), 4L, LineKind::kTooLong));

  std::string err =
      read_lines(tmp / "missing", 10, [](std::string_view, long, LineKind) { return true; });
  EXPECT_NE(err.find("No such file or directory"), std::string::npos) << err;
  err = read_lines(tmp.path(), 10, [](std::string_view, long, LineKind) { return true; });
  EXPECT_NE(err.find("not a regular file (directory)"), std::string::npos) << err;
}

const char* kSet =
    R"({"time":"2026-11-26T15:00:00Z","op":"set","id":"r1/gpu0.power_limit_w","gpu_index":0,)"
    R"("bus_id":"0000:0b:00.0","uuid":"","setting":"power_limit_w","old":"260","new":"200",)"
    R"("mechanism":"sysfs:/sys/class/drm/card0/device/hwmon/hwmon4/power1_cap","pid":42})";

const char* kResult = R"({"op":"result","id":"r1/gpu0.power_limit_w","ok":true,"read_back":"200"})";

TEST(ParseJournal, TruncatedLastLineIsSkippedWithANote) {
  std::string text = std::string(kSet) + "\n" + R"({"time":"2026-11-26T15:00:01Z","op":"res)";
  JournalContents c = parse_journal(text);
  ASSERT_EQ(c.sets.size(), 1u);
  EXPECT_FALSE(c.sets[0].result_ok.has_value());
  EXPECT_TRUE(c.unreadable.empty()) << "a line cut short by a crash is not an error";
  ASSERT_EQ(c.notes.size(), 1u);
  EXPECT_EQ(c.notes[0],
            "journal line 2 is cut short (the process died while writing it?); skipped: nothing "
            "was done after a line that was never written whole");
}

// Every line restore cannot understand is an error naming its number and text, not a note.
TEST(ParseJournal, UnreadableLinesAreErrorsWithTheirLineAndText) {
  std::string text =
      std::string("not json at all\n") + kSet + "\n" +
      R"({"op":"set","id":"x","bus_id":"0000:01:00.0"})" + "\n" +
      R"({"op":"result","id":"nobody","ok":true})" + "\n" +
      R"({"op":"frobnicate","id":"r1/gpu0.power_limit_w"})" + "\n" + R"({"op":"result"})" + "\n" +
      "[1,2,3]\n" +
      R"({"op":"set","id":"y","gpu_index":"zero","bus_id":"0000:01:00.0","setting":"power_limit_w","old":"1","new":"2","mechanism":"m"})" +
      "\n\n   \n" + R"({"op":"result","id":"r1/gpu0.power_limit_w","ok":"yes"})" + "\n" +
      "{\"op\":\"set\",\x01\x7f}\n";
  JournalContents c = parse_journal(text);
  ASSERT_EQ(c.sets.size(), 1u);
  EXPECT_EQ(c.sets[0].line, 2);
  EXPECT_EQ(c.sets[0].pid, 42);
  EXPECT_FALSE(c.sets[0].result_ok.has_value()) << "a non-boolean ok is no result at all";
  ASSERT_EQ(c.notes.size(), 1u);
  EXPECT_NE(c.notes[0].find("line 4 (result) refers to unknown set nobody"), std::string::npos)
      << c.notes[0];
  ASSERT_EQ(c.unreadable.size(), 8u);
  EXPECT_EQ(c.unreadable[0].describe(), "journal line 1 is not JSON: not json at all");
  EXPECT_EQ(c.unreadable[1].line, 3);
  EXPECT_EQ(c.unreadable[1].reason, "(set x) has no \"gpu_index\" field");
  EXPECT_EQ(c.unreadable[1].text, R"({"op":"set","id":"x","bus_id":"0000:01:00.0"})");
  EXPECT_EQ(c.unreadable[2].line, 5);
  EXPECT_EQ(c.unreadable[2].reason, "has an unknown op \"frobnicate\"");
  EXPECT_EQ(c.unreadable[3].line, 6);
  EXPECT_EQ(c.unreadable[3].reason, "has no \"id\" field");
  EXPECT_EQ(c.unreadable[4].describe(), "journal line 7 is not a JSON object: [1,2,3]");
  EXPECT_EQ(c.unreadable[5].line, 8);
  EXPECT_EQ(c.unreadable[5].reason, "(set y) has a \"gpu_index\" field that is not an integer");
  EXPECT_EQ(c.unreadable[6].line, 11);
  EXPECT_EQ(c.unreadable[6].reason,
            "(result of r1/gpu0.power_limit_w) has an \"ok\" field that is not true or false");
  EXPECT_EQ(c.unreadable[7].line, 12);
  EXPECT_EQ(c.unreadable[7].text, "{\"op\":\"set\",\\x01\\x7f}") << "control bytes escaped";
}

TEST(ParseJournal, EveryFieldOfASetIsTypeChecked) {
  for (const char* field :
       {"\"gpu_index\":\"0\"", "\"bus_id\":7", "\"setting\":null", "\"old\":260", "\"new\":[]",
        "\"mechanism\":\"\"", "\"pid\":\"42\"", "\"uuid\":false", "\"time\":1",
        "\"gpu_index\":4294967296", "\"gpu_index\":18446744073709551615", "\"pid\":-1.5"}) {
    json j = json::parse(kSet);
    json patch = json::parse(std::string("{") + field + "}");
    j.update(patch);
    JournalContents c = parse_journal(j.dump() + "\n");
    EXPECT_TRUE(c.sets.empty()) << field;
    ASSERT_EQ(c.unreadable.size(), 1u) << field;
    std::string key = patch.begin().key();
    EXPECT_NE(c.unreadable[0].reason.find("\"" + key + "\""), std::string::npos)
        << c.unreadable[0].reason;
    EXPECT_NE(c.unreadable[0].reason.find("(set r1/gpu0.power_limit_w)"), std::string::npos);
  }
}

TEST(ParseJournal, UnreadableTextIsCutToAnExcerpt) {
  std::string junk(5000, 'x');
  JournalContents c = parse_journal(junk + "\n" + kSet + "\n");
  ASSERT_EQ(c.unreadable.size(), 1u);
  EXPECT_EQ(c.unreadable[0].text, std::string(kJournalExcerpt, 'x') + "...");
  EXPECT_EQ(c.sets.size(), 1u);
}

// A journal written before appends checked the last byte: a line cut short by a crash, with the
// next run's set line glued onto it. The set entry is recovered, not lost.
TEST(ParseJournal, ASetGluedOntoACutShortLineIsRecovered) {
  std::string text = std::string(kSet) + "\n" + R"({"time":"2026-11-26T15:00:01Z","op":"res)" +
                     R"({"time":"2026-11-27T09:00:00Z","op":"set","id":"r2/gpu0.power_limit_w",)"
                     R"("gpu_index":0,"bus_id":"0000:0b:00.0","uuid":"","setting":"power_limit_w",)"
                     R"("old":"260","new":"150","mechanism":"m","pid":43})" +
                     "\n";
  JournalContents c = parse_journal(text);
  EXPECT_TRUE(c.unreadable.empty());
  ASSERT_EQ(c.sets.size(), 2u);
  EXPECT_EQ(c.sets[1].id, "r2/gpu0.power_limit_w");
  EXPECT_EQ(c.sets[1].line, 2);
  EXPECT_EQ(c.sets[1].new_value, "150");
  ASSERT_EQ(c.notes.size(), 1u);
  EXPECT_NE(c.notes[0].find("line 2 begins with an entry cut short"), std::string::npos);
  // Garbage in front of a complete entry is not a cut-short line: unreadable.
  JournalContents g = parse_journal(std::string("xx") + kSet + "\n");
  EXPECT_TRUE(g.sets.empty());
  ASSERT_EQ(g.unreadable.size(), 1u);
  EXPECT_EQ(g.unreadable[0].reason, "is not JSON");
}

TEST(ParseJournal, ALineLongerThanTheBoundIsUnreadableAndReadingGoesOn) {
  std::string text = std::string(kSet) + "\n" + std::string(500, ' ') + "\n" + kResult + "\n";
  JournalContents c = parse_journal(text, 400);
  ASSERT_EQ(c.sets.size(), 1u);
  EXPECT_EQ(c.sets[0].result_ok, true);
  ASSERT_EQ(c.unreadable.size(), 1u);
  EXPECT_EQ(c.unreadable[0].line, 2);
  EXPECT_EQ(c.unreadable[0].reason, "is longer than 400 bytes");
  EXPECT_EQ(c.lines, 3);
}

TEST(ParseJournal, GarbageNeverCrashes) {
  EXPECT_TRUE(parse_journal("").sets.empty());
  std::string bin;
  for (int i = 0; i < 4096; ++i) bin.push_back(static_cast<char>((i * 131) & 0xff));
  JournalContents c = parse_journal(bin);
  EXPECT_TRUE(c.sets.empty());
  EXPECT_FALSE(c.unreadable.empty());
  std::string full = std::string(kSet) + "\n" + kResult + "\n";
  for (size_t cut = 0; cut <= full.size(); ++cut) {
    JournalContents p = parse_journal(full.substr(0, cut));
    EXPECT_LE(p.sets.size(), 1u);
    if (cut >= std::string(kSet).size() + 1) {
      EXPECT_EQ(p.sets.size(), 1u) << cut;
    }
  }
}

}  // namespace
}  // namespace grey
