#include "instaface/graphserver/cluster_view.h"

#include <algorithm>

namespace instaface::graphserver {

using nlohmann::json;

namespace {

std::string WithoutTrailingSlash(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

json UrlOrNull(const std::string& url) { return url.empty() ? json(nullptr) : json(url); }

void FillFromSnapshot(const Snapshot& s, ClusterView& v) {
  v.self_id = s.self_id;
  v.role = RoleName(s.role);
  v.term = s.term;
  v.leader_id = s.leader_id;
  v.leader_url = WithoutTrailingSlash(s.leader_app_address);
  v.lease_valid = s.lease_valid && !s.stale;
  v.stale = s.stale;
  if (v.lease_valid) {
    const uint64_t now = LeaseClockNowNs();
    v.lease_remaining_ms =
        s.lease_until_ns > now ? static_cast<int64_t>((s.lease_until_ns - now) / 1000000) : 0;
  }
}

}  // namespace

std::vector<std::string> ClusterView::UnpluggedUrls() const {
  std::vector<std::string> out;
  if (unplugged) out.push_back(self_url);
  for (const PeerView& p : peers) {
    if (p.unplugged) out.push_back(p.url);
  }
  return out;
}

std::vector<std::string> ClusterView::UnreachableUrls() const {
  std::vector<std::string> out;
  for (const PeerView& p : peers) {
    if (!p.reachable) out.push_back(p.url);
  }
  return out;
}

bool ClusterView::IsSelf(const std::string& node) const {
  const std::string n = WithoutTrailingSlash(node);
  return n == self_url || (!self_id.empty() && n == self_id);
}

const PeerView* ClusterView::FindPeer(const std::string& node) const {
  const std::string n = WithoutTrailingSlash(node);
  for (const PeerView& p : peers) {
    if (p.url == n || p.id == n) return &p;
  }
  return nullptr;
}

ClusterView ClusterFromSnapshot(const Snapshot& snapshot, const std::string& self_url) {
  ClusterView v;
  v.self_url = WithoutTrailingSlash(self_url);
  FillFromSnapshot(snapshot, v);
  return v;
}

ClusterView ClusterFromAgent(const Snapshot& snapshot, const control::AgentStatus& agent,
                             const std::string& self_url) {
  ClusterView v;
  v.self_url = WithoutTrailingSlash(self_url);
  FillFromSnapshot(snapshot, v);
  // Role, term and leader come from the record, which is what the app acts on; the agent adds
  // its finer role name (pre-candidate) when it speaks of the same term, and the peers.
  if (v.self_id.empty()) v.self_id = agent.self_id;
  if (!agent.role.empty() && agent.term == snapshot.term) v.role = agent.role;
  v.unplugged = agent.unplugged;
  // Heartbeats run between the leader and each follower only, so silence is evidence only
  // from a peer this node should be hearing: any peer while it leads or campaigns, its leader
  // while it follows. Two followers never talk; neither calls the other unreachable for that.
  const bool hears_everyone = agent.role != "follower";
  for (const control::PeerStatus& p : agent.peers) {
    PeerView peer;
    peer.id = p.id;
    peer.url = p.app_address.empty() ? p.id : WithoutTrailingSlash(p.app_address);
    peer.last_heard_ms = p.last_heard_ms;
    peer.unplugged = std::find(agent.unplugged_peers.begin(), agent.unplugged_peers.end(), p.id) !=
                     agent.unplugged_peers.end();
    const bool expected = hears_everyone || p.id == agent.leader_id;
    peer.reachable = !peer.unplugged && !v.unplugged && (p.reachable || !expected);
    v.peers.push_back(std::move(peer));
  }
  return v;
}

json ClusterStateJson(const ClusterView& v) {
  json followers = json::array();
  json nodes = json::array();
  auto role_of = [&](const std::string& id) -> std::string {
    if (!v.leader_id.empty() && id == v.leader_id) return "leader";
    return v.leader_id.empty() ? "unknown" : "follower";
  };
  if (v.self_url != v.leader_url) followers.push_back(v.self_url);
  nodes.push_back({{"id", v.self_id},
                   {"url", v.self_url},
                   {"self", true},
                   {"role", v.role},
                   {"reachable", true},
                   {"unplugged", v.unplugged}});
  for (const PeerView& p : v.peers) {
    if (p.url != v.leader_url) followers.push_back(p.url);
    nodes.push_back({{"id", p.id},
                     {"url", p.url},
                     {"self", false},
                     {"role", role_of(p.id)},
                     {"reachable", p.reachable},
                     {"unplugged", p.unplugged}});
  }
  return {{"leader", UrlOrNull(v.leader_url)},
          {"followers", std::move(followers)},
          {"unreachable", v.UnreachableUrls()},
          {"unplugged", v.UnpluggedUrls()},
          {"self", v.self_url},
          {"term", v.term},
          {"nodes", std::move(nodes)}};
}

json StatusEventJson(const ClusterView& v) {
  json peers = json::array();
  for (const PeerView& p : v.peers) {
    peers.push_back({{"id", p.id},
                     {"url", p.url},
                     {"reachable", p.reachable},
                     {"unplugged", p.unplugged},
                     {"last_heard_ms", p.last_heard_ms ? json(*p.last_heard_ms) : json(nullptr)}});
  }
  json unplugged_peers = json::array();
  for (const PeerView& p : v.peers) {
    if (p.unplugged) unplugged_peers.push_back(p.url);
  }
  return {
      {"node", v.self_url},
      {"id", v.self_id},
      {"role", v.role},
      {"term", v.term},
      {"leader", UrlOrNull(v.leader_url)},
      {"leader_id", v.leader_id},
      {"lease_valid", v.lease_valid},
      {"lease_remaining_ms", v.lease_remaining_ms ? json(*v.lease_remaining_ms) : json(nullptr)},
      {"stale", v.stale},
      {"unplugged", v.unplugged},
      {"unplugged_peers", std::move(unplugged_peers)},
      {"peers", std::move(peers)}};
}

}  // namespace instaface::graphserver
