// Prometheus exposition of the daemon's last sample. Scrapes read the last published
// MetricsInput; they never trigger a collection.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "telemetry/telemetry.h"

namespace grey {

struct GpuMetricsInfo {
  int index = 0;
  std::string uuid, bus_id, model, vendor;  // labels ("" when unknown)
  std::string governor_state;               // "normal" | "cooling"
  std::optional<int> cooldown_c, resume_c;
  std::optional<int64_t> vram_cap_mb;
  // Health (SPEC §9): XIDs seen since the daemon started, per XID; error counters as the
  // device reports them, per type (telemetry/health.h).
  std::map<unsigned long long, uint64_t> xid_errors;
  std::map<std::string, uint64_t> ecc_errors;
};

struct MetricsInput {
  TelemetrySnapshot last;            // the last sample (GPUs and processes)
  std::vector<GpuMetricsInfo> gpus;  // labels, governor state and thresholds per GPU index
  std::map<std::string, double> tick_source_ms;  // last tick's cost per source ("nvml", ...)
  double tick_ms = 0;                            // last tick's wall time
  double last_success_unix = 0;                  // time of the last successful collection (seconds)
  double cpu_seconds = 0;                        // the daemon's own CPU time (utime + stime)
  double rss_bytes = 0;                          // the daemon's own resident set
  uint64_t ticks = 0;
};

// Prometheus text format 0.0.4 (HELP/TYPE lines, escaped label values).
std::string render_prometheus(const MetricsInput& in);

// The answer of a probe endpoint (/healthz, /readyz): an HTTP status and a one-line body.
struct ProbeAnswer {
  int status = 200;  // 200 or 503
  std::string body;  // "ok\n", or why not
};

// SPEC §8. /healthz: 200 while the last tick is younger than 3 intervals, else 503; before the
// first tick the time since the start counts as its age (a loop stuck before its first tick is
// not alive either). `tick_age_s` is that age; an interval <= 0 is never stale. A tick counts
// whether or not the GPUs answered in it: a hung vendor call makes a GPU's sample stale, it does
// not make the daemon dead.
ProbeAnswer healthz_answer(double tick_age_s, double interval_s, bool ticked);
// /readyz: 200 once the first tick is in, else 503.
ProbeAnswer readyz_answer(bool ticked);

// Holds the last published input; thread-safe. The lock is held only to swap or copy a
// pointer: the tick loop's publish() never waits for a render or a client, and a scrape renders
// its own reference to the snapshot outside the lock. Each publish() is one tick for the
// probes: its time is taken from `now` (monotonic seconds; steady_clock unless a test passes
// its own clock).
class MetricsBoard {
 public:
  using MonotonicClock = std::function<double()>;
  explicit MetricsBoard(MonotonicClock now = {});
  struct Snapshot {
    uint64_t version = 0;                       // 0 before the first publish, then 1, 2, ...
    std::shared_ptr<const MetricsInput> input;  // null before the first publish
  };
  void publish(MetricsInput in);
  Snapshot snapshot() const;
  std::string render() const;  // render_prometheus of the snapshot
  // The daemon's tick interval, for /healthz (0: never stale).
  void set_tick_interval(double seconds);
  ProbeAnswer healthz() const;
  ProbeAnswer readyz() const;

 private:
  MonotonicClock now_;
  mutable std::mutex mu_;
  std::shared_ptr<const MetricsInput> cur_;
  uint64_t version_ = 0;
  double started_ = 0;    // now_() at construction
  double last_tick_ = 0;  // now_() at the last publish
  double interval_s_ = 0;
};

// A label value escaped for the text format: backslash, double quote and line feed escaped;
// invalid UTF-8 and other control characters replaced by U+FFFD.
std::string escape_label_value(std::string_view v);

struct ListenAddress {
  std::string host;  // "127.0.0.1" when the text names none; IPv6 without brackets
  int port = 0;
};
// "ADDR:PORT", ":PORT", "PORT", "[::1]:PORT". nullopt (and *error) when invalid.
std::optional<ListenAddress> parse_listen_address(const std::string& listen,
                                                  std::string* error = nullptr);

// HTTP endpoint serving GET /metrics, /healthz and /readyz from a board on its own thread.
class MetricsServer {
 public:
  MetricsServer(std::shared_ptr<MetricsBoard> board);
  ~MetricsServer();
  // "ADDR:PORT", ":PORT" or "PORT" (binds 127.0.0.1 when no address is given). Port 0 picks a
  // free port. Returns an error message, empty on success.
  std::string start(const std::string& listen);
  int port() const;
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace grey
