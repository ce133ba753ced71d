// Library probes in a child process: the report crosses the pipe intact, and a probe that
// crashes, hangs or prints garbage becomes a precise note.
#include "detect/isolated_source.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace grey {
namespace {

using namespace std::chrono_literals;

class Named : public Source {
 public:
  std::string name() const override { return "nvml"; }
  int authority() const override { return 100; }
  SourceReport collect(SourceContext&) override {
    SourceReport r;
    r.source = "nvml";
    r.status = SourceStatus::skipped;
    r.notes.push_back("in-process");
    return r;
  }
};

TEST(IsolatedSource, ReportJsonRoundTrip) {
  SourceReport r;
  r.source = "opencl";
  r.status = SourceStatus::ok;
  r.what = "libOpenCL.so.1";
  r.notes = {"a note"};
  Observation o;
  o.f.model = "NVIDIA H100 80GB HBM3";
  o.f.bus_id = "0000:00:06.0";
  o.f.vram_total_mb = 81559;
  o.f.tool_index = 3;
  o.notes = {"n"};
  Observation cpu;
  cpu.f.model = "cpu-skylake";
  cpu.software_reason = "OpenCL CPU device (PoCL)";
  r.devices = {o, cpu};
  r.ignored.push_back({"opencl", "x", "y"});
  SourceReport back = report_from_json(report_to_json(r));
  EXPECT_EQ(back.source, "opencl");
  EXPECT_EQ(back.status, SourceStatus::ok);
  ASSERT_EQ(back.devices.size(), 2u);
  EXPECT_EQ(back.devices[0].f.vram_total_mb, 81559);
  EXPECT_EQ(back.devices[0].f.tool_index, 3);
  EXPECT_EQ(back.devices[0].notes, std::vector<std::string>{"n"});
  EXPECT_EQ(back.devices[1].software_reason, "OpenCL CPU device (PoCL)");
  EXPECT_EQ(back.ignored.at(0).reason, "y");
  EXPECT_THROW(
      report_from_json(nlohmann::json::parse(R"({"source":"x","status":"weird","devices":[]})")),
      std::exception);
}

struct Fixture {
  test::TempDir d;
  PosixRunner runner;
  SourceContext ctx;
  Fixture() {
    ctx.runner = &runner;
    ctx.timeout = 500ms;
  }
  SourceReport run_with(const std::string& body) {
    std::string exe = d / "probe";
    test::write_file(exe, "#!/bin/sh\n" + body + "\n", 0755);
    IsolatedSource s(std::make_unique<Named>(), exe);
    EXPECT_EQ(s.name(), "nvml");
    EXPECT_EQ(s.authority(), 100);
    return s.collect(ctx);
  }
};

TEST(IsolatedSource, ChildReportIsUsed) {
  Fixture f;
  auto r = f.run_with(
      R"(echo '{"source":"nvml","status":"ok","what":"lib","notes":[],"devices":[{"model":"GPU X","device_id":"0000:01:00.0"}]}')");
  EXPECT_EQ(r.status, SourceStatus::ok);
  ASSERT_EQ(r.devices.size(), 1u);
  EXPECT_EQ(r.devices[0].f.model, "GPU X");
}

TEST(IsolatedSource, CrashHangAndGarbage) {
  Fixture f;
  auto crash = f.run_with("kill -SEGV $$");
  EXPECT_EQ(crash.status, SourceStatus::failed);
  EXPECT_NE(crash.notes.at(0).find("signal"), std::string::npos) << crash.notes[0];
  auto hang = f.run_with("exec /bin/sleep 100");
  EXPECT_EQ(hang.status, SourceStatus::timed_out);
  EXPECT_NE(hang.notes.at(0).find("killed"), std::string::npos);
  auto junk = f.run_with("echo not json");
  EXPECT_EQ(junk.status, SourceStatus::failed);
  EXPECT_NE(junk.notes.at(0).find("no report"), std::string::npos);
}

TEST(IsolatedSource, ReplayRunsInProcess) {
  Fixture f;
  f.ctx.replay_dir = f.d.path();
  IsolatedSource s(std::make_unique<Named>(), "/nonexistent");
  auto r = s.collect(f.ctx);
  EXPECT_EQ(r.notes.at(0), "in-process");
}

TEST(IsolatedSource, LibrarySourcesByName) {
  EXPECT_TRUE(make_library_source("nvml"));
  EXPECT_TRUE(make_library_source("cuda"));
  EXPECT_TRUE(make_library_source("opencl"));
  EXPECT_FALSE(make_library_source("bogus"));
  std::ostringstream out;
  EXPECT_EQ(run_probe_child("bogus", out), 2);
  ::setenv("GREY_CUDA_LIBRARY", "/nonexistent/libcuda.so.1", 1);
  std::ostringstream cuda;
  EXPECT_EQ(run_probe_child("cuda", cuda), 0);
  auto rep = report_from_json(nlohmann::json::parse(cuda.str()));
  EXPECT_EQ(rep.status, SourceStatus::missing);
}

}  // namespace
}  // namespace grey
