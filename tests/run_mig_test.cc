// `run --gpu MIG-...` (SPEC §9): the command runs on the MIG instance, with the cap and batch
// size the plan gave that instance, and CUDA_VISIBLE_DEVICES naming the instance.
#include <gtest/gtest.h>

#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "cli/apply_cmd.h"
#include "plan/plan_io.h"
#include "test_util.h"
#include "util/state_dir.h"

namespace grey {
namespace {

std::map<std::string, std::string> g_env;
int record(const std::vector<std::string>&, const std::map<std::string, std::string>& env) {
  g_env = env;
  return 0;
}

Plan mig_plan() {
  Plan p;
  p.generated_at = "2026-12-03T00:00:00Z";
  p.gpu_specs_hash = "0123456789abcdef";
  GpuPlan g;
  g.index = 0;
  g.device_id = "0000:83:00.0";
  g.uuid = "GPU-00000000-0000-0000-0000-000000000000";
  g.per_process_vram_cap_mb = 107828;
  g.recommended_batch_size = 256;
  PartitionPlan a;
  a.gi_id = 9;
  a.ci_id = 0;
  a.uuid = "MIG-00000003-0000-0000-0000-000000000003";
  a.memory_total_mb = 16384;
  a.per_process_vram_cap_mb = 12288;
  a.recommended_batch_size = 32;
  g.partitions = {a};
  p.gpus = {g};
  return p;
}

TEST(RunMig, MigUuidSelectsTheInstanceWithItsOwnCap) {
  test::TempDir tmp;
  std::string state = tmp.path() + "/state";
  ASSERT_EQ(ensure_state_dir(state), "");
  test::write_file(state + "/last_applied_plan.yaml", plan_to_yaml(mig_plan()), 0600);
  GlobalOptions g;
  g.state_dir = state;
  g.sysfs_root = tmp.path() + "/sys";
  g.procfs_root = tmp.path() + "/proc";
  RunCliOptions o;
  o.gpu = "mig-00000003-0000-0000-0000-000000000003";  // case does not matter
  o.command = {"/usr/bin/env"};
  std::ostringstream err;
  g_env.clear();
  ASSERT_EQ(run_run_command(g, o, err, record), 0) << err.str();
  EXPECT_EQ(g_env["CUDA_VISIBLE_DEVICES"], "MIG-00000003-0000-0000-0000-000000000003");
  EXPECT_EQ(g_env["GREY_VRAM_CAP_MB"], "12288");
  EXPECT_EQ(g_env["GREY_GPU_INDEX"], "0");

  o.gpu = "MIG-ffffffff-0000-0000-0000-000000000000";
  std::ostringstream err2;
  EXPECT_EQ(run_run_command(g, o, err2, record), 2);
  EXPECT_NE(err2.str().find("no MIG instance with that UUID"), std::string::npos) << err2.str();
}

}  // namespace
}  // namespace grey
