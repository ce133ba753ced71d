// State nobody else can steer (SPEC §0): planted symlinks, FIFOs, directories and config files
// that other users can write are refused with a clear message, and nothing is followed,
// truncated, chmod'ed or waited on.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>

#include "test_util.h"
#include "util/state_dir.h"

namespace grey {
namespace {

using test::TempDir;

int mode_of(const std::string& p) {
  struct stat st;
  EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
  return st.st_mode & 07777;
}

bool is_link(const std::string& p) {
  struct stat st;
  return ::lstat(p.c_str(), &st) == 0 && S_ISLNK(st.st_mode);
}

bool exists(const std::string& p) {
  struct stat st;
  return ::lstat(p.c_str(), &st) == 0;
}

// `fn` run in a child that is killed (SIGALRM) if it hangs; its exit status, or -1 when it
// was killed. A regression that blocks on a FIFO fails the test instead of hanging it.
template <class Fn>
int in_child(Fn fn) {
  pid_t pid = ::fork();
  if (pid == 0) {
    ::alarm(30);
    ::_exit(fn());
  }
  int st = 0;
  ::waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

// ---- The state directory itself -----------------------------------------------------------

TEST(HostileFs, WorldWritableStateDirIsRefusedAndLeftAsItIs) {
  TempDir t;
  std::string d = t / "s";
  ASSERT_EQ(::mkdir(d.c_str(), 0700), 0);
  ASSERT_EQ(::chmod(d.c_str(), 0777), 0);
  std::string err = ensure_state_dir(d);
  EXPECT_NE(err.find("writable by other users (mode 0777)"), std::string::npos) << err;
  EXPECT_EQ(mode_of(d), 0777);
}

TEST(HostileFs, StickyWorldWritableStateDirIsRefusedAndKeepsItsStickyBit) {
  TempDir t;
  std::string d = t / "tmp-like";
  ASSERT_EQ(::mkdir(d.c_str(), 0700), 0);
  ASSERT_EQ(::chmod(d.c_str(), 01777), 0);
  std::string err = ensure_state_dir(d);
  EXPECT_NE(err.find("writable by other users (mode 1777)"), std::string::npos) << err;
  EXPECT_EQ(mode_of(d), 01777);
}

TEST(HostileFs, GroupWritableStateDirIsRefused) {
  TempDir t;
  std::string d = t / "g";
  ASSERT_EQ(::mkdir(d.c_str(), 0700), 0);
  ASSERT_EQ(::chmod(d.c_str(), 0770), 0);
  EXPECT_NE(ensure_state_dir(d).find("writable by other users"), std::string::npos);
  EXPECT_EQ(mode_of(d), 0770);
}

TEST(HostileFs, ReadableStateDirIsAcceptedButNotChmodded) {
  TempDir t;
  std::string d = t / "r";
  ASSERT_EQ(::mkdir(d.c_str(), 0700), 0);
  ASSERT_EQ(::chmod(d.c_str(), 0755), 0);
  EXPECT_EQ(ensure_state_dir(d), "");
  EXPECT_EQ(mode_of(d), 0755);
}

TEST(HostileFs, StateDirBelowAWorldWritableParentIsRefusedAndNotCreated) {
  TempDir t;
  std::string open = t / "open";
  ASSERT_EQ(::mkdir(open.c_str(), 0700), 0);
  ASSERT_EQ(::chmod(open.c_str(), 0777), 0);
  std::string d = open + "/deeper/state";
  std::string err = ensure_state_dir(d);
  EXPECT_NE(err.find("its parent " + open + " is writable by other users"), std::string::npos)
      << err;
  EXPECT_FALSE(exists(open + "/deeper"));
  // The sticky bit (like /tmp) makes such a parent safe: others cannot replace our entry.
  ASSERT_EQ(::chmod(open.c_str(), 01777), 0);
  EXPECT_EQ(ensure_state_dir(d), "");
  EXPECT_EQ(mode_of(d), 0700);
}

TEST(HostileFs, StateDirBelowAParentOfAnotherUserIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to chown";
  TempDir t;
  std::string theirs = t / "theirs";
  ASSERT_EQ(::mkdir(theirs.c_str(), 0755), 0);
  ASSERT_EQ(::chown(theirs.c_str(), 12345, 12345), 0);
  std::string d = theirs + "/state";
  ASSERT_EQ(::mkdir(d.c_str(), 0700), 0);  // ours, but they could rename it away
  std::string err = ensure_state_dir(d);
  EXPECT_NE(err.find("its parent " + theirs + " is owned by uid 12345"), std::string::npos) << err;
}

// ---- Files in it --------------------------------------------------------------------------

TEST(HostileFs, AtomicWriteRefusesAPlantedSymlink) {
  TempDir t;
  std::string victim = t / "victim";
  test::write_file(victim, "precious\n", 0644);
  for (const char* name : {"last_plan.yaml", "env"}) {
    std::string p = t / name;
    ASSERT_EQ(::symlink(victim.c_str(), p.c_str()), 0);
    std::string err = write_file_atomic(p, "planted\n");
    EXPECT_NE(err.find("refusing " + p + ": it is a symbolic link"), std::string::npos) << err;
    EXPECT_TRUE(is_link(p)) << name;
  }
  EXPECT_EQ(test::read_file(victim), "precious\n");
}

TEST(HostileFs, AtomicWriteRefusesAFifoAndLeavesNoTempFile) {
  TempDir t;
  std::string p = t / "last_plan.yaml";
  ASSERT_EQ(::mkfifo(p.c_str(), 0600), 0);
  std::string err = write_file_atomic(p, "x\n");
  EXPECT_NE(err.find("not a regular file (FIFO)"), std::string::npos) << err;
  size_t n = 0;
  for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator(t.path())) ++n;
  EXPECT_EQ(n, 1u);
}

TEST(HostileFs, JournalAppendRefusesAPlantedSymlink) {
  TempDir t;
  std::string victim = t / "victim";
  test::write_file(victim, "precious\n", 0644);
  std::string j = t / "journal.jsonl";
  ASSERT_EQ(::symlink(victim.c_str(), j.c_str()), 0);
  EXPECT_NE(append_line_synced(j, "{\"a\":1}"), "");
  EXPECT_EQ(test::read_file(victim), "precious\n");
}

TEST(HostileFs, StateFileChecksNameTheReason) {
  TempDir t;
  std::string victim = t / "victim", link = t / "link", fifo = t / "fifo", open = t / "open";
  test::write_file(victim, "v: 1\n", 0600);
  ASSERT_EQ(::symlink(victim.c_str(), link.c_str()), 0);
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  test::write_file(open, "v: 1\n", 0666);
  std::string err;
  EXPECT_EQ(open_checked(link, O_RDONLY, FileTrust::kState, &err), -1);
  EXPECT_EQ(err, "refusing " + link +
                     ": it is a symbolic link (a state file is never opened through a link)");
  EXPECT_EQ(open_checked(link, O_WRONLY | O_CREAT | O_APPEND, FileTrust::kState, &err), -1);
  EXPECT_NE(err.find("symbolic link"), std::string::npos) << err;
  EXPECT_EQ(open_checked(fifo, O_WRONLY | O_CREAT | O_APPEND, FileTrust::kState, &err), -1);
  EXPECT_EQ(err, "refusing " + fifo + ": it is not a regular file (FIFO)");
  EXPECT_EQ(open_checked(open, O_RDONLY, FileTrust::kConfig, &err), -1);
  EXPECT_NE(err.find("writable by other users (mode 0666)"), std::string::npos) << err;
  // The write-bit rule is for config files only: other state files have to be ours and regular.
  int fd = open_checked(open, O_RDONLY, FileTrust::kState, &err);
  EXPECT_GE(fd, 0) << err;
  if (fd >= 0) ::close(fd);
  bool missing = false;
  EXPECT_FALSE(read_file_checked(t / "none", FileTrust::kConfig, &err, 100, &missing));
  EXPECT_TRUE(missing);
}

TEST(HostileFs, StateFileOfAnotherUserIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to chown";
  TempDir t;
  std::string p = t / "config.yaml";
  test::write_file(p, "mode: aggressive\n", 0644);
  ASSERT_EQ(::chown(p.c_str(), 12345, 12345), 0);
  std::string err;
  EXPECT_FALSE(read_file_checked(p, FileTrust::kConfig, &err));
  EXPECT_NE(err.find("owned by uid 12345, not by us (uid 0)"), std::string::npos) << err;
  EXPECT_FALSE(read_file_checked(p, FileTrust::kUserConfig, &err));
  EXPECT_NE(err.find("owned by uid 12345"), std::string::npos) << err;
}

TEST(HostileFs, ReadingAFifoFailsAtOnceInsteadOfWaiting) {
  TempDir t;
  std::string fifo = t / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  int rc = in_child([&] {
    std::string err;
    auto text = read_whole_file(fifo, &err);
    return !text && err.find("not a regular file (FIFO)") != std::string::npos ? 0 : 1;
  });
  EXPECT_EQ(rc, 0) << "-1: read_whole_file blocked on the FIFO";
}

TEST(HostileFs, TempFilesAreFreshRandomAndPrivate) {
  TempDir t;
  std::string a, b, err;
  int fa = create_temp_file(t / "daemon_status.json", 0644, &a, &err);
  int fb = create_temp_file(t / "daemon_status.json", 0644, &b, &err);
  ASSERT_GE(fa, 0) << err;
  ASSERT_GE(fb, 0) << err;
  ::close(fa);
  ::close(fb);
  EXPECT_NE(a, b);
  EXPECT_EQ(a.rfind(t / ".daemon_status.json.tmp.", 0), 0u) << a;
  EXPECT_EQ(mode_of(a), 0644);
}

// ---- Through the CLI ----------------------------------------------------------------------

TEST(HostileFsCli, PlanWithAFifoAsConfigFailsPromptly) {
  TempDir t;
  std::string fifo = t / "cfg.yaml";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto r = test::run_grey({"plan", "--config", fifo}, {{"GREY_CONFIG_DIR", t / "state"}},
                          std::chrono::seconds(30));
  EXPECT_FALSE(r.timed_out) << "plan blocked on the FIFO";
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("not a regular file (FIFO)"), std::string::npos) << r.err;
}

TEST(HostileFsCli, PlanWithAFifoAsStateConfigFailsPromptly) {
  TempDir t;
  std::string state = t / "state";
  ASSERT_EQ(::mkdir(state.c_str(), 0700), 0);
  ASSERT_EQ(::mkfifo((state + "/config.yaml").c_str(), 0600), 0);
  auto r = test::run_grey({"plan"}, {{"GREY_CONFIG_DIR", state}}, std::chrono::seconds(30));
  EXPECT_FALSE(r.timed_out) << "plan blocked on the FIFO";
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("not a regular file (FIFO)"), std::string::npos) << r.err;
  EXPECT_FALSE(exists(state + "/last_plan.yaml"));
}

TEST(HostileFsCli, PlanRefusesAConfigOthersCanWrite) {
  TempDir t;
  std::string state = t / "state";
  ASSERT_EQ(::mkdir(state.c_str(), 0700), 0);
  test::write_file(state + "/config.yaml", "mode: aggressive\npower_limit_w: 200\n", 0666);
  auto r = test::run_grey({"plan"}, {{"GREY_CONFIG_DIR", state}}, std::chrono::seconds(30));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("writable by other users (mode 0666)"), std::string::npos) << r.err;
  EXPECT_FALSE(exists(state + "/last_plan.yaml"));
}

TEST(HostileFsCli, PlanRefusesAPlantedConfigInAWorldWritableStateDir) {
  TempDir t;
  std::string state = t / "state";
  ASSERT_EQ(::mkdir(state.c_str(), 0700), 0);
  ASSERT_EQ(::chmod(state.c_str(), 0777), 0);
  test::write_file(state + "/config.yaml", "mode: aggressive\npower_limit_w: 200\n", 0644);
  auto r = test::run_grey({"plan"}, {{"GREY_CONFIG_DIR", state}}, std::chrono::seconds(30));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("refusing state directory " + state), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("nothing was written"), std::string::npos) << r.err;
  EXPECT_EQ(mode_of(state), 0777);
  EXPECT_FALSE(exists(state + "/last_plan.yaml"));
}

TEST(HostileFsCli, PlanRefusesAStateDirBelowAWorldWritableParent) {
  TempDir t;
  std::string open = t / "shared";
  ASSERT_EQ(::mkdir(open.c_str(), 0700), 0);
  ASSERT_EQ(::chmod(open.c_str(), 0777), 0);
  auto r =
      test::run_grey({"plan"}, {{"GREY_CONFIG_DIR", open + "/grey"}}, std::chrono::seconds(30));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("its parent " + open + " is writable by other users"), std::string::npos)
      << r.err;
  EXPECT_FALSE(exists(open + "/grey"));
}

TEST(HostileFsCli, RestoreWithAFifoAsJournalFailsPromptly) {
  TempDir t;
  std::string state = t / "state";
  ASSERT_EQ(::mkdir(state.c_str(), 0700), 0);
  ASSERT_EQ(::mkfifo((state + "/journal.jsonl").c_str(), 0600), 0);
  auto r = test::run_grey({"restore"}, {{"GREY_CONFIG_DIR", state}}, std::chrono::seconds(30));
  EXPECT_FALSE(r.timed_out) << "restore blocked on the FIFO";
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("not a regular file (FIFO)"), std::string::npos) << r.err;
}

TEST(HostileFsCli, RestoreRefusesASymlinkedJournalEvenADanglingOne) {
  TempDir t;
  std::string state = t / "state";
  ASSERT_EQ(::mkdir(state.c_str(), 0700), 0);
  // A dangling link was taken for "no journal" (exit 0, nothing to restore).
  ASSERT_EQ(::symlink((t / "gone").c_str(), (state + "/journal.jsonl").c_str()), 0);
  auto r = test::run_grey({"restore"}, {{"GREY_CONFIG_DIR", state}}, std::chrono::seconds(30));
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("symbolic link"), std::string::npos) << r.err;
}

TEST(HostileFsCli, EnvRefusesAPlantedSymlink) {
  TempDir t;
  std::string state = t / "state";
  ASSERT_EQ(::mkdir(state.c_str(), 0700), 0);
  std::string victim = t / "victim";
  test::write_file(victim, "export SECRET=1\n", 0600);
  ASSERT_EQ(::symlink(victim.c_str(), (state + "/env").c_str()), 0);
  auto r = test::run_grey({"env"}, {{"GREY_CONFIG_DIR", state}}, std::chrono::seconds(30));
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.err.find("symbolic link"), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find("SECRET"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace grey
