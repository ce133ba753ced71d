#include "enforce/env_export.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>

#include "enforce/placement.h"
#include "util/json_util.h"
#include "util/strings.h"

namespace grey {

namespace {

std::string fmt_fraction(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

}  // namespace

std::map<std::string, std::string> gpu_environment(const GpuPlan& gp,
                                                   std::optional<int64_t> vram_total_mb) {
  std::map<std::string, std::string> env;
  if (gp.per_process_vram_cap_mb) {
    env["GREY_VRAM_CAP_MB"] = std::to_string(*gp.per_process_vram_cap_mb);
    // CuPy reads a byte count; JAX/XLA a fraction of the device's memory. A validated plan's
    // cap is at most kMibMax, whose byte count fits; a larger one gets no byte count at all.
    if (*gp.per_process_vram_cap_mb >= 0 && *gp.per_process_vram_cap_mb <= kMibMax)
      env["CUPY_GPU_MEMORY_LIMIT"] = std::to_string(*gp.per_process_vram_cap_mb * 1024 * 1024);
    if (vram_total_mb && *vram_total_mb > 0)
      env["XLA_PYTHON_CLIENT_MEM_FRACTION"] =
          fmt_fraction(std::floor(100.0 * static_cast<double>(*gp.per_process_vram_cap_mb) /
                                  static_cast<double>(*vram_total_mb)) /
                       100.0);
  }
  env["GREY_COOLDOWN_C"] = std::to_string(gp.cooldown_threshold_c);
  env["GREY_RESUME_C"] = std::to_string(gp.resume_threshold_c);
  if (gp.recommended_batch_size)
    env["GREY_BATCH_SIZE"] = std::to_string(*gp.recommended_batch_size);
  if (gp.tensor_chunk_size_mb)
    env["GREY_TENSOR_CHUNK_MB"] = std::to_string(*gp.tensor_chunk_size_mb);
  env["GREY_SCHEDULING_POLICY"] = gp.fair_scheduling_policy;
  // Preallocating most of the GPU would defeat a shared cap; growing on demand keeps
  // frameworks inside it.
  env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false";
  env["TF_FORCE_GPU_ALLOW_GROWTH"] = "true";
  return env;
}

std::map<std::string, std::string> plan_environment(const Plan& p,
                                                    const std::vector<GpuSpec>& specs) {
  std::map<std::string, std::string> env;
  if (p.gpus.empty()) return env;
  // The most constrained GPU: a process placed on any GPU stays within its cap.
  const GpuPlan* tight = &p.gpus.front();
  for (const auto& g : p.gpus)
    if (g.per_process_vram_cap_mb && (!tight->per_process_vram_cap_mb ||
                                      *g.per_process_vram_cap_mb < *tight->per_process_vram_cap_mb))
      tight = &g;
  env = gpu_environment(*tight, vram_total_for(specs, *tight));
  if (p.gpus.size() > 1) {
    for (const auto& g : p.gpus)
      for (const auto& [k, v] : gpu_environment(g, vram_total_for(specs, g)))
        if (starts_with(k, "GREY_"))
          env["GREY_GPU" + std::to_string(g.index) + "_" + k.substr(5)] = v;
  }
  env["GREY_PLAN_MODE"] = to_string(p.mode);
  return env;
}

bool is_env_name(std::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) && static_cast<unsigned char>(c) < 0x80) &&
        c != '_')
      return false;
  return true;
}

std::string sh_single_quote(std::string_view v) {
  std::string q = "'";
  for (char c : v) q += c == '\'' ? std::string_view("'\\''") : std::string_view(&c, 1);
  return q + "'";
}

std::string fish_single_quote(std::string_view v) {
  // Inside fish's single quotes only \' and \\ are escapes.
  std::string q = "'";
  for (char c : v) {
    if (c == '\'' || c == '\\') q += '\\';
    q += c;
  }
  return q + "'";
}

std::string check_environment(const std::map<std::string, std::string>& env) {
  for (const auto& [k, v] : env) {
    if (!is_env_name(k))
      return "\"" + sanitize_utf8(k) + "\" is not a variable name ([A-Za-z_][A-Za-z0-9_]*)";
    if (v.find('\0') != std::string::npos) return k + ": a value cannot hold a NUL byte";
  }
  return "";
}

std::string render_env(const std::map<std::string, std::string>& env, const std::string& shell) {
  std::map<std::string, std::string> ok;
  for (const auto& [k, v] : env)
    if (is_env_name(k) && v.find('\0') == std::string::npos) ok.emplace(k, v);
  if (shell == "json") return dump_json(nlohmann::json(ok), 2) + "\n";
  std::string o;
  for (const auto& [k, v] : ok) {
    if (shell == "fish")
      o += "set -gx " + k + " " + fish_single_quote(v) + ";\n";
    else
      o += "export " + k + "=" + sh_single_quote(v) + "\n";
  }
  return o;
}

EnvFile parse_env_file(std::string_view text, const std::string& file) {
  EnvFile r;
  size_t i = 0, line = 1;
  auto fail = [&](const std::string& what) {
    r.vars.clear();
    r.error = file + ":" + std::to_string(line) + ": " + what +
              "; allowed: lines export NAME='value' as `grey-gpu-opt apply` writes them (NAME "
              "of [A-Za-z_][A-Za-z0-9_]*, ' in a value as '\\''), comments and empty lines. "
              "Run `grey-gpu-opt apply --no-dry-run` to write it again.";
    return r;
  };
  // A piece of the file in a message: one line, at most 40 bytes, printable, valid UTF-8.
  auto quoted = [](std::string_view t) {
    std::string q(t.substr(0, std::min(t.find('\n'), size_t{40})));
    for (char& c : q)
      if (static_cast<unsigned char>(c) < 0x20) c = ' ';
    // Piece by piece: `"\"" + std::string` trips GCC 12's -Wrestrict false positive at -O3.
    std::string out = "\"";
    out += sanitize_utf8(q);
    out += '"';
    return out;
  };
  auto shown = [&](size_t from) { return quoted(text.substr(from)); };
  if (text.find('\0') != std::string_view::npos) {
    std::string_view head = text.substr(0, text.find('\0'));
    line = 1 + static_cast<size_t>(std::count(head.begin(), head.end(), '\n'));
    return fail("a NUL byte");
  }
  while (i < text.size()) {
    if (text[i] == '\n') {
      ++i, ++line;
      continue;
    }
    if (text[i] == '#') {
      size_t e = text.find('\n', i);
      i = e == std::string_view::npos ? text.size() : e;
      continue;
    }
    constexpr std::string_view kExport = "export ";
    if (text.substr(i, kExport.size()) != kExport)
      return fail("expected export, found " + shown(i));
    i += kExport.size();
    size_t n = i;
    while (n < text.size() && text[n] != '=' && text[n] != '\n') ++n;
    std::string_view name = text.substr(i, n - i);
    if (!is_env_name(name)) return fail(quoted(name) + " is not a variable name");
    if (n >= text.size() || text[n] != '=') return fail("no = after " + std::string(name));
    i = n + 1;
    const size_t start_line = line;
    std::string value;
    bool any = false;
    while (i < text.size() && text[i] != '\n') {
      if (text[i] == '\'') {
        size_t e = text.find('\'', i + 1);
        if (e == std::string_view::npos)
          return fail("the value of " + std::string(name) + " (from line " +
                      std::to_string(start_line) + ") has no closing quote");
        std::string_view part = text.substr(i + 1, e - i - 1);
        line += static_cast<size_t>(std::count(part.begin(), part.end(), '\n'));
        value += part;
        i = e + 1;
        any = true;
      } else if (text.substr(i, 2) == "\\'") {
        value += '\'';
        i += 2;
        any = true;
      } else {
        return fail("after the value of " + std::string(name) + " comes " + shown(i) +
                    ", which is not part of a quoted value");
      }
    }
    if (!any) return fail("the value of " + std::string(name) + " is not quoted");
    if (!r.vars.emplace(std::string(name), std::move(value)).second)
      return fail(std::string(name) + " appears twice");
  }
  r.ok = true;
  return r;
}

}  // namespace grey
