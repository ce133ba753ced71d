#include "detect/isolated_source.h"

#include <chrono>
#include <ostream>

#include "sources/cuda_source.h"
#include "sources/nvml_source.h"
#include "sources/opencl_source.h"
#include "util/json_util.h"
#include "util/strings.h"

namespace grey {

namespace {

SourceStatus status_from(const std::string& s) {
  for (auto st : {SourceStatus::ok, SourceStatus::no_devices, SourceStatus::missing,
                  SourceStatus::failed, SourceStatus::timed_out, SourceStatus::skipped})
    if (s == to_string(st)) return st;
  throw std::runtime_error("unknown status '" + s + "'");
}

}  // namespace

nlohmann::json report_to_json(const SourceReport& r) {
  nlohmann::json j;
  j["source"] = r.source;
  j["status"] = to_string(r.status);
  j["what"] = r.what;
  j["duration_ms"] = r.duration_ms;
  j["notes"] = r.notes;
  nlohmann::json devs = nlohmann::json::array();
  for (const auto& o : r.devices) {
    GpuSpec s;
    s.f = o.f;
    s.notes = o.notes;
    nlohmann::json d = spec_to_json(s);
    d["tool_index"] = o.f.tool_index ? nlohmann::json(*o.f.tool_index) : nlohmann::json(nullptr);
    d["software_reason"] =
        o.software_reason ? nlohmann::json(*o.software_reason) : nlohmann::json(nullptr);
    devs.push_back(std::move(d));
  }
  j["devices"] = devs;
  nlohmann::json ign = nlohmann::json::array();
  for (const auto& i : r.ignored)
    ign.push_back({{"source", i.source}, {"name", i.name}, {"reason", i.reason}});
  j["ignored"] = ign;
  return j;
}

SourceReport report_from_json(const nlohmann::json& j) {
  SourceReport r;
  r.source = j.at("source").get<std::string>();
  r.status = status_from(j.at("status").get<std::string>());
  r.what = j.value("what", "");
  r.duration_ms = j.value("duration_ms", 0.0);
  r.notes = j.value("notes", std::vector<std::string>{});
  for (const auto& d : j.at("devices")) {
    GpuSpec s = spec_from_json(d);
    Observation o;
    o.f = s.f;
    o.notes = s.notes;
    if (d.contains("tool_index") && d["tool_index"].is_number_integer())
      o.f.tool_index = d["tool_index"].get<int>();
    if (d.contains("software_reason") && d["software_reason"].is_string())
      o.software_reason = d["software_reason"].get<std::string>();
    r.devices.push_back(std::move(o));
  }
  for (const auto& i : j.value("ignored", nlohmann::json::array()))
    r.ignored.push_back({i.value("source", ""), i.value("name", ""), i.value("reason", "")});
  return r;
}

std::unique_ptr<Source> make_library_source(const std::string& name) {
  if (name == "nvml") return make_nvml_source();
  if (name == "cuda") return make_cuda_source();
  if (name == "opencl") return make_opencl_source();
  return nullptr;
}

int run_probe_child(const std::string& name, std::ostream& out) {
  auto src = make_library_source(name);
  if (!src) {
    out << "{\"error\": \"unknown probe\"}\n";
    return 2;
  }
  DlLoader loader;
  RootedFs fs;
  PosixRunner runner;
  SourceContext ctx;
  ctx.loader = &loader;
  ctx.fs = &fs;
  ctx.runner = &runner;
  SourceReport r = src->collect(ctx);
  out << dump_json(report_to_json(r)) << "\n";
  return 0;
}

SourceReport IsolatedSource::collect(SourceContext& ctx) {
  if (ctx.replay_dir || !ctx.runner) return inner_->collect(ctx);
  auto t0 = std::chrono::steady_clock::now();
  RunOptions opt;
  opt.timeout = ctx.timeout;
  opt.output_cap = 4u << 20;
  CommandResult cr = ctx.runner->run({exe_, "__probe", inner_->name()}, opt);
  SourceReport rep;
  rep.source = inner_->name();
  rep.duration_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (cr.timed_out) {
    rep.status = SourceStatus::timed_out;
    rep.what = inner_->name() + " library probe (child process)";
    rep.notes.push_back("the " + inner_->name() + " library did not answer within " +
                        std::to_string(ctx.timeout.count()) + " ms; the probe process was killed");
    return rep;
  }
  if (!cr.ok()) {
    rep.status = SourceStatus::failed;
    rep.what = inner_->name() + " library probe (child process)";
    rep.notes.push_back("the probe process failed: " + cr.describe_failure() +
                        " (a crash inside the vendor library?)");
    return rep;
  }
  try {
    SourceReport child = report_from_json(nlohmann::json::parse(cr.out));
    child.duration_ms = rep.duration_ms;
    return child;
  } catch (const std::exception& e) {
    rep.status = SourceStatus::failed;
    rep.what = inner_->name() + " library probe (child process)";
    rep.notes.push_back(std::string("the probe process printed no report: ") + e.what());
    return rep;
  }
}

}  // namespace grey
