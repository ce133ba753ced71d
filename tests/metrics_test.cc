#include "daemon/metrics.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "daemon/daemon.h"
#include "test_util.h"
#include "util/runner.h"

extern char** environ;

namespace grey {
namespace {

using namespace std::chrono_literals;

MetricsInput sample_input() {
  MetricsInput in;
  in.last.timestamp = "2026-11-26T15:00:00.000Z";
  GpuSample a;
  a.index = 0;
  a.bus_id = "0000:1b:00.0";
  a.uuid = "GPU-3f2a7c1e";
  a.vram_used_mb = 1024;
  a.vram_total_mb = 81559;
  a.temperature_c = 71.5;
  a.utilization_pct = 57;
  a.power_w = 312.25;
  a.power_limit_w = 700;
  a.power_limit_min_w = 200;
  a.power_limit_max_w = 700;
  a.backend = "nvml";
  GpuSample b;  // stale: every reading unknown
  b.index = 1;
  b.bus_id = "0000:2c:00.0";
  b.stale = true;
  b.backend = "sysfs";
  in.last.gpus = {a, b};

  ProcessSample p1;
  p1.pid = 4242;
  p1.command = "py\"th\\on\nx";  // quote, backslash, newline
  p1.user = "alice";
  p1.gpu_index = 0;
  p1.vram_mb = 512;
  p1.utilization_pct = 150;  // clamped to 1
  p1.backend = "nvml";
  ProcessSample p2;  // utilization unknown
  p2.pid = 7;
  p2.command = "blender";
  p2.user = "1001";
  p2.gpu_index = 1;
  p2.vram_mb = 64;
  p2.backend = "fdinfo";
  in.last.processes = {p1, p2};

  GpuMetricsInfo g0;
  g0.index = 0;
  g0.uuid = "GPU-3f2a7c1e";
  g0.bus_id = "0000:1b:00.0";
  g0.model = "NVIDIA H100 80GB HBM3";
  g0.vendor = "nvidia";
  g0.governor_state = "cooling";
  g0.cooldown_c = 83;
  g0.resume_c = 70;
  g0.vram_cap_mb = 61169;
  GpuMetricsInfo g1;
  g1.index = 1;
  g1.bus_id = "0000:2c:00.0";
  g1.model = "AMD Radeon RX 7900 XTX";
  g1.vendor = "amd";
  g1.governor_state = "normal";
  g1.cooldown_c = 90;
  g1.resume_c = 75;   // no VRAM cap: omitted
  GpuMetricsInfo g2;  // known to the daemon but absent from the sample
  g2.index = 2;
  g2.vendor = "intel";
  g2.governor_state = "normal";
  in.gpus = {g0, g1, g2};

  in.tick_source_ms = {{"nvml", 2.5}, {"sysfs", 0.75}};
  in.tick_ms = 4;
  in.last_success_unix = 1795000000.5;
  in.cpu_seconds = 1.25;
  in.rss_bytes = 8 * 1048576.0;
  in.ticks = 12;
  return in;
}

const char* kFamilies[][2] = {
    {"grey_gpu_temperature_celsius", "gauge"},
    {"grey_gpu_vram_used_bytes", "gauge"},
    {"grey_gpu_vram_total_bytes", "gauge"},
    {"grey_gpu_utilization_ratio", "gauge"},
    {"grey_gpu_power_watts", "gauge"},
    {"grey_gpu_power_limit_watts", "gauge"},
    {"grey_gpu_power_limit_min_watts", "gauge"},
    {"grey_gpu_power_limit_max_watts", "gauge"},
    {"grey_gpu_governor_cooling", "gauge"},
    {"grey_gpu_governor_state", "gauge"},
    {"grey_gpu_cooldown_threshold_celsius", "gauge"},
    {"grey_gpu_resume_threshold_celsius", "gauge"},
    {"grey_gpu_vram_cap_bytes", "gauge"},
    {"grey_gpu_sample_stale", "gauge"},
    {"grey_process_vram_used_bytes", "gauge"},
    {"grey_process_utilization_ratio", "gauge"},
    {"grey_daemon_tick_duration_seconds", "gauge"},
    {"grey_daemon_last_success_timestamp_seconds", "gauge"},
    {"grey_daemon_cpu_seconds_total", "counter"},
    {"grey_daemon_resident_memory_bytes", "gauge"},
    {"grey_daemon_ticks_total", "counter"},
};

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

bool has_line(const std::string& text, const std::string& line) {
  for (const auto& l : lines_of(text))
    if (l == line) return true;
  return false;
}

size_t count_prefix(const std::string& text, const std::string& prefix) {
  size_t n = 0;
  for (const auto& l : lines_of(text))
    if (l.rfind(prefix, 0) == 0) ++n;
  return n;
}

const std::string kG0 =
    R"(gpu="0",uuid="GPU-3f2a7c1e",bus_id="0000:1b:00.0",model="NVIDIA H100 80GB HBM3",vendor="nvidia")";
const std::string kG1 =
    R"(gpu="1",uuid="",bus_id="0000:2c:00.0",model="AMD Radeon RX 7900 XTX",vendor="amd")";
const std::string kG2 = R"(gpu="2",uuid="",bus_id="",model="",vendor="intel")";

TEST(RenderPrometheus, EveryFamilyHasHelpAndTypeOnce) {
  std::string text = render_prometheus(sample_input());
  for (const auto& f : kFamilies) {
    std::string name = f[0];
    EXPECT_EQ(count_prefix(text, "# HELP " + name + " "), 1u) << name;
    EXPECT_TRUE(has_line(text, "# TYPE " + name + " " + f[1])) << name;
    EXPECT_GE(count_prefix(text, name + "{") + count_prefix(text, name + " "), 1u) << name;
  }
  // Every non-comment line is `name{labels} value` or `name value`, and the text ends in \n.
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  std::regex sample_re(R"(^grey_[a-z_]+(\{([a-z_]+="([^"\\\n]|\\.)*",?)*\})? -?[0-9.e+]+$)");
  for (const auto& l : lines_of(text)) {
    if (l.rfind("# ", 0) == 0) continue;
    EXPECT_TRUE(std::regex_match(l, sample_re)) << l;
  }
}

TEST(RenderPrometheus, GpuValuesAndUnits) {
  std::string t = render_prometheus(sample_input());
  EXPECT_TRUE(has_line(t, "grey_gpu_temperature_celsius{" + kG0 + "} 71.5")) << t;
  EXPECT_TRUE(has_line(t, "grey_gpu_vram_used_bytes{" + kG0 + "} 1073741824"));
  EXPECT_TRUE(has_line(t, "grey_gpu_vram_total_bytes{" + kG0 + "} 85520809984"));
  EXPECT_TRUE(has_line(t, "grey_gpu_utilization_ratio{" + kG0 + "} 0.57"));
  EXPECT_TRUE(has_line(t, "grey_gpu_power_watts{" + kG0 + "} 312.25"));
  EXPECT_TRUE(has_line(t, "grey_gpu_power_limit_watts{" + kG0 + "} 700"));
  EXPECT_TRUE(has_line(t, "grey_gpu_power_limit_min_watts{" + kG0 + "} 200"));
  EXPECT_TRUE(has_line(t, "grey_gpu_governor_cooling{" + kG0 + "} 1"));
  EXPECT_TRUE(has_line(t, "grey_gpu_governor_cooling{" + kG1 + "} 0"));
  EXPECT_TRUE(has_line(t, "grey_gpu_governor_state{" + kG0 + ",state=\"cooling\"} 1"));
  EXPECT_TRUE(has_line(t, "grey_gpu_governor_state{" + kG0 + ",state=\"normal\"} 0"));
  EXPECT_TRUE(has_line(t, "grey_gpu_governor_state{" + kG1 + ",state=\"normal\"} 1"));
  EXPECT_TRUE(has_line(t, "grey_gpu_cooldown_threshold_celsius{" + kG0 + "} 83"));
  EXPECT_TRUE(has_line(t, "grey_gpu_resume_threshold_celsius{" + kG1 + "} 75"));
  EXPECT_TRUE(has_line(t, "grey_gpu_vram_cap_bytes{" + kG0 + "} 64140345344"));
  EXPECT_TRUE(has_line(t, "grey_gpu_sample_stale{" + kG0 + "} 0"));
  EXPECT_TRUE(has_line(t, "grey_gpu_sample_stale{" + kG1 + "} 1"));
  // Known to the daemon, missing from the sample: stale.
  EXPECT_TRUE(has_line(t, "grey_gpu_sample_stale{" + kG2 + "} 1"));
}

TEST(RenderPrometheus, UnknownValuesAreOmittedNotZero) {
  std::string t = render_prometheus(sample_input());
  // GPU 1 is stale: no readings at all, whatever the type.
  for (const char* fam :
       {"grey_gpu_temperature_celsius", "grey_gpu_vram_used_bytes", "grey_gpu_vram_total_bytes",
        "grey_gpu_utilization_ratio", "grey_gpu_power_watts", "grey_gpu_power_limit_watts"})
    EXPECT_EQ(count_prefix(t, std::string(fam) + "{gpu=\"1\""), 0u) << fam;
  // No VRAM cap for GPU 1 and no thresholds for GPU 2.
  EXPECT_EQ(count_prefix(t, "grey_gpu_vram_cap_bytes{gpu=\"1\""), 0u);
  EXPECT_EQ(count_prefix(t, "grey_gpu_cooldown_threshold_celsius{gpu=\"2\""), 0u);
  // Process 7 has no utilization; its VRAM is there.
  EXPECT_EQ(t.find("grey_process_utilization_ratio{gpu=\"1\",pid=\"7\""), std::string::npos);
  EXPECT_TRUE(has_line(
      t,
      R"(grey_process_vram_used_bytes{gpu="1",pid="7",command="blender",user="1001",pod="",namespace="",container=""} 67108864)"));
  // A fresh input knows nothing: no GPU, process or tick families, only the tick counter.
  std::string empty = render_prometheus(MetricsInput{});
  EXPECT_EQ(empty,
            "# HELP grey_daemon_ticks_total Ticks the daemon has run.\n"
            "# TYPE grey_daemon_ticks_total counter\n"
            "grey_daemon_ticks_total 0\n");
  // NaN and infinities are unknown too.
  MetricsInput in;
  GpuSample g;
  g.temperature_c = std::numeric_limits<double>::quiet_NaN();
  g.power_w = std::numeric_limits<double>::infinity();
  in.last.gpus = {g};
  std::string nan = render_prometheus(in);
  EXPECT_EQ(nan.find("grey_gpu_temperature_celsius{"), std::string::npos);
  EXPECT_EQ(nan.find("grey_gpu_power_watts{"), std::string::npos);
  EXPECT_NE(nan.find("grey_gpu_sample_stale{gpu=\"0\""), std::string::npos);
}

TEST(RenderPrometheus, ProcessesAndDaemon) {
  std::string t = render_prometheus(sample_input());
  const std::string l1 =
      R"({gpu="0",pid="4242",command="py\"th\\on\nx",user="alice",pod="",namespace="",container=""})";
  EXPECT_TRUE(has_line(t, "grey_process_vram_used_bytes" + l1 + " 536870912")) << t;
  EXPECT_TRUE(has_line(t, "grey_process_utilization_ratio" + l1 + " 1"));
  EXPECT_TRUE(has_line(t, "grey_daemon_tick_duration_seconds{source=\"nvml\"} 0.0025"));
  EXPECT_TRUE(has_line(t, "grey_daemon_tick_duration_seconds{source=\"sysfs\"} 0.00075"));
  EXPECT_TRUE(has_line(t, "grey_daemon_tick_duration_seconds{source=\"total\"} 0.004"));
  EXPECT_TRUE(has_line(t, "grey_daemon_last_success_timestamp_seconds 1795000000.5"));
  EXPECT_TRUE(has_line(t, "grey_daemon_cpu_seconds_total 1.25"));
  EXPECT_TRUE(has_line(t, "grey_daemon_resident_memory_bytes 8388608"));
  EXPECT_TRUE(has_line(t, "grey_daemon_ticks_total 12"));
}

TEST(RenderPrometheus, DuplicateSeriesAreWrittenOnce) {
  MetricsInput in = sample_input();
  in.last.processes.push_back(in.last.processes.front());
  in.last.processes.back().vram_mb = 1;
  std::string t = render_prometheus(in);
  EXPECT_EQ(count_prefix(t, "grey_process_vram_used_bytes{gpu=\"0\",pid=\"4242\""), 1u);
  EXPECT_NE(t.find("pid=\"4242\",command=\"py\\\"th\\\\on\\nx\",user=\"alice\",pod=\"\",namespace="
                   "\"\",container=\"\"} 536870912"),
            std::string::npos);
}

TEST(EscapeLabelValue, Cases) {
  EXPECT_EQ(escape_label_value("plain"), "plain");
  EXPECT_EQ(escape_label_value("a\\b"), "a\\\\b");
  EXPECT_EQ(escape_label_value("say \"hi\""), "say \\\"hi\\\"");
  EXPECT_EQ(escape_label_value("two\nlines"), "two\\nlines");
  EXPECT_EQ(escape_label_value("tab\tok"), "tab\tok");
  EXPECT_EQ(escape_label_value("caf\xc3\xa9"), "caf\xc3\xa9");  // valid UTF-8 kept
  EXPECT_EQ(escape_label_value("x\xff"), "x\xef\xbf\xbd");      // invalid byte
  EXPECT_EQ(escape_label_value("x\xc3"), "x\xef\xbf\xbd");      // truncated sequence
  EXPECT_EQ(escape_label_value("\xed\xa0\x80"),
            "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");  // surrogate
  EXPECT_EQ(escape_label_value(std::string("a\0b\r", 4)),
            "a\xef\xbf\xbd"
            "b\xef\xbf\xbd");
}

TEST(ParseListenAddress, Forms) {
  auto a = parse_listen_address("9400");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 9400);
  a = parse_listen_address(":0");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 0);
  a = parse_listen_address("0.0.0.0:9100");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "0.0.0.0");
  EXPECT_EQ(a->port, 9100);
  a = parse_listen_address("[::1]:9401");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "::1");
  EXPECT_EQ(a->port, 9401);
  a = parse_listen_address("localhost:65535");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "localhost");
  for (const char* bad : {"", " ", "abc", "127.0.0.1:", "127.0.0.1:65536", "::1:9400", "[::1]",
                          "[::1]9400", "[]:1", ":-1", ":+5", "1.2.3.4:x"}) {
    std::string err;
    EXPECT_FALSE(parse_listen_address(bad, &err)) << bad;
    EXPECT_NE(err.find("invalid metrics listen address"), std::string::npos) << bad;
  }
}

// ---- promtool ----------------------------------------------------------------------------

// Runs argv with stdin from `in_path`; returns the exit code and fills *output (stdout+stderr).
int run_with_stdin(const std::vector<std::string>& argv, const std::string& in_path,
                   const std::string& out_path, std::string* output) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, in_path.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, argv[0].c_str(), &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return -1;
  int status = 0;
  waitpid(pid, &status, 0);
  *output = test::read_file(out_path);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(RenderPrometheus, PromtoolCheckMetrics) {
  std::string promtool = find_on_path("promtool");
  if (access(promtool.c_str(), X_OK) != 0)
    GTEST_SKIP() << "promtool not installed (Debian package prometheus)";
  test::TempDir tmp;
  for (const MetricsInput& in : {sample_input(), MetricsInput{}}) {
    test::write_file(tmp / "metrics.txt", render_prometheus(in));
    std::string output;
    int rc = run_with_stdin({promtool, "check", "metrics"}, tmp / "metrics.txt", tmp / "out.txt",
                            &output);
    EXPECT_EQ(rc, 0) << output << "\n---\n" << render_prometheus(in);
    EXPECT_EQ(output, "") << output;  // no lint remarks either
  }
  // promtool does reject broken text (the check above can fail).
  test::write_file(tmp / "bad.txt", "grey_x{a=\"unterminated} 1\n");
  std::string output;
  EXPECT_NE(
      run_with_stdin({promtool, "check", "metrics"}, tmp / "bad.txt", tmp / "out.txt", &output), 0);
}

// ---- the server ----------------------------------------------------------------------------

struct HttpReply {
  bool ok = false;
  int status = 0;
  std::string headers, body;
};

HttpReply http_raw(int port, const std::string& request);

HttpReply http_get(int port, const std::string& path, const std::string& method = "GET") {
  return http_raw(port, method + " " + path +
                            " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" +
                            (method == "POST" ? "Content-Length: 0\r\n" : "") + "\r\n");
}

HttpReply http_raw(int port, const std::string& req) {
  HttpReply r;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return r;
  timeval tv{10, 0};  // a hang guard, not a performance assertion
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    close(fd);
    return r;
  }
  if (send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    close(fd);
    return r;
  }
  std::string all;
  char buf[4096];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    all.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  size_t sep = all.find("\r\n\r\n");
  if (sep == std::string::npos || all.rfind("HTTP/1.1 ", 0) != 0) return r;
  r.ok = true;
  r.status = std::stoi(all.substr(9, 3));
  r.headers = all.substr(0, sep);
  r.body = all.substr(sep + 4);
  return r;
}

TEST(MetricsServer, ServesTheBoardOnLoopback) {
  auto board = std::make_shared<MetricsBoard>();
  board->publish(sample_input());
  MetricsServer srv(board);
  EXPECT_EQ(srv.port(), 0);
  ASSERT_EQ(srv.start(":0"), "");
  int port = srv.port();
  ASSERT_GT(port, 0);

  HttpReply r = http_get(port, "/metrics");
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.headers.find("Content-Type: text/plain; version=0.0.4"), std::string::npos)
      << r.headers;
  EXPECT_EQ(r.body, render_prometheus(sample_input()));

  // A scrape reads what was published last, nothing else.
  MetricsInput next = sample_input();
  next.ticks = 13;
  board->publish(next);
  r = http_get(port, "/metrics");
  EXPECT_NE(r.body.find("\ngrey_daemon_ticks_total 13\n"), std::string::npos);

  r = http_get(port, "/");
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.status, 404);
  r = http_get(port, "/metrics/x");
  EXPECT_EQ(r.status, 404);
  r = http_get(port, "/metrics", "POST");
  EXPECT_NE(r.status, 200);

  EXPECT_NE(srv.start(":0"), "");  // already running
  srv.stop();
  EXPECT_EQ(srv.port(), 0);
  EXPECT_FALSE(http_get(port, "/metrics").ok);  // nobody listens any more
  srv.stop();                                   // twice is fine

  // Start again (on the same port, SO_REUSEADDR) and stop through the destructor.
  ASSERT_EQ(srv.start("127.0.0.1:" + std::to_string(port)), "");
  EXPECT_EQ(srv.port(), port);
  EXPECT_EQ(http_get(port, "/metrics").status, 200);
}

// What a person types into nc, and what Prometheus sends: both answered at once.
TEST(MetricsServer, BareLineFeedsQueryStringsAndHead) {
  auto board = std::make_shared<MetricsBoard>();
  board->publish(sample_input());
  MetricsServer srv(board);
  ASSERT_EQ(srv.start(":0"), "");
  auto t0 = std::chrono::steady_clock::now();
  HttpReply r = http_raw(srv.port(), "GET /metrics HTTP/1.0\n\n");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(1));
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, render_prometheus(sample_input()));
  r = http_raw(srv.port(),
               "GET /metrics?x=1 HTTP/1.1\r\nHost: h\r\nAccept: text/plain\r\n"
               "Accept-Encoding: gzip\r\nConnection: keep-alive\r\n\r\n");
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.headers.find("Connection: close"), std::string::npos);
  r = http_raw(srv.port(), "HEAD /metrics HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "");
  r = http_raw(srv.port(), "NONSENSE\r\n\r\n");
  EXPECT_EQ(r.status, 400);
}

TEST(MetricsServer, Errors) {
  auto board = std::make_shared<MetricsBoard>();
  MetricsServer a(board), b(board);
  EXPECT_NE(a.start("nonsense"), "");
  EXPECT_EQ(a.port(), 0);
  ASSERT_EQ(a.start("127.0.0.1:0"), "");
  std::string err = b.start("127.0.0.1:" + std::to_string(a.port()));  // in use
  EXPECT_NE(err, "");
  EXPECT_EQ(b.port(), 0);
  // An address that is not local cannot be bound.
  EXPECT_NE(b.start("192.0.2.1:0"), "");
  // An immediate stop after start does not hang.
  for (int i = 0; i < 20; ++i) {
    MetricsServer c(board);
    ASSERT_EQ(c.start(":0"), "");
    c.stop();
  }
}

TEST(MetricsServer, ConcurrentScrapesAndPublishes) {
  auto board = std::make_shared<MetricsBoard>();
  MetricsServer srv(board);
  ASSERT_EQ(srv.start(":0"), "");
  std::atomic<bool> stop{false};
  std::thread pub([&] {
    MetricsInput in = sample_input();
    while (!stop) {
      ++in.ticks;
      board->publish(in);
    }
  });
  for (int i = 0; i < 30; ++i) {
    HttpReply r = http_get(srv.port(), "/metrics");
    ASSERT_EQ(r.status, 200);
    EXPECT_NE(r.body.find("grey_daemon_ticks_total"), std::string::npos);
  }
  stop = true;
  pub.join();
}

// ---- many clients at once -------------------------------------------------------------------

// Client sockets connected (non-blocking connect, then waited for at most 10 s in all: a hang
// guard) to the server; closed when this dies.
struct Clients {
  std::vector<int> fds;
  ~Clients() {
    for (int fd : fds) close(fd);
  }
  // Opens n more connections; false when one could not be made or did not complete in time.
  bool open(int port, int n, int rcvbuf = 0) {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(port));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::vector<int> pending;
    for (int i = 0; i < n; ++i) {
      int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
      if (fd < 0) return false;
      fds.push_back(fd);
      if (rcvbuf > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
      if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) continue;
      if (errno != EINPROGRESS) return false;
      pending.push_back(fd);
    }
    auto deadline = std::chrono::steady_clock::now() + 10s;
    for (int fd : pending) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd p{fd, POLLOUT, 0};
      if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) != 1) return false;
      int err = 0;
      socklen_t len = sizeof err;
      if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) return false;
    }
    return true;
  }
  // Sends `data` on the last n connections.
  bool send_last(int n, const std::string& data) {
    for (size_t i = fds.size() - static_cast<size_t>(n); i < fds.size(); ++i)
      if (send(fds[i], data.data(), data.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(data.size()))
        return false;
    return true;
  }
};

// With the old responder (one connection at a time, 2 s each) the scrape below waited behind
// 120 clients: about 4 minutes, so its 10 s receive timeout failed it.
TEST(MetricsServer, ScrapeIsAnsweredWhileIdleAndSlowClientsAreConnected) {
  auto board = std::make_shared<MetricsBoard>();
  board->publish(sample_input());
  MetricsServer srv(board);
  ASSERT_EQ(srv.start("127.0.0.1:0"), "");
  Clients c;
  ASSERT_TRUE(c.open(srv.port(), 100));  // idle: connected, sending nothing
  ASSERT_TRUE(c.open(srv.port(), 20));
  ASSERT_TRUE(c.send_last(20, "GET /metr"));  // slow: half a request line
  for (int i = 0; i < 3; ++i) {
    HttpReply r = http_get(srv.port(), "/metrics");
    ASSERT_TRUE(r.ok) << "scrape " << i;
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, render_prometheus(sample_input()));
  }
}

TEST(MetricsServer, ConnectionsBeyondTheCapDoNotBreakTheServer) {
  auto board = std::make_shared<MetricsBoard>();
  board->publish(sample_input());
  MetricsServer srv(board);
  ASSERT_EQ(srv.start("127.0.0.1:0"), "");
  {
    Clients c;
    ASSERT_TRUE(c.open(srv.port(), 300));  // more than the 128 the server keeps open
    HttpReply r = http_get(srv.port(), "/metrics");
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, render_prometheus(sample_input()));
    // The server made room by closing the oldest idle connection: it reads end of stream.
    timeval tv{10, 0};
    setsockopt(c.fds[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int fl = fcntl(c.fds[0], F_GETFL);
    fcntl(c.fds[0], F_SETFL, fl & ~O_NONBLOCK);
    char b;
    EXPECT_EQ(recv(c.fds[0], &b, 1, 0), 0);
  }
  // And once they are gone, it still serves.
  EXPECT_EQ(http_get(srv.port(), "/metrics").status, 200);
}

// A reply too large for the socket buffers, to clients that never read it: each holds only its
// own connection (until its deadline), and the server's partial writes complete for a client
// that does read.
TEST(MetricsServer, ClientsThatDoNotReadTheirReplyHoldOnlyTheirOwnSlot) {
  MetricsInput big = sample_input();
  for (int i = 0; i < 1000; ++i) {
    ProcessSample p;
    p.pid = 10000 + i;
    p.command = std::string(4200, 'x');
    p.user = "bob";
    p.gpu_index = 0;
    p.vram_mb = i;
    p.utilization_pct = 1;
    big.last.processes.push_back(p);
  }
  const std::string body = render_prometheus(big);
  ASSERT_GT(body.size(), 8u << 20);
  auto board = std::make_shared<MetricsBoard>();
  board->publish(big);
  MetricsServer srv(board);
  ASSERT_EQ(srv.start("127.0.0.1:0"), "");
  Clients c;
  ASSERT_TRUE(c.open(srv.port(), 10, 4096));
  ASSERT_TRUE(c.send_last(10, "GET /metrics HTTP/1.1\r\nHost: h\r\n\r\n"));
  HttpReply r = http_get(srv.port(), "/metrics");
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body.size(), body.size());
  EXPECT_TRUE(r.body == body);
}

// A scrape renders its own reference to the published input: publishing swaps a pointer and
// never waits for a render, and what a scrape holds is not changed under it.
TEST(MetricsBoard, SnapshotsAreImmutableAndVersioned) {
  MetricsBoard board;
  EXPECT_EQ(board.snapshot().version, 0u);
  EXPECT_EQ(board.snapshot().input, nullptr);
  EXPECT_EQ(board.render(), render_prometheus(MetricsInput{}));
  board.publish(sample_input());
  MetricsBoard::Snapshot first = board.snapshot();
  ASSERT_NE(first.input, nullptr);
  MetricsInput next = sample_input();
  next.ticks = 99;
  board.publish(next);
  MetricsBoard::Snapshot second = board.snapshot();
  EXPECT_GT(second.version, first.version);
  EXPECT_EQ(first.input->ticks, 12u);  // still the first input
  EXPECT_EQ(second.input->ticks, 99u);
  EXPECT_EQ(board.render(), render_prometheus(next));
}

// The daemon itself (not only the CLI in front of it) checks the address before it writes or
// detects anything.
TEST(MetricsDaemon, AnInvalidListenAddressIsRefusedBeforeAnyWork) {
  for (std::string bad : {"abc:xyz", "127.0.0.1:70000", "[]:9100", "::1:9100"}) {
    test::TempDir tmp;
    DaemonOptions o;
    o.state_dir = tmp / "state";
    o.metrics_listen = bad;
    o.max_ticks = 1;
    bool detected = false;
    o.detector = [&](const GlobalOptions&, const std::optional<std::string>&) {
      detected = true;
      return DetectionResult{};
    };
    std::ostringstream out, err;
    EXPECT_EQ(run_daemon(o, out, err), 2) << bad << ": " << err.str();
    EXPECT_NE(err.str().find("--metrics-listen"), std::string::npos) << err.str();
    EXPECT_FALSE(std::filesystem::exists(o.state_dir)) << bad;
    EXPECT_FALSE(detected) << bad;
  }
}

// ---- a real Prometheus server scrapes us ----------------------------------------------------

int free_loopback_port() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  socklen_t len = sizeof sa;
  getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  close(fd);
  return ntohs(sa.sin_port);
}

// A child process in its own process group, killed (TERM, then KILL) when this dies.
class Child {
 public:
  Child(const std::vector<std::string>& argv, const std::string& log_path) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    posix_spawnattr_t at;
    posix_spawnattr_init(&at);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&at, 0);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    if (posix_spawn(&pid_, argv[0].c_str(), &fa, &at, args.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
  }
  ~Child() {
    if (pid_ <= 0) return;
    kill(-pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      int st;
      if (waitpid(pid_, &st, WNOHANG) == pid_) return;
      std::this_thread::sleep_for(100ms);
    }
    kill(-pid_, SIGKILL);
    int st;
    waitpid(pid_, &st, 0);
  }
  pid_t pid() const { return pid_; }
  bool alive() {
    int st;
    return pid_ > 0 && waitpid(pid_, &st, WNOHANG) == 0;
  }

 private:
  pid_t pid_ = -1;
};

TEST(MetricsServer, ScrapedByARealPrometheus) {
  std::string prom = find_on_path("prometheus");
  if (access(prom.c_str(), X_OK) != 0)
    GTEST_SKIP() << "prometheus server not installed (Debian package prometheus)";
  auto board = std::make_shared<MetricsBoard>();
  board->publish(sample_input());
  MetricsServer srv(board);
  ASSERT_EQ(srv.start("127.0.0.1:0"), "");

  test::TempDir tmp;
  int prom_port = free_loopback_port();
  test::write_file(tmp / "prometheus.yml",
                   "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                   "scrape_configs:\n  - job_name: grey\n    static_configs:\n"
                   "      - targets: ['127.0.0.1:" +
                       std::to_string(srv.port()) + "']\n");
  Child child(
      {prom, "--config.file=" + (tmp / "prometheus.yml"), "--storage.tsdb.path=" + (tmp / "data"),
       "--web.listen-address=127.0.0.1:" + std::to_string(prom_port)},
      tmp / "prometheus.log");
  ASSERT_GT(child.pid(), 0);

  // Wait (at most 60 s) until Prometheus has scraped us and ingested a sample.
  auto deadline = std::chrono::steady_clock::now() + 60s;
  std::string last;
  bool up = false, ingested = false;
  while (std::chrono::steady_clock::now() < deadline && child.alive()) {
    HttpReply r = http_get(prom_port, "/api/v1/targets");
    if (r.ok && r.status == 200) {
      last = r.body;
      auto j = nlohmann::json::parse(r.body, nullptr, false);
      if (!j.is_discarded() && j.contains("data") && j["data"].contains("activeTargets"))
        for (const auto& t : j["data"]["activeTargets"])
          if (t.value("health", "") == "up") up = true;
    }
    if (up) {
      HttpReply q = http_get(prom_port, "/api/v1/query?query=grey_daemon_ticks_total");
      if (q.ok && q.body.find("\"12\"") != std::string::npos) {
        ingested = true;
        break;
      }
      last = q.body;
    }
    std::this_thread::sleep_for(250ms);
  }
  EXPECT_TRUE(up) << last << "\n" << test::read_file(tmp / "prometheus.log");
  EXPECT_TRUE(ingested) << last;
  // A label value with a quote, a backslash and a newline made it through.
  HttpReply q = http_get(prom_port, "/api/v1/query?query=grey_process_vram_used_bytes");
  EXPECT_NE(q.body.find(R"("command":"py\"th\\on\nx")"), std::string::npos) << q.body;
  // Stopping while Prometheus still holds its connection is quick.
  auto t0 = std::chrono::steady_clock::now();
  srv.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
}

}  // namespace
}  // namespace grey

// ---- /healthz and /readyz (SPEC §8) -----------------------------------------------------------

namespace grey {
namespace {

// A clock the test moves by hand: no sleeps, no wall-clock bounds.
struct FakeClock {
  std::shared_ptr<double> t = std::make_shared<double>(100.0);
  MetricsBoard::MonotonicClock fn() const {
    auto p = t;
    return [p] { return *p; };
  }
};

TEST(Probes, ReadyzOnlyAfterTheFirstTick) {
  FakeClock clk;
  MetricsBoard b(clk.fn());
  b.set_tick_interval(1.0);
  EXPECT_EQ(b.readyz().status, 503);
  EXPECT_NE(b.readyz().body.find("no tick yet"), std::string::npos);
  b.publish(MetricsInput{});
  EXPECT_EQ(b.readyz().status, 200);
  *clk.t += 1000;  // readiness does not expire; liveness does
  EXPECT_EQ(b.readyz().status, 200);
  EXPECT_EQ(b.healthz().status, 503);
}

TEST(Probes, HealthzTurns503WhenTheLastTickIsThreeIntervalsOld) {
  FakeClock clk;
  MetricsBoard b(clk.fn());
  b.set_tick_interval(2.0);
  // Before the first tick, the time since the start counts as the age.
  EXPECT_EQ(b.healthz().status, 200);
  *clk.t += 5.5;  // binary fractions: the sums are exact
  EXPECT_EQ(b.healthz().status, 200);
  *clk.t += 0.5;
  EXPECT_EQ(b.healthz().status, 503);
  EXPECT_NE(b.healthz().body.find("since the start"), std::string::npos) << b.healthz().body;
  b.publish(MetricsInput{});  // a tick at t=106
  EXPECT_EQ(b.healthz().status, 200);
  EXPECT_EQ(b.healthz().body, "ok\n");
  *clk.t += 5.75;
  EXPECT_EQ(b.healthz().status, 200);
  *clk.t += 0.25;  // exactly 3 intervals: no longer younger than that
  ProbeAnswer a = b.healthz();
  EXPECT_EQ(a.status, 503);
  EXPECT_NE(a.body.find("last tick was 6.0 s ago"), std::string::npos) << a.body;
  EXPECT_NE(a.body.find("6.0 s"), std::string::npos) << a.body;
  b.publish(MetricsInput{});
  EXPECT_EQ(b.healthz().status, 200);
}

TEST(Probes, ATickWhoseGpusAllStaleKeepsTheDaemonAlive) {
  // A hung NVML call makes every GPU's sample stale and no collection succeeds, but the tick
  // itself completed: the daemon is alive.
  FakeClock clk;
  MetricsBoard b(clk.fn());
  b.set_tick_interval(1.0);
  MetricsInput in = sample_input();
  for (auto& g : in.last.gpus) g.stale = true;
  in.last_success_unix = 1.0;  // the last good collection was long ago
  for (int i = 0; i < 10; ++i) {
    *clk.t += 1.0;
    b.publish(in);
    EXPECT_EQ(b.healthz().status, 200) << "tick " << i;
  }
}

TEST(Probes, PureAnswers) {
  EXPECT_EQ(healthz_answer(0.5, 1.0, true).status, 200);
  EXPECT_EQ(healthz_answer(3.0, 1.0, true).status, 503);
  EXPECT_EQ(healthz_answer(1e9, 0.0, true).status, 200);  // no interval known: never stale
  EXPECT_EQ(readyz_answer(false).status, 503);
  EXPECT_EQ(readyz_answer(true).body, "ok\n");
}

TEST(Probes, ServedOnTheMetricsListener) {
  FakeClock clk;
  auto board = std::make_shared<MetricsBoard>(clk.fn());
  board->set_tick_interval(1.0);
  MetricsServer srv(board);
  ASSERT_EQ(srv.start(":0"), "");
  const int port = srv.port();

  HttpReply r = http_get(port, "/readyz");
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.status, 503);
  EXPECT_NE(r.headers.find("503 Service Unavailable"), std::string::npos) << r.headers;
  EXPECT_EQ(http_get(port, "/healthz").status, 200);

  board->publish(sample_input());
  r = http_get(port, "/readyz");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "ok\n");
  r = http_get(port, "/healthz?verbose=1");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "ok\n");
  EXPECT_NE(r.headers.find("Cache-Control: no-store"), std::string::npos) << r.headers;

  *clk.t += 3.5;
  r = http_get(port, "/healthz");
  EXPECT_EQ(r.status, 503);
  EXPECT_NE(r.body.find("stale"), std::string::npos) << r.body;
  EXPECT_EQ(http_get(port, "/readyz").status, 200);
  // /metrics still answers with the last sample while the loop is late.
  EXPECT_EQ(http_get(port, "/metrics").status, 200);

  r = http_get(port, "/healthz", "HEAD");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, "");
  EXPECT_EQ(http_get(port, "/readyz", "POST").status, 405);
  EXPECT_EQ(http_get(port, "/healthzz").status, 404);
}

TEST(Probes, DefaultMetricsPortIsNoGpuExportersPort) {
  // 9835 is nvidia_gpu_exporter's default, 9400 dcgm-exporter's.
  EXPECT_STREQ(kDefaultMetricsListen, "127.0.0.1:9862");
}

}  // namespace
}  // namespace grey

namespace grey {
namespace {

TEST(MetricsHealth, XidAndEccCountersPerGpuAndLabel) {
  MetricsInput in;
  GpuMetricsInfo g;
  g.index = 0;
  g.uuid = "GPU-a";
  g.xid_errors = {{13, 2}, {79, 1}};
  g.ecc_errors = {{"volatile_uncorrected", 3}, {"ras_correctable", 0}};
  in.gpus.push_back(g);
  GpuMetricsInfo quiet;
  quiet.index = 1;
  in.gpus.push_back(quiet);
  std::string m = render_prometheus(in);
  EXPECT_NE(m.find("# TYPE grey_gpu_xid_errors_total counter\n"), std::string::npos) << m;
  EXPECT_NE(m.find("grey_gpu_xid_errors_total{gpu=\"0\",uuid=\"GPU-a\",bus_id=\"\",model=\"\","
                   "vendor=\"\",xid=\"13\"} 2\n"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find(",xid=\"79\"} 1\n"), std::string::npos) << m;
  EXPECT_NE(m.find("# TYPE grey_gpu_ecc_errors_total counter\n"), std::string::npos) << m;
  EXPECT_NE(m.find(",type=\"volatile_uncorrected\"} 3\n"), std::string::npos) << m;
  EXPECT_NE(m.find(",type=\"ras_correctable\"} 0\n"), std::string::npos) << m;
  EXPECT_EQ(m.find("grey_gpu_xid_errors_total{gpu=\"1\""), std::string::npos) << m;
}

}  // namespace
}  // namespace grey
