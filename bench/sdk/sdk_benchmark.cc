// How fast an app learns who leads, by every route it could take, in one run:
//   is_leader(), leadership() and snapshot() (a new Snapshot, into a reused one, and the C
//   API's instaface_snapshot) on the shared-memory record of a real instaface-agent (with the
//   lease clock they read, and is_leader() on a follower);
//   the status request over the agent's Unix control socket (NDJSON);
//   GET of the same JSON from a localhost HTTP endpoint (keep-alive);
//   GET of the same JSON from Redis, over TCP loopback and over a Unix socket;
//   the latency from a publish to a sleeping WaitForChange waking (p50/p99 counters);
//   and from kill -9 of the process that holds the record's life lock to a sleeping
//   WaitForChange waking.
// Every route but shared memory also parses the JSON it gets, as an app would.
//
// The agent comes from $INSTAFACE_AGENT or the build tree; without one, an in-process writer
// publishes a leader and an in-process NDJSON server stands in for the control socket (the
// `source` label says which). scripts/bench-sdk runs this and prints the ratios.
#include <benchmark/benchmark.h>
#include <hiredis/hiredis.h>
#include <limits.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "instaface/clock.h"
#include "instaface/instaface.h"
#include "instaface/shm_layout.h"
#include "instaface/shm_writer.h"
#include "instaface/view.h"
#include "status_servers.h"
#include "support/free_port.h"
#include "support/subprocess.h"
#include "support/temp_dir.h"

namespace instaface::bench {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using namespace std::chrono_literals;
using testing::Subprocess;
using testing::SubprocessOptions;
using testing::TempDir;

constexpr char kRedisKey[] = "instaface:bench:leader";

uint64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

bool Executable(const std::string& path) {
  return !path.empty() && access(path.c_str(), X_OK) == 0;
}

std::string AgentBinary() {
  if (const char* env = std::getenv("INSTAFACE_AGENT"); env != nullptr) return env;
#ifdef INSTAFACE_AGENT_BINARY
  return INSTAFACE_AGENT_BINARY;
#else
  return std::string();
#endif
}

struct RedisDeleter {
  void operator()(redisContext* c) const { redisFree(c); }
};
using RedisConnection = std::unique_ptr<redisContext, RedisDeleter>;

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using RedisReply = std::unique_ptr<redisReply, ReplyDeleter>;

RedisConnection ConnectRedisTcp(uint16_t port) {
  RedisConnection c(redisConnect("127.0.0.1", port));
  return c && c->err == 0 ? std::move(c) : nullptr;
}

RedisConnection ConnectRedisUnix(const std::string& path) {
  RedisConnection c(redisConnectUnix(path.c_str()));
  return c && c->err == 0 ? std::move(c) : nullptr;
}

// Everything the benchmarks share, set up once before they run.
struct Environment {
  TempDir dir{"instaface-bench"};
  std::string source;   // "agent" or "in-process writer"
  std::string problem;  // why a part is missing, if one is

  Subprocess redis;
  uint16_t redis_port = 0;
  std::string redis_socket;

  Subprocess agent;
  std::string shm_name;
  std::string control_socket;
  std::optional<shm::Writer> writer;  // when there is no agent
  std::optional<View> view;
  std::unique_ptr<NdjsonStatusServer> ndjson;
  std::unique_ptr<HttpStatusServer> http;

  ~Environment() {
    http.reset();
    ndjson.reset();
    view.reset();
    if (agent.ok()) {
      agent.Terminate();
      if (!agent.Wait(5000ms)) agent.Kill();
    }
    if (writer) (void)writer->Unlink();
  }

  bool StartRedis() {
    redis_port = testing::FreePort();
    redis_socket = dir.File("redis.sock");
    SubprocessOptions o;
    o.argv = {"redis-server",
              "--bind",
              "127.0.0.1",
              "--port",
              std::to_string(redis_port),
              "--unixsocket",
              redis_socket,
              "--unixsocketperm",
              "700",
              "--save",
              "",
              "--appendonly",
              "no",
              "--dir",
              dir.path()};
    o.stderr_path = dir.File("redis.log");
    o.stdout_path = dir.File("redis.out");
    redis = Subprocess(o);
    if (!redis.ok()) {
      problem += "redis-server: " + redis.error() + "; ";
      return false;
    }
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (auto c = ConnectRedisTcp(redis_port)) {
        RedisReply ping(static_cast<redisReply*>(redisCommand(c.get(), "PING")));
        if (ping && ping->type == REDIS_REPLY_STATUS) return true;
      }
      std::this_thread::sleep_for(10ms);
    }
    problem += "redis-server did not answer; ";
    return false;
  }

  // A one-node cluster: it elects itself and keeps renewing its lease.
  bool StartAgent() {
    const std::string binary = AgentBinary();
    if (!Executable(binary)) {
      problem += "no instaface-agent binary; ";
      return false;
    }
    shm_name = "instaface-bench-" + std::to_string(getpid());
    control_socket = dir.File("agent.sock");
    std::ofstream(dir.File("secret")) << "bench-secret\n";
    mkdir(dir.File("state").c_str(), 0700);
    SubprocessOptions o;
    o.argv = {binary,
              "--id=bench-1",
              "--cluster=bench",
              "--cluster-size=1",
              "--listen=tcp://127.0.0.1:" + std::to_string(testing::FreePort()),
              "--app-address=http://127.0.0.1:8080",
              "--shm=" + shm_name,
              "--socket=" + control_socket,
              "--state-dir=" + dir.File("state"),
              "--secret-file=" + dir.File("secret"),
              "--log-level=warn"};
    o.stderr_path = dir.File("agent.log");
    agent = Subprocess(o);
    if (!agent.ok()) {
      problem += "instaface-agent: " + agent.error() + "; ";
      return false;
    }
    const auto deadline = std::chrono::steady_clock::now() + 15s;
    while (std::chrono::steady_clock::now() < deadline && agent.Running()) {
      if (!view) {
        auto opened = View::Open(shm_name);
        if (opened.ok()) view.emplace(std::move(*opened));
      }
      struct stat st;
      if (view && view->is_leader() && stat(control_socket.c_str(), &st) == 0) return true;
      std::this_thread::sleep_for(20ms);
    }
    problem += "instaface-agent did not become leader: " + agent.ReadStderr() + "; ";
    view.reset();
    agent.Kill();
    return false;
  }

  void StartInProcessWriter() {
    shm_name = "instaface-bench-" + std::to_string(getpid());
    auto created = shm::Writer::Create(shm_name, 0600, 3600s);
    if (!created.ok()) {
      std::fprintf(stderr, "%s\n", created.error().c_str());
      std::exit(1);
    }
    writer.emplace(std::move(*created));
    shm::PublishedState state;
    state.role = Role::kLeader;
    state.term = 1;
    state.lease_until_ns = static_cast<uint64_t>(LeaseClockNowNs()) + 3600'000'000'000ULL;
    state.self_id = state.leader_id = "bench-1";
    state.leader_app_address = "http://127.0.0.1:8080";
    writer->Publish(state);
    auto opened = View::Open(shm_name);
    view.emplace(std::move(*opened));
    control_socket = dir.File("ndjson.sock");
    ndjson = std::make_unique<NdjsonStatusServer>(*view, control_socket);
  }

  void Start() {
    if (StartAgent()) {
      source = "agent";
    } else {
      source = "in-process writer";
      StartInProcessWriter();
    }
    http = std::make_unique<HttpStatusServer>(*view);
    if (StartRedis()) {
      auto c = ConnectRedisTcp(redis_port);
      const std::string json = StatusJson(view->snapshot());
      RedisReply set(static_cast<redisReply*>(
          redisCommand(c.get(), "SET %s %b", kRedisKey, json.data(), json.size())));
    }
    if (!problem.empty()) std::fprintf(stderr, "note: %s\n", problem.c_str());
  }
};

Environment* env = nullptr;

void BM_IsLeader(benchmark::State& state) {
  const View& view = *env->view;
  for (auto _ : state) benchmark::DoNotOptimize(view.is_leader());
  state.counters["leader"] = view.is_leader();
  state.SetLabel(env->source);
}
BENCHMARK(BM_IsLeader);

void BM_Leadership(benchmark::State& state) {
  const View& view = *env->view;
  for (auto _ : state) benchmark::DoNotOptimize(view.leadership());
  state.counters["leader"] = view.leadership().has_value();
  state.SetLabel(env->source);
}
BENCHMARK(BM_Leadership);

// The floor under the two above on a leader: each reads the lease clock once.
void BM_LeaseClock(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(LeaseClockNowNs());
}
BENCHMARK(BM_LeaseClock);

// A follower's answer needs no clock.
void BM_IsLeaderOnAFollower(benchmark::State& state) {
  shm::Writer writer = shm::Writer::CreateInProcess(3600s);
  shm::PublishedState follower;
  follower.term = 2;
  writer.Publish(follower);
  const View view = writer.view();
  for (auto _ : state) benchmark::DoNotOptimize(view.is_leader());
}
BENCHMARK(BM_IsLeaderOnAFollower);

// A new Snapshot each time, as most readers take one. Its texts are held inline, so this
// allocates nothing however long the agent's addresses are.
void BM_Snapshot(benchmark::State& state) {
  const View& view = *env->view;
  for (auto _ : state) benchmark::DoNotOptimize(view.snapshot());
  state.SetLabel(env->source);
}
BENCHMARK(BM_Snapshot);

// Into the same Snapshot each time, as a reader that keeps one does.
void BM_SnapshotInto(benchmark::State& state) {
  const View& view = *env->view;
  Snapshot s;
  for (auto _ : state) {
    view.snapshot(&s);
    benchmark::DoNotOptimize(s);
  }
  state.SetLabel(env->source);
}
BENCHMARK(BM_SnapshotInto);

// The C API's snapshot, into the caller's fixed buffers.
void BM_CSnapshot(benchmark::State& state) {
  instaface_view* view = nullptr;
  if (instaface_open(env->shm_name.c_str(), &view, nullptr, 0) != INSTAFACE_OK) {
    state.SkipWithError(instaface_last_error());
    return;
  }
  instaface_snapshot_t s;
  for (auto _ : state) {
    instaface_snapshot(view, &s);
    benchmark::DoNotOptimize(s);
  }
  instaface_close(view);
  state.SetLabel(env->source);
}
BENCHMARK(BM_CSnapshot);

void BM_UnixSocketStatus(benchmark::State& state) {
  asio::io_context io;
  asio::local::stream_protocol::socket socket(io);
  boost::system::error_code ec;
  socket.connect({env->control_socket}, ec);
  if (ec) {
    state.SkipWithError(("connect " + env->control_socket + ": " + ec.message()).c_str());
    return;
  }
  const std::string request = "{\"cmd\":\"status\"}\n";
  asio::streambuf input;
  for (auto _ : state) {
    asio::write(socket, asio::buffer(request), ec);
    const size_t n = asio::read_until(socket, input, '\n', ec);
    if (ec) {
      state.SkipWithError(ec.message().c_str());
      break;
    }
    std::string line(asio::buffers_begin(input.data()), asio::buffers_begin(input.data()) + n);
    input.consume(n);
    benchmark::DoNotOptimize(nlohmann::json::parse(line));
  }
  state.SetLabel(env->source == "agent" ? "agent control socket" : "in-process NDJSON server");
}
BENCHMARK(BM_UnixSocketStatus);

void BM_HttpStatus(benchmark::State& state) {
  asio::io_context io;
  asio::ip::tcp::socket socket(io);
  boost::system::error_code ec;
  socket.connect({asio::ip::make_address("127.0.0.1"), env->http->port()}, ec);
  if (ec) {
    state.SkipWithError(ec.message().c_str());
    return;
  }
  socket.set_option(asio::ip::tcp::no_delay(true));
  http::request<http::empty_body> request(http::verb::get, "/leader", 11);
  request.set(http::field::host, "127.0.0.1");
  request.keep_alive(true);
  boost::beast::flat_buffer buffer;
  for (auto _ : state) {
    http::write(socket, request, ec);
    http::response<http::string_body> response;
    http::read(socket, buffer, response, ec);
    if (ec) {
      state.SkipWithError(ec.message().c_str());
      break;
    }
    benchmark::DoNotOptimize(nlohmann::json::parse(response.body()));
  }
}
BENCHMARK(BM_HttpStatus);

void RedisGet(benchmark::State& state, RedisConnection connection) {
  if (!connection) {
    state.SkipWithError(("no private redis-server: " + env->problem).c_str());
    return;
  }
  for (auto _ : state) {
    RedisReply reply(static_cast<redisReply*>(redisCommand(connection.get(), "GET %s", kRedisKey)));
    if (!reply || reply->type != REDIS_REPLY_STRING) {
      state.SkipWithError("GET failed");
      break;
    }
    benchmark::DoNotOptimize(nlohmann::json::parse(reply->str, reply->str + reply->len));
  }
}

void BM_RedisGetTcp(benchmark::State& state) { RedisGet(state, ConnectRedisTcp(env->redis_port)); }
BENCHMARK(BM_RedisGetTcp);

void BM_RedisGetUnix(benchmark::State& state) {
  RedisGet(state, ConnectRedisUnix(env->redis_socket));
}
BENCHMARK(BM_RedisGetUnix);

// p50, p99 and max of a sample, in microseconds, as counters.
void ReportLatencies(benchmark::State& state, std::vector<double> latencies_ns) {
  if (latencies_ns.empty()) return;
  std::sort(latencies_ns.begin(), latencies_ns.end());
  auto at = [&](double q) {
    return latencies_ns[std::min(latencies_ns.size() - 1,
                                 static_cast<size_t>(q * latencies_ns.size()))] /
           1000.0;
  };
  state.counters["p50_us"] = at(0.50);
  state.counters["p99_us"] = at(0.99);
  state.counters["max_us"] = latencies_ns.back() / 1000.0;
}

// Publisher (this thread) to a waiter asleep in WaitForChange on another thread, through a
// named segment: the futex path an app uses, measured from just before Publish to the
// waiter's first instruction after waking.
void BM_ChangeNotification(benchmark::State& state) {
  const std::string name = "instaface-bench-notify-" + std::to_string(getpid());
  auto writer = shm::Writer::Create(name, 0600, 3600s);
  auto view = View::Open(name);
  if (!writer.ok() || !view.ok()) {
    state.SkipWithError("cannot create the notification segment");
    return;
  }
  std::atomic<uint64_t> published_at{0};
  std::atomic<uint32_t> acknowledged{view->snapshot().change_counter};
  std::atomic<bool> asleep{false};
  std::atomic<bool> stop{false};
  std::vector<double> latencies_ns;
  latencies_ns.reserve(static_cast<size_t>(state.max_iterations));
  std::thread waiter([&] {
    uint32_t seen = acknowledged.load();
    while (!stop.load()) {
      asleep.store(true);
      const uint32_t now = view->WaitForChange(seen, 200ms);
      const uint64_t woke = MonotonicNs();
      asleep.store(false);
      if (now == seen) continue;
      latencies_ns.push_back(static_cast<double>(woke - published_at.load()));
      seen = now;
      acknowledged.store(now);
    }
  });
  uint32_t expected = acknowledged.load();
  for (auto _ : state) {
    // Let the waiter get into the kernel before publishing, so the wake path is measured.
    while (!asleep.load()) std::this_thread::yield();
    std::this_thread::sleep_for(100us);
    published_at.store(MonotonicNs());
    writer->Publish(shm::PublishedState{});
    ++expected;
    while (acknowledged.load() != expected) std::this_thread::yield();
    state.SetIterationTime(latencies_ns.back() / 1e9);
  }
  stop.store(true);
  writer->Publish(shm::PublishedState{});
  waiter.join();
  (void)writer->Unlink();
  ReportLatencies(state, std::move(latencies_ns));
}
BENCHMARK(BM_ChangeNotification)->UseManualTime()->Iterations(2000)->Unit(benchmark::kMicrosecond);

// BM_AgentDeathWake's stand-in for the agent: this binary again, run with this flag, holds a
// segment through the SDK's writer (and so its life lock, on a thread of its own, as the agent
// does) until it is killed.
constexpr char kHoldSegmentFlag[] = "--hold-segment=";

int HoldSegment(const std::string& name) {
  auto writer = shm::Writer::Create(name, 0600, 3600s);
  if (!writer.ok()) {
    std::fprintf(stderr, "%s\n", writer.error().c_str());
    return 1;
  }
  for (;;) pause();
}

#ifdef SYS_futex_waitv
constexpr long kSysFutexWaitv = SYS_futex_waitv;
#else
constexpr long kSysFutexWaitv = 449;
#endif

// The system call a thread of this process is blocked in, or -1 while it runs.
long BlockedIn(pid_t tid) {
  std::ifstream file("/proc/self/task/" + std::to_string(tid) + "/syscall");
  long number = -1;
  return file >> number ? number : -1;
}

// From kill -9 of the process that holds the life lock to a WaitForChange asleep on another
// thread returning: the signal, the process's exit up to the kernel marking the lock (and waking
// the sleeper), and the sleeper's return. Without futex_waitv the sleeper looks every 10 ms
// instead (the label says which it slept in).
void BM_AgentDeathWake(benchmark::State& state) {
  char self[PATH_MAX];
  const ssize_t length = readlink("/proc/self/exe", self, sizeof self - 1);
  if (length <= 0) {
    state.SkipWithError("cannot find this binary to run the lock holder");
    return;
  }
  self[length] = '\0';
  std::vector<double> latencies_ns;
  latencies_ns.reserve(static_cast<size_t>(state.max_iterations));
  long slept_in = -1;
  int round = 0;
  for (auto _ : state) {
    const std::string name =
        "instaface-bench-death-" + std::to_string(getpid()) + "-" + std::to_string(round++);
    SubprocessOptions o;
    o.argv = {self, kHoldSegmentFlag + name};
    o.stderr_path = env->dir.File("holder.log");
    Subprocess holder(o);
    std::optional<View> view;
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline && holder.Running()) {
      auto opened = View::Open(name);
      if (opened.ok() && !opened->snapshot().stale) {
        view.emplace(std::move(*opened));
        break;
      }
      std::this_thread::sleep_for(1ms);
    }
    if (!view) {
      state.SkipWithError(("the lock holder did not start: " + holder.ReadStderr()).c_str());
      shm_unlink(("/" + name).c_str());
      return;
    }
    const uint32_t seen = view->snapshot().change_counter;
    std::atomic<pid_t> tid{0};
    std::atomic<uint64_t> woke{0};
    std::thread sleeper([&] {
      tid.store(static_cast<pid_t>(syscall(SYS_gettid)));
      view->WaitForChange(seen, 30s);
      woke.store(MonotonicNs());
    });
    // Into the kernel, so that the wake path is what is measured.
    while (tid.load() == 0) std::this_thread::yield();
    for (long call = BlockedIn(tid); call != SYS_futex && call != kSysFutexWaitv;
         call = BlockedIn(tid)) {
      std::this_thread::sleep_for(50us);
    }
    slept_in = BlockedIn(tid);
    const uint64_t killed = MonotonicNs();
    holder.Kill();
    sleeper.join();
    latencies_ns.push_back(static_cast<double>(woke.load() - killed));
    state.SetIterationTime(latencies_ns.back() / 1e9);
    view.reset();
    shm_unlink(("/" + name).c_str());
  }
  ReportLatencies(state, std::move(latencies_ns));
  state.SetLabel(slept_in == kSysFutexWaitv ? "futex_waitv" : "FUTEX_WAIT, 10 ms slices");
}
BENCHMARK(BM_AgentDeathWake)->UseManualTime()->Iterations(100)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace instaface::bench

int main(int argc, char** argv) {
  if (argc == 2 && std::strncmp(argv[1], instaface::bench::kHoldSegmentFlag,
                                std::strlen(instaface::bench::kHoldSegmentFlag)) == 0) {
    return instaface::bench::HoldSegment(argv[1] + std::strlen(instaface::bench::kHoldSegmentFlag));
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  instaface::bench::Environment environment;
  environment.Start();
  instaface::bench::env = &environment;
  benchmark::AddCustomContext("source", environment.source);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
