// Embedded mode as an app uses it: three app processes, each running the election inside
// itself through runtime::Node with no sidecar and no shared-memory name, finding each other in
// a private Redis. Each process reports what its own View says (embedded_node_test_child prints
// it as JSON lines); the test checks that the three agree on exactly one leader and term, and
// that losing the leader's process (kill -9, or SIGTERM with hand-over) yields a new leader
// among the other two. Deadlines are liveness bounds, generous for a loaded machine; failover
// speed is measured by scripts/bench-failover.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "support/free_port.h"
#include "support/redis_server.h"
#include "support/subprocess.h"
#include "support/temp_dir.h"

namespace instaface::testing {
namespace {

using namespace std::chrono_literals;
constexpr auto kElect = 15s;

// What one child last printed about its own View.
struct ChildState {
  bool valid = false;
  std::string self_id;
  std::string role;
  uint64_t term = 0;
  std::string leader_id;
  bool lease_valid = false;
  bool stale = false;
};

// Follows a growing stdout file and keeps its last complete line.
class LineTail {
 public:
  explicit LineTail(std::string path) : path_(std::move(path)) {}

  // Reads what was appended since the last call; returns the newest complete line, if any.
  const std::string& Poll() {
    std::ifstream in(path_, std::ios::binary);
    if (!in) return last_;
    in.seekg(static_cast<std::streamoff>(offset_));
    std::string chunk((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    offset_ += chunk.size();
    partial_ += chunk;
    size_t end = partial_.rfind('\n');
    if (end != std::string::npos) {
      size_t begin = partial_.rfind('\n', end == 0 ? 0 : end - 1);
      begin = (begin == std::string::npos || begin >= end) ? 0 : begin + 1;
      last_ = partial_.substr(begin, end - begin);
      partial_.erase(0, end + 1);
    }
    return last_;
  }

 private:
  std::string path_;
  size_t offset_ = 0;
  std::string partial_;
  std::string last_;
};

ChildState ParseState(const std::string& line) {
  ChildState s;
  if (line.empty()) return s;
  auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return s;
  try {
    s.self_id = j.at("self_id").get<std::string>();
    s.role = j.at("role").get<std::string>();
    s.term = j.at("term").get<uint64_t>();
    s.leader_id = j.at("leader_id").get<std::string>();
    s.lease_valid = j.at("lease_valid").get<bool>();
    s.stale = j.at("stale").get<bool>();
    s.valid = true;
  } catch (const nlohmann::json::exception&) {
    s.valid = false;
  }
  return s;
}

struct Child {
  std::string id;
  uint16_t port = 0;
  Subprocess process;
  std::unique_ptr<LineTail> tail;
};

class EmbeddedCluster {
 public:
  bool Start(int count, std::string* error) {
    if (!redis_.Start(error)) return false;
    for (int i = 0; i < count; ++i) {
      auto c = std::make_unique<Child>();
      c->id = "app-" + std::to_string(i);
      c->port = FreePort();
      SubprocessOptions o;
      o.argv = {EMBEDDED_CHILD_BINARY,
                "--id=" + c->id,
                "--cluster-size=" + std::to_string(count),
                "--listen=tcp://127.0.0.1:" + std::to_string(c->port),
                "--redis=" + redis_.url(),
                "--secret=embedded-test-secret",
                "--heartbeat-ms=50",
                "--election-min-ms=150",
                "--election-max-ms=300",
                "--print-ms=20"};
      o.stdout_path = dir_.File(c->id + ".out");
      o.stderr_path = dir_.File(c->id + ".log");
      c->process = Subprocess(o);
      if (!c->process.ok()) {
        if (error) *error = c->process.error();
        return false;
      }
      c->tail = std::make_unique<LineTail>(o.stdout_path);
      children_.push_back(std::move(c));
    }
    return true;
  }

  Child& child(int i) { return *children_.at(i); }
  int size() const { return static_cast<int>(children_.size()); }
  ChildState State(int i) { return ParseState(child(i).tail->Poll()); }

  // The index of the child that leads when every child in `among` reports the same leader in
  // the same term, the leader reports itself leader with a valid lease, and no other child in
  // `among` claims to lead in that term. `*two_leaders` is set if two claim one term at once.
  std::optional<int> AgreedLeader(const std::vector<int>& among, uint64_t* term,
                                  bool* two_leaders) {
    std::vector<ChildState> states;
    for (int i : among) states.push_back(State(i));
    for (size_t a = 0; a < states.size(); ++a) {
      for (size_t b = a + 1; b < states.size(); ++b) {
        if (states[a].role == "leader" && states[b].role == "leader" &&
            states[a].term == states[b].term && !states[a].stale && !states[b].stale)
          *two_leaders = true;
      }
    }
    const ChildState& first = states.front();
    if (!first.valid || first.leader_id.empty()) return std::nullopt;
    std::optional<int> leader;
    int claims = 0;
    for (size_t k = 0; k < states.size(); ++k) {
      const ChildState& s = states[k];
      if (!s.valid || s.stale || s.leader_id != first.leader_id || s.term != first.term)
        return std::nullopt;
      if (s.role == "leader") {
        ++claims;
        if (s.self_id == s.leader_id && s.lease_valid) leader = among[k];
      }
    }
    if (claims != 1 || !leader) return std::nullopt;
    *term = first.term;
    return leader;
  }

  std::optional<int> WaitForAgreedLeader(const std::vector<int>& among, uint64_t after_term,
                                         uint64_t* term, bool* two_leaders) {
    const auto deadline = std::chrono::steady_clock::now() + kElect;
    while (std::chrono::steady_clock::now() < deadline) {
      uint64_t t = 0;
      if (auto l = AgreedLeader(among, &t, two_leaders); l && t > after_term) {
        *term = t;
        return l;
      }
      std::this_thread::sleep_for(5ms);
    }
    return std::nullopt;
  }

  std::string Logs() {
    std::string logs;
    for (auto& c : children_) {
      logs += "---- " + c->id + " (last: " + c->tail->Poll() + ") ----\n" + c->process.ReadStderr();
    }
    return logs;
  }

 private:
  TempDir dir_{"ifemb"};
  RedisServer redis_;
  std::vector<std::unique_ptr<Child>> children_;
};

std::vector<int> AllBut(int n, int excluded) {
  std::vector<int> rest;
  for (int i = 0; i < n; ++i) {
    if (i != excluded) rest.push_back(i);
  }
  return rest;
}

TEST(EmbeddedNodeTest, ThreeProcessesAgreeOnOneLeaderAndTermThroughTheirOwnViews) {
  EmbeddedCluster c;
  std::string error;
  ASSERT_TRUE(c.Start(3, &error)) << error;
  uint64_t term = 0;
  bool two_leaders = false;
  auto leader = c.WaitForAgreedLeader({0, 1, 2}, 0, &term, &two_leaders);
  ASSERT_TRUE(leader.has_value()) << c.Logs();
  EXPECT_GE(term, 1u);
  EXPECT_FALSE(two_leaders) << c.Logs();
  // Each process names itself as self_id and exactly one names itself leader.
  std::set<std::string> self_ids;
  int leaders = 0;
  for (int i = 0; i < c.size(); ++i) {
    ChildState s = c.State(i);
    self_ids.insert(s.self_id);
    EXPECT_EQ(s.self_id, c.child(i).id);
    if (s.role == "leader") {
      ++leaders;
      EXPECT_EQ(i, *leader);
    }
  }
  EXPECT_EQ(self_ids.size(), 3u);
  EXPECT_EQ(leaders, 1) << c.Logs();
}

TEST(EmbeddedNodeTest, KillingTheLeadersProcessElectsANewLeaderAmongTheOtherTwo) {
  EmbeddedCluster c;
  std::string error;
  ASSERT_TRUE(c.Start(3, &error)) << error;
  uint64_t term = 0;
  bool two_leaders = false;
  auto leader = c.WaitForAgreedLeader({0, 1, 2}, 0, &term, &two_leaders);
  ASSERT_TRUE(leader.has_value()) << c.Logs();

  c.child(*leader).process.Kill();
  const std::vector<int> survivors = AllBut(c.size(), *leader);
  uint64_t new_term = 0;
  auto next = c.WaitForAgreedLeader(survivors, term, &new_term, &two_leaders);
  ASSERT_TRUE(next.has_value()) << c.Logs();
  EXPECT_NE(*next, *leader);
  EXPECT_GT(new_term, term);
  EXPECT_FALSE(two_leaders) << c.Logs();
}

TEST(EmbeddedNodeTest, SigtermOfTheLeadersProcessHandsOverAndExitsCleanly) {
  EmbeddedCluster c;
  std::string error;
  ASSERT_TRUE(c.Start(3, &error)) << error;
  uint64_t term = 0;
  bool two_leaders = false;
  auto leader = c.WaitForAgreedLeader({0, 1, 2}, 0, &term, &two_leaders);
  ASSERT_TRUE(leader.has_value()) << c.Logs();

  ASSERT_TRUE(c.child(*leader).process.Terminate());
  const std::vector<int> survivors = AllBut(c.size(), *leader);
  uint64_t new_term = 0;
  auto next = c.WaitForAgreedLeader(survivors, term, &new_term, &two_leaders);
  ASSERT_TRUE(next.has_value()) << c.Logs();
  EXPECT_NE(*next, *leader);
  auto exit = c.child(*leader).process.Wait(10s);
  ASSERT_TRUE(exit.has_value()) << c.Logs();
  EXPECT_TRUE(exit->success()) << exit->ToString() << "\n" << c.Logs();
  EXPECT_FALSE(two_leaders) << c.Logs();
}

}  // namespace
}  // namespace instaface::testing
