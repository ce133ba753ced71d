// DRM fdinfo parsing (real-format samples in tests/fixtures/fdinfo, one hand-written i915
// sample) and the /proc scanner on a fake /proc tree.
#include <gtest/gtest.h>
#include <pwd.h>
#include <unistd.h>

#include <filesystem>
#include <random>

#include "telemetry/telemetry.h"
#include "test_util.h"
#include "util/host_fs.h"

namespace grey {
namespace {

namespace fs = std::filesystem;
using test::TempDir;
using test::write_file;

TEST(FdinfoParse, AmdgpuDrmMemoryFormat) {
  auto d = parse_drm_fdinfo(test::read_fixture("fdinfo/amdgpu-drm-memory-amdgpu_top-issue87.txt"));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->driver, "amdgpu");
  EXPECT_EQ(d->pdev, "0000:08:00.0");
  EXPECT_EQ(d->client_id, 217u);
  EXPECT_EQ(d->vram_bytes, 2068u * 1024);  // drm-memory-vram; gtt and cpu are not VRAM
  ASSERT_EQ(d->engine_ns.size(), 1u);
  EXPECT_EQ(d->engine_ns.at("gfx"), 107322799u);
  EXPECT_FALSE(d->legacy_amdgpu);
  EXPECT_TRUE(d->cycles.empty());
}

TEST(FdinfoParse, AmdgpuLegacyFormat) {
  auto d =
      parse_drm_fdinfo(test::read_fixture("fdinfo/amdgpu-legacy-pre-5.19-amdgpu_top-issue17.txt"));
  ASSERT_TRUE(d);
  EXPECT_TRUE(d->legacy_amdgpu);
  EXPECT_EQ(d->driver, "amdgpu");
  EXPECT_EQ(d->pdev, "0000:04:00.0");
  EXPECT_EQ(d->client_id, 32774u);  // the pasid
  EXPECT_EQ(d->vram_bytes, 17196u * 1024);
  ASSERT_TRUE(d->legacy_busy_pct);
  EXPECT_DOUBLE_EQ(*d->legacy_busy_pct, 70.59);
}

TEST(FdinfoParse, XeKernelDocExample) {
  auto d = parse_drm_fdinfo(test::read_fixture("fdinfo/xe-kernel-doc-example.txt"));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->driver, "xe");
  EXPECT_EQ(d->pdev, "0000:03:00.0");
  EXPECT_EQ(d->client_id, 3u);
  EXPECT_EQ(d->vram_bytes, 23992u * 1024);  // resident vram0, not shared (16 MiB) or gtt
  EXPECT_EQ(d->cycles.at("rcs"), 28257900u);
  EXPECT_EQ(d->total_cycles.at("rcs"), 7655183225u);
  EXPECT_EQ(d->cycles.size(), 5u);
  EXPECT_EQ(d->capacity.at("ccs"), 4u);
  EXPECT_EQ(d->capacity.at("vcs"), 2u);
  EXPECT_EQ(d->capacity.count("rcs"), 0u);
  EXPECT_TRUE(d->engine_ns.empty());
}

TEST(FdinfoParse, I915Handmade) {
  auto d = parse_drm_fdinfo(test::read_fixture("handmade/fdinfo-i915-dg2-handmade.txt"));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->driver, "i915");
  EXPECT_EQ(d->pdev, "0000:03:00.0");
  EXPECT_EQ(d->client_id, 58u);
  EXPECT_EQ(d->vram_bytes, 384ull << 20);  // resident local0 only
  EXPECT_EQ(d->engine_ns.at("render"), 25662044495u);
  EXPECT_EQ(d->engine_ns.at("video"), 1500000000u);
  EXPECT_EQ(d->engine_ns.size(), 5u);
  EXPECT_EQ(d->capacity.at("video"), 2u);
}

TEST(FdinfoParse, NotDrm) {
  EXPECT_FALSE(parse_drm_fdinfo(""));
  EXPECT_FALSE(parse_drm_fdinfo("pos:\t0\nflags:\t02\nmnt_id:\t10\nino:\t1581151\nscm_fds: 0\n"));
  EXPECT_FALSE(parse_drm_fdinfo("pdev: 0000:01:00.0\n"));  // legacy needs "vram mem"
  EXPECT_FALSE(parse_drm_fdinfo(std::string("\0drm-driver: amdgpu\n", 20)));
}

TEST(FdinfoParse, SizesAndBadValues) {
  EXPECT_EQ(parse_fdinfo_size("12"), 12u);
  EXPECT_EQ(parse_fdinfo_size(" 3 KiB"), 3072u);
  EXPECT_EQ(parse_fdinfo_size("2 MiB"), 2u << 20);
  EXPECT_EQ(parse_fdinfo_size("1 GiB"), 1u << 30);
  EXPECT_EQ(parse_fdinfo_size("5 kB"), 5120u);
  EXPECT_FALSE(parse_fdinfo_size("5 TB"));
  EXPECT_FALSE(parse_fdinfo_size("-5"));
  EXPECT_FALSE(parse_fdinfo_size("KiB"));
  EXPECT_FALSE(parse_fdinfo_size("99999999999999999999999 KiB"));
  EXPECT_FALSE(parse_fdinfo_size("18014398509481984 GiB"));  // overflows 64 bits
  auto d = parse_drm_fdinfo(
      "drm-driver:\tamdgpu\ndrm-client-id:\tnope\ndrm-pdev:\tgarbage\n"
      "drm-engine-gfx:\t12 ms\ndrm-engine-capacity-gfx:\t0\ndrm-memory-vram:\t1 TB\n");
  ASSERT_TRUE(d);
  EXPECT_FALSE(d->client_id);
  EXPECT_FALSE(d->pdev);
  EXPECT_TRUE(d->engine_ns.empty());  // "ms" is not the specified unit
  EXPECT_TRUE(d->capacity.empty());   // zero capacity is not allowed
  EXPECT_FALSE(d->vram_bytes);
}

TEST(FdinfoParse, ResidentPreferredAndRegionsSummed) {
  auto d = parse_drm_fdinfo(
      "drm-driver: xe\ndrm-total-vram0: 100 MiB\ndrm-resident-vram0: 60 MiB\n"
      "drm-total-vram1: 10 MiB\ndrm-resident-system: 900 MiB\n");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->vram_bytes, 70ull << 20);  // 60 resident of vram0 + 10 total of vram1
}

TEST(FdinfoParse, Truncation) {
  for (const char* f :
       {"fdinfo/amdgpu-drm-memory-amdgpu_top-issue87.txt", "fdinfo/xe-kernel-doc-example.txt",
        "fdinfo/amdgpu-legacy-pre-5.19-amdgpu_top-issue17.txt",
        "handmade/fdinfo-i915-dg2-handmade.txt"}) {
    std::string t = test::read_fixture(f);
    for (size_t cut = 0; cut <= t.size(); cut += 7) {
      auto d = parse_drm_fdinfo(std::string_view(t).substr(0, cut));
      if (d) {
        EXPECT_FALSE(d->driver.empty());
        if (d->vram_bytes) {
          EXPECT_LE(*d->vram_bytes, 1ull << 40) << f << " cut " << cut;
        }
      }
    }
  }
  std::mt19937 rng(7);
  std::string junk(1 << 16, '\0');
  for (auto& c : junk) c = static_cast<char>(rng());
  (void)parse_drm_fdinfo(junk);
  (void)parse_drm_fdinfo("drm-driver: amdgpu\n" + junk);
}

TEST(FdinfoBusy, EnginesCyclesCapacityAndBackwards) {
  DrmFdinfo a, b;
  a.engine_ns = {{"gfx", 1000}, {"dec", 0}};
  b.engine_ns = {{"gfx", 1000 + 250'000'000}, {"dec", 400'000'000}};
  b.capacity = {{"dec", 2}};
  // gfx 25%, dec 400 ms over 2 instances in 1 s = 20%: the busiest engine.
  EXPECT_DOUBLE_EQ(drm_busy_pct(a, b, 1'000'000'000).value(), 25.0);
  // Backwards counter: 0, not a huge wrap-around.
  DrmFdinfo c;
  c.engine_ns = {{"gfx", 10}};
  EXPECT_DOUBLE_EQ(drm_busy_pct(b, c, 1'000'000'000).value(), 0.0);
  // xe cycles: 28257900 -> +1000 of +4000 total cycles on rcs = 25%.
  auto x0 = parse_drm_fdinfo(test::read_fixture("fdinfo/xe-kernel-doc-example.txt"));
  ASSERT_TRUE(x0);
  DrmFdinfo x1 = *x0;
  x1.cycles["rcs"] += 1000;
  for (auto& [e, t] : x1.total_cycles) t += 4000;
  x1.cycles["ccs"] += 8000;  // 4 instances: 8000 / (4000 * 4) = 50%
  EXPECT_DOUBLE_EQ(drm_busy_pct(*x0, x1, 0).value(), 50.0);
  // Nothing in common.
  DrmFdinfo e;
  EXPECT_FALSE(drm_busy_pct(e, e, 1'000'000'000));
  // Capped at 100.
  DrmFdinfo f0, f1;
  f0.engine_ns = {{"gfx", 0}};
  f1.engine_ns = {{"gfx", 5'000'000'000}};
  EXPECT_DOUBLE_EQ(drm_busy_pct(f0, f1, 1'000'000'000).value(), 100.0);
}

// A fake /proc with three processes:
//   100 (comm "glxgears", uid 0): fds 5 and 6 share amdgpu client 217 on 0000:08:00.0; fd 3
//       is a plain file; fd 9 carries DRM text but links to a plain file (must be skipped).
//   200 (comm "python3", uid 4000000): xe client 3 on 0000:03:00.0 and amdgpu client 218.
//   300: holds amdgpu client 217 too (an fd passed over a socket): counted for pid 100 only.
struct FakeProc {
  TempDir dir;
  std::string proc() const { return dir / "proc"; }
  void fd(int pid, int n, const std::string& target, const std::string& info) {
    std::string base = proc() + "/" + std::to_string(pid);
    fs::create_directories(base + "/fd");
    write_file(base + "/fdinfo/" + std::to_string(n), info);
    fs::create_symlink(target, base + "/fd/" + std::to_string(n));
  }
  void ident(int pid, const std::string& comm, unsigned uid) {
    std::string base = proc() + "/" + std::to_string(pid);
    write_file(base + "/comm", comm + "\n");
    write_file(base + "/status", "Name:\t" + comm + "\nUmask:\t0022\nState:\tS (sleeping)\nUid:\t" +
                                     std::to_string(uid) + "\t" + std::to_string(uid) + "\t0\t0\n");
  }
  static std::string amd(int client, uint64_t gfx_ns, const char* vram) {
    return "pos:\t0\nflags:\t02104002\nmnt_id:\t24\nino:\t614\ndrm-driver:\tamdgpu\n"
           "drm-pdev:\t0000:08:00.0\ndrm-client-id:\t" +
           std::to_string(client) + "\ndrm-memory-vram:\t" + vram +
           "\ndrm-memory-gtt:\t8192 KiB\ndrm-engine-gfx:\t" + std::to_string(gfx_ns) + " ns\n";
  }
  std::string xe(uint64_t rcs, uint64_t total) {
    std::string t = test::read_fixture("fdinfo/xe-kernel-doc-example.txt");
    auto rep = [&](const std::string& from, const std::string& to) {
      t.replace(t.find(from), from.size(), to);
    };
    rep("drm-cycles-rcs: 28257900", "drm-cycles-rcs: " + std::to_string(rcs));
    rep("drm-total-cycles-rcs:   7655183225", "drm-total-cycles-rcs: " + std::to_string(total));
    return t;
  }
  void build(uint64_t gfx217, uint64_t gfx218, uint64_t rcs, uint64_t rcs_total) {
    fs::remove_all(proc());
    fs::create_directories(proc() + "/sys");  // not a pid
    write_file(proc() + "/uptime", "1.0 1.0\n");
    ident(100, "glxgears", 0);
    fd(100, 3, "/home/user/notes.txt", "pos:\t0\nflags:\t0100002\nmnt_id:\t26\nino:\t1\n");
    fd(100, 5, "/dev/dri/renderD128", amd(217, gfx217, "2068 KiB"));
    fd(100, 6, "/dev/dri/renderD128", amd(217, gfx217, "2068 KiB"));
    fd(100, 9, "/tmp/looks-like-drm.txt", amd(999, 1, "512 MiB"));
    ident(200, "python3", 4000000);
    fd(200, 7, "/dev/dri/renderD129", xe(rcs, rcs_total));
    fd(200, 8, "/dev/dri/renderD128", amd(218, gfx218, "1024 MiB"));
    ident(300, "receiver", 0);
    fd(300, 4, "/dev/dri/renderD128", amd(217, gfx217, "2068 KiB"));
  }
};

const ProcessSample* find(const std::vector<ProcessSample>& v, int pid, const std::string& bus) {
  for (const auto& p : v)
    if (p.pid == pid && p.gpu_bus_id == bus) return &p;
  return nullptr;
}

TEST(FdinfoScan, TwoProcessesSharedClientsAndUtilization) {
  FakeProc fp;
  fp.build(1'000'000'000, 0, 28257900, 7655183225);
  auto rfs = std::make_shared<RootedFs>(fp.dir / "sys", fp.proc());
  FdinfoScanner scanner(rfs);
  std::vector<std::string> notes;
  auto first = scanner.scan(10'000'000'000, notes);
  ASSERT_EQ(first.size(), 3u);  // (100, 08:00.0), (200, 03:00.0), (200, 08:00.0)
  const ProcessSample* p100 = find(first, 100, "0000:08:00.0");
  ASSERT_TRUE(p100);
  EXPECT_EQ(p100->command, "glxgears");
  EXPECT_EQ(p100->user, "root");
  EXPECT_EQ(p100->vram_mb, 2);          // 2068 KiB once, although two fds (and pid 300) hold it
  EXPECT_FALSE(p100->utilization_pct);  // one reading: no rate yet
  EXPECT_EQ(p100->backend, "fdinfo");
  EXPECT_FALSE(p100->gpu_index);  // the collector fills it
  const ProcessSample* p200x = find(first, 200, "0000:03:00.0");
  ASSERT_TRUE(p200x);
  EXPECT_EQ(p200x->command, "python3");
  EXPECT_EQ(p200x->vram_mb, 23);  // 23992 KiB
  const ProcessSample* p200a = find(first, 200, "0000:08:00.0");
  ASSERT_TRUE(p200a);
  EXPECT_EQ(p200a->vram_mb, 1024);
  EXPECT_FALSE(find(first, 300, "0000:08:00.0"));  // the shared client is pid 100's
  // uid 4000000 has no name on this machine: the number.
  if (!getpwuid(4000000)) {
    EXPECT_EQ(p200x->user, "4000000");
  }

  // One second later: client 217 busy 500 ms (50%), client 218 busy 250 ms (25%), xe rcs
  // 1000 of 10000 cycles (10%).
  fp.build(1'500'000'000, 250'000'000, 28257900 + 1000, 7655183225 + 10000);
  auto second = scanner.scan(11'000'000'000, notes);
  ASSERT_EQ(second.size(), 3u);
  p100 = find(second, 100, "0000:08:00.0");
  ASSERT_TRUE(p100 && p100->utilization_pct);
  EXPECT_NEAR(*p100->utilization_pct, 50.0, 1e-9);
  p200a = find(second, 200, "0000:08:00.0");
  ASSERT_TRUE(p200a && p200a->utilization_pct);
  EXPECT_NEAR(*p200a->utilization_pct, 25.0, 1e-9);
  p200x = find(second, 200, "0000:03:00.0");
  ASSERT_TRUE(p200x && p200x->utilization_pct);
  EXPECT_NEAR(*p200x->utilization_pct, 10.0, 1e-9);
  EXPECT_TRUE(notes.empty());
}

TEST(FdinfoScan, NoProcIsEmpty) {
  TempDir t;
  auto rfs = std::make_shared<RootedFs>(t / "sys", t / "proc");
  FdinfoScanner scanner(rfs);
  std::vector<std::string> notes;
  EXPECT_TRUE(scanner.scan(1, notes).empty());
  EXPECT_EQ(process_command(*rfs, 1), "");
  EXPECT_EQ(process_user(*rfs, 1), "");
}

TEST(FdinfoScan, LegacyFormatGivesBusyDirectly) {
  TempDir t;
  std::string base = t / "proc/4728";
  write_file(base + "/fdinfo/7",
             test::read_fixture("fdinfo/amdgpu-legacy-pre-5.19-amdgpu_top-issue17.txt"));
  write_file(base + "/comm", "sunshine\n");
  auto rfs = std::make_shared<RootedFs>(t / "sys", t / "proc");
  FdinfoScanner scanner(rfs);
  std::vector<std::string> notes;
  auto v = scanner.scan(1, notes);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].pid, 4728);
  EXPECT_EQ(v[0].command, "sunshine");
  EXPECT_EQ(v[0].user, "");  // no status file
  EXPECT_EQ(v[0].gpu_bus_id, "0000:04:00.0");
  EXPECT_EQ(v[0].vram_mb, 16);  // 17196 KiB
  EXPECT_NEAR(v[0].utilization_pct.value_or(-1), 70.59, 1e-9);
}

TEST(FdinfoScan, RealProcSelfDoesNotCrash) {
  // The live /proc: whatever it holds, the scan ends and every sample is well formed.
  auto rfs = std::make_shared<RootedFs>();
  FdinfoScanner scanner(rfs);
  std::vector<std::string> notes;
  for (const auto& p : scanner.scan(1, notes)) {
    EXPECT_GT(p.pid, 0);
    EXPECT_EQ(p.backend, "fdinfo");
  }
  EXPECT_EQ(process_command(*rfs, static_cast<int>(getpid())).empty(), false);
}

}  // namespace
}  // namespace grey
