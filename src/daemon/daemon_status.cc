#include "daemon/daemon_status.h"

#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <sstream>

#include "util/state_dir.h"
#include "util/strings.h"

namespace grey {

namespace {

using json = nlohmann::json;

std::string fmt(double v, int decimals) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string num_text(const json& v) {
  if (v.is_number_integer()) return std::to_string(v.get<long long>());
  if (v.is_number()) {
    double d = v.get<double>();
    return std::fabs(d - std::round(d)) < 1e-9 ? fmt(d, 0) : fmt(d, 1);
  }
  return "?";
}

std::string str_or(const json& j, const char* key, const std::string& fallback = "") {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : fallback;
}

}  // namespace

DaemonStatusView read_daemon_status(const std::string& state_dir, const std::string& proc_root) {
  DaemonStatusView v;
  std::string serr;
  if (auto text = read_whole_file(daemon_status_path(state_dir), &serr, 4u << 20)) {
    try {
      json j = json::parse(*text);
      if (j.is_object())
        v.status = std::move(j);
      else
        v.status_error = daemon_status_path(state_dir) + ": not a JSON object";
    } catch (const std::exception& e) {
      v.status_error = daemon_status_path(state_dir) + ": " + e.what();
    }
  } else if (::access(daemon_status_path(state_dir).c_str(), F_OK) == 0) {
    v.status_error = daemon_status_path(state_dir) + ": " + serr;
  }

  std::string perr;
  auto pid_text = read_whole_file(daemon_pid_path(state_dir), &perr, 4096);
  if (!pid_text) {
    v.why = "no pid file (" + daemon_pid_path(state_dir) + ")";
    return v;
  }
  auto pid = parse_int(trim(*pid_text));
  if (!pid || *pid <= 0) {
    v.stale_pid_file = true;
    v.why = daemon_pid_path(state_dir) + " holds no pid";
    return v;
  }
  v.pid = static_cast<long>(*pid);
  errno = 0;
  bool alive = ::kill(static_cast<pid_t>(*pid), 0) == 0 || errno == EPERM;
  if (!alive) {
    v.stale_pid_file = true;
    v.why = "pid " + std::to_string(*pid) + " from the pid file is not alive (stale pid file)";
    return v;
  }
  std::string want = kDaemonComm;
  if (v.status) {
    std::string rec = str_or(*v.status, "comm");
    auto spid = v.status->find("pid");
    if (!rec.empty() && spid != v.status->end() && spid->is_number_integer() &&
        spid->get<long long>() == *pid)
      want = rec;
  }
  auto comm = read_whole_file(proc_root + "/" + std::to_string(*pid) + "/comm");
  std::string have = comm ? std::string(trim(*comm)) : "";
  if (have != want) {
    v.stale_pid_file = true;
    v.why = "pid " + std::to_string(*pid) + " is alive but is " +
            (have.empty() ? std::string("an unreadable process") : "'" + have + "'") +
            ", not the daemon ('" + want + "'): stale pid file";
    return v;
  }
  v.running = true;
  v.why = "pid " + std::to_string(*pid) + " is alive and is '" + have + "'";
  return v;
}

nlohmann::json daemon_status_json(const DaemonStatusView& v, double now_unix) {
  json j = {{"schema_version", kStatusSchemaVersion},
            {"running", v.running},
            {"pid", v.pid ? json(*v.pid) : json()},
            {"stale_pid_file", v.stale_pid_file},
            {"why", v.why},
            {"last_tick", nullptr},
            {"last_tick_age_s", nullptr},
            {"status", v.status ? *v.status : json()}};
  if (!v.status_error.empty()) j["status_error"] = v.status_error;
  if (v.status) {
    auto lt = v.status->find("last_tick");
    if (lt != v.status->end()) j["last_tick"] = *lt;
    auto lu = v.status->find("last_tick_unix");
    if (lu != v.status->end() && lu->is_number())
      j["last_tick_age_s"] = std::round((now_unix - lu->get<double>()) * 1000.0) / 1000.0;
  }
  return j;
}

std::string render_daemon_status(const DaemonStatusView& v, double now_unix) {
  std::ostringstream o;
  const json* s = v.status ? &*v.status : nullptr;
  if (v.running) {
    o << "Daemon: running (pid " << *v.pid;
    if (s) {
      o << ", since " << str_or(*s, "started_at", "?");
      auto dr = s->find("enforcing");
      if (dr != s->end() && dr->is_boolean())
        o << (dr->get<bool>() ? ", changing power limits" : ", dry run");
    }
    o << ")\n";
  } else {
    o << "Daemon: not running";
    if (v.stale_pid_file) o << " (" << v.why << ")";
    o << "\n";
  }
  if (!v.status_error.empty()) o << "warning: " << v.status_error << "\n";
  if (!s) {
    if (v.running) o << "No tick recorded yet.\n";
    return o.str();
  }
  std::string last = str_or(*s, "last_tick");
  auto lu = s->find("last_tick_unix");
  if (!last.empty()) {
    o << (v.running ? "Last tick: " : "Last tick before it stopped: ") << last;
    if (lu != s->end() && lu->is_number())
      o << " (" << fmt(std::max(0.0, now_unix - lu->get<double>()), 1) << " s ago)";
    auto t = s->find("ticks");
    if (t != s->end() && t->is_number()) o << ", " << num_text(*t) << " ticks";
    auto iv = s->find("interval_s");
    if (iv != s->end() && iv->is_number()) o << " every " << num_text(*iv) << " s";
    auto tm = s->find("tick_ms");
    if (tm != s->end() && tm->is_number())
      o << ", last tick took " << fmt(tm->get<double>(), 2) << " ms";
    o << "\n";
  }
  if (!v.running) {
    std::string st = str_or(*s, "state");
    if (st == "stopped") o << "Stopped at " << str_or(*s, "stopped_at", "?") << ".\n";
  }
  auto gpus = s->find("gpus");
  if (gpus != s->end() && gpus->is_array()) {
    for (const auto& g : *gpus) {
      if (!g.is_object()) continue;
      o << "GPU " << (g.contains("index") ? num_text(g["index"]) : "?");
      std::string bus = str_or(g, "bus_id");
      if (!bus.empty()) o << " (" << bus << ")";
      o << ": " << str_or(g, "state", "unknown");
      auto t = g.find("temperature_c");
      if (t != g.end() && t->is_number()) o << ", " << num_text(*t) << " °C";
      if (g.value("stale", false)) o << ", stale (the last sample did not answer in time)";
      auto c = g.find("cooldown_c");
      auto r = g.find("resume_c");
      if (c != g.end() && r != g.end() && c->is_number() && r->is_number())
        o << " (cooldown " << num_text(*c) << " °C, resume " << num_text(*r) << " °C)";
      auto lf = g.find("lowered_from_w");
      auto lt = g.find("lowered_to_w");
      if (lf != g.end() && lt != g.end() && lf->is_number() && lt->is_number())
        o << ", power limit lowered " << num_text(*lf) << " -> " << num_text(*lt) << " W";
      o << "\n";
      // Health (SPEC §9): one line of its own under the GPU.
      if (auto h = g.find("health"); h != g.end() && h->is_object()) {
        if (h->value("healthy", true)) {
          o << "  Health: ok\n";
        } else {
          o << "  Health: FAULT";
          std::string sep = " (";
          if (auto rs = h->find("reasons"); rs != h->end() && rs->is_array())
            for (const auto& r : *rs)
              if (r.is_string()) {
                o << sep << r.get<std::string>();
                sep = "; ";
              }
          o << (sep == "; " ? ")" : "") << "\n";
        }
      }
    }
  }
  // Why pod labels are empty: the identity notes of the processes without one.
  auto pl = s->find("pod_labels");
  if (pl != s->end() && pl->is_object()) {
    auto n = pl->value("processes", 0), in = pl->value("in_pod", 0);
    if (n > 0) {
      o << "Pod labels: " << in << " of " << n << " GPU processes in a pod";
      auto wo = pl->find("without_pod");
      if (n > in && wo != pl->end() && wo->is_array() && !wo->empty()) {
        o << "; why the others have none:\n";
        for (const auto& p : *wo) {
          if (!p.is_object()) continue;
          o << "  pid " << (p.contains("pid") ? num_text(p["pid"]) : "?") << " ("
            << str_or(p, "command", "?") << "): ";
          std::string why;
          auto notes = p.find("notes");
          if (notes != p.end() && notes->is_array())
            for (const auto& t : *notes)
              if (t.is_string()) why += (why.empty() ? "" : "; ") + t.get<std::string>();
          o << (why.empty() ? std::string("no note recorded") : why) << "\n";
        }
        if (static_cast<size_t>(n - in) > wo->size())
          o << "  (" << (n - in - static_cast<int>(wo->size())) << " more)\n";
      } else {
        o << "\n";
      }
    }
  }
  return o.str();
}

}  // namespace grey
