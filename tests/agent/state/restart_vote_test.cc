// A node that voted, crashed and restarted from its state directory must not vote for another
// candidate in the same term (DESIGN.md "Durable vote").
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>

#include "instaface/election/election.h"
#include "instaface/state/state_store.h"

namespace instaface::state {
namespace {

using election::Election;
using election::Message;
using election::MessageType;
using election::Nanos;
using std::chrono::milliseconds;

election::Config TestConfig() {
  election::Config config;
  config.cluster_size = 3;
  return config;
}

Message VoteRequest(const std::string& from, election::Term term) {
  Message m;
  m.type = MessageType::kVoteRequest;
  m.term = term;
  m.from = from;
  m.to = "b";
  return m;
}

// Steps `request` into `node` and persists what the node asks to persist, the way the runtime
// does, before looking at its answer. Returns whether a vote was granted.
bool StepAndPersist(Election& node, StateStore& store, const Message& request, Nanos now) {
  node.step(request, now);
  bool granted = false;
  while (node.has_ready()) {
    election::Ready ready = node.ready();
    if (ready.hard_state) {
      EXPECT_TRUE(store.Save(*ready.hard_state).ok());
    }
    for (const Message& m : ready.messages) {
      if (m.type == MessageType::kVoteResponse && m.to == request.from && m.granted) {
        granted = true;
      }
    }
  }
  return granted;
}

TEST(RestartVoteTest, RestartedNodeNeverVotesTwiceInOneTerm) {
  char pattern[] = "/tmp/instaface-vote-XXXXXX";
  ASSERT_NE(mkdtemp(pattern), nullptr);
  const std::string dir = pattern;
  const election::Term term = 5;
  // Long after start, so the restart's lease-protection period has passed.
  const Nanos later = milliseconds(10'000);
  {
    auto store = StateStore::Open(dir);
    ASSERT_TRUE(store.ok());
    Election node(TestConfig(), "b", {"a", "c"}, *(*store)->Load(), 1, Nanos(0));
    ASSERT_TRUE(StepAndPersist(node, **store, VoteRequest("a", term), later));
  }  // the node crashes: everything but the state directory is gone

  auto store = StateStore::Open(dir);
  ASSERT_TRUE(store.ok());
  auto restored = (*store)->Load();
  ASSERT_TRUE(restored.ok());
  EXPECT_EQ(restored->term, term);
  EXPECT_EQ(restored->voted_for, "a");
  Election node(TestConfig(), "b", {"a", "c"}, *restored, 2, later);
  const Nanos after_restart = later + milliseconds(10'000);
  EXPECT_FALSE(StepAndPersist(node, **store, VoteRequest("c", term), after_restart));
  // The same candidate asking again still gets its vote (an idempotent answer).
  EXPECT_TRUE(StepAndPersist(node, **store, VoteRequest("a", term), after_restart));
  // A later term is a fresh vote, once the lease promise that came with a's vote has run out.
  EXPECT_TRUE(StepAndPersist(node, **store, VoteRequest("c", term + 1),
                             after_restart + milliseconds(10'000)));

  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace instaface::state
