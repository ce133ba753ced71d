#include "cli/apply_cmd.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <sstream>

#include "daemon/artifacts.h"
#include "detect/spec_store.h"
#include "enforce/actions.h"
#include "enforce/applier.h"
#include "enforce/cap_mechanisms.h"
#include "enforce/device_control.h"
#include "enforce/env_export.h"
#include "enforce/isolated_control.h"
#include "enforce/journal.h"
#include "enforce/placement.h"
#include "plan/config.h"
#include "plan/plan_io.h"
#include "telemetry/telemetry.h"
#include "util/clock.h"
#include "util/json_util.h"
#include "util/state_dir.h"
#include "util/strings.h"

extern char** environ;

namespace grey {

namespace {

std::optional<std::string> terminal_confirm(std::ostream& err) {
  if (!::isatty(0)) return std::nullopt;
  err << "This changes device settings (persistence mode, power limits). Type \"yes\" to go on: ";
  err.flush();
  std::string line;
  if (!std::getline(std::cin, line)) return std::nullopt;
  return std::string(trim(line));
}

// NVML control runs in child processes under the --timeout deadline unless this program runs
// its probes in process (GREY_PROBE_IN_PROCESS, tests).
ControlIsolation control_isolation(const GlobalOptions& g) {
  ControlIsolation iso;
  iso.exe = g.probe_exe;
  iso.timeout = std::chrono::milliseconds(std::max(1L, std::lround(g.timeout_s * 1000)));
  return iso;
}

}  // namespace

namespace {

// What `apply` works from: the plan (checked as a config is) and the saved specs.
struct ApplyInput {
  std::string plan_path;
  Plan plan;
  std::vector<GpuSpec> specs;
};

// Checks the options, makes the state dir, loads and validates the plan and asks for consent
// to --destructive. Returns the exit status of a failure (its message on err), or nullopt.
std::optional<int> prepare_apply(const GlobalOptions& g, const ApplyCliOptions& o,
                                 std::ostream& err, ApplyInput& in) {
  // The sample's deadline is a millisecond count: checked before any conversion (1e308 would not
  // fit), with detect's range.
  if (!(std::isfinite(g.timeout_s) && g.timeout_s > 0 && g.timeout_s <= 600)) {
    err << "error: --timeout must be a number of seconds in (0, 600], got " << g.timeout_s << "\n";
    return 2;
  }
  std::string e = ensure_state_dir(g.state_dir);
  if (!e.empty()) {
    err << "error: " << e << "\n";
    return 1;
  }
  in.plan_path = o.plan_file.value_or(g.state_dir + "/last_plan.yaml");
  const std::string& plan_path = in.plan_path;
  std::string perr;
  if (!o.plan_file && ::access(plan_path.c_str(), F_OK) != 0) {
    err << "error: no plan at " << plan_path << "; run `grey-gpu-opt plan` first\n";
    return 1;
  }
  auto plan = load_plan_file(plan_path, &perr);
  if (!plan) {
    err << "error: " << perr << "\n";
    return 1;
  }
  in.plan = std::move(*plan);
  auto loaded = load_specs(g.state_dir);
  if (loaded.ok) in.specs = loaded.specs;
  if (!loaded.ok && !loaded.missing) err << "warning: " << loaded.error << "\n";
  // The checks a config gets (plan/config.h), before anything is written or asked: a plan file
  // is input like a config file.
  if (auto bad = validate_plan(in.plan, in.specs, plan_path); !bad.empty()) {
    for (const auto& b : bad) err << "error: " << b << "\n";
    err << "error: " << plan_path
        << " holds values the planner would not produce; nothing was written or changed. Run "
           "`grey-gpu-opt plan` to write a plan again.\n";
    return 2;
  }
  if (o.destructive && !o.dry_run && !o.yes) {
    auto typed = o.confirm ? o.confirm(err) : terminal_confirm(err);
    if (!typed || *typed != "yes") {
      err << "error: --destructive changes device settings and needs consent: pass --yes, or "
             "type \"yes\" at the prompt on a terminal. Nothing was changed.\n";
      return 2;
    }
  }
  return std::nullopt;
}

// Step 1, the advisory tier: the env file and the applied plan (written on a real run), and
// per GPU what enforces its VRAM cap.
void apply_environment(const GlobalOptions& g, const ApplyInput& in,
                       const std::map<std::string, std::string>& env, bool real,
                       std::vector<std::string>& lines, ApplyResult& result) {
  const std::string prefix = real ? "" : "[DRY-RUN] ";
  std::string env_path = g.state_dir + "/env";
  std::string applied_path = g.state_dir + "/last_applied_plan.yaml";
  std::string applied_at = utc_now_text();
  lines.push_back(prefix + "write " + applied_path + " (plan " + to_string(in.plan.mode) + ", " +
                  std::to_string(in.plan.gpus.size()) + " GPU(s), applied_at " + applied_at + ")");
  lines.push_back(prefix + "write " + env_path + " with " + std::to_string(env.size()) +
                  " variables:");
  for (const auto& [k, v] : env) lines.push_back(prefix + "  " + k + "=" + v);
  if (real) {
    std::string body = "# applied_at: " + applied_at + "\n" + plan_to_yaml(in.plan);
    std::string w = write_file_atomic(applied_path, body);
    if (w.empty())
      w = write_file_atomic(env_path,
                            "# grey-gpu-opt apply, " + applied_at + "\n" + render_env(env, "sh"));
    if (!w.empty()) {
      result.errors.push_back(w);
      result.success = false;
    } else {
      result.artifacts.push_back(applied_path);
      result.artifacts.push_back(env_path);
    }
  }
  RootedFs mech_fs(g.sysfs_root, g.procfs_root);
  const CapMechanisms mech = detect_cap_mechanisms(mech_fs, self_exe_path(), false);
  for (const auto& gp : in.plan.gpus) {
    std::string cap_tier = gp.enforcement.count("per_process_vram_cap_mb")
                               ? gp.enforcement.at("per_process_vram_cap_mb")
                               : "advisory env";
    const GpuSpec* sp = spec_for(in.specs, gp);
    if (gp.per_process_vram_cap_mb && *gp.per_process_vram_cap_mb > 0 && sp &&
        sp->f.vendor == std::optional<std::string>("nvidia") && !mech.cuda_cap_tier().empty())
      cap_tier = mech.cuda_cap_tier() + " for programs started with `grey-gpu-opt run " +
                 "--enforce-cap` (" + mech.cuda_cap_how() + "), advisory env for others";
    lines.push_back("GPU " + std::to_string(gp.index) + ": per-process VRAM cap " +
                    (gp.per_process_vram_cap_mb
                         ? std::to_string(*gp.per_process_vram_cap_mb) + " MiB"
                         : std::string("unknown")) +
                    " enforced by: " + cap_tier +
                    " (frameworks that read GREY_VRAM_CAP_MB/CUPY_GPU_MEMORY_LIMIT/XLA_* honour "
                    "it), reactive (the daemon reports processes above it)");
  }
}

// The machine's doors `apply` uses for device control and the sample.
struct ApplyDoors {
  std::shared_ptr<RootedFs> fs;
  std::shared_ptr<PosixRunner> runner = std::make_shared<PosixRunner>();
  std::shared_ptr<DlLoader> loader = std::make_shared<DlLoader>();
};

// Step 2, the destructive tier: device settings, listed without --destructive, applied (and
// journaled) with it. Returns why NVML hung or crashed in a control child, empty when it did not.
std::string apply_device_settings(const GlobalOptions& g, const ApplyCliOptions& o,
                                  const ApplyInput& in, const ApplyDoors& doors, bool real,
                                  std::vector<std::string>& lines, ApplyResult& result) {
  std::vector<DeviceTarget> targets = device_targets(in.plan, in.specs);
  ApplyOutcome outcome;
  outcome.dry_run = !real;
  std::string nvml_broken;
  if (!targets.empty()) {
    SystemControl control(*doors.fs, *doors.runner, *doors.loader, control_isolation(g));
    std::vector<std::string> nvidia;
    for (const auto& t : targets)
      if (t.vendor == "nvidia" || (t.kernel_driver && *t.kernel_driver == "nvidia"))
        nvidia.push_back(t.bus_id);
    control.prefetch_nvml(nvidia);  // one NVML child for all of them
    std::vector<DeviceState> states;
    for (const auto& t : targets)
      states.push_back(control.probe(t.bus_id, t.vendor, t.kernel_driver));
    auto actions = plan_actions(targets, states);
    if (!o.destructive) {
      for (const auto& a : actions)
        lines.push_back("[DRY-RUN] " + describe(a) +
                        (a.skip ? "" : " (device settings need --no-dry-run --destructive)"));
      result.actions_skipped.push_back(std::to_string(actions.size()) +
                                       " device setting(s) not applied: --destructive not given");
    } else {
      Journal journal(Journal::path_in(g.state_dir));
      outcome = apply_actions(actions, control, journal, !real);
      for (const auto& a : outcome.actions) lines.push_back(a.line);
      if (real && std::any_of(outcome.actions.begin(), outcome.actions.end(),
                              [](const ActionOutcome& a) { return !a.journal_id.empty(); }))
        result.artifacts.push_back(journal.path());
    }
    nvml_broken = control.nvml().broken();
  }
  ApplyResult dev = to_apply_result(outcome, to_string(in.plan.mode));
  for (auto& l : dev.actions_applied) result.actions_applied.push_back(l);
  for (auto& l : dev.actions_skipped) result.actions_skipped.push_back(l);
  for (auto& l : dev.errors) result.errors.push_back(l);
  if (!dev.success) result.success = false;
  return nvml_broken;
}

// Step 3, real runs only: one telemetry sample and the artifacts from it.
void write_apply_artifacts(const GlobalOptions& g, const ApplyInput& in, const ApplyDoors& doors,
                           std::string nvml_broken, ApplyResult& result) {
  // Telemetry loads NVML into this process: not one that hung or crashed in a child.
  std::shared_ptr<LibLoader> tloader = doors.loader;
  if (!g.probe_exe.empty()) {
    if (nvml_broken.empty())
      nvml_broken = nvml_in_process_risk(*doors.runner, g.probe_exe, control_isolation(g).timeout);
    if (!nvml_broken.empty())
      tloader = std::make_shared<RefusingLoader>(doors.loader, "libnvidia-ml.so.1",
                                                 "not loaded: " + nvml_broken);
  }
  TelemetryCollector tc(doors.fs, tloader, doors.runner, in.specs,
                        std::chrono::milliseconds(static_cast<long>(g.timeout_s * 1000)));
  std::vector<TelemetrySnapshot> hist{tc.sample()};
  std::vector<std::string> aerr;
  for (auto& p : write_artifacts(g.state_dir, hist, &in.plan, true, &aerr))
    result.artifacts.push_back(p);
  for (auto& a : aerr) result.errors.push_back(a);
}

}  // namespace

int run_apply_command(const GlobalOptions& g, const ApplyCliOptions& o, std::ostream& out,
                      std::ostream& err) {
  ApplyInput in;
  if (auto rc = prepare_apply(g, o, err, in)) return *rc;
  const bool real = !o.dry_run;
  ApplyResult result;
  result.dry_run = !real;
  std::vector<std::string> lines;

  auto env = plan_environment(in.plan, in.specs);
  if (std::string bad = check_environment(env); !bad.empty()) {
    err << "error: the environment of " << in.plan_path << " cannot be written: " << bad << "\n";
    return 2;
  }
  apply_environment(g, in, env, real, lines, result);
  ApplyDoors doors;
  doors.fs = std::make_shared<RootedFs>(g.sysfs_root, g.procfs_root);
  std::string nvml_broken = apply_device_settings(g, o, in, doors, real, lines, result);
  if (real)
    write_apply_artifacts(g, in, doors, nvml_broken, result);
  else
    lines.push_back(
        "[DRY-RUN] take one telemetry sample and write artifacts/"
        "{vram_reclamation.json,thermal_signature.csv,fairness_heatmap.csv}");

  result.metrics.timestamp = utc_now_text();
  result.metrics.plan_mode = to_string(in.plan.mode);
  result.metrics.dry_run = !real;
  result.metrics.actions_count = static_cast<int>(lines.size());
  const std::string listed = real ? "write " : "[DRY-RUN] ";
  for (const auto& l : lines)
    if (l.rfind(listed, 0) == 0) result.actions_applied.push_back(l);

  if (o.json) {
    out << dump_json(result.to_json(), 2) << "\n";
  } else {
    for (const auto& l : lines) out << l << "\n";
    for (const auto& e2 : result.errors) err << "error: " << e2 << "\n";
    if (!real) out << "Dry run: nothing was changed. Apply with --no-dry-run.\n";
  }
  return result.success ? 0 : 1;
}

int run_env_command(const GlobalOptions& g, const std::string& shell, std::ostream& out,
                    std::ostream& err) {
  if (shell != "sh" && shell != "fish" && shell != "json") {
    err << "error: --shell must be sh, fish or json, got '" << shell << "'\n";
    return 2;
  }
  std::string path = g.state_dir + "/env", e;
  bool missing = false;
  auto text = read_file_checked(path, FileTrust::kState, &e, 64u << 20, &missing);
  if (!text) {
    if (missing)
      err << "error: no applied environment at " << path
          << "; run `grey-gpu-opt apply --no-dry-run` first\n";
    else
      err << "error: " << e << "\n";
    return 1;
  }
  // Printed for eval: nothing at all unless every line of the file is well formed.
  EnvFile f = parse_env_file(*text, path);
  if (!f.ok) {
    err << "error: " << f.error << "\n";
    return 2;
  }
  out << render_env(f.vars, shell);
  return 0;
}

namespace {
int exec_replace(const std::vector<std::string>& argv,
                 const std::map<std::string, std::string>& env) {
  std::vector<std::string> store;
  for (char** e = environ; e && *e; ++e) {
    std::string_view kv(*e);
    auto eq = kv.find('=');
    if (eq != std::string_view::npos && env.count(std::string(kv.substr(0, eq)))) continue;
    store.emplace_back(kv);
  }
  for (const auto& [k, v] : env) store.push_back(k + "=" + v);
  std::vector<char*> envp, args;
  for (auto& s : store) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> a = argv;
  for (auto& s : a) args.push_back(s.data());
  args.push_back(nullptr);
  // The PATH search of execvp, without its fall back to /bin/sh: a name with a slash is the
  // file itself; otherwise each PATH entry in turn, skipping directories and files that do not
  // exist. 127 when nothing was found; 126 (errno says why) when something was found but could
  // not be executed: not executable, a directory, a bad format or interpreter.
  std::vector<std::string> candidates;
  const bool path_given = argv[0].find('/') != std::string::npos;
  if (path_given) {
    candidates.push_back(argv[0]);
  } else if (!argv[0].empty()) {
    const char* path = std::getenv("PATH");
    for (auto dir : split(path ? path : "/usr/local/bin:/usr/bin:/bin", ':'))
      candidates.push_back((dir.empty() ? std::string(".") : std::string(dir)) + "/" + argv[0]);
  }
  int found_error = 0;  // why the first command found could not be executed
  for (const auto& c : candidates) {
    struct stat st;
    if (::stat(c.c_str(), &st) != 0) {
      if (errno != ENOENT && errno != ENOTDIR && !found_error) found_error = errno;
      continue;
    }
    if (S_ISDIR(st.st_mode)) {
      if (path_given) found_error = EISDIR;
      continue;
    }
    ::execve(c.c_str(), args.data(), envp.data());
    if (!found_error) found_error = errno;
    if (errno != EACCES) break;  // as execvp: only "permission denied" looks further
  }
  errno = found_error ? found_error : ENOENT;
  return found_error ? 126 : 127;
}
}  // namespace

int run_run_command(const GlobalOptions& g, const RunCliOptions& o, std::ostream& err,
                    int (*exec_fn)(const std::vector<std::string>&,
                                   const std::map<std::string, std::string>&)) {
  if (o.command.empty()) {
    err << "error: nothing to run: use `grey-gpu-opt run [--gpu N|auto] -- CMD ARGS...`\n";
    return 2;
  }
  std::optional<int64_t> gpu_index;  // usage first, before the plan is read
  // A MIG instance by its UUID (SPEC §9): CUDA takes "MIG-..." in CUDA_VISIBLE_DEVICES.
  const bool mig = o.gpu.size() > 4 && to_lower(o.gpu.substr(0, 4)) == "mig-";
  if (o.gpu != "auto" && !mig) {
    gpu_index = parse_int(o.gpu);
    if (!gpu_index) {
      err << "error: --gpu must be an index, a MIG UUID (MIG-...) or auto, got '" << o.gpu << "'\n";
      return 2;
    }
  }
  std::string applied = g.state_dir + "/last_applied_plan.yaml", perr;
  auto plan = load_plan_file(applied, &perr);
  if (!plan) {
    err << "error: no applied plan (" << perr << "); run `grey-gpu-opt apply --no-dry-run` first\n";
    return 1;
  }
  auto loaded = load_specs(g.state_dir);
  std::vector<GpuSpec> specs = loaded.ok ? loaded.specs : std::vector<GpuSpec>{};
  std::map<std::string, std::string> env;
  const GpuPlan* chosen = nullptr;
  GpuPlan mig_plan;  // the parent GPU's plan with the instance's own cap and batch size
  std::optional<int64_t> mig_memory;
  if (mig) {
    for (const auto& gp : plan->gpus)
      for (const auto& pp : gp.partitions)
        if (!chosen && pp.uuid && to_lower(*pp.uuid) == to_lower(o.gpu)) {
          mig_plan = gp;
          mig_plan.uuid = *pp.uuid;
          mig_plan.per_process_vram_cap_mb = pp.per_process_vram_cap_mb;
          mig_plan.recommended_batch_size = pp.recommended_batch_size;
          mig_plan.partitions.clear();
          mig_memory = pp.memory_total_mb;
          chosen = &mig_plan;
        }
    if (!chosen) {
      err << "error: --gpu " << o.gpu
          << ": the applied plan has no MIG instance with that UUID (see `grey-gpu-opt detect "
             "--json`, partitions[].uuid)\n";
      return 2;
    }
  } else if (gpu_index) {
    chosen = plan_gpu_at(*plan, *gpu_index);
    if (!chosen) {
      err << "error: --gpu " << *gpu_index
          << ": the applied plan has no GPU with that index (it has " << plan->gpus.size() << ")\n";
      return 2;
    }
  } else if (!plan->gpus.empty()) {
    // Least loaded by free VRAM, from a fresh sample; the saved spec when no sample answers.
    auto fs = std::make_shared<RootedFs>(g.sysfs_root, g.procfs_root);
    TelemetryCollector tc(fs, std::make_shared<DlLoader>(), std::make_shared<PosixRunner>(), specs,
                          std::chrono::milliseconds(static_cast<long>(g.timeout_s * 1000)));
    Placement where = place_least_loaded(*plan, tc.sample(), specs);
    chosen = where.gpu;
    if (g.verbose)
      err << "run: placed on GPU " << chosen->index << " (least loaded by free VRAM"
          << (where.free_mb ? ": " + std::to_string(*where.free_mb) + " MiB free" : ": unknown")
          << ")\n";
  }
  // A MIG instance: the parent GPU's plan with the instance's own cap, batch and memory.
  if (chosen) env = placement_environment(*chosen, specs, mig ? mig_memory : std::nullopt);
  if (o.enforce_cap) {
    if (!chosen) {
      err << "error: --enforce-cap: the applied plan has no GPU, so there is no cap to enforce\n";
      return 1;
    }
    const GpuSpec* sp = spec_for(specs, *chosen);
    std::string vendor = sp && sp->f.vendor ? *sp->f.vendor : "unknown";
    if (vendor != "nvidia" && vendor != "unknown") {
      err << "error: --enforce-cap: GPU " << chosen->index << " is " << vendor
          << "; libgrey_cap.so caps CUDA programs (NVIDIA) only\n";
      return 2;
    }
    if (!chosen->per_process_vram_cap_mb || *chosen->per_process_vram_cap_mb <= 0) {
      err << "error: --enforce-cap: the applied plan has no per-process VRAM cap for GPU "
          << chosen->index << " (its VRAM is unknown); set per_process_vram_cap_mb in the config\n";
      return 1;
    }
    RootedFs fs(g.sysfs_root, g.procfs_root);
    CapMechanisms mech = detect_cap_mechanisms(fs, self_exe_path());
    if (!mech.shim()) {
      err << "error: --enforce-cap: libgrey_cap.so not found (looked at";
      for (const auto& p : mech.shim_searched) err << " " << p;
      err << "); install it next to grey-gpu-opt or in ../lib/grey-gpu-opt, or set GREY_CAP_SHIM\n";
      return 1;
    }
    if (mech.shim_path.find_first_of(" :") != std::string::npos) {
      err << "error: --enforce-cap: the path of libgrey_cap.so (" << mech.shim_path
          << ") contains a space or a colon, which LD_PRELOAD cannot hold; install it elsewhere "
             "or point GREY_CAP_SHIM at a copy\n";
      return 1;
    }
    const std::string cap = std::to_string(*chosen->per_process_vram_cap_mb);
    // The child sees only the chosen GPU (CUDA_VISIBLE_DEVICES), as its device 0: one value.
    env["GREY_VRAM_CAP_MB"] = cap;
    // After what is preloaded already: a sanitizer runtime there must stay first.
    const char* pre = std::getenv("LD_PRELOAD");
    env["LD_PRELOAD"] = (pre && *pre ? std::string(pre) + ":" : "") + mech.shim_path;
    if (mech.mps) env["CUDA_MPS_PINNED_DEVICE_MEM_LIMIT"] = "0=" + cap + "M";
    err << "run: per-process VRAM cap " << cap << " MiB on GPU " << chosen->index
        << " enforced by: " << mech.summary() << "\n";
  }
  int rc = (exec_fn ? exec_fn : exec_replace)(o.command, env);
  const int why = errno;  // before anything else can change it
  if (rc == 127)
    err << "error: " << o.command[0]
        << (o.command[0].find('/') != std::string::npos ? ": not found\n"
                                                        : ": not found on PATH\n");
  else if (rc != 0 && !exec_fn)
    err << "error: cannot run " << o.command[0] << ": " << std::strerror(why)
        << (why == ENOENT ? " (its interpreter or loader is missing)" : "") << "\n";
  return rc;
}

int run_restore_command(const GlobalOptions& g, bool dry_run, bool json, std::ostream& out,
                        std::ostream& err) {
  std::string e = ensure_state_dir(g.state_dir);
  if (!e.empty()) {
    err << "error: " << e << "\n";
    return 1;
  }
  auto fs = std::make_shared<RootedFs>(g.sysfs_root, g.procfs_root);
  PosixRunner runner;
  DlLoader loader;
  SystemControl control(*fs, runner, loader, control_isolation(g));
  Journal journal(Journal::path_in(g.state_dir));
  RestoreOutcome r = restore(journal, control, dry_run);
  if (json) {
    out << dump_json(r.to_json(), 2) << "\n";
  } else {
    if (r.steps.empty() && r.success)
      out << "Nothing to restore: the journal holds no change still in place.\n";
    for (const auto& s : r.steps) out << s.line << "\n";
    for (const auto& n : r.notes) out << "note: " << n << "\n";
  }
  // Loud on stderr with --json too: a restore that leaves something changed is never quiet.
  for (const auto& x : r.errors) err << "error: " << x << "\n";
  if (!r.success) {
    size_t left = r.left_changed().size();
    err << "error: restore is incomplete: " << left << " setting" << (left == 1 ? "" : "s")
        << " left changed, " << r.unreadable.size() << " journal line"
        << (r.unreadable.size() == 1 ? "" : "s") << " unreadable (" << journal.path() << ")\n";
  }
  return r.success ? 0 : 1;
}

}  // namespace grey
