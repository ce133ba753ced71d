#include "detect/detector.h"

#include <condition_variable>
#include <ctime>
#include <mutex>
#include <set>
#include <thread>

#include "sources/sysfs_source.h"
#include "util/clock.h"

namespace grey {

namespace {

using Clock = std::chrono::steady_clock;

// Everything a source thread touches lives here, so a thread abandoned at the deadline
// (a library call that never returns) never points at freed memory.
struct Shared {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::unique_ptr<Source>> sources;
  std::vector<std::optional<SourceReport>> results;
  size_t done = 0;
  DetectEnv env;
  std::vector<SourceContext> contexts;
};

void dedupe(std::vector<std::string>& v) {
  std::set<std::string> seen;
  std::vector<std::string> out;
  for (auto& s : v)
    if (seen.insert(s).second) out.push_back(std::move(s));
  v = std::move(out);
}

// SPEC §9: sources that would resume a runtime-suspended GPU. None of these can be limited
// to the awake devices: nvmlInit and cuInit attach every NVIDIA GPU, nvidia-smi, rocm-smi,
// amd-smi, xpu-smi and intel_gpu_top query all devices of their vendor, vulkaninfo, clinfo
// and glxinfo open every render node, and lspci/lshw read every device's PCI config space.
// So each is skipped while a GPU it would touch is suspended. Returns the reason, or "".
std::string waking_skip_reason(const std::string& source,
                               const std::vector<sysfs::PowerEntry>& power) {
  auto asleep = [&](std::optional<uint32_t> vendor) {
    std::string buses;
    for (const auto& e : power) {
      if (!sysfs::is_suspended(e.power_state)) continue;
      if (vendor && e.pci_vendor != vendor) continue;
      buses += (buses.empty() ? "" : ", ") + (e.bus_id.empty() ? "a GPU" : e.bus_id);
    }
    return buses;
  };
  std::string who;
  if (source == "nvml" || source == "cuda" || source == "nvidia-smi")
    who = asleep(0x10deu);
  else if (source == "rocm-smi" || source == "amd-smi")
    who = asleep(0x1002u);
  else if (source == "xpu-smi" || source == "intel_gpu_top")
    who = asleep(0x8086u);
  else if (source == "lspci" || source == "lshw" || source == "vulkaninfo" || source == "clinfo" ||
           source == "glxinfo" || source == "opencl")
    who = asleep(std::nullopt);
  if (who.empty()) return "";
  return "skipped: " + who + (who.find(',') == std::string::npos ? " is" : " are") +
         " runtime-suspended and " + source +
         " cannot be limited to the awake GPUs; running it would wake " +
         (who.find(',') == std::string::npos ? "it" : "them");
}

}  // namespace

DetectionResult run_detection(std::vector<std::unique_ptr<Source>> sources, const DetectEnv& env,
                              const DetectOptions& opt) {
  auto t0 = Clock::now();
  DetectionResult res;
  res.timestamp = utc_now_text();
  auto sh = std::make_shared<Shared>();
  sh->sources = std::move(sources);
  sh->env = env;
  const size_t n = sh->sources.size();
  sh->results.resize(n);
  sh->contexts.resize(n);
  std::map<std::string, int> authority;
  for (size_t i = 0; i < n; ++i) {
    authority[sh->sources[i]->name()] = sh->sources[i]->authority();
    SourceContext& c = sh->contexts[i];
    c.runner = env.runner.get();
    c.fs = env.fs.get();
    c.loader = env.loader.get();
    c.timeout = opt.timeout;
    c.replay_dir = opt.replay_dir;
    c.capture = opt.capture;
  }
  // Read power/runtime_status first; a replay touches no device.
  std::vector<sysfs::PowerEntry> power;
  if (env.fs && !opt.replay_dir) power = sysfs::scan_power_states(*env.fs);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < n; ++i) {
    if (std::string why = waking_skip_reason(sh->sources[i]->name(), power); !why.empty()) {
      SourceReport r;
      r.source = sh->sources[i]->name();
      r.status = SourceStatus::skipped;
      r.notes.push_back(why);
      std::lock_guard<std::mutex> lk(sh->mu);
      sh->results[i] = std::move(r);
      ++sh->done;
      threads.emplace_back([] {});
      continue;
    }
    threads.emplace_back([sh, i] {
      SourceReport r;
      try {
        r = sh->sources[i]->collect(sh->contexts[i]);
      } catch (const std::exception& e) {
        r.source = sh->sources[i]->name();
        r.status = SourceStatus::failed;
        r.notes.push_back(std::string("internal error: ") + e.what());
      }
      std::lock_guard<std::mutex> lk(sh->mu);
      sh->results[i] = std::move(r);
      ++sh->done;
      sh->cv.notify_all();
    });
  }
  // Command sources kill their children at the deadline themselves; the grace covers that
  // and parsing. What is still running after it is a blocked library call.
  auto hard_deadline = t0 + opt.timeout + std::chrono::milliseconds(750);
  std::vector<bool> finished(n, false);
  {
    std::unique_lock<std::mutex> lk(sh->mu);
    sh->cv.wait_until(lk, hard_deadline, [&] { return sh->done == n; });
    for (size_t i = 0; i < n; ++i) {
      finished[i] = sh->results[i].has_value();
      if (finished[i]) {
        res.reports.push_back(*sh->results[i]);
      } else {
        SourceReport r;
        r.source = sh->sources[i]->name();
        r.status = SourceStatus::timed_out;
        r.duration_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
        r.notes.push_back("no answer within the " + std::to_string(opt.timeout.count()) +
                          " ms deadline (a call into the tool or library blocked); its result is "
                          "ignored");
        res.reports.push_back(std::move(r));
        res.abandoned_work = true;
      }
    }
  }
  for (size_t i = 0; i < threads.size(); ++i) {
    if (finished[i])
      threads[i].join();
    else
      threads[i].detach();
  }
  for (auto& r : res.reports) dedupe(r.notes);
  res.gpus = merge_reports(res.reports, authority, &res.ignored, res.timestamp);
  if (res.gpus.empty()) {
    res.notes.push_back("no GPU found");
    for (const auto& r : res.reports)
      if (r.status == SourceStatus::failed || r.status == SourceStatus::timed_out)
        for (const auto& note : r.notes) res.notes.push_back(r.source + ": " + note);
  }
  res.duration_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  return res;
}

}  // namespace grey
