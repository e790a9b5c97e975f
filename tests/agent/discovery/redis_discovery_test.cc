// RedisDiscovery against a real, private redis-server on loopback.
#include "instaface/discovery/redis_discovery.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "support/redis_server.h"

namespace instaface::discovery {
namespace {

using std::chrono::milliseconds;
using testing::RedisServer;

constexpr char kCluster[] = "test";
// Generous: a liveness deadline, not a performance threshold.
constexpr milliseconds kDeadline{10000};

bool Eventually(const std::function<bool()>& condition, milliseconds deadline = kDeadline) {
  auto end = std::chrono::steady_clock::now() + deadline;
  while (std::chrono::steady_clock::now() < end) {
    if (condition()) return true;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return condition();
}

class RedisDiscoveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    ASSERT_TRUE(redis_.Start(&error)) << error;
  }

  DiscoveryOptions Options(const std::string& id) {
    DiscoveryOptions options;
    options.redis_url = redis_.url();
    options.cluster = kCluster;
    options.self_id = id;
    options.peer_address = "tcp://127.0.0.1:1" + id.substr(1);
    options.app_address = "http://127.0.0.1:8" + id.substr(1);
    options.version = "test-1";
    options.ttl = milliseconds(600);
    options.refresh_interval = milliseconds(50);
    options.initial_backoff = milliseconds(20);
    options.max_backoff = milliseconds(200);
    options.log = [this](std::string_view line) {
      std::lock_guard<std::mutex> lock(log_mu_);
      log_.emplace_back(line);
    };
    return options;
  }

  std::unique_ptr<RedisDiscovery> Make(const std::string& id) {
    auto d = RedisDiscovery::Create(Options(id));
    EXPECT_TRUE(d.ok()) << d.status().message();
    return d.ok() ? std::move(*d) : nullptr;
  }

  // A fresh client for checking what is in Redis.
  RedisConnection Client() {
    auto url = ParseRedisUrl(redis_.url());
    auto c = RedisConnection::Connect(*url, milliseconds(1000), milliseconds(1000));
    EXPECT_TRUE(c.ok()) << c.status().message();
    return std::move(*c);
  }

  RedisReply Run(const std::vector<std::string>& argv) {
    auto c = Client();
    auto reply = c.Command(argv);
    EXPECT_TRUE(reply.ok()) << reply.status().message();
    return reply.ok() ? *reply : RedisReply{};
  }

  static bool HasPeer(const RedisDiscovery& d, const std::string& id) {
    for (const auto& p : d.Peers()) {
      if (p.id == id) return true;
    }
    return false;
  }

  std::vector<std::string> Log() {
    std::lock_guard<std::mutex> lock(log_mu_);
    return log_;
  }

  RedisServer redis_;
  std::mutex log_mu_;
  std::vector<std::string> log_;
};

TEST_F(RedisDiscoveryTest, RejectsBadOptions) {
  auto options = Options("n1");
  options.redis_url = "http://nope";
  EXPECT_FALSE(RedisDiscovery::Create(options).ok());
  options = Options("n1");
  options.cluster.clear();
  EXPECT_FALSE(RedisDiscovery::Create(options).ok());
  options = Options("n1");
  options.ttl = options.refresh_interval;
  EXPECT_FALSE(RedisDiscovery::Create(options).ok());
}

TEST_F(RedisDiscoveryTest, RegistersWithTtlAndSeesPeersButNotItself) {
  auto a = Make("n1");
  auto b = Make("n2");
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->Start().ok());
  ASSERT_TRUE(b->Start().ok());
  ASSERT_TRUE(Eventually([&] { return HasPeer(*a, "n2") && HasPeer(*b, "n1"); }));

  std::vector<PeerInfo> peers = a->Peers();
  ASSERT_EQ(peers.size(), 1u);
  EXPECT_EQ(peers[0].id, "n2");
  EXPECT_EQ(peers[0].peer_address, "tcp://127.0.0.1:12");
  EXPECT_EQ(peers[0].app_address, "http://127.0.0.1:82");
  EXPECT_TRUE(Eventually([&] { return a->registered_peers() == 2; }));
  EXPECT_TRUE(a->connected());

  RedisReply hash = Run({"HGETALL", NodeKey(kCluster, "n1")});
  ASSERT_EQ(hash.type, RedisReply::Type::kArray);
  std::map<std::string, std::string> fields;
  for (size_t i = 0; i + 1 < hash.elements.size(); i += 2) {
    fields[hash.elements[i].str] = hash.elements[i + 1].str;
  }
  EXPECT_EQ(fields["peer"], "tcp://127.0.0.1:11");
  EXPECT_EQ(fields["app"], "http://127.0.0.1:81");
  EXPECT_EQ(fields["version"], "test-1");
  EXPECT_FALSE(fields["started"].empty());

  RedisReply pttl = Run({"PTTL", NodeKey(kCluster, "n1")});
  EXPECT_GT(pttl.integer, 0);
  EXPECT_LE(pttl.integer, 600);
  RedisReply score = Run({"ZSCORE", NodesKey(kCluster), "n1"});
  ASSERT_EQ(score.type, RedisReply::Type::kString);
  RedisReply time = Run({"TIME"});
  double now_ms = std::stod(time.elements[0].str) * 1000;
  EXPECT_GT(std::stod(score.str), now_ms - 1000);  // expiry is about now + ttl
}

TEST_F(RedisDiscoveryTest, RefreshKeepsRegistrationAlivePastItsTtl) {
  auto a = Make("n1");
  ASSERT_TRUE(a->Start().ok());
  ASSERT_TRUE(Eventually([&] {
    return Run({"ZSCORE", NodesKey(kCluster), "n1"}).type == RedisReply::Type::kString;
  }));
  double first = std::stod(Run({"ZSCORE", NodesKey(kCluster), "n1"}).str);
  // The score moves forward: the registration is being refreshed, not just written once.
  EXPECT_TRUE(Eventually([&] {
    RedisReply s = Run({"ZSCORE", NodesKey(kCluster), "n1"});
    return s.type == RedisReply::Type::kString && std::stod(s.str) > first + 600;
  }));
  EXPECT_EQ(Run({"EXISTS", NodeKey(kCluster, "n1")}).integer, 1);
}

TEST_F(RedisDiscoveryTest, PrunesExpiredMembers) {
  auto a = Make("n1");
  ASSERT_TRUE(a->Start().ok());
  // A node that registered once and then died: its expiry is 300 ms from now.
  RedisReply time = Run({"TIME"});
  long long now_ms =
      std::stoll(time.elements[0].str) * 1000 + std::stoll(time.elements[1].str) / 1000;
  Run({"ZADD", NodesKey(kCluster), std::to_string(now_ms + 300), "ghost"});
  Run({"HSET", NodeKey(kCluster, "ghost"), "peer", "tcp://127.0.0.1:9", "app", "http://x"});
  ASSERT_TRUE(Eventually([&] { return HasPeer(*a, "ghost"); }));
  // Once expired it leaves both the peer list and the sorted set (the hash has no TTL here, so
  // only the score decides).
  EXPECT_TRUE(Eventually([&] { return !HasPeer(*a, "ghost"); }));
  EXPECT_TRUE(Eventually([&] { return Run({"ZSCORE", NodesKey(kCluster), "ghost"}).is_nil(); }));
}

TEST_F(RedisDiscoveryTest, StopDeregistersAndOthersSeeItLeave) {
  auto a = Make("n1");
  auto b = Make("n2");
  std::atomic<int> changes{0};
  std::mutex seen_mu;
  std::vector<std::vector<PeerInfo>> seen;
  a->SetPeersCallback([&](const std::vector<PeerInfo>& peers) {
    std::lock_guard<std::mutex> lock(seen_mu);
    seen.push_back(peers);
    ++changes;
  });
  ASSERT_TRUE(a->Start().ok());
  ASSERT_TRUE(b->Start().ok());
  ASSERT_TRUE(Eventually([&] { return HasPeer(*a, "n2"); }));
  b->Stop();
  EXPECT_TRUE(Run({"ZSCORE", NodesKey(kCluster), "n2"}).is_nil());
  EXPECT_EQ(Run({"EXISTS", NodeKey(kCluster, "n2")}).integer, 0);
  ASSERT_TRUE(Eventually([&] { return !HasPeer(*a, "n2"); }));
  std::lock_guard<std::mutex> lock(seen_mu);
  ASSERT_GE(seen.size(), 2u);
  EXPECT_EQ(seen.front().size(), 1u);
  EXPECT_TRUE(seen.back().empty());
}

TEST_F(RedisDiscoveryTest, LeaderKeyIsNeverOverwrittenByALowerTerm) {
  auto a = Make("n1");
  auto b = Make("n2");
  ASSERT_TRUE(a->Start().ok());
  ASSERT_TRUE(b->Start().ok());
  auto c = Client();
  auto leader = [&]() -> std::optional<LeaderRecord> {
    auto r = ReadLeader(c, kCluster);
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? *r : std::nullopt;
  };

  b->PublishLeader("n2", 5, "http://b", milliseconds(3000));
  ASSERT_TRUE(Eventually([&] {
    auto l = leader();
    return l && l->term == 5;
  }));
  a->PublishLeader("n1", 7, "http://a", milliseconds(3000));
  ASSERT_TRUE(Eventually([&] {
    auto l = leader();
    return l && l->term == 7;
  }));

  // b still believes it leads term 5 and keeps refreshing: every attempt must be refused.
  uint64_t refused_before = b->leader_writes_refused();
  ASSERT_TRUE(Eventually([&] { return b->leader_writes_refused() >= refused_before + 3; }));
  auto l = leader();
  ASSERT_TRUE(l);
  EXPECT_EQ(l->id, "n1");
  EXPECT_EQ(l->term, 7u);
  EXPECT_EQ(l->app_address, "http://a");
  RedisReply pttl = Run({"PTTL", LeaderKey(kCluster)});
  EXPECT_GT(pttl.integer, 0);

  // The deposed one clearing "its" key must not delete the newer leader's.
  b->ClearLeader();
  b->Stop();
  l = leader();
  ASSERT_TRUE(l);
  EXPECT_EQ(l->id, "n1");

  // The current leader's own clear does delete it.
  a->ClearLeader();
  EXPECT_TRUE(Eventually([&] { return !leader(); }));
}

TEST_F(RedisDiscoveryTest, LeaderKeyTermsCompareExactlyBeyondDoublePrecision) {
  auto a = Make("n1");
  auto b = Make("n2");
  ASSERT_TRUE(a->Start().ok());
  ASSERT_TRUE(b->Start().ok());
  auto c = Client();
  const uint64_t big = (1ULL << 60) + 1;
  a->PublishLeader("n1", big, "http://a", milliseconds(3000));
  ASSERT_TRUE(Eventually([&] {
    auto r = ReadLeader(c, kCluster);
    return r.ok() && *r && (*r)->term == big;
  }));
  b->PublishLeader("n2", big - 1, "http://b", milliseconds(3000));
  ASSERT_TRUE(Eventually([&] { return b->leader_writes_refused() >= 1; }));
  auto r = ReadLeader(c, kCluster);
  ASSERT_TRUE(r.ok() && *r);
  EXPECT_EQ((*r)->id, "n1");
}

TEST_F(RedisDiscoveryTest, StopRemovesOwnLeaderKey) {
  auto a = Make("n1");
  ASSERT_TRUE(a->Start().ok());
  auto c = Client();
  a->PublishLeader("n1", 3, "http://a", milliseconds(100));
  ASSERT_TRUE(Eventually([&] {
    auto r = ReadLeader(c, kCluster);
    return r.ok() && r->has_value();
  }));
  // A TTL below the 2 s minimum is raised to it.
  EXPECT_GT(Run({"PTTL", LeaderKey(kCluster)}).integer, 1000);
  a->Stop();
  auto r = ReadLeader(c, kCluster);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_value());
}

TEST_F(RedisDiscoveryTest, RedisRestartKeepsPeersThenReconnectsAndReregisters) {
  auto a = Make("n1");
  // n2 retries more slowly, so n1 is back (and refreshing an empty Redis) well before n2.
  auto slow = Options("n2");
  slow.initial_backoff = milliseconds(400);
  slow.max_backoff = milliseconds(400);
  auto created = RedisDiscovery::Create(slow);
  ASSERT_TRUE(created.ok()) << created.status().message();
  auto b = std::move(*created);
  // After the restart Redis is empty and n1 may refresh before n2 has re-registered: n1 must
  // not drop n2 in between (that would stop heartbeats to a live follower).
  std::atomic<bool> seen_n2{false}, lost_n2{false};
  a->SetPeersCallback([&](const std::vector<PeerInfo>& peers) {
    bool has = false;
    for (const auto& p : peers) has = has || p.id == "n2";
    if (has) seen_n2 = true;
    if (!has && seen_n2) lost_n2 = true;
  });
  ASSERT_TRUE(a->Start().ok());
  ASSERT_TRUE(b->Start().ok());
  ASSERT_TRUE(Eventually([&] { return HasPeer(*a, "n2") && HasPeer(*b, "n1"); }));
  a->PublishLeader("n1", 4, "http://a", milliseconds(3000));

  redis_.Kill();
  ASSERT_TRUE(Eventually([&] { return !a->connected() && a->redis_errors() >= 3; }));
  // Down for several refresh periods: the last known peers are kept.
  EXPECT_TRUE(HasPeer(*a, "n2"));
  EXPECT_TRUE(HasPeer(*b, "n1"));

  std::string error;
  ASSERT_TRUE(redis_.Start(&error)) << error;  // same port, empty data
  ASSERT_TRUE(Eventually([&] { return a->connected() && b->connected(); }));
  ASSERT_TRUE(Eventually([&] {
    return !Run({"ZSCORE", NodesKey(kCluster), "n1"}).is_nil() &&
           !Run({"ZSCORE", NodesKey(kCluster), "n2"}).is_nil() &&
           Run({"EXISTS", NodeKey(kCluster, "n1")}).integer == 1;
  }));
  // The leader key comes back too, since n1 still leads.
  auto c = Client();
  ASSERT_TRUE(Eventually([&] {
    auto r = ReadLeader(c, kCluster);
    return r.ok() && r->has_value() && (*r)->id == "n1";
  }));
  EXPECT_TRUE(HasPeer(*a, "n2"));
  EXPECT_FALSE(lost_n2.load());

  // Exactly one "unreachable" line and one "reachable again" line per node for one outage.
  auto log = Log();
  int down = 0, up = 0;
  for (const auto& line : log) {
    if (line.find("retrying") != std::string::npos) ++down;
    if (line.find("reachable again") != std::string::npos) ++up;
  }
  EXPECT_EQ(down, 2) << ::testing::PrintToString(log);
  EXPECT_EQ(up, 2) << ::testing::PrintToString(log);
}

TEST(RedisDiscoveryAuthTest, AuthenticatesWithPasswordAndFailsWithoutIt) {
  testing::RedisServerOptions server_options;
  server_options.password = "hunter2";
  RedisServer redis(server_options);
  std::string error;
  ASSERT_TRUE(redis.Start(&error)) << error;

  DiscoveryOptions good;
  good.redis_url = redis.url();
  good.cluster = kCluster;
  good.self_id = "n1";
  good.peer_address = "tcp://127.0.0.1:11";
  good.ttl = milliseconds(600);
  good.refresh_interval = milliseconds(50);
  good.log = [](std::string_view) {};
  auto a = RedisDiscovery::Create(good);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE((*a)->Start().ok());
  EXPECT_TRUE(Eventually([&] { return (*a)->connected(); }));

  DiscoveryOptions bad = good;
  bad.self_id = "n2";
  bad.redis_url = "redis://:wrong@127.0.0.1:" + std::to_string(redis.port());
  std::vector<std::string> lines;
  std::mutex mu;
  bad.log = [&](std::string_view line) {
    std::lock_guard<std::mutex> lock(mu);
    lines.emplace_back(line);
  };
  auto b = RedisDiscovery::Create(bad);
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE((*b)->Start().ok());
  EXPECT_TRUE(Eventually([&] { return (*b)->redis_errors() >= 2; }));
  EXPECT_FALSE((*b)->connected());
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("AUTH"), std::string::npos) << lines[0];
  EXPECT_EQ(lines[0].find("wrong"), std::string::npos) << "password leaked: " << lines[0];
}

}  // namespace
}  // namespace instaface::discovery
