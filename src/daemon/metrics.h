// Prometheus exposition of the daemon's last sample. Scrapes read the last published
// MetricsInput; they never trigger a collection.
#pragma once

#include <cstdint>
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

// Holds the last published input; thread-safe. The lock is held only to swap or copy a
// pointer: the tick loop's publish() never waits for a render or a client, and a scrape renders
// its own reference to the snapshot outside the lock.
class MetricsBoard {
 public:
  struct Snapshot {
    uint64_t version = 0;                       // 0 before the first publish, then 1, 2, ...
    std::shared_ptr<const MetricsInput> input;  // null before the first publish
  };
  void publish(MetricsInput in);
  Snapshot snapshot() const;
  std::string render() const;  // render_prometheus of the snapshot

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const MetricsInput> cur_;
  uint64_t version_ = 0;
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

// HTTP endpoint serving GET /metrics from a board on its own thread.
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
