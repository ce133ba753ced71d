// Device health (telemetry/health.h): XID events from an NVML event set on the watcher's own
// thread (fake_nvml.c's FAKE_NVML_XIDS), ECC/retired pages/remapped rows (FAKE_NVML_ECC,
// FAKE_NVML_RETIRED, FAKE_NVML_REMAP), AMD RAS counts from a sysfs tree, and which XIDs are
// application errors.
#include "telemetry/health.h"

#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "test_util.h"

#ifndef GREY_FAKE_LIB_DIR
#error "GREY_FAKE_LIB_DIR must name the directory holding fake_nvml.so"
#endif

namespace grey {
namespace {

const std::string kFake = GREY_FAKE_LIB_DIR "/fake_nvml.so";

class NvmlHealthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* v : {"FAKE_NVML_GPUS", "FAKE_NVML_XIDS", "FAKE_NVML_ECC", "FAKE_NVML_RETIRED",
                          "FAKE_NVML_REMAP", "FAKE_NVML_SCRIPT", "FAKE_NVML_HANG"})
      unsetenv(v);
    setenv("GREY_NVML_LIBRARY", kFake.c_str(), 1);
    LoadResult lr;
    api_ = nvml::Api::load(loader_, &lr);
    ASSERT_TRUE(api_) << lr.error;
    void* h = ::dlopen(kFake.c_str(), RTLD_NOW);
    ASSERT_NE(h, nullptr);
    reinterpret_cast<void (*)()>(::dlsym(h, "fake_nvml_reset"))();
    ASSERT_EQ(api_->init(), nvml::NVML_SUCCESS);
  }
  void TearDown() override { unsetenv("GREY_NVML_LIBRARY"); }
  nvml::nvmlDevice_t dev(unsigned i) {
    nvml::nvmlDevice_t d = nullptr;
    EXPECT_EQ(api_->handle_by_index(i, &d), nvml::NVML_SUCCESS);
    return d;
  }
  DlLoader loader_;
  std::unique_ptr<nvml::Api> api_;
};

TEST(Xid, ApplicationErrorsAreTheDocumentedSix) {
  for (unsigned long long x : {13ULL, 31ULL, 43ULL, 45ULL, 68ULL, 109ULL})
    EXPECT_TRUE(xid_is_application_error(x)) << x;
  for (unsigned long long x : {0ULL, 48ULL, 63ULL, 64ULL, 74ULL, 79ULL, 92ULL, 94ULL, 95ULL})
    EXPECT_FALSE(xid_is_application_error(x)) << x;
}

TEST(Xid, ApplicationXidsDoNotMarkTheDeviceUnhealthy) {
  std::vector<XidEvent> app = {{0, 13, true}, {0, 31, true}, {0, 43, true}};
  EXPECT_TRUE(judge_health(app, nullptr, nullptr).healthy);
  app.push_back({0, 79, false});  // fallen off the bus
  HealthVerdict v = judge_health(app, nullptr, nullptr);
  EXPECT_FALSE(v.healthy);
  ASSERT_EQ(v.reasons.size(), 1u);
  EXPECT_EQ(v.reasons[0], "XID 79");
}

TEST_F(NvmlHealthTest, TheWatcherDeliversScriptedXidsFromItsOwnThreadAndStops) {
  setenv("FAKE_NVML_XIDS", "0:79,1:13,0:48", 1);
  XidWatcher w(*api_, {{0, dev(0)}, {1, dev(1)}}, 50);
  ASSERT_TRUE(w.start()) << (w.notes().empty() ? "" : w.notes()[0]);
  std::vector<XidEvent> got;
  while (got.size() < 3) {  // drain never blocks; the watcher's thread fills it
    auto more = w.drain();
    got.insert(got.end(), more.begin(), more.end());
  }
  w.stop();
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].gpu, 0);
  EXPECT_EQ(got[0].xid, 79u);
  EXPECT_FALSE(got[0].application);
  EXPECT_EQ(got[1].gpu, 1);
  EXPECT_EQ(got[1].xid, 13u);
  EXPECT_TRUE(got[1].application);
  EXPECT_EQ(got[2].xid, 48u);
  EXPECT_TRUE(w.notes().empty());
  EXPECT_TRUE(w.drain().empty());
  w.stop();  // idempotent
}

TEST_F(NvmlHealthTest, EccRetiredPagesAndRemappedRowsAreRead) {
  setenv("FAKE_NVML_ECC", "5,2,40,3", 1);
  setenv("FAKE_NVML_RETIRED", "4,1,1", 1);
  setenv("FAKE_NVML_REMAP", "6,1,0,1", 1);
  NvmlEcc e = read_nvml_ecc(*api_, dev(0));
  EXPECT_EQ(e.volatile_corrected, 5u);
  EXPECT_EQ(e.volatile_uncorrected, 2u);
  EXPECT_EQ(e.aggregate_corrected, 40u);
  EXPECT_EQ(e.aggregate_uncorrected, 3u);
  EXPECT_EQ(e.retired_pages_sbe, 4u);
  EXPECT_EQ(e.retired_pages_dbe, 1u);
  EXPECT_EQ(e.retired_pages_pending, true);
  EXPECT_EQ(e.remapped_rows_corrected, 6u);
  EXPECT_EQ(e.remapped_rows_uncorrected, 1u);
  EXPECT_EQ(e.remap_pending, false);
  EXPECT_EQ(e.remap_failure, true);
  HealthVerdict v = judge_health({}, &e, nullptr);
  EXPECT_FALSE(v.healthy);
  EXPECT_EQ(v.reasons.size(), 2u);

  NvmlEcc clean = read_nvml_ecc(*api_, dev(1));
  EXPECT_EQ(clean.volatile_uncorrected, 0u);
  EXPECT_TRUE(judge_health({}, &clean, nullptr).healthy);
}

TEST_F(NvmlHealthTest, WithoutEccSupportEverythingStaysUnknownWithoutNotes) {
  NvmlEcc e = read_nvml_ecc(*api_, dev(0));
  EXPECT_FALSE(e.volatile_corrected);
  EXPECT_FALSE(e.retired_pages_sbe);
  EXPECT_FALSE(e.remapped_rows_corrected);
  EXPECT_TRUE(e.notes.empty());
  EXPECT_TRUE(judge_health({}, &e, nullptr).healthy);
}

// Everything NVML on the source's own thread; poll() only copies what that thread found.
TEST_F(NvmlHealthTest, TheNvmlSourceDeliversXidsAndCountersWithoutCallingNvmlInPoll) {
  setenv("FAKE_NVML_XIDS", "1:48", 1);
  setenv("FAKE_NVML_ECC", "5,2,40,3", 1);
  NvmlHealth h(std::make_shared<DlLoader>(), {{0, "0000:1b:00.0"}, {1, "0000:41:00.0"}}, 20, 20);
  HealthPoll got;
  while ((got.xids.empty() || got.counters.size() < 2) && h.notes().empty()) {
    HealthPoll p = h.poll();
    got.xids.insert(got.xids.end(), p.xids.begin(), p.xids.end());
    got.counters = p.counters;
  }
  ASSERT_EQ(got.xids.size(), 1u);
  EXPECT_EQ(got.xids[0].gpu, 1);
  EXPECT_EQ(got.xids[0].xid, 48u);
  EXPECT_EQ(got.counters.at(0).at("volatile_uncorrected"), 2u);
  EXPECT_EQ(got.counters.at(1).at("volatile_uncorrected"), 0u);
  EXPECT_TRUE(h.notes().empty()) << h.notes()[0];
}

TEST(AmdRas, ParsesTheKernelsFormat) {
  auto c = parse_ras_count("ue: 3\nce: 17\n");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->ue, 3u);
  EXPECT_EQ(c->ce, 17u);
  c = parse_ras_count("ce:1\n  ue :  0  \n");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->ce, 1u);
  EXPECT_FALSE(parse_ras_count("garbage"));
  EXPECT_FALSE(parse_ras_count(""));
  EXPECT_FALSE(parse_ras_count("ue: -4\n"));
}

TEST(AmdRas, SumsEveryBlockOfAFakeSysfsTree) {
  test::TempDir t;
  std::string ras = t / "sys/class/drm/card0/device/ras";
  std::filesystem::create_directories(ras);
  test::write_file(ras + "/umc_err_count", "ue: 2\nce: 5\n");
  test::write_file(ras + "/gfx_err_count", "ue: 0\nce: 1\n");
  test::write_file(ras + "/features", "feature mask: 0x3fff\n");
  test::write_file(ras + "/sdma_err_count", "not counts");
  RootedFs fs(t / "sys", t / "proc");
  AmdRas r = read_amd_ras(fs, "/sys/class/drm/card0/device");
  EXPECT_TRUE(r.present);
  EXPECT_EQ(r.total.ue, 2u);
  EXPECT_EQ(r.total.ce, 6u);
  ASSERT_EQ(r.blocks.size(), 2u);
  EXPECT_EQ(r.blocks.at("umc").ue, 2u);
  ASSERT_EQ(r.notes.size(), 1u);
  EXPECT_NE(r.notes[0].find("sdma_err_count"), std::string::npos);
  HealthVerdict v = judge_health({}, nullptr, &r);
  EXPECT_FALSE(v.healthy);
  EXPECT_EQ(v.reasons[0], "2 uncorrectable RAS errors");

  // A consumer card without RAS: nothing present, healthy.
  AmdRas none = read_amd_ras(fs, "/sys/class/drm/card9/device");
  EXPECT_FALSE(none.present);
  EXPECT_TRUE(judge_health({}, nullptr, &none).healthy);
}

}  // namespace
}  // namespace grey
