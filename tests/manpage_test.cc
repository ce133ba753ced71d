// The man pages (docs/man) and shell completions (completions/) against the real binary: every
// command and option `grey-gpu-opt --help` and `grey-gpu-opt COMMAND --help` print must be in
// grey-gpu-opt(1) and in the bash, zsh and fish completions, every config key in
// grey-gpu-opt.conf(5), every environment variable the code reads in ENVIRONMENT; the pages
// render without a groff warning; the completions load and complete in their shells.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "plan/config.h"
#include "test_util.h"
#include "util/runner.h"
#include "util/strings.h"

namespace grey::test {
namespace {

const std::string kRepo = std::string(GREY_TEST_SOURCE_DIR) + "/..";
const std::string kManPage = kRepo + "/docs/man/grey-gpu-opt.1";
const std::string kConfPage = kRepo + "/docs/man/grey-gpu-opt.conf.5";
const std::string kBashCompletion = kRepo + "/completions/grey-gpu-opt.bash";
const std::string kZshCompletion = kRepo + "/completions/_grey-gpu-opt";
const std::string kFishCompletion = kRepo + "/completions/grey-gpu-opt.fish";

// ---- what --help says ------------------------------------------------------------------------

// One "Options:" entry of CLI11's help: "-h,--help" gives {"-h", "--help"}.
using OptionNames = std::vector<std::string>;

struct Help {
  std::vector<OptionNames> options;
  std::vector<std::string> subcommands;
};

// Parses CLI11's help text: entries are indented by exactly two spaces; a description that
// does not fit continues on a line indented further.
Help parse_help(const std::string& text) {
  Help h;
  enum { kNone, kOptions, kSubcommands } section = kNone;
  for (std::string_view line : split_lines(text)) {
    if (!line.empty() && line[0] != ' ') {
      section = starts_with(line, "Options:")       ? kOptions
                : starts_with(line, "Subcommands:") ? kSubcommands
                                                    : kNone;
      continue;
    }
    if (line.size() < 3 || line.substr(0, 2) != "  " || line[2] == ' ') continue;
    std::string_view first = line.substr(2, line.find(' ', 2) - 2);
    if (section == kOptions && first[0] == '-') {
      OptionNames names;
      for (auto n : split(first, ',')) names.emplace_back(n);
      h.options.push_back(names);
    } else if (section == kSubcommands) {
      h.subcommands.emplace_back(first);
    }
  }
  return h;
}

Help help_of(const std::vector<std::string>& args) {
  CommandResult r = run_grey(args, {});
  EXPECT_TRUE(r.ok()) << join_argv(args) << ": " << r.describe_failure() << r.err;
  return parse_help(r.out);
}

// The program's help and each command's, parsed once.
struct Cli {
  Help global;
  std::map<std::string, Help> commands;
};

const Cli& cli() {
  static const Cli c = [] {
    Cli x;
    x.global = help_of({"--help"});
    for (const auto& cmd : x.global.subcommands) x.commands[cmd] = help_of({cmd, "--help"});
    return x;
  }();
  return c;
}

// ---- finding names in text -------------------------------------------------------------------

bool name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
}

// `name` occurs in `text` as a whole word: "--dry-run" is not found in "--no-dry-run".
bool has_word(const std::string& text, const std::string& name) {
  for (size_t at = text.find(name); at != std::string::npos; at = text.find(name, at + 1)) {
    bool left = at == 0 || !name_char(text[at - 1]);
    bool right = at + name.size() >= text.size() || !name_char(text[at + name.size()]);
    if (left && right) return true;
  }
  return false;
}

// roff source as plain text: "\-" is "-", font changes, "\%" and "\&" are dropped.
std::string roff_plain(const std::string& roff) {
  std::string s = std::regex_replace(roff, std::regex(R"(\\f(\[[A-Z]*\]|[A-Z]))"), "");
  s = std::regex_replace(s, std::regex(R"(\\\(dq)"), "\"");
  s = std::regex_replace(s, std::regex(R"(\\[%&])"), "");
  return std::regex_replace(s, std::regex(R"(\\-)"), "-");
}

// The man page cut into its sections: "SH NAME" and, for each ".SS x", "SS x" (the text up to
// the next .SH or .SS).
std::map<std::string, std::string> roff_sections(const std::string& roff) {
  std::map<std::string, std::string> out;
  std::string current = "preamble";
  const std::string plain = roff_plain(roff);  // split_lines' views point into it
  for (std::string_view raw : split_lines(plain)) {
    std::string line(raw);
    if (starts_with(line, ".SH ") || starts_with(line, ".SS ")) {
      std::string title(trim(line.substr(4)));
      title.erase(std::remove(title.begin(), title.end(), '"'), title.end());
      current = line.substr(1, 2) + " " + title;
      out[current];
      continue;
    }
    out[current] += line + "\n";
  }
  return out;
}

// What grey-gpu-opt(1) lacks of `cli`: one line per command or option.
std::vector<std::string> man_page_gaps(const Cli& c, const std::string& roff) {
  std::vector<std::string> gaps;
  auto sections = roff_sections(roff);
  const std::string& global = sections["SH OPTIONS"];
  for (const auto& names : c.global.options)
    for (const auto& n : names)
      if (!has_word(global, n)) gaps.push_back("global option " + n + " is not in OPTIONS");
  for (const auto& [cmd, help] : c.commands) {
    auto it = sections.find("SS " + cmd);
    if (it == sections.end()) {
      gaps.push_back("command " + cmd + " has no .SS " + cmd + " under COMMANDS");
      continue;
    }
    for (const auto& names : help.options)
      for (const auto& n : names)
        if (n != "-h" && n != "--help" && !has_word(it->second, n))
          gaps.push_back("option " + n + " of " + cmd + " is not in .SS " + cmd);
  }
  return gaps;
}

std::string lines(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += "  " + x + "\n";
  return s;
}

CommandResult run_tool(const std::vector<std::string>& argv,
                       const std::map<std::string, std::string>& env = {}) {
  PosixRunner r;
  RunOptions o;
  o.timeout = std::chrono::seconds(60);
  o.extra_env = env;
  return r.run(argv, o);
}

bool installed(const std::string& prog) {
  return find_on_path(prog).find('/') != std::string::npos;
}

// ---- the help parser itself -------------------------------------------------------------------

TEST(ManPage, HelpParserReadsOptionsAndSubcommands) {
  Help h = parse_help(
      "Usage: grey-gpu-opt [OPTIONS] SUBCOMMAND\n\nOptions:\n"
      "  -h,--help                   Print this help message and exit\n"
      "  --interval FLOAT:FLOAT in [0.01 - 86400]\n"
      "                              Seconds between ticks (-1 is not an option)\n\n"
      "Positionals:\n  DIR TEXT REQUIRED           Directory to write\n\n"
      "Subcommands:\n  detect                      Find every GPU\n"
      "  start-daemon                Monitor\n");
  ASSERT_EQ(h.options.size(), 2u);
  EXPECT_EQ(h.options[0], (OptionNames{"-h", "--help"}));
  EXPECT_EQ(h.options[1], (OptionNames{"--interval"}));
  EXPECT_EQ(h.subcommands, (std::vector<std::string>{"detect", "start-daemon"}));
}

TEST(ManPage, TheBinaryHasCommandsAndOptions) {
  // Guards the drift checks below against an empty parse passing them vacuously.
  const Cli& c = cli();
  EXPECT_GE(c.global.options.size(), 5u);
  for (const char* cmd : {"detect", "plan", "apply", "run", "start-daemon"})
    EXPECT_TRUE(c.commands.count(cmd)) << cmd;
  ASSERT_TRUE(c.commands.count("plan"));
  EXPECT_GE(c.commands.at("plan").options.size(), 5u);
}

// ---- grey-gpu-opt(1) ---------------------------------------------------------------------------

TEST(ManPage, EveryCommandAndOptionOfHelpIsInTheManPage) {
  auto gaps = man_page_gaps(cli(), read_file(kManPage));
  EXPECT_TRUE(gaps.empty()) << kManPage << " lacks what --help shows:\n" << lines(gaps);
}

TEST(ManPage, TheDriftCheckFindsAMissingOptionOrCommand) {
  std::string roff = read_file(kManPage);
  ASSERT_TRUE(man_page_gaps(cli(), roff).empty());
  // Rename plan's --detect (synopsis and entry) and the capture section.
  std::string cut = std::regex_replace(roff, std::regex(R"(\\-\\-detect\b)"), "\\-\\-xx");
  cut = std::regex_replace(cut, std::regex(R"(\.SS capture\n)"), ".SS kapture\n");
  auto gaps = man_page_gaps(cli(), cut);
  EXPECT_NE(std::find(gaps.begin(), gaps.end(), "option --detect of plan is not in .SS plan"),
            gaps.end())
      << lines(gaps);
  EXPECT_NE(
      std::find(gaps.begin(), gaps.end(), "command capture has no .SS capture under COMMANDS"),
      gaps.end())
      << lines(gaps);
}

TEST(ManPage, HasTheSectionsOfAManPage) {
  auto s = roff_sections(read_file(kManPage));
  for (const char* sh :
       {"SH NAME", "SH SYNOPSIS", "SH DESCRIPTION", "SH OPTIONS", "SH COMMANDS", "SH EXIT STATUS",
        "SH ENVIRONMENT", "SH FILES", "SH EXAMPLES", "SH SEE ALSO"})
    EXPECT_TRUE(s.count(sh)) << sh;
  for (const char* code : {"0", "1", "2", "3", "126", "127"})
    EXPECT_TRUE(has_word(s["SH EXIT STATUS"], ".B " + std::string(code))) << "exit " << code;
  // The metrics port the daemon listens on without a value.
  EXPECT_TRUE(contains(s["SS start-daemon"], "127.0.0.1:9862"));
  EXPECT_FALSE(contains(read_file(kManPage), "9835"));
}

TEST(ManPage, PagesCarryTheVersionOfTheBinary) {
  CommandResult r = run_grey({"--version"}, {});
  ASSERT_TRUE(r.ok()) << r.describe_failure();
  const std::string version(trim(r.out));  // "grey-gpu-opt 0.1.0"
  ASSERT_TRUE(starts_with(version, "grey-gpu-opt ")) << version;
  for (const auto& page : {kManPage, kConfPage}) {
    std::smatch m;
    std::string text = read_file(page);
    ASSERT_TRUE(std::regex_search(text, m, std::regex(R"re(\n\.TH \S+ [15] \S+ "([^"]*)")re")))
        << page;
    EXPECT_EQ(m[1].str(), version) << page << ": update the .TH line to the new version";
  }
}

TEST(ManPage, EveryEnvironmentVariableTheCodeReadsIsDocumented) {
  // getenv("X"), env_or("X", ...) and the library overrides (kEnvOverride = "X") in src/ and
  // shim/.
  std::regex read(
      R"re((?:getenv|env_or)\("([A-Z_][A-Z0-9_]*)"|kN?[A-Za-z]*EnvOverride = "([A-Z_][A-Z0-9_]*)")re");
  std::set<std::string> vars;
  for (const char* dir : {"/src", "/shim"})
    for (const auto& e : std::filesystem::recursive_directory_iterator(kRepo + dir)) {
      auto ext = e.path().extension();
      if (ext != ".cc" && ext != ".h" && ext != ".c") continue;
      std::string text = read_file(e.path().string());
      if (!contains(text, "getenv") && !contains(text, "env_or") && !contains(text, "EnvOverride"))
        continue;
      for (std::sregex_iterator m(text.begin(), text.end(), read), end; m != end; ++m)
        vars.insert((*m)[1].matched ? (*m)[1].str() : (*m)[2].str());
    }
  EXPECT_TRUE(vars.count("GREY_CONFIG_DIR") && vars.count("GREY_CAP_SHIM") &&
              vars.count("GREY_NVML_LIBRARY"))
      << "the scan of src/ found too little";
  auto s = roff_sections(read_file(kManPage));
  for (const auto& v : vars)
    EXPECT_TRUE(has_word(s["SH ENVIRONMENT"], ".B " + v)) << v << " is not in ENVIRONMENT";
}

// The groff check `man` itself would show: any warning (-ww) fails, on each output device.
void expect_clean_roff(const std::string& page) {
  ASSERT_TRUE(installed("groff")) << "groff is missing: install groff-base (scripts/setup.sh)";
  for (const char* device : {"-Tutf8", "-Tascii", "-Tps"}) {
    CommandResult r = run_tool({"groff", "-man", "-ww", "-z", device, page});
    EXPECT_TRUE(r.ok()) << page << " " << device << ": " << r.describe_failure();
    EXPECT_EQ(r.err, "") << page << " " << device;
  }
}

TEST(ManPage, RendersWithoutGroffWarnings) {
  expect_clean_roff(kManPage);
  expect_clean_roff(kConfPage);
}

TEST(ManPage, GroffCheckCatchesABrokenPage) {
  TempDir t;
  write_file(t / "bad.1", ".TH BAD 1\n.SH NAME\nbad \\- x\n.XY undefined macro\n\\*[nostring]\n");
  ASSERT_TRUE(installed("groff")) << "groff is missing: install groff-base (scripts/setup.sh)";
  CommandResult r = run_tool({"groff", "-man", "-ww", "-z", "-Tutf8", t / "bad.1"});
  EXPECT_NE(r.err, "") << "groff -ww did not warn about an undefined macro";
}

TEST(ManPage, MandocLintIsClean) {
  if (!installed("mandoc")) GTEST_SKIP() << "mandoc is not installed; groff checks the pages";
  for (const auto& page : {kManPage, kConfPage}) {
    CommandResult r = run_tool({"mandoc", "-T", "lint", "-W", "all", page});
    EXPECT_TRUE(r.ok()) << page << ": " << r.describe_failure();
    EXPECT_EQ(r.out + r.err, "") << page;
  }
}

TEST(ManPage, ManRendersThePage) {
  if (!installed("man")) GTEST_SKIP() << "man (man-db) is not installed";
  for (const auto& page : {kManPage, kConfPage}) {
    // As lintian runs it: any warning on stderr is a defect.
    CommandResult r = run_tool({"man", "--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z", page},
                               {{"MANROFFSEQ", ""}, {"MANWIDTH", "80"}});
    EXPECT_TRUE(r.ok()) << page << ": " << r.describe_failure();
    EXPECT_EQ(r.err, "") << page;
    // -Z: troff's output, one word a "t" line.
    EXPECT_TRUE(contains(r.out, "\ntNAME\n") && contains(r.out, "\ntEXAMPLES\n")) << page;
  }
}

// ---- grey-gpu-opt.conf(5) ----------------------------------------------------------------------

TEST(ConfPage, EveryConfigKeyIsDocumented) {
  // KEYS with its subsections: up to the next .SH.
  std::string roff = roff_plain(read_file(kConfPage));
  size_t from = roff.find("\n.SH KEYS\n"), to = roff.find("\n.SH ", from + 1);
  ASSERT_NE(from, std::string::npos);
  const std::string keys = roff.substr(from, to - from);
  ASSERT_FALSE(config_keys().empty());
  for (const auto& k : config_keys())
    EXPECT_TRUE(has_word(keys, ".B " + k))
        << k << " (accepted by src/plan/config.cc) is not in " << kConfPage;
  // The fields that cannot be set are named as such.
  for (const char* k : {"estimated_reclaimed_mb", "dedup_buffer_count", "compression_ratio"})
    EXPECT_TRUE(has_word(keys, k)) << k;
}

TEST(ConfPage, TheDocumentedExampleIsAValidConfig) {
  std::string roff = roff_plain(read_file(kConfPage));
  size_t ex = roff.find(".SH EXAMPLES");
  ASSERT_NE(ex, std::string::npos);
  size_t from = roff.find(".EX\n", ex), to = roff.find(".EE\n", ex);
  ASSERT_NE(from, std::string::npos);
  ASSERT_NE(to, std::string::npos);
  ConfigResult c = parse_config_text(roff.substr(from + 4, to - from - 4), "example");
  EXPECT_TRUE(c.ok) << lines(c.errors);
  EXPECT_TRUE(c.overrides.mode.has_value());
  EXPECT_EQ(c.overrides.per_gpu.size(), 2u);
}

// ---- bash ------------------------------------------------------------------------------------

// COMPREPLY of the completion function bash registered for grey-gpu-opt, for `words` (the last
// one is the word being completed).
const char* kBashComplete = R"sh(
source "$1" || exit 3
shift
spec=$(complete -p grey-gpu-opt) || exit 4
fn=${spec#*-F }
fn=${fn%% *}
COMP_WORDS=("$@")
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
COMP_LINE="${COMP_WORDS[*]}"
COMP_POINT=${#COMP_LINE}
"$fn" "${COMP_WORDS[0]}" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
printf '%s\n' "${COMPREPLY[@]}"
)sh";

std::vector<std::string> bash_complete(const std::string& file,
                                       const std::vector<std::string>& words) {
  std::vector<std::string> argv{"bash", "--norc", "--noprofile", "-c", kBashComplete, "bash", file};
  argv.insert(argv.end(), words.begin(), words.end());
  CommandResult r = run_tool(argv);
  EXPECT_TRUE(r.ok()) << join_argv(words) << ": " << r.describe_failure() << r.err;
  EXPECT_EQ(r.err, "") << join_argv(words);
  std::vector<std::string> out;
  for (auto l : split_lines(r.out))
    if (!l.empty()) out.emplace_back(l);
  return out;
}

// What a completion (a function from words to candidates) lacks of `cli`.
std::vector<std::string> completion_gaps(
    const Cli& c, const std::function<std::vector<std::string>(std::vector<std::string>)>& comp) {
  std::vector<std::string> gaps;
  auto has = [](const std::vector<std::string>& v, const std::string& x) {
    return std::find(v.begin(), v.end(), x) != v.end();
  };
  auto commands = comp({"grey-gpu-opt", ""});
  for (const auto& cmd : c.global.subcommands)
    if (!has(commands, cmd)) gaps.push_back("command " + cmd);
  auto globals = comp({"grey-gpu-opt", "-"});
  for (const auto& names : c.global.options)
    for (const auto& n : names)
      if (!has(globals, n)) gaps.push_back("global option " + n);
  for (const auto& [cmd, help] : c.commands) {
    auto got = comp({"grey-gpu-opt", cmd, "-"});
    for (const auto& names : help.options)
      for (const auto& n : names)
        if (!has(got, n)) gaps.push_back("option " + n + " of " + cmd);
  }
  return gaps;
}

TEST(BashCompletion, SourcingRegistersIt) {
  CommandResult r =
      run_tool({"bash", "--norc", "--noprofile", "-c", "source \"$1\" && complete -p grey-gpu-opt",
                "bash", kBashCompletion});
  ASSERT_TRUE(r.ok()) << r.describe_failure() << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(^complete -F \S+ grey-gpu-opt\s*$)")))
      << r.out;
}

TEST(BashCompletion, CompletesACommandFromItsStart) {
  EXPECT_EQ(bash_complete(kBashCompletion, {"grey-gpu-opt", "de"}),
            std::vector<std::string>{"detect"});
  EXPECT_EQ(bash_complete(kBashCompletion, {"grey-gpu-opt", "--timeout", "3", "start-d"}),
            std::vector<std::string>{"start-daemon"});
}

TEST(BashCompletion, CompletesTheOptionsOfPlan) {
  auto got = bash_complete(kBashCompletion, {"grey-gpu-opt", "plan", "--"});
  std::set<std::string> set(got.begin(), got.end());
  for (const auto& names : cli().commands.at("plan").options)
    for (const auto& n : names)
      if (starts_with(n, "--")) {
        EXPECT_TRUE(set.count(n)) << n << " not offered";
      }
  EXPECT_FALSE(set.count("--destructive")) << "an option of apply offered for plan";
  EXPECT_EQ(bash_complete(kBashCompletion, {"grey-gpu-opt", "plan", "--mode", ""}),
            (std::vector<std::string>{"safe", "aggressive"}));
  EXPECT_EQ(bash_complete(kBashCompletion, {"grey-gpu-opt", "env", "--shell", "f"}),
            std::vector<std::string>{"fish"});
  // --mode=a: bash splits the word at "=".
  EXPECT_EQ(bash_complete(kBashCompletion, {"grey-gpu-opt", "plan", "--mode", "=", "a"}),
            std::vector<std::string>{"aggressive"});
  EXPECT_EQ(
      bash_complete(kBashCompletion, {"grey-gpu-opt", "--timeout", "=", "3", "plan", "--con"}),
      std::vector<std::string>{"--config"});
}

TEST(BashCompletion, HasEveryCommandAndOptionOfHelp) {
  auto gaps = completion_gaps(
      cli(), [](std::vector<std::string> w) { return bash_complete(kBashCompletion, w); });
  EXPECT_TRUE(gaps.empty()) << kBashCompletion << " lacks:\n" << lines(gaps);
}

TEST(BashCompletion, TheDriftCheckFindsAMissingOption) {
  TempDir t;
  std::string text = read_file(kBashCompletion);
  std::string cut = std::regex_replace(text, std::regex(" --detect\""), "\"");
  ASSERT_NE(cut, text);
  write_file(t / "c.bash", cut);
  auto gaps = completion_gaps(
      cli(), [&](std::vector<std::string> w) { return bash_complete(t / "c.bash", w); });
  EXPECT_EQ(gaps, std::vector<std::string>{"option --detect of plan"});
}

// ---- zsh ---------------------------------------------------------------------------------------

// The text between `open` and the next line that is exactly `close`.
std::string block(const std::string& text, const std::string& open, const std::string& close) {
  size_t from = text.find(open);
  if (from == std::string::npos) return "";
  size_t to = text.find("\n" + close + "\n", from);
  return text.substr(from, to == std::string::npos ? std::string::npos : to - from);
}

// What the zsh file lacks: commands in `commands=(...)`, global options in the globals array,
// a command's options in its function _grey-gpu-opt_COMMAND.
std::vector<std::string> zsh_gaps(const Cli& c, const std::string& text) {
  std::vector<std::string> gaps;
  std::string cmds = block(text, "  commands=(", "  )");
  for (const auto& cmd : c.global.subcommands)
    if (!contains(cmds, "'" + cmd + ":")) gaps.push_back("command " + cmd);
  std::string globals = block(text, "_grey_gpu_opt_globals=(", ")");
  for (const auto& names : c.global.options)
    for (const auto& n : names)
      if (!has_word(globals, n)) gaps.push_back("global option " + n);
  for (const auto& [cmd, help] : c.commands) {
    std::string fn = block(text, "_grey-gpu-opt_" + cmd + "() {", "}");
    if (fn.empty()) {
      gaps.push_back("function _grey-gpu-opt_" + cmd);
      continue;
    }
    for (const auto& names : help.options)
      for (const auto& n : names)
        if (n != "-h" && n != "--help" && !has_word(fn, n))
          gaps.push_back("option " + n + " of " + cmd);
  }
  return gaps;
}

TEST(ZshCompletion, HasEveryCommandAndOptionOfHelp) {
  std::string text = read_file(kZshCompletion);
  EXPECT_TRUE(starts_with(text, "#compdef grey-gpu-opt\n"));
  auto gaps = zsh_gaps(cli(), text);
  EXPECT_TRUE(gaps.empty()) << kZshCompletion << " lacks:\n" << lines(gaps);
  std::string cut = std::regex_replace(text, std::regex(R"('--detect\[)"), "'--xx[");
  EXPECT_EQ(zsh_gaps(cli(), cut), std::vector<std::string>{"option --detect of plan"});
}

TEST(ZshCompletion, ParsesAndCompletes) {
  if (!installed("zsh")) GTEST_SKIP() << "zsh is not installed (scripts/setup.sh installs it)";
  CommandResult n = run_tool({"zsh", "-n", kZshCompletion});
  EXPECT_TRUE(n.ok()) << n.describe_failure() << n.err;
  EXPECT_EQ(n.err, "");

  TempDir home;
  const std::string dir = std::filesystem::canonical(kRepo + "/completions").string();
  auto complete = [&](const std::string& line) {
    CommandResult r =
        run_tool({"zsh", "-f", std::string(GREY_TEST_SOURCE_DIR) + "/completions/zsh_complete.zsh",
                  dir, line},
                 {{"HOME", home.path()}, {"ZDOTDIR", home.path()}});
    if (r.exit_code == 3 || r.exit_code == 4) return std::string("no-pty");
    EXPECT_TRUE(r.ok()) << line << ": " << r.describe_failure() << r.err;
    // The terminal's escape sequences and carriage returns are not the completion's.
    std::string s = std::regex_replace(r.out, std::regex("\x1b\\[[0-9;?]*[A-Za-z]|\r"), "");
    return s;
  };
  std::string de = complete("grey-gpu-opt de");
  if (de == "no-pty") GTEST_SKIP() << "zsh cannot open a pseudo-terminal (zsh/zpty) here";
  EXPECT_TRUE(contains(de, "grey-gpu-opt detect")) << de;
  std::string plan = complete("grey-gpu-opt plan --");
  for (const auto& names : cli().commands.at("plan").options)
    for (const auto& o : names)
      if (starts_with(o, "--")) {
        EXPECT_TRUE(std::regex_search(plan, std::regex("\n" + o + " +-- "))) << o << "\n" << plan;
      }
  EXPECT_FALSE(contains(plan, "--destructive")) << plan;
}

// ---- fish --------------------------------------------------------------------------------------

// What the fish file lacks, read from its `complete` lines: commands (`-a CMD -d`), global
// options (lines without a condition) and a command's options (lines conditioned on
// `__fish_seen_subcommand_from CMD`).
std::vector<std::string> fish_gaps(const Cli& c, const std::string& text) {
  std::vector<std::string> gaps;
  std::string globals, commands;
  std::map<std::string, std::string> per_command;
  std::regex seen(R"(__fish_seen_subcommand_from ([a-z-]+)['; ])");
  for (std::string_view raw : split_lines(text)) {
    std::string line(raw);
    if (!starts_with(line, "complete -c grey-gpu-opt ")) continue;
    std::smatch m;
    if (!contains(line, " -n "))
      globals += line + "\n";
    else if (contains(line, "not __fish_seen_subcommand_from"))
      commands += line + "\n";
    else if (std::regex_search(line, m, seen))
      per_command[m[1]] += line + "\n";
  }
  // -l NAME for --NAME, -s X for -X.
  auto fish_name = [](const std::string& o) {
    return starts_with(o, "--") ? "-l " + o.substr(2) : "-s " + o.substr(1);
  };
  for (const auto& cmd : c.global.subcommands)
    if (!contains(commands, " -a " + cmd + " -d ")) gaps.push_back("command " + cmd);
  for (const auto& names : c.global.options)
    for (const auto& n : names)
      if (!has_word(globals, fish_name(n))) gaps.push_back("global option " + n);
  for (const auto& [cmd, help] : c.commands)
    for (const auto& names : help.options)
      for (const auto& n : names)
        if (n != "-h" && n != "--help" && !has_word(per_command[cmd], fish_name(n)))
          gaps.push_back("option " + n + " of " + cmd);
  return gaps;
}

TEST(FishCompletion, HasEveryCommandAndOptionOfHelp) {
  std::string text = read_file(kFishCompletion);
  auto gaps = fish_gaps(cli(), text);
  EXPECT_TRUE(gaps.empty()) << kFishCompletion << " lacks:\n" << lines(gaps);
  std::string cut = std::regex_replace(text, std::regex(R"(plan' -l detect )"), "plan' -l xx ");
  EXPECT_EQ(fish_gaps(cli(), cut), std::vector<std::string>{"option --detect of plan"});
}

TEST(FishCompletion, ParsesAndCompletes) {
  if (!installed("fish")) GTEST_SKIP() << "fish is not installed (scripts/setup.sh installs it)";
  CommandResult n = run_tool({"fish", "--no-execute", kFishCompletion});
  EXPECT_TRUE(n.ok()) << n.describe_failure() << n.err;
  EXPECT_EQ(n.err, "");

  TempDir home;
  auto complete = [&](std::vector<std::string> words) {
    std::string line;
    for (const auto& w : words) line += (line.empty() ? "" : " ") + w;
    CommandResult r = run_tool({"fish", "--no-config", "-c",
                                "source $argv[1]; and complete -C$argv[2]", kFishCompletion, line},
                               {{"HOME", home.path()},
                                {"XDG_CONFIG_HOME", home / "config"},
                                {"XDG_DATA_HOME", home / "data"}});
    EXPECT_TRUE(r.ok()) << line << ": " << r.describe_failure() << r.err;
    std::vector<std::string> out;  // "candidate<TAB>description": the candidates
    for (auto l : split_lines(r.out))
      if (!l.empty()) out.emplace_back(l.substr(0, l.find('\t')));
    return out;
  };
  EXPECT_EQ(complete({"grey-gpu-opt", "de"}), std::vector<std::string>{"detect"});
  EXPECT_EQ(complete({"grey-gpu-opt", "plan", "--mode", ""}),
            (std::vector<std::string>{"aggressive", "safe"}));
  auto gaps = completion_gaps(cli(), complete);
  EXPECT_TRUE(gaps.empty()) << kFishCompletion << " (run in fish) lacks:\n" << lines(gaps);
}

}  // namespace
}  // namespace grey::test
