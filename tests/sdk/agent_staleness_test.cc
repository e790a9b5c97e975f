// Staleness with a real instaface-agent: after kill -9 the state reads as stale and never as
// leader at once (the life lock), and a sleeping WaitForChange wakes at once; after SIGSTOP
// within 3 heartbeat periods (the agent's stale_after); and a restarted agent is seen through
// the mapping an app already holds.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <optional>
#include <string>
#include <thread>

#include "instaface/clock.h"
#include "instaface/view.h"
#include "support/free_port.h"
#include "support/subprocess.h"
#include "support/temp_dir.h"

namespace instaface {
namespace {

using namespace std::chrono_literals;
using testing::Subprocess;
using testing::SubprocessOptions;
using testing::TempDir;

constexpr auto kHeartbeat = 100ms;
constexpr auto kDeadline = 15s;  // liveness only: election and startup

// The clock of the record's lease ends and liveness stamps.
uint64_t LeaseNs() { return static_cast<uint64_t>(instaface::LeaseClockNowNs()); }

std::string AgentBinary() {
  if (const char* env = std::getenv("INSTAFACE_AGENT"); env != nullptr) return env;
#ifdef INSTAFACE_AGENT_BINARY
  return INSTAFACE_AGENT_BINARY;
#else
  return std::string();
#endif
}

// Sleeps until the lease clock passes `until_ns` (never less: staleness only grows with time).
void SleepUntil(uint64_t until_ns) {
  for (uint64_t now = LeaseNs(); now < until_ns; now = LeaseNs()) {
    std::this_thread::sleep_for(std::chrono::nanoseconds(until_ns - now));
  }
}

class AgentStalenessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    binary_ = AgentBinary();
    if (binary_.empty() || access(binary_.c_str(), X_OK) != 0) {
      GTEST_SKIP() << "no instaface-agent binary (set INSTAFACE_AGENT)";
    }
    shm_name_ = "instaface-test-agent-" + std::to_string(getpid());
    std::ofstream(dir_.File("secret")) << "test-secret\n";
    mkdir(dir_.File("state").c_str(), 0700);
    port_ = testing::FreePort();
  }
  void TearDown() override {
    if (agent_.ok() && agent_.Running()) {
      agent_.Continue();
      agent_.Kill();
    }
    shm_unlink(("/" + shm_name_).c_str());
  }

  // A one-node cluster, which elects itself and keeps renewing its lease.
  void StartAgent() {
    SubprocessOptions o;
    o.argv = {binary_,
              "--id=solo",
              "--cluster=staleness",
              "--cluster-size=1",
              "--listen=tcp://127.0.0.1:" + std::to_string(port_),
              "--shm=" + shm_name_,
              "--socket=" + dir_.File("agent.sock"),
              "--state-dir=" + dir_.File("state"),
              "--secret-file=" + dir_.File("secret"),
              "--heartbeat-ms=" + std::to_string(kHeartbeat.count()),
              "--election-min-ms=300",
              "--election-max-ms=400",
              "--log-level=warn"};
    o.stderr_path = dir_.File("agent.log");
    agent_ = Subprocess(o);
    ASSERT_TRUE(agent_.ok()) << agent_.error();
  }

  // Opens the agent's segment (once) and waits until it says leader.
  void WaitUntilLeader() {
    const auto deadline = std::chrono::steady_clock::now() + kDeadline;
    while (std::chrono::steady_clock::now() < deadline) {
      if (!view_) {
        auto opened = View::Open(shm_name_);
        if (opened.ok()) view_.emplace(std::move(*opened));
      }
      if (view_ && view_->is_leader()) return;
      ASSERT_TRUE(agent_.Running()) << agent_.ReadStderr();
      std::this_thread::sleep_for(10ms);
    }
    FAIL() << "the agent did not become leader; log:\n" << agent_.ReadStderr();
  }

  // Stale and not leader once 3 heartbeat periods have passed since `signalled_ns`.
  void ExpectStaleWithinThreeHeartbeats(uint64_t signalled_ns) {
    const uint64_t stale_after = std::chrono::nanoseconds(3 * kHeartbeat).count();
    ASSERT_EQ(view_->stale_after().count(), static_cast<int64_t>(stale_after))
        << "the agent publishes stale_after = 3 heartbeat periods";
    // 1 ms for the signal to land; sleeping longer than asked only makes staleness surer.
    SleepUntil(signalled_ns + stale_after + 1'000'000);
    const Snapshot s = view_->snapshot();
    EXPECT_TRUE(s.stale);
    EXPECT_EQ(s.role, Role::kLeader) << "the last published state stays visible";
    EXPECT_FALSE(view_->is_leader());
  }

  std::string binary_;
  TempDir dir_{"instaface-agent-stale"};
  std::string shm_name_;
  uint16_t port_ = 0;
  Subprocess agent_;
  std::optional<View> view_;
};

TEST_F(AgentStalenessTest, KillNineIsStaleWithinThreeHeartbeats) {
  StartAgent();
  WaitUntilLeader();
  ASSERT_FALSE(view_->snapshot().stale);
  const uint64_t killed = LeaseNs();
  agent_.Kill();
  ExpectStaleWithinThreeHeartbeats(killed);
}

// The life lock (shm_layout.h): once kill -9 has taken the agent, its app reads it as gone on
// the very next read, without waiting for the stamp to age (300 ms here) or the lease to end.
TEST_F(AgentStalenessTest, KillNineIsSeenAtOnceNotWhenTheStampAges) {
  StartAgent();
  WaitUntilLeader();
  const uint64_t killed = LeaseNs();
  agent_.Kill();  // SIGKILL, then reaped: the process is gone
  const bool leader = view_->is_leader();
  const Snapshot s = view_->snapshot();
  const uint64_t read = LeaseNs();
  const uint64_t stale_after = std::chrono::nanoseconds(3 * kHeartbeat).count();
  ASSERT_LT(read - killed, stale_after) << "the machine was too slow to tell the two apart";
  EXPECT_FALSE(leader) << "the dead agent's app still reads itself leader";
  EXPECT_TRUE(s.stale);
  EXPECT_EQ(s.role, Role::kLeader) << "the last published state stays visible";
}

// The same death wakes an app thread asleep in WaitForChange at once, not at its timeout: the
// loop an app runs learns of it on its next turn.
TEST_F(AgentStalenessTest, KillNineWakesAWaitForChangeLoopAtOnce) {
  StartAgent();
  WaitUntilLeader();
  std::atomic<bool> saw_death{false};
  std::chrono::steady_clock::time_point saw_death_at;
  std::thread app([&] {
    uint32_t seen = view_->snapshot().change_counter;
    for (;;) {
      seen = view_->WaitForChange(seen, 30s);  // lease renewals wake it too
      if (view_->snapshot().stale) {           // woken by the death, or else at the timeout
        saw_death_at = std::chrono::steady_clock::now();
        saw_death = true;
        return;
      }
    }
  });
  std::this_thread::sleep_for(300ms);  // the loop turns over some renewals, then sleeps
  const auto kill_at = std::chrono::steady_clock::now();
  agent_.Kill();
  app.join();
  ASSERT_TRUE(saw_death.load());
  EXPECT_LT(saw_death_at - kill_at, 5s) << "the loop slept on after the agent died";
}

TEST_F(AgentStalenessTest, SigstopIsStaleWithinThreeHeartbeatsAndSigcontRecovers) {
  StartAgent();
  WaitUntilLeader();
  const uint64_t stopped = LeaseNs();
  ASSERT_TRUE(agent_.Stop());
  ExpectStaleWithinThreeHeartbeats(stopped);
  ASSERT_TRUE(agent_.Continue());
  const auto deadline = std::chrono::steady_clock::now() + kDeadline;
  while (!view_->is_leader() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(view_->is_leader()) << "the resumed agent should lead again";
  EXPECT_FALSE(view_->snapshot().stale);
}

TEST_F(AgentStalenessTest, RestartedAgentIsSeenThroughTheOldMapping) {
  StartAgent();
  WaitUntilLeader();
  const uint64_t term = view_->snapshot().term;
  const uint64_t killed = LeaseNs();
  agent_.Kill();
  ExpectStaleWithinThreeHeartbeats(killed);  // so that "leader" below is the new agent's
  StartAgent();                              // takes the dead agent's segment over in place
  const auto deadline = std::chrono::steady_clock::now() + kDeadline;
  while (!view_->is_leader() && std::chrono::steady_clock::now() < deadline) {
    ASSERT_TRUE(agent_.Running()) << agent_.ReadStderr();
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(view_->is_leader()) << agent_.ReadStderr();
  EXPECT_GT(view_->snapshot().term, term);
}

}  // namespace
}  // namespace instaface
