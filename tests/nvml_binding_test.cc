// The one NVML binding (bindings/nvml.h) against the fake NVML libraries built in the test
// tree: the newest symbol of each versioned call, the fallback to the unversioned symbols of an
// older library (fake_nvml_legacy.so), missing symbols, the one error naming; and its three
// users (detection, telemetry, control) on the older library.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "bindings/nvml.h"
#include "enforce/device_control.h"
#include "sources/nvml_source.h"
#include "telemetry/telemetry.h"
#include "test_util.h"
#include "util/strings.h"

#ifndef GREY_FAKE_LIB_DIR
#error "GREY_FAKE_LIB_DIR must name the directory holding fake_nvml.so"
#endif

namespace grey {
namespace {

using test::TempDir;
using test::write_file;

const std::string kFake = GREY_FAKE_LIB_DIR "/fake_nvml.so";
const std::string kLegacy = GREY_FAKE_LIB_DIR "/fake_nvml_legacy.so";

std::string joined(const std::vector<std::string>& notes) {
  std::string s;
  for (const auto& n : notes) s += "  [" + n + "]\n";
  return s;
}

bool has(const std::vector<std::string>& notes, const std::string& text) {
  for (const auto& n : notes)
    if (n == text) return true;
  return false;
}

class NvmlBinding : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* v :
         {"FAKE_NVML_GPUS", "FAKE_NVML_INIT_ERROR", "FAKE_NVML_HANG_INIT", "FAKE_NVML_HANG",
          "FAKE_NVML_CRASH", "FAKE_NVML_LOST_GPU", "FAKE_NVML_SCRIPT", "FAKE_NVML_RECORD",
          "FAKE_NVML_DENY_SETS", "FAKE_NVML_UNSUPPORTED_TEMP_THRESHOLDS", "FAKE_NVML_NO_MEMORY_V2"})
      unsetenv(v);
  }
  void TearDown() override { unsetenv("GREY_NVML_LIBRARY"); }

  std::unique_ptr<nvml::Api> load(const std::string& path, LoadResult* failure = nullptr) {
    setenv("GREY_NVML_LIBRARY", path.c_str(), 1);
    LoadResult lr;
    auto api = nvml::Api::load(loader_, &lr);
    if (failure) *failure = std::move(lr);
    return api;
  }

  DlLoader loader_;
};

TEST_F(NvmlBinding, ResolvesTheNewestVersionOfEachSymbol) {
  auto api = load(kFake);
  ASSERT_TRUE(api);
  EXPECT_EQ(api->path(), kFake);
  EXPECT_EQ(api->init.found, "nvmlInit_v2");
  EXPECT_EQ(api->device_count.found, "nvmlDeviceGetCount_v2");
  EXPECT_EQ(api->handle_by_index.found, "nvmlDeviceGetHandleByIndex_v2");
  EXPECT_EQ(api->pci_info.found, "nvmlDeviceGetPciInfo_v3");
  EXPECT_FALSE(api->pci_info_is_legacy());
  EXPECT_EQ(api->compute_processes.found, "nvmlDeviceGetComputeRunningProcesses_v3");
  EXPECT_EQ(nvml::Api::process_info_layout(api->compute_processes), 2);
  EXPECT_TRUE(api->memory_info_v2);
  EXPECT_TRUE(api->error_string);
  EXPECT_TRUE(api->set_power_limit);
  EXPECT_TRUE(api->set_persistence_mode);
  // The fake exports only the unversioned CUDA driver version: the fallback from _v2.
  EXPECT_EQ(api->cuda_driver_version.found, "nvmlSystemGetCudaDriverVersion");
  // Which names were tried, newest first.
  ASSERT_EQ(api->pci_info.names.size(), 3u);
  EXPECT_STREQ(api->pci_info.names[0], "nvmlDeviceGetPciInfo_v3");
  EXPECT_STREQ(api->pci_info.names[2], "nvmlDeviceGetPciInfo");
}

TEST_F(NvmlBinding, FallsBackToTheUnversionedSymbolsOfAnOlderLibrary) {
  auto api = load(kLegacy);
  ASSERT_TRUE(api);
  EXPECT_EQ(api->init.found, "nvmlInit");
  EXPECT_EQ(api->device_count.found, "nvmlDeviceGetCount");
  EXPECT_EQ(api->handle_by_index.found, "nvmlDeviceGetHandleByIndex");
  EXPECT_EQ(api->pci_info.found, "nvmlDeviceGetPciInfo");
  EXPECT_TRUE(api->pci_info_is_legacy());
  EXPECT_EQ(api->compute_processes.found, "nvmlDeviceGetComputeRunningProcesses");
  EXPECT_EQ(nvml::Api::process_info_layout(api->compute_processes), 1);
  EXPECT_EQ(nvml::Api::process_info_layout(api->graphics_processes), 1);
  // The fallbacks are the library's own functions: they answer.
  ASSERT_EQ(api->init(), nvml::NVML_SUCCESS);
  unsigned n = 0;
  ASSERT_EQ(api->device_count(&n), nvml::NVML_SUCCESS);
  EXPECT_EQ(n, 2u);
  nvml::nvmlDevice_t d = nullptr;
  EXPECT_EQ(api->handle_by_index(1, &d), nvml::NVML_SUCCESS);
  EXPECT_NE(d, nullptr);
  EXPECT_EQ(api->shutdown(), nvml::NVML_SUCCESS);
}

TEST_F(NvmlBinding, AMissingSymbolIsNullAndItsNoteSaysWhatStaysUnknown) {
  auto api = load(kLegacy);
  ASSERT_TRUE(api);
  EXPECT_FALSE(api->power_usage);
  EXPECT_EQ(api->power_usage.found, "");
  EXPECT_FALSE(api->error_string);
  EXPECT_FALSE(api->memory_info_v2);
  EXPECT_TRUE(api->memory_info);
  EXPECT_EQ(api->missing_note(api->power_usage, "power draw"),
            "nvmlDeviceGetPowerUsage not found in " + kLegacy + "; power draw unknown");
  std::vector<std::string> notes;
  EXPECT_TRUE(api->require(api->init, "everything", &notes));
  EXPECT_TRUE(notes.empty());
  EXPECT_FALSE(api->require(api->utilization, "utilization", &notes));
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_EQ(notes[0],
            "nvmlDeviceGetUtilizationRates not found in " + kLegacy + "; utilization unknown");

  // A library that is not NVML at all: every entry is null; a versioned call's note lists
  // every name that was tried.
  auto other = load(GREY_FAKE_LIB_DIR "/fake_cuda.so");
  ASSERT_TRUE(other);
  EXPECT_FALSE(other->init);
  EXPECT_FALSE(other->device_count);
  EXPECT_EQ(other->missing_note(other->init, "everything"),
            "nvmlInit_v2/nvmlInit not found in " GREY_FAKE_LIB_DIR
            "/fake_cuda.so; everything "
            "unknown");
}

TEST_F(NvmlBinding, ALibraryThatDoesNotLoadGivesThePathAndWhy) {
  LoadResult lr;
  EXPECT_FALSE(load("/nonexistent/libnvidia-ml.so.1", &lr));
  EXPECT_EQ(lr.path, "/nonexistent/libnvidia-ml.so.1");
  EXPECT_FALSE(lr.error.empty());
  EXPECT_FALSE(lr.lib);
}

TEST_F(NvmlBinding, ErrorNamingOurNameTheNumberAndTheLibrarysText) {
  EXPECT_STREQ(nvml::return_name(0), "NVML_SUCCESS");
  EXPECT_STREQ(nvml::return_name(9), "NVML_ERROR_DRIVER_NOT_LOADED");
  EXPECT_STREQ(nvml::return_name(29), "NVML_ERROR_INVALID_STATE");
  EXPECT_STREQ(nvml::return_name(999), "NVML_ERROR_UNKNOWN");
  EXPECT_EQ(nvml::return_name(30), nullptr);
  EXPECT_EQ(nvml::return_name(-1), nullptr);

  auto api = load(kFake);
  ASSERT_TRUE(api);
  EXPECT_EQ(api->error(9), "NVML_ERROR_DRIVER_NOT_LOADED (9): Driver Not Loaded");
  EXPECT_EQ(api->failure("nvmlInit_v2", 9),
            "nvmlInit_v2 failed: NVML_ERROR_DRIVER_NOT_LOADED (9): Driver Not Loaded");
  // An undocumented value: our words, the number and the library's text.
  EXPECT_EQ(api->error(1234), "unknown NVML error (1234): Unknown Error");
  // A library text that only repeats our name, or says nothing, is left out.
  nvml::nvmlErrorString_fn repeats = [](nvml::nvmlReturn_t) { return "NVML_ERROR_NO_PERMISSION"; };
  nvml::nvmlErrorString_fn empty = [](nvml::nvmlReturn_t) { return ""; };
  nvml::nvmlErrorString_fn null = [](nvml::nvmlReturn_t) -> const char* { return nullptr; };
  EXPECT_EQ(nvml::error_text(4, repeats), "NVML_ERROR_NO_PERMISSION (4)");
  EXPECT_EQ(nvml::error_text(4, empty), "NVML_ERROR_NO_PERMISSION (4)");
  EXPECT_EQ(nvml::error_text(4, null), "NVML_ERROR_NO_PERMISSION (4)");
  // No nvmlErrorString (an older library): our name alone.
  auto legacy = load(kLegacy);
  ASSERT_TRUE(legacy);
  EXPECT_EQ(legacy->error(4), "NVML_ERROR_NO_PERMISSION (4)");
  EXPECT_EQ(legacy->failure("nvmlDeviceGetCount", 15),
            "nvmlDeviceGetCount failed: NVML_ERROR_GPU_IS_LOST (15)");
  EXPECT_EQ(nvml::error_text(1234, nullptr), "unknown NVML error (1234)");
  EXPECT_EQ(nvml::describe_failure("x", 3, nullptr), "x failed: NVML_ERROR_NOT_SUPPORTED (3)");
}

TEST_F(NvmlBinding, FromBufferStopsAtTheNulOrTheEndAndTrims) {
  const char a[8] = {' ', 'a', 'b', ' ', '\0', 'x', 'y', 'z'};
  EXPECT_EQ(nvml::from_buffer(a, sizeof a), "ab");
  const char b[3] = {'a', 'b', 'c'};  // no NUL: the buffer's end
  EXPECT_EQ(nvml::from_buffer(b, sizeof b), "abc");
}

// ---- The three users on the older library ---------------------------------------------------

TEST_F(NvmlBinding, DetectionReadsAnOlderLibrary) {
  setenv("GREY_NVML_LIBRARY", kLegacy.c_str(), 1);
  setenv("FAKE_NVML_LOST_GPU", "1", 1);
  setenv("FAKE_NVML_GPUS", "3", 1);
  SourceContext ctx;
  ctx.loader = &loader_;
  SourceReport r = make_nvml_source()->collect(ctx);
  EXPECT_EQ(r.status, SourceStatus::ok) << joined(r.notes);
  ASSERT_EQ(r.devices.size(), 2u) << joined(r.notes);
  // The unversioned nvmlDeviceGetPciInfo fills the older struct: the bus id is its legacy
  // field (the fake writes a wrong one where the newer struct's busId is).
  EXPECT_EQ(r.devices[0].f.bus_id, "0000:1b:00.0");
  EXPECT_EQ(r.devices[1].f.bus_id, "0000:42:00.0");
  EXPECT_EQ(r.devices[0].f.model, "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(r.devices[0].f.vram_used_mb, 329);  // v1 "used": with the 64 MiB reserved
  EXPECT_FALSE(r.devices[0].f.power_draw_w);
  EXPECT_TRUE(
      has(r.notes, "nvmlDeviceGetPowerUsage not found in " + kLegacy + "; power draw unknown"))
      << joined(r.notes);
  // Failures name the symbol that was called, in our words (no nvmlErrorString).
  EXPECT_TRUE(has(r.notes,
                  "nvmlDeviceGetHandleByIndex(1) failed: NVML_ERROR_GPU_IS_LOST (15); device 1 "
                  "skipped"))
      << joined(r.notes);
}

TEST_F(NvmlBinding, TelemetryReadsAnOlderLibrarysProcessLayout) {
  setenv("GREY_NVML_LIBRARY", kLegacy.c_str(), 1);
  TempDir t;
  std::string script = t / "script";
  write_file(script,
             "proc 0 0 4242 1024 trainer\n"
             "proc 0 0 4343 2048 server\n");
  setenv("FAKE_NVML_SCRIPT", script.c_str(), 1);
  NvmlTelemetry b(std::make_shared<DlLoader>(), std::make_shared<RootedFs>(t / "sys", t / "proc"));
  BackendSample s = b.sample(0);
  unsetenv("FAKE_NVML_SCRIPT");
  ASSERT_TRUE(s.available) << joined(s.notes);
  ASSERT_EQ(s.gpus.size(), 2u);
  EXPECT_EQ(s.gpus[0].bus_id, "0000:1b:00.0");
  EXPECT_EQ(s.gpus[1].bus_id, "0000:41:00.0");
  EXPECT_FALSE(s.gpus[0].power_w);
  EXPECT_EQ(s.gpus[0].power_limit_w, 700.0);
  EXPECT_TRUE(
      has(s.notes, "nvmlDeviceGetPowerUsage not found in " + kLegacy + "; power draw unknown"))
      << joined(s.notes);
  // nvmlProcessInfo_v1_t is 16 bytes: read with the v2 stride, the second process would be
  // garbage.
  ASSERT_EQ(s.processes.size(), 2u);
  EXPECT_EQ(s.processes[0].pid, 4242);
  EXPECT_EQ(s.processes[0].vram_mb, 1024);
  EXPECT_EQ(s.processes[0].command, "trainer");
  EXPECT_EQ(s.processes[1].pid, 4343);
  EXPECT_EQ(s.processes[1].vram_mb, 2048);
  EXPECT_EQ(s.processes[1].gpu_bus_id, "0000:1b:00.0");
}

TEST_F(NvmlBinding, ControlFindsAndSetsDevicesThroughAnOlderLibrary) {
  setenv("GREY_NVML_LIBRARY", kLegacy.c_str(), 1);
  DlLoader loader;
  NvmlControl c(loader);
  EXPECT_EQ(c.available(), "");
  EXPECT_EQ(c.device_count_error(), "");
  DeviceState s;
  s.bus_id = "0000:41:00.0";
  c.probe(s);  // by enumeration and the legacy PCI layout: no nvmlDeviceGetHandleByPciBusId
  EXPECT_TRUE(s.nvml) << joined(s.notes);
  EXPECT_EQ(s.power_limit_w, 400.0);
  EXPECT_EQ(s.power_min_w, 100.0);
  EXPECT_EQ(s.persistence, false);
  SettingRef ref{"0000:41:00.0", kSettingPowerLimit, kMechNvmlPowerLimit};
  EXPECT_EQ(c.write(ref, "300"), "");
  EXPECT_EQ(c.read(ref).value, "300");
  setenv("FAKE_NVML_DENY_SETS", "1", 1);
  EXPECT_EQ(c.write(ref, "250"),
            "nvmlDeviceSetPowerManagementLimit failed: NVML_ERROR_NO_PERMISSION (4)");
  unsetenv("FAKE_NVML_DENY_SETS");
  EXPECT_EQ(c.write(ref, "400"), "");
  DeviceState none;
  none.bus_id = "0000:99:00.0";  // where the fake's wrong busId points: not a device
  c.probe(none);
  EXPECT_FALSE(none.nvml);
  EXPECT_TRUE(has(none.notes, "NVML: NVML lists no device at 0000:99:00.0")) << joined(none.notes);
}

}  // namespace
}  // namespace grey
