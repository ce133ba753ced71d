// The enforcement journal (src/enforce/journal.h): line format, durability of appends, and a
// reader that survives whatever a crash or a careless editor leaves in the file.
#include "enforce/journal.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>
#include <string>

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

const char* kSet =
    R"({"time":"2026-11-26T15:00:00Z","op":"set","id":"r1/gpu0.power_limit_w","gpu_index":0,)"
    R"("bus_id":"0000:0b:00.0","uuid":"","setting":"power_limit_w","old":"260","new":"200",)"
    R"("mechanism":"sysfs:/sys/class/drm/card0/device/hwmon/hwmon4/power1_cap","pid":42})";

TEST(ParseJournal, TruncatedLastLineIsSkippedWithANote) {
  std::string text = std::string(kSet) + "\n" + R"({"time":"2026-11-26T15:00:01Z","op":"res)";
  JournalContents c = parse_journal(text);
  ASSERT_EQ(c.sets.size(), 1u);
  EXPECT_FALSE(c.sets[0].result_ok.has_value());
  ASSERT_EQ(c.notes.size(), 1u);
  EXPECT_EQ(c.notes[0],
            "journal line 2 is cut short (the process died while writing it?); skipped");
}

TEST(ParseJournal, CorruptAndIncompleteLinesAreSkipped) {
  std::string text =
      std::string("not json at all\n") + kSet + "\n" +
      R"({"op":"set","id":"x","bus_id":"0000:01:00.0"})" + "\n" +
      R"({"op":"result","id":"nobody","ok":true})" + "\n" +
      R"({"op":"frobnicate","id":"r1/gpu0.power_limit_w"})" + "\n" + R"({"op":"result"})" + "\n" +
      "[1,2,3]\n" +
      R"({"op":"set","id":"y","gpu_index":"zero","bus_id":1,"setting":"power_limit_w"})" +
      "\n\n   \n" + R"({"op":"result","id":"r1/gpu0.power_limit_w","ok":"yes"})" + "\n";
  JournalContents c = parse_journal(text);
  ASSERT_EQ(c.sets.size(), 1u);
  EXPECT_EQ(c.sets[0].line, 2);
  EXPECT_EQ(c.sets[0].pid, 42);
  EXPECT_EQ(c.sets[0].result_ok, false) << "a non-boolean ok is not success";
  ASSERT_EQ(c.notes.size(), 7u);
  EXPECT_EQ(c.notes[0], "journal line 1 is not a JSON object; skipped");
  EXPECT_NE(c.notes[1].find("lacks bus_id"), std::string::npos) << c.notes[1];
  EXPECT_NE(c.notes[2].find("unknown set nobody"), std::string::npos) << c.notes[2];
  EXPECT_NE(c.notes[3].find("unknown op 'frobnicate'"), std::string::npos) << c.notes[3];
  EXPECT_NE(c.notes[4].find("has no id"), std::string::npos) << c.notes[4];
  EXPECT_EQ(c.notes[5], "journal line 7 is not a JSON object; skipped");
  EXPECT_NE(c.notes[6].find("line 8"), std::string::npos) << c.notes[6];
}

TEST(ParseJournal, GarbageNeverCrashes) {
  EXPECT_TRUE(parse_journal("").sets.empty());
  std::string bin;
  for (int i = 0; i < 4096; ++i) bin.push_back(static_cast<char>((i * 131) & 0xff));
  JournalContents c = parse_journal(bin);
  EXPECT_TRUE(c.sets.empty());
  EXPECT_FALSE(c.notes.empty());
  std::string full = std::string(kSet) + "\n" +
                     R"({"op":"result","id":"r1/gpu0.power_limit_w","ok":true,"read_back":"200"})" +
                     "\n";
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
