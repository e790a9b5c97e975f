// snapshot() never allocates, whatever the texts' lengths: a Snapshot holds them inline, and
// so does every copy of one. Counted by replacing the global operator new, which is why this is
// a binary of its own.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <new>
#include <string>

#include "instaface/instaface.h"
#include "instaface/shm_writer.h"
#include "instaface/view.h"
#include "test_segment.h"

namespace {
std::atomic<uint64_t> allocations{0};
}  // namespace

void* operator new(std::size_t size) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace instaface {
namespace {

using namespace std::chrono_literals;

shm::PublishedState AgentLike(uint64_t term) {
  shm::PublishedState state;
  state.role = Role::kLeader;
  state.term = term;
  state.lease_until_ns = 1ULL << 62;
  state.self_id = state.leader_id = "bench-1";
  state.leader_peer_address = "tcp://127.0.0.1:40123";  // longer than a std::string holds inline
  state.leader_app_address = "http://127.0.0.1:8080";
  return state;
}

// The longest texts the record holds.
shm::PublishedState Longest(uint64_t term) {
  shm::PublishedState state = AgentLike(term);
  state.self_id = std::string(shm::kIdBytes - 1, 's');
  state.leader_id = std::string(shm::kIdBytes - 1, 'l');
  state.leader_peer_address = std::string(shm::kAddressBytes - 1, 'p');
  state.leader_app_address = std::string(shm::kAddressBytes - 1, 'a');
  return state;
}

TEST(SnapshotAllocationTest, ANewSnapshotAllocatesNothing) {
  shm::Writer writer = shm::Writer::CreateInProcess(3600s);
  const View view = writer.view();
  for (const shm::PublishedState& state : {AgentLike(1), Longest(2)}) {
    writer.Publish(state);
    const uint64_t before = allocations.load();
    for (int i = 0; i < 1000; ++i) {
      const Snapshot s = view.snapshot();
      ASSERT_EQ(s.term, state.term);
    }
    EXPECT_EQ(allocations.load() - before, 0u) << "per 1000 new Snapshots of term " << state.term;
    const Snapshot s = view.snapshot();
    EXPECT_EQ(s.leader_peer_address, state.leader_peer_address);
    EXPECT_EQ(s.leader_app_address, state.leader_app_address);
  }
}

TEST(SnapshotAllocationTest, ACopiedSnapshotAllocatesNothing) {
  shm::Writer writer = shm::Writer::CreateInProcess(3600s);
  const View view = writer.view();
  writer.Publish(Longest(1));
  const Snapshot original = view.snapshot();
  const uint64_t before = allocations.load();
  Snapshot copy = original;
  copy = view.snapshot();
  EXPECT_EQ(allocations.load() - before, 0u);
  EXPECT_EQ(copy.leader_app_address, original.leader_app_address);
}

TEST(SnapshotAllocationTest, AReusedSnapshotAllocatesNothingFromTheFirstRead) {
  shm::Writer writer = shm::Writer::CreateInProcess(3600s);
  const View view = writer.view();
  writer.Publish(AgentLike(1));
  Snapshot s;
  const uint64_t before = allocations.load();
  view.snapshot(&s);
  for (int i = 0; i < 1000; ++i) view.snapshot(&s);
  EXPECT_EQ(allocations.load() - before, 0u) << "per 1001 reads of an unchanged record";

  // A new leader with longer texts: still nothing.
  writer.Publish(Longest(2));
  const uint64_t after_publish = allocations.load();
  view.snapshot(&s);
  EXPECT_EQ(allocations.load() - after_publish, 0u);
  EXPECT_EQ(s.leader_app_address, std::string(shm::kAddressBytes - 1, 'a'));
  EXPECT_EQ(s.term, 2u);
}

TEST(SnapshotAllocationTest, TheCApiAllocatesNothing) {
  testing::TestSegment segment("c-allocation");
  auto writer = shm::Writer::Create(segment.name(), 0600, 3600s);
  ASSERT_TRUE(writer.ok()) << writer.error();
  writer->Publish(Longest(1));
  instaface_view* handle = nullptr;
  ASSERT_EQ(instaface_open(segment.name().c_str(), &handle, nullptr, 0), INSTAFACE_OK);
  instaface_snapshot_t out;
  const uint64_t before = allocations.load();
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(instaface_snapshot(handle, &out), INSTAFACE_OK);
  EXPECT_EQ(allocations.load() - before, 0u);
  EXPECT_EQ(std::string(out.leader_app_address), std::string(shm::kAddressBytes - 1, 'a'));
  instaface_close(handle);
}

}  // namespace
}  // namespace instaface
