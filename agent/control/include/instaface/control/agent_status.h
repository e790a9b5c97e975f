// AgentStatus: what the control socket's `status` and `watch` answer, as a type. The agent fills
// it, the server renders it with ToJson, and clients (instafacectl, the graphserver) read it back
// with ParseAgentStatus, which checks every field it reads: the reply comes over a socket, so it
// is outside input like any other.
//
// Thread safety: plain values and pure functions.
#ifndef INSTAFACE_CONTROL_AGENT_STATUS_H_
#define INSTAFACE_CONTROL_AGENT_STATUS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "instaface/common/status.h"

namespace instaface::control {

// One peer as the agent sees it.
struct PeerStatus {
  std::string id;
  std::string app_address;  // the peer's app (http://host:port), as it registered; may be empty
  // Heard from (or acked by) within the election timeout: the link carries heartbeats now.
  bool reachable = false;
  // How long ago, in ms, this agent last heard from the peer; empty when it never has.
  std::optional<int64_t> last_heard_ms;
  friend bool operator==(const PeerStatus& a, const PeerStatus& b) {
    return a.id == b.id && a.app_address == b.app_address && a.reachable == b.reachable &&
           a.last_heard_ms == b.last_heard_ms;
  }
};

struct AgentStatus {
  std::string role;  // follower, pre-candidate, candidate, leader
  uint64_t term = 0;
  std::string self_id;
  std::string leader_id;  // empty: no known leader
  std::string leader_app_address;
  std::string leader_peer_address;
  bool lease_valid = false;
  bool stale = false;  // the agent answers, so false; kept for clients that read the SDK's field
  bool unplugged = false;                    // the whole node (fault injection)
  std::vector<std::string> unplugged_peers;  // links cut by fault injection, by peer id
  bool transferring = false;
  std::vector<PeerStatus> peers;  // every peer the agent knows, by id
  uint64_t messages_rejected = 0;
  // Times this agent saw the process of the leader it followed end (transport/death_watch.h),
  // and elections it started early on that evidence. Optional in the JSON (older agents).
  uint64_t leader_deaths_seen = 0;
  uint64_t early_elections = 0;
  friend bool operator==(const AgentStatus& a, const AgentStatus& b) {
    return a.role == b.role && a.term == b.term && a.self_id == b.self_id &&
           a.leader_id == b.leader_id && a.leader_app_address == b.leader_app_address &&
           a.leader_peer_address == b.leader_peer_address && a.lease_valid == b.lease_valid &&
           a.stale == b.stale && a.unplugged == b.unplugged &&
           a.unplugged_peers == b.unplugged_peers && a.transferring == b.transferring &&
           a.peers == b.peers && a.messages_rejected == b.messages_rejected &&
           a.leader_deaths_seen == b.leader_deaths_seen && a.early_elections == b.early_elections;
  }
};

// {"role":..., "term":..., "self_id":..., "leader_id":..., "leader_app_address":...,
//  "leader_peer_address":..., "lease_valid":..., "stale":..., "unplugged":...,
//  "unplugged_peers":[ids], "transferring":...,
//  "peers":[{"id":..., "app_address":..., "reachable":..., "last_heard_ms":...|null}],
//  "messages_rejected":...}
nlohmann::json ToJson(const AgentStatus& status);
// The inverse of ToJson. Unknown keys are ignored (a newer agent may add some); a missing or
// mistyped key, or more than kMaxPeers peers, is an error naming the key. "unplugged_peers" and
// a peer's "app_address" may be absent (an agent from before link faults), never mistyped.
common::StatusOr<AgentStatus> ParseAgentStatus(const nlohmann::json& json);

inline constexpr size_t kMaxPeers = 1024;

}  // namespace instaface::control

#endif  // INSTAFACE_CONTROL_AGENT_STATUS_H_
