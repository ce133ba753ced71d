// The daemon's compact window (telemetry/window.h) and the artifacts rendered from it. The
// expected CSV texts below were produced by the renderer the window replaced (ostringstream over
// the full snapshots, before issue 5's rework) from the same snapshots: the files must stay
// byte for byte what they were (src/report/report.cc and users' scripts read them).
// vram_reclamation.json changed with issue 10: it is plan/reclaim.h's analysis (the plan's),
// with null for what was not measured; its former keys keep their meaning.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "daemon/artifacts.h"
#include "daemon/json_text.h"
#include "daemon/window.h"
#include "plan/plan.h"
#include "plan/plan_io.h"
#include "test_util.h"
#include "util/json_util.h"

namespace grey {
namespace {

// The snapshots of the window tests (also used to produce the expected text with the renderer
// the window replaced).
std::vector<TelemetrySnapshot> fixture_history() {
  std::vector<TelemetrySnapshot> h;
  for (int i = 0; i < 5; ++i) {
    TelemetrySnapshot s;
    s.timestamp = "2026-11-26T15:00:0" + std::to_string(i) + ".000Z";
    GpuSample g0;
    g0.index = 0;
    g0.bus_id = "0000:1b:00.0";
    g0.temperature_c = 60 + 1.5 * i;
    g0.power_w = 301.25;
    g0.power_limit_w = 700;
    g0.utilization_pct = 90;
    g0.vram_used_mb = 4096;
    g0.backend = "nvml";
    GpuSample g1;  // no bus id; unknown power and VRAM; values that need %g's exponent form
    g1.index = 1;
    g1.temperature_c = 45.1234567;
    g1.power_limit_w = 1234567.0;
    g1.utilization_pct = 0.000012345;
    g1.backend = "sysfs";
    GpuSample g2;  // stale: never a row, even with a temperature
    g2.index = 2;
    g2.stale = true;
    g2.temperature_c = 70;
    g2.backend = "sysfs";
    GpuSample g5;  // no plan entry; a temperature only on odd ticks
    g5.index = 5;
    g5.bus_id = "0000:99:00.0";
    if (i % 2) g5.temperature_c = -0.0;
    g5.vram_used_mb = -1;
    g5.backend = "nvidia-smi";
    s.gpus = {g0, g1, g2, g5};
    auto proc = [](int pid, const std::string& cmd, const std::string& user, std::optional<int> gpu,
                   std::optional<double> util, std::optional<int64_t> vram) {
      ProcessSample p;
      p.pid = pid;
      p.command = cmd;
      p.user = user;
      p.gpu_index = gpu;
      p.utilization_pct = util;
      p.vram_mb = vram;
      p.backend = "nvml";
      return p;
    };
    s.processes.push_back(proc(100, "python,train \"big\"\nx", "alice", 0, i * 3.0, 1000 + 10 * i));
    s.processes.push_back(proc(200, "idle-worker", "", 0, 0.0, 512));
    s.processes.push_back(proc(201, "idle-worker", "bob", 0, 0.0, 530));
    s.processes.push_back(proc(300, "blender", "1001", std::nullopt, std::nullopt,
                               i < 2 ? std::optional<int64_t>(64) : std::nullopt));
    s.processes.push_back(proc(301, "blender", "1001", std::nullopt, std::nullopt, 64));
    s.processes.push_back(proc(600, "warmup", "erin", 1, i < 2 ? 5.0 : 0.0, 300));
    if (i < 2) {
      s.processes.push_back(proc(400, "multi", "carol", 0, 0.0, 100));
      s.processes.push_back(proc(400, "multi", "carol", 1, 0.0, 200));
    }
    if (i >= 3) s.processes.push_back(proc(500, "late", "dave", 1, 0.0, 64));
    h.push_back(std::move(s));
  }
  return h;
}

Plan fixture_plan() {
  Plan p;
  GpuPlan a;
  a.index = 0;
  a.cooldown_threshold_c = 83;
  a.resume_threshold_c = 70;
  GpuPlan b;
  b.index = 1;
  b.cooldown_threshold_c = 90;
  b.resume_threshold_c = 75;
  GpuPlan c = a;  // a second entry for index 0: the first one wins
  c.cooldown_threshold_c = 99;
  c.resume_threshold_c = 98;
  p.gpus = {a, b, c};
  return p;
}

const char* const kThermal5 =
    R"EXP(timestamp,gpu_index,bus_id,temperature_c,cooldown_threshold_c,resume_threshold_c,power_w,power_limit_w,utilization_pct,vram_used_mb,backend
2026-11-26T15:00:00.000Z,0,0000:1b:00.0,60,83,70,301.25,700,90,4096,nvml
2026-11-26T15:00:00.000Z,1,,45.1235,90,75,,1.23457e+06,1.2345e-05,,sysfs
2026-11-26T15:00:01.000Z,0,0000:1b:00.0,61.5,83,70,301.25,700,90,4096,nvml
2026-11-26T15:00:01.000Z,1,,45.1235,90,75,,1.23457e+06,1.2345e-05,,sysfs
2026-11-26T15:00:01.000Z,5,0000:99:00.0,-0,,,,,,-1,nvidia-smi
2026-11-26T15:00:02.000Z,0,0000:1b:00.0,63,83,70,301.25,700,90,4096,nvml
2026-11-26T15:00:02.000Z,1,,45.1235,90,75,,1.23457e+06,1.2345e-05,,sysfs
2026-11-26T15:00:03.000Z,0,0000:1b:00.0,64.5,83,70,301.25,700,90,4096,nvml
2026-11-26T15:00:03.000Z,1,,45.1235,90,75,,1.23457e+06,1.2345e-05,,sysfs
2026-11-26T15:00:03.000Z,5,0000:99:00.0,-0,,,,,,-1,nvidia-smi
2026-11-26T15:00:04.000Z,0,0000:1b:00.0,66,83,70,301.25,700,90,4096,nvml
2026-11-26T15:00:04.000Z,1,,45.1235,90,75,,1.23457e+06,1.2345e-05,,sysfs
)EXP";
const char* const kHeat5 = R"EXP(timestamp,gpu_index,pid,command,user,utilization_pct,vram_mb
2026-11-26T15:00:00.000Z,0,100,"python,train ""big"" x",alice,0,1000
2026-11-26T15:00:00.000Z,0,200,idle-worker,,0,512
2026-11-26T15:00:00.000Z,0,201,idle-worker,bob,0,530
2026-11-26T15:00:00.000Z,,300,blender,1001,,64
2026-11-26T15:00:00.000Z,,301,blender,1001,,64
2026-11-26T15:00:00.000Z,1,600,warmup,erin,5,300
2026-11-26T15:00:00.000Z,0,400,multi,carol,0,100
2026-11-26T15:00:00.000Z,1,400,multi,carol,0,200
2026-11-26T15:00:01.000Z,0,100,"python,train ""big"" x",alice,3,1010
2026-11-26T15:00:01.000Z,0,200,idle-worker,,0,512
2026-11-26T15:00:01.000Z,0,201,idle-worker,bob,0,530
2026-11-26T15:00:01.000Z,,300,blender,1001,,64
2026-11-26T15:00:01.000Z,,301,blender,1001,,64
2026-11-26T15:00:01.000Z,1,600,warmup,erin,5,300
2026-11-26T15:00:01.000Z,0,400,multi,carol,0,100
2026-11-26T15:00:01.000Z,1,400,multi,carol,0,200
2026-11-26T15:00:02.000Z,0,100,"python,train ""big"" x",alice,6,1020
2026-11-26T15:00:02.000Z,0,200,idle-worker,,0,512
2026-11-26T15:00:02.000Z,0,201,idle-worker,bob,0,530
2026-11-26T15:00:02.000Z,,300,blender,1001,,
2026-11-26T15:00:02.000Z,,301,blender,1001,,64
2026-11-26T15:00:02.000Z,1,600,warmup,erin,0,300
2026-11-26T15:00:03.000Z,0,100,"python,train ""big"" x",alice,9,1030
2026-11-26T15:00:03.000Z,0,200,idle-worker,,0,512
2026-11-26T15:00:03.000Z,0,201,idle-worker,bob,0,530
2026-11-26T15:00:03.000Z,,300,blender,1001,,
2026-11-26T15:00:03.000Z,,301,blender,1001,,64
2026-11-26T15:00:03.000Z,1,600,warmup,erin,0,300
2026-11-26T15:00:03.000Z,1,500,late,dave,0,64
2026-11-26T15:00:04.000Z,0,100,"python,train ""big"" x",alice,12,1040
2026-11-26T15:00:04.000Z,0,200,idle-worker,,0,512
2026-11-26T15:00:04.000Z,0,201,idle-worker,bob,0,530
2026-11-26T15:00:04.000Z,,300,blender,1001,,
2026-11-26T15:00:04.000Z,,301,blender,1001,,64
2026-11-26T15:00:04.000Z,1,600,warmup,erin,0,300
2026-11-26T15:00:04.000Z,1,500,late,dave,0,64
)EXP";
const char* const kReclamation5 = R"EXP({
  "compression_ratio": 1.97,
  "dedup_buffer_count": 1,
  "duplicate_groups": [
    {
      "command": "idle-worker",
      "gpu_index": 0,
      "pids": [
        200,
        201
      ],
      "vram_mb_each": 512,
      "vram_mb_largest": 530,
      "vram_mb_total": 1042
    }
  ],
  "estimated_reclaimable_mb": 1042,
  "gpus": [
    {
      "compression_ratio": 1.97,
      "dedup_buffer_count": 1,
      "estimated_reclaimed_mb": 1042,
      "gpu_index": 0,
      "processes": 4,
      "processes_without_utilization": 0,
      "provenance": {
        "compression_ratio": "derived",
        "dedup_buffer_count": "derived",
        "estimated_reclaimed_mb": "measured"
      },
      "rationale": {
        "compression_ratio": "1.97: derived, not measured: inferred from the duplicate groups, which hold 1042 MiB in all against 530 MiB for one copy each (the largest member), if each group could share one copy.",
        "dedup_buffer_count": "1: derived from the VRAM measured in the newest sample: extra processes of `idle-worker` hold VRAM within 5% of the smallest of their group (taken as duplicate buffers; their contents are not compared).",
        "estimated_reclaimed_mb": "1042 MiB: measured over 5 samples, held by process(es) 200, 201 at 0% utilization in every sample."
      }
    },
    {
      "compression_ratio": 1.0,
      "dedup_buffer_count": 0,
      "estimated_reclaimed_mb": 0,
      "gpu_index": 1,
      "processes": 3,
      "processes_without_utilization": 0,
      "provenance": {
        "compression_ratio": "derived",
        "dedup_buffer_count": "derived",
        "estimated_reclaimed_mb": "measured"
      },
      "rationale": {
        "compression_ratio": "1.0: derived, not measured: there is no group of near-equal processes that could share one copy.",
        "dedup_buffer_count": "0: derived from the VRAM measured in the newest sample: no two processes of the same command hold VRAM within 5% of each other.",
        "estimated_reclaimed_mb": "0 MiB: measured over 5 samples; no process on this GPU was idle in every sample."
      }
    }
  ],
  "idle_processes": [
    {
      "command": "idle-worker",
      "gpu_index": 0,
      "pid": 200,
      "user": "",
      "vram_mb": 512
    },
    {
      "command": "idle-worker",
      "gpu_index": 0,
      "pid": 201,
      "user": "bob",
      "vram_mb": 530
    }
  ],
  "measured": true,
  "provenance": {
    "compression_ratio": "derived",
    "dedup_buffer_count": "derived",
    "estimated_reclaimable_mb": "measured"
  },
  "rationale": {
    "compression_ratio": "1.97: derived, not measured: the duplicate groups' VRAM over one copy each (the largest member of each group), if each group could share one copy; 1.0 when there is no group.",
    "dedup_buffer_count": "1: derived from measured VRAM, the sum over GPU(s) 0, 1 (see gpus).",
    "estimated_reclaimable_mb": "1042 MiB: measured, the sum over GPU(s) 0, 1 (see gpus)."
  },
  "samples": 5,
  "unattributed_processes": 2,
  "window_end": "2026-11-26T15:00:04.000Z",
  "window_start": "2026-11-26T15:00:00.000Z"
})EXP";
// The last three snapshots (ticks 2..4).
const char* const kThermal3 =
    R"EXP(timestamp,gpu_index,bus_id,temperature_c,cooldown_threshold_c,resume_threshold_c,power_w,power_limit_w,utilization_pct,vram_used_mb,backend
2026-11-26T15:00:02.000Z,0,0000:1b:00.0,63,83,70,301.25,700,90,4096,nvml
2026-11-26T15:00:02.000Z,1,,45.1235,90,75,,1.23457e+06,1.2345e-05,,sysfs
2026-11-26T15:00:03.000Z,0,0000:1b:00.0,64.5,83,70,301.25,700,90,4096,nvml
2026-11-26T15:00:03.000Z,1,,45.1235,90,75,,1.23457e+06,1.2345e-05,,sysfs
2026-11-26T15:00:03.000Z,5,0000:99:00.0,-0,,,,,,-1,nvidia-smi
2026-11-26T15:00:04.000Z,0,0000:1b:00.0,66,83,70,301.25,700,90,4096,nvml
2026-11-26T15:00:04.000Z,1,,45.1235,90,75,,1.23457e+06,1.2345e-05,,sysfs
)EXP";
const char* const kThermal3NoPlan =
    R"EXP(timestamp,gpu_index,bus_id,temperature_c,cooldown_threshold_c,resume_threshold_c,power_w,power_limit_w,utilization_pct,vram_used_mb,backend
2026-11-26T15:00:02.000Z,0,0000:1b:00.0,63,,,301.25,700,90,4096,nvml
2026-11-26T15:00:02.000Z,1,,45.1235,,,,1.23457e+06,1.2345e-05,,sysfs
2026-11-26T15:00:03.000Z,0,0000:1b:00.0,64.5,,,301.25,700,90,4096,nvml
2026-11-26T15:00:03.000Z,1,,45.1235,,,,1.23457e+06,1.2345e-05,,sysfs
2026-11-26T15:00:03.000Z,5,0000:99:00.0,-0,,,,,,-1,nvidia-smi
2026-11-26T15:00:04.000Z,0,0000:1b:00.0,66,,,301.25,700,90,4096,nvml
2026-11-26T15:00:04.000Z,1,,45.1235,,,,1.23457e+06,1.2345e-05,,sysfs
)EXP";
const char* const kHeat3 = R"EXP(timestamp,gpu_index,pid,command,user,utilization_pct,vram_mb
2026-11-26T15:00:02.000Z,0,100,"python,train ""big"" x",alice,6,1020
2026-11-26T15:00:02.000Z,0,200,idle-worker,,0,512
2026-11-26T15:00:02.000Z,0,201,idle-worker,bob,0,530
2026-11-26T15:00:02.000Z,,300,blender,1001,,
2026-11-26T15:00:02.000Z,,301,blender,1001,,64
2026-11-26T15:00:02.000Z,1,600,warmup,erin,0,300
2026-11-26T15:00:03.000Z,0,100,"python,train ""big"" x",alice,9,1030
2026-11-26T15:00:03.000Z,0,200,idle-worker,,0,512
2026-11-26T15:00:03.000Z,0,201,idle-worker,bob,0,530
2026-11-26T15:00:03.000Z,,300,blender,1001,,
2026-11-26T15:00:03.000Z,,301,blender,1001,,64
2026-11-26T15:00:03.000Z,1,600,warmup,erin,0,300
2026-11-26T15:00:03.000Z,1,500,late,dave,0,64
2026-11-26T15:00:04.000Z,0,100,"python,train ""big"" x",alice,12,1040
2026-11-26T15:00:04.000Z,0,200,idle-worker,,0,512
2026-11-26T15:00:04.000Z,0,201,idle-worker,bob,0,530
2026-11-26T15:00:04.000Z,,300,blender,1001,,
2026-11-26T15:00:04.000Z,,301,blender,1001,,64
2026-11-26T15:00:04.000Z,1,600,warmup,erin,0,300
2026-11-26T15:00:04.000Z,1,500,late,dave,0,64
)EXP";
const char* const kReclamation3 = R"EXP({
  "compression_ratio": 1.97,
  "dedup_buffer_count": 1,
  "duplicate_groups": [
    {
      "command": "idle-worker",
      "gpu_index": 0,
      "pids": [
        200,
        201
      ],
      "vram_mb_each": 512,
      "vram_mb_largest": 530,
      "vram_mb_total": 1042
    }
  ],
  "estimated_reclaimable_mb": 1342,
  "gpus": [
    {
      "compression_ratio": 1.97,
      "dedup_buffer_count": 1,
      "estimated_reclaimed_mb": 1042,
      "gpu_index": 0,
      "processes": 3,
      "processes_without_utilization": 0,
      "provenance": {
        "compression_ratio": "derived",
        "dedup_buffer_count": "derived",
        "estimated_reclaimed_mb": "measured"
      },
      "rationale": {
        "compression_ratio": "1.97: derived, not measured: inferred from the duplicate groups, which hold 1042 MiB in all against 530 MiB for one copy each (the largest member), if each group could share one copy.",
        "dedup_buffer_count": "1: derived from the VRAM measured in the newest sample: extra processes of `idle-worker` hold VRAM within 5% of the smallest of their group (taken as duplicate buffers; their contents are not compared).",
        "estimated_reclaimed_mb": "1042 MiB: measured over 3 samples, held by process(es) 200, 201 at 0% utilization in every sample."
      }
    },
    {
      "compression_ratio": 1.0,
      "dedup_buffer_count": 0,
      "estimated_reclaimed_mb": 300,
      "gpu_index": 1,
      "processes": 2,
      "processes_without_utilization": 0,
      "provenance": {
        "compression_ratio": "derived",
        "dedup_buffer_count": "derived",
        "estimated_reclaimed_mb": "measured"
      },
      "rationale": {
        "compression_ratio": "1.0: derived, not measured: there is no group of near-equal processes that could share one copy.",
        "dedup_buffer_count": "0: derived from the VRAM measured in the newest sample: no two processes of the same command hold VRAM within 5% of each other.",
        "estimated_reclaimed_mb": "300 MiB: measured over 3 samples, held by process(es) 600 at 0% utilization in every sample."
      }
    }
  ],
  "idle_processes": [
    {
      "command": "idle-worker",
      "gpu_index": 0,
      "pid": 200,
      "user": "",
      "vram_mb": 512
    },
    {
      "command": "idle-worker",
      "gpu_index": 0,
      "pid": 201,
      "user": "bob",
      "vram_mb": 530
    },
    {
      "command": "warmup",
      "gpu_index": 1,
      "pid": 600,
      "user": "erin",
      "vram_mb": 300
    }
  ],
  "measured": true,
  "provenance": {
    "compression_ratio": "derived",
    "dedup_buffer_count": "derived",
    "estimated_reclaimable_mb": "measured"
  },
  "rationale": {
    "compression_ratio": "1.97: derived, not measured: the duplicate groups' VRAM over one copy each (the largest member of each group), if each group could share one copy; 1.0 when there is no group.",
    "dedup_buffer_count": "1: derived from measured VRAM, the sum over GPU(s) 0, 1 (see gpus).",
    "estimated_reclaimable_mb": "1342 MiB: measured, the sum over GPU(s) 0, 1 (see gpus)."
  },
  "samples": 3,
  "unattributed_processes": 2,
  "window_end": "2026-11-26T15:00:04.000Z",
  "window_start": "2026-11-26T15:00:02.000Z"
})EXP";
// The first snapshot alone (what `apply` writes).
const char* const kReclamation1 = R"EXP({
  "compression_ratio": 1.97,
  "dedup_buffer_count": 1,
  "duplicate_groups": [
    {
      "command": "idle-worker",
      "gpu_index": 0,
      "pids": [
        200,
        201
      ],
      "vram_mb_each": 512,
      "vram_mb_largest": 530,
      "vram_mb_total": 1042
    }
  ],
  "estimated_reclaimable_mb": 2342,
  "gpus": [
    {
      "compression_ratio": 1.97,
      "dedup_buffer_count": 1,
      "estimated_reclaimed_mb": 2142,
      "gpu_index": 0,
      "processes": 4,
      "processes_without_utilization": 0,
      "provenance": {
        "compression_ratio": "derived",
        "dedup_buffer_count": "derived",
        "estimated_reclaimed_mb": "measured"
      },
      "rationale": {
        "compression_ratio": "1.97: derived, not measured: inferred from the duplicate groups, which hold 1042 MiB in all against 530 MiB for one copy each (the largest member), if each group could share one copy.",
        "dedup_buffer_count": "1: derived from the VRAM measured in the newest sample: extra processes of `idle-worker` hold VRAM within 5% of the smallest of their group (taken as duplicate buffers; their contents are not compared).",
        "estimated_reclaimed_mb": "2142 MiB: measured over 1 sample, held by process(es) 100, 200, 201, 400 at 0% utilization in every sample."
      }
    },
    {
      "compression_ratio": 1.0,
      "dedup_buffer_count": 0,
      "estimated_reclaimed_mb": 200,
      "gpu_index": 1,
      "processes": 2,
      "processes_without_utilization": 0,
      "provenance": {
        "compression_ratio": "derived",
        "dedup_buffer_count": "derived",
        "estimated_reclaimed_mb": "measured"
      },
      "rationale": {
        "compression_ratio": "1.0: derived, not measured: there is no group of near-equal processes that could share one copy.",
        "dedup_buffer_count": "0: derived from the VRAM measured in the newest sample: no two processes of the same command hold VRAM within 5% of each other.",
        "estimated_reclaimed_mb": "200 MiB: measured over 1 sample, held by process(es) 400 at 0% utilization in every sample."
      }
    }
  ],
  "idle_processes": [
    {
      "command": "python,train \"big\"\nx",
      "gpu_index": 0,
      "pid": 100,
      "user": "alice",
      "vram_mb": 1000
    },
    {
      "command": "idle-worker",
      "gpu_index": 0,
      "pid": 200,
      "user": "",
      "vram_mb": 512
    },
    {
      "command": "idle-worker",
      "gpu_index": 0,
      "pid": 201,
      "user": "bob",
      "vram_mb": 530
    },
    {
      "command": "multi",
      "gpu_index": 0,
      "pid": 400,
      "user": "carol",
      "vram_mb": 100
    },
    {
      "command": "multi",
      "gpu_index": 1,
      "pid": 400,
      "user": "carol",
      "vram_mb": 200
    }
  ],
  "measured": true,
  "note": "a single sample: idleness over time needs the daemon's window",
  "provenance": {
    "compression_ratio": "derived",
    "dedup_buffer_count": "derived",
    "estimated_reclaimable_mb": "measured"
  },
  "rationale": {
    "compression_ratio": "1.97: derived, not measured: the duplicate groups' VRAM over one copy each (the largest member of each group), if each group could share one copy; 1.0 when there is no group.",
    "dedup_buffer_count": "1: derived from measured VRAM, the sum over GPU(s) 0, 1 (see gpus).",
    "estimated_reclaimable_mb": "2342 MiB: measured, the sum over GPU(s) 0, 1 (see gpus)."
  },
  "samples": 1,
  "unattributed_processes": 2,
  "window_end": "2026-11-26T15:00:00.000Z",
  "window_start": "2026-11-26T15:00:00.000Z"
})EXP";
const char* const kReclamation0 = R"EXP({
  "compression_ratio": null,
  "dedup_buffer_count": null,
  "duplicate_groups": [],
  "estimated_reclaimable_mb": null,
  "gpus": [],
  "idle_processes": [],
  "measured": false,
  "note": "not measured: no telemetry samples",
  "provenance": {
    "compression_ratio": "derived",
    "dedup_buffer_count": "derived",
    "estimated_reclaimable_mb": "measured"
  },
  "rationale": {
    "compression_ratio": "null: not measured: no process telemetry was given.",
    "dedup_buffer_count": "null: not measured: no process telemetry was given.",
    "estimated_reclaimable_mb": "null: not measured: no process telemetry was given."
  },
  "samples": 0,
  "unattributed_processes": 0,
  "window_end": null,
  "window_start": null
})EXP";

TelemetrySnapshot tick(const std::string& ts, std::vector<ProcessSample> procs = {}) {
  TelemetrySnapshot s;
  s.timestamp = ts;
  s.processes = std::move(procs);
  return s;
}

ProcessSample process(int pid, const std::string& command, const std::string& user = "u") {
  ProcessSample p;
  p.pid = pid;
  p.command = command;
  p.user = user;
  p.gpu_index = 0;
  p.vram_mb = 10;
  return p;
}

TEST(SampleWindow, RingKeepsTheNewestInOrder) {
  SampleWindow w(3);
  EXPECT_TRUE(w.empty());
  EXPECT_EQ(w.capacity(), 3u);
  for (int i = 0; i < 2; ++i) w.push(tick("t" + std::to_string(i)));
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w.timestamp(0), "t0");
  EXPECT_EQ(w.timestamp(1), "t1");
  for (int i = 2; i < 8; ++i) w.push(tick("t" + std::to_string(i), {process(i, "c")}));
  ASSERT_EQ(w.size(), 3u);
  EXPECT_EQ(w.timestamp(0), "t5");
  EXPECT_EQ(w.timestamp(1), "t6");
  EXPECT_EQ(w.timestamp(2), "t7");
  ASSERT_EQ(w.processes(0).size(), 1u);
  EXPECT_EQ(w.processes(0)[0].pid, 5);
  EXPECT_EQ(w.processes(2)[0].pid, 7);
  EXPECT_EQ(w.heatmap_rows(1), "t6,0,6,c,u,,10\n");
  // Only pids still in the window are analyzed.
  EXPECT_EQ(w.reclaim(0).gpus.at(0).processes, 3u);

  SampleWindow none(0);
  none.push(tick("t0", {process(1, "c")}));
  EXPECT_TRUE(none.empty());
  EXPECT_TRUE(none.reclaim(0).gpus.empty());

  SampleWindow one(1);
  one.push(tick("a", {process(1, "x")}));
  one.push(tick("b", {process(2, "y")}));
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one.timestamp(0), "b");
  EXPECT_EQ(fairness_heatmap_csv(one),
            "timestamp,gpu_index,pid,command,user,utilization_pct,vram_mb\nb,0,2,y,u,,10\n");

  w.clear();
  EXPECT_TRUE(w.empty());
  EXPECT_EQ(w.string_count(), 0u);
  w.push(tick("again"));
  EXPECT_EQ(w.timestamp(0), "again");
}

TEST(SampleWindow, InternsCommandsAndUsersOnce) {
  SampleWindow w(10);
  for (int i = 0; i < 10; ++i)
    w.push(tick("t", {process(1, "python", "alice"), process(2, "python", "bob"),
                      process(3, "alice", "alice")}));
  // "python", "alice", "bob": one entry each, shared by every tick.
  EXPECT_EQ(w.string_count(), 3u);
  int64_t py = w.find_string("python");
  ASSERT_GE(py, 0);
  EXPECT_EQ(w.str(static_cast<uint32_t>(py)), "python");
  EXPECT_EQ(w.processes(9)[0].command, static_cast<uint32_t>(py));
  EXPECT_EQ(w.processes(0)[1].command, static_cast<uint32_t>(py));
  EXPECT_EQ(w.processes(4)[2].command, w.processes(4)[0].user);  // "alice" both ways
  EXPECT_EQ(w.find_string("nobody"), -1);
}

TEST(SampleWindow, PrunesStringsThatLeftTheWindow) {
  SampleWindow w(2);
  // A new command every tick: without pruning the table would hold 2000 of them.
  for (int i = 0; i < 2000; ++i)
    w.push(tick("t" + std::to_string(i), {process(i, "cmd" + std::to_string(i), "same")}));
  EXPECT_LE(w.string_count(), SampleWindow::kPruneMin + 1);
  EXPECT_EQ(w.find_string("cmd0"), -1);
  EXPECT_EQ(w.find_string("cmd1500"), -1);
  // What the window still shows is intact.
  for (const char* s : {"cmd1998", "cmd1999", "same"}) EXPECT_GE(w.find_string(s), 0) << s;
  EXPECT_EQ(w.str(w.processes(0)[0].command), "cmd1998");
  EXPECT_EQ(w.str(w.processes(1)[0].command), "cmd1999");
  EXPECT_EQ(w.str(w.processes(1)[0].user), "same");
  // Freed ids are reused: none is far beyond what the table ever held at once.
  EXPECT_LE(w.processes(1)[0].command, SampleWindow::kPruneMin + 1);
  auto recl = vram_reclamation(w);
  EXPECT_EQ(recl["samples"], 2);
  EXPECT_EQ(w.reclaim(0).gpus.at(0).processes, 2u);
  EXPECT_EQ(fairness_heatmap_csv(w),
            "timestamp,gpu_index,pid,command,user,utilization_pct,vram_mb\n"
            "t1998,0,1998,cmd1998,same,,10\nt1999,0,1999,cmd1999,same,,10\n");
}

TEST(SampleWindow, SnapshotOverloadsGiveTheFormerBytes) {
  auto h = fixture_history();
  Plan plan = fixture_plan();
  EXPECT_EQ(thermal_signature_csv(h, &plan), kThermal5);
  EXPECT_EQ(fairness_heatmap_csv(h), kHeat5);
  EXPECT_EQ(dump_json(vram_reclamation(h), 2), kReclamation5);
  std::vector<TelemetrySnapshot> first(h.begin(), h.begin() + 1);
  EXPECT_EQ(dump_json(vram_reclamation(first), 2), kReclamation1);
  EXPECT_EQ(dump_json(vram_reclamation(std::vector<TelemetrySnapshot>{}), 2), kReclamation0);
}

TEST(SampleWindow, SlidingWindowGivesTheFormerBytesOfItsTicks) {
  // Ticks 0 and 1 leave a window of 3: pid 400 (two GPUs) goes, and pid 600, busy only in
  // ticks 0 and 1, becomes idle over the whole window. The "blender" pair has no GPU index:
  // never a duplicate group (only counted as unattributed).
  auto h = fixture_history();
  Plan plan = fixture_plan();
  SampleWindow w(3);
  for (const auto& s : h) w.push(s);
  EXPECT_EQ(thermal_signature_csv(w, &plan), kThermal3);
  EXPECT_EQ(thermal_signature_csv(w, nullptr), kThermal3NoPlan);
  EXPECT_EQ(fairness_heatmap_csv(w), kHeat3);
  EXPECT_EQ(dump_json(vram_reclamation(w), 2), kReclamation3);
}

TEST(SampleWindow, WritesTheFilesFromTheWindow) {
  test::TempDir tmp;
  std::string state = tmp / "state";
  auto h = fixture_history();
  Plan plan = fixture_plan();
  SampleWindow w(3);
  for (const auto& s : h) w.push(s);
  std::vector<std::string> errors;
  auto written = write_artifacts(state, w, &plan, true, &errors);
  ASSERT_EQ(written.size(), 3u) << (errors.empty() ? "" : errors[0]);
  EXPECT_EQ(test::read_file(state + "/artifacts/thermal_signature.csv"), kThermal3);
  EXPECT_EQ(test::read_file(state + "/artifacts/fairness_heatmap.csv"), kHeat3);
  EXPECT_EQ(test::read_file(state + "/artifacts/vram_reclamation.json"),
            std::string(kReclamation3) + "\n");
  // The snapshot overload (apply's) writes the same as before too; no heatmap when off.
  std::string state2 = tmp / "state2";
  written = write_artifacts(state2, h, &plan, false, &errors);
  EXPECT_EQ(written.size(), 2u);
  EXPECT_EQ(test::read_file(state2 + "/artifacts/thermal_signature.csv"), kThermal5);
  EXPECT_FALSE(std::filesystem::exists(state2 + "/artifacts/fairness_heatmap.csv"));
}

TEST(SampleWindow, EvictionMatchesAFreshWindowOfTheSameTicks) {
  // Pseudo-random processes coming and going, VRAM and utilization known or not: a window
  // that slid over 40 ticks renders what one built from its last 7 ticks renders.
  std::vector<TelemetrySnapshot> h;
  uint32_t r = 12345;
  auto next = [&r] { return r = r * 1103515245u + 12345u, (r >> 16) & 0x7fff; };
  for (int i = 0; i < 40; ++i) {
    TelemetrySnapshot s;
    s.timestamp = "t" + std::to_string(i);
    int n = static_cast<int>(next() % 6);
    for (int k = 0; k < n; ++k) {
      ProcessSample p;
      p.pid = static_cast<int>(next() % 8);
      p.command = "c" + std::to_string(next() % 3);
      p.user = "u" + std::to_string(next() % 2);
      if (next() % 4) p.gpu_index = static_cast<int>(next() % 2);
      if (next() % 3) p.vram_mb = static_cast<int64_t>(100 + next() % 4);
      if (next() % 3) p.utilization_pct = next() % 2 ? 0.0 : 12.5;
      s.processes.push_back(p);
    }
    GpuSample g;
    g.index = static_cast<int>(next() % 2);
    if (next() % 2) g.temperature_c = 40 + next() % 50;
    g.backend = "nvml";
    s.gpus.push_back(g);
    h.push_back(s);
  }
  Plan plan = fixture_plan();
  SampleWindow w(7);
  for (size_t i = 0; i < h.size(); ++i) {
    w.push(h[i]);
    std::vector<TelemetrySnapshot> tail(h.begin() + static_cast<long>(i + 1 - w.size()),
                                        h.begin() + static_cast<long>(i + 1));
    ASSERT_EQ(dump_json(vram_reclamation(w), 2), dump_json(vram_reclamation(tail), 2)) << i;
    ASSERT_EQ(fairness_heatmap_csv(w), fairness_heatmap_csv(tail)) << i;
    ASSERT_EQ(thermal_signature_csv(w, &plan), thermal_signature_csv(tail, &plan)) << i;
  }
  EXPECT_NE(dump_json(vram_reclamation(w)).find("\"idle_processes\""), std::string::npos);
}

TEST(SampleWindow, PlanWindowForTheDaemonsReplanning) {
  auto h = fixture_history();
  SampleWindow w(3);
  for (const auto& s : h) w.push(s);
  TelemetryWindow tw = w.plan_window(2.0);
  EXPECT_DOUBLE_EQ(tw.duration_s, 6.0);
  ASSERT_EQ(tw.samples.size(), 3u);
  // Tick 2: pids 100, 200, 201, 600 (300 and 301 have no GPU index).
  ASSERT_EQ(tw.samples[0].size(), 4u);
  EXPECT_EQ(tw.samples[0][0].pid, 100);
  EXPECT_EQ(tw.samples[0][0].command, "python,train \"big\"\nx");
  EXPECT_EQ(tw.samples[0][0].user, "alice");
  EXPECT_EQ(tw.samples[0][0].vram_mb, 1020);
  ASSERT_TRUE(tw.samples[0][0].utilization_pct);
  EXPECT_DOUBLE_EQ(*tw.samples[0][0].utilization_pct, 6.0);
  EXPECT_EQ(tw.samples[0][3].pid, 600);
  EXPECT_EQ(tw.samples[0][3].gpu_index, 1);
  ASSERT_EQ(tw.samples[2].size(), 5u);  // pid 500 from tick 3 on
  EXPECT_EQ(tw.samples[2][4].pid, 500);
  EXPECT_EQ(tw.samples[2][4].user, "dave");

  SampleWindow u(2);
  ProcessSample p = process(9, "x");
  p.vram_mb.reset();
  u.push(tick("t", {p}));
  TelemetryWindow tu = u.plan_window(1.0);
  ASSERT_EQ(tu.samples.size(), 1u);
  ASSERT_EQ(tu.samples[0].size(), 1u);
  EXPECT_FALSE(tu.samples[0][0].vram_mb);  // unknown VRAM stays unknown
  EXPECT_FALSE(tu.samples[0][0].utilization_pct);
}

// Issue 10: the plan and vram_reclamation.json use one analysis. Three processes of one
// command at 100, 104 and 108 MiB: one duplicate buffer in both (the artifact said none).
Plan plan_from(const SampleWindow& w, int gpus) {
  PlanInput in;
  for (int i = 0; i < gpus; ++i) {
    GpuSpec g;
    g.index = i;
    g.f.vendor = "nvidia";
    g.f.vram_total_mb = 81559;
    in.specs.push_back(g);
  }
  in.telemetry = w.plan_window(0);
  in.generated_at = "2026-11-26T15:00:00Z";
  PlanOutcome o = build_plan(in);
  EXPECT_TRUE(o.ok);
  return o.plan;
}

ProcessSample worker(int pid, int64_t vram, std::optional<double> util) {
  ProcessSample p = process(pid, "worker");
  p.vram_mb = vram;
  p.utilization_pct = util;
  return p;
}

TEST(Reclamation, PlanAndArtifactGiveTheSameDedupCount) {
  SampleWindow w(4);
  for (int t = 0; t < 2; ++t)
    w.push(tick("t" + std::to_string(t),
                {worker(1, 100, 20.0), worker(2, 104, 20.0), worker(3, 108, 20.0)}));
  Plan plan = plan_from(w, 1);
  auto recl = vram_reclamation(w);
  ASSERT_EQ(plan.gpus[0].dedup_buffer_count, 1);
  EXPECT_EQ(recl["dedup_buffer_count"], 1);
  EXPECT_EQ(recl["gpus"][0]["dedup_buffer_count"], 1);
  EXPECT_EQ(recl["compression_ratio"], 1.96);
  EXPECT_EQ(plan.gpus[0].compression_ratio, 1.96);
  EXPECT_EQ(recl["estimated_reclaimable_mb"], 0);
  EXPECT_EQ(plan.gpus[0].estimated_reclaimed_mb, 0);
  ASSERT_EQ(recl["duplicate_groups"].size(), 1u);
  EXPECT_EQ(recl["duplicate_groups"][0]["pids"], nlohmann::json::array({1, 2}));
  // compression_ratio is inferred, never labelled "measured".
  EXPECT_EQ(recl["provenance"]["compression_ratio"], "derived");
  EXPECT_EQ(recl["gpus"][0]["provenance"]["compression_ratio"], "derived");
}

// Pseudo-random windows: per GPU, the artifact's figures are the plan's, rationale included.
TEST(Reclamation, PlanAndArtifactAgreeOnRandomWindows) {
  uint32_t r = 777;
  auto next = [&r] { return r = r * 1103515245u + 12345u, (r >> 16) & 0x7fff; };
  SampleWindow w(6);
  for (int i = 0; i < 30; ++i) {
    TelemetrySnapshot s;
    s.timestamp = "t" + std::to_string(i);
    int n = static_cast<int>(next() % 7);
    for (int k = 0; k < n; ++k) {
      ProcessSample p;
      p.pid = static_cast<int>(next() % 6);
      p.command = "c" + std::to_string(next() % 2);
      if (next() % 5) p.gpu_index = static_cast<int>(next() % 2);
      if (next() % 4) p.vram_mb = static_cast<int64_t>(100 + next() % 12);
      if (next() % 3) p.utilization_pct = next() % 3 ? 0.0 : 40.0;
      s.processes.push_back(p);
    }
    w.push(s);
    Plan plan = plan_from(w, 2);
    auto recl = vram_reclamation(w);
    for (const auto& g : plan.gpus) {
      nlohmann::json entry;
      for (const auto& e : recl["gpus"])
        if (e["gpu_index"] == g.index) entry = e;
      auto same = [&](const char* f, const nlohmann::json& v) {
        if (entry.is_null()) {
          EXPECT_TRUE(v.is_null()) << i << " " << f;
          EXPECT_NE(g.rationale.at(f).find("not measured"), std::string::npos) << i << " " << f;
          return;
        }
        EXPECT_EQ(entry[f], v) << i << " GPU " << g.index << " " << f;
        EXPECT_EQ(entry["rationale"][f], g.rationale.at(f)) << i << " " << f;
        EXPECT_EQ(entry["provenance"][f], g.provenance.at(f)) << i << " " << f;
      };
      auto js = [](const auto& o) { return o ? nlohmann::json(*o) : nlohmann::json(nullptr); };
      same("estimated_reclaimed_mb", js(g.estimated_reclaimed_mb));
      same("dedup_buffer_count", js(g.dedup_buffer_count));
      same("compression_ratio", js(g.compression_ratio));
    }
  }
}

// Nothing measured: null with "not measured", never 0 / 0 / 1.0, in the plan and the artifact.
TEST(Reclamation, EmptyWindowIsNullNotZero) {
  SampleWindow w(3);
  auto recl = vram_reclamation(w);
  for (const char* f : {"estimated_reclaimable_mb", "dedup_buffer_count", "compression_ratio"}) {
    EXPECT_TRUE(recl[f].is_null()) << f;
    EXPECT_EQ(recl["rationale"][f], "null: not measured: no process telemetry was given.") << f;
  }
  EXPECT_EQ(recl["measured"], false);
  // Ticks without any process with a GPU index: still not measured.
  ProcessSample nogpu = process(5, "x");
  nogpu.gpu_index.reset();
  w.push(tick("t0", {nogpu}));
  recl = vram_reclamation(w);
  EXPECT_TRUE(recl["estimated_reclaimable_mb"].is_null());
  EXPECT_TRUE(recl["dedup_buffer_count"].is_null());
  EXPECT_EQ(recl["unattributed_processes"], 1);
  Plan plan = plan_from(w, 1);
  EXPECT_FALSE(plan.gpus[0].estimated_reclaimed_mb);
  EXPECT_FALSE(plan.gpus[0].dedup_buffer_count);
  EXPECT_FALSE(plan.gpus[0].compression_ratio);
  std::string js = plan_to_json_text(plan);
  EXPECT_NE(js.find("\"compression_ratio\": null"), std::string::npos) << js;
}

// A process with no utilization sample (NVML gave none) is unknown, not idle.
TEST(Reclamation, NoUtilizationSampleIsNotIdle) {
  SampleWindow w(3);
  for (int t = 0; t < 3; ++t)
    w.push(tick("t" + std::to_string(t),
                {worker(1, 4096, std::nullopt), worker(2, 50, t == 1 ? 30.0 : 0.0)}));
  auto recl = vram_reclamation(w);
  EXPECT_EQ(recl["estimated_reclaimable_mb"], 0) << recl.dump(1);
  EXPECT_TRUE(recl["idle_processes"].empty());
  EXPECT_EQ(recl["gpus"][0]["processes_without_utilization"], 1);
  EXPECT_NE(recl["gpus"][0]["rationale"]["estimated_reclaimed_mb"].get<std::string>().find(
                "1 process (pid 1) had no utilization sample"),
            std::string::npos);
  Plan plan = plan_from(w, 1);
  EXPECT_EQ(plan.gpus[0].estimated_reclaimed_mb, 0);
}

// daemon_status.json is written as text (daemon/json_text.h): the bytes dump_json(j, 1) gives
// for the same object.
TEST(StatusJsonText, SameBytesAsDumpJson) {
  using nlohmann::json;
  const std::string odd = std::string("tab\there \"q\" back\\slash caf\xc3\xa9 bad\xff ctl\x01");
  json gpu0 = {{"index", 0},         {"bus_id", "0000:1b:00.0"}, {"uuid", json()},
               {"stale", false},     {"temperature_c", 61.5},    {"power_limit_w", 700.0},
               {"preemptive", true}, {"cooldown_c", 83}};
  json gpu1 = {{"index", 1}, {"model", odd}, {"temperature_c", json()}};
  json expected = {{"pid", 4242L},
                   {"comm", "grey-gpu-opt"},
                   {"ticks", uint64_t{18446744073709551615u}},
                   {"last_tick_unix", 1795705200.123},
                   {"tiny", 1e-05},
                   {"big", 1e+20},
                   {"whole", 100000.0},
                   {"neg", -0.25},
                   {"nan", std::nan("")},
                   {"enforcing", false},
                   {"metrics_listen", json()},
                   {"source_ms", {{"nvml", 0.412}, {"fdinfo", 0.0}, {"sysfs", 3.0}}},
                   {"empty", json::object()},
                   {"none", json::array()},
                   {"gpus", {gpu0, gpu1}}};

  JsonObjectText g0(2);
  g0.integer("index", 0)
      .str("bus_id", "0000:1b:00.0")
      .null("uuid")
      .boolean("stale", false)
      .num("temperature_c", 61.5)
      .opt_num("power_limit_w", 700.0)
      .boolean("preemptive", true)
      .integer("cooldown_c", 83);
  JsonObjectText g1(2);
  g1.integer("index", 1).str("model", odd).opt_num("temperature_c", std::nullopt);
  JsonObjectText src(1);
  src.num("nvml", 0.412).num("fdinfo", 0.0).num("sysfs", 3.0);
  JsonObjectText empty(1);
  JsonObjectText top(0);
  top.integer("pid", 4242L)
      .str("comm", "grey-gpu-opt")
      .integer("ticks", uint64_t{18446744073709551615u})
      .num("last_tick_unix", 1795705200.123)
      .num("tiny", 1e-05)
      .num("big", 1e+20)
      .num("whole", 100000.0)
      .num("neg", -0.25)
      .num("nan", std::nan(""))
      .boolean("enforcing", false)
      .null("metrics_listen")
      .raw("source_ms", src.text())
      .raw("empty", empty.text())
      .raw("none", json_array_text({}, 1))
      .raw("gpus", json_array_text({g0.text(), g1.text()}, 1));
  EXPECT_EQ(top.text(), dump_json(expected, 1));
  // Spot checks of the reference itself, so a change on both sides still shows.
  EXPECT_NE(top.text().find("\n \"gpus\": [\n  {\n   \"bus_id\": \"0000:1b:00.0\",\n"),
            std::string::npos)
      << top.text();
  EXPECT_NE(top.text().find("\"whole\": 100000.0\n}"), std::string::npos);
  EXPECT_NE(top.text().find("\"nan\": null,"), std::string::npos);
}

}  // namespace
}  // namespace grey
