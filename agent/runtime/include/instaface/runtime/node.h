// Node: one member of an Instaface cluster, running in this process — the heart of
// instaface-agent, and what an app embeds to run the election in-process.
//
// A Node owns one thread that runs a Driver (driver.h): the election core and the order in
// which its output is persisted, published and sent. The Node wires the Driver's seams to the
// real world: the nng transport, the state file, and the status sinks (the shared-memory
// record, control-socket watchers, metrics, Redis's `leader` key). The thread sleeps until the
// Driver's next deadline or until something is queued (a decoded peer message, an admin
// command, a new peer set). The record's liveness is stamped every heartbeat/2, so that readers
// can tell a live agent from a dead or hung one.
//
// Sidecar or embedded is configuration alone: with an empty `shm_name` the record lives in
// this process and view() reads it; with a name, view() reads the same named segment.
//
// Thread safety: every public method may be called from any thread. Admin commands are queued
// to the driver thread and answered through futures. Stop() must not be called from the
// driver thread (it joins it); the destructor calls Stop(false).
#ifndef INSTAFACE_RUNTIME_NODE_H_
#define INSTAFACE_RUNTIME_NODE_H_

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "instaface/common/status.h"
#include "instaface/election/election.h"
#include "instaface/view.h"

namespace instaface::runtime {

// The lease clock, CLOCK_BOOTTIME, is slewed by NTP. Linux lets any daemon move its rate by at
// most 10 % (the tick) + 500 ppm (the frequency); the oscillator's own error is well inside the
// remaining 0.05 %. Each lease is shortened by twice the bound (docs/election.md).
inline constexpr uint32_t kDefaultClockDriftPpm = 100500;
inline constexpr uint32_t kMaxClockDriftPpm = 200000;

struct NodeOptions {
  std::string id;             // 1..64 bytes, unique in the cluster
  std::string cluster;        // 1..64 bytes; also the Redis key namespace
  int cluster_size = 3;       // configured voters; quorum = cluster_size / 2 + 1
  std::string listen_url;     // nng URL the node answers on
  std::string advertise_url;  // nng URL peers dial; empty: listen_url
  std::string app_address;    // published as the leader's app address when this node leads
  std::string secret;         // the cluster secret (HMAC key); non-empty

  // Where peers come from: Redis discovery (when redis_url is set) and/or a static map
  // id -> nng URL. A static entry wins over a discovered one with the same id.
  std::string redis_url;
  std::map<std::string, std::string> static_peers;

  // Publishing. Empty shm_name: an in-process record (embedded mode).
  std::string shm_name;
  mode_t shm_mode = 0660;
  std::string socket_path;  // empty: no control socket
  mode_t socket_mode = 0660;
  std::string metrics_address;  // host:port; empty: no metrics endpoint

  // Empty state_dir keeps (term, vote) in memory only: a restart may then vote twice in a
  // term. Only tests should do that; the agent binary requires a directory.
  std::string state_dir;

  std::chrono::milliseconds heartbeat{500};
  std::chrono::milliseconds election_min{750};
  std::chrono::milliseconds election_max{1000};
  bool pre_vote = true;
  bool check_quorum = true;
  // The most any node's lease clock (CLOCK_BOOTTIME) may run fast or slow, in parts per million
  // of elapsed time; leases are shortened by twice this bound (docs/election.md).
  uint32_t max_clock_drift_ppm = kDefaultClockDriftPpm;

  // Leadership follows a live app (instaface/app_presence.h): with a bound, the node leads and
  // stands only while its app holds its presence lock and stamped within the bound, and hands
  // leadership to a peer as soon as it does not. Zero: the app is not watched. Needs shm_name.
  std::chrono::milliseconds app_liveness{0};

  // The death watch (transport/death_watch.h): a follower sees its leader's process end and
  // stands at once. Its TCP port, on the host of listen_url; 0: any free port, which every
  // message advertises.
  bool death_watch = true;
  uint16_t death_watch_port = 0;

  uint64_t seed = 0;  // 0: from std::random_device
  std::string version = "0.1.0";
};

// OK when `options` is usable, else an error whose message names the first problem.
common::Status ValidateNodeOptions(const NodeOptions& options);

// One peer as this node sees it.
struct PeerReachability {
  std::string id;
  std::string app_address;  // as the peer registered it; empty for a static peer
  bool reachable = false;   // heard from, or acked by, within election_max
  std::optional<std::chrono::nanoseconds> last_heard_ago;  // empty: never heard from
};

// What the node last published, for status requests and tests.
struct NodeStatus {
  election::Status election;
  std::string self_id;
  std::string leader_peer_address;
  std::string leader_app_address;
  bool lease_valid = false;
  size_t peers_known = 0;
  std::vector<PeerReachability> peers;    // refreshed every heartbeat/2
  std::set<std::string> unplugged_peers;  // links cut by SetLinkUnplugged
  uint64_t messages_rejected = 0;
  // The election's evidence of its leader's death (election::Stats), refreshed every
  // heartbeat/2.
  uint64_t leader_deaths_seen = 0;
  uint64_t early_elections = 0;
};

class Node {
 public:
  // Validates, loads durable state, binds, creates the record, and starts the driver thread
  // (and discovery, the control socket and metrics when configured).
  static common::StatusOr<std::unique_ptr<Node>> Start(NodeOptions options);
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Stops everything. With `hand_over`, a leader first transfers leadership and waits (at most
  // election_min) until another leader is known. Then: the control socket is removed, the
  // driver stops (its last act, with `hand_over`: a node that still leads steps down), the
  // node deregisters from Redis, the transport closes (with `hand_over` and a last status that
  // is not a leader's, its death watch's connections end in order, so that peers see it gone at
  // once: death_watch.h) and the named segment is unlinked. Idempotent.
  void Stop(bool hand_over);

  // The published state, as the app reads it (same type in sidecar and embedded mode).
  View view() const;
  NodeStatus status() const;
  // Blocks until `pred(status())` holds or `timeout` passes; returns the last status seen.
  NodeStatus WaitForStatus(const std::function<bool(const NodeStatus&)>& pred,
                           std::chrono::milliseconds timeout) const;

  // Admin commands, run on the driver thread. A future is ready once the core has taken the
  // command and what it changed has been persisted, sent and published (status() shows it);
  // false when it did not apply (not leader, no suitable peer) or the node is stopping.
  std::future<bool> StepDown();
  std::future<bool> TransferLeadership(std::string target);  // empty: the best peer
  std::future<bool> SetUnplugged(bool unplugged);
  // Fault injection on one link: while unplugged, every message to `peer` is dropped before it
  // is sent and every message from it is dropped as it arrives, as a firewall between the two
  // would. The election sees only the silence. False for this node's own id.
  std::future<bool> SetLinkUnplugged(std::string peer, bool unplugged);

  // Replaces the static peers (tests; discovery adds its own).
  void SetStaticPeers(std::map<std::string, std::string> peers);

  // The URL the node actually listens on (port 0 resolved).
  const std::string& listen_url() const;
  const NodeOptions& options() const;

 private:
  class Impl;
  explicit Node(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace instaface::runtime

#endif  // INSTAFACE_RUNTIME_NODE_H_
