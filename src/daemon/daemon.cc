#include "daemon/daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "daemon/artifacts.h"
#include "daemon/daemon_status.h"
#include "daemon/governor.h"
#include "daemon/json_text.h"
#include "daemon/metrics.h"
#include "daemon/window.h"
#include "detect/spec_store.h"
#include "enforce/device_control.h"
#include "enforce/isolated_control.h"
#include "enforce/journal.h"
#include "fleet/labels.h"
#include "plan/config.h"
#include "plan/plan.h"
#include "plan/plan_io.h"
#include "telemetry/process_identity.h"
#include "telemetry/telemetry.h"
#include "util/clock.h"
#include "util/host_fs.h"
#include "util/json_util.h"
#include "util/lib_loader.h"
#include "util/runner.h"
#include "util/state_dir.h"
#include "util/strings.h"

namespace grey {

namespace {

using json = nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

// ---- Time and the process ---------------------------------------------------------------------

double unix_seconds(WallTime t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

// This process's resident memory (/proc/self/statm, read like any file: never blocking).
double rss_bytes() {
  auto text = read_whole_file("/proc/self/statm", nullptr, 4096);
  if (!text) return 0;
  unsigned long size = 0, resident = 0;
  if (std::sscanf(text->c_str(), "%lu %lu", &size, &resident) != 2) return 0;
  return static_cast<double>(resident) * static_cast<double>(::sysconf(_SC_PAGESIZE));
}

double round3(double v) {
  return std::round(v * 1000.0) / 1000.0;
}

json opt_json(const std::optional<double>& v) {
  return v ? json(round3(*v)) : json(nullptr);
}

std::optional<double> opt_round3(const std::optional<double>& v) {
  return v ? std::optional<double>(round3(*v)) : std::nullopt;
}

// ---- The JSON-lines log ---------------------------------------------------------------------

class EventLog {
 public:
  EventLog(std::string path, uint64_t max_bytes, TimeSource& clock)
      : path_(std::move(path)), max_(max_bytes), clock_(clock) {}
  ~EventLog() {
    if (fd_ >= 0) ::close(fd_);
  }
  EventLog(const EventLog&) = delete;
  EventLog& operator=(const EventLog&) = delete;

  // Error message, empty on success.
  std::string open() {
    std::string e;
    fd_ = open_checked(path_, O_WRONLY | O_CREAT | O_APPEND, FileTrust::kState, &e);
    if (fd_ < 0) return e;
    struct stat st {};
    size_ = ::fstat(fd_, &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
    return "";
  }

  void log(const std::string& event, json details) {
    if (!details.is_object()) details = json{{"value", details}};
    json line = {{"schema_version", kDaemonLogSchemaVersion},
                 {"timestamp", utc_text_ms(clock_.wall_now())},
                 {"event", event},
                 {"details", std::move(details)}};
    std::string text = dump_json(line) + "\n";
    if (fd_ < 0) return;
    if (size_ > 0 && size_ + text.size() > max_) rotate();
    const char* p = text.data();
    size_t left = text.size();
    while (left > 0) {
      ssize_t w = ::write(fd_, p, left);
      if (w < 0) {
        if (errno == EINTR) continue;
        return;
      }
      p += w;
      left -= static_cast<size_t>(w);
    }
    size_ += text.size();
  }

 private:
  void rotate() {
    ::close(fd_);
    ::rename(path_.c_str(), (path_ + ".1").c_str());
    std::string e;
    fd_ = open_checked(path_, O_WRONLY | O_CREAT | O_APPEND, FileTrust::kState, &e);
    size_ = 0;
  }
  std::string path_;
  uint64_t max_;
  TimeSource& clock_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

// ---- config.yaml ----------------------------------------------------------------------------

struct DaemonConfig {
  bool exists = false;
  PlanOverrides overrides;
  bool signal_over_cap = false;
};

std::optional<DaemonConfig> load_daemon_config(const std::string& path, std::string* error) {
  DaemonConfig c;
  // Checked and opened without blocking: a FIFO here must not stop the loop (SIGHUP reload).
  std::string rerr;
  bool missing = false;
  auto text = read_file_checked(path, FileTrust::kConfig, &rerr, 4u << 20, &missing);
  if (missing) return c;  // no config: defaults
  c.exists = true;
  if (!text) {
    *error = rerr;
    return std::nullopt;
  }
  std::string serr;
  auto sig = parse_signal_over_cap(*text, &serr);
  if (!sig) {
    *error = path + ": " + serr;
    return std::nullopt;
  }
  c.signal_over_cap = *sig;
  // The planner's parser also accepts and checks signal_over_cap (top level, boolean).
  ConfigResult r = parse_config_text(*text, path);
  if (!r.ok) {
    std::string all;
    for (const auto& e : r.errors) all += (all.empty() ? "" : "; ") + e;
    *error = all;
    return std::nullopt;
  }
  c.overrides = r.overrides;
  return c;
}

// ---- Per-GPU bookkeeping --------------------------------------------------------------------

struct GpuInfo {
  int index = 0;
  std::string bus_id, uuid, model, vendor = "unknown";
  std::optional<std::string> kernel_driver;
  std::optional<double> default_w, min_w, max_w;
};

// How one GPU's power limit is written (probed on first use; real runs only).
struct Control {
  bool probed = false;
  PowerTarget target;
};

struct OverCap {
  std::string command, user;
  int64_t peak_mb = 0;
  int64_t cap_mb = 0;
  bool signalled = false;
};

struct TickStats {
  int n = 0;
  double wall_ms_sum = 0, wall_ms_max = 0, cpu_ms_sum = 0, cpu_ms_max = 0;
};

// The real doors (DaemonDoors) around the program's collector and device control.
class CollectorSource : public TelemetrySource {
 public:
  template <typename... A>
  explicit CollectorSource(A&&... a) : c_(std::forward<A>(a)...) {}
  TelemetrySnapshot sample() override { return c_.sample(); }

 private:
  TelemetryCollector c_;
};

class SystemPowerControl : public PowerControl {
 public:
  SystemPowerControl(HostFs& fs, Runner& runner, LibLoader& loader, const ControlIsolation& iso)
      : c_(fs, runner, loader, iso) {}
  DeviceState probe(const std::string& bus_id, const std::string& vendor,
                    const std::optional<std::string>& kernel_driver) override {
    return c_.probe(bus_id, vendor, kernel_driver);
  }
  ReadResult read(const SettingRef& ref) override { return c_.read(ref); }
  std::string write(const SettingRef& ref, const std::string& value) override {
    return c_.write(ref, value);
  }

 private:
  SystemControl c_;
};

}  // namespace

class DaemonCore {
 public:
  DaemonCore(const DaemonOptions& o, DaemonDoors doors, std::ostream& out, std::ostream& err)
      : o_(o),
        doors_(std::move(doors)),
        out_(out),
        err_(err),
        window_(std::max<size_t>(1, o.window)) {
    if (!doors_.clock) doors_.clock = std::make_shared<SystemTimeSource>();
    if (!doors_.signal_process)
      doors_.signal_process = [](int pid, int sig) { return ::kill(pid, sig); };
    if (!doors_.wait_signal)
      doors_.wait_signal = [this](std::chrono::nanoseconds left) {
        timespec ts{static_cast<time_t>(left.count() / 1000000000),
                    static_cast<long>(left.count() % 1000000000)};
        int s = ::sigtimedwait(&sigs_, nullptr, &ts);
        return s > 0 ? s : 0;
      };
  }
  // A daemon dropped without stop() (an exception in its caller, a test) still undoes its
  // power writes before its doors close.
  ~DaemonCore() {
    stop("the daemon object was destroyed");
    release_pid_file();
  }

  int start(bool* abandoned_work);
  void tick();
  void stop(const std::string& why);
  int run(bool* abandoned_work);

 private:
  // Start, in order.
  int check_options();
  int open_state();  // the state directory, the pid file, the log
  int load_config_at_start();
  int load_plan_at_start();
  void open_doors();
  int start_metrics();
  void announce_start();
  // Pieces of the start.
  bool acquire_pid_file();
  void release_pid_file();
  bool load_specs_at_start(bool* abandoned);
  std::optional<Plan> load_plan(std::string* source, std::string* error);
  void adopt_plan(Plan p, const std::string& source, const std::string& event);
  void configure_governor();
  json plan_summary() const;
  // Loop.
  std::string loop();  // until a signal or max_ticks; the reason to stop
  int wait_signal_until(SteadyClock::time_point deadline);
  void reload();
  TimeSource& clock() { return *doors_.clock; }
  // Pieces of a tick.
  void handle(const GovernorDecision& d, const TelemetrySnapshot& s);
  bool enforcing() const { return !o_.dry_run && o_.consent; }
  const PowerTarget& target_for(int gpu);
  void log_events(const std::vector<EnforceEvent>& events);
  void check_caps(const TelemetrySnapshot& s);
  void write_status(const TelemetrySnapshot* s, const std::string& state);
  void publish_metrics(const TelemetrySnapshot& s);
  void refresh_labels();
  const GpuPlan* plan_for(int gpu) const;
  const GpuInfo* info_for(int gpu) const;
  std::optional<int64_t> cap_for(int gpu) const;

  DaemonOptions o_;
  DaemonDoors doors_;
  std::ostream& out_;
  std::ostream& err_;
  std::unique_ptr<EventLog> log_;
  int pid_fd_ = -1;
  std::string comm_;
  std::string started_at_;

  std::vector<GpuSpec> specs_;
  std::map<int, GpuInfo> info_;
  DaemonConfig config_;
  Plan plan_;
  std::string plan_source_;
  bool heatmap_ = false;

  double source_deadline_s_ = 0;
  std::unique_ptr<TelemetrySource> collector_;
  // Health (SPEC §9): the source, XIDs counted per GPU and XID, the counters last seen.
  std::unique_ptr<HealthSource> health_;
  std::map<int, std::map<unsigned long long, uint64_t>> xid_counts_;
  std::map<int, std::map<std::string, uint64_t>> ecc_seen_;
  void poll_health();
  json health_json(int gpu) const;
  std::unique_ptr<PowerControl> control_;
  std::unique_ptr<Journal> journal_;
  std::map<int, Control> controls_;
  std::unique_ptr<PowerEnforcer> enforcer_;  // every power write goes through it (the applier)

  Governor governor_;
  std::map<std::pair<int, int>, OverCap> over_cap_;  // (pid, gpu)
  std::map<int, bool> stale_;
  SampleWindow window_;     // the last o_.window ticks, for the artifacts and re-planning
  TelemetrySnapshot last_;  // the newest sample (status at stop)
  bool have_last_ = false;

  std::shared_ptr<MetricsBoard> board_;
  std::unique_ptr<MetricsServer> server_;
  std::string metrics_address_;
  std::unique_ptr<LabelsKeeper> labels_;  // --labels-dir

  uint64_t ticks_ = 0;
  uint64_t overruns_ = 0;
  double last_tick_ms_ = 0, last_tick_cpu_ms_ = 0;
  double last_success_unix_ = 0;
  std::string last_tick_at_;
  TickStats stats_;
  bool any_stale_ = false;
  bool artifacts_logged_ = false;
  bool started_ = false, stopped_ = false;
  sigset_t sigs_{};
};

// ---- Start ------------------------------------------------------------------------------------

namespace {

// The pid file a fatal signal removes before the process dies (a crash inside a vendor
// library would otherwise leave it behind); empty when we hold none.
char g_crash_pid_path[4096];

void unlink_pid_file_and_die(int sig) {
  if (g_crash_pid_path[0]) ::unlink(g_crash_pid_path);
  ::raise(sig);  // SA_RESETHAND: the default action now
}

void arm_crash_cleanup(const std::string& path) {
  if (path.size() >= sizeof g_crash_pid_path) return;
  std::memcpy(g_crash_pid_path, path.c_str(), path.size() + 1);
  struct sigaction sa {};
  sa.sa_handler = unlink_pid_file_and_die;
  sa.sa_flags = SA_RESETHAND | SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) ::sigaction(sig, &sa, nullptr);
}

}  // namespace

bool DaemonCore::acquire_pid_file() {
  std::string path = daemon_pid_path(o_.state_dir);
  std::string oerr;
  pid_fd_ = open_checked(path, O_RDWR | O_CREAT, FileTrust::kState, &oerr);
  if (pid_fd_ < 0) {
    err_ << "error: cannot open the pid file: " << oerr << "\n";
    return false;
  }
  if (::flock(pid_fd_, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    std::string holder;
    char buf[64] = {0};
    ssize_t n = ::pread(pid_fd_, buf, sizeof buf - 1, 0);
    if (n > 0) holder = std::string(trim(std::string_view(buf, static_cast<size_t>(n))));
    ::close(pid_fd_);
    pid_fd_ = -1;
    if (e == EWOULDBLOCK) {
      err_ << "error: a daemon is already running (pid " << (holder.empty() ? "unknown" : holder)
           << "); stop it first (SIGTERM) or use `grey-gpu-opt status`\n";
    } else {
      err_ << "error: cannot lock " << path << ": " << std::strerror(e) << "\n";
    }
    return false;
  }
  std::string text = std::to_string(::getpid()) + "\n";
  if (::ftruncate(pid_fd_, 0) != 0 ||
      ::pwrite(pid_fd_, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) {
    err_ << "error: cannot write " << path << ": " << std::strerror(errno) << "\n";
    ::close(pid_fd_);
    pid_fd_ = -1;
    return false;
  }
  arm_crash_cleanup(path);
  return true;
}

void DaemonCore::release_pid_file() {
  if (pid_fd_ < 0) return;
  g_crash_pid_path[0] = '\0';
  ::unlink(daemon_pid_path(o_.state_dir).c_str());
  ::close(pid_fd_);
  pid_fd_ = -1;
}

bool DaemonCore::load_specs_at_start(bool* abandoned) {
  LoadedSpecs ls = load_specs(o_.state_dir);
  std::string source = "saved";
  if (ls.ok) {
    specs_ = std::move(ls.specs);
  } else {
    if (!ls.missing) log_->log("spec_invalid", {{"error", ls.error}});
    if (!o_.detector) {
      err_ << "error: no usable GPU spec in " << o_.state_dir
           << (ls.missing ? "" : " (" + ls.error + ")") << "; run `grey-gpu-opt detect` first\n";
      return false;
    }
    out_ << "No saved GPU spec; detecting GPUs first...\n";
    GlobalOptions g;
    g.timeout_s = o_.timeout_s;
    g.sysfs_root = o_.sysfs_root;
    g.procfs_root = o_.procfs_root;
    g.state_dir = o_.state_dir;
    DetectionResult r = o_.detector(g, std::nullopt);
    if (r.abandoned_work && abandoned) *abandoned = true;
    specs_ = std::move(r.gpus);
    source = "detected";
    std::string e = save_specs(o_.state_dir, specs_);
    if (!e.empty()) log_->log("spec_save_failed", {{"error", e}});
  }
  json gpus = json::array();
  for (const auto& s : specs_) {
    GpuInfo gi;
    gi.index = s.index;
    gi.bus_id = s.f.bus_id.value_or("");
    gi.uuid = s.f.uuid.value_or("");
    gi.model = s.f.model.value_or("");
    gi.vendor = s.f.vendor.value_or("unknown");
    gi.kernel_driver = s.f.kernel_driver;
    gi.default_w = s.f.power_limit_default_w;
    gi.min_w = s.f.power_limit_min_w;
    gi.max_w = s.f.power_limit_max_w;
    info_[s.index] = gi;
    gpus.push_back({{"index", s.index},
                    {"vendor", gi.vendor},
                    {"model", gi.model},
                    {"bus_id", gi.bus_id},
                    {"uuid", gi.uuid},
                    {"vram_total_mb", s.f.vram_total_mb ? json(*s.f.vram_total_mb) : json()},
                    {"power_limit_w", opt_json(s.f.power_limit_w)}});
  }
  log_->log("spec_loaded", {{"source", source}, {"gpus", gpus}});
  out_ << "GPU spec (" << source << "): " << specs_.size() << " GPU(s)\n";
  return true;
}

// The applied plan when there is one; else a safe plan from the spec and config.yaml.
std::optional<Plan> DaemonCore::load_plan(std::string* source, std::string* error) {
  std::string applied = o_.state_dir + "/last_applied_plan.yaml";
  struct stat st {};
  if (::stat(applied.c_str(), &st) == 0) {
    *source = "applied";
    return load_plan_file(applied, error);
  }
  *source = "safe";
  PlanInput in;
  in.specs = specs_;
  in.mode = PlanMode::kSafe;
  in.overrides = config_.overrides;
  in.overrides.mode.reset();
  if (!window_.empty()) in.telemetry = window_.plan_window(o_.interval_s);
  in.generated_at = utc_text(clock().wall_now());
  PlanOutcome r = build_plan(in);
  if (!r.ok) {
    std::string all;
    for (const auto& e : r.errors) all += (all.empty() ? "" : "; ") + e;
    log_->log("config_does_not_fit", {{"errors", r.errors}});
    in.overrides = PlanOverrides{};
    r = build_plan(in);
    if (!r.ok) {
      *error = "cannot build a safe plan: " + all;
      return std::nullopt;
    }
    r.plan.notes.push_back("config.yaml was ignored: " + all);
  }
  r.plan.notes.push_back(
      "built by the daemon in safe mode: no last_applied_plan.yaml (run `grey-gpu-opt apply "
      "--no-dry-run` to apply one)");
  return r.plan;
}

json DaemonCore::plan_summary() const {
  json gpus = json::array();
  for (const auto& gp : plan_.gpus) {
    json j = {{"index", gp.index},
              {"device_id", gp.device_id ? json(*gp.device_id) : json()},
              {"cooldown_threshold_c", gp.cooldown_threshold_c},
              {"resume_threshold_c", gp.resume_threshold_c},
              {"preemptive_throttle", gp.preemptive_throttle},
              {"per_process_vram_cap_mb",
               gp.per_process_vram_cap_mb ? json(*gp.per_process_vram_cap_mb) : json()},
              {"utilization_heatmap_enabled", gp.utilization_heatmap_enabled}};
    if (gp.preemptive_throttle) {
      j["preemptive_margin_c"] = kPreemptiveMarginC;
      j["cooling_starts_at_c"] = gp.cooldown_threshold_c - kPreemptiveMarginC;
    }
    gpus.push_back(j);
  }
  return {{"source", plan_source_},
          {"mode", to_string(plan_.mode)},
          {"generated_at", plan_.generated_at},
          {"gpus", gpus}};
}

void DaemonCore::adopt_plan(Plan p, const std::string& source, const std::string& event) {
  plan_ = std::move(p);
  plan_source_ = source;
  heatmap_ = std::any_of(plan_.gpus.begin(), plan_.gpus.end(),
                         [](const GpuPlan& g) { return g.utilization_heatmap_enabled; });
  configure_governor();
  json d = plan_summary();
  if (source == "applied") d["path"] = o_.state_dir + "/last_applied_plan.yaml";
  d["signal_over_cap"] = o_.signal_over_cap.value_or(config_.signal_over_cap);
  log_->log(event, d);
}

const GpuPlan* DaemonCore::plan_for(int gpu) const {
  const GpuInfo* gi = info_for(gpu);
  for (const auto& gp : plan_.gpus)
    if (gi && ((gp.device_id && !gi->bus_id.empty() && *gp.device_id == gi->bus_id) ||
               (gp.uuid && !gi->uuid.empty() && *gp.uuid == gi->uuid)))
      return &gp;
  for (const auto& gp : plan_.gpus)
    if (gp.index == gpu) return &gp;
  return nullptr;
}

const GpuInfo* DaemonCore::info_for(int gpu) const {
  auto it = info_.find(gpu);
  return it == info_.end() ? nullptr : &it->second;
}

std::optional<int64_t> DaemonCore::cap_for(int gpu) const {
  const GpuPlan* gp = plan_for(gpu);
  return gp ? gp->per_process_vram_cap_mb : std::nullopt;
}

void DaemonCore::configure_governor() {
  std::set<int> gpus;
  for (const auto& [i, _] : info_) gpus.insert(i);
  for (const auto& [i, _] : governor_.gpus()) gpus.insert(i);
  for (const auto& gp : plan_.gpus) gpus.insert(gp.index);
  for (int i : gpus) {
    GovernorConfig c;
    c.resume_samples = o_.resume_samples;
    if (const GpuPlan* gp = plan_for(i)) {
      c.cooldown_c = gp->cooldown_threshold_c;
      c.resume_c = gp->resume_threshold_c;
      c.preemptive = gp->preemptive_throttle;
    } else {
      const GpuInfo* gi = info_for(i);
      auto [cool, resume] = vendor_thermal_defaults(gi ? gi->vendor : "unknown");
      c.cooldown_c = cool;
      c.resume_c = resume;
    }
    governor_.configure(i, c);
  }
}

// ---- Signals and the loop ---------------------------------------------------------------------

// The signal that arrived before `deadline`, 0 when none did.
int DaemonCore::wait_signal_until(SteadyClock::time_point deadline) {
  for (;;) {
    auto left =
        std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - clock().steady_now());
    if (left < std::chrono::nanoseconds(0)) left = std::chrono::nanoseconds(0);
    if (int s = doors_.wait_signal(left); s > 0) return s;
    if (clock().steady_now() >= deadline) return 0;  // the time is up (else interrupted)
  }
}

int DaemonCore::run(bool* abandoned_work) {
  // Signals first, before any thread exists, so every thread inherits the mask and only
  // sigtimedwait below ever sees them.
  sigemptyset(&sigs_);
  sigaddset(&sigs_, SIGINT);
  sigaddset(&sigs_, SIGTERM);
  sigaddset(&sigs_, SIGHUP);
  sigset_t old;
  ::pthread_sigmask(SIG_BLOCK, &sigs_, &old);
  struct Unblock {
    sigset_t* set;
    sigset_t* old;
    ~Unblock() {
      timespec zero{0, 0};
      while (::sigtimedwait(set, nullptr, &zero) > 0) {
      }
      ::pthread_sigmask(SIG_SETMASK, old, nullptr);
    }
  } unblock{&sigs_, &old};

  if (int rc = start(abandoned_work); rc != 0) return rc;
  stop(loop());
  if (any_stale_ && abandoned_work) *abandoned_work = true;
  return 0;
}

int DaemonCore::start(bool* abandoned_work) {
  if (abandoned_work) *abandoned_work = false;
  if (int rc = check_options(); rc != 0) return rc;
  if (int rc = open_state(); rc != 0) return rc;
  if (int rc = load_config_at_start(); rc != 0) return rc;
  bool abandoned = false;
  const bool have_specs = load_specs_at_start(&abandoned);
  if (abandoned_work) *abandoned_work = abandoned;
  if (!have_specs) return 1;
  if (int rc = load_plan_at_start(); rc != 0) return rc;
  open_doors();
  if (int rc = start_metrics(); rc != 0) return rc;
  announce_start();
  started_ = true;
  return 0;
}

int DaemonCore::check_options() {
  if (!(o_.interval_s >= 0.01 && o_.interval_s <= 86400)) {
    err_ << "error: --interval must be between 0.01 and 86400 seconds, got " << o_.interval_s
         << "\n";
    return 2;
  }
  if (o_.metrics_listen && !o_.metrics_listen->empty()) {
    std::string why;  // before anything is written to the state directory
    if (!parse_listen_address(*o_.metrics_listen, &why)) {
      err_ << "error: --metrics-listen: " << why << "\n";
      return 2;
    }
  }
  return 0;
}

int DaemonCore::open_state() {
  std::string e = ensure_state_dir(o_.state_dir);
  if (e.empty()) e = ensure_state_dir(o_.state_dir + "/logs");
  if (!e.empty()) {
    err_ << "error: " << e << "\n";
    return 1;
  }
  if (!acquire_pid_file()) return 1;  // released when this object goes
  log_ = std::make_unique<EventLog>(daemon_log_path(o_.state_dir), o_.log_rotate_bytes, clock());
  if (std::string le = log_->open(); !le.empty()) {
    err_ << "error: cannot open the log: " << le << "\n";
    return 1;
  }
  started_at_ = utc_text_ms(clock().wall_now());
  auto c = read_whole_file("/proc/self/comm", nullptr, 4096);
  comm_ = c ? std::string(trim(*c)) : "";
  return 0;
}

int DaemonCore::load_config_at_start() {
  std::string cerr;
  auto cfg = load_daemon_config(o_.state_dir + "/config.yaml", &cerr);
  if (!cfg) {
    log_->log("config_invalid", {{"error", cerr}});
    err_ << "error: " << cerr << "\nerror: fix config.yaml; the daemon did not start\n";
    return 2;
  }
  config_ = *cfg;
  return 0;
}

int DaemonCore::load_plan_at_start() {
  std::string src, perr;
  auto p = load_plan(&src, &perr);
  if (!p && src == "applied") {
    log_->log("plan_invalid", {{"error", perr}});
    err_ << "warning: " << perr << "; using a safe plan instead\n";
    // Build the safe plan as if no applied plan existed.
    PlanInput in;
    in.specs = specs_;
    in.overrides = config_.overrides;
    in.overrides.mode.reset();
    in.generated_at = utc_text(clock().wall_now());
    PlanOutcome r = build_plan(in);
    if (!r.ok) {
      in.overrides = PlanOverrides{};
      r = build_plan(in);
    }
    p = r.plan;
    src = "safe";
  }
  if (!p) {
    err_ << "error: " << perr << "\n";
    return 1;
  }
  adopt_plan(std::move(*p), src, "plan_loaded");
  return 0;
}

// The doors the caller left empty get the real ones; then the telemetry source and (when
// enforcing) the device control, journal and power enforcer.
void DaemonCore::open_doors() {
  if (!doors_.fs) doors_.fs = std::make_shared<RootedFs>(o_.sysfs_root, o_.procfs_root);
  if (!doors_.runner) doors_.runner = std::make_shared<PosixRunner>();
  if (!doors_.loader) doors_.loader = std::make_shared<DlLoader>();
  source_deadline_s_ = std::min(o_.timeout_s, std::max(0.05, o_.interval_s * 0.8));
  const auto deadline =
      std::chrono::milliseconds(static_cast<long>(std::lround(source_deadline_s_ * 1000)));
  ControlIsolation iso;
  iso.exe = o_.control_exe;
  iso.timeout = std::chrono::milliseconds(std::max(1L, std::lround(o_.timeout_s * 1000)));
  if (doors_.telemetry) {
    collector_ = doors_.telemetry(specs_, deadline);
  } else {
    std::shared_ptr<LibLoader> telemetry_loader = doors_.loader;
    if (!iso.exe.empty()) {
      // Telemetry loads NVML into the daemon: only one that a child could initialize.
      std::string risk = nvml_in_process_risk(*doors_.runner, iso.exe, iso.timeout);
      if (!risk.empty()) {
        log_->log("nvml_not_loaded", {{"error", risk}});
        err_ << "warning: NVML telemetry off: " << risk << "\n";
        telemetry_loader = std::make_shared<RefusingLoader>(doors_.loader, "libnvidia-ml.so.1",
                                                            "not loaded: " + risk);
      }
    }
    collector_ = std::make_unique<CollectorSource>(doors_.fs, telemetry_loader, doors_.runner,
                                                   specs_, deadline, o_.pod_log_root);
    // NVIDIA health from NVML (its own thread), only where a __control child showed that NVML
    // initializes (a library that hangs would otherwise hold that thread, and stop() joins it).
    std::vector<std::pair<int, std::string>> nv;
    for (const auto& sp : specs_)
      if (sp.f.vendor.value_or("") == "nvidia" && sp.f.bus_id)
        nv.emplace_back(sp.index, *sp.f.bus_id);
    if (!nv.empty() && !doors_.health && !iso.exe.empty() &&
        !dynamic_cast<RefusingLoader*>(telemetry_loader.get()))
      health_ = std::make_unique<NvmlHealth>(telemetry_loader, std::move(nv));
  }
  if (doors_.health) {
    health_ = doors_.health(specs_);
  } else if (!health_) {
    std::vector<std::pair<int, std::string>> amd;
    for (const auto& s : specs_)
      if (s.f.vendor.value_or("") == "amd" && s.f.bus_id) amd.emplace_back(s.index, *s.f.bus_id);
    if (!amd.empty()) health_ = std::make_unique<AmdRasHealth>(doors_.fs, std::move(amd));
  }
  if (enforcing()) {
    control_ = doors_.control ? doors_.control()
                              : std::make_unique<SystemPowerControl>(*doors_.fs, *doors_.runner,
                                                                     *doors_.loader, iso);
    journal_ = std::make_unique<Journal>(Journal::path_in(o_.state_dir));
    enforcer_ = std::make_unique<PowerEnforcer>(*control_, *journal_);
  }
}

int DaemonCore::start_metrics() {
  board_ = std::make_shared<MetricsBoard>();
  board_->set_tick_interval(o_.interval_s);  // /healthz: stale after 3 intervals
  if (o_.labels_dir)
    labels_ = std::make_unique<LabelsKeeper>(*o_.labels_dir, o_.labels_prefix, o_.state_dir);
  if (!o_.metrics_listen) return 0;
  metrics_address_ = o_.metrics_listen->empty() ? kDefaultMetricsListen : *o_.metrics_listen;
  server_ = std::make_unique<MetricsServer>(board_);
  std::string me = server_->start(metrics_address_);
  if (!me.empty()) {
    log_->log("metrics_failed", {{"listen", metrics_address_}, {"error", me}});
    err_ << "error: --metrics-listen " << metrics_address_ << ": " << me << "\n";
    server_.reset();
    return 1;
  }
  log_->log("metrics_listening", {{"listen", metrics_address_}, {"port", server_->port()}});
  out_ << "Metrics on http://" << metrics_address_ << "/metrics (port " << server_->port() << ")\n";
  return 0;
}

void DaemonCore::announce_start() {
  const bool signal_switch = o_.signal_over_cap.value_or(config_.signal_over_cap);
  log_->log("daemon_started",
            {{"pid", static_cast<long>(::getpid())},
             {"interval_s", o_.interval_s},
             {"dry_run", o_.dry_run},
             {"consent", o_.consent},
             {"enforcing", enforcing()},
             {"signal_over_cap", signal_switch},
             {"source_deadline_s", round3(source_deadline_s_)},
             {"state_dir", o_.state_dir},
             {"metrics_listen", o_.metrics_listen ? json(metrics_address_) : json()}});
  out_ << "grey-gpu-opt daemon started (pid " << ::getpid() << ", interval " << o_.interval_s
       << " s, "
       << (enforcing() ? "power limits will be changed (--no-dry-run --consent)"
                       : "dry run: device settings are never changed")
       << ")\n";
  out_.flush();
}

// Ticks at the interval (absolute deadlines; an overrun skips the missed slots), reloads on
// SIGHUP, until SIGINT/SIGTERM or max_ticks. Returns why it ended.
std::string DaemonCore::loop() {
  const auto period = std::chrono::duration_cast<SteadyClock::duration>(
      std::chrono::duration<double>(o_.interval_s));
  auto next = clock().steady_now();
  for (;;) {
    tick();
    // Ready once the first sample is in (status and metrics have something to show).
    if (ticks_ == 1)
      ::sd_notifyf(0, "READY=1\nSTATUS=ticking every %g s\nMAINPID=%ld", o_.interval_s,
                   static_cast<long>(::getpid()));
    if (o_.max_ticks && ticks_ >= o_.max_ticks) return "max_ticks reached";
    next += period;
    auto now = clock().steady_now();
    if (now > next) {
      auto behind = now - next;
      long long missed = behind / period + 1;
      next += period * missed;
      ++overruns_;
      log_->log("tick overrun", {{"tick", ticks_},
                                 {"tick_ms", round3(last_tick_ms_)},
                                 {"interval_ms", round3(o_.interval_s * 1000)},
                                 {"skipped_slots", missed}});
    }
    for (;;) {
      int s = wait_signal_until(next);
      if (s == 0) break;
      if (s == SIGHUP) {
        reload();
        continue;
      }
      return s == SIGINT ? "SIGINT" : "SIGTERM";
    }
  }
}

void DaemonCore::stop(const std::string& why) {
  if (!started_ || stopped_) return;
  stopped_ = true;
  ::sd_notify(0, "STOPPING=1");
  log_->log("daemon_stopping", {{"reason", why}, {"ticks", ticks_}});
  for (const auto& d : governor_.release_all("the daemon is stopping (" + why + ")")) {
    handle(d, TelemetrySnapshot{});
  }
  // Anything still written that the governor no longer tracks (never expected).
  if (enforcer_)
    for (int gpu : enforcer_->gpus_with_writes())
      log_events(enforcer_->restore(gpu, "the daemon is stopping (" + why + ")"));
  if (server_) server_->stop();
  if (labels_ && labels_->has_written()) {
    std::string le = labels_->remove();
    log_->log(le.empty() ? "labels_removed" : "labels_failed",
              {{"path", labels_->path()}, {"error", le}});
  }
  write_status(have_last_ ? &last_ : nullptr, "stopped");
  log_->log("daemon_stopped", {{"reason", why}, {"ticks", ticks_}, {"overruns", overruns_}});
  out_ << "grey-gpu-opt daemon stopped (" << why << ", " << ticks_ << " ticks)\n";
  out_.flush();
}

void DaemonCore::reload() {
  json details;
  std::string cerr;
  auto cfg = load_daemon_config(o_.state_dir + "/config.yaml", &cerr);
  bool ok = true;
  if (!cfg) {
    ok = false;
    log_->log("reload_failed", {{"what", "config"},
                                {"path", o_.state_dir + "/config.yaml"},
                                {"error", cerr},
                                {"kept", "the previous config"}});
    err_ << "error: reload: " << cerr << " (the previous config is kept)\n";
  } else {
    config_ = *cfg;
  }
  std::string src, perr;
  auto p = load_plan(&src, &perr);
  if (!p) {
    ok = false;
    log_->log("reload_failed", {{"what", "plan"}, {"error", perr}, {"kept", "the previous plan"}});
    err_ << "error: reload: " << perr << " (the previous plan is kept)\n";
  } else {
    adopt_plan(std::move(*p), src, "plan_reloaded");
  }
  log_->log("reload", {{"config_ok", cfg.has_value()},
                       {"plan_ok", p.has_value()},
                       {"signal_over_cap", o_.signal_over_cap.value_or(config_.signal_over_cap)}});
  out_ << (ok ? "Reloaded config.yaml and the plan\n" : "Reload incomplete: see the log\n");
  out_.flush();
}

// ---- One tick ---------------------------------------------------------------------------------

void DaemonCore::tick() {
  const auto t0 = clock().steady_now();
  const double cpu0 = clock().cpu_seconds();
  TelemetrySnapshot snap = collector_->sample();
  ++ticks_;
  last_tick_at_ = snap.timestamp.empty() ? utc_text_ms(clock().wall_now()) : snap.timestamp;

  std::vector<GovernorInput> inputs;
  inputs.reserve(snap.gpus.size());
  bool fresh_any = snap.gpus.empty();
  any_stale_ = false;
  for (const auto& g : snap.gpus) {
    GovernorInput in;
    in.gpu = g.index;
    in.stale = g.stale;
    in.temperature_c = g.temperature_c;
    in.power_limit_w = g.power_limit_w;
    const GpuInfo* gi = info_for(g.index);
    in.min_w = g.power_limit_min_w ? g.power_limit_min_w : gi ? gi->min_w : std::nullopt;
    in.max_w = g.power_limit_max_w ? g.power_limit_max_w : gi ? gi->max_w : std::nullopt;
    if (gi) in.default_w = gi->default_w;
    inputs.push_back(in);
    if (!g.stale) fresh_any = true;
    any_stale_ = any_stale_ || g.stale;
    bool& was = stale_[g.index];
    if (g.stale != was) {
      was = g.stale;
      if (g.stale)
        log_->log("gpu_stale", {{"gpu", g.index}, {"backend", g.backend}, {"notes", g.notes}});
      else
        log_->log("gpu_fresh", {{"gpu", g.index}, {"backend", g.backend}});
    }
  }
  if (fresh_any) last_success_unix_ = unix_seconds(clock().wall_now());
  for (const auto& d : governor_.step(inputs)) handle(d, snap);
  check_caps(snap);
  poll_health();

  // The window, oldest first.
  window_.push(snap);
  last_ = std::move(snap);
  have_last_ = true;
  const TelemetrySnapshot& cur = last_;

  if (o_.artifacts_every > 0 && ticks_ % static_cast<uint64_t>(o_.artifacts_every) == 0) {
    std::vector<std::string> errors;
    auto paths = write_artifacts(o_.state_dir, window_, &plan_, heatmap_, &errors);
    if (!errors.empty())
      log_->log("artifacts_failed", {{"errors", errors}});
    else if (!artifacts_logged_) {
      log_->log("artifacts_written", {{"paths", paths}, {"window", window_.size()}});
      artifacts_logged_ = true;
    }
  }

  last_tick_ms_ = std::chrono::duration<double, std::milli>(clock().steady_now() - t0).count();
  last_tick_cpu_ms_ = (clock().cpu_seconds() - cpu0) * 1000.0;
  publish_metrics(cur);
  refresh_labels();
  write_status(&cur, "running");
  ::sd_notify(0, "WATCHDOG=1");

  const double wall = std::chrono::duration<double, std::milli>(clock().steady_now() - t0).count();
  const double cpu = (clock().cpu_seconds() - cpu0) * 1000.0;
  last_tick_ms_ = wall;
  last_tick_cpu_ms_ = cpu;
  stats_.n++;
  stats_.wall_ms_sum += wall;
  stats_.cpu_ms_sum += cpu;
  stats_.wall_ms_max = std::max(stats_.wall_ms_max, wall);
  stats_.cpu_ms_max = std::max(stats_.cpu_ms_max, cpu);
  if (o_.stats_every > 0 && ticks_ % static_cast<uint64_t>(o_.stats_every) == 0) {
    json src = json::object();
    for (const auto& [k, v] : cur.source_ms) src[k] = round3(v);
    log_->log("tick_stats", {{"ticks", ticks_},
                             {"window_ticks", stats_.n},
                             {"wall_ms_avg", round3(stats_.wall_ms_sum / stats_.n)},
                             {"wall_ms_max", round3(stats_.wall_ms_max)},
                             {"cpu_ms_avg", round3(stats_.cpu_ms_sum / stats_.n)},
                             {"cpu_ms_max", round3(stats_.cpu_ms_max)},
                             {"source_ms", src},
                             {"gpus", cur.gpus.size()},
                             {"processes", cur.processes.size()},
                             {"overruns", overruns_},
                             {"cpu_seconds_total", round3(clock().cpu_seconds())},
                             {"rss_bytes", rss_bytes()}});
    stats_ = TickStats{};
  }
}

void DaemonCore::handle(const GovernorDecision& d, const TelemetrySnapshot& s) {
  std::optional<double> temp;
  for (const auto& g : s.gpus)
    if (g.index == d.gpu) temp = g.temperature_c;
  const GovernorGpuState* st = governor_.gpu(d.gpu);
  if (!temp && st) temp = st->last_temperature_c;
  const std::string gpu = std::to_string(d.gpu);
  if (d.transition()) {
    json j = {{"gpu", d.gpu},
              {"from", to_string(d.from)},
              {"to", to_string(d.to)},
              {"reason", d.reason},
              {"temperature_c", opt_json(temp)}};
    if (st) {
      j["cooldown_c"] = st->config.cooldown_c;
      j["resume_c"] = st->config.resume_c;
      j["trigger_c"] = st->config.trigger_c();
      j["preemptive"] = st->config.preemptive;
      if (st->config.preemptive) j["preemptive_margin_c"] = kPreemptiveMarginC;
      j["resume_samples"] = st->config.resume_samples;
    }
    log_->log("governor_transition", j);
    out_ << "GPU " << gpu << ": " << to_string(d.from) << " -> " << to_string(d.to) << ": "
         << d.reason << "\n";
  }
  if (d.power.kind != PowerAction::Kind::kNone && enforcing()) {
    // One path for every device write: the applier (journal first, write, read back).
    log_events(enforcer_->carry_out(d, target_for(d.gpu), governor_));
  } else if (d.power.kind == PowerAction::Kind::kSet) {
    std::string msg = "[DRY-RUN] would lower GPU " + gpu + " power limit from " +
                      watts_text(d.power.from_w) + " W to " + watts_text(d.power.to_w) + " W";
    log_->log("power_limit_dry_run", {{"gpu", d.gpu},
                                      {"action", "lower"},
                                      {"from_w", d.power.from_w},
                                      {"to_w", d.power.to_w},
                                      {"message", msg},
                                      {"needs", "--no-dry-run --consent"}});
    out_ << msg << "\n";
  } else if (d.power.kind == PowerAction::Kind::kRestore) {
    std::string msg = "[DRY-RUN] would restore GPU " + gpu + " power limit from " +
                      watts_text(d.power.from_w) + " W to " + watts_text(d.power.to_w) + " W";
    log_->log("power_limit_dry_run", {{"gpu", d.gpu},
                                      {"action", "restore"},
                                      {"from_w", d.power.from_w},
                                      {"to_w", d.power.to_w},
                                      {"message", msg}});
    out_ << msg << "\n";
  }
  out_.flush();
}

const PowerTarget& DaemonCore::target_for(int gpu) {
  Control& c = controls_[gpu];
  if (c.probed) return c.target;
  c.probed = true;
  PowerTarget& t = c.target;
  const GpuInfo* gi = info_for(gpu);
  if (!gi || gi->bus_id.empty()) {
    t.why_none = "GPU " + std::to_string(gpu) + " has no PCI bus id in the saved spec";
    return t;
  }
  t.bus_id = gi->bus_id;
  t.uuid = gi->uuid;
  DeviceState ds = control_->probe(gi->bus_id, gi->vendor, gi->kernel_driver);
  if (gi->vendor == "nvidia") {
    if (ds.nvml)
      t.mechanism_kind = "nvml";
    else if (ds.nvidia_smi)
      t.mechanism_kind = "nvidia-smi";
  } else if ((gi->vendor == "amd" || gi->vendor == "intel") && ds.power_sysfs_path) {
    t.mechanism_kind = "sysfs";
    t.sysfs_path = *ds.power_sysfs_path;
  }
  if (t.mechanism_kind.empty()) {
    std::string notes;
    for (const auto& n : ds.notes) notes += (notes.empty() ? "" : "; ") + n;
    t.why_none = "no way to change GPU " + std::to_string(gpu) + "'s power limit" +
                 (notes.empty() ? "" : ": " + notes);
  }
  return t;
}

void DaemonCore::log_events(const std::vector<EnforceEvent>& events) {
  for (const EnforceEvent& e : events) {
    log_->log(e.event, e.details);
    (e.error ? err_ : out_) << e.line << "\n";
  }
}

void DaemonCore::check_caps(const TelemetrySnapshot& s) {
  const bool may_signal = enforcing() && o_.signal_over_cap.value_or(config_.signal_over_cap);
  std::vector<std::pair<int, int>> seen;  // sorted below (no set: one allocation per tick)
  seen.reserve(s.processes.size());
  for (const auto& p : s.processes) {
    if (!p.gpu_index || !p.vram_mb || p.pid <= 0) continue;
    auto cap = cap_for(*p.gpu_index);
    if (!cap) continue;
    std::pair<int, int> key{p.pid, *p.gpu_index};
    seen.push_back(key);
    auto it = over_cap_.find(key);
    const bool over = *p.vram_mb > *cap;
    if (over && it == over_cap_.end()) {
      OverCap oc{p.command, p.user, *p.vram_mb, *cap, false};
      json j = {{"pid", p.pid},      {"gpu", *p.gpu_index},   {"command", p.command},
                {"user", p.user},    {"vram_mb", *p.vram_mb}, {"cap_mb", *cap},
                {"tier", "reactive"}};
      j.update(to_json(p.identity));  // pod, namespace, container, ... (SPEC §8)
      log_->log("process_over_cap", j);
      out_ << "GPU " << *p.gpu_index << ": process " << p.pid << " (" << p.command << ") uses "
           << *p.vram_mb << " MiB, above the per-process cap of " << *cap << " MiB\n";
      if (may_signal && p.pid != ::getpid() && p.pid > 1) {
        int rc = doors_.signal_process(p.pid, SIGTERM);
        oc.signalled = rc == 0;
        log_->log("process_signalled",
                  {{"pid", p.pid},
                   {"gpu", *p.gpu_index},
                   {"signal", "SIGTERM"},
                   {"ok", rc == 0},
                   {"error", rc == 0 ? std::string() : std::string(std::strerror(errno))}});
      }
      over_cap_.emplace(key, std::move(oc));
    } else if (over) {
      it->second.peak_mb = std::max(it->second.peak_mb, *p.vram_mb);
      it->second.cap_mb = *cap;
    } else if (it != over_cap_.end()) {
      log_->log("process_over_cap_end", {{"pid", p.pid},
                                         {"gpu", *p.gpu_index},
                                         {"command", it->second.command},
                                         {"user", it->second.user},
                                         {"reason", "back under the cap"},
                                         {"vram_mb", *p.vram_mb},
                                         {"peak_vram_mb", it->second.peak_mb},
                                         {"cap_mb", *cap},
                                         {"tier", "reactive"}});
      over_cap_.erase(it);
    }
  }
  // Processes no longer listed (ended, or left the GPU); a stale GPU lists none, so its
  // processes are not judged this tick.
  if (over_cap_.empty()) return;
  std::sort(seen.begin(), seen.end());
  std::set<int> stale_gpus;
  for (const auto& g : s.gpus)
    if (g.stale) stale_gpus.insert(g.index);
  for (auto it = over_cap_.begin(); it != over_cap_.end();) {
    if (std::binary_search(seen.begin(), seen.end(), it->first) ||
        stale_gpus.count(it->first.second)) {
      ++it;
      continue;
    }
    log_->log("process_over_cap_end", {{"pid", it->first.first},
                                       {"gpu", it->first.second},
                                       {"command", it->second.command},
                                       {"user", it->second.user},
                                       {"reason", "the process ended or left the GPU"},
                                       {"peak_vram_mb", it->second.peak_mb},
                                       {"cap_mb", it->second.cap_mb},
                                       {"tier", "reactive"}});
    it = over_cap_.erase(it);
  }
}

// daemon_status.json, rewritten every tick: written as text (daemon/json_text.h), the same
// bytes dump_json(j, 1) gave for the object tree built here before.
// Why /metrics' pod labels are empty (dcgm-exporter's most-reported problem): how many GPU
// processes of the last sample are in a pod, and for the first kPodLabelExamples that are not,
// the identity notes saying why (not in a container, no pod log directory, ...).
constexpr size_t kPodLabelExamples = 10;
static std::string pod_labels_text(const TelemetrySnapshot& s) {
  size_t in_pod = 0;
  std::vector<std::string> without;
  for (const auto& p : s.processes) {
    if (!p.identity.pod.empty()) {
      ++in_pod;
      continue;
    }
    if (without.size() >= kPodLabelExamples) continue;
    std::vector<std::string> notes;
    for (const auto& n : p.identity.notes) notes.push_back(json_string_text(n));
    JsonObjectText e(3);
    e.integer("pid", p.pid).str("command", p.command).raw("notes", json_array_text(notes, 4));
    without.push_back(e.text());
  }
  JsonObjectText j(1);
  j.integer("processes", s.processes.size())
      .integer("in_pod", in_pod)
      .raw("without_pod", json_array_text(without, 2));
  return j.text();
}

void DaemonCore::write_status(const TelemetrySnapshot* s, const std::string& state) {
  std::vector<std::string> gpus;
  std::set<int> indices;
  for (const auto& [i, _] : governor_.gpus()) indices.insert(i);
  if (s)
    for (const auto& g : s->gpus) indices.insert(g.index);
  for (int i : indices) {
    const GovernorGpuState* st = governor_.gpu(i);
    const GpuInfo* gi = info_for(i);
    const GpuSample* gs = nullptr;
    if (s)
      for (const auto& g : s->gpus)
        if (g.index == i) gs = &g;
    JsonObjectText j(2);
    j.integer("index", i);
    if (gi)
      j.str("bus_id", gi->bus_id).str("uuid", gi->uuid).str("model", gi->model);
    else
      j.null("bus_id").null("uuid").null("model");
    j.str("state", st ? to_string(st->state) : "normal");
    if (gs)
      j.opt_num("temperature_c", opt_round3(gs->temperature_c));
    else if (st)
      j.opt_num("temperature_c", opt_round3(st->last_temperature_c));
    else
      j.null("temperature_c");
    j.boolean("stale", gs ? gs->stale : false);
    if (gs && gs->power_state) j.str("power_state", *gs->power_state);  // SPEC §9
    if (gs)
      j.opt_num("power_limit_w", opt_round3(gs->power_limit_w));
    else
      j.null("power_limit_w");
    if (st) {
      j.integer("cooldown_c", st->config.cooldown_c);
      j.integer("resume_c", st->config.resume_c);
      j.integer("trigger_c", st->config.trigger_c());
      j.boolean("preemptive", st->config.preemptive);
      j.opt_num("lowered_from_w", opt_round3(st->original_w));
      j.opt_num("lowered_to_w", opt_round3(st->target_w));
    }
    if (health_) j.raw("health", health_json(i).dump());
    gpus.push_back(j.text());
  }
  JsonObjectText src(1);
  if (s)
    for (const auto& [k, v] : s->source_ms) src.num(k, round3(v));
  JsonObjectText plan(1);
  plan.str("source", plan_source_).str("mode", to_string(plan_.mode));
  JsonObjectText j(0);
  j.integer("schema_version", kDaemonStatusSchemaVersion)
      .integer("pid", static_cast<long>(::getpid()))
      .str("comm", comm_)
      .str("state", state)
      .str("started_at", started_at_);
  if (last_tick_at_.empty())
    j.null("last_tick");
  else
    j.str("last_tick", last_tick_at_);
  j.num("last_tick_unix", round3(unix_seconds(clock().wall_now())))
      .integer("ticks", ticks_)
      .num("interval_s", o_.interval_s)
      .boolean("dry_run", o_.dry_run)
      .boolean("consent", o_.consent)
      .boolean("enforcing", enforcing())
      .num("tick_ms", round3(last_tick_ms_))
      .num("tick_cpu_ms", round3(last_tick_cpu_ms_))
      .raw("source_ms", src.text())
      .integer("overruns", overruns_)
      .integer("processes_over_cap", over_cap_.size())
      .raw("plan", plan.text());
  if (server_)
    j.str("metrics_listen", metrics_address_);
  else
    j.null("metrics_listen");
  j.raw("gpus", json_array_text(gpus, 1));
  if (s) j.raw("pod_labels", pod_labels_text(*s));
  if (state != "running") j.str("stopped_at", utc_text_ms(clock().wall_now()));
  // Replaced atomically, without fsync: rewritten every tick, two fsyncs would dominate it.
  std::string e = write_file_replace(daemon_status_path(o_.state_dir), j.text() + "\n");
  if (!e.empty() && ticks_ <= 1) log_->log("status_write_failed", {{"error", e}});
}

// The node labels file (fleet/labels.h): rewritten only when its content changes.
void DaemonCore::refresh_labels() {
  if (!labels_) return;
  LabelsKeeper::Outcome r = labels_->refresh(specs_);
  for (const auto& n : r.notes) log_->log("labels_note", {{"path", r.path}, {"note", n}});
  if (r.event.empty()) return;
  log_->log(r.event,
            {{"path", r.path}, {"labels", r.labels}, {"dropped", r.dropped}, {"error", r.error}});
  if (!r.error.empty()) err_ << "warning: labels: " << r.error << "\n";
}

// XIDs become gpu_xid events (application XIDs too, marked as such); a counter seen for the
// first time above 0, or changed since, becomes a gpu_ecc event.
void DaemonCore::poll_health() {
  if (!health_) return;
  HealthPoll p = health_->poll();
  for (const XidEvent& x : p.xids) {
    ++xid_counts_[x.gpu][x.xid];
    log_->log("gpu_xid", {{"gpu", x.gpu}, {"xid", x.xid}, {"application", x.application}});
    if (!x.application)
      err_ << "warning: GPU " << x.gpu << ": XID " << x.xid << " (a device fault)\n";
  }
  for (const auto& [gpu, counters] : p.counters) {
    auto& seen = ecc_seen_[gpu];
    for (const auto& [type, n] : counters) {
      auto it = seen.find(type);
      bool changed = it == seen.end() ? n > 0 : it->second != n;
      uint64_t before = it == seen.end() ? 0 : it->second;
      seen[type] = n;
      if (!changed) continue;
      log_->log("gpu_ecc", {{"gpu", gpu},
                            {"type", type},
                            {"count", n},
                            {"previous", before},
                            {"fault", counter_is_fault(type) && n > 0}});
    }
  }
}

// {"healthy": bool, "reasons": [...]}: device faults seen since the daemon started (XIDs that
// are not application errors) and fault counters above 0 now.
json DaemonCore::health_json(int gpu) const {
  json reasons = json::array();
  if (auto x = xid_counts_.find(gpu); x != xid_counts_.end())
    for (const auto& [xid, n] : x->second)
      if (!xid_is_application_error(xid))
        reasons.push_back("XID " + std::to_string(xid) + " (" + std::to_string(n) + "x)");
  if (auto e = ecc_seen_.find(gpu); e != ecc_seen_.end())
    for (const auto& [type, n] : e->second)
      if (counter_is_fault(type) && n > 0) reasons.push_back(type + " " + std::to_string(n));
  return {{"healthy", reasons.empty()}, {"reasons", reasons}};
}

void DaemonCore::publish_metrics(const TelemetrySnapshot& s) {
  if (!board_ || !server_) return;  // nobody can scrape it: skip the copy
  MetricsInput in;
  in.last = s;
  for (const auto& g : s.gpus) {
    GpuMetricsInfo m;
    m.index = g.index;
    const GpuInfo* gi = info_for(g.index);
    m.uuid = g.uuid.value_or(gi ? gi->uuid : "");
    m.bus_id = g.bus_id.value_or(gi ? gi->bus_id : "");
    m.model = gi ? gi->model : "";
    m.vendor = gi ? gi->vendor : "";
    const GovernorGpuState* st = governor_.gpu(g.index);
    m.governor_state = st ? to_string(st->state) : "normal";
    if (st) {
      m.cooldown_c = st->config.cooldown_c;
      m.resume_c = st->config.resume_c;
    }
    m.vram_cap_mb = cap_for(g.index);
    if (auto x = xid_counts_.find(g.index); x != xid_counts_.end()) m.xid_errors = x->second;
    if (auto e = ecc_seen_.find(g.index); e != ecc_seen_.end()) m.ecc_errors = e->second;
    in.gpus.push_back(std::move(m));
  }
  in.tick_source_ms = s.source_ms;
  in.tick_ms = last_tick_ms_;
  in.last_success_unix = last_success_unix_;
  in.cpu_seconds = clock().cpu_seconds();
  in.rss_bytes = server_ ? rss_bytes() : 0;
  in.ticks = ticks_;
  board_->publish(std::move(in));
}

std::optional<bool> parse_signal_over_cap(const std::string& text, std::string* error) {
  try {
    YAML::Node root = YAML::Load(text);
    if (!root || root.IsNull()) return false;
    if (!root.IsMap()) {
      *error = "the top level must be a mapping of keys to values";
      return std::nullopt;
    }
    YAML::Node v = root["signal_over_cap"];
    if (!v || v.IsNull()) return false;
    if (!v.IsScalar()) {
      *error =
          "line " + std::to_string(v.Mark().line + 1) + ": signal_over_cap must be true or false";
      return std::nullopt;
    }
    const std::string s = to_lower(v.Scalar());
    if (s == "true") return true;
    if (s == "false") return false;
    *error = "line " + std::to_string(v.Mark().line + 1) + ": signal_over_cap = " + v.Scalar() +
             " is not allowed; allowed: true or false";
    return std::nullopt;
  } catch (const std::exception& e) {
    *error = std::string("not valid YAML: ") + e.what();
    return std::nullopt;
  }
}

Daemon::Daemon(const DaemonOptions& o, DaemonDoors doors, std::ostream& out, std::ostream& err)
    : core_(std::make_unique<DaemonCore>(o, std::move(doors), out, err)) {}
Daemon::~Daemon() = default;
int Daemon::start(bool* abandoned_work) {
  return core_->start(abandoned_work);
}
void Daemon::tick() {
  core_->tick();
}
void Daemon::stop(const std::string& why) {
  core_->stop(why);
}
int Daemon::run(bool* abandoned_work) {
  return core_->run(abandoned_work);
}

int run_daemon(const DaemonOptions& o, std::ostream& out, std::ostream& err, bool* abandoned_work,
               DaemonDoors doors) {
  if (abandoned_work) *abandoned_work = false;
  Daemon d(o, std::move(doors), out, err);
  return d.run(abandoned_work);
}

}  // namespace grey
