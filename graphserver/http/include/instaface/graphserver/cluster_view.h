// ClusterView: the cluster as this node's agent sees it, with every node named by its app URL
// (http://host:port), which is how the original Instaface names nodes and what its clients
// send back (the Monitor's PUT /api/graph/unplugged {"node": <url>}). It backs
// /api/graph/unreachable, /api/graph/unplugged, /api/timeline/cluster and the console's status
// events, so that all of them say the same thing.
//
// Thread safety: plain values and pure functions.
#ifndef INSTAFACE_GRAPHSERVER_CLUSTER_VIEW_H_
#define INSTAFACE_GRAPHSERVER_CLUSTER_VIEW_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "instaface/control/agent_status.h"
#include "instaface/view.h"

namespace instaface::graphserver {

struct PeerView {
  std::string id;
  std::string url;  // the peer's app address; its id when it registered none
  // Not known to be cut off from this node: heard within the election timeout, or a peer this
  // node has no reason to hear from (a follower hears only its leader). False for a cut link
  // and while this node is unplugged.
  bool reachable = false;
  bool unplugged = false;  // this node has cut its link to the peer
  std::optional<int64_t> last_heard_ms;
};

struct ClusterView {
  std::string self_id;
  std::string self_url;
  std::string role;  // this node's: follower, pre-candidate, candidate, leader, unknown
  uint64_t term = 0;
  std::string leader_id;   // empty: none known
  std::string leader_url;  // empty: none known
  bool lease_valid = false;
  std::optional<int64_t> lease_remaining_ms;  // while this node holds a lease
  bool stale = false;      // the agent is not answering: only the shared memory is known
  bool unplugged = false;  // this whole node (fault injection)
  std::vector<PeerView> peers;

  // URLs of the nodes this one treats as unplugged: itself when it is, and each cut link.
  std::vector<std::string> UnpluggedUrls() const;
  // URLs of the peers it has not heard from within the election timeout.
  std::vector<std::string> UnreachableUrls() const;
  // The peer named by `node`, an app URL (a trailing '/' ignored) or an agent id; null if none.
  const PeerView* FindPeer(const std::string& node) const;
  bool IsSelf(const std::string& node) const;
};

// From the shared memory alone (no agent status: the agent is gone or was not asked).
ClusterView ClusterFromSnapshot(const Snapshot& snapshot, const std::string& self_url);
// From the shared memory and the agent's status over its control socket.
ClusterView ClusterFromAgent(const Snapshot& snapshot, const control::AgentStatus& agent,
                             const std::string& self_url);

// GET /api/timeline/cluster: the original's ClusterState {leader, followers, unreachable,
// unplugged} (URLs; leader null when none), plus "nodes", every node with its id and what this
// node knows of it.
nlohmann::json ClusterStateJson(const ClusterView& view);
// The console's "status" event (docs/graphserver.md, "Console events").
nlohmann::json StatusEventJson(const ClusterView& view);

}  // namespace instaface::graphserver

#endif  // INSTAFACE_GRAPHSERVER_CLUSTER_VIEW_H_
