#include "chaos_network.h"

#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <fstream>
#include <optional>

#include "support/subprocess.h"
#include "support/temp_dir.h"

namespace instaface::testing {
namespace {

std::string Joined(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

// The nftables rules of one cut, for one hook: `far` is "saddr"/"sport" on input and
// "daddr"/"dport" on output.
std::string Rules(const Cut& cut, const char* far_addr, const char* far_port) {
  std::string match;
  if (!cut.peers.empty())
    match += std::string("ip ") + far_addr + " { " + Joined(cut.peers) + " } ";
  if (cut.port != 0) match += std::string("tcp ") + far_port + " " + std::to_string(cut.port) + " ";
  if (!cut.payload_prefix.empty()) {
    // @ih: the payload after the transport header, whatever its options' length.
    static const char kHex[] = "0123456789abcdef";
    std::string hex;
    for (unsigned char c : cut.payload_prefix) {
      hex += kHex[c >> 4];
      hex += kHex[c & 15];
    }
    match += "meta l4proto tcp @ih,0," + std::to_string(cut.payload_prefix.size() * 8) + " 0x" +
             hex + " ";
  }
  if (!cut.reject) return "    " + match + "counter drop\n";
  if (cut.port != 0) return "    " + match + "reject with tcp reset\n";
  return "    " + match + "meta l4proto tcp reject with tcp reset\n    " + match +
         "reject with icmpx type port-unreachable\n";
}

}  // namespace

ChaosNetwork::ChaosNetwork() : prefix_("ifx" + std::to_string(getpid() % 100000)) {}

ChaosNetwork::~ChaosNetwork() {
  // Deleting a namespace deletes the links in it, and with a veth end its peer.
  std::string ignored;
  for (int i = 0; i < nodes_; ++i) {
    if (made_[static_cast<size_t>(i)]) Run({"ip", "netns", "del", NodeName(i)}, "", &ignored);
  }
  if (hub_made_) Run({"ip", "netns", "del", prefix_ + "-hub"}, "", &ignored);
}

std::string ChaosNetwork::NodeName(int i) const { return prefix_ + "-n" + std::to_string(i); }
std::string ChaosNetwork::NodeLink(int i) const { return prefix_ + "n" + std::to_string(i); }
std::string ChaosNetwork::node_host(int i) const { return "10.77.0." + std::to_string(11 + i); }
std::string ChaosNetwork::node_netns(int i) const { return "/run/netns/" + NodeName(i); }

std::vector<std::string> ChaosNetwork::node_hosts() const {
  std::vector<std::string> hosts;
  for (int i = 0; i < nodes_; ++i) hosts.push_back(node_host(i));
  return hosts;
}

bool ChaosNetwork::Run(const std::vector<std::string>& argv, const std::string& netns,
                       std::string* error) {
  static TempDir* const dir = new TempDir("ifx-net");  // lives as long as the process
  SubprocessOptions options;
  options.argv = argv;
  options.netns = netns;
  options.stderr_path = dir->File("command.err");
  Subprocess command(options);
  std::optional<ExitStatus> status;
  if (command.ok()) status = command.Wait(std::chrono::seconds(20));
  if (status && status->success()) return true;
  std::string line;
  for (const std::string& arg : argv) line += (line.empty() ? "" : " ") + arg;
  if (error) {
    *error = line + ": " +
             (!command.ok() ? command.error()
              : status      ? status->ToString() + ": " + ReadFileOrEmpty(options.stderr_path)
                            : std::string("timed out"));
  }
  return false;
}

bool ChaosNetwork::Create(int nodes, std::string* error) {
  if (geteuid() != 0) {
    if (error) *error = "network namespaces need root (ip netns add)";
    return false;
  }
  const std::string hub = prefix_ + "-hub";
  // A namespace left by a run of the same pid that was killed before it could clean up.
  std::string ignored;
  Run({"ip", "netns", "del", hub}, "", &ignored);
  if (!Run({"ip", "netns", "add", hub}, "", error)) return false;
  hub_made_ = true;
  const std::vector<std::vector<std::string>> hub_setup = {
      {"ip", "-n", hub, "link", "set", "lo", "up"},
      {"ip", "-n", hub, "link", "add", "br0", "type", "bridge"},
      {"ip", "-n", hub, "addr", "add", std::string(hub_host()) + "/24", "dev", "br0"},
      {"ip", "-n", hub, "link", "set", "br0", "up"}};
  for (const auto& argv : hub_setup) {
    if (!Run(argv, "", error)) return false;
  }
  nodes_ = nodes;
  made_.assign(static_cast<size_t>(nodes), false);
  for (int i = 0; i < nodes; ++i) {
    const std::string ns = NodeName(i);
    const std::string hub_end = prefix_ + "h" + std::to_string(i);
    Run({"ip", "netns", "del", ns}, "", &ignored);
    Run({"ip", "link", "del", hub_end}, "", &ignored);
    if (!Run({"ip", "netns", "add", ns}, "", error)) return false;
    made_[static_cast<size_t>(i)] = true;
    const std::vector<std::vector<std::string>> setup = {
        {"ip", "link", "add", hub_end, "type", "veth", "peer", "name", NodeLink(i)},
        {"ip", "link", "set", hub_end, "netns", hub},
        {"ip", "link", "set", NodeLink(i), "netns", ns},
        {"ip", "-n", hub, "link", "set", hub_end, "master", "br0", "up"},
        {"ip", "-n", ns, "link", "set", "lo", "up"},
        {"ip", "-n", ns, "addr", "add", node_host(i) + "/24", "dev", NodeLink(i)},
        {"ip", "-n", ns, "link", "set", NodeLink(i), "up"}};
    for (const auto& argv : setup) {
      if (!Run(argv, "", error)) return false;
    }
  }
  return true;
}

bool ChaosNetwork::EnterHub(std::string* error) {
  const std::string path = "/run/netns/" + prefix_ + "-hub";
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
    if (error) *error = "joining " + path + ": " + strerror(errno);
    if (fd >= 0) close(fd);
    return false;
  }
  close(fd);
  return true;
}

bool ChaosNetwork::Apply(int i, const std::vector<Cut>& cuts, std::string* error) {
  std::string input, output;
  for (const Cut& cut : cuts) {
    if (cut.inbound) input += Rules(cut, "saddr", "sport");
    if (cut.outbound) output += Rules(cut, "daddr", "dport");
  }
  // Declaring the table first makes the delete succeed when there was none: the file replaces
  // the node's rules in one transaction.
  const std::string ruleset =
      "table inet chaos\ndelete table inet chaos\ntable inet chaos {\n"
      "  chain input {\n    type filter hook input priority 0; policy accept;\n"
      "    iif \"lo\" accept\n" +
      input +
      "  }\n  chain output {\n    type filter hook output priority 0; policy accept;\n"
      "    oif \"lo\" accept\n" +
      output + "  }\n}\n";
  static TempDir* const dir = new TempDir("ifx-nft");  // lives as long as the process
  const std::string file = dir->File(NodeName(i) + ".nft");
  {
    std::ofstream out(file);
    out << ruleset;
  }
  return Run({"nft", "-f", file}, node_netns(i), error);
}

bool ChaosNetwork::SetLink(int i, bool up, std::string* error) {
  return Run({"ip", "-n", NodeName(i), "link", "set", NodeLink(i), up ? "up" : "down"}, "", error);
}

bool ChaosNetwork::Heal(int i, std::string* error) {
  if (!SetLink(i, true, error)) return false;
  return Apply(i, {}, error);
}

}  // namespace instaface::testing
