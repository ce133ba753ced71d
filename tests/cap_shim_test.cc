// The VRAM cap shim (shim/): unit tests of its accounting (shim/cap_accounting.cc is compiled
// into this test) and integration tests that run the programs of tests/shim/ under
// LD_PRELOAD=libgrey_cap.so over the fake driver (tests/fakes/fake_cuda.c built as libcuda.so.1).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cap_accounting.h"
#include "test_util.h"

#ifndef GREY_CAP_SHIM
#error "GREY_CAP_SHIM must name libgrey_cap.so"
#endif
#ifndef GREY_SHIM_TEST_DIR
#error "GREY_SHIM_TEST_DIR must name the directory of the shim test programs"
#endif

namespace grey::cap {
namespace {

constexpr uint64_t MiB = 1ull << 20;

// ---------------------------------------------------------------------------------------------
// Cap spec parsing

TEST(CapSpecTest, OneValueForEveryDevice) {
  CapSpec s;
  ASSERT_TRUE(parse_cap_spec("20000", &s));
  EXPECT_TRUE(s.any);
  EXPECT_EQ(s.bytes[0], 20000 * MiB);
  EXPECT_EQ(s.bytes[1], 20000 * MiB);
  EXPECT_EQ(s.bytes[kMaxDevices - 1], 20000 * MiB);
}

TEST(CapSpecTest, PerDevice) {
  CapSpec s;
  ASSERT_TRUE(parse_cap_spec("0=20000,1=30000", &s));
  EXPECT_TRUE(s.any);
  EXPECT_EQ(s.bytes[0], 20000 * MiB);
  EXPECT_EQ(s.bytes[1], 30000 * MiB);
  EXPECT_EQ(s.bytes[2], kNoCap);
  ASSERT_TRUE(parse_cap_spec(" 3 = 100 , 63=7 ", &s));
  EXPECT_EQ(s.bytes[0], kNoCap);
  EXPECT_EQ(s.bytes[3], 100 * MiB);
  EXPECT_EQ(s.bytes[63], 7 * MiB);
}

TEST(CapSpecTest, EmptyIsNoCap) {
  CapSpec s;
  ASSERT_TRUE(parse_cap_spec("", &s));
  EXPECT_FALSE(s.any);
  ASSERT_TRUE(parse_cap_spec("  \t", &s));
  EXPECT_FALSE(s.any);
  EXPECT_EQ(s.bytes[0], kNoCap);
}

TEST(CapSpecTest, InvalidTextMeansNoCap) {
  for (const char* bad : {"abc",
                          "-5",
                          "+5",
                          "0",
                          "0=0",
                          "20000MB",
                          "1.5",
                          "1=",
                          "=5",
                          "0=1,0=2",
                          "64=100",
                          "0=100,",
                          ",",
                          "0=100,,1=2",
                          "20000,1=5",
                          "0=100;1=200",
                          "99999999999999999999",
                          "17592186044416",
                          "x=1",
                          "0=1 2"}) {
    CapSpec s;
    s.bytes[0] = 1;
    EXPECT_FALSE(parse_cap_spec(bad, &s)) << bad;
    EXPECT_FALSE(s.any) << bad;
    EXPECT_EQ(s.bytes[0], kNoCap) << bad;
  }
}

TEST(CapSpecTest, LargestValue) {
  CapSpec s;
  ASSERT_TRUE(parse_cap_spec("17592186044415", &s));  // (2^64 - 1) >> 20
  EXPECT_EQ(s.bytes[5], 17592186044415ull << 20);
}

// ---------------------------------------------------------------------------------------------
// Reservations and tracking

CapSpec caps(const char* text) {
  CapSpec s;
  EXPECT_TRUE(parse_cap_spec(text, &s)) << text;
  return s;
}

TEST(CapAccountingTest, ReservesUpToTheCapExactly) {
  CapAccounting a;
  a.set_caps(caps("0=100"));
  EXPECT_TRUE(a.any_cap());
  EXPECT_TRUE(a.has_cap(0));
  EXPECT_FALSE(a.has_cap(1));
  EXPECT_EQ(a.cap(0), 100 * MiB);
  auto r1 = a.reserve(0, 60 * MiB);
  ASSERT_TRUE(r1);
  uint64_t seen = 0;
  auto r2 = a.reserve(0, 50 * MiB, &seen);
  EXPECT_FALSE(r2);
  EXPECT_EQ(seen, 60 * MiB);
  auto r3 = a.reserve(0, 40 * MiB);
  ASSERT_TRUE(r3);
  EXPECT_EQ(a.used(0), 100 * MiB);
  EXPECT_FALSE(a.reserve(0, 1));
  EXPECT_TRUE(a.reserve(0, 0));
  r3.cancel();
  EXPECT_EQ(a.used(0), 60 * MiB);
}

TEST(CapAccountingTest, ReservationGivesBackUnlessCommitted) {
  CapAccounting a;
  a.set_caps(caps("100"));
  {
    auto r = a.reserve(0, 30 * MiB);
    ASSERT_TRUE(r);
    EXPECT_EQ(a.used(0), 30 * MiB);
  }
  EXPECT_EQ(a.used(0), 0u);
  {
    auto r = a.reserve(0, 30 * MiB);
    a.track(AllocKind::ptr, 0x1000, r);
  }
  EXPECT_EQ(a.used(0), 30 * MiB);
  EXPECT_EQ(a.tracked(), 1u);
  CapAccounting::Entry e;
  ASSERT_TRUE(a.take(AllocKind::ptr, 0x1000, &e));
  EXPECT_EQ(e.dev, 0);
  EXPECT_EQ(e.bytes, 30 * MiB);
  EXPECT_EQ(a.used(0), 30 * MiB);  // until the driver agreed to the free
  a.release(e.dev, e.bytes);
  EXPECT_EQ(a.used(0), 0u);
  EXPECT_FALSE(a.take(AllocKind::ptr, 0x1000, &e));
  EXPECT_EQ(a.tracked(), 0u);
}

TEST(CapAccountingTest, KindsAreSeparateAndStaleEntriesAreGivenBack) {
  CapAccounting a;
  a.set_caps(caps("100"));
  auto r1 = a.reserve(0, 10 * MiB);
  a.track(AllocKind::ptr, 42, r1);
  auto r2 = a.reserve(1, 20 * MiB);
  a.track(AllocKind::handle, 42, r2);
  EXPECT_EQ(a.tracked(), 2u);
  // The same address again (its free was never seen): the old bytes go back.
  auto r3 = a.reserve(0, 5 * MiB);
  a.track(AllocKind::ptr, 42, r3);
  EXPECT_EQ(a.used(0), 5 * MiB);
  EXPECT_EQ(a.used(1), 20 * MiB);
  CapAccounting::Entry e;
  ASSERT_TRUE(a.take(AllocKind::handle, 42, &e));
  EXPECT_EQ(e.dev, 1);
  a.put_back(AllocKind::handle, 42, e);  // the driver refused the free
  EXPECT_EQ(a.tracked(), 2u);
}

TEST(CapAccountingTest, ResizeGrowsWithinTheCapAndShrinks) {
  CapAccounting a;
  a.set_caps(caps("10"));
  auto r = a.reserve(0, 6 * MiB);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r.resize(8 * MiB));
  EXPECT_EQ(a.used(0), 8 * MiB);
  uint64_t seen = 0;
  EXPECT_FALSE(r.resize(11 * MiB, &seen));
  EXPECT_EQ(seen, 8 * MiB);
  EXPECT_EQ(a.used(0), 8 * MiB);
  EXPECT_TRUE(r.resize(2 * MiB));
  EXPECT_EQ(a.used(0), 2 * MiB);
  r.cancel();
  EXPECT_EQ(a.used(0), 0u);
}

TEST(CapAccountingTest, DevicesWithoutCapAreNotCounted) {
  CapAccounting a;
  a.set_caps(caps("0=10"));
  auto r = a.reserve(1, 1ull << 40);
  EXPECT_TRUE(r);
  EXPECT_FALSE(r.counted());
  a.track(AllocKind::ptr, 7, r);
  EXPECT_EQ(a.used(1), 0u);
  EXPECT_EQ(a.tracked(), 0u);
  EXPECT_TRUE(a.reserve(-1, 5));
  EXPECT_TRUE(a.reserve(kMaxDevices, 5));
  CapAccounting none;
  none.set_caps(CapSpec());
  EXPECT_FALSE(none.any_cap());
}

TEST(CapAccountingTest, MemInfoAndTotal) {
  CapAccounting a;
  a.set_caps(caps("0=1000"));
  auto r = a.reserve(0, 600 * MiB);
  a.track(AllocKind::ptr, 1, r);
  uint64_t f = 80000 * MiB, t = 81559 * MiB;
  a.mem_info(0, &f, &t);
  EXPECT_EQ(t, 1000 * MiB);
  EXPECT_EQ(f, 400 * MiB);
  f = 100 * MiB;  // the device itself is fuller than the cap's room
  t = 81559 * MiB;
  a.mem_info(0, &f, &t);
  EXPECT_EQ(f, 100 * MiB);
  f = 5 * MiB;
  t = 500 * MiB;  // a device smaller than the cap
  a.mem_info(0, &f, &t);
  EXPECT_EQ(t, 500 * MiB);
  f = 40000 * MiB;
  t = 40960 * MiB;
  a.mem_info(1, &f, &t);  // no cap on device 1
  EXPECT_EQ(f, 40000 * MiB);
  EXPECT_EQ(t, 40960 * MiB);
  EXPECT_EQ(a.total_mem(0, 81559 * MiB), 1000 * MiB);
  EXPECT_EQ(a.total_mem(0, 512 * MiB), 512 * MiB);
  EXPECT_EQ(a.total_mem(1, 40960 * MiB), 40960 * MiB);
}

TEST(CapAccountingTest, ArraySizes) {
  EXPECT_EQ(array_bytes(1024, 1024, 0, 0x20, 1), 4 * MiB);  // float
  EXPECT_EQ(array_bytes(1024, 0, 0, 0x01, 4), 4096u);       // uchar4, 1D
  EXPECT_EQ(array_bytes(100, 100, 10, 0x10, 2), 400000u);   // half2, 3D
  EXPECT_EQ(array_bytes(64, 64, 0, 0x91, 4), 2048u);        // BC1: 8 bytes / 4x4 block
  EXPECT_EQ(array_bytes(64, 64, 0, 0xb0, 1), 6144u);        // NV12: 1.5 bytes / pixel
  EXPECT_EQ(array_bytes(1ull << 40, 1ull << 40, 0, 0x20, 4), UINT64_MAX);  // saturates
  EXPECT_EQ(mipmapped_array_bytes(1024, 1024, 0, 0x20, 1, 3), 4 * MiB + MiB + MiB / 4);
  EXPECT_EQ(mipmapped_array_bytes(4, 0, 0, 0x01, 1, 10), 4u + 2u + 1u);
}

TEST(CapAccountingTest, ConcurrentReservationsNeverPassTheCap) {
  CapAccounting a;
  a.set_caps(caps("64"));
  std::atomic<uint64_t> granted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (uint64_t i = 0; i < 4000; ++i) {
        auto r = a.reserve(0, 4096);
        if (!r) continue;
        uint64_t key = (static_cast<uint64_t>(t) << 32) | i;
        a.track(AllocKind::ptr, key, r);
        granted += 4096;
        if (i % 3 == 0) {
          CapAccounting::Entry e;
          if (a.take(AllocKind::ptr, key, &e)) {
            a.release(e.dev, e.bytes);
            granted -= 4096;
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(a.used(0), granted.load());
  EXPECT_LE(a.used(0), 64 * MiB);
  EXPECT_EQ(a.tracked() * 4096, a.used(0));
}

TEST(PoolDevicesTest, RemembersCorrectsAndForgets) {
  PoolDevices p;
  int dev = 99;
  EXPECT_FALSE(p.get(0x300010, &dev));
  EXPECT_EQ(dev, 99);
  p.set(0x300010, 1);
  ASSERT_TRUE(p.get(0x300010, &dev));
  EXPECT_EQ(dev, 1);
  p.set_if_absent(0x300010, PoolDevices::kUnknown);  // a guess never beats what is known
  ASSERT_TRUE(p.get(0x300010, &dev));
  EXPECT_EQ(dev, 1);
  p.set(0x300010, 0);  // cuDeviceSetMemPool said otherwise
  ASSERT_TRUE(p.get(0x300010, &dev));
  EXPECT_EQ(dev, 0);
  p.set(0x300020, PoolDevices::kHost);
  p.set(0, 1);  // a null pool is never recorded
  EXPECT_FALSE(p.get(0, &dev));
  EXPECT_EQ(p.size(), 2u);
  ASSERT_TRUE(p.forget(0x300010, &dev));
  EXPECT_EQ(dev, 0);
  EXPECT_FALSE(p.get(0x300010, &dev));
  EXPECT_FALSE(p.forget(0x300010, nullptr));
  ASSERT_TRUE(p.forget(0x300020, nullptr));
  EXPECT_EQ(p.size(), 0u);
}

TEST(PoolDevicesTest, ConcurrentUse) {
  PoolDevices p;
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&p, t] {
      for (uint64_t i = 1; i <= 2000; ++i) {
        const uint64_t pool = (static_cast<uint64_t>(t) << 32) | i;
        p.set(pool, t % 2);
        int dev = -5;
        if (!p.get(pool, &dev) || dev != t % 2) std::abort();
        if (i % 2 == 0 && !p.forget(pool, &dev)) std::abort();
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(p.size(), 8u * 1000u);
}

// ---------------------------------------------------------------------------------------------
// Integration: the test programs under LD_PRELOAD

const std::string kShim = GREY_CAP_SHIM;
const std::string kDir = GREY_SHIM_TEST_DIR;

struct Child {
  int status = -1;  // exit status, or 128 + signal
  std::string out, err;
  std::vector<std::string> lines;
};

// Runs argv with exactly env (plus LD_PRELOAD/LD_LIBRARY_PATH when preload), stdout and stderr
// captured apart.
Child run(const std::vector<std::string>& argv, std::vector<std::string> env, bool preload = true) {
  test::TempDir tmp;
  const std::string out = tmp / "out", err = tmp / "err";
  env.push_back("PATH=/usr/bin:/bin");
  env.push_back("LD_LIBRARY_PATH=" + kDir + "/lib");
  if (preload) env.push_back("LD_PRELOAD=" + kShim);
  std::vector<char*> av, ev;
  for (const auto& a : argv) av.push_back(const_cast<char*>(a.c_str()));
  av.push_back(nullptr);
  for (const auto& e : env) ev.push_back(const_cast<char*>(e.c_str()));
  ev.push_back(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    int o = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (o < 0 || e < 0) _exit(126);
    dup2(o, 1);
    dup2(e, 2);
    execve(av[0], av.data(), ev.data());
    _exit(127);
  }
  Child r;
  int st = 0;
  if (pid > 0 && waitpid(pid, &st, 0) == pid) {
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  }
  r.out = test::read_file(out);
  r.err = test::read_file(err);
  std::istringstream in(r.out);
  for (std::string l; std::getline(in, l);) r.lines.push_back(l);
  return r;
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> v;
  std::istringstream in(s);
  for (std::string w; in >> w;) v.push_back(w);
  return v;
}

// Runs a shim_cmds.h program with the commands; prog is "shim_direct" or "shim_procaddr".
Child cmds(const std::string& prog, const std::string& commands, std::vector<std::string> env,
           bool preload = true) {
  std::vector<std::string> argv{kDir + "/" + prog};
  for (auto& w : split(commands)) argv.push_back(w);
  return run(argv, std::move(env), preload);
}

std::string mib(uint64_t m) {
  return std::to_string(m * MiB);
}

std::string dump(const Child& r) {
  return "status " + std::to_string(r.status) + "\n" + r.out + r.err;
}

TEST(CapShimTest, AllocPastTheCapIsDeniedAndTheDriverNeverSeesIt) {
  for (const char* prog : {"shim_direct", "shim_procaddr"}) {
    Child r = cmds(prog,
                   "alloc 600 used 0 alloc 500 used 0 info free 0 alloc 500 used 0 info total 0 "
                   "total 1 probe",
                   {"GREY_VRAM_CAP_MB=1000"});
    ASSERT_EQ(r.status, 0) << prog << dump(r);
    const size_t o = std::string(prog) == "shim_procaddr" ? 1 : 0;  // its "lib ..." line
    const std::vector<std::string> want{
        "alloc rc=0 slot=0",
        "used bytes=" + mib(600),
        "alloc rc=2 slot=-1",  // CUDA_ERROR_OUT_OF_MEMORY
        "used bytes=" + mib(600),
        "info rc=0 free=" + mib(400) + " total=" + mib(1000),
        "free rc=0",
        "alloc rc=0 slot=1",
        "used bytes=" + mib(500),
        "info rc=0 free=" + mib(500) + " total=" + mib(1000),
        "total rc=0 bytes=" + mib(1000),
        "total rc=0 bytes=" + mib(1000),  // one value caps every device
        "probe ok=1",                     // dlsym(RTLD_NEXT) still relative to its caller
    };
    ASSERT_EQ(r.lines.size(), want.size() + o) << prog << dump(r);
    for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(r.lines[i + o], want[i]) << prog;
    EXPECT_EQ(r.err, "") << prog;  // no GREY_CAP_LOG: the shim says nothing
  }
}

TEST(CapShimTest, ProcAddressHandsOutWrappersOnlyForMemoryFunctions) {
  for (const char* v : {"", "v1"}) {
    Child r = cmds("shim_procaddr", std::string(v) + " alloc 900 alloc 200 asyncpt 200 info",
                   {"GREY_VRAM_CAP_MB=1000"});
    ASSERT_EQ(r.status, 0) << dump(r);
    ASSERT_EQ(r.lines.size(), 5u) << dump(r);
    EXPECT_EQ(r.lines[0],
              "lib cuMemAlloc=libgrey_cap.so cuMemAllocAsyncPtsz=libgrey_cap.so "
              "cuDeviceGetAttribute=libcuda.so.1 cuGetProcAddress=libgrey_cap.so")
        << v;
    EXPECT_EQ(r.lines[1], "alloc rc=0 slot=0");
    EXPECT_EQ(r.lines[2], "alloc rc=2 slot=-1");
    EXPECT_EQ(r.lines[3], "asyncpt rc=2 slot=-1");
    EXPECT_EQ(r.lines[4], "info rc=0 free=" + mib(100) + " total=" + mib(1000));
  }
  // Without a cap the driver's own pointers are handed out: nothing to pay.
  Child r = cmds("shim_procaddr", "alloc 50000", {});
  ASSERT_EQ(r.status, 0) << dump(r);
  ASSERT_EQ(r.lines.size(), 2u) << dump(r);
  EXPECT_EQ(r.lines[0],
            "lib cuMemAlloc=libcuda.so.1 cuMemAllocAsyncPtsz=libcuda.so.1 "
            "cuDeviceGetAttribute=libcuda.so.1 cuGetProcAddress=libcuda.so.1");
  EXPECT_EQ(r.lines[1], "alloc rc=0 slot=0");
}

// The real driver hands out internal pointers, not its exported symbols, so the shim must
// recognise an entry point by its name, version and stream flavour (FAKE_CUDA_INTERNAL_POINTERS
// makes the fake do the same). The resolver fetched with the per-thread-stream flag at 12.0
// must stay a v2 resolver (five arguments; it writes *status) and must itself be wrapped.
TEST(CapShimTest, InternalDriverPointersAreRecognisedByNameVersionAndFlavour) {
  Child r = cmds("shim_procaddr", "ptszcheck alloc 900 alloc 200 asyncpt 200 async 200 info",
                 {"GREY_VRAM_CAP_MB=1000", "FAKE_CUDA_INTERNAL_POINTERS=1"});
  ASSERT_EQ(r.status, 0) << dump(r);
  ASSERT_EQ(r.lines.size(), 7u) << dump(r);
  EXPECT_EQ(r.lines[0],
            "lib cuMemAlloc=libgrey_cap.so cuMemAllocAsyncPtsz=libgrey_cap.so "
            "cuDeviceGetAttribute=libcuda.so.1 cuGetProcAddress=libgrey_cap.so")
      << dump(r);
  EXPECT_EQ(r.lines[1], "ptsz-resolver lib=libgrey_cap.so rc=0 status=0 cuMemAlloc=libgrey_cap.so")
      << dump(r);
  EXPECT_EQ(r.lines[2], "alloc rc=0 slot=0");
  EXPECT_EQ(r.lines[3], "alloc rc=2 slot=-1");
  EXPECT_EQ(r.lines[4], "asyncpt rc=2 slot=-1");
  EXPECT_EQ(r.lines[5], "async rc=2 slot=-1");
  EXPECT_EQ(r.lines[6], "info rc=0 free=" + mib(100) + " total=" + mib(1000));
  // Without the shim the fake really hands out its thunks (so the test above can fail).
  Child plain = cmds("shim_procaddr", "ptszcheck", {"FAKE_CUDA_INTERNAL_POINTERS=1"}, false);
  ASSERT_EQ(plain.status, 0) << dump(plain);
  EXPECT_EQ(plain.lines.at(0),
            "lib cuMemAlloc=libcuda.so.1 cuMemAllocAsyncPtsz=libcuda.so.1 "
            "cuDeviceGetAttribute=libcuda.so.1 cuGetProcAddress=libcuda.so.1");
}

// cuda.h maps cuGetProcAddress to cuGetProcAddress_v2_ptsz under per-thread default streams:
// that export is wrapped too.
TEST(CapShimTest, TheV2PtszResolverExportIsWrapped) {
  // dlsym of the name through the shim gives the shim's resolver (checked by the program's
  // fetch of cuMemAlloc through it).
  Child r = run({kDir + "/shim_procaddr", "alloc", "900", "alloc", "200"},
                {"GREY_VRAM_CAP_MB=1000", "SHIM_PROCADDR_SYMBOL=cuGetProcAddress_v2_ptsz"});
  ASSERT_EQ(r.status, 0) << dump(r);
  ASSERT_EQ(r.lines.size(), 3u) << dump(r);
  EXPECT_EQ(r.lines[1], "alloc rc=0 slot=0");
  EXPECT_EQ(r.lines[2], "alloc rc=2 slot=-1");
}

TEST(CapShimTest, PerDeviceCaps) {
  Child r = cmds("shim_direct",
                 "dev 1 alloc 1500 alloc 600 info total 0 total 1 dev 0 alloc 900 used 0 used 1",
                 {"GREY_VRAM_CAP_MB=0=1000,1=2000"});
  ASSERT_EQ(r.status, 0) << dump(r);
  const std::vector<std::string> want{
      "dev rc=0",
      "alloc rc=0 slot=0",
      "alloc rc=2 slot=-1",
      "info rc=0 free=" + mib(500) + " total=" + mib(2000),
      "total rc=0 bytes=" + mib(1000),
      "total rc=0 bytes=" + mib(2000),
      "dev rc=0",
      "alloc rc=0 slot=1",
      "used bytes=" + mib(900),
      "used bytes=" + mib(1500),
  };
  EXPECT_EQ(r.lines, want) << dump(r);

  // A device left out of the list has no cap.
  r = cmds("shim_direct", "dev 1 alloc 30000 info total 1 total 0", {"GREY_VRAM_CAP_MB=0=1000"});
  ASSERT_EQ(r.status, 0) << dump(r);
  const std::vector<std::string> want2{
      "dev rc=0",
      "alloc rc=0 slot=0",
      "info rc=0 free=" + mib(40960 - 30000) + " total=" + mib(40960),
      "total rc=0 bytes=" + mib(40960),
      "total rc=0 bytes=" + mib(1000),
  };
  EXPECT_EQ(r.lines, want2) << dump(r);
}

TEST(CapShimTest, NoCapChangesNothing) {
  const std::string c = "alloc 50000 used 0 info total 0 total 1";
  const std::vector<std::string> want{
      "alloc rc=0 slot=0",
      "used bytes=" + mib(50000),
      "info rc=0 free=" + mib(81559 - 50000) + " total=" + mib(81559),
      "total rc=0 bytes=" + mib(81559),
      "total rc=0 bytes=" + mib(40960),
  };
  Child with = cmds("shim_direct", c, {});
  Child without = cmds("shim_direct", c, {}, false);
  EXPECT_EQ(with.status, 0) << dump(with);
  EXPECT_EQ(with.lines, want) << dump(with);
  EXPECT_EQ(without.lines, want) << dump(without);
  EXPECT_EQ(with.err, "");
}

TEST(CapShimTest, InvalidCapIsNoCapAndOneLogLine) {
  test::TempDir tmp;
  const std::string log = tmp / "cap.log";
  Child r = cmds("shim_direct", "alloc 50000 alloc 1000 info",
                 {"GREY_VRAM_CAP_MB=20000MB", "GREY_CAP_LOG=" + log});
  ASSERT_EQ(r.status, 0) << dump(r);
  ASSERT_EQ(r.lines.size(), 3u) << dump(r);
  EXPECT_EQ(r.lines[0], "alloc rc=0 slot=0");
  EXPECT_EQ(r.lines[1], "alloc rc=0 slot=1");
  EXPECT_EQ(r.lines[2], "info rc=0 free=" + mib(81559 - 51000) + " total=" + mib(81559));
  const std::string text = test::read_file(log);
  EXPECT_NE(text.find("invalid GREY_VRAM_CAP_MB \"20000MB\": no cap\n"), std::string::npos) << text;
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1) << text;
  EXPECT_EQ(r.err, "");
}

TEST(CapShimTest, LogGetsTheDenyLine) {
  test::TempDir tmp;
  const std::string log = tmp / "cap.log";
  Child r =
      cmds("shim_direct", "alloc 600 alloc 500", {"GREY_VRAM_CAP_MB=1000", "GREY_CAP_LOG=" + log});
  ASSERT_EQ(r.status, 0) << dump(r);
  EXPECT_EQ(r.err, "");
  std::istringstream in(test::read_file(log));
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  ASSERT_EQ(lines.size(), 2u);
  // "<UTC timestamp> pid <pid> <event>"
  auto w0 = split(lines[0]), w1 = split(lines[1]);
  ASSERT_GE(w1.size(), 4u);
  EXPECT_EQ(w1[0].size(), 24u) << w1[0];  // 2026-01-02T03:04:05.678Z
  EXPECT_EQ(w1[0].back(), 'Z');
  EXPECT_EQ(w1[1], "pid");
  EXPECT_GT(std::stoi(w1[2]), 0);
  EXPECT_NE(lines[0].find(" cap GREY_VRAM_CAP_MB=\"1000\""), std::string::npos) << lines[0];
  const std::string tail =
      "deny cuMemAlloc_v2 dev 0 bytes " + mib(500) + " used " + mib(600) + " cap " + mib(1000);
  EXPECT_EQ(lines[1].substr(lines[1].size() - tail.size()), tail) << lines[1];
}

TEST(CapShimTest, OtherAllocationKinds) {
  Child r = cmds("shim_direct",
                 "managed 400 async 300 pool 200 asyncpt 200 used 0 free 1 asyncpt 200 "
                 "create 0 300 create 1 900 hostcreate 5000 used 0 used 1 free 4 used 1 "
                 "create 0 100 array 1024 1024 array3d 1024 1024 100 mipmap 1024 1024 3 used 0 "
                 "dev 1 array3d 1024 1024 100 mipmap 1024 1024 3 used 1 free 10 used 1 info",
                 {"GREY_VRAM_CAP_MB=1000"});
  ASSERT_EQ(r.status, 0) << dump(r);
  const std::vector<std::string> want{
      "managed rc=0 slot=0",  // device 0: 400
      "async rc=0 slot=1",    // 700
      "pool rc=0 slot=2",     // 900
      "asyncpt rc=2 slot=-1",
      "used bytes=" + mib(900),
      "free rc=0",               // cuMemFreeAsync of the 300: 600
      "asyncpt rc=0 slot=3",     // 800
      "create rc=2 slot=-1",     // 800 + 300 > 1000
      "create rc=0 slot=4",      // cuMemCreate counts against prop->location.id: device 1
      "hostcreate rc=0 slot=5",  // host memory is not counted
      "used bytes=" + mib(800),
      "used bytes=" + mib(900),
      "free rc=0",  // cuMemRelease
      "used bytes=0",
      "create rc=0 slot=6",    // device 0: 900
      "array rc=0 slot=7",     // 4 MiB: 904
      "array3d rc=2 slot=-1",  // 400 MiB
      "mipmap rc=0 slot=8",    // 4 + 1 + 0.25 MiB
      "used bytes=" + std::to_string(909 * MiB + MiB / 4),
      "dev rc=0",
      "array3d rc=0 slot=9",  // device 1: 400 MiB
      "mipmap rc=0 slot=10",
      "used bytes=" + std::to_string(405 * MiB + MiB / 4),
      "free rc=0",  // cuMipmappedArrayDestroy
      "used bytes=" + mib(400),
      "info rc=0 free=" + mib(600) + " total=" + mib(1000),
  };
  EXPECT_EQ(r.lines, want) << dump(r);
}

// The command lines of a shim_cmds.h program, without shim_procaddr's "lib ..." line.
std::vector<std::string> cmd_lines(const std::string& prog, const Child& r) {
  std::vector<std::string> v = r.lines;
  if (prog == "shim_procaddr" && !v.empty() && v[0].rfind("lib ", 0) == 0) v.erase(v.begin());
  return v;
}

// Both ways of reaching the driver, and for the resolver way also the real driver's habit of
// handing out internal pointers (the pool functions are then recognised by name).
struct Way {
  const char* prog;
  std::vector<std::string> env;
};
std::vector<Way> ways() {
  return {{"shim_direct", {}},
          {"shim_procaddr", {}},
          {"shim_procaddr", {"FAKE_CUDA_INTERNAL_POINTERS=1"}}};
}

std::string way_name(const Way& w) {
  std::string n = w.prog;
  for (const auto& e : w.env) n += " " + e;
  return n;
}

// cuMemAllocAsync allocates from the current pool of the stream's device, whatever context is
// current. Device 0 is current; the stream belongs to device 1's context.
TEST(CapShimTest, AsyncAllocationCountsOnTheStreamsDevice) {
  for (Way w : ways()) {
    for (const char* v2 : {"", "FAKE_CUDA_NO_STREAM_GET_CTX_V2=1"}) {
      std::vector<std::string> env = w.env;
      env.push_back("GREY_VRAM_CAP_MB=0=100,1=1000");
      if (*v2) env.push_back(v2);  // a driver without cuStreamGetCtx_v2 (< 12.5)
      const std::string name = way_name(w) + " " + v2;
      Child r = cmds(w.prog,
                     "dev 1 stream dev 0 asyncon 500 0 asyncpton 400 0 asyncon 200 0 used 0 "
                     "used 1 info free 0 used 1 asyncon 600 0 info dev 1 info",
                     env);
      ASSERT_EQ(r.status, 0) << name << dump(r);
      const std::vector<std::string> want{
          "dev rc=0",
          "stream rc=0 id=0",
          "dev rc=0",
          "asyncon rc=0 slot=0",    // 500 MiB on device 1 (was refused against device 0's 100)
          "asyncpton rc=0 slot=1",  // 900
          "asyncon rc=2 slot=-1",   // 1100 > 1000
          "used bytes=0",
          "used bytes=" + mib(900),
          // device 0 is still current (the shim gave the context back) and has its whole cap
          "info rc=0 free=" + mib(100) + " total=" + mib(100),
          "free rc=0",  // cuMemFreeAsync gives the 500 back to device 1 ...
          "used bytes=" + mib(400),
          "asyncon rc=0 slot=2",  // ... so 600 more fit there
          "info rc=0 free=" + mib(100) + " total=" + mib(100),
          "dev rc=0",
          "info rc=0 free=0 total=" + mib(1000),
      };
      EXPECT_EQ(cmd_lines(w.prog, r), want) << name << dump(r);
    }
  }
}

// NULL, CU_STREAM_LEGACY and CU_STREAM_PER_THREAD (and NULL for the _ptsz variants: the
// per-thread stream) are the current context's.
TEST(CapShimTest, SpecialStreamsMeanTheCurrentContext) {
  for (Way w : ways()) {
    std::vector<std::string> env = w.env;
    env.push_back("GREY_VRAM_CAP_MB=0=100,1=1000");
    Child r = cmds(w.prog,
                   "dev 1 stream dev 0 asyncon 60 legacy asyncon 50 perthread asyncpton 40 null "
                   "used 0 dev 1 asyncon 500 legacy asyncpton 500 perthread asyncon 1 null "
                   "asyncpton 1 null used 0 used 1",
                   env);
    ASSERT_EQ(r.status, 0) << way_name(w) << dump(r);
    const std::vector<std::string> want{
        "dev rc=0",
        "stream rc=0 id=0",
        "dev rc=0",
        "asyncon rc=0 slot=0",    // device 0: 60
        "asyncon rc=2 slot=-1",   // 110 > 100
        "asyncpton rc=0 slot=1",  // 100
        "used bytes=" + mib(100),
        "dev rc=0",
        "asyncon rc=0 slot=2",    // device 1: 500
        "asyncpton rc=0 slot=3",  // 1000
        "asyncon rc=2 slot=-1",
        "asyncpton rc=2 slot=-1",
        "used bytes=" + mib(100),
        "used bytes=" + mib(1000),
    };
    EXPECT_EQ(cmd_lines(w.prog, r), want) << way_name(w) << dump(r);
  }
}

// cuMemAllocFromPoolAsync allocates on the pool's device, not the stream's nor the current
// context's: created pools, default pools, current pools (also after cuDeviceSetMemPool) and
// host pools (which count nowhere).
TEST(CapShimTest, PoolAllocationCountsOnThePoolsDevice) {
  for (Way w : ways()) {
    std::vector<std::string> env = w.env;
    env.push_back("GREY_VRAM_CAP_MB=0=100,1=1000");
    Child r = cmds(w.prog,
                   "dev 0 stream mkpool 1 frompool 500 0 0 frompoolpt 300 0 null used 0 used 1 "
                   "info free 0 used 1 defpool 1 frompool 400 1 legacy mkpool 1 setpool 1 2 "
                   "getpool 1 frompool 100 3 perthread frompool 1 3 0 getpool 0 frompool 100 4 0 "
                   "mkhostpool frompool 5000 5 0 used 0 used 1 dev 1 info",
                   env);
    ASSERT_EQ(r.status, 0) << way_name(w) << dump(r);
    const std::vector<std::string> want{
        "dev rc=0",
        "stream rc=0 id=0",        // on device 0
        "mkpool rc=0 id=0",        // on device 1
        "frompool rc=0 slot=0",    // 500 on device 1 (was refused against device 0's 100)
        "frompoolpt rc=0 slot=1",  // 800
        "used bytes=0",
        "used bytes=" + mib(800),
        "info rc=0 free=" + mib(100) + " total=" + mib(100),
        "free rc=0",  // cuMemFreeAsync gives the 500 back to device 1
        "used bytes=" + mib(300),
        "defpool rc=0 id=1",
        "frompool rc=0 slot=2",  // device 1's default pool: 700
        "mkpool rc=0 id=2",
        "setpool rc=0",
        "getpool rc=0 id=3",     // the pool just made current (the same handle as id 2)
        "frompool rc=0 slot=3",  // 800
        "frompool rc=0 slot=4",
        "getpool rc=0 id=4",     // device 0's current pool: its default one
        "frompool rc=0 slot=5",  // device 0: 100
        "mkhostpool rc=0 id=5",
        "frompool rc=0 slot=6",  // host memory: no device's cap
        "used bytes=" + mib(100),
        "used bytes=" + std::to_string(800 * MiB + MiB),
        "dev rc=0",
        "info rc=0 free=" + std::to_string(199 * MiB) + " total=" + mib(1000),
    };
    EXPECT_EQ(cmd_lines(w.prog, r), want) << way_name(w) << dump(r);
  }
}

// A pool obtained past the shim: a device's default or current pool is still found (the shim
// asks every device); any other pool counts on its stream's device, said once in the log. A
// destroyed pool is forgotten.
TEST(CapShimTest, PoolsTheShimNeverSaw) {
  for (Way w : ways()) {
    test::TempDir tmp;
    const std::string log = tmp / "cap.log";
    std::vector<std::string> env = w.env;
    env.push_back("GREY_VRAM_CAP_MB=0=100,1=1000");
    env.push_back("GREY_CAP_LOG=" + log);
    Child r = cmds(w.prog,
                   "dev 0 stream unseenpool 1 0 frompool 500 0 0 unseenpool 1 1 frompool 60 1 0 "
                   "frompool 60 1 0 frompool 40 1 0 used 0 used 1 info mkpool 1 frompool 10 2 0 "
                   "rmpool 2 free 1 frompool 10 2 0 rmpool 0 frompool 10 0 0",
                   env);
    ASSERT_EQ(r.status, 0) << way_name(w) << dump(r);
    const std::vector<std::string> want{
        "dev rc=0",
        "stream rc=0 id=0",
        "unseenpool rc=0 id=0",   // device 1's default pool
        "frompool rc=0 slot=0",   // found: 500 on device 1
        "unseenpool rc=0 id=1",   // a pool made on device 1 past the shim
        "frompool rc=0 slot=1",   // counted on the stream's device 0: 60
        "frompool rc=2 slot=-1",  // 120 > 100 there
        "frompool rc=0 slot=2",   // 100
        "used bytes=0",
        "used bytes=" + mib(600),  // (the driver's own books)
        "info rc=0 free=0 total=" + mib(100),
        "mkpool rc=0 id=2",
        "frompool rc=0 slot=3",
        "rmpool rc=0",
        "free rc=0",                // device 0: 40
        "frompool rc=400 slot=-1",  // the driver refuses the dead pool
        "rmpool rc=1",              // nor can a default pool be destroyed ...
        "frompool rc=0 slot=4",     // ... which the shim still knows to be device 1's
    };
    EXPECT_EQ(cmd_lines(w.prog, r), want) << way_name(w) << dump(r);
    const std::string text = test::read_file(log);
    // Once for the unseen pool, once for the destroyed one (forgotten at cuMemPoolDestroy),
    // not for the default pool whose destruction the driver refused.
    size_t n = 0;
    for (size_t at = 0; (at = text.find("was never seen created", at)) != std::string::npos; ++at) {
      ++n;
    }
    EXPECT_EQ(n, 2u) << text;
    EXPECT_NE(text.find("cuMemAllocFromPoolAsync: pool 0x"), std::string::npos) << text;
  }
}

TEST(CapShimTest, PitchIsCountedAtTheRealPitch) {
  // 1000 x 1000 fits 1 MiB by the request but the fake pads rows to 1024 bytes: 1024000 fits.
  Child r = cmds("shim_direct", "pitch 1000 1000 used 0", {"GREY_VRAM_CAP_MB=1"});
  ASSERT_EQ(r.status, 0) << dump(r);
  EXPECT_EQ(r.lines, (std::vector<std::string>{"pitch rc=0 slot=0", "pitch bytes=1024",
                                               "used bytes=1024000"}))
      << dump(r);
  // 1040 x 1000 = 1040000 fits the request, the real 1536-byte pitch does not: freed again,
  // and the pointer and pitch the driver had written are cleared (nothing to use by mistake).
  r = cmds("shim_direct", "pitch 1040 1000 used 0 info", {"GREY_VRAM_CAP_MB=1"});
  ASSERT_EQ(r.status, 0) << dump(r);
  EXPECT_EQ(r.lines,
            (std::vector<std::string>{"pitch rc=2 slot=-1", "pitch bytes=0", "used bytes=0",
                                      "info rc=0 free=" + mib(1) + " total=" + mib(1)}))
      << dump(r);
}

TEST(CapShimTest, DriverFailureGivesTheReservationBack) {
  Child r =
      cmds("shim_direct", "alloc 600 info", {"GREY_VRAM_CAP_MB=1000", "FAKE_CUDA_FAIL_ALLOC=1"});
  ASSERT_EQ(r.status, 0) << dump(r);
  EXPECT_EQ(r.lines,
            (std::vector<std::string>{"alloc rc=999 slot=-1",
                                      "info rc=0 free=" + mib(1000) + " total=" + mib(1000)}))
      << dump(r);
}

TEST(CapShimTest, ThreadsNeverPassTheCap) {
  Child r = run({kDir + "/shim_threads", "16", "2000"}, {"GREY_VRAM_CAP_MB=1000"});
  EXPECT_EQ(r.status, 0) << dump(r);
  ASSERT_EQ(r.lines.size(), 1u) << dump(r);
  std::map<std::string, std::string> kv;
  for (const auto& w : split(r.lines[0])) {
    auto eq = w.find('=');
    if (eq != std::string::npos) kv[w.substr(0, eq)] = w.substr(eq + 1);
  }
  EXPECT_LE(std::stoull(kv["peak"]), 1000 * MiB);
  EXPECT_GT(std::stoull(kv["denied"]), 0u);
  EXPECT_EQ(kv["used_after"], "0");
  EXPECT_EQ(kv["free_after"], mib(1000));
}

TEST(CapShimTest, NonCudaProgramsAreUnaffected) {
  Child t = run({"/bin/true"}, {"GREY_VRAM_CAP_MB=1000"});
  EXPECT_EQ(t.status, 0);
  EXPECT_EQ(t.out + t.err, "");
  // Nothing loads libcuda at start, and the shim is there.
  Child maps = run({"/bin/cat", "/proc/self/maps"}, {"GREY_VRAM_CAP_MB=1000"});
  EXPECT_EQ(maps.status, 0);
  EXPECT_NE(maps.out.find("libgrey_cap.so"), std::string::npos);
  EXPECT_EQ(maps.out.find("libcuda"), std::string::npos);
  Child sh = run({"/bin/sh", "-c", "echo hi; exit 3"}, {"GREY_VRAM_CAP_MB=bad"});
  EXPECT_EQ(sh.status, 3);
  EXPECT_EQ(sh.out, "hi\n");
  EXPECT_EQ(sh.err, "");
}

}  // namespace
}  // namespace grey::cap
