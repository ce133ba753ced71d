// The telemetry model's JSON form and the collector that composes the backends (each a
// TelemetryBackend) under a deadline.
//
// Threads: the collector owns one long-lived worker per lane: NVML on one, sysfs then fdinfo
// on the other. sample() hands each lane its job and waits until the deadline. A lane whose job
// is still running when the next sample() comes is not given another: its GPUs are marked
// stale at once. So a stuck driver call costs one blocked thread, never one per sample. A
// worker stuck when the collector is destroyed is detached; it keeps its backends (and the
// library) alive until its call returns, and NVML is then not shut down (it cannot be,
// mid-call). The nvidia-smi fallback runs on the caller's thread, under the Runner's deadline.
#include "telemetry/telemetry.h"

#include <time.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "telemetry/process_identity.h"
#include "util/clock.h"
#include "util/strings.h"
#include "util/sysfs.h"

namespace grey {

namespace {

using Clock = std::chrono::steady_clock;

template <typename T>
nlohmann::json opt(const std::optional<T>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

uint64_t mono_ns() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
          .count());
}

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// One long-lived thread running one job at a time.
class Worker {
 public:
  Worker() : st_(std::make_shared<State>()) {
    std::shared_ptr<State> st = st_;
    thread_ = std::thread([st] { loop(st); });
  }
  ~Worker() {
    bool stuck;
    {
      std::lock_guard<std::mutex> lk(st_->m);
      st_->stop = true;
      stuck = st_->running || st_->has_job;
    }
    st_->cv.notify_all();
    if (stuck)
      thread_.detach();  // blocked in a library call: it ends (if ever) on its own
    else
      thread_.join();
  }
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // False when the previous job is still running (the new one is not started).
  bool start(std::function<void()> job) {
    {
      std::lock_guard<std::mutex> lk(st_->m);
      if (st_->running || st_->has_job) return false;
      st_->job = std::move(job);
      st_->has_job = true;
      ++st_->started;
    }
    // Notified after unlocking, so the woken thread does not wake only to wait for the mutex.
    st_->cv.notify_all();
    return true;
  }
  // True when the last started job finished by `until`.
  bool wait_until(Clock::time_point until) {
    std::unique_lock<std::mutex> lk(st_->m);
    return st_->cv.wait_until(lk, until, [&] { return st_->finished == st_->started; });
  }

 private:
  struct State {
    std::mutex m;
    std::condition_variable cv;
    std::function<void()> job;
    bool has_job = false, running = false, stop = false;
    uint64_t started = 0, finished = 0;
  };
  static void loop(std::shared_ptr<State> st) {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lk(st->m);
        st->cv.wait(lk, [&] { return st->has_job || st->stop; });
        if (!st->has_job) return;  // stop requested
        job = std::move(st->job);
        st->job = nullptr;
        st->has_job = false;
        st->running = true;
      }
      try {
        job();
      } catch (...) {
      }
      job = nullptr;  // release what the job holds before reporting it finished
      bool stop;
      {
        std::lock_guard<std::mutex> lk(st->m);
        st->running = false;
        ++st->finished;
        stop = st->stop;
      }
      st->cv.notify_all();  // after unlocking, as in start()
      if (stop) return;
    }
  }
  std::shared_ptr<State> st_;
  std::thread thread_;
};

struct Known {
  int index;
  std::optional<std::string> bus_id, uuid;
};

// What one backend of a lane answered, and how long it took.
struct Answer {
  std::string backend;
  BackendSample r;
  double ms = 0;
};

// The answers of one lane's job, in the lane's order.
struct LaneResult {
  std::vector<Answer> answers;
};

bool is_nvidia(const GpuSpec& s) {
  return s.f.vendor == "nvidia" || s.f.kernel_driver == "nvidia" || s.f.pci_vendor_id == 0x10deu;
}

std::string fmt_ms(std::chrono::milliseconds d) {
  return std::to_string(d.count()) + " ms";
}

}  // namespace

nlohmann::json to_json(const GpuSample& s) {
  return {{"index", s.index},
          {"bus_id", opt(s.bus_id)},
          {"uuid", opt(s.uuid)},
          {"vram_used_mb", opt(s.vram_used_mb)},
          {"vram_total_mb", opt(s.vram_total_mb)},
          {"temperature_c", opt(s.temperature_c)},
          {"utilization_pct", opt(s.utilization_pct)},
          {"power_w", opt(s.power_w)},
          {"power_limit_w", opt(s.power_limit_w)},
          {"power_limit_min_w", opt(s.power_limit_min_w)},
          {"power_limit_max_w", opt(s.power_limit_max_w)},
          {"persistence_mode", opt(s.persistence_mode)},
          {"power_state", opt(s.power_state)},
          {"backend", s.backend},
          {"stale", s.stale},
          {"notes", s.notes},
          {"collect_ms", s.collect_ms}};
}

nlohmann::json to_json(const ProcessSample& p) {
  nlohmann::json j = {{"pid", p.pid},
                      {"command", p.command},
                      {"user", p.user},
                      {"gpu_bus_id", opt(p.gpu_bus_id)},
                      {"gpu_index", opt(p.gpu_index)},
                      {"vram_mb", opt(p.vram_mb)},
                      {"utilization_pct", opt(p.utilization_pct)},
                      {"backend", p.backend}};
  j.update(to_json(p.identity));
  return j;
}

nlohmann::json to_json(const TelemetrySnapshot& s) {
  nlohmann::json gpus = nlohmann::json::array(), procs = nlohmann::json::array();
  for (const auto& g : s.gpus) gpus.push_back(to_json(g));
  for (const auto& p : s.processes) procs.push_back(to_json(p));
  return {{"timestamp", s.timestamp},
          {"gpus", gpus},
          {"processes", procs},
          {"notes", s.notes},
          {"source_ms", s.source_ms}};
}

namespace {

// Backends that run one after the other on one worker thread, under one deadline.
struct Lane {
  std::string label;  // in notes: "NVML did not answer within ..."
  std::string what;   // "call" | "read": "(its previous call is still running)"
  std::vector<std::shared_ptr<TelemetryBackend>> backends;
  // When nothing of the lane answered yet and it is stuck: the spec GPUs it would have
  // answered for are marked stale (NVML: the NVIDIA ones).
  bool (*stale_for_spec)(const GpuSpec&) = nullptr;
  std::vector<Known> known;           // GPUs of its last answer
  std::set<std::string> fatal_noted;  // backends whose "unavailable" notes were said
  Worker worker;
};

}  // namespace

struct TelemetryCollector::Impl {
  std::shared_ptr<HostFs> fs;
  std::vector<GpuSpec> specs;
  std::vector<std::optional<std::string>> spec_bus;  // normalize_bus_id of each spec's bus id
  std::chrono::milliseconds deadline;
  // Used when a backend named `fallback_for` is unavailable and an NVIDIA GPU went unanswered.
  std::shared_ptr<TelemetryBackend> fallback;
  std::string fallback_for;
  std::unique_ptr<ProcessIdentityResolver> identity;
  // Declared last: destroyed (joined or detached) first, while the other members still exist.
  std::vector<std::unique_ptr<Lane>> lanes;

  std::vector<GpuSample> stale(const std::vector<Known>& known, const std::string& backend,
                               const std::string& note, double ms) {
    std::vector<GpuSample> out;
    for (const Known& k : known) {
      GpuSample s;
      s.index = k.index;
      s.bus_id = k.bus_id;
      s.uuid = k.uuid;
      s.backend = backend;
      s.stale = true;
      s.notes.push_back(note);
      s.collect_ms = ms;
      out.push_back(std::move(s));
    }
    return out;
  }

  static std::vector<Known> known_of(const std::vector<GpuSample>& gpus) {
    std::vector<Known> k;
    for (const auto& g : gpus) k.push_back({g.index, g.bus_id, g.uuid});
    return k;
  }

  // Adds `more` to `gpus`, leaving out a GPU whose bus id is there already.
  static void merge_gpus(std::vector<GpuSample>& gpus, std::vector<GpuSample>& more) {
    if (gpus.empty()) {
      gpus = std::move(more);  // the first backend's GPUs: taken whole
      return;
    }
    gpus.reserve(gpus.size() + more.size());
    for (auto& g : more) {
      bool dup = g.bus_id && std::any_of(gpus.begin(), gpus.end(),
                                         [&](const GpuSample& x) { return x.bus_id == g.bus_id; });
      if (!dup) gpus.push_back(std::move(g));
    }
  }

  static void merge_processes(std::vector<ProcessSample>& procs, std::vector<ProcessSample>& more) {
    if (procs.empty()) {
      procs = std::move(more);
      return;
    }
    procs.reserve(procs.size() + more.size());
    for (auto& p : more) procs.push_back(std::move(p));
  }

  TelemetrySnapshot sample() {
    TelemetrySnapshot snap;
    snap.timestamp = utc_now_text_ms();
    auto t0 = Clock::now();
    auto until = t0 + deadline;
    uint64_t now = mono_ns();

    // SPEC §9: runtime_status first. When every NVIDIA GPU of the spec is runtime-suspended,
    // NVML is not called at all (nvmlInit attaches every GPU, waking them), nor nvidia-smi;
    // the daemon keeps reading only runtime_status until the GPU wakes by itself.
    std::vector<const GpuSpec*> asleep;
    size_t nvidia = 0, nvidia_asleep = 0;
    for (const auto& s : specs) {
      std::optional<std::string> ps;
      if (fs && s.f.bus_id)
        if (auto t = fs->read("/sys/bus/pci/devices/" + *s.f.bus_id + "/power/runtime_status", 64))
          ps = sysfs::power_state_from(*t);
      bool sleeping = sysfs::is_suspended(ps);
      if (sleeping) asleep.push_back(&s);
      if (is_nvidia(s)) {
        ++nvidia;
        if (sleeping) ++nvidia_asleep;
      }
    }
    bool skip_nvml = nvidia > 0 && nvidia_asleep == nvidia;

    std::vector<std::shared_ptr<LaneResult>> results;
    std::vector<bool> started;
    for (auto& lane : lanes) {
      auto slot = std::make_shared<LaneResult>();
      results.push_back(slot);
      if (skip_nvml && lane->label == "NVML") {
        started.push_back(false);
        continue;
      }
      started.push_back(lane->worker.start([bs = lane->backends, slot, now] {
        for (const auto& b : bs) {
          auto s = Clock::now();
          Answer a;
          a.backend = b->name();
          a.r = b->sample(now);
          a.ms = ms_since(s);
          slot->answers.push_back(std::move(a));
        }
      }));
    }
    std::vector<bool> done;
    for (size_t i = 0; i < lanes.size(); ++i)
      done.push_back(started[i] && lanes[i]->worker.wait_until(until));
    if (skip_nvml)
      for (size_t i = 0; i < lanes.size(); ++i)
        if (lanes[i]->label == "NVML") done[i] = true;  // no answers: nothing was asked

    std::vector<GpuSample> gpus;
    std::set<std::string> unavailable;
    for (size_t i = 0; i < lanes.size(); ++i) {
      Lane& lane = *lanes[i];
      if (!done[i]) {
        std::string note = lane.label + " did not answer within " + fmt_ms(deadline) +
                           (started[i] ? "" : " (its previous " + lane.what + " is still running)");
        snap.notes.push_back(note);
        snap.source_ms[lane.backends.front()->name()] = ms_since(t0);
        std::vector<Known> k = lane.known;
        if (k.empty() && lane.stale_for_spec)
          for (const auto& s : specs)
            if (lane.stale_for_spec(s)) k.push_back({s.index, s.f.bus_id, s.f.uuid});
        std::vector<GpuSample> st = stale(k, lane.backends.front()->name(), note, ms_since(t0));
        for (auto& g : st) gpus.push_back(std::move(g));
        continue;
      }
      std::vector<GpuSample> lane_gpus;
      bool any_available = false;
      for (Answer& a : results[i]->answers) {
        snap.source_ms[a.backend] = a.ms;
        if (!a.r.available) {
          unavailable.insert(a.backend);
          if (lane.fatal_noted.insert(a.backend).second)
            for (auto& n : a.r.notes) snap.notes.push_back(n);
          continue;
        }
        any_available = true;
        for (auto& n : a.r.notes) snap.notes.push_back(n);
        for (auto& g : a.r.gpus) lane_gpus.push_back(std::move(g));
        merge_processes(snap.processes, a.r.processes);
      }
      if (any_available) lane.known = known_of(lane_gpus);
      merge_gpus(gpus, lane_gpus);
    }

    // The fallback (nvidia-smi), only when the backend it stands in for (NVML) is itself
    // unavailable (not merely slow: a stuck driver would hang nvidia-smi as well) and an NVIDIA
    // GPU went unanswered.
    if (fallback && unavailable.count(fallback_for) && !skip_nvml) {
      bool need = false;
      if (specs.empty()) {
        need = gpus.empty();
      } else {
        for (const auto& s : specs) {
          if (!is_nvidia(s)) continue;
          bool covered = s.f.bus_id && std::any_of(gpus.begin(), gpus.end(),
                                                   [&](auto& g) { return g.bus_id == s.f.bus_id; });
          if (!covered) need = true;
        }
      }
      if (need) {
        auto ts = Clock::now();
        BackendSample sr = fallback->sample(now);
        snap.source_ms[fallback->name()] = ms_since(ts);
        for (auto& n : sr.notes) snap.notes.push_back(n);
        merge_gpus(gpus, sr.gpus);
        merge_processes(snap.processes, sr.processes);
      }
    }

    // A suspended GPU that no backend answered for: reported from runtime_status alone.
    for (const GpuSpec* s : asleep) {
      auto it = std::find_if(gpus.begin(), gpus.end(),
                             [&](const GpuSample& g) { return g.bus_id == s->f.bus_id; });
      if (it != gpus.end()) {
        it->power_state = "suspended";
        continue;
      }
      GpuSample g;
      g.index = s->index;
      g.bus_id = s->f.bus_id;
      g.uuid = s->f.uuid;
      g.power_state = "suspended";
      g.backend = "sysfs";
      g.notes.push_back(
          "runtime-suspended: only power/runtime_status was read, so as not to wake it");
      gpus.push_back(std::move(g));
    }

    assign_indices(gpus, snap.notes);
    for (auto& p : snap.processes) {
      if (!p.gpu_bus_id) continue;
      for (const auto& g : gpus)
        if (g.bus_id == p.gpu_bus_id) p.gpu_index = g.index;
    }
    if (identity) {
      for (auto& p : snap.processes) p.identity = identity->resolve(p.pid);
      identity->end_round();
    }
    snap.gpus = std::move(gpus);
    std::sort(snap.gpus.begin(), snap.gpus.end(),
              [](const GpuSample& a, const GpuSample& b) { return a.index < b.index; });
    return snap;
  }

  // Spec index by bus id; GPUs outside the spec get the next free indices (with a note).
  void assign_indices(std::vector<GpuSample>& gpus, std::vector<std::string>& notes) {
    if (specs.empty()) {
      for (size_t i = 0; i < gpus.size(); ++i) gpus[i].index = static_cast<int>(i);
      return;
    }
    int next = 0;
    for (const auto& s : specs) next = std::max(next, s.index + 1);
    std::set<int> used;
    for (auto& g : gpus) {
      const GpuSpec* match = nullptr;
      if (g.bus_id)
        for (size_t i = 0; i < specs.size(); ++i)
          if (spec_bus[i] && spec_bus[i] == g.bus_id) match = &specs[i];
      if (match) {
        g.index = match->index;
        if (!g.uuid && match->f.uuid) g.uuid = match->f.uuid;
        used.insert(g.index);
      } else {
        g.index = next++;
        g.notes.push_back("not in the saved GPU spec" +
                          (g.bus_id ? " (bus " + *g.bus_id + ")" : std::string()));
      }
    }
    for (const auto& s : specs)
      if (!used.count(s.index))
        notes.push_back("GPU " + std::to_string(s.index) +
                        (s.f.bus_id ? " (" + *s.f.bus_id + ")" : std::string()) +
                        " of the spec: no telemetry backend answered for it");
  }
};

TelemetryCollector::TelemetryCollector(std::shared_ptr<HostFs> fs,
                                       std::shared_ptr<LibLoader> loader,
                                       std::shared_ptr<Runner> runner,
                                       const std::vector<GpuSpec>& specs,
                                       std::chrono::milliseconds per_source_deadline,
                                       std::string pod_log_root)
    : impl_(std::make_shared<Impl>()) {
  impl_->fs = fs;
  impl_->specs = specs;
  for (const auto& s : specs)
    impl_->spec_bus.push_back(s.f.bus_id ? normalize_bus_id(*s.f.bus_id) : std::nullopt);
  impl_->deadline = per_source_deadline;
  auto nvml = std::make_unique<Lane>();
  nvml->label = "NVML";
  nvml->what = "call";
  nvml->backends.push_back(std::make_shared<NvmlTelemetry>(std::move(loader), fs));
  nvml->stale_for_spec = is_nvidia;
  impl_->lanes.push_back(std::move(nvml));
  auto drm = std::make_unique<Lane>();
  drm->label = "sysfs";
  drm->what = "read";
  drm->backends.push_back(std::make_shared<SysfsTelemetry>(fs));
  drm->backends.push_back(std::make_shared<FdinfoScanner>(fs));
  impl_->lanes.push_back(std::move(drm));
  if (runner) {
    impl_->fallback =
        std::make_shared<NvidiaSmiTelemetry>(std::move(runner), fs, per_source_deadline);
    impl_->fallback_for = "nvml";
  }
  ProcessIdentityOptions io;
  io.pod_log_root = std::move(pod_log_root);
  if (fs) impl_->identity = std::make_unique<ProcessIdentityResolver>(fs, std::move(io));
}

TelemetryCollector::~TelemetryCollector() = default;

TelemetrySnapshot TelemetryCollector::sample() {
  try {
    return impl_->sample();
  } catch (const std::exception& e) {
    TelemetrySnapshot s;
    s.timestamp = utc_now_text_ms();
    s.notes.push_back(std::string("telemetry sample failed: ") + e.what());
    return s;
  }
}

}  // namespace grey
