// apply / env / run / restore end to end through the built binary, on a copy of a real AMD
// sysfs capture (writes land in the copy) and on the fake NVML (set-calls recorded).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "cli/apply_cmd.h"
#include "test_util.h"
#include "util/runner.h"

namespace grey {
namespace {

using test::read_file;
using test::TempDir;
using test::write_file;
namespace fs = std::filesystem;

struct Cli {
  TempDir tmp;
  std::string state = tmp / "state";
  std::string sys = tmp / "sys";
  std::map<std::string, std::string> env;
  Cli() {
    fs::create_directories(sys + "/class/drm");
    fs::create_directories(tmp / "bin");
    env = {{"PATH", tmp / "bin"},
           {"GREY_CONFIG_DIR", state},
           {"GREY_SYSFS_ROOT", sys},
           {"GREY_PROC_ROOT", tmp / "proc"},
           {"GREY_NVML_LIBRARY", "/nonexistent/libnvidia-ml.so.1"},
           {"GREY_CUDA_LIBRARY", "/nonexistent/libcuda.so.1"},
           {"GREY_OPENCL_LIBRARY", "/nonexistent/libOpenCL.so.1"}};
  }
  void amd_card() {
    fs::copy(test::fixture_path("sysfs/amd-radeon-rx-vega56-lact/card0"), sys + "/class/drm/card0",
             fs::copy_options::recursive);
  }
  std::string cap_file() const { return sys + "/class/drm/card0/device/hwmon/hwmon4/power1_cap"; }
  void fake_nvml() {
    env["GREY_NVML_LIBRARY"] = std::string(GREY_FAKE_LIB_DIR) + "/fake_nvml.so";
    env["FAKE_NVML_RECORD"] = tmp / "nvml-record.txt";
  }
  CommandResult run(const std::vector<std::string>& args) { return test::run_grey(args, env); }
  void detect_and_plan(const std::string& mode) {
    ASSERT_EQ(run({"detect", "--timeout", "3"}).exit_code, 0);
    auto p = run({"plan", "--mode", mode});
    ASSERT_EQ(p.exit_code, 0) << p.err;
  }
};

// Every file under a directory with its mode and content.
std::map<std::string, std::string> snapshot(const std::string& dir) {
  std::map<std::string, std::string> m;
  if (!fs::exists(dir)) return m;
  for (auto& e : fs::recursive_directory_iterator(dir)) {
    struct stat st;
    ::lstat(e.path().c_str(), &st);
    std::string v = std::to_string(st.st_mode);
    if (e.is_regular_file()) v += ":" + read_file(e.path());
    m[e.path()] = v;
  }
  return m;
}

TEST(CliApply, DryRunChangesNothingAtAll) {
  Cli c;
  c.amd_card();
  c.fake_nvml();
  c.detect_and_plan("aggressive");
  auto before_state = snapshot(c.state), before_sys = snapshot(c.sys);
  auto r = c.run({"apply", "--destructive", "--yes"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("[DRY-RUN]"), std::string::npos);
  EXPECT_NE(r.out.find("power_limit_w"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("nothing was changed"), std::string::npos);
  EXPECT_EQ(snapshot(c.state), before_state);
  EXPECT_EQ(snapshot(c.sys), before_sys);
  EXPECT_FALSE(fs::exists(c.tmp / "nvml-record.txt")) << "a library set-call was made";
  auto j = c.run({"apply", "--json"});
  auto res = nlohmann::json::parse(j.out);
  EXPECT_TRUE(res["dry_run"].get<bool>());
  EXPECT_TRUE(res["metrics"]["dry_run"].get<bool>());
  EXPECT_EQ(res["metrics"]["plan_mode"], "aggressive");
  EXPECT_EQ(snapshot(c.state), before_state);
}

TEST(CliApply, NoDryRunWritesEnvAppliedPlanAndArtifactsFromARealSample) {
  Cli c;
  c.amd_card();
  c.detect_and_plan("safe");
  auto r = c.run({"apply", "--no-dry-run", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  auto res = nlohmann::json::parse(r.out);
  EXPECT_FALSE(res["dry_run"].get<bool>());
  struct stat st;
  for (const char* f : {"env", "last_applied_plan.yaml", "artifacts/thermal_signature.csv",
                        "artifacts/vram_reclamation.json", "artifacts/fairness_heatmap.csv"}) {
    ASSERT_EQ(::stat((c.state + "/" + f).c_str(), &st), 0) << f;
    EXPECT_EQ(st.st_mode & 0777, 0600) << f;
  }
  std::string envf = read_file(c.state + "/env");
  EXPECT_NE(envf.find("export GREY_VRAM_CAP_MB='6132'"), std::string::npos) << envf;  // 75% of 8176
  // The AMD default 85 °C lowered to 2 °C under the card's own 85 °C threshold.
  EXPECT_NE(envf.find("GREY_COOLDOWN_C='83'"), std::string::npos) << envf;
  EXPECT_NE(envf.find("XLA_PYTHON_CLIENT_PREALLOCATE='false'"), std::string::npos);
  std::string thermal = read_file(c.state + "/artifacts/thermal_signature.csv");
  EXPECT_NE(thermal.find(",0,0000:0b:00.0,38,83,72,"), std::string::npos) << thermal;
  EXPECT_NE(read_file(c.state + "/last_applied_plan.yaml").find("applied_at"), std::string::npos);
  // The card's power limit was not touched without --destructive.
  EXPECT_EQ(read_file(c.cap_file()), "260000000\n");

  auto sh = c.run({"env"});
  EXPECT_EQ(sh.exit_code, 0);
  EXPECT_NE(sh.out.find("export GREY_VRAM_CAP_MB='6132'"), std::string::npos);
  auto js = nlohmann::json::parse(c.run({"env", "--shell", "json"}).out);
  EXPECT_EQ(js["GREY_BATCH_SIZE"], "16");
  EXPECT_NE(c.run({"env", "--shell", "fish"}).out.find("set -gx GREY_RESUME_C '72';"),
            std::string::npos);
  EXPECT_EQ(c.run({"env", "--shell", "tcsh"}).exit_code, 2);
}

TEST(CliApply, DestructiveNeedsConsent) {
  Cli c;
  c.amd_card();
  c.detect_and_plan("aggressive");
  auto before = snapshot(c.state);
  auto r = c.run({"apply", "--no-dry-run", "--destructive"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("needs consent"), std::string::npos) << r.err;
  EXPECT_EQ(snapshot(c.state), before);
  EXPECT_EQ(read_file(c.cap_file()), "260000000\n");
}

TEST(CliApply, DestructiveWritesSysfsJournalsAndRestoreUndoesIt) {
  Cli c;
  c.amd_card();
  c.detect_and_plan("aggressive");
  auto r = c.run({"apply", "--no-dry-run", "--destructive", "--yes"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(read_file(c.cap_file()), "234000000");  // 90% of the 260 W default
  std::string journal = read_file(c.state + "/journal.jsonl");
  EXPECT_NE(journal.find("\"op\":\"set\""), std::string::npos) << journal;
  EXPECT_NE(journal.find("power1_cap"), std::string::npos);

  auto dry = c.run({"restore", "--dry-run"});
  EXPECT_EQ(dry.exit_code, 0);
  EXPECT_EQ(read_file(c.cap_file()), "234000000");
  auto undo = c.run({"restore"});
  EXPECT_EQ(undo.exit_code, 0) << undo.err;
  EXPECT_NE(undo.out.find("restored"), std::string::npos) << undo.out;
  EXPECT_EQ(read_file(c.cap_file()), "260000000");
  auto again = c.run({"restore"});
  EXPECT_EQ(again.exit_code, 0);
  EXPECT_EQ(read_file(c.cap_file()), "260000000");
}

TEST(CliApply, RestoreLeavesAValueSomeoneElseChanged) {
  Cli c;
  c.amd_card();
  c.detect_and_plan("aggressive");
  ASSERT_EQ(c.run({"apply", "--no-dry-run", "--destructive", "--yes"}).exit_code, 0);
  write_file(c.cap_file(), "150000000\n");  // an administrator changed it since
  auto r = c.run({"restore"});
  EXPECT_NE(r.out.find("changed_since"), std::string::npos) << r.out;
  EXPECT_EQ(read_file(c.cap_file()), "150000000\n");
}

// A journal line restore cannot read: the readable change is undone, then exit 1 with the line
// named on stderr (with --json too) and in the JSON.
TEST(CliApply, RestoreExitsNonZeroAndNamesAJournalLineItCannotRead) {
  Cli c;
  c.amd_card();
  c.detect_and_plan("aggressive");
  ASSERT_EQ(c.run({"apply", "--no-dry-run", "--destructive", "--yes"}).exit_code, 0);
  const std::string journal = c.state + "/journal.jsonl";
  write_file(journal, read_file(journal) + "{\"op\":\"set\",\"id\":\"r9/gpu0\",\"old\":260}\n",
             0600);
  auto dry = c.run({"restore", "--dry-run", "--json"});
  EXPECT_EQ(dry.exit_code, 1) << dry.out;
  auto dj = nlohmann::json::parse(dry.out);
  EXPECT_FALSE(dj["success"].get<bool>());
  ASSERT_EQ(dj["unreadable"].size(), 1u);
  EXPECT_EQ(dj["unreadable"][0]["line"], 3);
  EXPECT_EQ(dj["unreadable"][0]["text"], "{\"op\":\"set\",\"id\":\"r9/gpu0\",\"old\":260}");
  EXPECT_NE(dry.err.find("error: journal line 3 (set r9/gpu0) has no \"gpu_index\" field"),
            std::string::npos)
      << dry.err;
  EXPECT_EQ(read_file(c.cap_file()), "234000000");

  auto r = c.run({"restore"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("restored: GPU 0 (0000:0b:00.0) power_limit_w"), std::string::npos) << r.out;
  EXPECT_EQ(read_file(c.cap_file()), "260000000") << "the readable entry is still undone";
  EXPECT_EQ(r.out.find("Nothing to restore"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("error: journal line 3"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("0 settings left changed, 1 journal line unreadable"), std::string::npos)
      << r.err;
}

// A setting restore cannot put back: exit 1, naming GPU, bus id, setting and the values.
TEST(CliApply, RestoreExitsNonZeroAndNamesASettingLeftChanged) {
  Cli c;
  c.amd_card();
  c.detect_and_plan("aggressive");
  ASSERT_EQ(c.run({"apply", "--no-dry-run", "--destructive", "--yes"}).exit_code, 0);
  // The cap file is gone (a driver reload, say): it can be neither read nor written.
  fs::remove(c.cap_file());
  fs::create_directory(c.cap_file());
  auto r = c.run({"restore", "--json"});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["left_changed"].size(), 1u) << j.dump(1);
  EXPECT_EQ(j["left_changed"][0]["gpu_index"], 0);
  EXPECT_EQ(j["left_changed"][0]["bus_id"], "0000:0b:00.0");
  EXPECT_EQ(j["left_changed"][0]["setting"], "power_limit_w");
  EXPECT_EQ(j["left_changed"][0]["current"], "unknown");
  EXPECT_EQ(j["left_changed"][0]["should_be"], "260");
  EXPECT_NE(r.err.find("error: GPU 0 (0000:0b:00.0) power_limit_w is left changed: it cannot be "
                       "read now and should be 260 W"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("1 setting left changed, 0 journal lines unreadable"), std::string::npos)
      << r.err;
}

// The next apply after a torn journal tail starts on a fresh line, and restore undoes it.
TEST(CliApply, RestoreUndoesAnApplyMadeAfterATornJournalTail) {
  Cli c;
  c.amd_card();
  c.detect_and_plan("aggressive");
  ASSERT_EQ(c.run({"apply", "--no-dry-run", "--destructive", "--yes"}).exit_code, 0);
  const std::string journal = c.state + "/journal.jsonl";
  write_file(journal, read_file(journal) + "{\"time\":\"2026-11-26T15:00:01Z\",\"op\":\"res", 0600);
  write_file(c.cap_file(), "250000000\n");  // an administrator, later
  ASSERT_EQ(c.run({"apply", "--no-dry-run", "--destructive", "--yes"}).exit_code, 0);
  EXPECT_EQ(read_file(c.cap_file()), "234000000");  // the plan's value again
  auto r = c.run({"restore", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_TRUE(j["unreadable"].empty());
  ASSERT_EQ(j["steps"].size(), 2u) << j.dump(1);
  EXPECT_EQ(j["steps"][0]["status"], "restored");
  EXPECT_EQ(j["steps"][1]["status"], "changed_since");
  EXPECT_EQ(read_file(c.cap_file()), "250000000");
}

TEST(CliApply, FakeNvmlSetCallsOnlyWithConsent) {
  Cli c;
  c.fake_nvml();
  c.detect_and_plan("aggressive");
  ASSERT_EQ(c.run({"apply", "--no-dry-run"}).exit_code, 0);
  EXPECT_FALSE(fs::exists(c.tmp / "nvml-record.txt"));
  auto r = c.run({"apply", "--no-dry-run", "--destructive", "--yes"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  std::string rec = read_file(c.tmp / "nvml-record.txt");
  EXPECT_NE(rec.find("set nvmlDeviceSetPersistenceMode 1 1"), std::string::npos) << rec;
  EXPECT_NE(rec.find("set nvmlDeviceSetPowerManagementLimit 0 630000"), std::string::npos) << rec;
}

TEST(CliApply, DeniedDeviceWriteFailsThatActionAndSaysWhy) {
  Cli c;
  c.fake_nvml();
  c.env["FAKE_NVML_DENY_SETS"] = "1";
  c.detect_and_plan("aggressive");
  auto r = c.run({"apply", "--no-dry-run", "--destructive", "--yes", "--json"});
  EXPECT_EQ(r.exit_code, 1);
  auto res = nlohmann::json::parse(r.out);
  EXPECT_FALSE(res["success"].get<bool>());
  ASSERT_FALSE(res["errors"].empty());
  EXPECT_NE(res["errors"].dump().find("NO_PERMISSION"), std::string::npos) << res.dump(1);
}

TEST(CliApply, RunPassesTheEnvironmentAndPlacement) {
  Cli c;
  c.fake_nvml();
  c.detect_and_plan("safe");
  ASSERT_EQ(c.run({"apply", "--no-dry-run"}).exit_code, 0);
  auto r = c.run({"run", "--gpu", "1", "--", "/usr/bin/env"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("GREY_GPU_INDEX=1\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("CUDA_VISIBLE_DEVICES=GPU-"), std::string::npos);
  EXPECT_NE(r.out.find("GREY_VRAM_CAP_MB=30720\n"), std::string::npos) << r.out;  // 75% of 40960
  auto a = c.run({"run", "--", "/usr/bin/env"});
  EXPECT_NE(a.out.find("GREY_GPU_INDEX="), std::string::npos);
  EXPECT_EQ(c.run({"run", "--gpu", "7", "--", "/usr/bin/env"}).exit_code, 2);
  EXPECT_EQ(c.run({"run", "--gpu", "x", "--", "/usr/bin/env"}).exit_code, 2);
  EXPECT_EQ(c.run({"run"}).exit_code, 2);
  EXPECT_EQ(c.run({"run", "--", "no-such-program-xyz"}).exit_code, 127);
}

TEST(CliApply, BadPlanFilesGiveClearErrors) {
  Cli c;
  EXPECT_NE(c.run({"apply"}).err.find("run `grey-gpu-opt plan` first"), std::string::npos);
  write_file(c.tmp / "trunc.yaml", "schema_version: 1\nmode: safe\ngpus:\n  - index: [");
  auto t = c.run({"apply", "--plan", c.tmp / "trunc.yaml"});
  EXPECT_EQ(t.exit_code, 1);
  EXPECT_NE(t.err.find("error:"), std::string::npos);
  write_file(c.tmp / "types.yaml", "schema_version: 1\nmode: safe\ngpus: \"lots\"\n");
  auto w = c.run({"apply", "--plan", c.tmp / "types.yaml"});
  EXPECT_EQ(w.exit_code, 1);
  EXPECT_NE(w.err.find("is not a valid plan"), std::string::npos) << w.err;
  EXPECT_EQ(c.run({"env"}).exit_code, 1);
  EXPECT_EQ(c.run({"run", "--", "/usr/bin/env"}).exit_code, 1);
  EXPECT_EQ(c.run({"apply", "--dry-run", "--no-dry-run"}).exit_code, 2);
}

// A vendor library that hangs or crashes: apply and restore finish (each NVML call runs in a
// child under --timeout), say why, exit 1 (never a signal), and still handle the AMD card.
struct Misbehaviour {
  const char* var;
  const char* where;
  const char* message;
};
const Misbehaviour kMisbehaviours[] = {
    {"FAKE_NVML_HANG", "init", "NVML did not answer within 1 s (nvmlInit_v2 hung?)"},
    // Device lookup: nvmlDeviceGetHandleByPciBusId_v2 where the library has it, else
    // nvmlDeviceGetCount_v2 and the handles by index.
    {"FAKE_NVML_HANG", "count", "NVML did not answer within 1 s (nvmlDeviceGet"},
    {"FAKE_NVML_CRASH", "init", "NVML control child died with signal 11"},
    {"FAKE_NVML_CRASH", "count", "NVML control child died with signal 11"},
    {"FAKE_NVML_HANG", "set", "(nvmlDeviceSetPowerManagementLimit hung?)"},
    {"FAKE_NVML_CRASH", "set", "died with signal 11 (Segmentation fault) in nvmlDeviceSet"},
};

TEST(CliApply, RestoreFinishesWhenNvmlHangsOrCrashes) {
  for (const auto& m : kMisbehaviours) {
    SCOPED_TRACE(std::string(m.var) + "=" + m.where);
    Cli c;
    c.amd_card();
    c.fake_nvml();
    c.detect_and_plan("aggressive");
    auto a = c.run({"apply", "--no-dry-run", "--destructive", "--yes"});
    ASSERT_EQ(a.exit_code, 0) << a.out << a.err;
    ASSERT_EQ(read_file(c.cap_file()), "234000000");
    c.env[m.var] = m.where;
    auto r = test::run_grey({"--timeout", "1", "restore"}, c.env, std::chrono::seconds(60));
    EXPECT_FALSE(r.timed_out) << "restore hung";
    EXPECT_EQ(r.signal, 0) << "restore crashed";
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    EXPECT_NE(r.err.find(m.message), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("NVML is not used again in this run"), std::string::npos) << r.err;
    // The AMD card is restored all the same; the NVIDIA changes stay journaled for later.
    EXPECT_EQ(read_file(c.cap_file()), "260000000");
    c.env.erase(m.var);
    auto later = c.run({"restore"});
    EXPECT_EQ(later.exit_code, 0) << later.out << later.err;
    std::string rec = read_file(c.tmp / "nvml-record.txt");
    EXPECT_NE(rec.find("set nvmlDeviceSetPowerManagementLimit 0 700000"), std::string::npos) << rec;
  }
}

TEST(CliApply, ApplyFinishesWhenNvmlHangsOrCrashes) {
  for (const auto& m : kMisbehaviours) {
    if (std::string(m.where) == "set") continue;  // covered by the restore above and below
    SCOPED_TRACE(std::string(m.var) + "=" + m.where);
    Cli c;
    c.amd_card();
    c.fake_nvml();
    c.detect_and_plan("aggressive");
    c.env[m.var] = m.where;
    auto r = test::run_grey({"--timeout", "1", "apply", "--no-dry-run", "--destructive", "--yes"},
                            c.env, std::chrono::seconds(60));
    EXPECT_FALSE(r.timed_out) << "apply hung";
    EXPECT_EQ(r.signal, 0) << "apply crashed";
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    EXPECT_NE(r.err.find(m.message), std::string::npos) << r.err;
    EXPECT_EQ(read_file(c.cap_file()), "234000000") << "the AMD card was not handled";
    EXPECT_FALSE(fs::exists(c.tmp / "nvml-record.txt")) << "an NVIDIA setting was changed";
    // The telemetry sample did not load the broken library into apply itself.
    EXPECT_TRUE(fs::exists(c.state + "/artifacts/thermal_signature.csv"));
  }
}

TEST(CliApply, ACrashInASetCallFailsThatDeviceAndTheRestGoOn) {
  Cli c;
  c.amd_card();
  c.fake_nvml();
  c.detect_and_plan("aggressive");
  c.env["FAKE_NVML_CRASH"] = "set";
  auto r = test::run_grey(
      {"--timeout", "1", "apply", "--no-dry-run", "--destructive", "--yes", "--json"}, c.env,
      std::chrono::seconds(60));
  EXPECT_EQ(r.signal, 0);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  auto res = nlohmann::json::parse(r.out);
  EXPECT_NE(res["errors"].dump().find("died with signal 11"), std::string::npos) << res.dump(1);
  EXPECT_EQ(read_file(c.cap_file()), "234000000");
  // Only one child crashed: the other NVIDIA actions were not tried against NVML again.
  EXPECT_NE(res["errors"].dump().find("NVML is not used again in this run"), std::string::npos);
  c.env.erase("FAKE_NVML_CRASH");
  EXPECT_EQ(c.run({"restore"}).exit_code, 0);
  EXPECT_EQ(read_file(c.cap_file()), "260000000");
}

// ---- env: one validated model, strictly read ----

void write_env(Cli& c, const std::string& body) {
  fs::create_directories(c.state);
  fs::permissions(c.state, fs::perms::owner_all);
  write_file(c.state + "/env", body, 0600);
}

TEST(CliApply, EnvRefusesATamperedFileAndPrintsNothing) {
  const char* const bad[] = {
      "export X;touch pwned;Y='1'\n",  // the line: a name that is not one
      "export A='1';touch pwned\n",    // text after the closing quote
      "export A='1' B='2'\n",          // two assignments on one line
      "export A='1\n",                 // unterminated quote (a truncated file)
      "export A=\n",                   // no quoted value
      "export A=1\n",                  // unquoted
      "export 1A='1'\n",               // a name may not start with a digit
      "export A='1'\nexport A='2'\n",  // twice
      "X='1'\n",                       // no export
      " export A='1'\n",               // leading blank
      "export A='1'\r\n",              // CR
      "export A='\x01'$(id)\n",        // command substitution after the value
  };
  for (const char* body : bad) {
    Cli c;
    write_env(c, std::string("# grey-gpu-opt apply\nexport GREY_OK='1'\n") + body);
    for (const char* shell : {"sh", "fish", "json"}) {
      auto r = c.run({"env", "--shell", shell});
      EXPECT_EQ(r.exit_code, 2) << body;
      EXPECT_EQ(r.out, "") << body;
      EXPECT_NE(r.err.find("error: " + c.state + "/env:"), std::string::npos) << body << r.err;
    }
  }
  // The exact line of the issue names the bad name.
  Cli c;
  write_env(c, "export X;touch pwned;Y='1'\n");
  auto r = c.run({"env"});
  EXPECT_NE(r.err.find(c.state + "/env:1: \"X;touch pwned;Y\" is not a variable name"),
            std::string::npos)
      << r.err;
  write_env(c, "# c\nexport A='1'\nexport B='multi\nline'\nexport C='x\n");
  EXPECT_NE(c.run({"env"}).err.find("/env:5: the value of C (from line 5) has no closing quote"),
            std::string::npos);
  write_env(c, "export B='multi\nline';touch pwned\n");
  EXPECT_NE(c.run({"env"}).err.find("/env:2: after the value of B comes \";touch pwned\""),
            std::string::npos);
  // A NUL in the file: refused too (the NUL case above is cut at the NUL by c_str()).
  write_env(c, std::string("export A='x\0y'\n", 15));
  EXPECT_EQ(c.run({"env"}).exit_code, 2);
  EXPECT_EQ(c.run({"env"}).out, "");
}

// What `eval "$(grey-gpu-opt env)"` gives, through the real /bin/sh (argv exec, the env output
// passed as an argument).
std::string eval_in_sh(const std::string& script, const std::string& var) {
  PosixRunner runner;
  RunOptions o;
  auto r =
      runner.run({"/bin/sh", "-c", "eval \"$1\" && printf %s \"$" + var + "\"", "sh", script}, o);
  EXPECT_TRUE(r.ok()) << r.err;
  return r.out;
}

TEST(CliApply, EnvValuesArriveByteForByteThroughShEval) {
  const std::string values[] = {
      "it's \"quoted\" $HOME ${PATH} `id` $(touch pwned) \\ back\\slash",
      "line one\nline two\n\nend with newline\n",
      "'",
      "''",
      "'\\''",
      "",
      "; touch pwned; '",
      "\t tab and µ°C \xff bytes",
  };
  for (const auto& v : values) {
    Cli c;
    write_env(c, "# header\nexport GREY_ODD=" + sh_single_quote(v) + "\nexport GREY_B='b'\n");
    auto r = c.run({"env"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(eval_in_sh(r.out, "GREY_ODD"), v);
    EXPECT_EQ(eval_in_sh(r.out, "GREY_B"), "b");
    EXPECT_FALSE(fs::exists("pwned"));
    // The same bytes through the library's reader, and JSON carries them too.
    auto f = parse_env_file(read_file(c.state + "/env"), "env");
    ASSERT_TRUE(f.ok) << f.error;
    EXPECT_EQ(f.vars.at("GREY_ODD"), v);
    auto j = nlohmann::json::parse(c.run({"env", "--shell", "json"}).out);
    if (v.find('\xff') == std::string::npos) {
      EXPECT_EQ(j["GREY_ODD"], v);
    }
  }
}

TEST(CliApply, EnvQuotingForShFishAndJson) {
  EXPECT_EQ(sh_single_quote("a'b"), "'a'\\''b'");
  EXPECT_EQ(sh_single_quote(""), "''");
  // fish: inside single quotes \' and \\ are the escapes.
  EXPECT_EQ(fish_single_quote("a'b\\c$d"), "'a\\'b\\\\c$d'");
  std::map<std::string, std::string> env{{"A", "x'y"}, {"B_2", "1"}};
  EXPECT_EQ(render_env(env, "sh"), "export A='x'\\''y'\nexport B_2='1'\n");
  EXPECT_EQ(render_env(env, "fish"), "set -gx A 'x\\'y';\nset -gx B_2 '1';\n");
  EXPECT_EQ(nlohmann::json::parse(render_env(env, "json")), nlohmann::json(env));
  // Only valid names are ever printed.
  std::map<std::string, std::string> bad{
      {"X;touch pwned;Y", "1"}, {"1A", "1"}, {"", "1"}, {"OK", "1"}, {"N", std::string("a\0b", 3)}};
  EXPECT_EQ(render_env(bad, "sh"), "export OK='1'\n");
  EXPECT_FALSE(check_environment(bad).empty());
  EXPECT_TRUE(check_environment(env).empty());
  EXPECT_TRUE(is_env_name("_a1"));
  EXPECT_FALSE(is_env_name("a-b"));
  EXPECT_FALSE(is_env_name("\xc3\xa9"));
  // The writer's output is what the strict reader accepts.
  auto f = parse_env_file("# c\n\n" + render_env(env, "sh"), "e");
  ASSERT_TRUE(f.ok) << f.error;
  EXPECT_EQ(f.vars, env);
}

// ---- apply --plan FILE: the checks a config gets ----

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  size_t n = 0;
  for (size_t i = s.find(from); i != std::string::npos; i = s.find(from, i + to.size()), ++n)
    s.replace(i, from.size(), to);
  EXPECT_GT(n, 0u) << from;
  return s;
}

TEST(CliApply, PlanFileOutOfRangeIsRefusedWithExit2AndNothingWritten) {
  Cli c;
  c.amd_card();
  c.detect_and_plan("safe");
  const std::string plan = read_file(c.state + "/last_plan.yaml");
  struct Case {
    std::string from, to, expect;
  };
  const Case cases[] = {
      {"per_process_vram_cap_mb: 6132", "per_process_vram_cap_mb: -5",
       "gpus[0].per_process_vram_cap_mb = -5 is not allowed; allowed: 1 to 8176 (MiB)"},
      {"per_process_vram_cap_mb: 6132", "per_process_vram_cap_mb: 9223372036854775807",
       "per_process_vram_cap_mb = 9223372036854775807 is not allowed"},
      {"cooldown_threshold_c: 83", "cooldown_threshold_c: 500",
       "cooldown_threshold_c = 500 is not allowed; allowed: 30 to 83 (°C)"},
      {"index: 0", "index: 999",
       "gpus[0].index = 999 is not allowed; allowed: a GPU of the saved specs (index 0)"},
      {"power_limit_w: null", "power_limit_w: 1e308",
       "power_limit_w = 1e+308 is not allowed; allowed: more than 0 and at most 390 (W), the "
       "maximum GPU 0 reports"},
      {"recommended_batch_size: 16", "recommended_batch_size: 0", "recommended_batch_size = 0"},
  };
  for (const auto& k : cases) {
    std::string path = c.tmp / "tampered.yaml";
    write_file(path, replace_all(plan, k.from, k.to));
    auto before = snapshot(c.state);
    for (std::vector<std::string> args :
         {std::vector<std::string>{"apply", "--plan", path, "--no-dry-run"},
          {"apply", "--plan", path, "--no-dry-run", "--destructive", "--yes"},
          {"apply", "--plan", path}}) {
      auto r = c.run(args);
      EXPECT_EQ(r.exit_code, 2) << k.to << r.out << r.err;
      EXPECT_NE(r.err.find("error: " + path + ": gpus[0]."), std::string::npos) << r.err;
      EXPECT_NE(r.err.find(k.expect), std::string::npos) << r.err;
      EXPECT_NE(r.err.find("nothing was written or changed"), std::string::npos) << r.err;
      EXPECT_EQ(r.err.find("-9223372036854776"), std::string::npos) << r.err;
      EXPECT_EQ(r.out, "");
    }
    EXPECT_EQ(snapshot(c.state), before) << k.to;
    for (const char* f : {"env", "last_applied_plan.yaml", "journal.jsonl"})
      EXPECT_FALSE(fs::exists(c.state + "/" + f)) << f;
    EXPECT_EQ(read_file(c.cap_file()), "260000000\n");
  }
  // A deadline no millisecond count holds is refused before it is converted.
  auto t = c.run({"--timeout", "1e308", "apply", "--no-dry-run"});
  EXPECT_EQ(t.exit_code, 2);
  EXPECT_NE(t.err.find("--timeout must be a number of seconds in (0, 600], got 1e+308"),
            std::string::npos)
      << t.err;
  EXPECT_FALSE(fs::exists(c.state + "/env"));
  // The plan as the planner wrote it still applies.
  auto ok = c.run({"apply", "--plan", c.state + "/last_plan.yaml", "--no-dry-run"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(read_file(c.state + "/env").find("CUPY_GPU_MEMORY_LIMIT='6429868032'"),
            std::string::npos);
}

}  // namespace
}  // namespace grey
