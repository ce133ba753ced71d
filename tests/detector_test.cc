// The detector with in-process fake sources: concurrency, the deadline with a source that
// blocks forever, merging by bus id / uuid / vendor order, software devices, contradictions.
#include "detect/detector.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "detect/software.h"
#include "sources/pci_names.h"
#include "test_util.h"
#include "util/host_fs.h"

namespace grey {
namespace {

using namespace std::chrono_literals;

// Every source that holds it waits until `n` sources have arrived: a barrier that only
// opens when the sources run at the same time (30 s is a hang guard, not a bound).
struct Rendezvous {
  explicit Rendezvous(int n) : n(n) {}
  bool arrive_and_wait() {
    std::unique_lock<std::mutex> lock(m);
    ++arrived;
    cv.notify_all();
    return cv.wait_for(lock, 30s, [&] { return arrived >= n; });
  }
  std::mutex m;
  std::condition_variable cv;
  int arrived = 0;
  const int n;
};

class FakeSource : public Source {
 public:
  FakeSource(std::string name, int auth, std::vector<Observation> obs,
             std::shared_ptr<Rendezvous> rendezvous = nullptr)
      : name_(std::move(name)), auth_(auth), obs_(std::move(obs)), rendezvous_(rendezvous) {}
  std::string name() const override { return name_; }
  int authority() const override { return auth_; }
  SourceReport collect(SourceContext&) override {
    SourceReport r;
    r.source = name_;
    if (rendezvous_ && !rendezvous_->arrive_and_wait()) {
      r.status = SourceStatus::failed;
      r.notes.push_back("the other sources never ran beside this one");
      return r;
    }
    r.status = obs_.empty() ? SourceStatus::no_devices : SourceStatus::ok;
    r.devices = obs_;
    return r;
  }

 private:
  std::string name_;
  int auth_;
  std::vector<Observation> obs_;
  std::shared_ptr<Rendezvous> rendezvous_;
};

// Blocks like a vendor library call that never returns.
class StuckSource : public Source {
 public:
  explicit StuckSource(std::shared_ptr<std::atomic<bool>> release) : release_(std::move(release)) {}
  std::string name() const override { return "stuck"; }
  int authority() const override { return 100; }
  SourceReport collect(SourceContext&) override {
    release_->wait(false);
    SourceReport r;
    r.source = "stuck";
    finished_->store(true);
    finished_->notify_all();
    return r;
  }
  std::shared_ptr<std::atomic<bool>> finished() const { return finished_; }

 private:
  std::shared_ptr<std::atomic<bool>> release_;
  std::shared_ptr<std::atomic<bool>> finished_ = std::make_shared<std::atomic<bool>>(false);
};

class ThrowingSource : public Source {
 public:
  std::string name() const override { return "thrower"; }
  int authority() const override { return 1; }
  SourceReport collect(SourceContext&) override { throw std::runtime_error("boom"); }
};

Observation obs(std::optional<std::string> bus, std::string vendor, std::string model,
                std::optional<int64_t> vram = std::nullopt) {
  Observation o;
  o.f.bus_id = std::move(bus);
  o.f.vendor = std::move(vendor);
  o.f.model = std::move(model);
  o.f.vram_total_mb = vram;
  return o;
}

DetectEnv env() {
  return DetectEnv{};
}

TEST(Detector, SourcesRunConcurrently) {
  // Six sources that each wait for all six: with a sequential detector the first one would
  // wait alone until the detection deadline and be reported timed out.
  auto rendezvous = std::make_shared<Rendezvous>(6);
  std::vector<std::unique_ptr<Source>> s;
  for (int i = 0; i < 6; ++i)
    s.push_back(std::make_unique<FakeSource>("s" + std::to_string(i), i, std::vector<Observation>{},
                                             rendezvous));
  DetectOptions o;
  o.timeout = 60000ms;
  auto r = run_detection(std::move(s), env(), o);
  ASSERT_EQ(r.reports.size(), 6u);
  for (const auto& rep : r.reports) EXPECT_EQ(rep.status, SourceStatus::no_devices) << rep.source;
  EXPECT_FALSE(r.abandoned_work);
  EXPECT_TRUE(r.gpus.empty());
  EXPECT_FALSE(r.notes.empty());
}

TEST(Detector, BlockedSourceIsAbandonedAtTheDeadline) {
  auto release = std::make_shared<std::atomic<bool>>(false);
  std::vector<std::unique_ptr<Source>> s;
  auto stuck = std::make_unique<StuckSource>(release);
  auto finished = stuck->finished();
  s.push_back(std::move(stuck));
  s.push_back(std::make_unique<FakeSource>(
      "lspci", 30, std::vector<Observation>{obs("0000:01:00.0", "nvidia", "GA102")}));
  DetectOptions o;
  o.timeout = 300ms;
  // The stuck source is never released before detection returns: only the deadline ends it.
  auto r = run_detection(std::move(s), env(), o);
  EXPECT_TRUE(r.abandoned_work);
  ASSERT_EQ(r.reports.size(), 2u);
  EXPECT_EQ(r.reports[0].status, SourceStatus::timed_out);
  EXPECT_NE(r.reports[0].notes[0].find("deadline"), std::string::npos);
  ASSERT_EQ(r.gpus.size(), 1u) << "the other sources' results are kept";
  EXPECT_FALSE(finished->load()) << "the stuck source was still blocked";
  release->store(true);  // let the abandoned thread finish before the test process ends
  release->notify_all();
  finished->wait(false);
}

TEST(Detector, ThrowingSourceBecomesANote) {
  std::vector<std::unique_ptr<Source>> s;
  s.push_back(std::make_unique<ThrowingSource>());
  auto r = run_detection(std::move(s), env(), {});
  ASSERT_EQ(r.reports.size(), 1u);
  EXPECT_EQ(r.reports[0].status, SourceStatus::failed);
  EXPECT_NE(r.reports[0].notes[0].find("boom"), std::string::npos);
}

SourceReport rep(std::string name, std::vector<Observation> o) {
  SourceReport r;
  r.source = std::move(name);
  r.devices = std::move(o);
  return r;
}

TEST(Merge, ByBusIdAuthorityWinsPerField) {
  auto a = obs("0000:1b:00.0", "nvidia", "NVIDIA H100 80GB HBM3", 81559);
  a.f.uuid = "GPU-abc";
  auto b = obs("0000:1b:00.0", "nvidia", "GH100 [H100 SXM5 80GB]", 65536);
  b.f.kernel_driver = "nvidia";
  b.f.numa_node = 1;
  std::map<std::string, int> auth{{"nvml", 100}, {"lspci", 30}};
  std::vector<IgnoredDevice> ign;
  auto g = merge_reports({rep("lspci", {b}), rep("nvml", {a})}, auth, &ign, "T");
  ASSERT_EQ(g.size(), 1u);
  EXPECT_EQ(g[0].f.model, "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(g[0].f.vram_total_mb, 81559);
  EXPECT_EQ(g[0].f.kernel_driver, "nvidia");
  EXPECT_EQ(g[0].f.numa_node, 1);
  EXPECT_EQ(g[0].detection_sources, (std::vector<std::string>{"nvml", "lspci"}));
  // Per field, the source whose value won: the more authoritative one where both had one.
  EXPECT_EQ(g[0].field_sources.at("model"), "nvml");
  EXPECT_EQ(g[0].field_sources.at("vram_total_mb"), "nvml");
  EXPECT_EQ(g[0].field_sources.at("uuid"), "nvml");
  EXPECT_EQ(g[0].field_sources.at("device_id"), "nvml");
  EXPECT_EQ(g[0].field_sources.at("kernel_driver"), "lspci");
  EXPECT_EQ(g[0].field_sources.at("numa_node"), "lspci");
  EXPECT_FALSE(g[0].field_sources.count("power_limit_w")) << "no value, no source";
  EXPECT_EQ(g[0].detection_timestamp, "T");
  bool noted = false;
  for (auto& n : g[0].notes) noted |= n.find("disagree on total VRAM") != std::string::npos;
  EXPECT_TRUE(noted);
}

bool any_note(const GpuSpec& s, const std::string& needle) {
  return std::any_of(s.notes.begin(), s.notes.end(),
                     [&](const std::string& n) { return n.find(needle) != std::string::npos; });
}

// Issue 13: "Graphics Device" (a driver older than the card) and "0x1002" (old ROCm's card
// series) are no names: a real name from a weaker source wins; else the id tables, with a note.
TEST(Merge, PlaceholderNamesFallBack) {
  auto rocm = obs("0000:07:00.0", "amd", "0x1002", 12272);
  rocm.f.pci_vendor_id = 0x1002;
  rocm.f.pci_device_id = 0x73df;
  auto lspci = obs("0000:07:00.0", "amd", "Navi 22 [Radeon RX 6700/6700 XT / 6800M]");
  std::map<std::string, int> auth{{"rocm-smi", 90}, {"lspci", 30}};
  auto g = merge_reports({rep("rocm-smi", {rocm}), rep("lspci", {lspci})}, auth, nullptr, "T");
  ASSERT_EQ(g.size(), 1u);
  EXPECT_EQ(g[0].f.model, "Navi 22 [Radeon RX 6700/6700 XT / 6800M]");
  EXPECT_EQ(g[0].field_sources.at("model"), "lspci");
  EXPECT_TRUE(any_note(g[0], "rocm-smi reports the placeholder name '0x1002'"));

  // Only a placeholder: the PCI id's name from the tables of this machine, or a note.
  auto xe = obs("0000:03:00.0", "intel", "Graphics Device");
  xe.f.pci_vendor_id = 0x8086;
  xe.f.pci_device_id = 0x56a5;
  g = merge_reports({rep("sysfs", {xe})}, {{"sysfs", 70}}, nullptr, "T");
  ASSERT_EQ(g.size(), 1u);
  auto name = pci_device_name(0x8086, 0x56a5);
  EXPECT_EQ(g[0].f.model, name);
  EXPECT_NE(g[0].f.model, "Graphics Device");
  EXPECT_TRUE(any_note(g[0], "sysfs reports the placeholder name 'Graphics Device'"));
  if (name) {
    EXPECT_EQ(g[0].field_sources.at("model"), "pci.ids");
  }

  // An id no table knows: a note instead of a bare null.
  auto unknown = obs("0000:04:00.0", "amd", "0x1002");
  unknown.f.pci_vendor_id = 0x1002;
  unknown.f.pci_device_id = 0xfffe;
  g = merge_reports({rep("rocm-smi", {unknown})}, {{"rocm-smi", 90}}, nullptr, "T");
  ASSERT_EQ(g.size(), 1u);
  EXPECT_FALSE(g[0].f.model);
  EXPECT_FALSE(g[0].field_sources.count("model"));
  EXPECT_TRUE(any_note(g[0], "1002:fffe is in neither amdgpu.ids nor pci.ids"));

  EXPECT_TRUE(is_placeholder_product_name("Graphics Device"));
  EXPECT_TRUE(is_placeholder_product_name(" 0x1002 "));
  EXPECT_TRUE(is_placeholder_product_name("Intel(R) Graphics [0x020a]"));
  EXPECT_TRUE(is_placeholder_product_name("Device 744c"));
  EXPECT_FALSE(is_placeholder_product_name("AMD Radeon Graphics"));  // a real APU name
  EXPECT_FALSE(is_placeholder_product_name("Intel(R) Arc(TM) A380 Graphics"));
  EXPECT_FALSE(is_placeholder_product_name("A100"));
}

// One GPU as two PCI functions of one slot: VGA controller (driver) at .0, a driverless
// "Display controller" at .1. One GPU; a second GPU on another slot stays separate.
TEST(Merge, DriverlessSiblingFunctionIsTheSameGpu) {
  auto f0 = obs("0000:03:00.0", "intel", "DG2 [Arc A380]");
  f0.f.kernel_driver = "i915";
  auto f1 = obs("0000:03:00.1", "intel", "Display controller");
  auto other = obs("0000:04:00.1", "intel", "DG2 [Arc A380]");
  auto lspci_f1 = obs("0000:03:00.1", "intel", "Device 56a6");
  std::map<std::string, int> auth{{"sysfs", 70}, {"lspci", 30}};
  auto g =
      merge_reports({rep("sysfs", {f0, f1, other}), rep("lspci", {lspci_f1})}, auth, nullptr, "T");
  ASSERT_EQ(g.size(), 2u);
  EXPECT_EQ(g[0].f.bus_id, "0000:03:00.0");
  EXPECT_EQ(g[0].f.model, "DG2 [Arc A380]");
  EXPECT_TRUE(any_note(g[0], "0000:03:00.1 (no driver) is another function of 0000:03:00.0"));
  EXPECT_EQ(g[1].f.bus_id, "0000:04:00.1");

  // Two functions that both have a driver are two GPUs.
  auto d1 = f1;
  d1.f.kernel_driver = "i915";
  g = merge_reports({rep("sysfs", {f0, d1})}, auth, nullptr, "T");
  EXPECT_EQ(g.size(), 2u);
}

// SPEC §9: a MIG instance another source enumerates (CUDA/OpenCL list them by MIG UUID, with
// the parent's bus id) is ignored with a reason; partitions from two sources merge per
// MIG device index.
TEST(Merge, MigInstanceIsNeverAGpuAndPartitionsMergePerDevice) {
  auto gpu = obs("0000:83:00.0", "nvidia", "NVIDIA H200", 143771);
  Partition p0;
  p0.gi_id = 2;
  p0.ci_id = 0;
  p0.dev_index = 0;
  p0.memory_total_mb = 71424;
  gpu.f.partitions = {p0};
  auto list = obs(std::nullopt, "nvidia", "NVIDIA H200");
  Partition l0;
  l0.dev_index = 0;
  l0.profile = "1c.3g.71gb";
  l0.uuid = "MIG-0";
  list.f.partitions = {l0};
  auto mig = obs("0000:83:00.0", "nvidia", "NVIDIA H200 MIG 3g.71gb");
  mig.f.uuid = "MIG-00000000-0000-0000-0000-000000000000";
  std::map<std::string, int> auth{{"nvidia-smi", 90}, {"nvidia-smi -L", 89}, {"cuda", 60}};
  std::vector<IgnoredDevice> ign;
  auto g =
      merge_reports({rep("cuda", {mig}), rep("nvidia-smi", {gpu}), rep("nvidia-smi -L", {list})},
                    auth, &ign, "T");
  ASSERT_EQ(g.size(), 1u);
  ASSERT_EQ(g[0].f.partitions.size(), 1u);
  EXPECT_EQ(g[0].f.partitions[0].gi_id, 2);
  EXPECT_EQ(g[0].f.partitions[0].profile, "1c.3g.71gb");
  EXPECT_EQ(g[0].f.partitions[0].uuid, "MIG-0");
  EXPECT_EQ(g[0].field_sources.at("partitions"), "nvidia-smi");
  ASSERT_EQ(ign.size(), 1u);
  EXPECT_EQ(ign[0].source, "cuda");
  EXPECT_NE(ign[0].reason.find("MIG instance"), std::string::npos) << ign[0].reason;
}

TEST(GpuSpecJson, PartitionsRoundTrip) {
  GpuSpec s;
  Partition p;
  p.gi_id = 9;
  p.ci_id = 0;
  p.profile = "1g.18gb";
  p.memory_total_mb = 16384;
  s.f.partitions = {p, Partition{}};
  s.f.compute_partition = "CPX";
  s.f.memory_partition = "NPS4";
  auto j = spec_to_json(s);
  EXPECT_EQ(j["partitions"][0]["profile"], "1g.18gb");
  EXPECT_TRUE(j["partitions"][1]["uuid"].is_null());
  EXPECT_EQ(j["compute_partition"], "CPX");
  auto back = spec_from_json(j);
  ASSERT_EQ(back.f.partitions.size(), 2u);
  EXPECT_EQ(back.f.partitions[0].memory_total_mb, 16384);
  EXPECT_EQ(back.f.memory_partition, "NPS4");
  j["partitions"] = 3;
  EXPECT_THROW(spec_from_json(j), std::runtime_error);
  EXPECT_TRUE(spec_to_json(GpuSpec{})["partitions"].is_array());
}

TEST(Merge, UuidThenVendorOrderAndMixedVendors) {
  auto n1 = obs("0000:01:00.0", "nvidia", "RTX A");
  n1.f.uuid = "GPU-1111";
  auto n2 = obs("0000:02:00.0", "nvidia", "RTX B");
  auto amd = obs("0000:03:00.0", "amd", "MI100");
  auto by_uuid = obs(std::nullopt, "nvidia", "from nvml without bus");
  by_uuid.f.uuid = "gpu-1111";
  by_uuid.f.cuda_version = "12.4";
  auto gl = obs(std::nullopt, "amd", "AMD gl renderer");
  gl.f.opengl_version = "4.6";
  auto vk1 = obs(std::nullopt, "nvidia", "vk nvidia 1");
  vk1.f.vulkan_version = "1.3";
  auto vk2 = obs(std::nullopt, "nvidia", "vk nvidia 2");
  vk2.f.vulkan_version = "1.2";
  std::map<std::string, int> auth{{"lspci", 30}, {"x", 90}, {"glxinfo", 45}, {"vulkaninfo", 50}};
  auto g = merge_reports({rep("lspci", {n1, n2, amd}), rep("x", {by_uuid}), rep("glxinfo", {gl}),
                          rep("vulkaninfo", {vk1, vk2})},
                         auth, nullptr, "T");
  ASSERT_EQ(g.size(), 3u);
  EXPECT_EQ(g[0].f.cuda_version, "12.4");
  EXPECT_EQ(g[0].f.vulkan_version, "1.3");
  EXPECT_EQ(g[1].f.vulkan_version, "1.2");
  EXPECT_EQ(g[2].f.opengl_version, "4.6");
  EXPECT_EQ(g[2].f.vendor, "amd");
  for (int i = 0; i < 3; ++i) EXPECT_EQ(g[static_cast<size_t>(i)].index, i);
}

TEST(Merge, SoftwareDevicesAreIgnoredWithReasons) {
  Observation llvm = obs(std::nullopt, "unknown", "llvmpipe (LLVM 15.0.6, 256 bits)");
  Observation pocl = obs(std::nullopt, "intel", "cpu");
  pocl.software_reason = "OpenCL CPU device (PoCL)";
  Observation virtio = obs("0000:00:01.0", "unknown", "Virtio 1.0 GPU");
  virtio.f.pci_vendor_id = 0x1af4;
  Observation aspeed = obs("0000:02:00.0", "unknown", "ASPEED Graphics Family");
  Observation es1000 = obs("0000:04:04.0", "amd", "ES1000");
  Observation real = obs("0000:65:00.0", "nvidia", "NVIDIA A40");
  std::vector<IgnoredDevice> ign;
  auto g = merge_reports({rep("a", {llvm, pocl, virtio, aspeed, es1000, real})}, {}, &ign, "T");
  ASSERT_EQ(g.size(), 1u);
  EXPECT_EQ(g[0].f.model, "NVIDIA A40");
  ASSERT_EQ(ign.size(), 5u);
  for (auto& i : ign) EXPECT_FALSE(i.reason.empty()) << i.name;
}

TEST(Merge, MergedRecordCanRevealAVirtualAdapter) {
  // lshw names it vaguely; sysfs knows the driver is bochs: the merged record is virtual.
  Observation a = obs("0000:00:02.0", "unknown", "VGA compatible controller");
  Observation b;
  b.f.bus_id = "0000:00:02.0";
  b.f.kernel_driver = "bochs-drm";
  std::vector<IgnoredDevice> ign;
  auto g = merge_reports({rep("lshw", {a}), rep("sysfs", {b})}, {{"sysfs", 70}, {"lshw", 25}}, &ign,
                         "T");
  EXPECT_TRUE(g.empty());
  ASSERT_EQ(ign.size(), 1u);
  EXPECT_NE(ign[0].reason.find("Bochs"), std::string::npos);
  // And when only the merged fields reveal it (vendor id from one source, name from another).
  Observation c = obs("0000:00:03.0", "unknown", "Display controller");
  Observation d;
  d.f.bus_id = "0000:00:03.0";
  d.f.model = "Device 1111";
  std::vector<IgnoredDevice> ign2;
  Observation e;
  e.f.bus_id = "0000:00:03.0";
  e.f.numa_node = 0;
  auto g2 = merge_reports({rep("lshw", {c}), rep("lspci", {d}), rep("sysfs", {e})}, {}, &ign2, "T");
  EXPECT_EQ(g2.size(), 1u);
}

TEST(Software, Rules) {
  Observation o;
  EXPECT_FALSE(software_reason(o));
  o.f.model = "SwiftShader Device (Subzero)";
  EXPECT_TRUE(software_reason(o));
  o.f.model = "Matrox Electronics Systems Ltd. G200eR2";
  EXPECT_TRUE(software_reason(o));
  o.f.model = "NVIDIA GeForce RTX 4090";
  EXPECT_FALSE(software_reason(o));
  o.f.kernel_driver = "mgag200";
  EXPECT_TRUE(software_reason(o));
  o = Observation{};
  o.f.model = "cpu-skylake-avx512-Intel(R) Xeon(R) Platinum 8480+";
  EXPECT_NE(software_reason(o)->find("PoCL"), std::string::npos);
  Observation v;
  v.f.pci_vendor_id = 0x1234;
  EXPECT_TRUE(software_reason(v));
}

// SPEC §9: with an AMD GPU runtime-suspended and an NVIDIA one awake, the sources that would
// wake the AMD one (rocm-smi, and lspci, which reads every device's config space) do not run;
// NVML, which touches only NVIDIA GPUs, does. A replay touches no device and runs everything.
struct PowerTree {
  test::TempDir tmp;
  PowerTree(const std::string& amd_status, const std::string& nvidia_status) {
    auto card = [&](const std::string& n, const std::string& id, const std::string& bus,
                    const std::string& status) {
      std::string dev = tmp.path() + "/class/drm/" + n + "/device";
      test::write_file(dev + "/uevent",
                       "PCI_CLASS=30000\nPCI_ID=" + id + "\nPCI_SLOT_NAME=" + bus + "\n");
      test::write_file(dev + "/power/runtime_status", status + "\n");
    };
    card("card0", "1002:687F", "0000:0b:00.0", amd_status);
    card("card1", "10DE:2330", "0000:01:00.0", nvidia_status);
  }
  DetectEnv env() {
    DetectEnv e;
    e.fs = std::make_shared<RootedFs>(tmp.path());
    return e;
  }
};

std::vector<std::unique_ptr<Source>> waking_sources() {
  std::vector<std::unique_ptr<Source>> s;
  for (const char* n : {"nvml", "cuda", "nvidia-smi", "rocm-smi", "lspci", "sysfs"})
    s.push_back(std::make_unique<FakeSource>(n, 1, std::vector<Observation>{}));
  return s;
}

SourceStatus status_of(const DetectionResult& r, const std::string& name) {
  for (const auto& rep : r.reports)
    if (rep.source == name) return rep.status;
  ADD_FAILURE() << name << " has no report";
  return SourceStatus::failed;
}

TEST(DetectorPowerState, SourcesThatWouldWakeASuspendedGpuAreSkipped) {
  PowerTree t("suspended", "active");
  auto r = run_detection(waking_sources(), t.env(), {});
  EXPECT_EQ(status_of(r, "rocm-smi"), SourceStatus::skipped);
  EXPECT_EQ(status_of(r, "lspci"), SourceStatus::skipped);
  EXPECT_EQ(status_of(r, "nvml"), SourceStatus::no_devices);
  EXPECT_EQ(status_of(r, "nvidia-smi"), SourceStatus::no_devices);
  EXPECT_EQ(status_of(r, "sysfs"), SourceStatus::no_devices);
  for (const auto& rep : r.reports)
    if (rep.source == "lspci") {
      ASSERT_EQ(rep.notes.size(), 1u);
      EXPECT_NE(rep.notes[0].find("0000:0b:00.0 is runtime-suspended"), std::string::npos)
          << rep.notes[0];
    }
}

TEST(DetectorPowerState, EverySuspendedNvidiaGpuSkipsNvmlAndCuda) {
  PowerTree t("active", "suspending");
  auto r = run_detection(waking_sources(), t.env(), {});
  EXPECT_EQ(status_of(r, "nvml"), SourceStatus::skipped);
  EXPECT_EQ(status_of(r, "cuda"), SourceStatus::skipped);
  EXPECT_EQ(status_of(r, "nvidia-smi"), SourceStatus::skipped);
  EXPECT_EQ(status_of(r, "rocm-smi"), SourceStatus::no_devices);
}

TEST(DetectorPowerState, AllAwakeOrReplayRunsEverySource) {
  PowerTree awake("active", "active");
  auto r = run_detection(waking_sources(), awake.env(), {});
  for (const auto& rep : r.reports) EXPECT_EQ(rep.status, SourceStatus::no_devices) << rep.source;
  PowerTree asleep("suspended", "suspended");
  DetectOptions o;
  o.replay_dir = asleep.tmp.path();
  auto rr = run_detection(waking_sources(), asleep.env(), o);
  for (const auto& rep : rr.reports) EXPECT_EQ(rep.status, SourceStatus::no_devices) << rep.source;
}

}  // namespace
}  // namespace grey
