// ChaosNetwork: the chaos suite's hosts, as network namespaces of its own. A hub namespace holds
// a bridge at 10.77.0.1, where MariaDB, Redis and the suite itself (its writers and its lease
// sampler) live; each node has a namespace joined to the bridge by a veth pair, at 10.77.0.(11+i),
// for its agent and its graphserver. Nothing leaves these namespaces: the subnet exists only
// inside them, so it cannot clash with the machine's.
//
// Faults act inside a node's namespace, so they touch only that node: its link taken down, or an
// nftables table of its own (`inet chaos`) that drops packets silently or refuses them (a TCP
// reset, an ICMP port unreachable), to or from chosen addresses, in one direction or both,
// optionally only for one port on the far side. Heal() removes them. Everything is deleted on
// destruction (deleting a namespace deletes its links and rules), even when the run fails.
//
// Needs root, `ip` (iproute2) and `nft` (nftables). Thread safety: none; the suite's main thread
// owns the network.
#ifndef INSTAFACE_TESTS_CHAOS_CHAOS_NETWORK_H_
#define INSTAFACE_TESTS_CHAOS_CHAOS_NETWORK_H_

#include <cstdint>
#include <string>
#include <vector>

namespace instaface::testing {

// One rule set for a node: packets between it and `peers` stop.
struct Cut {
  std::vector<std::string> peers;  // addresses; empty: every address but loopback
  bool inbound = true;             // packets from the peers
  bool outbound = true;            // packets to the peers
  bool reject = false;             // refused (reset / unreachable) instead of dropped silently
  uint16_t port = 0;               // only this port on the peers' side (0: every port)
  // Only TCP segments whose payload starts with these bytes (empty: every packet); e.g. one
  // command of a database protocol, every copy of it, retransmissions included.
  std::string payload_prefix;
};

class ChaosNetwork {
 public:
  ChaosNetwork();
  ~ChaosNetwork();
  ChaosNetwork(const ChaosNetwork&) = delete;
  ChaosNetwork& operator=(const ChaosNetwork&) = delete;

  // Makes the hub and `nodes` node namespaces. False with *error on failure (not root, no `ip`).
  bool Create(int nodes, std::string* error);
  // The calling thread joins the hub; threads and children it starts afterwards are there too.
  bool EnterHub(std::string* error);

  int size() const { return nodes_; }
  static const char* hub_host() { return "10.77.0.1"; }
  std::string node_host(int i) const;
  std::string node_netns(int i) const;  // /run/netns/NAME, for SubprocessOptions::netns
  std::vector<std::string> node_hosts() const;

  // Node i's rules become `cuts` (replacing any it had).
  bool Apply(int i, const std::vector<Cut>& cuts, std::string* error);
  // Node i's link to the bridge down (every connection fails: no route) or up again.
  bool SetLink(int i, bool up, std::string* error);
  // Node i's link up and its rules gone.
  bool Heal(int i, std::string* error);

 private:
  bool Run(const std::vector<std::string>& argv, const std::string& netns, std::string* error);
  std::string NodeName(int i) const;
  std::string NodeLink(int i) const;  // the node's end of its veth pair

  std::string prefix_;  // unique per process: names of namespaces and links
  int nodes_ = 0;
  bool hub_made_ = false;
  std::vector<bool> made_;
};

}  // namespace instaface::testing

#endif  // INSTAFACE_TESTS_CHAOS_CHAOS_NETWORK_H_
