// What can back a per-process VRAM cap on this machine, found at run time (issue 6):
//   * "shim": libgrey_cap.so, our LD_PRELOAD CUDA driver API shim, for programs started with
//     `grey-gpu-opt run --enforce-cap` (NVIDIA/CUDA only);
//   * "mps": a running NVIDIA MPS control daemon; its clients honour
//     CUDA_MPS_PINNED_DEVICE_MEM_LIMIT, which the driver itself enforces;
//   * the cgroup v2 "dmem" controller (Linux >= 6.13), which limits device memory per cgroup for
//     drivers that register regions (listed in /sys/fs/cgroup/dmem.capacity). Reported only:
//     grey does not create cgroups.
// Nothing here writes anything.
#pragma once

#include <string>
#include <vector>

#include "util/host_fs.h"

namespace grey {

struct CapMechanisms {
  std::string shim_path;                   // absolute path of libgrey_cap.so; "" when not found
  std::vector<std::string> shim_searched;  // where it was looked for (for the error message)
  bool mps = false;
  std::string mps_evidence;  // "control pipe /tmp/nvidia-mps/control", "process 1234 (...)"
  bool dmem = false;
  std::vector<std::string> dmem_regions;  // "nvidia/0000:01:00.0/vidmem 85899345920", ...
  std::vector<std::string> notes;

  bool shim() const { return !shim_path.empty(); }
  // One line a user reads: what backs a cap for a program started with `run --enforce-cap`.
  std::string summary() const;
  // The plan's enforcement word for a CUDA program's cap under `run --enforce-cap`: "mps" when
  // an MPS control daemon runs, else "shim" when libgrey_cap.so was found, else "".
  std::string cuda_cap_tier() const;
  // Where those were found, for the plan's rationale.
  std::string cuda_cap_how() const;
};

// The shim: $GREY_CAP_SHIM when set (must exist), else next to the executable, in
// ../lib/grey-gpu-opt (the install layout: PREFIX/bin and PREFIX/lib/grey-gpu-opt), in ../lib or
// in shim/ (the build tree). `exe_path` is /proc/self/exe's target.
std::string find_cap_shim(const std::string& exe_path, std::vector<std::string>* searched);

// MPS: a control pipe in $CUDA_MPS_PIPE_DIRECTORY (default /tmp/nvidia-mps) or a process whose
// comm is nvidia-cuda-mps-control (truncated by the kernel to "nvidia-cuda-mps"); dmem: the
// controller in /sys/fs/cgroup/cgroup.controllers and its regions in dmem.capacity.
// scan_processes=false skips the walk over /proc (the pipe check stays): `plan` keeps it cheap.
CapMechanisms detect_cap_mechanisms(HostFs& fs, const std::string& exe_path,
                                    bool scan_processes = true);

// This process's executable (readlink /proc/self/exe), "" when unknown.
std::string self_exe_path();

}  // namespace grey
