#include "instaface/control/agent_status.h"

#include <limits>

namespace instaface::control {

using common::Status;
using common::StatusOr;

namespace {

using nlohmann::json;

// Reads `key` of `object` into `out` if it has the JSON type `Json` asks for.
template <typename T>
Status Read(const json& object, const char* key, T& out) {
  auto it = object.find(key);
  if (it == object.end()) return Status::Error(std::string("status has no \"") + key + "\"");
  bool typed = false;
  if constexpr (std::is_same_v<T, bool>) {
    typed = it->is_boolean();
  } else if constexpr (std::is_same_v<T, std::string>) {
    typed = it->is_string();
  } else if constexpr (std::is_same_v<T, uint64_t>) {
    typed = it->is_number_unsigned();
  }
  if (!typed) return Status::Error(std::string("status \"") + key + "\" has the wrong type");
  out = it->get<T>();
  return Status::Ok();
}

}  // namespace

json ToJson(const AgentStatus& s) {
  json peers = json::array();
  for (const PeerStatus& p : s.peers) {
    peers.push_back({{"id", p.id},
                     {"app_address", p.app_address},
                     {"reachable", p.reachable},
                     {"last_heard_ms", p.last_heard_ms ? json(*p.last_heard_ms) : json(nullptr)}});
  }
  return {{"role", s.role},
          {"term", s.term},
          {"self_id", s.self_id},
          {"leader_id", s.leader_id},
          {"leader_app_address", s.leader_app_address},
          {"leader_peer_address", s.leader_peer_address},
          {"lease_valid", s.lease_valid},
          {"stale", s.stale},
          {"unplugged", s.unplugged},
          {"unplugged_peers", s.unplugged_peers},
          {"transferring", s.transferring},
          {"peers", std::move(peers)},
          {"messages_rejected", s.messages_rejected},
          {"leader_deaths_seen", s.leader_deaths_seen},
          {"early_elections", s.early_elections}};
}

StatusOr<AgentStatus> ParseAgentStatus(const json& j) {
  if (!j.is_object()) return Status::Error("status is not a JSON object");
  AgentStatus s;
  for (Status st :
       {Read(j, "role", s.role), Read(j, "term", s.term), Read(j, "self_id", s.self_id),
        Read(j, "leader_id", s.leader_id), Read(j, "leader_app_address", s.leader_app_address),
        Read(j, "leader_peer_address", s.leader_peer_address),
        Read(j, "lease_valid", s.lease_valid), Read(j, "stale", s.stale),
        Read(j, "unplugged", s.unplugged), Read(j, "transferring", s.transferring),
        Read(j, "messages_rejected", s.messages_rejected)}) {
    if (!st.ok()) return st;
  }
  for (auto [key, field] : {std::pair{"leader_deaths_seen", &s.leader_deaths_seen},
                            std::pair{"early_elections", &s.early_elections}}) {
    if (!j.contains(key)) continue;
    if (Status st = Read(j, key, *field); !st.ok()) return st;
  }
  if (auto cut = j.find("unplugged_peers"); cut != j.end()) {
    if (!cut->is_array()) return Status::Error("status \"unplugged_peers\" is not an array");
    if (cut->size() > kMaxPeers) return Status::Error("status lists too many unplugged peers");
    for (const json& id : *cut) {
      if (!id.is_string()) return Status::Error("status \"unplugged_peers\" holds a non-string");
      s.unplugged_peers.push_back(id.get<std::string>());
    }
  }
  auto peers = j.find("peers");
  if (peers == j.end() || !peers->is_array()) {
    return Status::Error("status \"peers\" is missing or not an array");
  }
  if (peers->size() > kMaxPeers) return Status::Error("status lists too many peers");
  for (const json& p : *peers) {
    if (!p.is_object()) return Status::Error("status peer is not an object");
    PeerStatus peer;
    if (Status st = Read(p, "id", peer.id); !st.ok()) return st;
    if (Status st = Read(p, "reachable", peer.reachable); !st.ok()) return st;
    if (p.contains("app_address")) {
      if (Status st = Read(p, "app_address", peer.app_address); !st.ok()) return st;
    }
    auto heard = p.find("last_heard_ms");
    if (heard == p.end()) return Status::Error("status peer has no \"last_heard_ms\"");
    if (heard->is_number_integer()) {
      const auto ms = heard->get<int64_t>();
      if (ms < 0) return Status::Error("status peer \"last_heard_ms\" is negative");
      peer.last_heard_ms = ms;
    } else if (!heard->is_null()) {
      return Status::Error("status peer \"last_heard_ms\" has the wrong type");
    }
    s.peers.push_back(std::move(peer));
  }
  return s;
}

}  // namespace instaface::control
