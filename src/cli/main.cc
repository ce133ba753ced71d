// grey-gpu-opt: argument parsing only; every command lives in the grey library.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "cli/apply_cmd.h"
#include "cli/daemon_cmd.h"
#include "cli/detect_cmd.h"
#include "cli/labels_cmd.h"
#include "cli/plan_cmd.h"
#include "detect/isolated_source.h"
#include "enforce/isolated_control.h"
#include "report/report.h"
#include "util/state_dir.h"

namespace {

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

// Index of the `--` that ends `run`'s own options, or 0 when there is none. The subcommand is
// the first word that is neither a global option nor the value of one; only a `run` is split.
int run_separator(const CLI::App& app, int argc, char** argv) {
  int i = 1;
  for (; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--") return 0;  // `--` before any subcommand: not ours to interpret
    if (a.size() < 2 || a[0] != '-') break;
    if (a.find('=') != std::string::npos) continue;  // --timeout=3
    const CLI::Option* o = app.get_option_no_throw(a);
    if (o && o->get_type_size_max() > 0) ++i;  // --timeout 3: skip the value
  }
  if (i >= argc || std::string(argv[i]) != "run") return 0;
  for (int j = i + 1; j < argc; ++j)
    if (std::string(argv[j]) == "--") return j;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Internal: a library probe in its own process (see detect/isolated_source.h). It leaves
  // with _exit so no vendor library destructor runs after the report is written.
  if (argc == 3 && std::string(argv[1]) == "__probe") {
    int rc = grey::run_probe_child(argv[2], std::cout);
    std::cout.flush();
    _exit(rc);
  }
  // Internal: one NVML device-control request in its own process (enforce/isolated_control.h).
  if (argc == 3 && std::string(argv[1]) == "__control") {
    int rc = grey::run_control_child(argv[2], std::cout);
    std::cout.flush();
    _exit(rc);
  }
  grey::GlobalOptions g;
  {
    char buf[4096];
    ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n > 0 && std::getenv("GREY_PROBE_IN_PROCESS") == nullptr)
      g.probe_exe.assign(buf, static_cast<size_t>(n));
  }
  g.sysfs_root = env_or("GREY_SYSFS_ROOT", "/sys");
  g.procfs_root = env_or("GREY_PROC_ROOT", "/proc");

  CLI::App app{"Grey GPU Optimizer: find every GPU, plan safe settings, enforce them with consent"};
  app.name("grey-gpu-opt");
  app.set_version_flag("--version", std::string("grey-gpu-opt ") + GREY_VERSION);
  app.require_subcommand(1);
  app.fallthrough();
  app.add_option("--timeout", g.timeout_s, "Deadline for each source, in seconds (default 5)");
  app.add_option("--sysfs-root", g.sysfs_root,
                 "Where the host's /sys is mounted (env GREY_SYSFS_ROOT)");
  app.add_option("--procfs-root", g.procfs_root,
                 "Where the host's /proc is mounted (env GREY_PROC_ROOT)");
  app.add_option("--pod-log-root", g.pod_log_root,
                 "The kubelet's pod log directory, which names pods and containers "
                 "(default /var/log/pods)");
  app.add_flag("-v,--verbose", g.verbose, "Show sources and timings on stderr");

  grey::DetectCliOptions d;
  auto* detect = app.add_subcommand("detect", "Find every GPU and print one normalized spec each");
  detect->add_flag("--json", d.json, "Print a JSON array, one object per GPU");
  detect->add_flag("--explain", d.explain,
                   "Explain every source: what ran, how long, what it found, why it failed, "
                   "and the devices ignored");
  std::string replay;
  detect->add_option("--replay", replay, "Detect from a capture directory instead of this machine");
  detect->add_flag("--no-save", d.no_save, "Do not write last_gpu_spec.json");

  grey::LabelsCliOptions lo;
  std::string labels_replay;
  auto* labelsc = app.add_subcommand("labels",
                                     "Write this node's GPUs as Node Feature Discovery labels "
                                     "(OUTPUT_DIR/grey-gpu-opt, e.g. grey-gpu-opt/gpu.vendor=amd)");
  labelsc->add_option(
      "--output-dir", lo.output_dir,
      std::string("NFD's features.d directory (default ") + grey::kDefaultFeaturesDir + ")");
  labelsc->add_option("--prefix", lo.prefix, "Label prefix (default grey-gpu-opt)");
  labelsc->add_flag("--stdout", lo.to_stdout, "Print the file instead of writing it");
  labelsc->add_option("--replay", labels_replay,
                      "Detect from a capture directory instead of this machine");

  std::string capture_dir;
  auto* capture = app.add_subcommand(
      "capture", "Save every source's output and the sysfs files read into DIR (for bug reports)");
  capture->add_option("DIR", capture_dir, "Directory to write")->required();

  grey::PlanCliOptions po;
  std::string plan_mode, plan_output, plan_config;
  auto* plan = app.add_subcommand("plan", "Per-GPU safe or aggressive settings, each explained");
  plan->add_option("--mode", plan_mode, "safe (default, or config.yaml's mode) or aggressive");
  plan->add_option("--output", plan_output, "Also write the plan to FILE (.yaml, .yml or .json)");
  plan->add_option("--config", plan_config, "Overrides applied on top of <state dir>/config.yaml");
  plan->add_flag("--json", po.json, "Print the plan as JSON");
  plan->add_flag("--detect", po.detect, "Detect again instead of using the saved spec");

  grey::ApplyCliOptions ao;
  bool no_dry_run = false, apply_dry_run = false;
  auto* apply = app.add_subcommand(
      "apply",
      "Apply the plan: dry run by default; --no-dry-run writes the env file and the "
      "applied plan; --destructive also changes device settings (journaled)");
  apply->add_flag("--dry-run", apply_dry_run, "List every action, change nothing (default)");
  apply->add_flag("--no-dry-run", no_dry_run, "Really apply");
  apply->add_flag("--destructive", ao.destructive,
                  "Also change device settings: persistence mode, power limits");
  apply->add_flag("--yes", ao.yes, "Consent to --destructive without the typed confirmation");
  apply->add_flag("--json", ao.json, "Print the ApplyResult as JSON");
  std::string apply_plan;
  apply->add_option("--plan", apply_plan, "Plan file to apply (default: last_plan.yaml)");

  std::string env_shell = "sh";
  auto* envc = app.add_subcommand("env", "Print the applied environment for eval");
  envc->add_option("--shell", env_shell, "sh (default), fish or json");

  grey::RunCliOptions ro;
  auto* runc = app.add_subcommand(
      "run",
      "Run CMD with the applied environment and CUDA_VISIBLE_DEVICES from the placement "
      "policy: run [--gpu N|auto] [--enforce-cap] -- CMD ARGS...");
  runc->add_option("--gpu", ro.gpu,
                   "GPU index, MIG instance UUID (MIG-...), or auto (least loaded by free VRAM)");
  runc->add_flag("--enforce-cap", ro.enforce_cap,
                 "Hold a CUDA program under the plan's per-process VRAM cap (libgrey_cap.so)");
  runc->add_option("command", ro.command, "The command and its arguments (after --)")->expected(-1);

  bool restore_dry = false, restore_json = false;
  auto* restorec = app.add_subcommand(
      "restore", "Undo journaled device changes newest first (each only if still ours)");
  restorec->add_flag("--dry-run", restore_dry, "Show what would be undone");
  restorec->add_flag("--json", restore_json, "Print the outcome as JSON");

  grey::DaemonCliOptions dmo;
  bool daemon_dry = false, daemon_no_dry = false;
  std::string metrics_listen;
  auto* startd = app.add_subcommand(
      "start-daemon",
      "Monitor and govern the GPUs in the foreground (thermal governor, per-process VRAM caps, "
      "artifacts, logs/daemon.jsonl); dry run by default");
  startd
      ->add_option("--interval", dmo.interval_s,
                   "Seconds between ticks (default 1; fractions allowed)")
      ->check(CLI::Range(0.01, 86400.0));
  startd->add_flag("--dry-run", daemon_dry, "Never change a device setting (default)");
  startd->add_flag("--no-dry-run", daemon_no_dry,
                   "Allow device changes (power limits also need --consent)");
  startd->add_flag("--consent", dmo.consent,
                   "Consent to lowering power limits while cooling (with --no-dry-run)");
  auto* ml = startd
                 ->add_option("--metrics-listen", metrics_listen,
                              "Serve Prometheus /metrics, /healthz and /readyz on ADDR:PORT (no "
                              "value: 127.0.0.1:9862)")
                 ->expected(0, 1);
  std::string labels_dir;
  startd->add_option("--labels-dir", labels_dir,
                     "Keep DIR/grey-gpu-opt (node labels, as `labels` writes them) current; "
                     "removed on a clean stop");
  startd->add_option("--labels-prefix", dmo.labels_prefix, "Label prefix (default grey-gpu-opt)");
  bool status_json = false;
  auto* statusc =
      app.add_subcommand("status", "Is a daemon running? Last tick, governor state per GPU");
  statusc->add_flag("--json", status_json, "Print the status as JSON");

  auto* reportc = app.add_subcommand(
      "report", "Render the artifacts into artifacts/report.html (inline SVG charts)");

  // Everything after run's `--` is the command, byte for byte: CLI11 never sees it (it reads
  // "[a,b]" as a list and splits it).
  int cli_argc = argc;
  std::vector<std::string> run_tail;
  if (int sep = run_separator(app, argc, argv); sep > 0) {
    run_tail.assign(argv + sep + 1, argv + argc);
    cli_argc = sep;
  }
  try {
    app.parse(cli_argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  g.state_dir = grey::default_state_dir();
  if (!replay.empty()) d.replay = replay;
  if (!labels_replay.empty()) lo.replay = labels_replay;
  if (!labels_dir.empty()) dmo.labels_dir = labels_dir;
  if (!plan_mode.empty()) po.mode = plan_mode;
  if (!plan_output.empty()) po.output = plan_output;
  if (!plan_config.empty()) po.config_file = plan_config;
  po.detector = grey::detect_now;
  if (no_dry_run && apply_dry_run) {
    std::cerr << "error: --dry-run and --no-dry-run contradict each other\n";
    return 2;
  }
  ao.dry_run = !no_dry_run;
  if (daemon_dry && daemon_no_dry) {
    std::cerr << "error: --dry-run and --no-dry-run contradict each other\n";
    return 2;
  }
  dmo.dry_run = !daemon_no_dry;
  if (ml->count() > 0) dmo.metrics_listen = metrics_listen;
  if (!apply_plan.empty()) ao.plan_file = apply_plan;
  // A plan file that is not there is a usage error, found before the state dir is touched.
  if (*apply && !apply_plan.empty() && ::access(apply_plan.c_str(), R_OK) != 0) {
    const int why = errno;
    std::cerr << "error: --plan " << apply_plan << ": " << std::strerror(why) << "\n";
    return 2;
  }
  ro.command.insert(ro.command.end(), run_tail.begin(), run_tail.end());

  bool abandoned = false;
  int rc = 1;
  if (*detect) {
    rc = grey::run_detect_command(g, d, std::cout, std::cerr, &abandoned);
  } else if (*labelsc) {
    rc = grey::run_labels_command(g, lo, std::cout, std::cerr, &abandoned);
  } else if (*plan) {
    rc = grey::run_plan_command(g, po, std::cout, std::cerr, &abandoned);
  } else if (*apply) {
    rc = grey::run_apply_command(g, ao, std::cout, std::cerr);
  } else if (*envc) {
    rc = grey::run_env_command(g, env_shell, std::cout, std::cerr);
  } else if (*runc) {
    std::cout.flush();
    rc = grey::run_run_command(g, ro, std::cerr);
  } else if (*restorec) {
    rc = grey::run_restore_command(g, restore_dry, restore_json, std::cout, std::cerr);
  } else if (*startd) {
    rc = grey::run_start_daemon_command(g, dmo, std::cout, std::cerr, &abandoned);
  } else if (*statusc) {
    rc = grey::run_status_command(g, status_json, std::cout, std::cerr);
  } else if (*reportc) {
    rc = grey::run_report_command(g.state_dir, std::cout, std::cerr);
  } else if (*capture) {
    rc = grey::run_capture_command(g, capture_dir, std::cout, std::cerr, &abandoned);
  }
  std::cout.flush();
  std::cerr.flush();
  // A source thread stuck in a vendor library cannot be joined; leave without running
  // destructors under its feet.
  if (abandoned) _exit(rc);
  return rc;
}
