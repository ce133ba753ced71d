// Node labels (SPEC §8, fleet/labels.h): the pure label rules, the NFD limits (character set,
// 63-character values, 64 KiB file), the atomic write that refuses a symlink, the daemon's
// keeper (rewrite on change only, removal), and `grey-gpu-opt labels` through the built binary
// on replay directories made of the real captures in tests/fixtures.
#include "fleet/labels.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "plan/plan_io.h"
#include "test_util.h"

namespace grey {
namespace {

using test::read_fixture;
using test::TempDir;
using test::write_file;
namespace fs = std::filesystem;

GpuSpec gpu(const std::string& vendor, const std::string& model, int64_t vram,
            const std::string& cc = "9.0", const std::string& driver = "550.54.15") {
  GpuSpec g;
  g.f.vendor = vendor;
  g.f.model = model;
  g.f.vram_total_mb = vram;
  g.f.compute_capability = cc;
  g.f.driver_version = driver;
  return g;
}

std::map<std::string, std::string> as_map(const std::vector<NodeLabel>& v) {
  std::map<std::string, std::string> m;
  for (const auto& l : v) m[l.name] = l.value;
  return m;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

// Every line is `prefix/name=value` in the Kubernetes label syntax NFD enforces; the file is
// under 64 KiB and ends with a newline.
void expect_valid_feature_file(const std::string& text, const std::string& prefix) {
  static const std::regex part("^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$");
  EXPECT_LT(text.size(), kMaxFeatureFileBytes);
  if (!text.empty()) {
    EXPECT_EQ(text.back(), '\n');
  }
  std::set<std::string> names;
  for (const auto& line : lines_of(text)) {
    ASSERT_EQ(line.rfind(prefix + "/", 0), 0u) << line;
    auto eq = line.find('=');
    ASSERT_NE(eq, std::string::npos) << line;
    std::string name = line.substr(prefix.size() + 1, eq - prefix.size() - 1);
    std::string value = line.substr(eq + 1);
    EXPECT_LE(name.size(), 63u) << line;
    EXPECT_LE(value.size(), 63u) << line;
    EXPECT_TRUE(std::regex_match(name, part)) << line;
    EXPECT_TRUE(std::regex_match(value, part)) << line;
    EXPECT_TRUE(names.insert(name).second) << "duplicate label " << name;
  }
}

// ---- sanitizing --------------------------------------------------------------------------------

TEST(LabelValue, OddCharactersBecomeOneDash) {
  EXPECT_EQ(sanitize_label_value("NVIDIA H100 80GB HBM3"), "NVIDIA-H100-80GB-HBM3");
  EXPECT_EQ(sanitize_label_value("Arcturus GL-XL [Instinct MI100]"),
            "Arcturus-GL-XL-Instinct-MI100");
  EXPECT_EQ(sanitize_label_value("AMD Radeon\xe2\x84\xa2 RX 7900 XTX"), "AMD-Radeon-RX-7900-XTX");
  EXPECT_EQ(sanitize_label_value("a/b=c\nd\te"), "a-b-c-d-e");
  EXPECT_EQ(sanitize_label_value("9.0"), "9.0");
  EXPECT_EQ(sanitize_label_value("gfx90a:sramecc+:xnack-"), "gfx90a-sramecc-xnack");
  EXPECT_EQ(sanitize_label_value("under_score.dot"), "under_score.dot");
}

TEST(LabelValue, StartsAndEndsAlphanumeric) {
  EXPECT_EQ(sanitize_label_value("  (TM) GPU  "), "TM-GPU");
  EXPECT_EQ(sanitize_label_value("-._x._-"), "x");
  EXPECT_EQ(sanitize_label_value("[Radeon]"), "Radeon");
  EXPECT_EQ(sanitize_label_value("...---"), "");
  EXPECT_EQ(sanitize_label_value(""), "");
  EXPECT_EQ(sanitize_label_value("\xff\xfe"), "");
}

TEST(LabelValue, LongNamesAreCutTo63AndStillEndAlphanumeric) {
  std::string longname = "NVIDIA Graphics Device with a very long marketing name 12345678 (rev a1)";
  std::string v = sanitize_label_value(longname);
  EXPECT_LE(v.size(), 63u);
  EXPECT_EQ(v.rfind("NVIDIA-Graphics-Device-with-a-very-long-marketing-name", 0), 0u) << v;
  // A cut that lands on a '-' backs off to the last alphanumeric.
  std::string cut = std::string(62, 'a') + " b";
  EXPECT_EQ(sanitize_label_value(cut), std::string(62, 'a'));
  EXPECT_EQ(sanitize_label_value(std::string(200, 'z')).size(), 63u);
  EXPECT_EQ(sanitize_label_value("abc def", 4), "abc");
}

TEST(LabelPrefix, DnsSubdomainsOnly) {
  EXPECT_EQ(check_label_prefix("grey-gpu-opt"), "");
  EXPECT_EQ(check_label_prefix("gpu.example.com"), "");
  EXPECT_NE(check_label_prefix(""), "");
  EXPECT_NE(check_label_prefix("Grey"), "");
  EXPECT_NE(check_label_prefix("a/b"), "");
  EXPECT_NE(check_label_prefix("-a"), "");
  EXPECT_NE(check_label_prefix("a..b"), "");
  EXPECT_NE(check_label_prefix("a b"), "");
  EXPECT_NE(check_label_prefix(std::string(64, 'a')), "");
  EXPECT_NE(check_label_prefix(std::string(300, 'a')), "");
}

// ---- which labels ------------------------------------------------------------------------------

TEST(NodeLabels, NoGpuSaysCountZeroOnly) {
  auto l = compute_node_labels({}, nullptr);
  ASSERT_EQ(l.size(), 1u);
  EXPECT_EQ(l[0], (NodeLabel{"gpu.count", "0"}));
  EXPECT_EQ(render_feature_file(l, "grey-gpu-opt").text, "grey-gpu-opt/gpu.count=0\n");
}

TEST(NodeLabels, OneVendorAgreeingGpus) {
  std::vector<GpuSpec> g(4, gpu("nvidia", "NVIDIA H100 80GB HBM3", 81559));
  for (auto& x : g) x.f.mig_mode = false;
  auto l = compute_node_labels(g, nullptr);
  auto m = as_map(l);
  EXPECT_EQ(m["gpu.count"], "4");
  EXPECT_EQ(m["gpu.vendor"], "nvidia");
  EXPECT_EQ(m["gpu.product"], "NVIDIA-H100-80GB-HBM3");
  EXPECT_EQ(m["gpu.memory"], "81559");
  EXPECT_EQ(m["gpu.compute"], "9.0");
  EXPECT_EQ(m["gpu.driver"], "550.54.15");
  EXPECT_EQ(m["gpu.mig"], "false");
  EXPECT_EQ(m.size(), 7u) << "no per-vendor or per-product counts on a uniform node";
  EXPECT_EQ(l[0].name, "gpu.count");
}

TEST(NodeLabels, FieldsTheGpusDisagreeOnOrDoNotKnowAreLeftOut) {
  std::vector<GpuSpec> g{gpu("nvidia", "NVIDIA A40", 46068), gpu("nvidia", "NVIDIA A40", 46068)};
  g[1].f.vram_total_mb = 45000;
  g[1].f.compute_capability.reset();
  g[0].f.mig_mode = true;  // the other one does not say
  auto m = as_map(compute_node_labels(g, nullptr));
  EXPECT_EQ(m["gpu.product"], "NVIDIA-A40");
  EXPECT_EQ(m.count("gpu.memory"), 0u);
  EXPECT_EQ(m.count("gpu.compute"), 0u);
  EXPECT_EQ(m.count("gpu.mig"), 0u);
  EXPECT_EQ(m["gpu.driver"], "550.54.15");
}

TEST(NodeLabels, MixedNodeCountsPerVendorAndPerProduct) {
  std::vector<GpuSpec> g{gpu("nvidia", "NVIDIA GeForce RTX 2070", 8192, "7.5"),
                         gpu("nvidia", "NVIDIA GeForce RTX 2070", 8192, "7.5"),
                         gpu("amd", "AMD Instinct MI100", 32752, "gfx908", "6.2.4"),
                         gpu("amd", "AMD Instinct MI100", 32752, "gfx908", "6.2.4"),
                         gpu("amd", "AMD Instinct MI100", 32752, "gfx908", "6.2.4")};
  auto m = as_map(compute_node_labels(g, nullptr));
  EXPECT_EQ(m["gpu.count"], "5");
  EXPECT_EQ(m["gpu.vendor"], "mixed");
  EXPECT_EQ(m["gpu.nvidia.count"], "2");
  EXPECT_EQ(m["gpu.amd.count"], "3");
  EXPECT_EQ(m["gpu.product.NVIDIA-GeForce-RTX-2070"], "2");
  EXPECT_EQ(m["gpu.product.AMD-Instinct-MI100"], "3");
  EXPECT_EQ(m.count("gpu.product"), 0u);
  EXPECT_EQ(m.count("gpu.compute"), 0u);
}

TEST(NodeLabels, OneVendorTwoProductsGetsProductCountsButNoVendorCounts) {
  std::vector<GpuSpec> g{gpu("nvidia", "NVIDIA A10G", 23028), gpu("nvidia", "Tesla T4", 15360)};
  auto m = as_map(compute_node_labels(g, nullptr));
  EXPECT_EQ(m["gpu.vendor"], "nvidia");
  EXPECT_EQ(m["gpu.product.NVIDIA-A10G"], "1");
  EXPECT_EQ(m["gpu.product.Tesla-T4"], "1");
  EXPECT_EQ(m.count("gpu.nvidia.count"), 0u);
}

TEST(NodeLabels, ProductNamesInLabelNamesFitThe63CharacterLimit) {
  std::string a = "Vendor Graphics Adapter With An Extremely Long Product Name Edition A";
  std::string b = "Vendor Graphics Adapter With An Extremely Long Product Name Edition B";
  std::vector<GpuSpec> g{gpu("intel", a, 1), gpu("intel", b, 1), gpu("intel", "Arc A380", 6)};
  auto l = compute_node_labels(g, nullptr);
  int products = 0;
  for (const auto& x : l) {
    EXPECT_LE(x.name.size(), 63u) << x.name;
    if (x.name.rfind("gpu.product.", 0) == 0) ++products;
  }
  // The two long names agree on their first 51 characters: they share one label, counted 2.
  EXPECT_EQ(products, 2);
  expect_valid_feature_file(render_feature_file(l, "grey-gpu-opt").text, "grey-gpu-opt");
}

TEST(NodeLabels, AppliedPlanGivesModeAndTheSmallestCap) {
  Plan p;
  p.mode = PlanMode::kAggressive;
  p.gpus.resize(3);
  p.gpus[0].per_process_vram_cap_mb = 73403;
  p.gpus[1].per_process_vram_cap_mb = 20000;
  auto m = as_map(compute_node_labels({gpu("nvidia", "NVIDIA H100", 81559)}, &p));
  EXPECT_EQ(m["plan.mode"], "aggressive");
  EXPECT_EQ(m["plan.vram-cap-mb"], "20000");
  Plan none;  // no GPU has a cap
  none.gpus.resize(1);
  m = as_map(compute_node_labels({}, &none));
  EXPECT_EQ(m["plan.mode"], "safe");
  EXPECT_EQ(m.count("plan.vram-cap-mb"), 0u);
}

TEST(NodeLabels, UnsanitizableValuesAreLeftOutNeverEmittedInvalid) {
  GpuSpec g = gpu("nvidia", "(((", 1024, "--", "..");
  auto m = as_map(compute_node_labels({g}, nullptr));
  EXPECT_EQ(m.count("gpu.product"), 0u);
  EXPECT_EQ(m.count("gpu.compute"), 0u);
  EXPECT_EQ(m.count("gpu.driver"), 0u);
  EXPECT_EQ(m["gpu.memory"], "1024");
  GpuSpec weird = gpu("Vendor/With Slash", "x", 1);
  auto l = compute_node_labels({weird, gpu("amd", "y", 1)}, nullptr);
  expect_valid_feature_file(render_feature_file(l, "grey-gpu-opt").text, "grey-gpu-opt");
  EXPECT_EQ(as_map(l)["gpu.Vendor-With-Slash.count"], "1");
}

// ---- the 64 KiB limit --------------------------------------------------------------------------

TEST(FeatureFile, StaysUnder64KiBAndDropsOnlyTheLastLabels) {
  std::vector<GpuSpec> g;
  for (int i = 0; i < 3000; ++i)
    g.push_back(gpu(i % 2 ? "amd" : "nvidia",
                    "Accelerator model number " + std::to_string(100000 + i) + " rev B", 1));
  Plan p;
  p.gpus.resize(1);
  p.gpus[0].per_process_vram_cap_mb = 768;
  auto labels = compute_node_labels(g, &p);
  ASSERT_GT(labels.size(), 3000u);
  FeatureFile f = render_feature_file(labels, "grey-gpu-opt");
  EXPECT_LT(f.text.size(), kMaxFeatureFileBytes);
  EXPECT_GT(f.text.size(), kMaxFeatureFileBytes - 200) << "it stopped much too early";
  ASSERT_FALSE(f.dropped.empty());
  for (const auto& d : f.dropped) EXPECT_EQ(d.rfind("gpu.product.", 0), 0u) << d;
  EXPECT_EQ(lines_of(f.text).size() + f.dropped.size(), labels.size());
  // The node-wide facts come first and are all there.
  for (std::string must :
       {"grey-gpu-opt/gpu.count=3000\n", "grey-gpu-opt/gpu.vendor=mixed\n",
        "grey-gpu-opt/plan.vram-cap-mb=768\n", "grey-gpu-opt/gpu.amd.count=1500\n"})
    EXPECT_NE(f.text.find(must), std::string::npos) << must;
  expect_valid_feature_file(f.text, "grey-gpu-opt");
  // A long prefix takes more room per line: still under the limit.
  std::string longp = std::string(60, 'p') + ".example.com";
  FeatureFile f2 = render_feature_file(labels, longp);
  EXPECT_LT(f2.text.size(), kMaxFeatureFileBytes);
  EXPECT_GT(f2.dropped.size(), f.dropped.size());
  // The boundary itself: a limit that leaves room for exactly one line keeps exactly that.
  FeatureFile one = render_feature_file({{"a", "1"}, {"b", "2"}}, "p", 6);  // "p/a=1\n" is 6
  EXPECT_EQ(one.text, "");
  one = render_feature_file({{"a", "1"}, {"b", "2"}}, "p", 7);
  EXPECT_EQ(one.text, "p/a=1\n");
  EXPECT_EQ(one.dropped, std::vector<std::string>{"b"});
}

// ---- the file ----------------------------------------------------------------------------------

std::vector<std::string> dir_entries(const std::string& d) {
  std::vector<std::string> v;
  for (const auto& e : fs::directory_iterator(d)) v.push_back(e.path().filename().string());
  std::sort(v.begin(), v.end());
  return v;
}

TEST(FeatureFile, WrittenAtomicallyReadableAndWithoutLeftovers) {
  TempDir t;
  std::string d = t / "features.d";
  fs::create_directories(d);
  ASSERT_EQ(write_feature_file(d, "grey-gpu-opt/gpu.count=0\n"), "");
  EXPECT_EQ(test::read_file(d + "/grey-gpu-opt"), "grey-gpu-opt/gpu.count=0\n");
  struct stat st;
  ASSERT_EQ(::stat((d + "/grey-gpu-opt").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  ASSERT_EQ(write_feature_file(d + "/", "grey-gpu-opt/gpu.count=1\n"), "");
  EXPECT_EQ(test::read_file(d + "/grey-gpu-opt"), "grey-gpu-opt/gpu.count=1\n");
  EXPECT_EQ(dir_entries(d), std::vector<std::string>{"grey-gpu-opt"}) << "a temp file was left";
  EXPECT_EQ(remove_feature_file(d), "");
  EXPECT_TRUE(dir_entries(d).empty());
  EXPECT_EQ(remove_feature_file(d), "") << "nothing to remove is fine";
}

TEST(FeatureFile, ASymlinkedTargetIsRefusedAndLeftAlone) {
  TempDir t;
  std::string d = t / "features.d";
  fs::create_directories(d);
  write_file(t / "victim", "precious\n");
  fs::create_symlink(t / "victim", d + "/grey-gpu-opt");
  std::string e = write_feature_file(d, "grey-gpu-opt/gpu.count=0\n");
  EXPECT_NE(e.find("symbolic link"), std::string::npos) << e;
  EXPECT_EQ(test::read_file(t / "victim"), "precious\n");
  EXPECT_TRUE(fs::is_symlink(d + "/grey-gpu-opt"));
  EXPECT_EQ(dir_entries(d), std::vector<std::string>{"grey-gpu-opt"});
  EXPECT_NE(remove_feature_file(d), "");
  EXPECT_TRUE(fs::is_symlink(d + "/grey-gpu-opt"));
}

TEST(FeatureFile, AMissingDirectoryIsAClearError) {
  TempDir t;
  std::string e = write_feature_file(t / "nope", "x/a=1\n");
  EXPECT_NE(e.find("Node Feature Discovery"), std::string::npos) << e;
  write_file(t / "file", "");
  EXPECT_NE(check_features_dir(t / "file").find("not a directory"), std::string::npos);
  EXPECT_FALSE(fs::exists(t / "nope"));
}

// ---- the daemon's keeper -----------------------------------------------------------------------

struct KeeperEnv {
  TempDir t;
  std::string dir = t / "features.d";
  std::string state = t / "state";
  KeeperEnv() {
    fs::create_directories(dir);
    fs::create_directories(state);
    ::chmod(state.c_str(), 0700);
  }
  void apply_plan(PlanMode mode, int64_t cap) {
    Plan p;
    p.mode = mode;
    p.gpus.resize(1);
    p.gpus[0].per_process_vram_cap_mb = cap;
    write_file(state + "/last_applied_plan.yaml", plan_to_yaml(p), 0600);
  }
  ino_t inode() {
    struct stat st;
    return ::lstat((dir + "/grey-gpu-opt").c_str(), &st) == 0 ? st.st_ino : 0;
  }
};

TEST(LabelsKeeper, WritesOnceThenOnlyWhenTheContentChanges) {
  KeeperEnv e;
  LabelsKeeper k(e.dir, "grey-gpu-opt", e.state);
  std::vector<GpuSpec> g{gpu("amd", "AMD Instinct MI300X", 196592, "gfx942", "6.8.5")};
  auto r = k.refresh(g);
  EXPECT_EQ(r.event, "labels_written") << r.error;
  EXPECT_EQ(r.path, e.dir + "/grey-gpu-opt");
  EXPECT_NE(std::find(r.labels.begin(), r.labels.end(), "grey-gpu-opt/gpu.vendor=amd"),
            r.labels.end());
  const ino_t first = e.inode();
  ASSERT_NE(first, 0u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(k.refresh(g).event, "") << "rewritten without a change";
  EXPECT_EQ(e.inode(), first) << "the file was replaced although nothing changed";

  // An applied plan appears: the plan labels are added.
  e.apply_plan(PlanMode::kSafe, 147444);
  r = k.refresh(g);
  EXPECT_EQ(r.event, "labels_written");
  std::string text = test::read_file(e.dir + "/grey-gpu-opt");
  EXPECT_NE(text.find("grey-gpu-opt/plan.mode=safe\n"), std::string::npos) << text;
  EXPECT_NE(text.find("grey-gpu-opt/plan.vram-cap-mb=147444\n"), std::string::npos) << text;
  EXPECT_EQ(k.refresh(g).event, "");
  e.apply_plan(PlanMode::kAggressive, 176932);
  EXPECT_EQ(k.refresh(g).event, "labels_written");
  EXPECT_NE(test::read_file(e.dir + "/grey-gpu-opt").find("plan.mode=aggressive"),
            std::string::npos);

  // The GPUs change (another spec): rewritten.
  g.push_back(g[0]);
  EXPECT_EQ(k.refresh(g).event, "labels_written");
  EXPECT_NE(test::read_file(e.dir + "/grey-gpu-opt").find("gpu.count=2\n"), std::string::npos);

  // Someone deleted it: written again.
  fs::remove(e.dir + "/grey-gpu-opt");
  EXPECT_EQ(k.refresh(g).event, "labels_written");
  EXPECT_TRUE(fs::exists(e.dir + "/grey-gpu-opt"));

  // Clean stop.
  EXPECT_EQ(k.remove(), "");
  EXPECT_FALSE(fs::exists(e.dir + "/grey-gpu-opt"));
  EXPECT_TRUE(dir_entries(e.dir).empty());
}

TEST(LabelsKeeper, ABrokenAppliedPlanIsANoteAndTheGpuLabelsStillGoOut) {
  KeeperEnv e;
  write_file(e.state + "/last_applied_plan.yaml", "gpus: [ {{{ not yaml\n", 0600);
  LabelsKeeper k(e.dir, "grey-gpu-opt", e.state);
  auto r = k.refresh({});
  EXPECT_EQ(r.event, "labels_written");
  ASSERT_EQ(r.notes.size(), 1u);
  EXPECT_NE(r.notes[0].find("last_applied_plan.yaml"), std::string::npos) << r.notes[0];
  EXPECT_EQ(test::read_file(e.dir + "/grey-gpu-opt"), "grey-gpu-opt/gpu.count=0\n");
  EXPECT_TRUE(k.refresh({}).notes.empty()) << "the same broken file is reported once";
}

TEST(LabelsKeeper, AFailureIsReportedOnceAndRetried) {
  KeeperEnv e;
  LabelsKeeper k(e.t / "missing", "grey-gpu-opt", e.state);
  auto r = k.refresh({});
  EXPECT_EQ(r.event, "labels_failed");
  EXPECT_NE(r.error, "");
  EXPECT_EQ(k.refresh({}).event, "") << "the same failure is not reported every tick";
  fs::create_directories(e.t / "missing");
  EXPECT_EQ(k.refresh({}).event, "labels_written");
  EXPECT_TRUE(fs::exists(e.t / "missing/grey-gpu-opt"));
}

TEST(LabelsKeeper, ABrokenPlanAndAFailingWriteAreEachReportedOnce) {
  KeeperEnv e;
  write_file(e.state + "/last_applied_plan.yaml", "mode: [\n", 0600);
  LabelsKeeper k(e.t / "missing", "grey-gpu-opt", e.state);
  auto r = k.refresh({});
  EXPECT_EQ(r.event, "labels_failed");
  EXPECT_EQ(r.notes.size(), 1u);
  for (int i = 0; i < 3; ++i) {
    r = k.refresh({});
    EXPECT_EQ(r.event, "");
    EXPECT_TRUE(r.notes.empty()) << "the note came again on call " << i;
  }
  EXPECT_FALSE(k.has_written());
}

TEST(LabelsKeeper, RemovesOnlyWhatItWrote) {
  KeeperEnv e;
  write_file(e.dir + "/grey-gpu-opt", "someone-else/x=1\n");
  LabelsKeeper k(e.dir, "grey-gpu-opt", e.state);
  EXPECT_EQ(k.remove(), "");
  EXPECT_TRUE(fs::exists(e.dir + "/grey-gpu-opt")) << "removed a file it never wrote";
}

// ---- `grey-gpu-opt labels` on the real captures -------------------------------------------------

struct Cli {
  TempDir tmp;
  std::string state = tmp / "state";
  std::string out_dir = tmp / "features.d";
  std::map<std::string, std::string> env;
  Cli() {
    fs::create_directories(tmp / "bin");
    fs::create_directories(tmp / "sys/class/drm");
    fs::create_directories(out_dir);
    env = {{"PATH", tmp / "bin"},
           {"GREY_CONFIG_DIR", state},
           {"GREY_SYSFS_ROOT", tmp / "sys"},
           {"GREY_PROC_ROOT", tmp / "proc"},
           {"GREY_NVML_LIBRARY", "/nonexistent/libnvidia-ml.so.1"},
           {"GREY_CUDA_LIBRARY", "/nonexistent/libcuda.so.1"},
           {"GREY_OPENCL_LIBRARY", "/nonexistent/libOpenCL.so.1"}};
  }
  std::string replay(const std::map<std::string, std::string>& files) {
    std::string d = tmp / "replay";
    fs::create_directories(d);
    for (const auto& [name, fixture] : files) write_file(d + "/" + name, read_fixture(fixture));
    return d;
  }
  CommandResult run(const std::vector<std::string>& args) { return test::run_grey(args, env); }
  // `labels --stdout --replay DIR`: the file text.
  std::string labels(const std::string& replay_dir) {
    auto r = run({"labels", "--stdout", "--replay", replay_dir});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    expect_valid_feature_file(r.out, "grey-gpu-opt");
    return r.out;
  }
};

TEST(CliLabels, OneVendorH100FromItsNvidiaSmiCsv) {
  Cli c;
  auto d = c.replay({{"nvidia-smi.csv",
                      "nvidia-smi-csv/nvidia-h100-80gb-hbm3-590.48.01-idle-full-query-nge.csv"}});
  std::string t = c.labels(d);
  EXPECT_NE(t.find("grey-gpu-opt/gpu.count=1\n"), std::string::npos) << t;
  EXPECT_NE(t.find("grey-gpu-opt/gpu.vendor=nvidia\n"), std::string::npos) << t;
  EXPECT_NE(t.find("grey-gpu-opt/gpu.product=NVIDIA-H100-80GB-HBM3\n"), std::string::npos) << t;
  EXPECT_NE(t.find("grey-gpu-opt/gpu.driver=590.48.01\n"), std::string::npos) << t;
  EXPECT_NE(t.find("grey-gpu-opt/gpu.memory="), std::string::npos) << t;
  EXPECT_EQ(t.find("gpu.product."), std::string::npos) << t;
  EXPECT_EQ(t.find("plan."), std::string::npos) << "no applied plan, no plan labels\n" << t;
  EXPECT_FALSE(fs::exists(c.out_dir + "/grey-gpu-opt")) << "--stdout wrote the file";
  EXPECT_FALSE(fs::exists(c.state + "/last_gpu_spec.json")) << "labels saved the spec";
}

TEST(CliLabels, MixedVendorsEightGpus) {
  Cli c;
  auto d = c.replay(
      {{"nvidia-smi.xml", "nvidia-smi-xml/nvidia-geforce-rtx2070-x2-590.44.01-telegraf.xml"},
       {"rocm-smi.json", "rocm-smi/amd-instinct-mi100-x6-rocm5.7.1-json-telegraf.json"}});
  std::string t = c.labels(d);
  EXPECT_NE(t.find("grey-gpu-opt/gpu.count=8\n"), std::string::npos) << t;
  EXPECT_NE(t.find("grey-gpu-opt/gpu.vendor=mixed\n"), std::string::npos) << t;
  EXPECT_NE(t.find("grey-gpu-opt/gpu.nvidia.count=2\n"), std::string::npos) << t;
  EXPECT_NE(t.find("grey-gpu-opt/gpu.amd.count=6\n"), std::string::npos) << t;
  EXPECT_NE(t.find("grey-gpu-opt/gpu.product.NVIDIA-GeForce-RTX-2070"), std::string::npos) << t;
  int product_lines = 0, product_total = 0;
  for (const auto& l : lines_of(t))
    if (l.rfind("grey-gpu-opt/gpu.product.", 0) == 0) {
      ++product_lines;
      product_total += std::stoi(l.substr(l.find('=') + 1));
    }
  EXPECT_GE(product_lines, 2) << t;
  EXPECT_EQ(product_total, 8) << t;
  EXPECT_EQ(t.find("gpu.product="), std::string::npos) << t;
}

TEST(CliLabels, TenA40sFromTheTable) {
  Cli c;
  auto d = c.replay({{"nvidia-smi.txt", "nvidia-smi-table/nvidia-a40-x10-550.127.05-thamada.txt"}});
  std::string t = c.labels(d);
  EXPECT_NE(t.find("grey-gpu-opt/gpu.count=10\n"), std::string::npos) << t;
  EXPECT_NE(t.find("grey-gpu-opt/gpu.vendor=nvidia\n"), std::string::npos) << t;
  EXPECT_NE(t.find("grey-gpu-opt/gpu.memory=46068\n"), std::string::npos) << t;
  EXPECT_NE(t.find("grey-gpu-opt/gpu.driver=550.127.05\n"), std::string::npos) << t;
}

TEST(CliLabels, NoGpuWritesCountZero) {
  Cli c;
  auto d = c.replay({{"lspci.txt", "local/lspci-vmm-nn-D-debian12-vm-no-gpu.txt"}});
  auto r = c.run({"labels", "--replay", d, "--output-dir", c.out_dir});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(test::read_file(c.out_dir + "/grey-gpu-opt"), "grey-gpu-opt/gpu.count=0\n");
  EXPECT_EQ(dir_entries(c.out_dir), std::vector<std::string>{"grey-gpu-opt"});
  EXPECT_NE(r.out.find("wrote 1 label(s) for 0 GPU(s)"), std::string::npos) << r.out;
}

TEST(CliLabels, AppliedPlanAndPrefix) {
  Cli c;
  fs::create_directories(c.state);
  ::chmod(c.state.c_str(), 0700);
  Plan p;
  p.mode = PlanMode::kAggressive;
  p.gpus.resize(2);
  p.gpus[0].per_process_vram_cap_mb = 41461;
  p.gpus[1].per_process_vram_cap_mb = 40000;
  write_file(c.state + "/last_applied_plan.yaml", plan_to_yaml(p), 0600);
  auto d = c.replay({{"nvidia-smi.txt", "nvidia-smi-table/nvidia-a40-x10-550.127.05-thamada.txt"}});
  auto r =
      c.run({"labels", "--replay", d, "--output-dir", c.out_dir, "--prefix", "gpu.example.com"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string t = test::read_file(c.out_dir + "/grey-gpu-opt");
  expect_valid_feature_file(t, "gpu.example.com");
  EXPECT_NE(t.find("gpu.example.com/plan.mode=aggressive\n"), std::string::npos) << t;
  EXPECT_NE(t.find("gpu.example.com/plan.vram-cap-mb=40000\n"), std::string::npos) << t;
}

TEST(CliLabels, BadUsageIsRefusedBeforeDetection) {
  Cli c;
  auto r = c.run({"labels", "--prefix", "Not/Valid", "--stdout"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--prefix"), std::string::npos) << r.err;
  r = c.run({"labels", "--output-dir", c.tmp / "nope"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--output-dir"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(c.tmp / "nope"));
  r = c.run({"labels", "--replay", c.tmp / "nope", "--stdout"});
  EXPECT_EQ(r.exit_code, 2);
  // A symlink planted at the target: refused, exit 1, the link and its target untouched.
  write_file(c.tmp / "victim", "keep\n");
  fs::create_symlink(c.tmp / "victim", c.out_dir + "/grey-gpu-opt");
  auto d = c.replay({});
  r = c.run({"labels", "--replay", d, "--output-dir", c.out_dir});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("symbolic link"), std::string::npos) << r.err;
  EXPECT_EQ(test::read_file(c.tmp / "victim"), "keep\n");
  auto h = c.run({"labels", "--help"});
  EXPECT_EQ(h.exit_code, 0);
  for (std::string opt : {"--output-dir", "--prefix", "--stdout", "--replay"})
    EXPECT_NE(h.out.find(opt), std::string::npos) << opt;
}

}  // namespace
}  // namespace grey
