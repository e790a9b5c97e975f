// RedisDiscovery: how an agent finds the other agents of its cluster, and tells observers who
// leads. Redis is discovery, not the source of truth: nothing read here decides an election.
//
// Keys, all under "instaface:<cluster>:" (see KeyPrefix):
//   nodes        sorted set; member = node id, score = registration expiry (Redis TIME, ms)
//   node:<id>    hash {peer, app, started, version} with a TTL of `ttl`
//   leader       hash {id, term, app} with a short TTL, written only if its stored term is not
//                higher than ours (a Lua script), so a deposed leader cannot overwrite a newer one
//
// Start() runs a thread that every `refresh_interval` re-registers this node, prunes expired
// members and reads the peers. When Redis is unreachable it keeps the last known peers,
// reconnects with exponential backoff (capped at `max_backoff`), logs once per outage and once
// on recovery, and re-registers on reconnect. For one `ttl` after a reconnect, peers missing
// from Redis are kept (Redis may have restarted empty and the others not yet re-registered).
//
// Thread safety: all public methods may be called from any thread, except that Start() and
// Stop() must not race each other. The peers callback runs on the discovery thread; it must not
// call Stop().
#ifndef INSTAFACE_DISCOVERY_REDIS_DISCOVERY_H_
#define INSTAFACE_DISCOVERY_REDIS_DISCOVERY_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "instaface/common/status.h"
#include "instaface/discovery/redis_connection.h"
#include "instaface/discovery/redis_url.h"

namespace instaface::discovery {

struct PeerInfo {
  std::string id;
  std::string peer_address;  // nng URL the peer listens on
  std::string app_address;   // e.g. http://10.0.0.5:8080
  friend bool operator==(const PeerInfo& a, const PeerInfo& b) {
    return a.id == b.id && a.peer_address == b.peer_address && a.app_address == b.app_address;
  }
  friend bool operator!=(const PeerInfo& a, const PeerInfo& b) { return !(a == b); }
};

struct LeaderRecord {
  std::string id;
  uint64_t term = 0;
  std::string app_address;
};

struct DiscoveryOptions {
  std::string redis_url = "redis://127.0.0.1:6379";
  std::string cluster;
  std::string self_id;
  std::string peer_address;
  std::string app_address;
  std::string version;
  std::chrono::milliseconds ttl{5000};
  std::chrono::milliseconds refresh_interval{1000};
  std::chrono::milliseconds connect_timeout{500};
  std::chrono::milliseconds command_timeout{500};
  std::chrono::milliseconds initial_backoff{100};
  std::chrono::milliseconds max_backoff{2000};
  // Where the once-per-outage messages go; stderr when empty.
  std::function<void(std::string_view line)> log;
};

// "instaface:<cluster>:", and the three keys under it.
std::string KeyPrefix(std::string_view cluster);
std::string NodesKey(std::string_view cluster);
std::string NodeKey(std::string_view cluster, std::string_view id);
std::string LeaderKey(std::string_view cluster);

// Reads the leader key (for observers and tests); nullopt when absent or expired.
common::StatusOr<std::optional<LeaderRecord>> ReadLeader(RedisConnection& redis,
                                                         std::string_view cluster);

class RedisDiscovery {
 public:
  using PeersCallback = std::function<void(const std::vector<PeerInfo>& peers)>;

  // Checks the options (URL, non-empty cluster/id/peer address, ttl > refresh_interval) and
  // connects to nothing yet.
  static common::StatusOr<std::unique_ptr<RedisDiscovery>> Create(DiscoveryOptions options);

  ~RedisDiscovery();  // Stop()
  RedisDiscovery(const RedisDiscovery&) = delete;
  RedisDiscovery& operator=(const RedisDiscovery&) = delete;

  // Called on the discovery thread whenever the peer set (ids or addresses) changes. Set it
  // before Start().
  void SetPeersCallback(PeersCallback callback);

  // Starts the thread. Returns at once; Redis being down is not an error (the thread retries).
  common::Status Start();
  // Stops the thread, then deregisters (ZREM, DEL, and the leader key if it is still ours)
  // within one command timeout, best effort. Idempotent.
  void Stop();

  // The last known peers, excluding this node, sorted by id.
  std::vector<PeerInfo> Peers() const;

  // Asks the discovery thread to write the leader key now and to refresh it every
  // refresh_interval while this node leads. ttl is clamped to at least 2 s. Never blocks on
  // Redis: the write happens on the discovery thread.
  void PublishLeader(std::string id, uint64_t term, std::string app_address,
                     std::chrono::milliseconds ttl);
  // Stops refreshing the leader key and deletes it if it still names (id, term) we wrote.
  void ClearLeader();
  // Asks for a peer refresh now instead of at the next refresh_interval: a message from a
  // node we do not know yet means it has registered since our last read. Never blocks.
  void RefreshSoon();

  // For metrics and health.
  bool connected() const;
  uint64_t redis_errors() const;    // failed connects and commands, monotonically increasing
  size_t registered_peers() const;  // live members of `nodes`, this node included
  // Leader writes that Redis refused because it already held a higher term.
  uint64_t leader_writes_refused() const;

 private:
  struct Impl;
  explicit RedisDiscovery(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace instaface::discovery

#endif  // INSTAFACE_DISCOVERY_REDIS_DISCOVERY_H_
