#include "workload.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "fake_data.h"
#include "instaface/graphserver/http_client.h"
#include "instaface/graphserver/idempotency_key.h"
#include "query_answer.h"

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

 private:
  static constexpr size_t kMax = 100000;
  std::mutex mu_;
  std::vector<int64_t> ids_;  // under mu_
  size_t next_ = 0;           // under mu_
};

// How a request went; see WorkloadResult.
enum class Outcome { kOk, kConflict, kFailed };

struct Shared {
  WorkloadOptions options;
  std::mutex targets_mu;
  Targets targets;  // under targets_mu
  KnownIds users;   // created or sampled; timelines are read from them
  std::atomic<uint64_t> users_created{0};
  std::atomic<uint64_t> statuses_posted{0};
  std::atomic<uint64_t> slot{0};
  std::atomic<uint64_t> write_retries{0};
  Clock::time_point start;
  Clock::time_point end;

  std::mutex stats_mu;
  uint64_t ok = 0, conflicts = 0, failed = 0;  // under stats_mu
  std::map<std::string, uint64_t> ok_by_op;    // under stats_mu
  std::map<std::string, uint64_t> errors;      // under stats_mu
  std::vector<double> read_ms, write_ms;       // under stats_mu
  uint64_t interval_ok = 0;                    // under stats_mu
  uint64_t interval_conflicts = 0;             // under stats_mu
  uint64_t interval_failed = 0;                // under stats_mu

  Targets CurrentTargets() {
    std::lock_guard<std::mutex> lock(targets_mu);
    return targets;
  }

  // `kind` names any outcome but ok (see WorkloadResult::errors_by_kind).
  void Record(const char* op, bool write, double ms, Outcome outcome, const std::string& kind) {
    std::lock_guard<std::mutex> lock(stats_mu);
    switch (outcome) {
      case Outcome::kOk:
        ++ok;
        ++interval_ok;
        ++ok_by_op[op];
        (write ? write_ms : read_ms).push_back(ms);
        return;
      case Outcome::kConflict:
        ++conflicts;
        ++interval_conflicts;
        break;
      case Outcome::kFailed:
        ++failed;
        ++interval_failed;
        break;
    }
    ++errors[kind];
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

// What each route answers with 200; a body that is not is a "bad-answer".
bool IsId(const json& body) { return body.is_number_integer() && body.get<int64_t>() > 0; }
bool IsIdArray(const json& body) {
  return body.is_array() && std::all_of(body.begin(), body.end(), IsId);
}
bool IsQueryAnswer(const json& body) { return QueryAnswerEntities(body) != nullptr; }
bool IsObject(const json& body) { return body.is_object(); }

std::string AssociationTarget(const std::string& type, int64_t from, int64_t to) {
  return "/api/graph/associations/" + type + "/from/" + std::to_string(from) + "/to/" +
         std::to_string(to);
}

// The original's reads, as query templates rooted at one user: their timeline (what they posted
// and who liked it, what they liked and who posted it), and what their friends posted.
const json& TimelineTemplate() {
  static const json t = {{"posted", {{"likedby", json::object()}}},
                         {"liked", {{"postedby", json::object()}}}};
  return t;
}
const json& FriendsPostsTemplate() {
  static const json t = {{"friend", {{"posted", json::object()}}}};
  return t;
}

// One new member's visit, the original bot's loop: sample users to befriend, join, befriend
// them, sample statuses, then act `actions_left` times.
struct Visit {
  enum class Step { kSampleFriends, kJoin, kBefriend, kSampleStatuses, kAct };
  Step step = Step::kSampleFriends;
  int64_t self = 0;
  std::vector<int64_t> friends;
  size_t next_friend = 0;
  int actions_left = 0;
  std::vector<int64_t> statuses;  // to like, in order
  size_t next_status = 0;
};

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
  struct Reply {
    Outcome outcome = Outcome::kFailed;
    json body;  // the parsed body of an ok answer
  };
  using AnswerCheck = bool (*)(const json& body);

  // One slot of the rate: a timeline read, or the visit's next step.
  void Step() {
    Targets t = s_.CurrentTargets();
    if (t.all.empty()) return;
    int64_t user = 0;
    if (Chance(kReadShare) && s_.users.Pick(rng_, user)) {
      ReadTimeline(t, user);
      return;
    }
    while (!Advance(t)) {
    }
  }

  // Takes the visit one step on. False when that step sent nothing, so that the slot goes to the
  // next one; every chain of such steps ends at one that sends.
  bool Advance(const Targets& t) {
    Visit& v = visit_;
    switch (v.step) {
      case Visit::Step::kSampleFriends:
        v = Visit{};
        v.friends = Sample(t, "user", Between(5, 24), "sample_users");
        for (int64_t id : v.friends) s_.users.Add(id);
        v.step = Visit::Step::kJoin;
        return true;
      case Visit::Step::kJoin: {
        json name = {{"firstName", FakeFirstName(rng_)}, {"lastName", FakeLastName(rng_)}};
        std::optional<int64_t> self = Create(t, "user", name, "create_user");
        if (!self) {
          v.step = Visit::Step::kSampleFriends;  // start over as someone else
          return true;
        }
        v.self = *self;
        s_.users.Add(v.self);
        ++s_.users_created;
        v.step = Visit::Step::kBefriend;
        return true;
      }
      case Visit::Step::kBefriend:
        if (v.next_friend == v.friends.size()) {
          v.step = Visit::Step::kSampleStatuses;
          return false;
        }
        Associate(t, v.self, v.friends[v.next_friend++], "friend", "friend", "befriend");
        return true;
      case Visit::Step::kSampleStatuses:
        v.actions_left = Between(5, 34);
        v.statuses = Sample(t, "status", v.actions_left, "sample_statuses");
        v.step = Visit::Step::kAct;
        return true;
      case Visit::Step::kAct:
        if (v.actions_left == 0) {
          v.step = Visit::Step::kSampleFriends;
          return false;
        }
        --v.actions_left;
        if (Chance(0.5)) {
          // A like of the next sampled status; with none left the action is spent doing nothing.
          if (v.next_status == v.statuses.size()) return false;
          Associate(t, v.self, v.statuses[v.next_status++], "liked", "likedby", "like");
          return true;
        }
        Post(t, v.self);
        return true;
    }
    return true;
  }

  void Post(const Targets& t, int64_t user) {
    json status = {{"text", FakeStatusText(rng_)}};
    std::optional<int64_t> id = Create(t, "status", status, "post_status");
    if (!id) return;
    ++s_.statuses_posted;
    Associate(t, user, *id, "posted", "postedby", "post_status");
  }

  // An association and its reverse, as the original client makes them: `type` from -> to, then
  // `reverse` to -> from. A 409 on the first means it was already there, so the reverse is still
  // made; a failure of the first leaves both out.
  void Associate(const Targets& t, int64_t from, int64_t to, const std::string& type,
                 const std::string& reverse, const char* op) {
    if (Write(t, AssociationTarget(type, from, to), json::object(), op, IsObject).outcome ==
        Outcome::kFailed) {
      return;
    }
    Write(t, AssociationTarget(reverse, to, from), json::object(), op, IsObject);
  }

  std::optional<int64_t> Create(const Targets& t, const std::string& type, const json& attributes,
                                const char* op) {
    Reply r = Write(t, "/api/graph/entities/" + type + "/create", attributes, op, IsId);
    if (r.outcome != Outcome::kOk) return std::nullopt;
    return r.body.get<int64_t>();
  }

  std::vector<int64_t> Sample(const Targets& t, const std::string& type, int count,
                              const char* op) {
    Reply r = Read(t, "/api/graph/random/" + type + "/" + std::to_string(count), "", op, IsIdArray);
    std::vector<int64_t> ids;
    if (r.outcome != Outcome::kOk) return ids;
    for (const json& id : r.body) ids.push_back(id.get<int64_t>());
    return ids;
  }

  void ReadTimeline(const Targets& t, int64_t user) {
    bool own = Chance(0.5);
    json query = {{"entities", json::array({user})},
                  {"template", own ? TimelineTemplate() : FriendsPostsTemplate()}};
    Read(t, "/api/graph/query", query.dump(), own ? "timeline" : "friends_posts", IsQueryAnswer);
  }

  bool Chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  int Between(int low, int high) { return std::uniform_int_distribution<int>(low, high)(rng_); }

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

  // A write goes under an Idempotency-Key of its own, and is sent again under it (to a node
  // picked afresh) while its outcome is unknown: no answer came, or a 503 said the write may
  // have been applied. The key makes that safe: the server writes it at most once.
  Reply Write(const Targets& t, const std::string& target, const json& body, const char* op,
              AnswerCheck check) {
    const std::string key = MakeKey();
    const std::string text = body.dump();
    const auto t0 = Clock::now();
    std::string node = PickNode(t, true);
    for (int attempt = 0;; ++attempt) {
      Exchange e = Send(node, target, text, check, &key);
      // Retried past the end of the run too: the write was acknowledged to no one yet.
      if (!e.unknown || attempt == kMaxWriteRetries) {
        s_.Record(op, true, MillisSince(t0), e.reply.outcome, e.kind);
        return e.reply;
      }
      ++s_.write_retries;
      std::this_thread::sleep_for(kWriteRetryPause);
      node = PickNode(s_.CurrentTargets(), true);
    }
  }
  Reply Read(const Targets& t, const std::string& target, const std::string& body, const char* op,
             AnswerCheck check) {
    const auto t0 = Clock::now();
    Exchange e = Send(PickNode(t, false), target, body, check, nullptr);
    s_.Record(op, false, MillisSince(t0), e.reply.outcome, e.kind);
    return e.reply;
  }

  struct Exchange {
    Reply reply;
    std::string kind;      // empty when ok (see WorkloadResult::errors_by_kind)
    bool unknown = false;  // a write that may or may not have been applied
  };

  Exchange Send(const std::string& node, const std::string& target, const std::string& body,
                AnswerCheck check, const std::string* key) {
    std::vector<std::pair<std::string, std::string>> headers;
    if (key != nullptr) headers.emplace_back(graphserver::kIdempotencyKeyHeader, *key);
    ClientResult r = clients_.For(node).Send(http::verb::post, target, body,
                                             s_.options.request_timeout, headers);
    Exchange e;
    if (!r.ok) {
      if (r.timed_out) {
        e.kind = "timeout";
      } else if (r.error.rfind("connect", 0) == 0) {
        e.kind = "connect";
      } else {
        e.kind = "io";
      }
      // A connect that failed sent nothing; anything later may have reached the server.
      e.unknown = e.kind != "connect";
    } else if (r.response.result_int() != 200) {
      e.kind = std::to_string(r.response.result_int());
      e.unknown = r.response[graphserver::kWriteOutcomeHeader] == "unknown";
    } else {
      e.reply.body = json::parse(r.response.body(), nullptr, false);
      if (e.reply.body.is_discarded() || !check(e.reply.body)) e.kind = "bad-answer";
    }
    // A 409 is the server refusing a duplicate association: nothing was written, so it is not
    // ok, and it is no fault of the server either.
    e.reply.outcome = e.kind.empty()    ? Outcome::kOk
                      : e.kind == "409" ? Outcome::kConflict
                                        : Outcome::kFailed;
    return e;
  }

  static double MillisSince(Clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  }

  // 128 random bits. Not from rng_: a run with the same seed makes the same requests, and
  // must not find the keys of the last run's creates.
  std::string MakeKey() {
    char buf[48];
    snprintf(buf, sizeof(buf), "bot-%016llx%016llx", static_cast<unsigned long long>(key_rng_()),
             static_cast<unsigned long long>(key_rng_()));
    return buf;
  }

  static std::mt19937_64::result_type KeySeed() {
    std::random_device device;
    return (static_cast<uint64_t>(device()) << 32) ^ device();
  }

  static constexpr int kMaxWriteRetries = 10;
  static constexpr std::chrono::milliseconds kWriteRetryPause{100};

  // Of the slots, when some user is known, the share that reads a timeline.
  static constexpr double kReadShare = 0.5;

  Shared& s_;
  std::mt19937_64 rng_;
  std::mt19937_64 key_rng_{KeySeed()};
  Clients clients_;
  Visit visit_;
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
      uint64_t ok, conflicts, failed;
      {
        std::lock_guard<std::mutex> lock(shared.stats_mu);
        ok = shared.interval_ok;
        conflicts = shared.interval_conflicts;
        failed = shared.interval_failed;
        shared.interval_ok = shared.interval_conflicts = shared.interval_failed = 0;
      }
      double secs = static_cast<double>(options.report_every.count());
      char line[200];
      snprintf(line, sizeof(line),
               "%5.0f s: %.0f ok/s, %.1f conflicts/s, %.1f failed/s, users %llu, statuses %llu",
               std::chrono::duration<double>(Clock::now() - shared.start).count(), ok / secs,
               conflicts / secs, failed / secs,
               static_cast<unsigned long long>(shared.users_created.load()),
               static_cast<unsigned long long>(shared.statuses_posted.load()));
      if (report) report(line);
      next_report += options.report_every;
    }
  }
  for (auto& t : threads) t.join();

  WorkloadResult result;
  result.seconds = std::chrono::duration<double>(Clock::now() - shared.start).count();
  std::lock_guard<std::mutex> lock(shared.stats_mu);
  result.ok = shared.ok;
  result.conflicts = shared.conflicts;
  result.write_retries = shared.write_retries.load();
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
  snprintf(buf, sizeof(buf), "%.1f s: %llu ok (%.0f/s), %llu conflicts (409), %llu failed\n",
           r.seconds, static_cast<unsigned long long>(r.ok), r.ok / std::max(r.seconds, 1e-9),
           static_cast<unsigned long long>(r.conflicts), static_cast<unsigned long long>(r.failed));
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
  out << "\n  writes sent again under their key: " << r.write_retries;
  out << "\n  not ok by kind:";
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
  json j = {{"seconds", r.seconds},
            {"ok", r.ok},
            {"conflicts", r.conflicts},
            {"failed", r.failed},
            {"write_retries", r.write_retries},
            {"ops", r.ok_by_operation},
            {"errors", r.errors_by_kind},
            {"reads", lat(r.reads)},
            {"writes", lat(r.writes)}};
  return j.dump();
}

}  // namespace instaface::bot
