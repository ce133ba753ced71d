#include "telemetry/health.h"

#include <algorithm>

#include "util/strings.h"

namespace grey {

bool xid_is_application_error(unsigned long long xid) {
  static constexpr unsigned long long kApp[] = {13, 31, 43, 45, 68, 109};
  return std::find(std::begin(kApp), std::end(kApp), xid) != std::end(kApp);
}

XidWatcher::XidWatcher(const nvml::Api& api,
                       std::vector<std::pair<int, nvml::nvmlDevice_t>> devices, unsigned wait_ms)
    : api_(api), devices_(std::move(devices)), wait_ms_(wait_ms) {}

XidWatcher::~XidWatcher() {
  stop();
}

bool XidWatcher::start() {
  std::vector<std::string> notes;
  bool ok = api_.require(api_.event_set_create, "XID events", &notes) &&
            api_.require(api_.register_events, "XID events", &notes) &&
            api_.require(api_.event_set_wait, "XID events", &notes) &&
            api_.require(api_.event_set_free, "XID events", &notes);
  if (ok) {
    nvml::nvmlReturn_t r = api_.event_set_create(&set_);
    if (r != nvml::NVML_SUCCESS) {
      notes.push_back(api_.failure("nvmlEventSetCreate", r));
      set_ = nullptr;
      ok = false;
    }
  }
  int registered = 0;
  if (ok) {
    for (const auto& [gpu, dev] : devices_) {
      nvml::nvmlReturn_t r = api_.register_events(dev, nvml::nvmlEventTypeXidCriticalError, set_);
      if (r == nvml::NVML_SUCCESS)
        ++registered;
      else
        notes.push_back("GPU " + std::to_string(gpu) + ": " +
                        api_.failure("nvmlDeviceRegisterEvents", r));
    }
    if (registered == 0) {
      api_.event_set_free(set_);
      set_ = nullptr;
      ok = false;
    }
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    notes_.insert(notes_.end(), notes.begin(), notes.end());
  }
  if (!ok) return false;
  thread_ = std::thread([this] { loop(); });
  return true;
}

void XidWatcher::loop() {
  while (!stop_.load()) {
    nvml::nvmlEventData_t data{};
    nvml::nvmlReturn_t r = api_.event_set_wait(set_, &data, wait_ms_);
    if (r == nvml::NVML_ERROR_TIMEOUT) continue;
    if (r != nvml::NVML_SUCCESS) {
      std::lock_guard<std::mutex> l(mu_);
      notes_.push_back(api_.failure(api_.event_set_wait.found, r) + "; XID watch ended");
      return;
    }
    if (!(data.eventType & nvml::nvmlEventTypeXidCriticalError)) continue;
    XidEvent e;
    e.gpu = -1;
    for (const auto& [gpu, dev] : devices_)
      if (dev == data.device) e.gpu = gpu;
    e.xid = data.eventData;
    e.application = xid_is_application_error(e.xid);
    std::lock_guard<std::mutex> l(mu_);
    pending_.push_back(e);
  }
}

std::vector<XidEvent> XidWatcher::drain() {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<XidEvent> out;
  out.swap(pending_);
  return out;
}

void XidWatcher::stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
  if (set_) {
    api_.event_set_free(set_);
    set_ = nullptr;
  }
}

std::vector<std::string> XidWatcher::notes() const {
  std::lock_guard<std::mutex> l(mu_);
  return notes_;
}

NvmlEcc read_nvml_ecc(const nvml::Api& api, nvml::nvmlDevice_t device) {
  NvmlEcc e;
  if (api.total_ecc_errors) {
    auto get = [&](int type, int counter, std::optional<uint64_t>& into) {
      unsigned long long v = 0;
      nvml::nvmlReturn_t r = api.total_ecc_errors(device, type, counter, &v);
      if (r == nvml::NVML_SUCCESS)
        into = v;
      else if (r != nvml::NVML_ERROR_NOT_SUPPORTED)
        e.notes.push_back(api.failure("nvmlDeviceGetTotalEccErrors", r));
    };
    get(nvml::NVML_MEMORY_ERROR_TYPE_CORRECTED, nvml::NVML_VOLATILE_ECC, e.volatile_corrected);
    get(nvml::NVML_MEMORY_ERROR_TYPE_UNCORRECTED, nvml::NVML_VOLATILE_ECC, e.volatile_uncorrected);
    get(nvml::NVML_MEMORY_ERROR_TYPE_CORRECTED, nvml::NVML_AGGREGATE_ECC, e.aggregate_corrected);
    get(nvml::NVML_MEMORY_ERROR_TYPE_UNCORRECTED, nvml::NVML_AGGREGATE_ECC,
        e.aggregate_uncorrected);
  }
  if (api.retired_pages) {
    auto count = [&](int cause, std::optional<unsigned>& into) {
      unsigned n = 0;
      nvml::nvmlReturn_t r = api.retired_pages(device, cause, &n, nullptr);
      if (r == nvml::NVML_SUCCESS || r == nvml::NVML_ERROR_INSUFFICIENT_SIZE) into = n;
    };
    count(nvml::NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS, e.retired_pages_sbe);
    count(nvml::NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR, e.retired_pages_dbe);
  }
  if (api.retired_pages_pending) {
    int p = 0;
    if (api.retired_pages_pending(device, &p) == nvml::NVML_SUCCESS)
      e.retired_pages_pending = p == nvml::NVML_FEATURE_ENABLED;
  }
  if (api.remapped_rows) {
    unsigned corr = 0, unc = 0, pending = 0, failure = 0;
    if (api.remapped_rows(device, &corr, &unc, &pending, &failure) == nvml::NVML_SUCCESS) {
      e.remapped_rows_corrected = corr;
      e.remapped_rows_uncorrected = unc;
      e.remap_pending = pending != 0;
      e.remap_failure = failure != 0;
    }
  }
  return e;
}

std::optional<RasCounts> parse_ras_count(const std::string& text) {
  RasCounts c;
  bool any = false;
  for (std::string_view raw : split_lines(text)) {
    std::string_view line = trim(raw);
    auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string key(trim(line.substr(0, colon)));
    auto v = parse_int(trim(line.substr(colon + 1)));
    if (!v || *v < 0) continue;
    if (key == "ue") {
      c.ue = static_cast<uint64_t>(*v);
      any = true;
    } else if (key == "ce") {
      c.ce = static_cast<uint64_t>(*v);
      any = true;
    }
  }
  if (!any) return std::nullopt;
  return c;
}

AmdRas read_amd_ras(HostFs& fs, const std::string& device_dir) {
  AmdRas out;
  const std::string dir = device_dir + "/ras";
  for (const std::string& name : fs.list(dir)) {
    if (!ends_with(name, "_err_count")) continue;
    std::string block = name.substr(0, name.size() - std::string("_err_count").size());
    auto text = fs.read(dir + "/" + name, 4096);
    if (!text) {
      out.notes.push_back("cannot read " + fs.real_path(dir + "/" + name));
      continue;
    }
    auto c = parse_ras_count(*text);
    if (!c) {
      out.notes.push_back(fs.real_path(dir + "/" + name) + " has no 'ue:'/'ce:' counts");
      continue;
    }
    out.present = true;
    out.blocks[block] = *c;
    out.total.ue += c->ue;
    out.total.ce += c->ce;
  }
  return out;
}

HealthVerdict judge_health(const std::vector<XidEvent>& xids, const NvmlEcc* ecc,
                           const AmdRas* ras) {
  HealthVerdict v;
  for (const XidEvent& x : xids)
    if (!x.application) v.reasons.push_back("XID " + std::to_string(x.xid));
  if (ecc && ecc->volatile_uncorrected && *ecc->volatile_uncorrected > 0)
    v.reasons.push_back(std::to_string(*ecc->volatile_uncorrected) +
                        " uncorrected ECC errors since the driver loaded");
  if (ecc && ecc->remap_failure && *ecc->remap_failure) v.reasons.push_back("row remapping failed");
  if (ras && ras->total.ue > 0)
    v.reasons.push_back(std::to_string(ras->total.ue) + " uncorrectable RAS errors");
  v.healthy = v.reasons.empty();
  return v;
}

std::map<std::string, uint64_t> ecc_counters(const NvmlEcc& e) {
  std::map<std::string, uint64_t> m;
  auto put = [&](const char* k, const auto& v) {
    if (v) m[k] = static_cast<uint64_t>(*v);
  };
  put("volatile_corrected", e.volatile_corrected);
  put("volatile_uncorrected", e.volatile_uncorrected);
  put("aggregate_corrected", e.aggregate_corrected);
  put("aggregate_uncorrected", e.aggregate_uncorrected);
  put("retired_pages_sbe", e.retired_pages_sbe);
  put("retired_pages_dbe", e.retired_pages_dbe);
  put("remapped_rows_corrected", e.remapped_rows_corrected);
  put("remapped_rows_uncorrected", e.remapped_rows_uncorrected);
  return m;
}

std::map<std::string, uint64_t> ras_counters(const AmdRas& r) {
  if (!r.present) return {};
  return {{"ras_uncorrectable", r.total.ue}, {"ras_correctable", r.total.ce}};
}

bool counter_is_fault(const std::string& type) {
  return type == "volatile_uncorrected" || type == "ras_uncorrectable";
}

HealthPoll AmdRasHealth::poll() {
  HealthPoll p;
  for (const auto& [gpu, bus] : gpus_) {
    AmdRas r = read_amd_ras(*fs_, "/sys/bus/pci/devices/" + bus);
    auto c = ras_counters(r);
    if (!c.empty()) p.counters[gpu] = c;
  }
  return p;
}

NvmlHealth::NvmlHealth(std::shared_ptr<LibLoader> loader,
                       std::vector<std::pair<int, std::string>> gpus, unsigned wait_ms,
                       unsigned ecc_period_ms)
    : loader_(std::move(loader)),
      gpus_(std::move(gpus)),
      wait_ms_(wait_ms),
      ecc_period_ms_(ecc_period_ms) {
  thread_ = std::thread([this] { run(); });
}

NvmlHealth::~NvmlHealth() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void NvmlHealth::run() {
  auto note = [this](const std::string& n) {
    std::lock_guard<std::mutex> l(mu_);
    notes_.push_back(n);
  };
  LoadResult lr;
  std::unique_ptr<nvml::Api> api = nvml::Api::load(*loader_, &lr);
  if (!api) {
    note("NVML not loaded (" + lr.path + "): " + lr.error + "; no XID or ECC health");
    return;
  }
  if (!api->init || !api->handle_by_pci_bus_id) {
    note("NVML lacks nvmlInit or nvmlDeviceGetHandleByPciBusId; no XID or ECC health");
    return;
  }
  if (nvml::nvmlReturn_t r = api->init(); r != nvml::NVML_SUCCESS) {
    note(api->failure(api->init.found, r) + "; no XID or ECC health");
    return;
  }
  std::vector<std::pair<int, nvml::nvmlDevice_t>> devices;
  for (const auto& [gpu, bus] : gpus_) {
    nvml::nvmlDevice_t d = nullptr;
    nvml::nvmlReturn_t r = api->handle_by_pci_bus_id(bus.c_str(), &d);
    if (r == nvml::NVML_SUCCESS)
      devices.emplace_back(gpu, d);
    else
      note("GPU " + std::to_string(gpu) + ": " + api->failure(api->handle_by_pci_bus_id.found, r));
  }
  XidWatcher watcher(*api, devices, wait_ms_);
  bool watching = watcher.start();
  for (const auto& n : watcher.notes()) note(n);
  {
    std::lock_guard<std::mutex> l(mu_);
    if (watching) watcher_ = &watcher;
  }
  for (;;) {
    std::map<int, std::map<std::string, uint64_t>> counters;
    for (const auto& [gpu, d] : devices) {
      NvmlEcc e = read_nvml_ecc(*api, d);
      auto c = ecc_counters(e);
      if (!c.empty()) counters[gpu] = std::move(c);
    }
    std::unique_lock<std::mutex> l(mu_);
    counters_ = std::move(counters);
    if (cv_.wait_for(l, std::chrono::milliseconds(ecc_period_ms_), [this] { return stop_; })) break;
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    watcher_ = nullptr;
  }
  watcher.stop();
  if (api->shutdown) api->shutdown();
}

HealthPoll NvmlHealth::poll() {
  std::lock_guard<std::mutex> l(mu_);
  HealthPoll p;
  if (watcher_) p.xids = watcher_->drain();
  p.counters = counters_;
  return p;
}

std::vector<std::string> NvmlHealth::notes() const {
  std::lock_guard<std::mutex> l(mu_);
  return notes_;
}

}  // namespace grey
