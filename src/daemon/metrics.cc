#include "daemon/metrics.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <set>
#include <thread>

#include "util/strings.h"

namespace grey {

namespace {

constexpr double kMiB = 1024.0 * 1024.0;

// Shortest text that reads back as the same double ("61169", "0.57", "8.589934592e+10").
std::string format_value(double v) {
  char buf[64];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
  if (ec != std::errc()) return "0";
  return std::string(buf, p);
}

}  // namespace

std::string escape_label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size() + 8);
  const auto* s = reinterpret_cast<const unsigned char*>(v.data());
  size_t n = v.size(), i = 0;
  while (i < n) {
    unsigned char c = s[i];
    if (c == '\\') {
      out += "\\\\";
      ++i;
      continue;
    }
    if (c == '"') {
      out += "\\\"";
      ++i;
      continue;
    }
    if (c == '\n') {
      out += "\\n";
      ++i;
      continue;
    }
    if (c < 0x80) {
      // Other control characters are legal in the format but useless (and confusing) in a
      // label; they become U+FFFD like invalid UTF-8.
      if (c < 0x20 && c != '\t')
        append_utf8(out, 0xFFFD);
      else if (c == 0x7F)
        append_utf8(out, 0xFFFD);
      else
        out += static_cast<char>(c);
      ++i;
      continue;
    }
    // One multi-byte UTF-8 sequence; a bad byte becomes U+FFFD.
    const size_t len = utf8_sequence_length(v, i);
    if (len == 0) {
      append_utf8(out, 0xFFFD);
      ++i;
      continue;
    }
    out.append(v.substr(i, len));
    i += len;
  }
  return out;
}

namespace {

using Labels = std::vector<std::pair<std::string, std::string>>;

std::string label_text(const Labels& labels) {
  if (labels.empty()) return "";
  std::string s = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i) s += ',';
    s += labels[i].first;
    s += "=\"";
    s += escape_label_value(labels[i].second);
    s += '"';
  }
  return s + "}";
}

// One metric family: HELP and TYPE, then its samples. A family without samples is not
// written at all, and a label set seen twice keeps its first value (Prometheus rejects a
// scrape with duplicate series).
class Family {
 public:
  Family(std::string name, std::string type, std::string help)
      : name_(std::move(name)), type_(std::move(type)), help_(std::move(help)) {}

  void add(const Labels& labels, std::optional<double> v) {
    if (!v || !std::isfinite(*v)) return;  // unknown: omitted, never 0
    std::string l = label_text(labels);
    if (!seen_.insert(l).second) return;
    body_ += name_;
    body_ += l;
    body_ += ' ';
    body_ += format_value(*v);
    body_ += '\n';
  }

  void write(std::string& out) const {
    if (body_.empty()) return;
    out += "# HELP " + name_ + " " + help_ + "\n";
    out += "# TYPE " + name_ + " " + type_ + "\n";
    out += body_;
  }

 private:
  std::string name_, type_, help_;
  std::string body_;
  std::set<std::string> seen_;
};

std::optional<double> mib_to_bytes(const std::optional<int64_t>& mb) {
  if (!mb || *mb < 0) return std::nullopt;
  return static_cast<double>(*mb) * kMiB;
}

std::optional<double> pct_to_ratio(const std::optional<double>& pct) {
  if (!pct || !std::isfinite(*pct)) return std::nullopt;
  return std::clamp(*pct / 100.0, 0.0, 1.0);
}

template <typename T>
std::optional<double> as_double(const std::optional<T>& v) {
  if (!v) return std::nullopt;
  return static_cast<double>(*v);
}

}  // namespace

std::string render_prometheus(const MetricsInput& in) {
  Family temp("grey_gpu_temperature_celsius", "gauge", "GPU temperature in degrees Celsius.");
  Family vram_used("grey_gpu_vram_used_bytes", "gauge", "GPU memory in use, in bytes.");
  Family vram_total("grey_gpu_vram_total_bytes", "gauge", "GPU memory in total, in bytes.");
  Family util("grey_gpu_utilization_ratio", "gauge", "GPU utilization from 0 to 1.");
  Family power("grey_gpu_power_watts", "gauge", "GPU power draw in watts.");
  Family plimit("grey_gpu_power_limit_watts", "gauge", "GPU power limit in force, in watts.");
  Family plimit_min("grey_gpu_power_limit_min_watts", "gauge",
                    "Lowest power limit the GPU accepts, in watts.");
  Family plimit_max("grey_gpu_power_limit_max_watts", "gauge",
                    "Highest power limit the GPU accepts, in watts.");
  Family cooling("grey_gpu_governor_cooling", "gauge",
                 "1 while the thermal governor holds the GPU in cooling, else 0.");
  Family gstate("grey_gpu_governor_state", "gauge",
                "Thermal governor state of the GPU: 1 for the current state, 0 for the others.");
  Family cooldown("grey_gpu_cooldown_threshold_celsius", "gauge",
                  "Temperature at or above which the governor enters cooling.");
  Family resume("grey_gpu_resume_threshold_celsius", "gauge",
                "Temperature at or below which the governor may leave cooling.");
  Family cap("grey_gpu_vram_cap_bytes", "gauge", "Planned per-process VRAM cap, in bytes.");
  Family stale("grey_gpu_sample_stale", "gauge",
               "1 when the last sample of the GPU did not answer in time (its readings are "
               "then omitted), else 0.");
  Family pvram("grey_process_vram_used_bytes", "gauge", "GPU memory held by a process, in bytes.");
  Family putil("grey_process_utilization_ratio", "gauge",
               "GPU utilization of a process from 0 to 1.");
  Family tick("grey_daemon_tick_duration_seconds", "gauge",
              "Wall time of the last tick per telemetry source, and in total (source=\"total\").");
  Family last_ok("grey_daemon_last_success_timestamp_seconds", "gauge",
                 "Unix time of the last successful collection.");
  Family cpu("grey_daemon_cpu_seconds_total", "counter",
             "CPU time (user and system) the daemon has used, in seconds.");
  Family rss("grey_daemon_resident_memory_bytes", "gauge",
             "Resident memory of the daemon, in bytes.");
  Family ticks("grey_daemon_ticks_total", "counter", "Ticks the daemon has run.");
  Family xid_total("grey_gpu_xid_errors_total", "counter",
                   "XID errors the driver reported since the daemon started, per XID.");
  Family ecc_total("grey_gpu_ecc_errors_total", "counter",
                   "GPU memory error counts (ECC, retired pages, remapped rows, RAS) by type.");

  std::map<int, const GpuMetricsInfo*> info;
  for (const auto& g : in.gpus) info.emplace(g.index, &g);

  auto gpu_labels = [](int index, const GpuMetricsInfo* gi, const GpuSample* s) {
    std::string uuid = gi ? gi->uuid : "", bus = gi ? gi->bus_id : "";
    if (uuid.empty() && s && s->uuid) uuid = *s->uuid;
    if (bus.empty() && s && s->bus_id) bus = *s->bus_id;
    return Labels{{"gpu", std::to_string(index)},
                  {"uuid", uuid},
                  {"bus_id", bus},
                  {"model", gi ? gi->model : ""},
                  {"vendor", gi ? gi->vendor : ""}};
  };

  std::set<int> sampled;
  for (const auto& s : in.last.gpus) {
    auto it = info.find(s.index);
    const GpuMetricsInfo* gi = it == info.end() ? nullptr : it->second;
    Labels l = gpu_labels(s.index, gi, &s);
    sampled.insert(s.index);
    stale.add(l, s.stale ? 1.0 : 0.0);
    if (s.stale) continue;  // a stale sample carries no readings
    temp.add(l, s.temperature_c);
    vram_used.add(l, mib_to_bytes(s.vram_used_mb));
    vram_total.add(l, mib_to_bytes(s.vram_total_mb));
    util.add(l, pct_to_ratio(s.utilization_pct));
    power.add(l, s.power_w);
    plimit.add(l, s.power_limit_w);
    plimit_min.add(l, s.power_limit_min_w);
    plimit_max.add(l, s.power_limit_max_w);
  }
  // Governor state and thresholds: for every GPU the daemon governs, sampled or not. A GPU the
  // daemon knows but the last sample did not list counts as stale.
  for (const auto& g : in.gpus) {
    const GpuSample* s = nullptr;
    for (const auto& x : in.last.gpus)
      if (x.index == g.index) {
        s = &x;
        break;
      }
    Labels l = gpu_labels(g.index, &g, s);
    if (!sampled.count(g.index)) stale.add(l, 1.0);
    if (!g.governor_state.empty()) {
      cooling.add(l, g.governor_state == "cooling" ? 1.0 : 0.0);
      std::vector<std::string> states = {"normal", "cooling"};
      if (std::find(states.begin(), states.end(), g.governor_state) == states.end())
        states.push_back(g.governor_state);
      for (const auto& st : states) {
        Labels ls = l;
        ls.emplace_back("state", st);
        gstate.add(ls, st == g.governor_state ? 1.0 : 0.0);
      }
    }
    cooldown.add(l, as_double(g.cooldown_c));
    resume.add(l, as_double(g.resume_c));
    cap.add(l, mib_to_bytes(g.vram_cap_mb));
    for (const auto& [xid, n] : g.xid_errors) {
      Labels lx = l;
      lx.emplace_back("xid", std::to_string(xid));
      xid_total.add(lx, static_cast<double>(n));
    }
    for (const auto& [type, n] : g.ecc_errors) {
      Labels le = l;
      le.emplace_back("type", type);
      ecc_total.add(le, static_cast<double>(n));
    }
  }

  for (const auto& p : in.last.processes) {
    Labels l{{"gpu", p.gpu_index ? std::to_string(*p.gpu_index) : ""},
             {"pid", std::to_string(p.pid)},
             {"command", p.command},
             {"user", p.user},
             // dcgm-exporter's names; empty outside a pod (the telemetry record's
             // identity_notes say why).
             {"pod", p.identity.pod},
             {"namespace", p.identity.pod_namespace},
             {"container", p.identity.container}};
    pvram.add(l, mib_to_bytes(p.vram_mb));
    putil.add(l, pct_to_ratio(p.utilization_pct));
  }

  if (in.ticks > 0) {
    for (const auto& [src, ms] : in.tick_source_ms)
      if (ms >= 0) tick.add({{"source", src}}, ms / 1000.0);
    if (in.tick_ms >= 0) tick.add({{"source", "total"}}, in.tick_ms / 1000.0);
  }
  if (in.last_success_unix > 0) last_ok.add({}, in.last_success_unix);
  if (in.cpu_seconds > 0) cpu.add({}, in.cpu_seconds);
  if (in.rss_bytes > 0) rss.add({}, in.rss_bytes);
  ticks.add({}, static_cast<double>(in.ticks));

  std::string out;
  out.reserve(4096);
  for (const Family* f :
       {&temp,    &vram_used, &vram_total, &util,   &power, &plimit,    &plimit_min, &plimit_max,
        &cooling, &gstate,    &cooldown,   &resume, &cap,   &stale,     &pvram,      &putil,
        &tick,    &last_ok,   &cpu,        &rss,    &ticks, &xid_total, &ecc_total})
    f->write(out);
  return out;
}

namespace {
double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", s);
  return buf;
}
}  // namespace

ProbeAnswer healthz_answer(double tick_age_s, double interval_s, bool ticked) {
  const double limit = 3 * interval_s;
  if (interval_s <= 0 || tick_age_s < limit) return {200, "ok\n"};
  return {503, std::string(ticked ? "stale: the last tick was " : "stale: no tick in the ") +
                   seconds_text(tick_age_s) + " s" + (ticked ? " ago" : " since the start") +
                   " (limit: 3 intervals = " + seconds_text(limit) + " s)\n"};
}

ProbeAnswer readyz_answer(bool ticked) {
  if (ticked) return {200, "ok\n"};
  return {503, "not ready: no tick yet\n"};
}

MetricsBoard::MetricsBoard(MonotonicClock now) : now_(now ? std::move(now) : steady_seconds) {
  started_ = now_();
}

void MetricsBoard::set_tick_interval(double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  interval_s_ = seconds;
}

ProbeAnswer MetricsBoard::healthz() const {
  const double now = now_();
  std::lock_guard<std::mutex> lock(mu_);
  const bool ticked = version_ > 0;
  return healthz_answer(now - (ticked ? last_tick_ : started_), interval_s_, ticked);
}

ProbeAnswer MetricsBoard::readyz() const {
  std::lock_guard<std::mutex> lock(mu_);
  return readyz_answer(version_ > 0);
}

void MetricsBoard::publish(MetricsInput in) {
  auto next = std::make_shared<const MetricsInput>(std::move(in));
  const double now = now_();
  {
    std::lock_guard<std::mutex> lock(mu_);
    cur_.swap(next);
    ++version_;
    last_tick_ = now;
  }
  // The previous input (now in `next`) is freed here, outside the lock; a scrape still
  // rendering it holds its own reference.
}

MetricsBoard::Snapshot MetricsBoard::snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {version_, cur_};
}

std::string MetricsBoard::render() const {
  Snapshot s = snapshot();
  return render_prometheus(s.input ? *s.input : MetricsInput{});
}

std::optional<ListenAddress> parse_listen_address(const std::string& listen, std::string* error) {
  auto fail = [&](const std::string& why) -> std::optional<ListenAddress> {
    if (error) *error = "invalid metrics listen address '" + listen + "': " + why;
    return std::nullopt;
  };
  std::string_view s = trim(listen);
  if (s.empty()) return fail("empty (expected ADDR:PORT, :PORT or PORT)");
  ListenAddress a;
  a.host = "127.0.0.1";
  std::string_view port;
  if (s.front() == '[') {
    size_t close = s.find(']');
    if (close == std::string_view::npos) return fail("missing ']' after the IPv6 address");
    a.host = std::string(s.substr(1, close - 1));
    if (a.host.empty()) return fail("empty IPv6 address between '[' and ']'");
    std::string_view rest = s.substr(close + 1);
    if (rest.empty() || rest.front() != ':') return fail("expected ':PORT' after ']'");
    port = rest.substr(1);
  } else {
    size_t colon = s.rfind(':');
    if (colon == std::string_view::npos) {
      port = s;
    } else {
      if (s.find(':') != colon)
        return fail("an IPv6 address must be written in brackets: [::1]:PORT");
      if (colon > 0) a.host = std::string(s.substr(0, colon));
      port = s.substr(colon + 1);
    }
  }
  if (port.empty()) return fail("missing port");
  auto p = parse_int(port);
  if (!p || port.find_first_not_of("0123456789") != std::string_view::npos)
    return fail("port '" + std::string(port) + "' is not a number");
  if (*p < 0 || *p > 65535) return fail("port " + std::string(port) + " is out of range 0-65535");
  a.port = static_cast<int>(*p);
  return a;
}

// ---- the /metrics endpoint ------------------------------------------------------------------
//
// A deliberately small HTTP/1.1 responder (RFC 9112): one request per connection ("Connection:
// close"), GET and HEAD of /metrics only. A general HTTP library (Debian's libcpp-httplib pulls
// in OpenSSL, zlib and Brotli) cost every command of the binary about 4 MB of resident memory at
// start-up, so this is one thread running a poll() loop over non-blocking sockets:
//  - every connection is served concurrently; an idle or slow client only holds its own slot;
//  - each connection has kConnectionBudget in total to send its request head and take the reply
//    (partial writes resume when the socket is writable again), then it is closed;
//  - at most kMaxConnections are open; a new connection beyond that closes the oldest one that
//    has not sent a whole request yet (an idle one) but had kEvictionGrace to send it, or waits
//    in the listen backlog until there is such a connection or a free slot;
//  - the body is rendered from the board's snapshot once per published version and shared by
//    every reply; the tick loop only ever swaps a pointer under the board's lock.

namespace {

constexpr auto kConnectionBudget = std::chrono::seconds(2);
constexpr auto kDrainBudget = std::chrono::milliseconds(200);
constexpr size_t kMaxRequestHead = 8192;
constexpr size_t kMaxConnections = 128;
// A connection is not closed to make room before it had this long to send its request, so a
// flood of new connections cannot push out a scraper between its connect and its request.
constexpr auto kEvictionGrace = std::chrono::milliseconds(100);
constexpr int kListenBacklog = 1024;  // beyond the cap, newcomers wait here

using Clock = std::chrono::steady_clock;

std::string reply_head(int status, std::string_view reason, std::string_view content_type,
                       size_t body_size, std::string_view extra_headers = {}) {
  std::string r = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) + "\r\n";
  r += "Content-Type: " + std::string(content_type) + "\r\n";
  r += "Content-Length: " + std::to_string(body_size) + "\r\n";
  r += extra_headers;
  r += "Connection: close\r\n\r\n";
  return r;
}

// One reply: a head of its own and a body that may be shared with other connections.
struct Reply {
  std::string head;
  std::shared_ptr<const std::string> body;  // null: no body (HEAD)
};

Reply small_reply(int status, std::string_view reason, std::string body, bool head_only,
                  std::string_view extra_headers = {}) {
  Reply r;
  r.head = reply_head(status, reason, "text/plain", body.size(), extra_headers);
  if (!head_only) r.body = std::make_shared<const std::string>(std::move(body));
  return r;
}

// The rendered body of the board's current snapshot, rendered again only when a newer input
// has been published. Used by the server thread only.
class BodyCache {
 public:
  explicit BodyCache(std::shared_ptr<MetricsBoard> board) : board_(std::move(board)) {}
  const MetricsBoard& board() const { return *board_; }
  std::shared_ptr<const std::string> get() {
    MetricsBoard::Snapshot s = board_->snapshot();
    if (!body_ || s.version != version_) {
      body_ = std::make_shared<const std::string>(
          render_prometheus(s.input ? *s.input : MetricsInput{}));
      version_ = s.version;
    }
    return body_;
  }

 private:
  std::shared_ptr<MetricsBoard> board_;
  std::shared_ptr<const std::string> body_;
  uint64_t version_ = 0;
};

// The reply to one request head ("GET /metrics HTTP/1.1\r\nHost: ...").
Reply answer(std::string_view head, BodyCache& cache) {
  size_t eol = head.find('\n');
  std::string_view line = head.substr(0, eol);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.substr(sp2 + 1).rfind("HTTP/1.", 0) != 0)
    return small_reply(400, "Bad Request", "bad request line\n", false);
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  target = target.substr(0, target.find('?'));
  bool head_only = method == "HEAD";
  const bool probe = target == "/healthz" || target == "/readyz";
  if (target != "/metrics" && !probe)
    return small_reply(404, "Not Found", "not found: try /metrics, /healthz or /readyz\n",
                       head_only);
  if (method != "GET" && !head_only)
    return small_reply(405, "Method Not Allowed", "only GET and HEAD\n", false,
                       "Allow: GET, HEAD\r\n");
  if (probe) {
    // Liveness and readiness read only the board's tick times: never a GPU, never a render.
    ProbeAnswer a = target == "/healthz" ? cache.board().healthz() : cache.board().readyz();
    return small_reply(a.status, a.status == 200 ? "OK" : "Service Unavailable", std::move(a.body),
                       head_only, "Cache-Control: no-store\r\n");
  }
  // Only renders the last published sample: a scrape never triggers a collection.
  Reply r;
  r.body = cache.get();
  r.head = reply_head(200, "OK", "text/plain; version=0.0.4; charset=utf-8", r.body->size());
  if (head_only) r.body.reset();
  return r;
}

struct Connection {
  int fd = -1;
  uint64_t seq = 0;            // accept order: the lowest is the oldest
  Clock::time_point accepted;  // when it was accepted
  Clock::time_point deadline;  // the whole exchange; then the connection is closed
  enum class Phase { kReading, kWriting, kDraining } phase = Phase::kReading;
  std::string in;  // request head so far
  Reply out;
  size_t sent = 0;  // bytes of out.head, then of *out.body, already sent
};

bool would_block(int e) {
  return e == EAGAIN || e == EWOULDBLOCK || e == EINTR;
}

class Loop {
 public:
  Loop(int listen_fd, int stop_fd, std::shared_ptr<MetricsBoard> board)
      : listen_fd_(listen_fd), stop_fd_(stop_fd), cache_(std::move(board)) {}
  ~Loop() {
    for (auto& c : conns_) ::close(c.fd);
  }

  void run() {
    std::vector<pollfd> fds;
    for (;;) {
      const auto now = Clock::now();
      expire(now);
      const bool accepting =
          now >= fd_backoff_until_ && (conns_.size() < kMaxConnections || now >= room_at_);
      fds.clear();
      fds.push_back({stop_fd_, POLLIN, 0});
      fds.push_back({accepting ? listen_fd_ : -1, POLLIN, 0});
      for (const auto& c : conns_)
        fds.push_back(
            {c.fd, static_cast<short>(c.phase == Connection::Phase::kWriting ? POLLOUT : POLLIN),
             0});
      int n = ::poll(fds.data(), fds.size(), timeout_ms(now));
      if (n < 0 && errno != EINTR) return;
      if (n <= 0) continue;
      if (fds[0].revents) return;
      // Connections first (by index: accept_all below appends and may evict).
      std::vector<size_t> done;
      for (size_t i = 0; i < conns_.size(); ++i)
        if (fds[i + 2].revents && !step(conns_[i])) done.push_back(i);
      for (auto it = done.rbegin(); it != done.rend(); ++it) drop(*it);
      if (fds[1].revents & POLLIN) accept_all();
    }
  }

 private:
  int timeout_ms(Clock::time_point now) const {
    auto next = Clock::time_point::max();
    for (const auto& c : conns_) next = std::min(next, c.deadline);
    if (now < fd_backoff_until_) next = std::min(next, fd_backoff_until_);
    if (conns_.size() >= kMaxConnections && now < room_at_) next = std::min(next, room_at_);
    if (next == Clock::time_point::max()) return -1;
    auto ms = std::chrono::ceil<std::chrono::milliseconds>(next - now).count();
    return ms <= 0 ? 0 : static_cast<int>(std::min<long long>(ms, 60000));
  }

  void expire(Clock::time_point now) {
    for (size_t i = conns_.size(); i-- > 0;)
      if (now >= conns_[i].deadline) drop(i);
  }

  void drop(size_t i) {
    ::close(conns_[i].fd);
    conns_[i] = std::move(conns_.back());
    conns_.pop_back();
  }

  // Makes room for one more connection: closes the oldest one still waiting for its request
  // that has had kEvictionGrace to send it. False when there is none.
  bool make_room() {
    const auto now = Clock::now();
    size_t victim = conns_.size();
    for (size_t i = 0; i < conns_.size(); ++i)
      if (conns_[i].phase == Connection::Phase::kReading &&
          now - conns_[i].accepted >= kEvictionGrace &&
          (victim == conns_.size() || conns_[i].seq < conns_[victim].seq))
        victim = i;
    if (victim == conns_.size()) return false;
    drop(victim);
    return true;
  }

  // Accepts what the backlog holds while there is room. When every slot is taken and none may
  // be closed yet, the rest wait in the kernel's backlog (their requests arrive there meanwhile)
  // until room_at_, rather than being refused.
  void accept_all() {
    for (;;) {
      if (conns_.size() >= kMaxConnections && !make_room()) {
        room_at_ = next_room();
        return;
      }
      int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (c < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        // Out of descriptors or memory: close an idle connection, else stop accepting for a
        // moment instead of spinning on a ready socket.
        if ((errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) &&
            !make_room())
          fd_backoff_until_ = Clock::now() + std::chrono::milliseconds(100);
        return;  // EAGAIN: nothing more to accept now
      }
      Connection conn;
      conn.fd = c;
      conn.seq = ++seq_;
      conn.accepted = Clock::now();
      conn.deadline = conn.accepted + kConnectionBudget;
      conns_.push_back(std::move(conn));
      // A scraper sends its request right after connecting: answer it now if it is there.
      if (!step(conns_.back())) drop(conns_.size() - 1);
    }
  }

  // The earliest time make_room() can succeed (a connection reaches kEvictionGrace, or its
  // deadline frees its slot).
  Clock::time_point next_room() const {
    auto t = Clock::time_point::max();
    for (const auto& c : conns_) {
      t = std::min(t, c.deadline);
      if (c.phase == Connection::Phase::kReading) t = std::min(t, c.accepted + kEvictionGrace);
    }
    return t;
  }

  // Advances one connection; false when it is finished (or failed) and is to be closed.
  bool step(Connection& c) {
    switch (c.phase) {
      case Connection::Phase::kReading:
        return read_request(c);
      case Connection::Phase::kWriting:
        return write_reply(c);
      case Connection::Phase::kDraining:
        return drain(c);
    }
    return false;
  }

  bool read_request(Connection& c) {
    char buf[2048];
    for (;;) {
      ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
      if (n < 0) return would_block(errno);
      if (n == 0) return false;  // closed before a whole request head arrived
      c.in.append(buf, static_cast<size_t>(n));
      size_t end = c.in.find("\r\n\r\n");
      if (end == std::string::npos) {
        // RFC 9112 §2.2: a recipient may take a bare LF as the line terminator.
        size_t lf = c.in.find("\n\n");
        if (lf != std::string::npos) {
          c.in.replace(lf, 2, "\r\n\r\n");
          end = lf;
        }
      }
      if (end != std::string::npos) {
        c.out = answer(std::string_view(c.in).substr(0, end + 2), cache_);
      } else if (c.in.size() > kMaxRequestHead) {
        c.out = small_reply(431, "Request Header Fields Too Large", "too large\n", false);
      } else {
        continue;
      }
      c.in.clear();
      c.in.shrink_to_fit();
      c.phase = Connection::Phase::kWriting;
      return write_reply(c);
    }
  }

  bool write_reply(Connection& c) {
    const size_t head = c.out.head.size(), body = c.out.body ? c.out.body->size() : 0;
    while (c.sent < head + body) {
      iovec iov[2];
      int cnt = 0;
      if (c.sent < head)
        iov[cnt++] = {const_cast<char*>(c.out.head.data()) + c.sent, head - c.sent};
      if (body) {
        size_t off = c.sent < head ? 0 : c.sent - head;
        iov[cnt++] = {const_cast<char*>(c.out.body->data()) + off, body - off};
      }
      msghdr m{};
      m.msg_iov = iov;
      m.msg_iovlen = static_cast<size_t>(cnt);
      ssize_t n = ::sendmsg(c.fd, &m, MSG_NOSIGNAL);
      if (n < 0) return would_block(errno);  // the rest when the socket is writable again
      c.sent += static_cast<size_t>(n);
    }
    c.out = Reply{};
    // Close gracefully: closing with unread request bytes (a body we ignored) would reset the
    // connection and could discard the reply before the client read it.
    ::shutdown(c.fd, SHUT_WR);
    c.phase = Connection::Phase::kDraining;
    c.deadline = std::min(c.deadline, Clock::now() + kDrainBudget);
    return drain(c);
  }

  bool drain(Connection& c) {
    char buf[2048];
    for (;;) {
      ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
      if (n < 0) return would_block(errno);
      if (n == 0) return false;
    }
  }

  int listen_fd_, stop_fd_;
  BodyCache cache_;
  std::vector<Connection> conns_;
  uint64_t seq_ = 0;
  Clock::time_point fd_backoff_until_{};  // after EMFILE and the like
  Clock::time_point room_at_{};           // when full: when a connection may be closed for room
};

}  // namespace

struct MetricsServer::Impl {
  std::shared_ptr<MetricsBoard> board;
  int listen_fd = -1;
  int stop_pipe[2] = {-1, -1};  // written by stop() to wake the loop
  std::thread th;
  int port = 0;
};

MetricsServer::MetricsServer(std::shared_ptr<MetricsBoard> board)
    : impl_(std::make_unique<Impl>()) {
  impl_->board = std::move(board);
}

MetricsServer::~MetricsServer() {
  stop();
}

std::string MetricsServer::start(const std::string& listen) {
  if (impl_->listen_fd >= 0)
    return "the metrics server is already running on port " + std::to_string(impl_->port);
  if (!impl_->board) return "no metrics board";
  std::string error;
  auto addr = parse_listen_address(listen, &error);
  if (!addr) return error;
  std::string where = addr->host + ":" + std::to_string(addr->port);

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string port_text = std::to_string(addr->port);
  int gai = getaddrinfo(addr->host.c_str(), port_text.c_str(), &hints, &res);
  if (gai != 0) return "cannot listen on " + where + ": " + gai_strerror(gai);
  int fd = -1;
  std::string why = "no address";
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0) {
      why = std::strerror(errno);
      continue;
    }
    // SO_REUSEADDR (restart without TIME_WAIT trouble) but not SO_REUSEPORT, which would let a
    // second daemon bind the same port and silently share the scrapes.
    int yes = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && ::listen(fd, kListenBacklog) == 0) break;
    why = std::strerror(errno);
    close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  if (fd < 0) return "cannot listen on " + where + ": " + why;

  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  int port = addr->port;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
    if (ss.ss_family == AF_INET)
      port = ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    else if (ss.ss_family == AF_INET6)
      port = ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  }
  if (pipe2(impl_->stop_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
    std::string e = std::strerror(errno);
    close(fd);
    return "cannot start the metrics server: pipe: " + e;
  }
  impl_->listen_fd = fd;
  impl_->port = port;
  int stop_fd = impl_->stop_pipe[0];
  std::shared_ptr<MetricsBoard> board = impl_->board;
  impl_->th = std::thread([fd, stop_fd, board] {
    Loop loop(fd, stop_fd, board);
    loop.run();
  });
  return "";
}

int MetricsServer::port() const {
  return impl_->listen_fd >= 0 ? impl_->port : 0;
}

void MetricsServer::stop() {
  if (!impl_ || impl_->listen_fd < 0) return;
  char one = 1;
  while (write(impl_->stop_pipe[1], &one, 1) < 0 && errno == EINTR) {
  }
  if (impl_->th.joinable()) impl_->th.join();
  close(impl_->listen_fd);
  close(impl_->stop_pipe[0]);
  close(impl_->stop_pipe[1]);
  impl_->listen_fd = -1;
  impl_->stop_pipe[0] = impl_->stop_pipe[1] = -1;
  impl_->port = 0;
}

}  // namespace grey
