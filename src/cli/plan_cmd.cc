#include "cli/plan_cmd.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <sstream>

#include "cli/text_table.h"
#include "detect/spec_store.h"
#include "enforce/cap_mechanisms.h"
#include "plan/config.h"
#include "plan/plan_io.h"
#include "util/clock.h"
#include "util/host_fs.h"
#include "util/state_dir.h"

namespace grey {

namespace {

std::string fmt_num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  std::string s = buf;
  while (s.back() == '0') s.pop_back();
  if (s.back() == '.') s += "0";
  return s;
}

std::string shown_value(const GpuPlan& p, const std::string& f) {
  auto i = [](const std::optional<int64_t>& v, const char* unit) {
    return v ? std::to_string(*v) + unit : std::string("-");
  };
  if (f == "per_process_vram_cap_mb") return i(p.per_process_vram_cap_mb, " MiB");
  if (f == "recommended_batch_size") return i(p.recommended_batch_size, "");
  if (f == "tensor_chunk_size_mb") return i(p.tensor_chunk_size_mb, " MiB");
  if (f == "cooldown_threshold_c") return std::to_string(p.cooldown_threshold_c) + " °C";
  if (f == "resume_threshold_c") return std::to_string(p.resume_threshold_c) + " °C";
  if (f == "fair_scheduling_policy") return p.fair_scheduling_policy;
  if (f == "placement_policy") return p.placement_policy.value_or("-");
  if (f == "preemptive_throttle") return p.preemptive_throttle ? "true" : "false";
  if (f == "power_limit_w") {
    if (!p.power_limit_w) return "-";
    std::string w = fmt_num(*p.power_limit_w);
    if (w.size() > 2 && w.compare(w.size() - 2, 2, ".0") == 0) w.resize(w.size() - 2);
    return w + " W";
  }
  if (f == "max_concurrent_kernels") return std::to_string(p.max_concurrent_kernels);
  if (f == "fairness_weight_per_process") return fmt_num(p.fairness_weight_per_process);
  if (f == "utilization_heatmap_enabled") return p.utilization_heatmap_enabled ? "true" : "false";
  // Not measured: "null (not measured)", never a made-up 0 or 1.0.
  if (f == "estimated_reclaimed_mb")
    return p.estimated_reclaimed_mb ? std::to_string(*p.estimated_reclaimed_mb) + " MiB"
                                    : "null (not measured)";
  if (f == "dedup_buffer_count")
    return p.dedup_buffer_count ? std::to_string(*p.dedup_buffer_count) : "null (not measured)";
  if (f == "compression_ratio")
    return p.compression_ratio ? fmt_num(*p.compression_ratio) : "null (not measured)";
  return "?";
}

template <typename V>
std::string get(const std::map<std::string, V>& m, const std::string& k, const V& dflt) {
  auto it = m.find(k);
  return it == m.end() ? dflt : it->second;
}

}  // namespace

namespace {

double gpu_confidence(const GpuPlan& g) {
  if (g.confidence.empty()) return 0;
  double sum = 0;
  for (const auto& [f, c] : g.confidence) sum += c;
  return sum / static_cast<double>(g.confidence.size());
}

// Two GPUs share a row when everything but their identity (index, bus id, uuid) is the same.
bool same_but_identity(GpuPlan a, GpuPlan b) {
  a.index = b.index;
  a.device_id = b.device_id;
  a.uuid = b.uuid;
  return a == b;
}

// "0-3,5,7" for the indices of a group.
std::string index_list(const std::vector<int>& ix) {
  std::string s;
  for (size_t i = 0; i < ix.size();) {
    size_t j = i;
    while (j + 1 < ix.size() && ix[j + 1] == ix[j] + 1) ++j;
    if (!s.empty()) s += ",";
    s += std::to_string(ix[i]);
    if (j > i) {
      // Appended piece by piece: `"," + std::to_string(n)` trips GCC 12's -Wrestrict false
      // positive at -O3 (GCC bug 105329).
      s += j == i + 1 ? ',' : '-';
      s += std::to_string(ix[j]);
    }
    i = j + 1;
  }
  return s;
}

struct PlanGroup {
  std::vector<int> indices;
  std::vector<const GpuPlan*> gpus;
};

std::vector<PlanGroup> group_gpus(const Plan& p) {
  std::vector<PlanGroup> groups;
  for (const auto& g : p.gpus) {
    auto it = std::find_if(groups.begin(), groups.end(), [&](const PlanGroup& pg) {
      return same_but_identity(*pg.gpus.front(), g);
    });
    if (it == groups.end()) {
      groups.push_back({{g.index}, {&g}});
    } else {
      it->indices.push_back(g.index);
      it->gpus.push_back(&g);
    }
  }
  return groups;
}

std::string group_label(const PlanGroup& pg) {
  if (pg.gpus.size() == 1) {
    const GpuPlan& g = *pg.gpus.front();
    std::string s = "GPU " + std::to_string(g.index) + ": " + g.model.value_or("unnamed GPU");
    if (g.device_id) s += " at " + *g.device_id;
    if (g.uuid) s += " (" + *g.uuid + ")";
    return s;
  }
  return "GPUs " + index_list(pg.indices) + " (" + std::to_string(pg.gpus.size()) +
         " identical): " + pg.gpus.front()->model.value_or("unnamed GPU");
}

}  // namespace

std::string render_plan_table(const Plan& p, bool explain) {
  std::ostringstream o;
  o << "Plan: " << to_string(p.mode) << " mode, " << p.gpus.size()
    << (p.gpus.size() == 1 ? " GPU" : " GPUs") << ", confidence " << fmt_num(p.confidence_overall)
    << " (generated " << p.generated_at << ")\n";
  if (p.gpus.empty()) o << "\nNo GPU found: the plan is empty (gpus: []).\n";
  const std::vector<PlanGroup> groups = group_gpus(p);
  if (!groups.empty()) {
    // One row per GPU, or per group of identical GPUs; the rationale is --explain's.
    TextTable t(
        {"GPU", "MODEL", "VRAM CAP", "BATCH", "CHUNK", "COOL/RESUME", "POWER", "CAP BY", "CONF"},
        {0, 32, 0, 0, 0, 0, 0, 0, 0});
    for (const auto& pg : groups) {
      const GpuPlan& g = *pg.gpus.front();
      t.add_row({index_list(pg.indices), g.model.value_or("unnamed GPU"),
                 shown_value(g, "per_process_vram_cap_mb"),
                 shown_value(g, "recommended_batch_size"), shown_value(g, "tensor_chunk_size_mb"),
                 std::to_string(g.cooldown_threshold_c) + "/" +
                     std::to_string(g.resume_threshold_c) + " °C",
                 shown_value(g, "power_limit_w"),
                 get<std::string>(g.enforcement, "per_process_vram_cap_mb", "-"),
                 fmt_num(gpu_confidence(g))});
    }
    o << "\n" << t.render();
  }
  if (explain) {
    for (const auto& pg : groups) {
      const GpuPlan& g = *pg.gpus.front();
      o << "\n" << group_label(pg) << "\n";
      for (const char* f : kPlanFields) {
        auto c = g.confidence.find(f);
        o << "  " << f << " = " << shown_value(g, f) << "  (confidence "
          << (c == g.confidence.end() ? "-" : fmt_num(c->second)) << ", source "
          << get<std::string>(g.provenance, f, "-");
        std::string by = get<std::string>(g.enforcement, f, "");
        if (!by.empty()) o << ", enforced by " << by;
        o << ")\n";
        std::string why = get<std::string>(g.rationale, f, "");
        if (!why.empty()) o << "      " << why << "\n";
      }
    }
  } else if (!groups.empty()) {
    o << "\nEvery field with its confidence, source and rationale: `grey-gpu-opt plan --explain` "
         "(or --json).\n";
  }
  if (!p.notes.empty()) {
    o << "\nNotes:\n";
    for (const auto& n : p.notes) o << "  - " << n << "\n";
  }
  return o.str();
}

int run_plan_command(const GlobalOptions& g, const PlanCliOptions& o, std::ostream& out,
                     std::ostream& err, bool* abandoned_work) {
  if (abandoned_work) *abandoned_work = false;
  // Usage first: nothing is read or written on a bad argument.
  std::optional<PlanMode> cli_mode;
  if (o.mode) {
    cli_mode = parse_plan_mode(*o.mode);
    if (!cli_mode) {
      err << "error: --mode must be safe or aggressive, got \"" << *o.mode << "\"\n";
      return 2;
    }
  }
  std::optional<std::string> out_format;
  if (o.output) {
    out_format = plan_format_for_path(*o.output);
    if (!out_format) {
      err << "error: --output " << *o.output
          << ": the file name must end in .yaml, .yml or .json (that picks the format)\n";
      return 2;
    }
  }

  // The state directory is checked before anything in it is read: a config.yaml planted in a
  // directory others can write must never steer the plan.
  if (std::string se = ensure_state_dir(g.state_dir); !se.empty()) {
    err << "error: " << se << "\nerror: nothing was written\n";
    return 2;
  }

  // Overrides: <state_dir>/config.yaml, then --config on top.
  PlanOverrides overrides;
  auto load_cfg = [&](const std::string& path, FileTrust trust) {
    ConfigResult c = load_config_file(path, trust);
    if (!c.ok) {
      for (const auto& e : c.errors) err << "error: " << e << "\n";
      return false;
    }
    merge_overrides(overrides, c.overrides);
    return true;
  };
  const std::string state_cfg = g.state_dir + "/config.yaml";
  struct stat st;
  if (!g.state_dir.empty() && ::lstat(state_cfg.c_str(), &st) == 0 &&
      !load_cfg(state_cfg, FileTrust::kConfig)) {
    err << "error: fix " << state_cfg << "; nothing was written\n";
    return 2;
  }
  if (o.config_file && !load_cfg(*o.config_file, FileTrust::kUserConfig)) {
    err << "error: fix " << *o.config_file << "; nothing was written\n";
    return 2;
  }

  // The GPU specs: the saved ones, or a fresh detection.
  std::vector<GpuSpec> specs;
  bool need_detect = o.detect;
  if (!o.detect) {
    LoadedSpecs ls = load_specs(g.state_dir);
    if (ls.ok) {
      specs = std::move(ls.specs);
    } else if (ls.missing) {
      need_detect = true;
    } else {
      err << "error: " << ls.error << "\n";
      return 1;
    }
  }
  bool detected = false;
  if (need_detect) {
    if (!o.detector) {
      err << "error: no saved GPU spec in " << g.state_dir << "; run `grey-gpu-opt detect` first\n";
      return 1;
    }
    err << (o.detect ? "Detecting GPUs (--detect)...\n"
                     : "No saved GPU spec yet; detecting GPUs first...\n");
    DetectionResult r = o.detector(g, std::nullopt);
    if (abandoned_work) *abandoned_work = r.abandoned_work;
    specs = std::move(r.gpus);
    if (specs.empty())
      for (const auto& n : r.notes) err << "detect: " << n << "\n";
    detected = true;
  }

  PlanInput in;
  in.specs = specs;
  in.mode = cli_mode ? *cli_mode : overrides.mode.value_or(PlanMode::kSafe);
  in.overrides = overrides;
  in.telemetry = o.telemetry;
  in.generated_at = utc_now_text();
  {
    RootedFs fs(g.sysfs_root, g.procfs_root);
    CapMechanisms mech = detect_cap_mechanisms(fs, self_exe_path(), false);
    in.cuda_cap_tier = mech.cuda_cap_tier();
    in.cuda_cap_how = mech.cuda_cap_how();
  }
  PlanOutcome res = build_plan(in);
  if (!res.ok) {
    for (const auto& e : res.errors) err << "error: " << e << "\n";
    err << "error: the config does not fit these GPUs; nothing was written\n";
    return 2;
  }
  Plan& plan = res.plan;
  if (!cli_mode && overrides.mode)
    plan.notes.push_back("mode " + to_string(*overrides.mode) + " is set in " +
                         overrides.mode_file + ".");

  // Writes.
  if (detected) {
    std::string e = save_specs(g.state_dir, specs);
    if (!e.empty()) err << "warning: could not save the detected GPU spec: " << e << "\n";
  }
  const std::string yaml = plan_to_yaml(plan);
  if (o.output) {
    std::string content = *out_format == "json" ? plan_to_json_text(plan) : yaml;
    std::string e = write_file_atomic(*o.output, content, 0644);
    if (!e.empty()) {
      err << "error: cannot write " << *o.output << ": " << e << "\n";
      return 1;
    }
  }
  std::string e = ensure_state_dir(g.state_dir);
  if (e.empty()) e = write_file_atomic(g.state_dir + "/last_plan.yaml", yaml, 0600);
  if (!e.empty()) {
    err << "error: cannot save " << g.state_dir << "/last_plan.yaml: " << e << "\n";
    return 1;
  }

  if (o.json) {
    out << plan_to_json_text(plan);
  } else {
    out << render_plan_table(plan, o.explain);
    out << "\nSaved " << g.state_dir << "/last_plan.yaml";
    if (o.output) out << " and " << *o.output;
    out << ".\n";
  }
  if (plan.confidence_overall < 0.5) {
    err << "warning: the plan's confidence is " << fmt_num(plan.confidence_overall)
        << " (below 0.5): "
        << (plan.gpus.empty() ? "no GPU was found"
                              : "few sources saw the GPU(s) or key facts such as VRAM are unknown")
        << "; check `grey-gpu-opt detect --explain` before applying it\n";
  }
  return 0;
}

}  // namespace grey
