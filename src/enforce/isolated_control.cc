#include "enforce/isolated_control.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "util/json_util.h"
#include "util/strings.h"

namespace grey {

namespace {

using nlohmann::json;

// The child's stderr marker before each NVML call; write(2) so that it is out before a crash.
void write_call_marker(const char* call) {
  char buf[160];
  int n = std::snprintf(buf, sizeof buf, "call %s\n", call);
  if (n > 0) {
    ssize_t w = ::write(2, buf, static_cast<size_t>(std::min(n, static_cast<int>(sizeof buf) - 1)));
    (void)w;
  }
}

// The last "call X" line the child wrote, or "".
std::string last_call(const std::string& err) {
  std::string last;
  for (auto l : split_lines(err)) {
    l = trim(l);
    if (starts_with(l, "call ")) last = std::string(l.substr(5));
  }
  return last;
}

std::string seconds_text(std::chrono::milliseconds t) {
  char buf[32];
  if (t.count() % 1000 == 0)
    std::snprintf(buf, sizeof buf, "%lld s", static_cast<long long>(t.count() / 1000));
  else
    std::snprintf(buf, sizeof buf, "%.3g s", static_cast<double>(t.count()) / 1000.0);
  return buf;
}

json opt_num(const std::optional<double>& v) {
  return v ? json(*v) : json(nullptr);
}

std::optional<double> num_of(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return std::nullopt;
  double d = it->get<double>();
  if (!std::isfinite(d)) return std::nullopt;
  return d;
}

std::string str_of(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

json probe_answer(NvmlControl& nvml, const std::string& bus_id) {
  DeviceState s;
  s.bus_id = bus_id;
  nvml.probe(s);
  json a = json::object();
  a["bus_id"] = bus_id;
  a["nvml"] = s.nvml;
  a["power_limit_w"] = opt_num(s.power_limit_w);
  a["persistence"] = s.persistence ? json(*s.persistence) : json(nullptr);
  a["power_min_w"] = opt_num(s.power_min_w);
  a["power_max_w"] = opt_num(s.power_max_w);
  a["range_source"] = s.range_source;
  a["notes"] = s.notes;
  return a;
}

void fill_state(const json& a, DeviceState& state) {
  auto nv = a.find("nvml");
  state.nvml = nv != a.end() && nv->is_boolean() && nv->get<bool>();
  if (auto v = num_of(a, "power_limit_w")) state.power_limit_w = v;
  auto p = a.find("persistence");
  if (p != a.end() && p->is_boolean()) state.persistence = p->get<bool>();
  state.power_min_w = num_of(a, "power_min_w");
  state.power_max_w = num_of(a, "power_max_w");
  if (state.power_max_w) state.range_source = str_of(a, "range_source");
  auto n = a.find("notes");
  if (n != a.end() && n->is_array())
    for (const auto& x : *n)
      if (x.is_string()) state.notes.push_back(x.get<std::string>());
}

json answer(NvmlControl& nvml, const json& req) {
  const std::string op = str_of(req, "op");
  json a = json::object();
  if (op == "init") {
    std::string e = nvml.available();
    if (e.empty()) e = nvml.device_count_error();
    a["error"] = e;
  } else if (op == "probe" && req.contains("bus_ids")) {
    json devs = json::array();
    if (req["bus_ids"].is_array())
      for (const auto& b : req["bus_ids"])
        if (b.is_string()) devs.push_back(probe_answer(nvml, b.get<std::string>()));
    a["devices"] = devs;
  } else if (op == "probe") {
    a = probe_answer(nvml, str_of(req, "bus_id"));
  } else if (op == "read") {
    ReadResult r = nvml.read({str_of(req, "bus_id"), str_of(req, "setting"), ""});
    a["value"] = r.value ? json(*r.value) : json(nullptr);
    a["error"] = r.error;
  } else if (op == "write") {
    a["error"] =
        nvml.write({str_of(req, "bus_id"), str_of(req, "setting"), ""}, str_of(req, "value"));
  } else {
    a["bad_request"] = "unknown op '" + op + "'";
  }
  return a;
}

}  // namespace

int run_control_child(const std::string& request, std::ostream& out) {
  json req = json::parse(request, nullptr, false);
  if (req.is_discarded() || !req.is_object()) {
    out << "{\"bad_request\": \"the request is not a JSON object\"}\n";
    return 2;
  }
  // Kept to the end of the process, which the child leaves with _exit: no nvmlShutdown after
  // the answer (it could hang too).
  static std::vector<std::unique_ptr<DlLoader>> loaders;
  static std::vector<std::unique_ptr<NvmlControl>> controls;
  loaders.push_back(std::make_unique<DlLoader>());
  controls.push_back(std::make_unique<NvmlControl>(*loaders.back()));
  NvmlControl* nvml = controls.back().get();
  nvml->set_call_hook(write_call_marker);
  json a = answer(*nvml, req);
  out << dump_json(a) << "\n";
  out.flush();
  return a.contains("bad_request") ? 2 : 0;
}

std::optional<json> parse_control_result(const CommandResult& r, std::chrono::milliseconds timeout,
                                         std::string* error) {
  const std::string call = last_call(r.err);
  const std::string in = call.empty() ? "" : " in " + call;
  const std::string after = "; NVML is not used again in this run";
  if (!r.started) {
    *error = "cannot start the NVML control process: " + r.error + after;
    return std::nullopt;
  }
  if (r.timed_out) {
    *error = "NVML did not answer within " + seconds_text(timeout) + " (" +
             (call.empty() ? std::string("loading the library") : call) +
             " hung?); the control process was killed" + after;
    return std::nullopt;
  }
  if (r.signal != 0) {
    const char* name = ::strsignal(r.signal);
    *error = "NVML control child died with signal " + std::to_string(r.signal) +
             (name ? std::string(" (") + name + ")" : std::string()) + in +
             " (a crash inside the NVML library?)" + after;
    return std::nullopt;
  }
  // The answer is the last line that parses as an object (a library may chatter on stdout).
  std::optional<json> a;
  for (auto l : split_lines(r.out)) {
    l = trim(l);
    if (l.empty() || l.front() != '{') continue;
    json j = json::parse(l, nullptr, false);
    if (!j.is_discarded() && j.is_object()) a = std::move(j);
  }
  if (r.exit_code != 0 || !a || a->contains("bad_request")) {
    std::string why =
        a && a->contains("bad_request") ? str_of(*a, "bad_request") : r.describe_failure();
    *error = "NVML control child failed" + in + ": " + why + after;
    return std::nullopt;
  }
  return a;
}

std::optional<json> IsolatedNvmlControl::call(const json& request, std::string* error) {
  if (!broken_.empty()) {
    *error = broken_;
    return std::nullopt;
  }
  RunOptions opt;
  opt.timeout = timeout_;
  opt.output_cap = 1u << 20;
  ++children_;
  CommandResult r = runner_.run({exe_, "__control", dump_json(request)}, opt);
  auto a = parse_control_result(r, timeout_, error);
  if (!a) broken_ = *error;
  return a;
}

std::string IsolatedNvmlControl::available() {
  if (available_) return *available_;
  std::string e;
  auto a = call({{"op", "init"}}, &e);
  if (a) e = str_of(*a, "error");
  // A broken NVML is final; a clean "not there" answer is too.
  available_ = e;
  return e;
}

void IsolatedNvmlControl::prefetch(const std::vector<std::string>& bus_ids) {
  if (bus_ids.empty() || !broken_.empty()) return;
  std::string e;
  auto a = call({{"op", "probe"}, {"bus_ids", bus_ids}}, &e);
  if (!a) return;  // broken_ says why; probe() answers it
  auto d = a->find("devices");
  if (d == a->end() || !d->is_array()) return;
  for (const auto& dev : *d)
    if (dev.is_object() && !str_of(dev, "bus_id").empty()) prefetched_[str_of(dev, "bus_id")] = dev;
}

void IsolatedNvmlControl::probe(DeviceState& state) {
  auto it = prefetched_.find(state.bus_id);
  if (it != prefetched_.end()) {
    fill_state(it->second, state);
    prefetched_.erase(it);
    return;
  }
  std::string e;
  auto a = call({{"op", "probe"}, {"bus_id", state.bus_id}}, &e);
  if (!a) {
    state.notes.push_back(e);
    return;
  }
  fill_state(*a, state);
}

ReadResult IsolatedNvmlControl::read(const SettingRef& ref) {
  ReadResult out;
  auto a = call({{"op", "read"}, {"bus_id", ref.bus_id}, {"setting", ref.setting}}, &out.error);
  if (!a) return out;
  auto v = a->find("value");
  if (v != a->end() && v->is_string())
    out.value = v->get<std::string>();
  else
    out.error = str_of(*a, "error");
  if (!out.value && out.error.empty()) out.error = "NVML control child answered no value";
  return out;
}

std::string IsolatedNvmlControl::write(const SettingRef& ref, const std::string& value) {
  std::string e;
  auto a = call(
      {{"op", "write"}, {"bus_id", ref.bus_id}, {"setting", ref.setting}, {"value", value}}, &e);
  if (!a) return e;
  auto it = a->find("error");
  if (it == a->end() || !it->is_string()) return "NVML control child answered no write result";
  return it->get<std::string>();
}

std::string nvml_in_process_risk(Runner& runner, const std::string& exe,
                                 std::chrono::milliseconds timeout) {
  IsolatedNvmlControl c(runner, exe, timeout);
  // An NVML that is absent or answers an error is no risk: only a hang or a crash (broken) is.
  if (std::string unavailable = c.available(); unavailable.empty()) return "";
  return c.broken();
}

LoadResult RefusingLoader::load(const std::string& soname, const std::string& env_override) {
  if (soname != soname_) return inner_->load(soname, env_override);
  LoadResult r;
  r.path = soname;
  r.error = why_;
  return r;
}

}  // namespace grey
