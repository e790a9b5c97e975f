// The control socket's status as a type: what the agent renders is what clients read back, and a
// reply that is not a status is an error naming the field, never a default.
#include "instaface/control/agent_status.h"

#include <gtest/gtest.h>

namespace instaface::control {
namespace {

using nlohmann::json;

AgentStatus Sample() {
  AgentStatus s;
  s.role = "leader";
  s.term = 42;
  s.self_id = "a";
  s.leader_id = "a";
  s.leader_app_address = "http://127.0.0.1:8081";
  s.leader_peer_address = "tcp://127.0.0.1:7401";
  s.lease_valid = true;
  s.transferring = true;
  s.unplugged_peers = {"c"};
  s.peers = {{"b", "http://127.0.0.1:8082", true, 3}, {"c", "", false, std::nullopt}};
  s.messages_rejected = 5;
  return s;
}

TEST(AgentStatusTest, RoundTripsThroughJson) {
  const AgentStatus s = Sample();
  auto parsed = ParseAgentStatus(ToJson(s));
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(*parsed, s);
  EXPECT_TRUE(ToJson(s)["peers"][1]["last_heard_ms"].is_null()) << "never heard is null, not 0";
}

TEST(AgentStatusTest, UnknownKeysAreIgnored) {
  json j = ToJson(Sample());
  j["added_by_a_newer_agent"] = 1;
  j["ok"] = true;
  EXPECT_TRUE(ParseAgentStatus(j).ok());
}

TEST(AgentStatusTest, MissingOrMistypedFieldsAreNamed) {
  struct Case {
    std::function<void(json&)> spoil;
    std::string mentions;
  };
  const std::vector<Case> cases = {
      {[](json& j) { j.erase("term"); }, "\"term\""},
      {[](json& j) { j["term"] = -1; }, "\"term\""},
      {[](json& j) { j["role"] = 3; }, "\"role\""},
      {[](json& j) { j["lease_valid"] = "yes"; }, "\"lease_valid\""},
      {[](json& j) { j["peers"] = 3; }, "\"peers\""},
      {[](json& j) { j["peers"][0] = "b"; }, "peer is not an object"},
      {[](json& j) { j["peers"][0].erase("reachable"); }, "\"reachable\""},
      {[](json& j) { j["peers"][0]["last_heard_ms"] = -5; }, "negative"},
      {[](json& j) { j["peers"][0]["last_heard_ms"] = "5"; }, "\"last_heard_ms\""},
      {[](json& j) { j["peers"][0]["app_address"] = 7; }, "\"app_address\""},
      {[](json& j) { j["unplugged_peers"] = "c"; }, "\"unplugged_peers\""},
      {[](json& j) { j["unplugged_peers"] = json::array({1}); }, "non-string"},
      {[](json& j) { j = json::array(); }, "not a JSON object"},
  };
  for (const Case& c : cases) {
    json j = ToJson(Sample());
    c.spoil(j);
    auto parsed = ParseAgentStatus(j);
    ASSERT_FALSE(parsed.ok()) << j.dump();
    EXPECT_NE(parsed.status().message().find(c.mentions), std::string::npos)
        << parsed.status().message();
  }
}

// An agent from before link faults sends neither key; its status still reads.
TEST(AgentStatusTest, LinkFaultKeysMayBeAbsent) {
  json j = ToJson(Sample());
  j.erase("unplugged_peers");
  for (json& peer : j["peers"]) peer.erase("app_address");
  auto parsed = ParseAgentStatus(j);
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_TRUE(parsed->unplugged_peers.empty());
  EXPECT_EQ(parsed->peers[0].app_address, "");
}

TEST(AgentStatusTest, TooManyPeersIsAnError) {
  json j = ToJson(Sample());
  for (size_t i = 0; i < kMaxPeers; ++i) j["peers"].push_back(j["peers"][0]);
  EXPECT_FALSE(ParseAgentStatus(j).ok());
}

}  // namespace
}  // namespace instaface::control
