// The instafacectl binary, run as a child process against a real shared-memory record (the
// SDK's writer) and a real control server with a fake handler.
#include <gtest/gtest.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "instaface/clock.h"
#include "instaface/control/control_server.h"
#include "instaface/shm_writer.h"
#include "support/subprocess.h"
#include "support/temp_dir.h"

namespace instaface::control {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
constexpr milliseconds kDeadline{10000};

class FakeHandler : public Handler {
 public:
  AgentStatus Status() override {
    Record("status");
    AgentStatus s;
    s.role = "follower";
    s.term = 9;
    s.leader_id = "n2";
    s.leader_app_address = "http://127.0.0.1:8082";
    s.leader_peer_address = "tcp://x";
    s.self_id = "n1";
    return s;
  }
  json StepDown() override {
    Record("step-down");
    return {{"ok", false}, {"error", "not the leader"}};
  }
  json Transfer(std::optional<std::string> to) override {
    Record("transfer:" + to.value_or("<any>"));
    return {{"to", to.value_or("n3")}};
  }
  json Unplug(bool on, const std::optional<std::string>& peer) override {
    Record(std::string(on ? "unplug:on" : "unplug:off") + (peer ? ":" + *peer : ""));
    return {{"unplugged", on}};
  }
  std::vector<std::string> Calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }

 private:
  void Record(std::string call) {
    std::lock_guard<std::mutex> lock(mu_);
    calls_.push_back(std::move(call));
  }
  std::mutex mu_;
  std::vector<std::string> calls_;
};

struct CtlRun {
  int code = -1;
  std::string out;
  std::string err;
};

class InstafacectlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ControlServerOptions options;
    options.path = dir_.File("agent.sock");
    server_ = std::make_unique<ControlServer>(options, handler_);
    auto started = server_->Start();
    ASSERT_TRUE(started.ok()) << started.message();
  }

  testing::Subprocess Spawn(std::vector<std::string> args,
                            std::vector<std::pair<std::string, std::string>> env = {}) {
    testing::SubprocessOptions options;
    options.argv = {INSTAFACECTL_PATH};
    options.argv.insert(options.argv.end(), args.begin(), args.end());
    // The developer's own agent must not be picked up through the environment.
    options.env = {{"INSTAFACE_SHM", ""}, {"INSTAFACE_SOCKET", ""}};
    for (auto& e : env) options.env.push_back(e);
    options.stdout_path = dir_.File("out." + std::to_string(runs_));
    options.stderr_path = dir_.File("err." + std::to_string(runs_));
    ++runs_;
    return testing::Subprocess(options);
  }

  CtlRun Ctl(std::vector<std::string> args,
             std::vector<std::pair<std::string, std::string>> env = {}) {
    auto child = Spawn(std::move(args), std::move(env));
    EXPECT_TRUE(child.ok()) << child.error();
    auto status = child.Wait(kDeadline);
    EXPECT_TRUE(status.has_value()) << "instafacectl hung";
    CtlRun run;
    if (status && status->exited) run.code = status->code;
    run.out = child.ReadStdout();
    run.err = child.ReadStderr();
    return run;
  }

  std::string Socket() const { return dir_.File("agent.sock"); }

  testing::TempDir dir_{"ifctl"};
  FakeHandler handler_;
  std::unique_ptr<ControlServer> server_;
  int runs_ = 0;
};

uint64_t LeaseNs() { return static_cast<uint64_t>(LeaseClockNowNs()); }

TEST_F(InstafacectlTest, StatusJsonFromSharedMemoryHasExactlyTheDocumentedKeys) {
  std::string name = "instaface-ctltest-" + std::to_string(getpid());
  auto writer = shm::Writer::Create(name, 0600, std::chrono::seconds(30));
  ASSERT_TRUE(writer.ok()) << writer.error();
  shm::PublishedState state;
  state.role = Role::kLeader;
  state.term = 12;
  state.self_id = "n1";
  state.leader_id = "n1";
  state.leader_app_address = "http://127.0.0.1:8081";
  state.lease_until_ns = LeaseNs() + 60ULL * 1000000000ULL;
  writer->Publish(state);
  writer->StampLiveness();

  CtlRun run = Ctl({"--shm", name, "status", "--json"});
  ASSERT_EQ(run.code, 0) << run.err;
  json status = json::parse(run.out);
  std::vector<std::string> keys;
  for (auto& [key, value] : status.items()) keys.push_back(key);
  std::sort(keys.begin(), keys.end());
  EXPECT_EQ(keys, (std::vector<std::string>{"leader_app_address", "leader_id", "lease_valid",
                                            "role", "stale", "term"}));
  EXPECT_EQ(status["role"], "leader");
  EXPECT_EQ(status["term"], 12);
  EXPECT_EQ(status["leader_id"], "n1");
  EXPECT_EQ(status["leader_app_address"], "http://127.0.0.1:8081");
  EXPECT_EQ(status["lease_valid"], true);
  EXPECT_EQ(status["stale"], false);

  // The human form says the same.
  CtlRun text = Ctl({"--shm", name, "status"});
  ASSERT_EQ(text.code, 0) << text.err;
  EXPECT_NE(text.out.find("leader"), std::string::npos);
  EXPECT_NE(text.out.find("12"), std::string::npos);

  // An agent that stopped stamping is stale, and a stale leader's lease is not valid.
  writer->StampLiveness(1);
  CtlRun stale = Ctl({"--shm", name, "status", "--json"}, {{"INSTAFACE_SHM", name}});
  ASSERT_EQ(stale.code, 0) << stale.err;
  json s = json::parse(stale.out);
  EXPECT_EQ(s["stale"], true);
  EXPECT_EQ(s["lease_valid"], false);
  EXPECT_TRUE(writer->Unlink().ok());
}

TEST_F(InstafacectlTest, StatusUsesTheSocketWhenOnlyASocketIsNamed) {
  for (auto env :
       {std::vector<std::pair<std::string, std::string>>{},
        std::vector<std::pair<std::string, std::string>>{{"INSTAFACE_SOCKET", Socket()}}}) {
    std::vector<std::string> args = {"status", "--json"};
    if (env.empty()) args.insert(args.begin(), {"--socket", Socket()});
    CtlRun run = Ctl(args, env);
    ASSERT_EQ(run.code, 0) << run.err;
    json status = json::parse(run.out);
    EXPECT_EQ(status.size(), 6u) << status.dump();
    EXPECT_EQ(status["role"], "follower");
    EXPECT_EQ(status["term"], 9);
    EXPECT_EQ(status["leader_id"], "n2");
    EXPECT_EQ(status["leader_app_address"], "http://127.0.0.1:8082");
  }
}

TEST_F(InstafacectlTest, AdminCommandsReachTheAgentAndRefusalsExitNonZero) {
  CtlRun transfer = Ctl({"--socket", Socket(), "transfer", "--to", "n3"});
  EXPECT_EQ(transfer.code, 0) << transfer.err;
  EXPECT_EQ(json::parse(transfer.out)["to"], "n3");
  EXPECT_EQ(Ctl({"--socket", Socket(), "transfer"}).code, 0);
  EXPECT_EQ(Ctl({"--socket", Socket(), "unplug", "on"}).code, 0);
  EXPECT_EQ(Ctl({"--socket", Socket(), "unplug", "off"}).code, 0);
  EXPECT_EQ(Ctl({"--socket", Socket(), "unplug", "on", "--peer", "n2"}).code, 0);
  CtlRun step_down = Ctl({"--socket", Socket(), "step-down"});
  EXPECT_EQ(step_down.code, 1);
  EXPECT_NE(step_down.err.find("not the leader"), std::string::npos) << step_down.err;
  EXPECT_EQ(handler_.Calls(),
            (std::vector<std::string>{"transfer:n3", "transfer:<any>", "unplug:on", "unplug:off",
                                      "unplug:on:n2", "step-down"}));
}

TEST_F(InstafacectlTest, WatchPrintsTheStateThenEachChange) {
  auto child = Spawn({"--socket", Socket(), "watch", "--count", "3"});
  ASSERT_TRUE(child.ok()) << child.error();
  auto end = std::chrono::steady_clock::now() + kDeadline;
  while (server_->watcher_count() == 0 && std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  ASSERT_EQ(server_->watcher_count(), 1u);
  server_->Broadcast({{"term", 10}, {"role", "candidate"}});
  server_->Broadcast({{"term", 11}, {"role", "leader"}});
  auto status = child.Wait(kDeadline);
  ASSERT_TRUE(status && status->success()) << child.ReadStderr();
  std::istringstream lines(child.ReadStdout());
  std::vector<json> events;
  for (std::string line; std::getline(lines, line);) events.push_back(json::parse(line));
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0]["term"], 9);
  EXPECT_EQ(events[1]["term"], 10);
  EXPECT_EQ(events[2]["role"], "leader");
}

TEST_F(InstafacectlTest, ClearErrorsAndExitCodes) {
  CtlRun no_agent = Ctl({"--socket", dir_.File("none.sock"), "step-down"});
  EXPECT_EQ(no_agent.code, 1);
  EXPECT_NE(no_agent.err.find("none.sock"), std::string::npos) << no_agent.err;
  CtlRun no_shm = Ctl({"--shm", "instaface-no-such-segment", "status"});
  EXPECT_EQ(no_shm.code, 1);
  EXPECT_NE(no_shm.err.find("instaface-no-such-segment"), std::string::npos) << no_shm.err;
  EXPECT_EQ(Ctl({"unplug", "maybe"}).code, 2);
  EXPECT_EQ(Ctl({}).code, 2);
  EXPECT_EQ(Ctl({"reboot"}).code, 2);
  EXPECT_EQ(Ctl({"--help"}).code, 0);
}

}  // namespace
}  // namespace instaface::control
