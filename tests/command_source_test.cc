// CommandSource against a scripted runner: variant fallback, missing tool, timeout, replay,
// capture, streaming tools.
#include <gtest/gtest.h>

#include <map>

#include "sources/source.h"
#include "test_util.h"

namespace grey {
namespace {

using namespace std::chrono_literals;

class ScriptedRunner : public Runner {
 public:
  std::map<std::string, CommandResult> by_arg1;  // keyed by argv[1] ("" for none)
  std::vector<std::vector<std::string>> calls;
  std::vector<std::chrono::milliseconds> timeouts;
  CommandResult run(const std::vector<std::string>& argv, const RunOptions& o) override {
    calls.push_back(argv);
    timeouts.push_back(o.timeout);
    auto it = by_arg1.find(argv.size() > 1 ? argv[1] : "");
    if (it == by_arg1.end()) {
      CommandResult r;
      r.error = argv[0] + ": not found on PATH";
      return r;
    }
    return it->second;
  }
};

CommandResult ok(std::string out, int code = 0) {
  CommandResult r;
  r.started = true;
  r.exit_code = code;
  r.out = std::move(out);
  return r;
}

// "GPU name" lines are devices; "ERR" is not recognized.
ParseResult toy_parse(std::string_view text) {
  ParseResult p;
  if (text.empty() || text.substr(0, 3) == "ERR") {
    p.recognized = false;
    p.notes.push_back("not toy output");
    return p;
  }
  if (text == "none") {
    p.notes.push_back("No devices were found");
    return p;
  }
  Observation o;
  o.f.model = std::string(text);
  p.devices.push_back(o);
  return p;
}

struct RecordingSink : CaptureSink {
  std::vector<std::string> files;
  void command(const std::string& f, const std::vector<std::string>&,
               const CommandResult&) override {
    files.push_back(f);
  }
};

CommandSource toy() {
  return CommandSource("toy", 10,
                       {{{"toy", "-x"}, "toy.xml", toy_parse}, {{"toy"}, "toy.txt", toy_parse}});
}

TEST(CommandSource, FirstRecognizedVariantWins) {
  ScriptedRunner r;
  r.by_arg1["-x"] = ok("rich");
  r.by_arg1[""] = ok("plain");
  SourceContext c;
  c.runner = &r;
  auto src = toy();
  auto rep = src.collect(c);
  EXPECT_EQ(rep.status, SourceStatus::ok);
  ASSERT_EQ(rep.devices.size(), 1u);
  EXPECT_EQ(rep.devices[0].f.model, "rich");
  EXPECT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(rep.what, "toy -x");
  EXPECT_EQ(src.name(), "toy");
  EXPECT_EQ(src.authority(), 10);
}

TEST(CommandSource, FallsBackWhenTheRichFormIsNotUnderstood) {
  ScriptedRunner r;
  r.by_arg1["-x"] = ok("ERR: unknown option", 1);
  r.by_arg1[""] = ok("plain");
  SourceContext c;
  c.runner = &r;
  auto rep = toy().collect(c);
  EXPECT_EQ(rep.status, SourceStatus::ok);
  EXPECT_EQ(rep.devices.at(0).f.model, "plain");
  ASSERT_FALSE(rep.notes.empty());
  EXPECT_NE(rep.notes[0].find("exit code 1: ERR: unknown option"), std::string::npos)
      << rep.notes[0];
}

TEST(CommandSource, MissingToolStopsAtOnce) {
  ScriptedRunner r;
  SourceContext c;
  c.runner = &r;
  auto rep = toy().collect(c);
  EXPECT_EQ(rep.status, SourceStatus::missing);
  EXPECT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(rep.notes.at(0), "toy: not found on PATH");
}

TEST(CommandSource, TimeoutIsReported) {
  ScriptedRunner r;
  CommandResult t = ok("");
  t.timed_out = true;
  t.duration_ms = 5000;
  r.by_arg1["-x"] = t;
  SourceContext c;
  c.runner = &r;
  auto rep = toy().collect(c);
  EXPECT_EQ(rep.status, SourceStatus::timed_out);
  EXPECT_NE(rep.notes.at(0).find("timed out"), std::string::npos);
}

TEST(CommandSource, AllVariantsFail) {
  ScriptedRunner r;
  r.by_arg1["-x"] = ok("ERR one", 9);
  r.by_arg1[""] = ok("ERR two", 9);
  SourceContext c;
  c.runner = &r;
  auto rep = toy().collect(c);
  EXPECT_EQ(rep.status, SourceStatus::failed);
  EXPECT_GE(rep.notes.size(), 2u);
}

TEST(CommandSource, RecognizedButNonZeroExitKeepsResultAndNotes) {
  ScriptedRunner r;
  r.by_arg1["-x"] = ok("none", 6);
  SourceContext c;
  c.runner = &r;
  auto rep = toy().collect(c);
  EXPECT_EQ(rep.status, SourceStatus::no_devices);
  EXPECT_EQ(rep.notes.size(), 2u);
}

TEST(CommandSource, StderrIsParsedWhenStdoutIsEmpty) {
  ScriptedRunner r;
  CommandResult e = ok("");
  e.err = "from stderr";
  r.by_arg1["-x"] = e;
  SourceContext c;
  c.runner = &r;
  auto rep = toy().collect(c);
  EXPECT_EQ(rep.devices.at(0).f.model, "from stderr");
}

TEST(CommandSource, StreamingToolIsSampled) {
  ScriptedRunner r;
  CommandResult t = ok("sampled");
  t.timed_out = true;
  r.by_arg1["-J"] = t;
  CommandVariant v{{"igt", "-J"}, "igt.json", toy_parse};
  v.sample_for = 100ms;
  CommandSource s("igt", 5, {v});
  SourceContext c;
  c.runner = &r;
  c.timeout = 5000ms;
  auto rep = s.collect(c);
  EXPECT_EQ(rep.status, SourceStatus::ok);
  EXPECT_EQ(r.timeouts.at(0), 100ms);
}

TEST(CommandSource, CaptureRunsEveryVariant) {
  ScriptedRunner r;
  r.by_arg1["-x"] = ok("rich");
  r.by_arg1[""] = ok("plain");
  RecordingSink sink;
  SourceContext c;
  c.runner = &r;
  c.capture = &sink;
  auto rep = toy().collect(c);
  EXPECT_EQ(rep.devices.size(), 1u);
  EXPECT_EQ(sink.files, (std::vector<std::string>{"toy.xml", "toy.txt"}));
}

TEST(CommandSource, ReplayReadsFilesInVariantOrder) {
  test::TempDir d;
  test::write_file(d / "toy.txt", "from file");
  SourceContext c;
  c.replay_dir = d.path();
  auto rep = toy().collect(c);
  EXPECT_EQ(rep.status, SourceStatus::ok);
  EXPECT_EQ(rep.devices.at(0).f.model, "from file");

  test::TempDir empty;
  c.replay_dir = empty.path();
  auto none = toy().collect(c);
  EXPECT_EQ(none.status, SourceStatus::skipped);
  EXPECT_NE(none.notes.at(0).find("toy.xml, toy.txt"), std::string::npos);

  test::TempDir bad;
  test::write_file(bad / "toy.xml", "ERR");
  c.replay_dir = bad.path();
  auto failed = toy().collect(c);
  EXPECT_EQ(failed.status, SourceStatus::failed);
}

TEST(SourceStatus, Names) {
  EXPECT_STREQ(to_string(SourceStatus::ok), "ok");
  EXPECT_STREQ(to_string(SourceStatus::no_devices), "no devices");
  EXPECT_STREQ(to_string(SourceStatus::missing), "missing");
  EXPECT_STREQ(to_string(SourceStatus::failed), "failed");
  EXPECT_STREQ(to_string(SourceStatus::timed_out), "timed out");
  EXPECT_STREQ(to_string(SourceStatus::skipped), "skipped");
}

}  // namespace
}  // namespace grey
