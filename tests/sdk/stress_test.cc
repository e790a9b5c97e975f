// One writer, many reader threads: every snapshot, into a new Snapshot or a reused one, must be
// one published state, never a mix of two. The writer derives every field from one counter, so a
// reader can rebuild the state it should have seen from the term alone. Run by the lead under
// ThreadSanitizer as well, which checks the seqlock's memory orders: every shared field is atomic,
// so any report is a bug.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "instaface/shm_writer.h"
#include "instaface/view.h"
#include "test_segment.h"

namespace instaface {
namespace {

using namespace std::chrono_literals;

// Leader states carry a lease that ended long ago (1 s after boot), the others one that ends
// far in the future: a consistent read is never "leader", but a role taken from one publish
// with a lease from another would be.
constexpr uint64_t kPastLease = 1'000'000'000ULL;
constexpr uint64_t kFutureLease = 1ULL << 62;
constexpr auto kWriterRunsFor = 1500ms;  // wall time; fewer publishes under TSan

shm::PublishedState StateFor(uint64_t i) {
  shm::PublishedState s;
  s.term = i;
  s.role = static_cast<Role>(i % 3);
  s.lease_until_ns = (s.role == Role::kLeader ? kPastLease : kFutureLease) + i;
  s.self_id = "self-" + std::to_string(i);
  s.leader_id = "leader-" + std::to_string(i);
  s.leader_peer_address = "tcp://" + std::to_string(i) + ":" + std::string(i % 150, 'p');
  s.leader_app_address = std::string(i % 192, static_cast<char>('a' + i % 26));
  return s;
}

// Empty when consistent, else what differs.
std::string Inconsistency(const Snapshot& seen) {
  const shm::PublishedState want = StateFor(seen.term);
  std::string out;
  if (seen.role != want.role) out += " role";
  if (seen.lease_until_ns != want.lease_until_ns) out += " lease";
  if (seen.self_id != want.self_id) out += " self_id";
  if (seen.leader_id != want.leader_id) out += " leader_id";
  if (seen.leader_peer_address != want.leader_peer_address) out += " peer";
  if (seen.leader_app_address != want.leader_app_address) out += " app";
  return out.empty() ? out : "term " + std::to_string(seen.term) + ":" + out;
}

struct ReaderResult {
  uint64_t reads = 0;
  uint64_t distinct_terms = 0;
  std::string failure;
};

TEST(SdkStressTest, EverySnapshotIsOnePublishedState) {
  testing::TestSegment segment("stress");
  auto writer = shm::Writer::Create(segment.name(), 0600, 3600s);
  ASSERT_TRUE(writer.ok()) << writer.error();
  auto view = View::Open(segment.name());
  ASSERT_TRUE(view.ok()) << view.error();
  writer->Publish(StateFor(0));

  std::atomic<bool> done{false};
  constexpr int kSnapshotReaders = 3;
  std::vector<ReaderResult> results(kSnapshotReaders);
  std::vector<std::thread> threads;
  for (int r = 0; r < kSnapshotReaders; ++r) {
    threads.emplace_back([&, r] {
      ReaderResult& result = results[r];
      uint64_t last_term = 0;
      // Odd readers read into one reused Snapshot, whose texts grow and shrink under them.
      const bool reuse = r % 2 == 1;
      Snapshot s;
      while (!done.load(std::memory_order_relaxed) && result.failure.empty()) {
        if (reuse) {
          view->snapshot(&s);
        } else {
          s = view->snapshot();
        }
        ++result.reads;
        result.failure = Inconsistency(s);
        if (s.term < last_term) result.failure = "term went back";
        if (s.term != last_term) ++result.distinct_terms;
        last_term = s.term;
      }
    });
  }
  std::atomic<uint64_t> leader_answers{0};
  threads.emplace_back([&] {  // the hot paths, racing with the writer too
    while (!done.load(std::memory_order_relaxed)) {
      if (view->is_leader()) ++leader_answers;  // only a torn read can say leader
      if (view->leadership()) ++leader_answers;
    }
  });
  std::atomic<uint64_t> wakeups{0};
  std::string waiter_failure;
  threads.emplace_back([&] {  // a sleeper, woken by the writer over and over
    uint32_t seen = view->snapshot().change_counter;
    while (!done.load(std::memory_order_relaxed)) {
      const uint32_t now = view->WaitForChange(seen, 50ms);
      if (now == seen) continue;
      if (static_cast<int32_t>(now - seen) < 0) waiter_failure = "change counter went back";
      ++wakeups;
      seen = now;
    }
  });

  uint64_t published = 0;
  const auto until = std::chrono::steady_clock::now() + kWriterRunsFor;
  while (std::chrono::steady_clock::now() < until) {
    for (int k = 0; k < 64; ++k) writer->Publish(StateFor(++published));
    writer->StampLiveness();
  }
  done = true;
  for (auto& t : threads) t.join();

  uint64_t total_reads = 0;
  for (const auto& result : results) {
    EXPECT_EQ(result.failure, "");
    EXPECT_GT(result.distinct_terms, 1u) << "a reader never saw the writer move";
    total_reads += result.reads;
  }
  EXPECT_EQ(leader_answers.load(), 0u)
      << "is_leader() or leadership() combined fields of two publishes";
  EXPECT_EQ(waiter_failure, "");
  EXPECT_GT(wakeups.load(), 0u);
  EXPECT_EQ(view->snapshot().term, published);
  std::printf("published %llu states; %llu snapshots, %llu wakeups\n",
              static_cast<unsigned long long>(published),
              static_cast<unsigned long long>(total_reads),
              static_cast<unsigned long long>(wakeups.load()));
}

}  // namespace
}  // namespace instaface
