#include "instaface/control/control_request.h"

#include <gtest/gtest.h>

#include <string>

namespace instaface::control {
namespace {

TEST(ControlRequestTest, ParsesEachCommand) {
  auto status = ParseRequest(R"({"cmd":"status"})");
  ASSERT_TRUE(status.ok()) << status.status().message();
  EXPECT_EQ(status->command, Command::kStatus);

  auto watch = ParseRequest(R"({"cmd":"watch"})");
  ASSERT_TRUE(watch.ok());
  EXPECT_EQ(watch->command, Command::kWatch);

  auto step_down = ParseRequest(R"( {"cmd" : "step-down"} )");
  ASSERT_TRUE(step_down.ok());
  EXPECT_EQ(step_down->command, Command::kStepDown);

  auto transfer = ParseRequest(R"({"cmd":"transfer"})");
  ASSERT_TRUE(transfer.ok());
  EXPECT_EQ(transfer->command, Command::kTransfer);
  EXPECT_FALSE(transfer->transfer_to.has_value());

  auto transfer_to = ParseRequest(R"({"cmd":"transfer","to":"graph-2"})");
  ASSERT_TRUE(transfer_to.ok());
  ASSERT_TRUE(transfer_to->transfer_to.has_value());
  EXPECT_EQ(*transfer_to->transfer_to, "graph-2");

  auto transfer_null = ParseRequest(R"({"cmd":"transfer","to":null})");
  ASSERT_TRUE(transfer_null.ok());
  EXPECT_FALSE(transfer_null->transfer_to.has_value());

  auto unplug = ParseRequest(R"({"cmd":"unplug","on":true})");
  ASSERT_TRUE(unplug.ok());
  EXPECT_EQ(unplug->command, Command::kUnplug);
  EXPECT_TRUE(unplug->unplug_on);
  auto plug = ParseRequest(R"({"cmd":"unplug","on":false})");
  ASSERT_TRUE(plug.ok());
  EXPECT_FALSE(plug->unplug_on);
  EXPECT_FALSE(plug->unplug_peer.has_value());
  auto link = ParseRequest(R"({"cmd":"unplug","on":true,"peer":"n2"})");
  ASSERT_TRUE(link.ok()) << link.status().message();
  EXPECT_TRUE(link->unplug_on);
  ASSERT_TRUE(link->unplug_peer.has_value());
  EXPECT_EQ(*link->unplug_peer, "n2");
}

TEST(ControlRequestTest, ToleratesCarriageReturnAndUnknownFields) {
  auto r = ParseRequest("{\"cmd\":\"status\",\"client\":\"x\"}\r");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->command, Command::kStatus);
}

struct Bad {
  std::string line;
  std::string error_mentions;
};

class ControlRequestRejectTest : public ::testing::TestWithParam<Bad> {};

TEST_P(ControlRequestRejectTest, IsAnErrorNamingTheProblem) {
  auto r = ParseRequest(GetParam().line);
  ASSERT_FALSE(r.ok()) << "accepted: " << GetParam().line;
  EXPECT_NE(r.status().message().find(GetParam().error_mentions), std::string::npos)
      << r.status().message();
}

INSTANTIATE_TEST_SUITE_P(
    Malformed, ControlRequestRejectTest,
    ::testing::Values(Bad{"", "malformed"}, Bad{"{", "malformed"}, Bad{"status", "malformed"},
                      Bad{"{\"cmd\":\"status\"} trailing", "malformed"},
                      Bad{"[\"status\"]", "object"}, Bad{"42", "object"}, Bad{"{}", "\"cmd\""},
                      Bad{"{\"cmd\":7}", "\"cmd\""},
                      Bad{"{\"cmd\":\"reboot\"}", "unknown cmd 'reboot'"},
                      Bad{"{\"cmd\":\"unplug\"}", "boolean"},
                      Bad{"{\"cmd\":\"unplug\",\"on\":\"yes\"}", "boolean"},
                      Bad{"{\"cmd\":\"unplug\",\"on\":true,\"peer\":7}", "non-empty string"},
                      Bad{"{\"cmd\":\"unplug\",\"on\":true,\"peer\":\"\"}", "non-empty string"},
                      Bad{"{\"cmd\":\"transfer\",\"to\":3}", "non-empty string"},
                      Bad{"{\"cmd\":\"transfer\",\"to\":\"\"}", "non-empty string"},
                      Bad{std::string("{\"cmd\":\"st\0tus\"}", 16), "malformed"},
                      Bad{"{\"cmd\":\"\xff\xfe\"}", "malformed"}));

TEST(ControlRequestTest, OverlongLineIsRefusedBeforeParsing) {
  std::string line = R"({"cmd":"status","pad":")" + std::string(kMaxRequestBytes, 'x') + "\"}";
  auto r = ParseRequest(line);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("longer than"), std::string::npos);
}

TEST(ControlRequestTest, DeepNestingIsAnErrorNotACrash) {
  std::string line(kMaxRequestBytes / 2, '[');
  line += std::string(kMaxRequestBytes / 2, ']');
  EXPECT_FALSE(ParseRequest(line).ok());
}

TEST(ControlRequestTest, UnknownCommandEchoIsBounded) {
  std::string name(1000, 'z');
  auto r = ParseRequest("{\"cmd\":\"" + name + "\"}");
  ASSERT_FALSE(r.ok());
  EXPECT_LT(r.status().message().size(), 200u);
}

TEST(ControlRequestTest, SerializeRoundTrips) {
  Request requests[6];
  requests[0].command = Command::kStatus;
  requests[1].command = Command::kWatch;
  requests[2].command = Command::kStepDown;
  requests[3].command = Command::kTransfer;
  requests[3].transfer_to = "n\"3";
  requests[4].command = Command::kUnplug;
  requests[4].unplug_on = true;
  requests[5].command = Command::kUnplug;
  requests[5].unplug_peer = "n\"2";
  for (const Request& request : requests) {
    std::string line = SerializeRequest(request);
    EXPECT_EQ(line.find('\n'), std::string::npos);
    auto back = ParseRequest(line);
    ASSERT_TRUE(back.ok()) << line << ": " << back.status().message();
    EXPECT_EQ(back->command, request.command);
    EXPECT_EQ(back->transfer_to, request.transfer_to);
    EXPECT_EQ(back->unplug_on, request.unplug_on);
    EXPECT_EQ(back->unplug_peer, request.unplug_peer);
  }
}

}  // namespace
}  // namespace instaface::control
