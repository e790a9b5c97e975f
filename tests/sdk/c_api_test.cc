// The C API: error codes and messages, snapshots in fixed buffers, waiting.
#include "instaface/instaface.h"

#include <gtest/gtest.h>
#include <time.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "instaface/clock.h"
#include "instaface/shm_layout.h"
#include "instaface/shm_writer.h"
#include "test_segment.h"

static_assert(INSTAFACE_ID_BYTES == instaface::shm::kIdBytes, "C and C++ id sizes differ");
static_assert(INSTAFACE_ADDRESS_BYTES == instaface::shm::kAddressBytes,
              "C and C++ address sizes differ");

namespace instaface {
namespace {

using namespace std::chrono_literals;
using testing::TestSegment;

// The clock of the record's lease ends and liveness stamps.
uint64_t LeaseNs() { return static_cast<uint64_t>(instaface::LeaseClockNowNs()); }

TEST(CApiTest, OpenMissingSegmentGivesNotFoundAndAMessage) {
  TestSegment segment("c-missing");
  instaface_view* view = reinterpret_cast<instaface_view*>(0x1);
  char error[256];
  EXPECT_EQ(instaface_open(segment.name().c_str(), &view, error, sizeof error),
            INSTAFACE_ERR_NOT_FOUND);
  EXPECT_EQ(view, nullptr);
  EXPECT_NE(std::strstr(error, segment.posix().c_str()), nullptr) << error;
  EXPECT_STREQ(instaface_last_error(), error);
}

TEST(CApiTest, ErrorMessageIsCutToTheBuffer) {
  TestSegment segment("c-short");
  instaface_view* view = nullptr;
  char error[8];
  std::memset(error, 'z', sizeof error);
  EXPECT_EQ(instaface_open(segment.name().c_str(), &view, error, sizeof error),
            INSTAFACE_ERR_NOT_FOUND);
  EXPECT_EQ(std::strlen(error), sizeof error - 1);
  EXPECT_GT(std::strlen(instaface_last_error()), sizeof error);
}

TEST(CApiTest, IncompatibleAndInvalidArguments) {
  TestSegment segment("c-incompatible");
  {
    auto writer = shm::Writer::Create(segment.name(), 0600, 1s);
    ASSERT_TRUE(writer.ok()) << writer.error();
    testing::RawMapping raw(segment.posix(), sizeof(shm::Record));
    ASSERT_TRUE(raw.ok());
    raw.as<shm::Record>()->magic = 0;
  }
  instaface_view* view = nullptr;
  EXPECT_EQ(instaface_open(segment.name().c_str(), &view, nullptr, 0), INSTAFACE_ERR_INCOMPATIBLE);
  EXPECT_NE(std::strstr(instaface_last_error(), "magic"), nullptr) << instaface_last_error();
  EXPECT_EQ(instaface_open(nullptr, &view, nullptr, 0), INSTAFACE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(instaface_open("a/b", &view, nullptr, 0), INSTAFACE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(instaface_snapshot(nullptr, nullptr), INSTAFACE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(instaface_is_leader(nullptr), 0);
  instaface_leadership_t lead = {7, 7};
  EXPECT_EQ(instaface_leadership(nullptr, &lead), 0);
  EXPECT_EQ(lead.term, 0u);
  EXPECT_EQ(instaface_leadership(nullptr, nullptr), 0);
  instaface_close(nullptr);
}

TEST(CApiTest, SnapshotIsLeaderAndWait) {
  TestSegment segment("c-roundtrip");
  auto writer = shm::Writer::Create(segment.name(), 0600, 10s);
  ASSERT_TRUE(writer.ok()) << writer.error();
  instaface_view* view = nullptr;
  ASSERT_EQ(instaface_open(segment.name().c_str(), &view, nullptr, 0), INSTAFACE_OK)
      << instaface_last_error();
  EXPECT_STREQ(instaface_last_error(), "");

  instaface_snapshot_t before;
  ASSERT_EQ(instaface_snapshot(view, &before), INSTAFACE_OK);
  EXPECT_EQ(before.role, INSTAFACE_ROLE_FOLLOWER);
  EXPECT_EQ(instaface_is_leader(view), 0);
  instaface_leadership_t lead = {7, 7};
  EXPECT_EQ(instaface_leadership(view, &lead), 0);
  EXPECT_EQ(lead.term, 0u) << "a follower gets no term to fence with";
  EXPECT_EQ(lead.lease_until_ns, 0u);

  uint32_t current = 0;
  EXPECT_EQ(instaface_wait_for_change(view, before.change_counter, 20'000'000, &current),
            INSTAFACE_ERR_TIMEOUT);
  EXPECT_EQ(current, before.change_counter);

  shm::PublishedState state;
  state.role = Role::kLeader;
  state.term = 12;
  state.lease_until_ns = LeaseNs() + 60'000'000'000ULL;
  state.self_id = "node-c";
  state.leader_id = "node-c";
  state.leader_peer_address = "tcp://127.0.0.1:7003";
  state.leader_app_address = std::string(400, 'u');  // longer than the C buffer
  std::thread publisher([&] {
    std::this_thread::sleep_for(20ms);
    writer->Publish(state);
  });
  EXPECT_EQ(instaface_wait_for_change(view, before.change_counter, 10'000'000'000ULL, &current),
            INSTAFACE_OK);
  publisher.join();
  EXPECT_EQ(current, before.change_counter + 1);

  instaface_snapshot_t after;
  ASSERT_EQ(instaface_snapshot(view, &after), INSTAFACE_OK);
  EXPECT_EQ(after.role, INSTAFACE_ROLE_LEADER);
  EXPECT_EQ(after.term, 12u);
  EXPECT_STREQ(after.self_id, "node-c");
  EXPECT_STREQ(after.leader_id, "node-c");
  EXPECT_STREQ(after.leader_peer_address, "tcp://127.0.0.1:7003");
  EXPECT_EQ(std::string(after.leader_app_address), std::string(INSTAFACE_ADDRESS_BYTES - 1, 'u'));
  EXPECT_EQ(after.lease_valid, 1);
  EXPECT_EQ(after.stale, 0);
  EXPECT_EQ(after.change_counter, current);
  EXPECT_EQ(instaface_is_leader(view), 1);
  EXPECT_EQ(instaface_leadership(view, &lead), 1);
  EXPECT_EQ(lead.term, 12u);
  EXPECT_EQ(lead.lease_until_ns, state.lease_until_ns);
  EXPECT_EQ(instaface_leadership(view, nullptr), 1);
  EXPECT_STREQ(instaface_role_name(after.role), "leader");
  EXPECT_STREQ(instaface_role_name(99), "unknown");

  writer->StampLiveness(LeaseNs() - 20'000'000'000ULL);
  ASSERT_EQ(instaface_snapshot(view, &after), INSTAFACE_OK);
  EXPECT_EQ(after.stale, 1);
  EXPECT_EQ(instaface_is_leader(view), 0);
  EXPECT_EQ(instaface_leadership(view, &lead), 0);
  EXPECT_EQ(lead.term, 0u);
  instaface_close(view);
}

TEST(CApiTest, LeaseClockIsBootTime) {
  timespec before, after;
  clock_gettime(CLOCK_BOOTTIME, &before);
  const int64_t now = instaface_lease_clock_now_ns();
  clock_gettime(CLOCK_BOOTTIME, &after);
  EXPECT_GE(now, before.tv_sec * 1'000'000'000LL + before.tv_nsec);
  EXPECT_LE(now, after.tv_sec * 1'000'000'000LL + after.tv_nsec);
}

}  // namespace
}  // namespace instaface
