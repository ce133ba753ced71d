// Process identity cost (SPEC §8; budget: 50 µs per new process, nothing re-read for a known
// one). A fake /proc of 1000 pod processes (containerd, systemd driver, cgroup v2) over 250
// pods with two containers each, the kubelet's /var/log/pods and /var/log/containers for them,
// built under $TMPDIR; and the real /proc for this process.
//
//   BM_IdentityNewProcess         every resolve is a process never seen: four reads, the pod's
//                                 log directory listed; the log roots' listings amortized (one
//                                 per resolver, i.e. per 1000 processes)
//   BM_IdentityNewProcessColdRoots the same with a fresh resolver each time: both log roots
//                                 listed for this one process (the worst case: a first tick)
//   BM_IdentityKnownProcess       a cached process: one read of /proc/<pid>/stat
//   BM_IdentityRealProcSelf       this process on the real procfs, as new each time
#include <benchmark/benchmark.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "telemetry/process_identity.h"
#include "util/host_fs.h"

namespace {

namespace fs = std::filesystem;

constexpr int kProcesses = 1000, kPods = 250, kFirstPid = 10000;

void put(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

std::string hex(uint64_t v, int digits) {
  std::string s(static_cast<size_t>(digits), '0');
  for (int i = digits - 1; i >= 0 && v; --i, v >>= 4)
    s[static_cast<size_t>(i)] = "0123456789abcdef"[v & 15];
  return s;
}

std::string pod_uid(int pod) {
  return "55c6c714-b240-4dec-9a45-" + hex(static_cast<uint64_t>(pod) + 1, 12);
}

std::string container_id(int pid) {
  return "2032491dcae31e6746f47daa0ac74564f2843a1bd847c5e6c4eb501c" +
         hex(static_cast<uint64_t>(pid), 8);
}

struct FakeTree {
  std::string root;
  FakeTree() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/grey-identity-bench-XXXXXX";
    root = ::mkdtemp(tmpl.data()) ? tmpl : "";
    for (int i = 0; i < kProcesses; ++i) {
      int pid = kFirstPid + i, pod = i % kPods;
      std::string uid = pod_uid(pod), sys_uid = uid;
      for (char& c : sys_uid)
        if (c == '-') c = '_';
      std::string cid = container_id(pid), dir = root + "/proc/" + std::to_string(pid);
      put(dir + "/stat", std::to_string(pid) +
                             " (python3) S 1 1 1 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 " +
                             std::to_string(1000 + i) +
                             " 12345678 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 3 0 "
                             "0 0 0 0\n");
      put(dir + "/cgroup", "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" +
                               sys_uid + ".slice/cri-containerd-" + cid + ".scope\n");
      put(dir + "/status", "Name:\tpython3\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t" +
                               std::to_string(pid) + "\nNgid:\t0\nPid:\t" + std::to_string(pid) +
                               "\nPPid:\t1\nTracerPid:\t0\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n"
                               "FDSize:\t64\nGroups:\t\nNStgid:\t" +
                               std::to_string(pid) + "\t1\nNSpid:\t" + std::to_string(pid) +
                               "\t1\nNSpgid:\t1\nNSsid:\t1\nVmPeak:\t 1000 kB\n");
      std::string pod_name = "trainer-" + std::to_string(pod);
      std::string container = i < kPods ? "trainer" : (i < 2 * kPods ? "sidecar" : "worker");
      put(root + "/log/pods/ml_" + pod_name + "_" + uid + "/" + container + "/0.log", "");
      put(root + "/log/containers/" + pod_name + "_ml_" + container + "-" + cid + ".log", "");
    }
  }
  ~FakeTree() {
    std::error_code ec;
    if (!root.empty()) fs::remove_all(root, ec);
  }
  std::shared_ptr<grey::HostFs> fs() const {
    return std::make_shared<grey::RootedFs>(root + "/sys", root + "/proc");
  }
  grey::ProcessIdentityOptions options() const {
    grey::ProcessIdentityOptions o;
    o.pod_log_root = root + "/log/pods";
    return o;
  }
};

const FakeTree& tree() {
  static FakeTree t;
  return t;
}

void BM_IdentityNewProcess(benchmark::State& st) {
  const FakeTree& t = tree();
  auto fs = t.fs();
  auto r = std::make_unique<grey::ProcessIdentityResolver>(fs, t.options());
  int i = 0, named = 0;
  for (auto _ : st) {
    if (i == kProcesses) {
      st.PauseTiming();
      r = std::make_unique<grey::ProcessIdentityResolver>(fs, t.options());
      i = 0;
      st.ResumeTiming();
    }
    grey::ProcessIdentity id = r->resolve(kFirstPid + i++);
    named += !id.container.empty();
    benchmark::DoNotOptimize(id);
  }
  if (named == 0) st.SkipWithError("no container was named: the fake tree is wrong");
}
BENCHMARK(BM_IdentityNewProcess)->Unit(benchmark::kMicrosecond);

void BM_IdentityNewProcessColdRoots(benchmark::State& st) {
  const FakeTree& t = tree();
  auto fs = t.fs();
  int i = 0;
  for (auto _ : st) {
    grey::ProcessIdentityResolver r(fs, t.options());
    grey::ProcessIdentity id = r.resolve(kFirstPid + (i++ % kProcesses));
    if (id.container.empty()) st.SkipWithError("no container was named");
    benchmark::DoNotOptimize(id);
  }
}
BENCHMARK(BM_IdentityNewProcessColdRoots)->Unit(benchmark::kMicrosecond);

void BM_IdentityKnownProcess(benchmark::State& st) {
  const FakeTree& t = tree();
  grey::ProcessIdentityResolver r(t.fs(), t.options());
  for (int i = 0; i < kProcesses; ++i) r.resolve(kFirstPid + i);
  int i = 0;
  for (auto _ : st) {
    grey::ProcessIdentity id = r.resolve(kFirstPid + (i++ % kProcesses));
    benchmark::DoNotOptimize(id);
  }
}
BENCHMARK(BM_IdentityKnownProcess)->Unit(benchmark::kMicrosecond);

void BM_IdentityRealProcSelf(benchmark::State& st) {
  auto fs = std::make_shared<grey::RootedFs>();
  grey::ProcessIdentityOptions o;
  o.pod_log_root = "/nonexistent/grey-bench/pods";
  const int self = static_cast<int>(::getpid());
  for (auto _ : st) {
    grey::ProcessIdentityResolver r(fs, o);
    grey::ProcessIdentity id = r.resolve(self);
    benchmark::DoNotOptimize(id);
  }
}
BENCHMARK(BM_IdentityRealProcSelf)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
