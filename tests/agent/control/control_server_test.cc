// ControlServer on a real Unix socket in a temp dir, with a fake Handler standing in for the
// agent's driver thread.
#include "instaface/control/control_server.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "instaface/control/control_client.h"
#include "support/temp_dir.h"

namespace instaface::control {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
constexpr milliseconds kTimeout{5000};  // liveness only

bool Eventually(const std::function<bool()>& condition) {
  auto end = std::chrono::steady_clock::now() + kTimeout;
  while (std::chrono::steady_clock::now() < end) {
    if (condition()) return true;
    std::this_thread::sleep_for(milliseconds(5));
  }
  return condition();
}

class FakeHandler : public Handler {
 public:
  AgentStatus Status() override {
    std::lock_guard<std::mutex> lock(mu);
    calls.push_back("status");
    AgentStatus s;
    s.role = "leader";
    s.term = term;
    s.leader_id = "n1";
    s.leader_app_address = "http://127.0.0.1:8081";
    s.lease_valid = true;
    s.peers = {{"n2", "http://127.0.0.1:8082", true, 12}, {"n3", "", false, std::nullopt}};
    return s;
  }
  json StepDown() override {
    std::lock_guard<std::mutex> lock(mu);
    calls.push_back("step-down");
    if (refuse) return {{"ok", false}, {"error", "not the leader"}};
    return {{"stepped_down", true}};
  }
  json Transfer(std::optional<std::string> to) override {
    std::lock_guard<std::mutex> lock(mu);
    calls.push_back("transfer:" + to.value_or("<any>"));
    if (to == std::string("boom")) throw std::runtime_error("driver gone");
    return {{"to", to.value_or("n2")}};
  }
  json Unplug(bool on, const std::optional<std::string>& peer) override {
    std::lock_guard<std::mutex> lock(mu);
    calls.push_back(std::string(on ? "unplug:on" : "unplug:off") + (peer ? ":" + *peer : ""));
    return {{"unplugged", on}};
  }
  std::vector<std::string> Calls() {
    std::lock_guard<std::mutex> lock(mu);
    return calls;
  }

  std::mutex mu;
  std::vector<std::string> calls;
  uint64_t term = 7;
  bool refuse = false;
};

class ControlServerTest : public ::testing::Test {
 protected:
  ControlServerOptions Options() {
    ControlServerOptions options;
    options.path = dir_.File("agent.sock");
    return options;
  }
  void StartServer(ControlServerOptions options) {
    server_ = std::make_unique<ControlServer>(options, handler_);
    auto status = server_->Start();
    ASSERT_TRUE(status.ok()) << status.message();
  }
  void SetUp() override { StartServer(Options()); }

  ControlClient Connect() {
    auto client = ControlClient::Connect(dir_.File("agent.sock"), kTimeout);
    EXPECT_TRUE(client.ok()) << client.status().message();
    return std::move(*client);
  }
  json Call(ControlClient& client, Command command) {
    Request request;
    request.command = command;
    auto reply = client.Call(request, kTimeout);
    EXPECT_TRUE(reply.ok()) << reply.status().message();
    return reply.ok() ? *reply : json();
  }
  json Raw(ControlClient& client, const std::string& line) {
    EXPECT_TRUE(client.SendLine(line, kTimeout).ok());
    auto reply = client.ReadJson(kTimeout);
    EXPECT_TRUE(reply.ok()) << reply.status().message();
    return reply.ok() ? *reply : json();
  }

  testing::TempDir dir_{"ifctl"};
  FakeHandler handler_;
  std::unique_ptr<ControlServer> server_;
};

TEST_F(ControlServerTest, StatusRepliesWithHandlerStateAndOk) {
  auto client = Connect();
  json reply = Call(client, Command::kStatus);
  EXPECT_EQ(reply["ok"], true);
  EXPECT_EQ(reply["role"], "leader");
  EXPECT_EQ(reply["term"], 7);
  EXPECT_EQ(reply["leader_id"], "n1");
  // The same connection serves more requests.
  handler_.term = 8;
  EXPECT_EQ(Call(client, Command::kStatus)["term"], 8);
}

TEST_F(ControlServerTest, AdminCommandsReachTheHandlerWithTheirArguments) {
  auto client = Connect();
  EXPECT_EQ(Raw(client, R"({"cmd":"step-down"})")["ok"], true);
  json to = Raw(client, R"({"cmd":"transfer","to":"n3"})");
  EXPECT_EQ(to["ok"], true);
  EXPECT_EQ(to["to"], "n3");
  EXPECT_EQ(Raw(client, R"({"cmd":"transfer"})")["to"], "n2");
  EXPECT_EQ(Raw(client, R"({"cmd":"unplug","on":true})")["unplugged"], true);
  EXPECT_EQ(Raw(client, R"({"cmd":"unplug","on":false})")["unplugged"], false);
  EXPECT_EQ(Raw(client, R"({"cmd":"unplug","on":true,"peer":"n2"})")["ok"], true);
  EXPECT_EQ(handler_.Calls(),
            (std::vector<std::string>{"step-down", "transfer:n3", "transfer:<any>", "unplug:on",
                                      "unplug:off", "unplug:on:n2"}));
}

TEST_F(ControlServerTest, HandlerRefusalAndExceptionBecomeErrorReplies) {
  auto client = Connect();
  handler_.refuse = true;
  json refused = Raw(client, R"({"cmd":"step-down"})");
  EXPECT_EQ(refused["ok"], false);
  EXPECT_EQ(refused["error"], "not the leader");
  json thrown = Raw(client, R"({"cmd":"transfer","to":"boom"})");
  EXPECT_EQ(thrown["ok"], false);
  EXPECT_NE(thrown["error"].get<std::string>().find("driver gone"), std::string::npos);
  EXPECT_EQ(Call(client, Command::kStatus)["ok"], true);
}

TEST_F(ControlServerTest, MalformedRequestsGetErrorsAndTheConnectionSurvives) {
  auto client = Connect();
  for (const char* line : {"not json", "{\"cmd\":\"reboot\"}", "[]", "{\"cmd\":\"unplug\"}", ""}) {
    json reply = Raw(client, line);
    EXPECT_EQ(reply["ok"], false) << line;
    EXPECT_TRUE(reply["error"].is_string()) << line;
  }
  EXPECT_EQ(Call(client, Command::kStatus)["ok"], true);
  EXPECT_TRUE(handler_.Calls() == std::vector<std::string>{"status"});
}

TEST_F(ControlServerTest, OverlongLineGetsAnErrorAndIsDisconnected) {
  auto client = Connect();
  ASSERT_TRUE(client.SendLine(std::string(3 * kMaxRequestBytes, 'x'), kTimeout).ok());
  auto reply = client.ReadJson(kTimeout);
  ASSERT_TRUE(reply.ok()) << reply.status().message();
  EXPECT_EQ((*reply)["ok"], false);
  EXPECT_NE((*reply)["error"].get<std::string>().find("longer than"), std::string::npos);
  auto next = client.ReadJson(kTimeout);
  ASSERT_FALSE(next.ok());
  EXPECT_NE(next.status().message().find("closed"), std::string::npos) << next.status().message();
  // Others are unaffected.
  auto other = Connect();
  EXPECT_EQ(Call(other, Command::kStatus)["ok"], true);
}

TEST_F(ControlServerTest, WatchStreamsTheCurrentStateThenEveryBroadcast) {
  auto a = Connect();
  auto b = Connect();
  json first = Call(a, Command::kWatch);
  EXPECT_EQ(first["ok"], true);
  EXPECT_EQ(first["term"], 7);
  EXPECT_EQ(Call(b, Command::kWatch)["ok"], true);
  ASSERT_TRUE(Eventually([&] { return server_->watcher_count() == 2; }));

  for (int term = 8; term < 18; ++term) server_->Broadcast({{"term", term}, {"role", "follower"}});
  for (auto* client : {&a, &b}) {
    for (int term = 8; term < 18; ++term) {
      auto event = client->ReadJson(kTimeout);
      ASSERT_TRUE(event.ok()) << event.status().message();
      EXPECT_EQ((*event)["term"], term);
    }
  }
  // A plain client is not a watcher and gets no events.
  auto plain = Connect();
  EXPECT_EQ(Call(plain, Command::kStatus)["ok"], true);
  server_->Broadcast({{"term", 99}});
  EXPECT_EQ((*a.ReadJson(kTimeout))["term"], 99);
  EXPECT_FALSE(plain.ReadJson(milliseconds(100)).ok());

  { ControlClient gone = std::move(b); }
  EXPECT_TRUE(Eventually([&] { return server_->watcher_count() == 1; }));
}

TEST_F(ControlServerTest, SlowWatcherIsDroppedAndOthersKeepReceiving) {
  server_.reset();
  auto options = Options();
  options.max_watch_queue = 4;
  StartServer(options);
  auto slow = Connect();
  auto fast = Connect();
  EXPECT_EQ(Call(slow, Command::kWatch)["ok"], true);
  EXPECT_EQ(Call(fast, Command::kWatch)["ok"], true);
  ASSERT_TRUE(Eventually([&] { return server_->watcher_count() == 2; }));
  // `slow` never reads: once the kernel buffers fill, its queue passes the bound.
  std::string pad(64 * 1024, 'p');
  int sent = 0;
  bool dropped = Eventually([&] {
    server_->Broadcast({{"seq", sent++}, {"pad", pad}});
    // Keep `fast` drained so that only `slow` falls behind.
    while (true) {
      auto e = fast.ReadJson(milliseconds(20));
      if (!e.ok()) break;
    }
    return server_->watcher_count() == 1;
  });
  ASSERT_TRUE(dropped) << "sent " << sent;
  server_->Broadcast({{"seq", -1}});
  bool got_last = false;
  for (int i = 0; i < 1000 && !got_last; ++i) {
    auto e = fast.ReadJson(kTimeout);
    ASSERT_TRUE(e.ok()) << e.status().message();
    got_last = (*e)["seq"] == -1;
  }
  EXPECT_TRUE(got_last);
}

TEST_F(ControlServerTest, BroadcastFromManyThreadsIsSafe) {
  auto watcher = Connect();
  EXPECT_EQ(Call(watcher, Command::kWatch)["ok"], true);
  ASSERT_TRUE(Eventually([&] { return server_->watcher_count() == 1; }));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) server_->Broadcast({{"t", t}, {"i", i}});
    });
  }
  for (auto& t : threads) t.join();
  int last[4] = {-1, -1, -1, -1};
  for (int n = 0; n < 200; ++n) {
    auto e = watcher.ReadJson(kTimeout);
    ASSERT_TRUE(e.ok()) << e.status().message();
    int t = (*e)["t"], i = (*e)["i"];
    EXPECT_EQ(i, last[t] + 1) << "events of one thread arrive in order";
    last[t] = i;
  }
}

mode_t ModeOf(const std::string& path) {
  struct stat st;
  EXPECT_EQ(lstat(path.c_str(), &st), 0);
  return st.st_mode;
}

TEST_F(ControlServerTest, SocketModeIs0600ByDefaultAnd0660OnRequest) {
  mode_t mode = ModeOf(dir_.File("agent.sock"));
  EXPECT_TRUE(S_ISSOCK(mode));
  EXPECT_EQ(mode & 0777, 0600u);
  server_.reset();
  auto options = Options();
  options.mode = 0660;
  StartServer(options);
  EXPECT_EQ(ModeOf(dir_.File("agent.sock")) & 0777, 0660u);

  auto bad = Options();
  bad.path = dir_.File("other.sock");
  bad.mode = 0666;
  ControlServer refused(bad, handler_);
  EXPECT_FALSE(refused.Start().ok());
}

TEST_F(ControlServerTest, StopUnlinksTheSocket) {
  server_->Stop();
  struct stat st;
  EXPECT_NE(lstat(dir_.File("agent.sock").c_str(), &st), 0);
  EXPECT_FALSE(ControlClient::Connect(dir_.File("agent.sock"), kTimeout).ok());
}

TEST_F(ControlServerTest, RefusesAPathWhereAnotherServerListens) {
  ControlServer second(Options(), handler_);
  auto status = second.Start();
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("already listening"), std::string::npos) << status.message();
  // The first server still owns and serves its socket.
  auto client = Connect();
  EXPECT_EQ(Call(client, Command::kStatus)["ok"], true);
}

TEST_F(ControlServerTest, RemovesAStaleSocketLeftByADeadServer) {
  server_.reset();
  // A bound socket file with nobody listening, as a killed agent leaves behind.
  std::string path = dir_.File("agent.sock");
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, path.c_str());
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  close(fd);
  ASSERT_TRUE(S_ISSOCK(ModeOf(path)));
  StartServer(Options());
  auto client = Connect();
  EXPECT_EQ(Call(client, Command::kStatus)["ok"], true);
}

TEST_F(ControlServerTest, NeverRemovesAFileThatIsNotASocket) {
  auto options = Options();
  options.path = dir_.File("precious.txt");
  std::ofstream(options.path) << "keep me";
  ControlServer server(options, handler_);
  auto status = server.Start();
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("not a socket"), std::string::npos);
  std::ifstream in(options.path);
  std::string content;
  std::getline(in, content);
  EXPECT_EQ(content, "keep me");
}

TEST_F(ControlServerTest, PathTooLongIsAnError) {
  auto options = Options();
  options.path = dir_.path() + "/" + std::string(200, 's');
  ControlServer server(options, handler_);
  EXPECT_FALSE(server.Start().ok());
}

}  // namespace
}  // namespace instaface::control
