// enforce/placement.h: matching plan entries to specs, the least-loaded choice of `run --gpu
// auto`, the variables that place a process, and the device targets of `apply`.
#include "enforce/placement.h"

#include <gtest/gtest.h>

namespace grey {
namespace {

GpuPlan gpu(int index, const std::string& bus, std::optional<std::string> uuid = std::nullopt) {
  GpuPlan p;
  p.index = index;
  p.device_id = bus;
  p.uuid = uuid;
  p.per_process_vram_cap_mb = 1000;
  return p;
}

GpuSpec spec(const std::string& bus, std::optional<int64_t> free_mb,
             const std::string& vendor = "nvidia") {
  GpuSpec s;
  s.f.bus_id = bus;
  s.f.vendor = vendor;
  s.f.vram_total_mb = 4000;
  s.f.vram_free_mb = free_mb;
  return s;
}

GpuSample sample(int index, std::optional<int64_t> total, std::optional<int64_t> used,
                 bool stale = false) {
  GpuSample s;
  s.index = index;
  s.vram_total_mb = total;
  s.vram_used_mb = used;
  s.stale = stale;
  return s;
}

Plan three_gpus() {
  Plan p;
  p.gpus = {gpu(0, "0000:01:00.0"), gpu(1, "0000:02:00.0", "GPU-1"), gpu(2, "0000:03:00.0")};
  return p;
}

TEST(Placement, SpecForMatchesBusIdOrUuid) {
  std::vector<GpuSpec> specs = {spec("0000:01:00.0", 1), spec("0000:09:00.0", 2)};
  specs[1].f.uuid = "GPU-1";
  Plan p = three_gpus();
  EXPECT_EQ(spec_for(specs, p.gpus[0]), &specs[0]);
  EXPECT_EQ(spec_for(specs, p.gpus[1]), &specs[1]);  // by UUID
  EXPECT_EQ(spec_for(specs, p.gpus[2]), nullptr);
  EXPECT_EQ(vram_total_for(specs, p.gpus[0]), 4000);
  EXPECT_FALSE(vram_total_for(specs, p.gpus[2]));
  EXPECT_EQ(plan_gpu_at(p, 2), &p.gpus[2]);
  EXPECT_EQ(plan_gpu_at(p, 7), nullptr);
}

TEST(Placement, MostFreeVramFromTheSample) {
  Plan p = three_gpus();
  TelemetrySnapshot snap;
  snap.gpus = {sample(0, 8000, 7000), sample(1, 8000, 2000), sample(2, 8000, 5000)};
  Placement w = place_least_loaded(p, snap, {});
  ASSERT_EQ(w.gpu, &p.gpus[1]);
  EXPECT_EQ(w.free_mb, 6000);
}

TEST(Placement, StaleOrPartialSamplesFallBackToTheSavedSpec) {
  Plan p = three_gpus();
  TelemetrySnapshot snap;
  // GPU 1 looks emptiest but its sample is stale; GPU 2 has no used figure.
  snap.gpus = {sample(0, 8000, 7000), sample(1, 8000, 0, true), sample(2, 8000, std::nullopt)};
  std::vector<GpuSpec> specs = {spec("0000:03:00.0", 2500)};
  Placement w = place_least_loaded(p, snap, specs);
  ASSERT_EQ(w.gpu, &p.gpus[2]);  // 2500 MiB free per the spec beats GPU 0's 1000
  EXPECT_EQ(w.free_mb, 2500);
}

TEST(Placement, NothingKnownPlacesOnTheFirstGpu) {
  Plan p = three_gpus();
  Placement w = place_least_loaded(p, TelemetrySnapshot{}, {});
  EXPECT_EQ(w.gpu, &p.gpus[0]);
  EXPECT_FALSE(w.free_mb);
  EXPECT_EQ(place_least_loaded(Plan{}, TelemetrySnapshot{}, {}).gpu, nullptr);
}

TEST(Placement, EnvironmentNamesTheGpuByUuidElseByPciOrder) {
  Plan p = three_gpus();
  std::vector<GpuSpec> specs = {spec("0000:02:00.0", 1)};
  auto by_uuid = placement_environment(p.gpus[1], specs);
  EXPECT_EQ(by_uuid.at("CUDA_VISIBLE_DEVICES"), "GPU-1");
  EXPECT_EQ(by_uuid.count("CUDA_DEVICE_ORDER"), 0u);
  EXPECT_EQ(by_uuid.at("GREY_GPU_INDEX"), "1");
  EXPECT_EQ(by_uuid.at("GREY_VRAM_CAP_MB"), "1000");
  EXPECT_EQ(by_uuid.at("XLA_PYTHON_CLIENT_MEM_FRACTION"), "0.25");  // 1000 of the spec's 4000
  auto by_index = placement_environment(p.gpus[2], specs);
  EXPECT_EQ(by_index.at("CUDA_VISIBLE_DEVICES"), "2");
  EXPECT_EQ(by_index.at("CUDA_DEVICE_ORDER"), "PCI_BUS_ID");
  EXPECT_EQ(by_index.count("XLA_PYTHON_CLIENT_MEM_FRACTION"), 0u);  // no spec, no total
}

TEST(Placement, DeviceTargetsFromPlanAndSpecs) {
  Plan p = three_gpus();
  p.gpus[0].power_limit_w = 250;
  p.gpus[2].device_id.reset();  // no bus id: nothing to control
  std::vector<GpuSpec> specs = {spec("0000:01:00.0", 1), spec("0000:02:00.0", 1, "amd")};
  specs[0].f.power_limit_min_w = 100;
  specs[0].f.power_limit_max_w = 300;
  specs[1].f.kernel_driver = "amdgpu";
  auto t = device_targets(p, specs);
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].index, 0);
  EXPECT_EQ(t[0].bus_id, "0000:01:00.0");
  EXPECT_EQ(t[0].vendor, "nvidia");
  EXPECT_TRUE(t[0].want_persistence);
  EXPECT_EQ(t[0].want_power_limit_w, 250);
  EXPECT_EQ(t[0].device_min_w, 100);
  EXPECT_EQ(t[0].device_max_w, 300);
  EXPECT_EQ(t[1].vendor, "amd");
  EXPECT_FALSE(t[1].want_persistence);
  EXPECT_EQ(t[1].kernel_driver, "amdgpu");
  EXPECT_EQ(t[1].uuid, "GPU-1");
  EXPECT_FALSE(t[1].want_power_limit_w);
  // A target without a spec is of unknown vendor.
  p.gpus[0].device_id = "0000:0f:00.0";
  EXPECT_EQ(device_targets(p, specs)[0].vendor, "unknown");
}

}  // namespace
}  // namespace grey
