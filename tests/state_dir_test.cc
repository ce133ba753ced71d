#include "util/state_dir.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string_view>
#include <vector>

#include "detect/spec_store.h"
#include "test_util.h"

namespace grey {
namespace {

using test::TempDir;

int mode_of(const std::string& p) {
  struct stat st;
  EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
  return st.st_mode & 0777;
}

TEST(StateDir, CreatedPrivateAndFilesPrivate) {
  TempDir t;
  std::string d = t / "a/b/state";
  EXPECT_EQ(ensure_state_dir(d), "");
  EXPECT_EQ(mode_of(d), 0700);
  EXPECT_EQ(write_file_atomic(d + "/x.json", "{}"), "");
  EXPECT_EQ(mode_of(d + "/x.json"), 0600);
  EXPECT_EQ(*read_whole_file(d + "/x.json"), "{}");
  // No temp files left behind.
  int n = 0;
  for (auto& e : std::filesystem::directory_iterator(d)) (void)e, ++n;
  EXPECT_EQ(n, 1);
}

// A directory we did not create is never chmod'ed: one that others can write is refused as it
// is (chmod 0700 of a shared 1777 directory as root would remove its sticky bit).
TEST(StateDir, OpenPermissionsAreRefusedNotChanged) {
  TempDir t;
  std::string d = t / "s";
  ASSERT_EQ(::mkdir(d.c_str(), 0777), 0);
  ::chmod(d.c_str(), 0777);
  EXPECT_NE(ensure_state_dir(d).find("writable by other users"), std::string::npos);
  EXPECT_EQ(mode_of(d), 0777);
  EXPECT_TRUE(std::filesystem::is_empty(d));
}

TEST(StateDir, SymlinkIsRefused) {
  TempDir t;
  std::string real = t / "real";
  ASSERT_EQ(::mkdir(real.c_str(), 0700), 0);
  std::string link = t / "link";
  ASSERT_EQ(::symlink(real.c_str(), link.c_str()), 0);
  auto err = ensure_state_dir(link);
  EXPECT_NE(err.find("symbolic link"), std::string::npos) << err;
}

TEST(StateDir, NotADirectory) {
  TempDir t;
  test::write_file(t / "f", "x");
  EXPECT_NE(ensure_state_dir(t / "f").find("not a directory"), std::string::npos);
}

TEST(StateDir, OwnedByAnotherUserIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to chown";
  TempDir t;
  std::string d = t / "other";
  ASSERT_EQ(::mkdir(d.c_str(), 0700), 0);
  ASSERT_EQ(::chown(d.c_str(), 12345, 12345), 0);
  auto err = ensure_state_dir(d);
  EXPECT_NE(err.find("owned by uid 12345"), std::string::npos) << err;
}

TEST(StateDir, DefaultHonoursEnv) {
  ::setenv("GREY_CONFIG_DIR", "/tmp/x-grey", 1);
  EXPECT_EQ(default_state_dir(), "/tmp/x-grey");
  ::unsetenv("GREY_CONFIG_DIR");
  ::setenv("HOME", "/home/someone", 1);
  EXPECT_EQ(default_state_dir(), "/home/someone/.grey_optimizer");
}

TEST(StateDir, AppendLineSynced) {
  TempDir t;
  std::string j = t / "journal.jsonl";
  EXPECT_EQ(append_line_synced(j, "{\"a\":1}"), "");
  EXPECT_EQ(append_line_synced(j, "{\"b\":2}\n"), "");
  EXPECT_EQ(*read_whole_file(j), "{\"a\":1}\n{\"b\":2}\n");
  EXPECT_EQ(mode_of(j), 0600);
  EXPECT_NE(append_line_synced(t / "no/such/dir/j", "x"), "");
}

// Many pieces (more than one writev batch of 256, some empty) land in order, replacing the
// old file atomically, with the mode asked for; no temporary file is left behind.
TEST(StateDir, WriteAtomicFromParts) {
  TempDir t;
  std::string p = t / "parts.csv";
  ASSERT_EQ(write_file_atomic(p, "old\n"), "");
  std::vector<std::string> store;
  std::string expect;
  for (int i = 0; i < 700; ++i) {
    store.push_back(i % 7 == 0 ? std::string() : "row " + std::to_string(i) + "\n");
    expect += store.back();
  }
  std::vector<std::string_view> parts(store.begin(), store.end());
  EXPECT_EQ(write_file_atomic_parts(p, parts, 0600), "");
  EXPECT_EQ(*read_whole_file(p), expect);
  EXPECT_EQ(mode_of(p), 0600);
  EXPECT_EQ(write_file_atomic_parts(p, {}), "");
  EXPECT_EQ(*read_whole_file(p), "");
  size_t entries = 0;
  for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator(t.path())) ++entries;
  EXPECT_EQ(entries, 1u);
  EXPECT_NE(write_file_atomic_parts(t / "nope/x", parts), "");
}

TEST(StateDir, WriteIntoMissingDirFails) {
  TempDir t;
  EXPECT_NE(write_file_atomic(t / "nope/x", "1"), "");
  std::string err;
  EXPECT_FALSE(read_whole_file(t / "nope/x", &err));
  EXPECT_NE(err.find("No such file"), std::string::npos);
}

TEST(SpecStore, RoundTripMissingAndCorrupt) {
  TempDir t;
  std::string d = t / "state";
  auto missing = load_specs(d);
  EXPECT_FALSE(missing.ok);
  EXPECT_TRUE(missing.missing);
  EXPECT_NE(missing.error.find("run `grey-gpu-opt detect` first"), std::string::npos);

  GpuSpec s;
  s.f.vendor = "nvidia";
  s.f.model = "NVIDIA H100 80GB HBM3";
  s.f.bus_id = "0000:1b:00.0";
  s.f.pci_vendor_id = 0x10de;
  s.f.pci_device_id = 0x2330;
  s.f.vram_total_mb = 81559;
  s.f.pcie_gen = 5;
  s.f.pcie_width = 16;
  s.f.thermal.slowdown_c = 90;
  s.detection_sources = {"nvml"};
  ASSERT_EQ(save_specs(d, {s}), "");
  EXPECT_EQ(mode_of(d + "/last_gpu_spec.json"), 0600);
  auto back = load_specs(d);
  ASSERT_TRUE(back.ok) << back.error;
  ASSERT_EQ(back.specs.size(), 1u);
  EXPECT_EQ(back.specs[0].f.model, s.f.model);
  EXPECT_EQ(back.specs[0].pci_id(), "10de:2330");
  EXPECT_EQ(back.specs[0].pci_bandwidth(), "Gen5 x16");
  EXPECT_EQ(back.specs[0].f.thermal.slowdown_c, 90);
  EXPECT_FALSE(back.specs[0].f.cuda_version);

  test::write_file(d + "/last_gpu_spec.json", "[{\"index\": 0, \"model\": ");
  auto bad = load_specs(d);
  EXPECT_FALSE(bad.ok);
  EXPECT_FALSE(bad.missing);
  EXPECT_NE(bad.error.find("corrupt"), std::string::npos) << bad.error;

  test::write_file(d + "/last_gpu_spec.json", "{\"not\": \"an array\"}");
  auto wrong = load_specs(d);
  EXPECT_FALSE(wrong.ok);
  EXPECT_NE(wrong.error.find("not a GPU spec"), std::string::npos) << wrong.error;

  test::write_file(d + "/last_gpu_spec.json", "[{\"vram_total_mb\": \"lots\"}]");
  auto typed = load_specs(d);
  EXPECT_FALSE(typed.ok);
  EXPECT_NE(typed.error.find("vram_total_mb"), std::string::npos) << typed.error;
}

TEST(SpecJson, LegacyOpenGlKeyAndNulls) {
  auto j = nlohmann::json::parse(
      R"({"index": 2, "vendor": "amd", "open_gl_version": "4.6", "pci_bandwidth": "Gen4 x16"})");
  GpuSpec s = spec_from_json(j);
  EXPECT_EQ(s.index, 2);
  EXPECT_EQ(s.f.opengl_version, "4.6");
  EXPECT_EQ(s.f.pcie_gen, 4);
  auto out = spec_to_json(s);
  EXPECT_TRUE(out["vram_total_mb"].is_null());
  EXPECT_TRUE(out["model"].is_null());
  EXPECT_TRUE(out["thermal_limits"]["slowdown_c"].is_null());
  EXPECT_EQ(out["opengl_version"], "4.6");
  EXPECT_THROW(spec_from_json(nlohmann::json::array()), std::runtime_error);
  EXPECT_THROW(specs_from_json(nlohmann::json::object()), std::runtime_error);
}

}  // namespace
}  // namespace grey
