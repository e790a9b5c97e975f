#include "instaface/transport/transport.h"

#include <gtest/gtest.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <ctime>
#include <deque>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>

namespace instaface::transport {
namespace {

using election::Message;
using election::MessageType;
using namespace std::chrono_literals;

// Generous: only a hang fails these tests, never slowness.
constexpr auto kLiveness = 10s;

// The driver side of a transport: a queue filled from nng callbacks.
class Inbox {
 public:
  Transport::Deliver Sink() {
    return [this](Message m) {
      std::lock_guard<std::mutex> lock(mu_);
      messages_.push_back(std::move(m));
      cv_.notify_all();
    };
  }
  std::optional<Message> Pop(std::chrono::milliseconds timeout = kLiveness) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, timeout, [this] { return !messages_.empty(); })) return std::nullopt;
    Message m = messages_.front();
    messages_.pop_front();
    return m;
  }
  size_t size() {
    std::lock_guard<std::mutex> lock(mu_);
    return messages_.size();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Message> messages_;
};

template <typename Pred>
bool Eventually(Pred pred) {
  const auto deadline = std::chrono::steady_clock::now() + kLiveness;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return pred();
}

class TransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/instaface-transport-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Url(const std::string& name) const { return "ipc://" + dir_ + "/" + name; }

  std::unique_ptr<Transport> Make(const std::string& name, Inbox& inbox,
                                  const std::string& secret = "s3cret") {
    TransportOptions options;
    options.listen_url = Url(name);
    options.cluster = "graph";
    options.secret = secret;
    options.request_timeout = 200ms;
    auto t = Transport::Start(options, inbox.Sink());
    EXPECT_TRUE(t.ok()) << t.status().message();
    return t.ok() ? std::move(*t) : nullptr;
  }

  static Message Heartbeat(const std::string& from, const std::string& to, uint64_t term) {
    Message m;
    m.type = MessageType::kHeartbeat;
    m.term = term;
    m.from = from;
    m.to = to;
    m.send_time = election::Nanos(123);
    return m;
  }

  std::string dir_;
};

TEST_F(TransportTest, DeliversBothWays) {
  Inbox inbox_a, inbox_b;
  auto a = Make("a", inbox_a);
  auto b = Make("b", inbox_b);
  ASSERT_TRUE(a && b);
  a->SetPeers({{"b", Url("b")}});
  b->SetPeers({{"a", Url("a")}});

  ASSERT_TRUE(a->Send(Heartbeat("a", "b", 3)));
  auto got = inbox_b.Pop();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, Heartbeat("a", "b", 3));

  Message reply = Heartbeat("b", "a", 3);
  reply.type = MessageType::kHeartbeatResponse;
  reply.granted = true;
  ASSERT_TRUE(b->Send(reply));
  got = inbox_a.Pop();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, reply);

  EXPECT_TRUE(Eventually([&] { return a->peer_counters().at(0).sent == 1; }));
  EXPECT_EQ(a->peer_counters().at(0).failed, 0u);
  EXPECT_GT(a->peer_counters().at(0).last_ack_ns, 0);
  EXPECT_EQ(b->delivered(), 1u);
}

// A blocked peer is behind a firewall: nothing goes to it, and its requests are neither
// delivered nor acknowledged, so it sees them time out. Unblocked, traffic flows again.
TEST_F(TransportTest, BlockedPeerIsCutBothWaysBelowTheAcknowledgement) {
  Inbox inbox_a, inbox_b;
  auto a = Make("a", inbox_a);
  auto b = Make("b", inbox_b);
  ASSERT_TRUE(a && b);
  a->SetPeers({{"b", Url("b")}});
  b->SetPeers({{"a", Url("a")}});
  a->SetBlocked({"b"});

  EXPECT_FALSE(a->Send(Heartbeat("a", "b", 1)));
  ASSERT_TRUE(b->Send(Heartbeat("b", "a", 1)));
  EXPECT_TRUE(Eventually([&] { return b->peer_counters().at(0).failed == 1; }));
  EXPECT_EQ(b->peer_counters().at(0).sent, 0u);
  EXPECT_EQ(b->peer_counters().at(0).last_ack_ns, 0);
  EXPECT_EQ(inbox_a.size(), 0u);
  EXPECT_EQ(a->delivered(), 0u);
  EXPECT_EQ(inbox_b.size(), 0u);

  a->SetBlocked({});
  ASSERT_TRUE(b->Send(Heartbeat("b", "a", 2)));
  auto got = inbox_a.Pop();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->term, 2u);
  EXPECT_TRUE(Eventually([&] { return b->peer_counters().at(0).sent == 1; }));
  ASSERT_TRUE(a->Send(Heartbeat("a", "b", 3)));
  EXPECT_TRUE(inbox_b.Pop().has_value());
}

TEST_F(TransportTest, UnknownPeerIsNotSent) {
  Inbox inbox;
  auto a = Make("a", inbox);
  ASSERT_TRUE(a);
  EXPECT_FALSE(a->Send(Heartbeat("a", "nobody", 1)));
}

TEST_F(TransportTest, WrongSecretIsRejectedAndCounted) {
  Inbox inbox_a, inbox_b;
  auto a = Make("a", inbox_a, "other-secret");
  auto b = Make("b", inbox_b);
  ASSERT_TRUE(a && b);
  a->SetPeers({{"b", Url("b")}});
  ASSERT_TRUE(a->Send(Heartbeat("a", "b", 3)));
  EXPECT_TRUE(Eventually(
      [&] { return b->rejected()[static_cast<size_t>(wire::RejectReason::kBadMac)] == 1; }));
  EXPECT_EQ(inbox_b.size(), 0u);
  EXPECT_EQ(b->delivered(), 0u);
}

// Sends raw bytes as one request on a plain REQ socket and waits for the acknowledgement.
void SendRaw(const std::string& url, const std::vector<uint8_t>& bytes) {
  nng_socket s;
  ASSERT_EQ(nng_req0_open(&s), 0);
  nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 5000);
  nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, 5000);
  ASSERT_EQ(nng_dial(s, url.c_str(), nullptr, 0), 0);
  ASSERT_EQ(nng_send(s, const_cast<uint8_t*>(bytes.data()), bytes.size(), 0), 0);
  void* reply = nullptr;
  size_t size = 0;
  ASSERT_EQ(nng_recv(s, &reply, &size, NNG_FLAG_ALLOC), 0);
  EXPECT_EQ(size, 0u);  // an empty acknowledgement
  nng_free(reply, size);
  nng_close(s);
}

TEST_F(TransportTest, ReplayedAndMalformedRequestsAreCountedByReason) {
  Inbox inbox;
  auto b = Make("b", inbox);
  ASSERT_TRUE(b);
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  const uint64_t now = static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ULL;
  wire::Codec codec("graph", "s3cret");
  const auto frame = codec.Encode(Heartbeat("a", "b", 9), now, 77);

  SendRaw(Url("b"), frame);
  SendRaw(Url("b"), frame);
  SendRaw(Url("b"), {1, 2, 3});
  SendRaw(Url("b"), wire::Codec("elsewhere", "s3cret").Encode(Heartbeat("a", "b", 9), now, 78));

  ASSERT_TRUE(inbox.Pop().has_value());
  const auto rejected = b->rejected();
  EXPECT_EQ(rejected[static_cast<size_t>(wire::RejectReason::kReplayed)], 1u);
  EXPECT_EQ(rejected[static_cast<size_t>(wire::RejectReason::kTooShort)], 1u);
  EXPECT_EQ(rejected[static_cast<size_t>(wire::RejectReason::kWrongCluster)], 1u);
  EXPECT_EQ(b->delivered(), 1u);
}

// A peer that is not there costs its timeout and a context, never a blocked caller: Send
// returns at once, the failure is counted, and once every context is busy further sends are
// refused immediately.
TEST_F(TransportTest, DeadPeerCostsOnlyItsTimeout) {
  Inbox inbox;
  auto a = Make("a", inbox);
  ASSERT_TRUE(a);
  a->SetPeers({{"dead", Url("nobody-listens-here")}});
  int accepted = 0;
  for (int i = 0; i < 10; ++i) accepted += a->Send(Heartbeat("a", "dead", 1)) ? 1 : 0;
  EXPECT_EQ(accepted, 4);  // requests_per_peer
  EXPECT_TRUE(Eventually([&] { return a->peer_counters().at(0).failed == 10; }));
  EXPECT_EQ(a->peer_counters().at(0).sent, 0u);
  // Contexts come back after their timeout.
  EXPECT_TRUE(a->Send(Heartbeat("a", "dead", 1)));
}

TEST_F(TransportTest, PeersCanChangeAtRuntime) {
  Inbox inbox_a, inbox_b, inbox_c;
  auto a = Make("a", inbox_a);
  auto b = Make("b", inbox_b);
  auto c = Make("c", inbox_c);
  ASSERT_TRUE(a && b && c);
  a->SetPeers({{"b", Url("b")}});
  ASSERT_TRUE(a->Send(Heartbeat("a", "b", 1)));
  ASSERT_TRUE(inbox_b.Pop().has_value());

  a->SetPeers({{"c", Url("c")}});
  EXPECT_FALSE(a->Send(Heartbeat("a", "b", 1)));
  ASSERT_TRUE(a->Send(Heartbeat("a", "c", 2)));
  auto got = inbox_c.Pop();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->term, 2u);
  ASSERT_EQ(a->peer_counters().size(), 1u);
  EXPECT_EQ(a->peer_counters()[0].id, "c");
}

TEST_F(TransportTest, TcpPortZeroReportsTheBoundPort) {
  Inbox inbox;
  TransportOptions options;
  options.listen_url = "tcp://127.0.0.1:0";
  options.cluster = "graph";
  options.secret = "k";
  auto t = Transport::Start(options, inbox.Sink());
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_NE((*t)->bound_url(), "tcp://127.0.0.1:0");
  EXPECT_EQ((*t)->bound_url().rfind("tcp://127.0.0.1:", 0), 0u);
}

TEST_F(TransportTest, BadOptionsAreErrors) {
  Inbox inbox;
  TransportOptions options;
  options.listen_url = "bogus://x";
  options.cluster = "graph";
  options.secret = "k";
  EXPECT_FALSE(Transport::Start(options, inbox.Sink()).ok());
  options.listen_url = Url("x");
  options.secret = "";
  EXPECT_FALSE(Transport::Start(options, inbox.Sink()).ok());
}

}  // namespace
}  // namespace instaface::transport
