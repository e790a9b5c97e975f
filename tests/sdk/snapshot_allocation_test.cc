// snapshot(&reused) allocates nothing once the reused Snapshot's strings have held texts as
// long as the published ones; snapshot() allocates every text longer than a string holds inline.
// Counted by replacing the global operator new, which is why this is a binary of its own.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <new>
#include <string>

#include "instaface/shm_writer.h"
#include "instaface/view.h"

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
  state.leader_peer_address = "tcp://127.0.0.1:40123";  // longer than 15 bytes: on the heap
  state.leader_app_address = "http://127.0.0.1:8080";
  return state;
}

TEST(SnapshotAllocationTest, AReusedSnapshotAllocatesNothingOnceWarm) {
  shm::Writer writer = shm::Writer::CreateInProcess(3600s);
  const View view = writer.view();
  writer.Publish(AgentLike(1));
  Snapshot s;
  view.snapshot(&s);  // the strings grow to the texts' lengths
  const uint64_t before = allocations.load();
  for (int i = 0; i < 1000; ++i) view.snapshot(&s);
  EXPECT_EQ(allocations.load() - before, 0u) << "per 1000 reads of an unchanged record";

  // A new leader with texts no longer than the last ones: still nothing.
  shm::PublishedState next = AgentLike(2);
  next.leader_id = "bench-2";
  next.leader_app_address = "http://127.0.0.2:80";
  writer.Publish(next);
  const uint64_t after_publish = allocations.load();
  view.snapshot(&s);
  EXPECT_EQ(allocations.load() - after_publish, 0u);
  EXPECT_EQ(s.leader_app_address, "http://127.0.0.2:80");
  EXPECT_EQ(s.term, 2u);
}

TEST(SnapshotAllocationTest, ANewSnapshotAllocatesItsLongTexts) {
  shm::Writer writer = shm::Writer::CreateInProcess(3600s);
  const View view = writer.view();
  writer.Publish(AgentLike(1));
  const uint64_t before = allocations.load();
  const Snapshot s = view.snapshot();
  EXPECT_GE(allocations.load() - before, 1u) << "the two addresses do not fit inline";
  EXPECT_EQ(s.leader_peer_address, "tcp://127.0.0.1:40123");
}

}  // namespace
}  // namespace instaface
