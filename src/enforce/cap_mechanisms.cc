#include "enforce/cap_mechanisms.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include "util/strings.h"

namespace grey {

namespace {

bool is_file(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string dir_of(const std::string& p) {
  size_t slash = p.rfind('/');
  return slash == std::string::npos ? "." : (slash == 0 ? "/" : p.substr(0, slash));
}

}  // namespace

std::string self_exe_path() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "";
  return std::string(buf, static_cast<size_t>(n));
}

std::string find_cap_shim(const std::string& exe_path, std::vector<std::string>* searched) {
  auto tried = [&](const std::string& p) {
    if (searched) searched->push_back(p);
    return is_file(p);
  };
  if (const char* env = std::getenv("GREY_CAP_SHIM"); env && *env)
    return tried(env) ? std::string(env) : std::string();
  if (exe_path.empty()) return "";
  const std::string d = dir_of(exe_path);
  // PREFIX/bin/grey-gpu-opt finds PREFIX/lib/grey-gpu-opt/libgrey_cap.so (what `cmake
  // --install` and the .deb lay out), wherever the prefix is.
  for (const std::string& p : {d + "/libgrey_cap.so", d + "/../lib/grey-gpu-opt/libgrey_cap.so",
                               d + "/../lib/libgrey_cap.so", d + "/shim/libgrey_cap.so"}) {
    if (tried(p)) {
      char real[4096];
      return ::realpath(p.c_str(), real) ? std::string(real) : p;
    }
  }
  return "";
}

CapMechanisms detect_cap_mechanisms(HostFs& fs, const std::string& exe_path, bool scan_processes) {
  CapMechanisms m;
  m.shim_path = find_cap_shim(exe_path, &m.shim_searched);

  // MPS: the control daemon's pipe, else its process.
  const char* pipe_env = std::getenv("CUDA_MPS_PIPE_DIRECTORY");
  std::string pipe_dir = pipe_env && *pipe_env ? pipe_env : "/tmp/nvidia-mps";
  if (fs.exists(pipe_dir + "/control")) {
    m.mps = true;
    m.mps_evidence = "control pipe " + pipe_dir + "/control";
  } else if (scan_processes) {
    for (const auto& name : fs.list("/proc")) {
      if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
      auto comm = fs.read("/proc/" + name + "/comm", 256);
      if (!comm) continue;
      std::string c(trim(*comm));
      // The kernel keeps 15 characters of the name: "nvidia-cuda-mps" (-control / -server).
      if (c == "nvidia-cuda-mps" || c == "nvidia-cuda-mps-control") {
        // Its clients reach it only through its pipe directory: with the pipe elsewhere, a
        // program started from here would not be an MPS client, and the MPS memory limit
        // would not apply. Said, not counted.
        m.notes.push_back("an MPS control daemon runs (process " + name + ", " + c + ") but " +
                          pipe_dir +
                          " has no control pipe: set CUDA_MPS_PIPE_DIRECTORY to its pipe "
                          "directory to make programs its clients");
        break;
      }
    }
  }

  // cgroup v2 dmem.
  if (auto ctl = fs.read("/sys/fs/cgroup/cgroup.controllers", 4096)) {
    for (auto w : split(trim(*ctl), ' '))
      if (trim(w) == "dmem") m.dmem = true;
  }
  if (m.dmem) {
    if (auto cap = fs.read("/sys/fs/cgroup/dmem.capacity", 65536))
      for (auto line : split_lines(*cap))
        if (!trim(line).empty()) m.dmem_regions.emplace_back(trim(line));
  }
  return m;
}

std::string CapMechanisms::cuda_cap_tier() const {
  return mps ? "mps" : shim() ? "shim" : "";
}

std::string CapMechanisms::cuda_cap_how() const {
  std::string s;
  if (mps) s = "MPS " + mps_evidence + ": CUDA_MPS_PINNED_DEVICE_MEM_LIMIT";
  if (shim()) s += (s.empty() ? "" : "; ") + std::string("libgrey_cap.so at ") + shim_path;
  return s;
}

std::string CapMechanisms::summary() const {
  std::string s;
  if (mps)
    s = "mps (CUDA_MPS_PINNED_DEVICE_MEM_LIMIT, enforced by the MPS server; " + mps_evidence + ")";
  if (shim()) s += (s.empty() ? "" : " + ") + std::string("shim (") + shim_path + ")";
  if (s.empty()) s = "advisory env (libgrey_cap.so not found)";
  for (const auto& n : notes) s += "; " + n;
  if (dmem)
    s += "; the cgroup v2 dmem controller is available (" + std::to_string(dmem_regions.size()) +
         " region(s) in /sys/fs/cgroup/dmem.capacity) but grey does not manage cgroups";
  return s;
}

}  // namespace grey
