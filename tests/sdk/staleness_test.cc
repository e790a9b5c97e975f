// A dead or hung agent shows as stale and never as leader; an expired lease is not leadership.
// The liveness stamps here are faked in-process; agent_staleness_test kills a real agent.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "instaface/clock.h"
#include "instaface/shm_layout.h"
#include "instaface/shm_writer.h"
#include "instaface/view.h"
#include "test_segment.h"

namespace instaface {
namespace {

using namespace std::chrono_literals;
using testing::RawMapping;
using testing::TestSegment;

// The clock of the record's lease ends and liveness stamps.
uint64_t LeaseNs() { return static_cast<uint64_t>(instaface::LeaseClockNowNs()); }

shm::PublishedState Leader(uint64_t lease_until_ns) {
  shm::PublishedState state;
  state.role = Role::kLeader;
  state.term = 1;
  state.lease_until_ns = lease_until_ns;
  state.self_id = state.leader_id = "node-a";
  return state;
}

TEST(StalenessTest, OldLivenessStampMeansStaleAndNotLeader) {
  shm::Writer writer = shm::Writer::CreateInProcess(1s);
  View view = writer.view();
  writer.Publish(Leader(LeaseNs() + 3600'000'000'000ULL));
  ASSERT_TRUE(view.is_leader());

  writer.StampLiveness(LeaseNs() - 2'000'000'000ULL);  // two stale_after periods ago
  const Snapshot stale = view.snapshot();
  EXPECT_TRUE(stale.stale);
  EXPECT_EQ(stale.role, Role::kLeader) << "the last published state is still shown";
  EXPECT_FALSE(view.is_leader());

  writer.StampLiveness();  // the agent recovers
  EXPECT_FALSE(view.snapshot().stale);
  EXPECT_TRUE(view.is_leader());
}

TEST(StalenessTest, StampWithinStaleAfterIsFresh) {
  shm::Writer writer = shm::Writer::CreateInProcess(10s);
  writer.Publish(Leader(LeaseNs() + 3600'000'000'000ULL));
  writer.StampLiveness(LeaseNs() - 1'000'000'000ULL);  // 1 s old, 10 s allowed
  EXPECT_FALSE(writer.view().snapshot().stale);
  EXPECT_TRUE(writer.view().is_leader());
}

TEST(StalenessTest, NeverStampedIsStale) {
  shm::Writer writer = shm::Writer::CreateInProcess(1s);
  writer.StampLiveness(0);
  EXPECT_TRUE(writer.view().snapshot().stale);
}

TEST(StalenessTest, ExpiredLeaseIsNotLeadership) {
  shm::Writer writer = shm::Writer::CreateInProcess(10s);
  writer.Publish(Leader(LeaseNs() - 1));
  const Snapshot s = writer.view().snapshot();
  EXPECT_EQ(s.role, Role::kLeader);
  EXPECT_FALSE(s.lease_valid);
  EXPECT_FALSE(s.stale);
  EXPECT_FALSE(writer.view().is_leader());
}

TEST(StalenessTest, NoLeaseIsNotLeadership) {
  shm::Writer writer = shm::Writer::CreateInProcess(10s);
  writer.Publish(Leader(0));
  EXPECT_FALSE(writer.view().is_leader());
}

TEST(StalenessTest, LeaseEndsWithTimeAlone) {
  shm::Writer writer = shm::Writer::CreateInProcess(10s);
  View view = writer.view();
  const uint64_t lease_end = LeaseNs() + 300'000'000ULL;
  writer.Publish(Leader(lease_end));
  if (LeaseNs() + 50'000'000ULL < lease_end) {  // skip the first check on a stalled machine
    EXPECT_TRUE(view.is_leader());
  }
  // Nothing is published again; the answer must flip once the lease is over.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (view.is_leader() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_FALSE(view.is_leader());
  // Compared with the lease clock itself, to the nanosecond: no allowance for a coarser clock
  // ends the lease before its end.
  EXPECT_GE(LeaseNs(), lease_end) << "flipped before the lease end";
}

// A writer killed or stopped between its two seq stores leaves seq odd. Readers must not spin
// forever: once the stamp is stale they answer "stale, not leader".
TEST(StalenessTest, WriterThatDiedMidUpdateDoesNotHangReaders) {
  TestSegment segment("midupdate");
  auto writer = shm::Writer::Create(segment.name(), 0600, 100ms);
  ASSERT_TRUE(writer.ok()) << writer.error();
  writer->Publish(Leader(LeaseNs() + 3600'000'000'000ULL));
  auto view = View::Open(segment.name());
  ASSERT_TRUE(view.ok()) << view.error();
  RawMapping raw(segment.posix(), sizeof(shm::Record));
  ASSERT_TRUE(raw.ok());
  auto* record = raw.as<shm::Record>();
  record->seq.fetch_add(1);  // odd: "mid-update"
  record->liveness_ns.store(LeaseNs() - 1'000'000'000ULL);
  EXPECT_FALSE(view->is_leader());
  EXPECT_TRUE(view->snapshot().stale);
  // A reused Snapshot keeps nothing of its last read: the dead writer's half-update is not
  // trustworthy, and neither is what the Snapshot held before.
  Snapshot reused = view->snapshot();
  reused.role = Role::kLeader;
  reused.term = 7;
  reused.self_id = "node-a";
  reused.lease_valid = true;
  view->snapshot(&reused);
  EXPECT_TRUE(reused.stale);
  EXPECT_EQ(reused.role, Role::kFollower);
  EXPECT_EQ(reused.term, 0u);
  EXPECT_EQ(reused.self_id, "");
  EXPECT_FALSE(reused.lease_valid);

  // A restarted writer finishes the interrupted update instead of inverting the protocol.
  writer->StampLiveness();
  writer->Publish(Leader(LeaseNs() + 3600'000'000'000ULL));
  EXPECT_EQ(record->seq.load() % 2, 0u);
  EXPECT_TRUE(view->is_leader());
}

}  // namespace
}  // namespace instaface
