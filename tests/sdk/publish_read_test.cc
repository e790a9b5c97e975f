// What the writer publishes is what a reader sees, field by field, through a named segment and
// through an in-process record (embedded mode).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "instaface/clock.h"
#include "instaface/shm_layout.h"
#include "instaface/shm_writer.h"
#include "instaface/view.h"
#include "test_segment.h"

namespace instaface {
namespace {

using namespace std::chrono_literals;
using testing::TestSegment;

// The clock of the record's lease ends and liveness stamps.
uint64_t LeaseNs() { return static_cast<uint64_t>(instaface::LeaseClockNowNs()); }

shm::PublishedState LeaderState(uint64_t term) {
  shm::PublishedState state;
  state.role = Role::kLeader;
  state.term = term;
  state.lease_until_ns = LeaseNs() + 60'000'000'000ULL;
  state.self_id = "node-a";
  state.leader_id = "node-a";
  state.leader_peer_address = "tcp://10.0.0.5:7000";
  state.leader_app_address = "http://10.0.0.5:8080";
  return state;
}

void ExpectSame(const shm::PublishedState& published, const Snapshot& seen) {
  EXPECT_EQ(seen.role, published.role);
  EXPECT_EQ(seen.term, published.term);
  EXPECT_EQ(seen.self_id, published.self_id);
  EXPECT_EQ(seen.leader_id, published.leader_id);
  EXPECT_EQ(seen.leader_peer_address, published.leader_peer_address);
  EXPECT_EQ(seen.leader_app_address, published.leader_app_address);
}

TEST(PublishReadTest, NamedSegmentRoundTrip) {
  TestSegment segment("roundtrip");
  auto writer = shm::Writer::Create(segment.name(), 0600, 5s);
  ASSERT_TRUE(writer.ok()) << writer.error();
  auto view = View::Open(segment.name());
  ASSERT_TRUE(view.ok()) << view.error();

  const Snapshot initial = view->snapshot();
  EXPECT_EQ(initial.role, Role::kFollower);
  EXPECT_EQ(initial.term, 0u);
  EXPECT_FALSE(initial.stale);
  EXPECT_FALSE(view->is_leader());
  EXPECT_EQ(view->stale_after(), 5s);

  const shm::PublishedState leader = LeaderState(3);
  writer->Publish(leader);
  const Snapshot seen = view->snapshot();
  ExpectSame(leader, seen);
  EXPECT_TRUE(seen.lease_valid);
  EXPECT_FALSE(seen.stale);
  EXPECT_EQ(seen.lease_until_ns, leader.lease_until_ns) << "stored as published, on one clock";
  EXPECT_EQ(seen.change_counter, initial.change_counter + 1);
  EXPECT_TRUE(view->is_leader());
  const std::optional<Leadership> lead = view->leadership();
  ASSERT_TRUE(lead.has_value());
  EXPECT_EQ(lead->term, leader.term);
  EXPECT_EQ(lead->lease_until_ns, leader.lease_until_ns);

  shm::PublishedState follower;
  follower.role = Role::kFollower;
  follower.term = 4;
  follower.self_id = "node-a";
  follower.leader_id = "node-b";
  follower.leader_app_address = "http://10.0.0.6:8080";
  writer->Publish(follower);
  const Snapshot after = view->snapshot();
  ExpectSame(follower, after);
  EXPECT_FALSE(after.lease_valid);
  EXPECT_EQ(after.lease_until_ns, 0u);
  EXPECT_FALSE(view->is_leader());
  EXPECT_FALSE(view->leadership().has_value());
}

TEST(PublishReadTest, CandidateIsNotLeader) {
  shm::Writer writer = shm::Writer::CreateInProcess(5s);
  shm::PublishedState state = LeaderState(2);
  state.role = Role::kCandidate;
  writer.Publish(state);
  EXPECT_EQ(writer.view().snapshot().role, Role::kCandidate);
  EXPECT_FALSE(writer.view().is_leader());
  EXPECT_FALSE(writer.view().leadership().has_value());
  EXPECT_FALSE(writer.view().snapshot().lease_valid);
}

TEST(PublishReadTest, InProcessRecordServesTheSameView) {
  shm::Writer writer = shm::Writer::CreateInProcess(5s);
  View view = writer.view();
  EXPECT_TRUE(writer.name().empty());
  const shm::PublishedState leader = LeaderState(8);
  writer.Publish(leader);
  ExpectSame(leader, view.snapshot());
  EXPECT_TRUE(view.is_leader());
  EXPECT_TRUE(writer.Unlink().ok());
}

TEST(PublishReadTest, ViewOutlivesItsWriter) {
  std::optional<View> view;
  {
    shm::Writer writer = shm::Writer::CreateInProcess(5s);
    writer.Publish(LeaderState(5));
    view.emplace(writer.view());
  }
  EXPECT_EQ(view->snapshot().term, 5u);
}

TEST(PublishReadTest, LongStringsAreCutToTheirFields) {
  shm::Writer writer = shm::Writer::CreateInProcess(5s);
  shm::PublishedState state;
  state.self_id = std::string(500, 'i');
  state.leader_id = std::string(64, 'l');
  state.leader_peer_address = std::string(1000, 'p');
  state.leader_app_address = std::string(191, 'a');
  writer.Publish(state);
  const Snapshot seen = writer.view().snapshot();
  EXPECT_EQ(seen.self_id, std::string(shm::kIdBytes - 1, 'i'));
  EXPECT_EQ(seen.leader_id, std::string(shm::kIdBytes - 1, 'l'));
  EXPECT_EQ(seen.leader_peer_address, std::string(shm::kAddressBytes - 1, 'p'));
  EXPECT_EQ(seen.leader_app_address, std::string(191, 'a')) << "191 bytes fit exactly";
}

TEST(PublishReadTest, CutNeverSplitsAUtf8Sequence) {
  shm::Writer writer = shm::Writer::CreateInProcess(5s);
  shm::PublishedState state;
  // 62 ASCII bytes, then a 2-byte 'é' that would straddle the 63-byte limit.
  state.self_id = std::string(62, 'x') + "\xC3\xA9" + "tail";
  writer.Publish(state);
  EXPECT_EQ(writer.view().snapshot().self_id, std::string(62, 'x'));
}

TEST(PublishReadTest, ShorterStringsOverwriteLongerOnesCompletely) {
  shm::Writer writer = shm::Writer::CreateInProcess(5s);
  shm::PublishedState state;
  state.leader_app_address = "http://a-long-host-name.example:8080/path";
  writer.Publish(state);
  state.leader_app_address = "http://b:1";
  writer.Publish(state);
  EXPECT_EQ(writer.view().snapshot().leader_app_address, "http://b:1");
}

// Every field of a, compared with b's.
void ExpectSameSnapshot(const Snapshot& a, const Snapshot& b) {
  EXPECT_EQ(a.role, b.role);
  EXPECT_EQ(a.term, b.term);
  EXPECT_EQ(a.self_id, b.self_id);
  EXPECT_EQ(a.leader_id, b.leader_id);
  EXPECT_EQ(a.leader_peer_address, b.leader_peer_address);
  EXPECT_EQ(a.leader_app_address, b.leader_app_address);
  EXPECT_EQ(a.lease_until_ns, b.lease_until_ns);
  EXPECT_EQ(a.lease_valid, b.lease_valid);
  EXPECT_EQ(a.stale, b.stale);
  EXPECT_EQ(a.change_counter, b.change_counter);
}

// snapshot(&reused) reads what snapshot() reads, whatever the reused Snapshot held before:
// texts grow, shrink, keep their length with new bytes, and empty.
TEST(PublishReadTest, SnapshotIntoAReusedSnapshotReadsWhatANewOneReads) {
  shm::Writer writer = shm::Writer::CreateInProcess(5s);
  View view = writer.view();
  Snapshot reused;
  reused.role = Role::kCandidate;  // left over from elsewhere: all of it must be overwritten
  reused.term = 99;
  reused.self_id = std::string(40, 's');
  reused.leader_app_address = "stale text";
  reused.lease_until_ns = 1;
  reused.lease_valid = true;
  reused.stale = true;
  reused.change_counter = 12345;

  std::vector<shm::PublishedState> states;
  states.push_back(LeaderState(1));
  shm::PublishedState follower;
  follower.term = 2;
  follower.self_id = "node-a";
  follower.leader_id = "node-b";  // same length as "node-a", other bytes
  follower.leader_peer_address = "tcp://10.0.0.6:7000";
  follower.leader_app_address = "http://b:1";  // shorter
  states.push_back(follower);
  shm::PublishedState long_texts = follower;
  long_texts.term = 3;
  long_texts.self_id = std::string(63, 'i');
  long_texts.leader_id = std::string(200, 'l');  // cut to 63
  long_texts.leader_peer_address = std::string(191, 'p');
  long_texts.leader_app_address = "http://a-long-host-name.example:8080/path";
  states.push_back(long_texts);
  shm::PublishedState empty;  // every text empty, no leader known
  empty.term = 4;
  states.push_back(empty);
  states.push_back(LeaderState(5));

  for (const shm::PublishedState& state : states) {
    SCOPED_TRACE("term " + std::to_string(state.term));
    writer.Publish(state);
    view.snapshot(&reused);
    ExpectSameSnapshot(reused, view.snapshot());
    shm::PublishedState stored = state;  // as the fields hold it: ASCII, cut to size
    stored.leader_id.resize(std::min(stored.leader_id.size(), shm::kIdBytes - 1));
    ExpectSame(stored, reused);
  }
}

// Texts of every length read back exactly, on both paths: a text ends inside a word, on its
// last byte, or fills its field but for the NUL.
TEST(PublishReadTest, TextsOfEveryLengthReadBack) {
  shm::Writer writer = shm::Writer::CreateInProcess(5s);
  View view = writer.view();
  Snapshot reused;
  for (size_t length = 0; length < shm::kAddressBytes; ++length) {
    SCOPED_TRACE("length " + std::to_string(length));
    shm::PublishedState state;
    state.self_id = std::string(std::min(length, shm::kIdBytes - 1), 'a' + length % 26);
    state.leader_id = std::string(std::min(length, shm::kIdBytes - 1) / 2, 'L');
    state.leader_peer_address = std::string(length, 'p');
    state.leader_app_address = std::string(shm::kAddressBytes - 1 - length, 'q');
    writer.Publish(state);
    view.snapshot(&reused);
    ExpectSame(state, reused);
    ExpectSame(state, view.snapshot());
  }
}

// A writer that leaves no NUL in a field (not ours: ours always keeps one) has its text read to
// the end of the field, never beyond it.
TEST(PublishReadTest, ATextWithoutItsNulIsReadToTheEndOfItsField) {
  TestSegment segment("no-nul");
  auto writer = shm::Writer::Create(segment.name(), 0600, 5s);
  ASSERT_TRUE(writer.ok()) << writer.error();
  writer->Publish(LeaderState(3));
  testing::RawMapping raw(segment.posix(), sizeof(shm::Record));
  ASSERT_TRUE(raw.ok());
  auto* record = raw.as<shm::Record>();
  for (auto& word : record->self_id.words) word.store(0x6969696969696969ULL);  // "iiiiiiii"
  for (auto& word : record->leader_app_address.words) word.store(0x6161616161616161ULL);
  auto view = View::Open(segment.name());
  ASSERT_TRUE(view.ok()) << view.error();
  Snapshot reused;
  view->snapshot(&reused);
  for (const Snapshot& s : {view->snapshot(), reused}) {
    EXPECT_EQ(s.self_id, std::string(shm::kIdBytes, 'i'));
    EXPECT_EQ(s.leader_id, "node-a") << "the next field is its own";
    EXPECT_EQ(s.leader_app_address, std::string(shm::kAddressBytes, 'a'));
  }
}

TEST(PublishReadTest, OneRoleTypeForReaderAndWriter) {
  static_assert(std::is_same_v<Role, shm::Role>, "the reader's Role is the record's");
  static_assert(std::is_same_v<decltype(shm::PublishedState::role), shm::Role>);
  static_assert(std::is_same_v<std::underlying_type_t<Role>,
                               decltype(std::declval<shm::Record>().role.load())>,
                "Role is stored as it is");
  TestSegment segment("role");
  auto writer = shm::Writer::Create(segment.name(), 0600, 5s);
  ASSERT_TRUE(writer.ok()) << writer.error();
  writer->Publish(LeaderState(9));
  testing::RawMapping raw(segment.posix(), sizeof(shm::Record));
  ASSERT_TRUE(raw.ok());
  EXPECT_EQ(raw.as<shm::Record>()->role.load(), static_cast<uint32_t>(Role::kLeader));
}

TEST(PublishReadTest, RoleNames) {
  EXPECT_STREQ(RoleName(Role::kFollower), "follower");
  EXPECT_STREQ(RoleName(Role::kCandidate), "candidate");
  EXPECT_STREQ(RoleName(Role::kLeader), "leader");
}

}  // namespace
}  // namespace instaface
