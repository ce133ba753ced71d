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

// Every command's option storage; CLI11 writes into it, finish() turns it into the commands'
// options, dispatch() runs the one given.
struct Cli {
  grey::GlobalOptions g;

  CLI::App* detect = nullptr;
  grey::DetectCliOptions d;
  std::string replay;

  CLI::App* labels = nullptr;
  grey::LabelsCliOptions lo;
  std::string labels_replay;

  CLI::App* capture = nullptr;
  std::string capture_dir;

  CLI::App* plan = nullptr;
  grey::PlanCliOptions po;
  std::string plan_mode, plan_output, plan_config;

  CLI::App* apply = nullptr;
  grey::ApplyCliOptions ao;
  bool no_dry_run = false, apply_dry_run = false;
  std::string apply_plan;

  CLI::App* env = nullptr;
  std::string env_shell = "sh";

  CLI::App* run = nullptr;
  grey::RunCliOptions ro;
  std::vector<std::string> run_tail;

  CLI::App* restore = nullptr;
  bool restore_dry = false, restore_json = false;

  CLI::App* start_daemon = nullptr;
  grey::DaemonCliOptions dmo;
  bool daemon_dry = false, daemon_no_dry = false;
  std::string metrics_listen;
  CLI::Option* metrics_listen_opt = nullptr;
  std::string labels_dir;

  CLI::App* status = nullptr;
  bool status_json = false;

  CLI::App* report = nullptr;
};

// The options every command shares; defaults from the environment.
void add_global_options(CLI::App& app, Cli& c) {
  grey::GlobalOptions& g = c.g;
  {
    char buf[4096];
    ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n > 0 && std::getenv("GREY_PROBE_IN_PROCESS") == nullptr)
      g.probe_exe.assign(buf, static_cast<size_t>(n));
  }
  g.sysfs_root = env_or("GREY_SYSFS_ROOT", "/sys");
  g.procfs_root = env_or("GREY_PROC_ROOT", "/proc");

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
}

void add_detect(CLI::App& app, Cli& c) {
  c.detect = app.add_subcommand("detect", "Find every GPU and print one normalized spec each");
  c.detect->add_flag("--json", c.d.json, "Print a JSON array, one object per GPU");
  c.detect->add_flag("--explain", c.d.explain,
                     "Explain every source: what ran, how long, what it found, why it failed, "
                     "and the devices ignored");
  c.detect->add_option("--replay", c.replay,
                       "Detect from a capture directory instead of this machine");
  c.detect->add_flag("--no-save", c.d.no_save, "Do not write last_gpu_spec.json");
}

void add_labels(CLI::App& app, Cli& c) {
  c.labels = app.add_subcommand("labels",
                                "Write this node's GPUs as Node Feature Discovery labels "
                                "(OUTPUT_DIR/grey-gpu-opt, e.g. grey-gpu-opt/gpu.vendor=amd)");
  c.labels->add_option(
      "--output-dir", c.lo.output_dir,
      std::string("NFD's features.d directory (default ") + grey::kDefaultFeaturesDir + ")");
  c.labels->add_option("--prefix", c.lo.prefix, "Label prefix (default grey-gpu-opt)");
  c.labels->add_flag("--stdout", c.lo.to_stdout, "Print the file instead of writing it");
  c.labels->add_option("--replay", c.labels_replay,
                       "Detect from a capture directory instead of this machine");
}

void add_capture(CLI::App& app, Cli& c) {
  c.capture = app.add_subcommand(
      "capture", "Save every source's output and the sysfs files read into DIR (for bug reports)");
  c.capture->add_option("DIR", c.capture_dir, "Directory to write")->required();
}

void add_plan(CLI::App& app, Cli& c) {
  c.plan = app.add_subcommand("plan", "Per-GPU safe or aggressive settings, each explained");
  c.plan->add_option("--mode", c.plan_mode, "safe (default, or config.yaml's mode) or aggressive");
  c.plan->add_option("--output", c.plan_output,
                     "Also write the plan to FILE (.yaml, .yml or .json)");
  c.plan->add_option("--config", c.plan_config,
                     "Overrides applied on top of <state dir>/config.yaml");
  c.plan->add_flag("--json", c.po.json, "Print the plan as JSON");
  c.plan->add_flag("--detect", c.po.detect, "Detect again instead of using the saved spec");
  c.plan->add_flag("--explain", c.po.explain,
                   "Also list every field with its confidence, source and rationale");
}

void add_apply(CLI::App& app, Cli& c) {
  c.apply = app.add_subcommand(
      "apply",
      "Apply the plan: dry run by default; --no-dry-run writes the env file and the "
      "applied plan; --destructive also changes device settings (journaled)");
  c.apply->add_flag("--dry-run", c.apply_dry_run, "List every action, change nothing (default)");
  c.apply->add_flag("--no-dry-run", c.no_dry_run, "Really apply");
  c.apply->add_flag("--destructive", c.ao.destructive,
                    "Also change device settings: persistence mode, power limits");
  c.apply->add_flag("--yes", c.ao.yes, "Consent to --destructive without the typed confirmation");
  c.apply->add_flag("--json", c.ao.json, "Print the ApplyResult as JSON");
  c.apply->add_option("--plan", c.apply_plan, "Plan file to apply (default: last_plan.yaml)");
}

void add_env_run_restore(CLI::App& app, Cli& c) {
  c.env = app.add_subcommand("env", "Print the applied environment for eval");
  c.env->add_option("--shell", c.env_shell, "sh (default), fish or json");

  c.run = app.add_subcommand(
      "run",
      "Run CMD with the applied environment and CUDA_VISIBLE_DEVICES from the placement "
      "policy: run [--gpu N|auto] [--enforce-cap] -- CMD ARGS...");
  c.run->add_option("--gpu", c.ro.gpu,
                    "GPU index, MIG instance UUID (MIG-...), or auto (least loaded by free VRAM)");
  c.run->add_flag("--enforce-cap", c.ro.enforce_cap,
                  "Hold a CUDA program under the plan's per-process VRAM cap (libgrey_cap.so)");
  c.run->add_option("command", c.ro.command, "The command and its arguments (after --)")
      ->expected(-1);

  c.restore = app.add_subcommand(
      "restore", "Undo journaled device changes newest first (each only if still ours)");
  c.restore->add_flag("--dry-run", c.restore_dry, "Show what would be undone");
  c.restore->add_flag("--json", c.restore_json, "Print the outcome as JSON");
}

void add_daemon(CLI::App& app, Cli& c) {
  c.start_daemon = app.add_subcommand(
      "start-daemon",
      "Monitor and govern the GPUs in the foreground (thermal governor, per-process VRAM caps, "
      "artifacts, logs/daemon.jsonl); dry run by default");
  c.start_daemon
      ->add_option("--interval", c.dmo.interval_s,
                   "Seconds between ticks (default 1; fractions allowed)")
      ->check(CLI::Range(0.01, 86400.0));
  c.start_daemon->add_flag("--dry-run", c.daemon_dry, "Never change a device setting (default)");
  c.start_daemon->add_flag("--no-dry-run", c.daemon_no_dry,
                           "Allow device changes (power limits also need --consent)");
  c.start_daemon->add_flag("--consent", c.dmo.consent,
                           "Consent to lowering power limits while cooling (with --no-dry-run)");
  c.metrics_listen_opt = c.start_daemon
                             ->add_option("--metrics-listen", c.metrics_listen,
                                          "Serve Prometheus /metrics, /healthz and /readyz on "
                                          "ADDR:PORT (no value: 127.0.0.1:9862)")
                             ->expected(0, 1);
  c.start_daemon->add_option("--labels-dir", c.labels_dir,
                             "Keep DIR/grey-gpu-opt (node labels, as `labels` writes them) "
                             "current; removed on a clean stop");
  c.start_daemon->add_option("--labels-prefix", c.dmo.labels_prefix,
                             "Label prefix (default grey-gpu-opt)");
  c.status = app.add_subcommand("status", "Is a daemon running? Last tick, governor state per GPU");
  c.status->add_flag("--json", c.status_json, "Print the status as JSON");

  c.report = app.add_subcommand(
      "report", "Render the artifacts into artifacts/report.html (inline SVG charts)");
}

// After parsing: the optional values into the commands' options, the contradictions found.
// Returns 0, or the exit status of a usage error (its message on stderr).
int finish(Cli& c) {
  c.g.state_dir = grey::default_state_dir();
  if (!c.replay.empty()) c.d.replay = c.replay;
  if (!c.labels_replay.empty()) c.lo.replay = c.labels_replay;
  if (!c.labels_dir.empty()) c.dmo.labels_dir = c.labels_dir;
  if (!c.plan_mode.empty()) c.po.mode = c.plan_mode;
  if (!c.plan_output.empty()) c.po.output = c.plan_output;
  if (!c.plan_config.empty()) c.po.config_file = c.plan_config;
  c.po.detector = grey::detect_now;
  if (c.no_dry_run && c.apply_dry_run) {
    std::cerr << "error: --dry-run and --no-dry-run contradict each other\n";
    return 2;
  }
  c.ao.dry_run = !c.no_dry_run;
  if (c.daemon_dry && c.daemon_no_dry) {
    std::cerr << "error: --dry-run and --no-dry-run contradict each other\n";
    return 2;
  }
  c.dmo.dry_run = !c.daemon_no_dry;
  if (c.metrics_listen_opt->count() > 0) c.dmo.metrics_listen = c.metrics_listen;
  if (!c.apply_plan.empty()) c.ao.plan_file = c.apply_plan;
  // A plan file that is not there is a usage error, found before the state dir is touched.
  if (*c.apply && !c.apply_plan.empty() && ::access(c.apply_plan.c_str(), R_OK) != 0) {
    const int why = errno;
    std::cerr << "error: --plan " << c.apply_plan << ": " << std::strerror(why) << "\n";
    return 2;
  }
  c.ro.command.insert(c.ro.command.end(), c.run_tail.begin(), c.run_tail.end());
  return 0;
}

// Runs the one subcommand given; *abandoned is set when a source thread could not be joined.
int dispatch(Cli& c, bool* abandoned) {
  const grey::GlobalOptions& g = c.g;
  if (*c.detect) return grey::run_detect_command(g, c.d, std::cout, std::cerr, abandoned);
  if (*c.labels) return grey::run_labels_command(g, c.lo, std::cout, std::cerr, abandoned);
  if (*c.plan) return grey::run_plan_command(g, c.po, std::cout, std::cerr, abandoned);
  if (*c.apply) return grey::run_apply_command(g, c.ao, std::cout, std::cerr);
  if (*c.env) return grey::run_env_command(g, c.env_shell, std::cout, std::cerr);
  if (*c.run) {
    std::cout.flush();
    return grey::run_run_command(g, c.ro, std::cerr);
  }
  if (*c.restore)
    return grey::run_restore_command(g, c.restore_dry, c.restore_json, std::cout, std::cerr);
  if (*c.start_daemon)
    return grey::run_start_daemon_command(g, c.dmo, std::cout, std::cerr, abandoned);
  if (*c.status) return grey::run_status_command(g, c.status_json, std::cout, std::cerr);
  if (*c.report) return grey::run_report_command(g.state_dir, std::cout, std::cerr);
  if (*c.capture)
    return grey::run_capture_command(g, c.capture_dir, std::cout, std::cerr, abandoned);
  return 1;
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
  Cli c;
  CLI::App app{"Grey GPU Optimizer: find every GPU, plan safe settings, enforce them with consent"};
  add_global_options(app, c);
  add_detect(app, c);
  add_labels(app, c);
  add_capture(app, c);
  add_plan(app, c);
  add_apply(app, c);
  add_env_run_restore(app, c);
  add_daemon(app, c);

  // Everything after run's `--` is the command, byte for byte: CLI11 never sees it (it reads
  // "[a,b]" as a list and splits it).
  int cli_argc = argc;
  if (int sep = run_separator(app, argc, argv); sep > 0) {
    c.run_tail.assign(argv + sep + 1, argv + argc);
    cli_argc = sep;
  }
  try {
    app.parse(cli_argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  if (int rc = finish(c); rc != 0) return rc;

  bool abandoned = false;
  int rc = dispatch(c, &abandoned);
  std::cout.flush();
  std::cerr.flush();
  // A source thread stuck in a vendor library cannot be joined; leave without running
  // destructors under its feet.
  if (abandoned) _exit(rc);
  return rc;
}
