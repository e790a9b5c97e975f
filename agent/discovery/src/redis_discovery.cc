#include "instaface/discovery/redis_discovery.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>

namespace instaface::discovery {

using common::Status;
using common::StatusOr;

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Writes the leader hash unless it already holds a higher term. Terms are compared as decimal
// strings (length, then lexicographically) because Lua numbers are doubles and lose precision
// past 2^53. Equal terms overwrite: one leader per term means it is the same leader refreshing.
constexpr const char* kPublishLeaderScript = R"lua(
local cur = redis.call('HGET', KEYS[1], 'term')
if cur then
  if #cur > #ARGV[2] or (#cur == #ARGV[2] and cur > ARGV[2]) then return 0 end
end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'term', ARGV[2], 'app', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
)lua";

// Deletes the leader hash only if it still names this node in this term.
constexpr const char* kClearLeaderScript = R"lua(
if redis.call('HGET', KEYS[1], 'id') == ARGV[1] and
   redis.call('HGET', KEYS[1], 'term') == ARGV[2] then
  return redis.call('DEL', KEYS[1])
end
return 0
)lua";

constexpr milliseconds kMinLeaderTtl{2000};

struct LeaderWish {
  LeaderRecord record;
  milliseconds ttl{kMinLeaderTtl};
};

}  // namespace

std::string KeyPrefix(std::string_view cluster) {
  return "instaface:" + std::string(cluster) + ":";
}
std::string NodesKey(std::string_view cluster) { return KeyPrefix(cluster) + "nodes"; }
std::string NodeKey(std::string_view cluster, std::string_view id) {
  return KeyPrefix(cluster) + "node:" + std::string(id);
}
std::string LeaderKey(std::string_view cluster) { return KeyPrefix(cluster) + "leader"; }

StatusOr<std::optional<LeaderRecord>> ReadLeader(RedisConnection& redis, std::string_view cluster) {
  auto reply = redis.Command({"HMGET", LeaderKey(cluster), "id", "term", "app"});
  if (!reply.ok()) return reply.status();
  if (reply->type != RedisReply::Type::kArray || reply->elements.size() != 3) {
    return Status::Error("unexpected reply to HMGET on the leader key");
  }
  const auto& e = reply->elements;
  if (e[0].is_nil() || e[1].is_nil()) return std::optional<LeaderRecord>();
  LeaderRecord record;
  record.id = e[0].str;
  try {
    record.term = std::stoull(e[1].str);
  } catch (...) {
    return Status::Error("leader key has a malformed term '" + e[1].str + "'");
  }
  record.app_address = e[2].is_nil() ? "" : e[2].str;
  return std::optional<LeaderRecord>(std::move(record));
}

struct RedisDiscovery::Impl {
  DiscoveryOptions options;
  RedisUrl url;
  std::string nodes_key;
  std::string self_key;
  std::string leader_key;
  std::string started_ms;

  PeersCallback callback;  // set before Start; read only by the thread

  mutable std::mutex mu;
  std::condition_variable wake;
  bool stopping = false;                        // guarded by mu
  std::vector<PeerInfo> peers;                  // guarded by mu
  std::optional<LeaderWish> leader_wish;        // guarded by mu
  bool leader_dirty = false;                    // guarded by mu: write the leader key now
  bool refresh_requested = false;               // guarded by mu: read the peers now
  std::optional<LeaderRecord> leader_to_clear;  // guarded by mu
  std::optional<LeaderRecord> leader_written;   // guarded by mu: what we last stored

  std::atomic<bool> connected{false};
  std::atomic<uint64_t> errors{0};
  std::atomic<size_t> registered{0};
  std::atomic<uint64_t> refused{0};

  std::thread thread;
  std::optional<RedisConnection> redis;  // owned by the thread while it runs, then by Stop()

  // Outage bookkeeping, thread only.
  bool in_outage = false;
  Clock::time_point outage_since;
  bool ever_connected = false;
  // Until then, peers missing from Redis are kept: after a reconnect Redis may have restarted
  // empty, and the others re-register only on their next refresh. Dropping them meanwhile would
  // stop heartbeats to live followers and start needless elections.
  Clock::time_point rebuild_until;

  void Log(const std::string& line) {
    if (options.log) {
      options.log(line);
    } else {
      std::fprintf(stderr, "instaface-discovery: %s\n", line.c_str());
    }
  }

  // Must not hold mu.
  void NoteFailure(const Status& status) {
    errors.fetch_add(1, std::memory_order_relaxed);
    connected.store(false, std::memory_order_relaxed);
    if (!in_outage) {
      in_outage = true;
      outage_since = Clock::now();
      size_t known;
      {
        std::lock_guard<std::mutex> lock(mu);
        known = peers.size();
      }
      Log(status.message() + "; keeping " + std::to_string(known) +
          " last known peers and retrying with backoff");
    }
  }

  void NoteSuccess() {
    connected.store(true, std::memory_order_relaxed);
    if (in_outage) {
      in_outage = false;
      auto down = std::chrono::duration_cast<milliseconds>(Clock::now() - outage_since);
      Log("Redis " + url.Redacted() + " reachable again after " + std::to_string(down.count()) +
          " ms; registered again");
    }
  }

  Status EnsureConnected() {
    if (redis && !redis->broken()) return Status::Ok();
    redis.reset();
    auto connection =
        RedisConnection::Connect(url, options.connect_timeout, options.command_timeout);
    if (!connection.ok()) return connection.status();
    redis.emplace(std::move(*connection));
    if (ever_connected) rebuild_until = Clock::now() + options.ttl;
    ever_connected = true;
    return Status::Ok();
  }

  // Registers this node, prunes expired members and reads the peers: one refresh.
  Status Refresh() {
    // Expiry scores use Redis's clock, not ours, so that agents with skewed clocks agree on who
    // has expired.
    auto time = redis->Command({"TIME"});
    if (!time.ok()) return time.status();
    if (time->type != RedisReply::Type::kArray || time->elements.size() != 2) {
      return Status::Error("unexpected reply to TIME");
    }
    uint64_t now_ms = 0;
    try {
      now_ms =
          std::stoull(time->elements[0].str) * 1000 + std::stoull(time->elements[1].str) / 1000;
    } catch (...) {
      return Status::Error("malformed reply to TIME");
    }
    const std::string ttl = std::to_string(options.ttl.count());
    const std::string now = std::to_string(now_ms);
    auto replies = redis->Pipeline({
        {"ZADD", nodes_key, std::to_string(now_ms + options.ttl.count()), options.self_id},
        {"HSET", self_key, "peer", options.peer_address, "app", options.app_address, "started",
         started_ms, "version", options.version},
        {"PEXPIRE", self_key, ttl},
        {"ZREMRANGEBYSCORE", nodes_key, "-inf", now},
        // The set outlives every member by at most one TTL: the last node to leave cleans up.
        {"PEXPIRE", nodes_key, ttl},
        {"ZRANGEBYSCORE", nodes_key, "(" + now, "+inf"},
    });
    if (!replies.ok()) return replies.status();
    const RedisReply& members = replies->back();
    if (members.type != RedisReply::Type::kArray) return Status::Error("unexpected ZRANGEBYSCORE");
    registered.store(members.elements.size(), std::memory_order_relaxed);

    std::vector<std::string> ids;
    std::vector<std::vector<std::string>> reads;
    for (const auto& m : members.elements) {
      if (m.str == options.self_id) continue;
      ids.push_back(m.str);
      reads.push_back({"HMGET", NodeKey(options.cluster, m.str), "peer", "app"});
    }
    std::vector<PeerInfo> fresh;
    if (!reads.empty()) {
      auto hashes = redis->Pipeline(reads);
      if (!hashes.ok()) return hashes.status();
      for (size_t i = 0; i < ids.size(); ++i) {
        const RedisReply& h = (*hashes)[i];
        // A member whose hash expired first has no address to dial: skip it until it refreshes.
        if (h.type != RedisReply::Type::kArray || h.elements.size() != 2 ||
            h.elements[0].is_nil() || h.elements[0].str.empty()) {
          continue;
        }
        fresh.push_back(
            {ids[i], h.elements[0].str, h.elements[1].is_nil() ? "" : h.elements[1].str});
      }
    }
    bool rebuilding = Clock::now() < rebuild_until;
    bool changed;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (rebuilding) {
        for (const auto& known : peers) {
          bool present = false;
          for (const auto& f : fresh) present = present || f.id == known.id;
          if (!present) fresh.push_back(known);
        }
      }
      std::sort(fresh.begin(), fresh.end(),
                [](const PeerInfo& a, const PeerInfo& b) { return a.id < b.id; });
      changed = fresh != peers;
      if (changed) peers = fresh;
    }
    if (changed && callback) callback(fresh);
    return Status::Ok();
  }

  // Writes or clears the leader key as wished. Must not hold mu.
  Status SyncLeader(bool refresh_due) {
    std::optional<LeaderWish> wish;
    std::optional<LeaderRecord> clear;
    bool dirty;
    {
      std::lock_guard<std::mutex> lock(mu);
      wish = leader_wish;
      clear = leader_to_clear;
      dirty = leader_dirty;
    }
    if (clear) {
      auto r = redis->Command(
          {"EVAL", kClearLeaderScript, "1", leader_key, clear->id, std::to_string(clear->term)});
      if (!r.ok()) return r.status();
      std::lock_guard<std::mutex> lock(mu);
      if (leader_to_clear && leader_to_clear->id == clear->id &&
          leader_to_clear->term == clear->term) {
        leader_to_clear.reset();
      }
    }
    if (wish && (dirty || refresh_due)) {
      auto r = redis->Command({"EVAL", kPublishLeaderScript, "1", leader_key, wish->record.id,
                               std::to_string(wish->record.term), wish->record.app_address,
                               std::to_string(wish->ttl.count())});
      if (!r.ok()) return r.status();
      std::lock_guard<std::mutex> lock(mu);
      if (r->integer == 1) {
        leader_written = wish->record;
      } else {
        refused.fetch_add(1, std::memory_order_relaxed);
      }
      if (leader_wish && leader_wish->record.term == wish->record.term &&
          leader_wish->record.id == wish->record.id) {
        leader_dirty = false;
      }
    }
    return Status::Ok();
  }

  void Run() {
    milliseconds backoff = options.initial_backoff;
    Clock::time_point next_refresh = Clock::now();
    std::unique_lock<std::mutex> lock(mu);
    while (!stopping) {
      if (refresh_requested) {
        refresh_requested = false;
        // Not while backing off from a failure: an early retry would defeat the backoff.
        if (backoff == options.initial_backoff) next_refresh = Clock::now();
      }
      bool refresh_due = Clock::now() >= next_refresh;
      bool leader_work = leader_dirty || leader_to_clear.has_value();
      if (!refresh_due && !leader_work) {
        wake.wait_until(lock, next_refresh, [&] {
          return stopping || leader_dirty || leader_to_clear.has_value() || refresh_requested;
        });
        continue;
      }
      lock.unlock();
      Status status = EnsureConnected();
      if (status.ok() && refresh_due) status = Refresh();
      if (status.ok()) status = SyncLeader(refresh_due);
      if (status.ok()) {
        NoteSuccess();
        backoff = options.initial_backoff;
        if (refresh_due) next_refresh = Clock::now() + options.refresh_interval;
      } else {
        NoteFailure(status);
        // An error reply leaves the connection usable, but the next attempt reconnects anyway:
        // after a failed pipeline we cannot be sure the stream is in step.
        redis.reset();
        next_refresh = Clock::now() + backoff;
        backoff = std::min(backoff * 2, options.max_backoff);
        lock.lock();
        // Leader writes wait for the retry too; without this the loop would spin on them.
        wake.wait_until(lock, next_refresh, [&] { return stopping; });
        continue;
      }
      lock.lock();
    }
  }

  void Deregister() {
    if (!EnsureConnected().ok()) return;
    std::optional<LeaderRecord> ours;
    {
      std::lock_guard<std::mutex> lock(mu);
      ours = leader_written;
    }
    std::vector<std::vector<std::string>> commands = {
        {"ZREM", nodes_key, options.self_id},
        {"DEL", self_key},
    };
    if (ours) {
      commands.push_back(
          {"EVAL", kClearLeaderScript, "1", leader_key, ours->id, std::to_string(ours->term)});
    }
    if (!redis->Pipeline(commands).ok()) errors.fetch_add(1, std::memory_order_relaxed);
    redis.reset();
  }
};

StatusOr<std::unique_ptr<RedisDiscovery>> RedisDiscovery::Create(DiscoveryOptions options) {
  auto url = ParseRedisUrl(options.redis_url);
  if (!url.ok()) return url.status();
  if (options.cluster.empty()) return Status::Error("discovery needs a cluster name");
  if (options.self_id.empty()) return Status::Error("discovery needs this node's id");
  if (options.peer_address.empty())
    return Status::Error("discovery needs this node's peer address");
  if (options.refresh_interval.count() <= 0) return Status::Error("refresh interval must be > 0");
  if (options.ttl <= options.refresh_interval) {
    return Status::Error("registration TTL must be longer than the refresh interval");
  }
  if (options.initial_backoff.count() <= 0) options.initial_backoff = milliseconds(1);
  if (options.max_backoff < options.initial_backoff) options.max_backoff = options.initial_backoff;
  auto impl = std::make_unique<Impl>();
  impl->url = std::move(*url);
  impl->nodes_key = NodesKey(options.cluster);
  impl->self_key = NodeKey(options.cluster, options.self_id);
  impl->leader_key = LeaderKey(options.cluster);
  impl->options = std::move(options);
  return std::unique_ptr<RedisDiscovery>(new RedisDiscovery(std::move(impl)));
}

RedisDiscovery::RedisDiscovery(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

RedisDiscovery::~RedisDiscovery() { Stop(); }

void RedisDiscovery::SetPeersCallback(PeersCallback callback) {
  impl_->callback = std::move(callback);
}

Status RedisDiscovery::Start() {
  if (impl_->thread.joinable()) return Status::Error("discovery already started");
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stopping = false;
  }
  auto since_epoch = std::chrono::system_clock::now().time_since_epoch();
  impl_->started_ms = std::to_string(std::chrono::duration_cast<milliseconds>(since_epoch).count());
  impl_->thread = std::thread([this] { impl_->Run(); });
  return Status::Ok();
}

void RedisDiscovery::Stop() {
  if (!impl_->thread.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->wake.notify_all();
  impl_->thread.join();
  impl_->Deregister();
  impl_->connected.store(false);
}

void RedisDiscovery::RefreshSoon() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->refresh_requested = true;
  }
  impl_->wake.notify_one();
}

std::vector<PeerInfo> RedisDiscovery::Peers() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->peers;
}

void RedisDiscovery::PublishLeader(std::string id, uint64_t term, std::string app_address,
                                   milliseconds ttl) {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->leader_wish =
        LeaderWish{{std::move(id), term, std::move(app_address)}, std::max(ttl, kMinLeaderTtl)};
    impl_->leader_dirty = true;
    impl_->leader_to_clear.reset();
  }
  impl_->wake.notify_all();
}

void RedisDiscovery::ClearLeader() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (!impl_->leader_wish) return;
    impl_->leader_to_clear = impl_->leader_wish->record;
    impl_->leader_wish.reset();
    impl_->leader_dirty = false;
  }
  impl_->wake.notify_all();
}

bool RedisDiscovery::connected() const { return impl_->connected.load(); }
uint64_t RedisDiscovery::redis_errors() const { return impl_->errors.load(); }
size_t RedisDiscovery::registered_peers() const { return impl_->registered.load(); }
uint64_t RedisDiscovery::leader_writes_refused() const { return impl_->refused.load(); }

}  // namespace instaface::discovery
