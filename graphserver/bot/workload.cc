#include "workload.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "instaface/graphserver/http_client.h"

namespace instaface::bot {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;
namespace http = boost::beast::http;
using graphserver::ClientResult;
using graphserver::HttpClient;

// Ids the bot has created or sampled; workers pick from them.
class KnownIds {
 public:
  void Add(int64_t id) {
    std::lock_guard<std::mutex> lock(mu_);
    if (ids_.size() < kMax) {
      ids_.push_back(id);
    } else {
      ids_[next_++ % kMax] = id;  // keep a bounded, recent sample
    }
  }
  bool Pick(std::mt19937_64& rng, int64_t& out) {
    std::lock_guard<std::mutex> lock(mu_);
    if (ids_.empty()) return false;
    out = ids_[std::uniform_int_distribution<size_t>(0, ids_.size() - 1)(rng)];
    return true;
  }
  size_t size() {
    std::lock_guard<std::mutex> lock(mu_);
    return ids_.size();
  }

 private:
  static constexpr size_t kMax = 100000;
  std::mutex mu_;
  std::vector<int64_t> ids_;  // under mu_
  size_t next_ = 0;           // under mu_
};

struct Shared {
  WorkloadOptions options;
  std::mutex targets_mu;
  Targets targets;  // under targets_mu
  KnownIds users;
  KnownIds statuses;
  std::atomic<uint64_t> slot{0};
  Clock::time_point start;
  Clock::time_point end;

  std::mutex stats_mu;
  uint64_t ok = 0, failed = 0;                    // under stats_mu
  std::map<std::string, uint64_t> ok_by_op;       // under stats_mu
  std::map<std::string, uint64_t> errors;         // under stats_mu
  std::vector<double> read_ms, write_ms;          // under stats_mu
  uint64_t interval_ok = 0, interval_failed = 0;  // under stats_mu

  Targets CurrentTargets() {
    std::lock_guard<std::mutex> lock(targets_mu);
    return targets;
  }
};

// One worker's clients, one per target, kept alive between requests.
class Clients {
 public:
  HttpClient& For(const std::string& address) {
    auto it = clients_.find(address);
    if (it != clients_.end()) return *it->second;
    auto hp = graphserver::ParseHttpAddress(address);
    auto client = std::make_unique<HttpClient>(hp ? hp->host : "127.0.0.1", hp ? hp->port : 1);
    return *clients_.emplace(address, std::move(client)).first->second;
  }

 private:
  std::map<std::string, std::unique_ptr<HttpClient>> clients_;
};

std::string ErrorKind(const ClientResult& r) {
  if (!r.ok) {
    if (r.timed_out) return "timeout";
    if (r.error.rfind("connect", 0) == 0) return "connect";
    return "io";
  }
  return std::to_string(r.response.result_int());
}

class Worker {
 public:
  Worker(Shared& shared, uint64_t seed) : s_(shared), rng_(seed) {}

  void Run() {
    for (;;) {
      if (s_.options.rate > 0) {
        uint64_t k = s_.slot.fetch_add(1);
        auto due =
            s_.start + std::chrono::nanoseconds(static_cast<int64_t>(k * 1e9 / s_.options.rate));
        if (due >= s_.end) return;
        std::this_thread::sleep_until(due);
      } else if (Clock::now() >= s_.end) {
        return;
      }
      Step();
    }
  }

 private:
  void Step() {
    Targets t = s_.CurrentTargets();
    if (t.all.empty()) return;
    int64_t a = 0, b = 0;
    double dice = std::uniform_real_distribution<double>(0, 1)(rng_);
    if (s_.users.size() < 2 || dice < 0.05) {
      json attrs = {{"name", "user" + std::to_string(rng_() % 1000000)}};
      ClientResult r = Write(t, "/api/graph/entities/user/create", attrs, "create_user");
      if (Ok(r) && IsId(r)) s_.users.Add(std::stoll(r.response.body()));
    } else if (dice < 0.20) {
      s_.users.Pick(rng_, a);
      s_.users.Pick(rng_, b);
      if (a == b) return;
      // A friendship is an association each way.
      std::string tail = "/from/" + std::to_string(a) + "/to/" + std::to_string(b);
      Write(t, "/api/graph/associations/friend" + tail, json::object(), "befriend");
      tail = "/from/" + std::to_string(b) + "/to/" + std::to_string(a);
      Write(t, "/api/graph/associations/friend" + tail, json::object(), "befriend");
    } else if (dice < 0.35) {
      s_.users.Pick(rng_, a);
      json attrs = {{"text", "status " + std::to_string(rng_() % 1000000) + " it's <great>"}};
      ClientResult r = Write(t, "/api/graph/entities/status/create", attrs, "post_status");
      if (Ok(r) && IsId(r)) {
        int64_t id = std::stoll(r.response.body());
        s_.statuses.Add(id);
        Write(t,
              "/api/graph/associations/posted/from/" + std::to_string(a) + "/to/" +
                  std::to_string(id),
              json::object(), "post_status");
      }
    } else if (dice < 0.50) {
      if (!s_.users.Pick(rng_, a) || !s_.statuses.Pick(rng_, b)) return;
      Write(t,
            "/api/graph/associations/likes/from/" + std::to_string(a) + "/to/" + std::to_string(b),
            json::object(), "like");
    } else if (dice < 0.90) {
      s_.users.Pick(rng_, a);
      json q = {{"entities", {a}}, {"template", {{"friend", {{"posted", json::object()}}}}}};
      Read(t, "/api/graph/query", q.dump(), "query");
    } else {
      ClientResult r = Read(t, "/api/graph/random/user/10", "", "random");
      if (Ok(r)) {
        json ids = json::parse(r.response.body(), nullptr, false);
        if (ids.is_array()) {
          for (const json& id : ids) {
            if (id.is_number_integer()) s_.users.Add(id.get<int64_t>());
          }
        }
      }
    }
  }

  static bool Ok(const ClientResult& r) { return r.ok && r.response.result_int() == 200; }
  static bool IsId(const ClientResult& r) {
    const std::string& b = r.response.body();
    return !b.empty() && b.size() < 20 && std::all_of(b.begin(), b.end(), ::isdigit);
  }

  std::string PickNode(const Targets& t, bool write) {
    if (write && s_.options.writes_to_leader_only && !t.leader.empty()) return t.leader;
    if (!write && t.all.size() > 1 && !t.leader.empty()) {
      // Reads go to followers.
      std::vector<std::string> followers;
      for (const auto& a : t.all) {
        if (a != t.leader) followers.push_back(a);
      }
      if (!followers.empty()) {
        return followers[std::uniform_int_distribution<size_t>(0, followers.size() - 1)(rng_)];
      }
    }
    return t.all[std::uniform_int_distribution<size_t>(0, t.all.size() - 1)(rng_)];
  }

  ClientResult Write(const Targets& t, const std::string& target, const json& body,
                     const char* op) {
    return Send(PickNode(t, true), target, body.dump(), op, true);
  }
  ClientResult Read(const Targets& t, const std::string& target, const std::string& body,
                    const char* op) {
    return Send(PickNode(t, false), target, body, op, false);
  }

  ClientResult Send(const std::string& node, const std::string& target, const std::string& body,
                    const char* op, bool write) {
    auto t0 = Clock::now();
    ClientResult r =
        clients_.For(node).Send(http::verb::post, target, body, s_.options.request_timeout);
    double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    std::lock_guard<std::mutex> lock(s_.stats_mu);
    // A friendship or like that already exists is the workload's own collision, not a fault.
    bool success = Ok(r) || (r.ok && r.response.result_int() == 409);
    if (success) {
      ++s_.ok;
      ++s_.interval_ok;
      ++s_.ok_by_op[op];
      (write ? s_.write_ms : s_.read_ms).push_back(ms);
    } else {
      ++s_.failed;
      ++s_.interval_failed;
    }
    if (!Ok(r)) ++s_.errors[ErrorKind(r)];
    return r;
  }

  Shared& s_;
  std::mt19937_64 rng_;
  Clients clients_;
};

LatencySummary Summarize(std::vector<double> v) {
  LatencySummary s;
  s.count = v.size();
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  auto at = [&](double q) {
    size_t i = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
    return v[std::min(v.size() - 1, i == 0 ? 0 : i - 1)];
  };
  s.p50_ms = at(0.50);
  s.p90_ms = at(0.90);
  s.p99_ms = at(0.99);
  s.max_ms = v.back();
  return s;
}

}  // namespace

WorkloadResult RunWorkload(const Targets& targets, const WorkloadOptions& options,
                           const std::function<void(const std::string& line)>& report) {
  Shared shared;
  shared.options = options;
  shared.targets = targets;
  shared.start = Clock::now();
  shared.end = shared.start + options.duration;

  std::vector<std::thread> threads;
  for (int i = 0; i < std::max(1, options.concurrency); ++i) {
    threads.emplace_back([&shared, i, &options] {
      Worker(shared, options.seed * 7919 + static_cast<uint64_t>(i)).Run();
    });
  }

  auto last_refresh = Clock::now();
  auto next_report = shared.start + options.report_every;
  while (Clock::now() < shared.end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (options.refresh_targets && Clock::now() - last_refresh > std::chrono::seconds(2)) {
      Targets fresh = options.refresh_targets();
      if (!fresh.all.empty()) {
        std::lock_guard<std::mutex> lock(shared.targets_mu);
        shared.targets = fresh;
      }
      last_refresh = Clock::now();
    }
    if (Clock::now() >= next_report && options.report_every.count() > 0) {
      uint64_t ok, failed;
      {
        std::lock_guard<std::mutex> lock(shared.stats_mu);
        ok = shared.interval_ok;
        failed = shared.interval_failed;
        shared.interval_ok = shared.interval_failed = 0;
      }
      double secs = static_cast<double>(options.report_every.count());
      char line[200];
      snprintf(line, sizeof(line), "%5.0f s: %.0f ok/s, %.1f failed/s, users %zu, statuses %zu",
               std::chrono::duration<double>(Clock::now() - shared.start).count(), ok / secs,
               failed / secs, shared.users.size(), shared.statuses.size());
      if (report) report(line);
      next_report += options.report_every;
    }
  }
  for (auto& t : threads) t.join();

  WorkloadResult result;
  result.seconds = std::chrono::duration<double>(Clock::now() - shared.start).count();
  std::lock_guard<std::mutex> lock(shared.stats_mu);
  result.ok = shared.ok;
  result.failed = shared.failed;
  result.ok_by_operation = shared.ok_by_op;
  result.errors_by_kind = shared.errors;
  result.reads = Summarize(shared.read_ms);
  result.writes = Summarize(shared.write_ms);
  return result;
}

std::string FormatResult(const WorkloadResult& r) {
  std::ostringstream out;
  char buf[256];
  snprintf(buf, sizeof(buf), "%.1f s: %llu ok (%.0f/s), %llu failed\n", r.seconds,
           static_cast<unsigned long long>(r.ok), r.ok / std::max(r.seconds, 1e-9),
           static_cast<unsigned long long>(r.failed));
  out << buf;
  for (const auto& [name, s] :
       {std::pair<const char*, LatencySummary>{"reads ", r.reads}, {"writes", r.writes}}) {
    snprintf(buf, sizeof(buf),
             "  %s %8llu  p50 %7.2f ms  p90 %7.2f ms  p99 %7.2f ms  max %7.2f ms\n", name,
             static_cast<unsigned long long>(s.count), s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms);
    out << buf;
  }
  out << "  by operation:";
  for (const auto& [op, n] : r.ok_by_operation) out << " " << op << "=" << n;
  out << "\n  not 200 by kind:";
  if (r.errors_by_kind.empty()) out << " none";
  for (const auto& [kind, n] : r.errors_by_kind) out << " " << kind << "=" << n;
  out << "\n";
  return out.str();
}

std::string ResultJson(const WorkloadResult& r) {
  auto lat = [](const LatencySummary& s) {
    return json{{"count", s.count},
                {"p50_ms", s.p50_ms},
                {"p90_ms", s.p90_ms},
                {"p99_ms", s.p99_ms},
                {"max_ms", s.max_ms}};
  };
  json j = {{"seconds", r.seconds},       {"ok", r.ok},
            {"failed", r.failed},         {"ops", r.ok_by_operation},
            {"errors", r.errors_by_kind}, {"reads", lat(r.reads)},
            {"writes", lat(r.writes)}};
  return j.dump();
}

}  // namespace instaface::bot
