// The Node behind its control socket: the requests instafacectl sends, answered by a running
// three-node cluster in this process.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "instaface/control/control_client.h"
#include "instaface/runtime/node.h"

namespace instaface::runtime {
namespace {

using namespace std::chrono_literals;
using control::Command;
using control::ControlClient;
using control::Request;

constexpr auto kLiveness = 15s;

Request Req(Command command) {
  Request r;
  r.command = command;
  return r;
}

class NodeControlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/instaface-ctl-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    for (const std::string id : {"a", "b", "c"}) {
      NodeOptions o;
      o.id = id;
      o.cluster = "graph";
      o.secret = "s3cret";
      o.listen_url = Url(id);
      o.state_dir = dir_ + "/state-" + id;
      o.socket_path = Socket(id);
      o.heartbeat = 30ms;
      o.election_min = 150ms;
      o.election_max = 300ms;
      for (const std::string peer : {"a", "b", "c"}) {
        if (peer != id) o.static_peers[peer] = Url(peer);
      }
      auto node = Node::Start(o);
      ASSERT_TRUE(node.ok()) << node.status().message();
      nodes_[id] = std::move(*node);
    }
  }
  void TearDown() override {
    nodes_.clear();
    std::filesystem::remove_all(dir_);
  }
  std::string Url(const std::string& id) const { return "ipc://" + dir_ + "/" + id + ".ipc"; }
  std::string Socket(const std::string& id) const { return dir_ + "/" + id + ".sock"; }

  std::string WaitForLeader() {
    const auto deadline = std::chrono::steady_clock::now() + kLiveness;
    while (std::chrono::steady_clock::now() < deadline) {
      for (const auto& [id, node] : nodes_) {
        if (node->status().election.role == election::Role::kLeader) return id;
      }
      std::this_thread::sleep_for(5ms);
    }
    return {};
  }

  nlohmann::json Call(const std::string& id, Request request) {
    auto client = ControlClient::Connect(Socket(id), 5s);
    EXPECT_TRUE(client.ok()) << client.status().message();
    if (!client.ok()) return {};
    auto reply = client->Call(request, 5s);
    EXPECT_TRUE(reply.ok()) << reply.status().message();
    return reply.ok() ? *reply : nlohmann::json{};
  }

  std::string dir_;
  std::map<std::string, std::unique_ptr<Node>> nodes_;
};

TEST_F(NodeControlTest, StatusHasTheDocumentedKeys) {
  const std::string leader = WaitForLeader();
  ASSERT_FALSE(leader.empty());
  const nlohmann::json status = Call(leader, Req(Command::kStatus));
  for (const char* key :
       {"role", "term", "leader_id", "leader_app_address", "lease_valid", "stale"}) {
    EXPECT_TRUE(status.contains(key)) << key << " in " << status.dump();
  }
  EXPECT_EQ(status.value("role", ""), "leader");
  EXPECT_EQ(status.value("leader_id", ""), leader);
  EXPECT_EQ(status.value("term", 0u), nodes_[leader]->status().election.term);
}

TEST_F(NodeControlTest, AdminCommandsReachTheElection) {
  const std::string leader = WaitForLeader();
  ASSERT_FALSE(leader.empty());
  const std::string follower = leader == "a" ? "b" : "a";
  EXPECT_FALSE(Call(follower, Req(Command::kStepDown)).value("ok", true));

  // A watcher sees the transfer it asked for.
  auto watcher = ControlClient::Connect(Socket(follower), 5s);
  ASSERT_TRUE(watcher.ok()) << watcher.status().message();
  auto first = watcher->Call(Req(Command::kWatch), 5s);
  ASSERT_TRUE(first.ok()) << first.status().message();

  Request transfer = Req(Command::kTransfer);
  transfer.transfer_to = follower;
  EXPECT_TRUE(Call(leader, transfer).value("ok", false));
  bool saw_self_lead = false;
  const auto deadline = std::chrono::steady_clock::now() + kLiveness;
  while (!saw_self_lead && std::chrono::steady_clock::now() < deadline) {
    auto event = watcher->ReadJson(5s);
    ASSERT_TRUE(event.ok()) << event.status().message();
    saw_self_lead = event->value("role", "") == "leader";
  }
  EXPECT_TRUE(saw_self_lead);

  Request unplug = Req(Command::kUnplug);
  unplug.unplug_on = true;
  EXPECT_TRUE(Call(follower, unplug).value("ok", false));
  EXPECT_TRUE(nodes_[follower]->status().election.unplugged);
  unplug.unplug_on = false;
  EXPECT_TRUE(Call(follower, unplug).value("ok", false));
  EXPECT_FALSE(nodes_[follower]->status().election.unplugged);
}

TEST_F(NodeControlTest, StopRemovesTheSocket) {
  ASSERT_TRUE(std::filesystem::exists(Socket("a")));
  nodes_["a"]->Stop(/*hand_over=*/true);
  EXPECT_FALSE(std::filesystem::exists(Socket("a")));
}

}  // namespace
}  // namespace instaface::runtime
