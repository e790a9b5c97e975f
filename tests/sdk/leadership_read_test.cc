// Regression test for a check-then-act race. The pattern the SDK used to suggest,
//
//   if (view.is_leader()) { write(fenced by view.snapshot().term); }
//
// reads the record twice. Between the two reads the lease can end and the next term begin, so
// the fence token can be a term in which this node never led: the check was about one
// leadership and the act uses another's token. View::leadership() answers both from one read.
//
// The writer alternates "leader in term 2k, lease valid" with "follower in term 2k+1". Every
// even term is a leadership of this node and no odd one is, and each leader publish carries a
// lease end derived from its term, so a leadership with an odd term, or with a lease end that
// is not its term's, was put together from two publishes.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <thread>

#include "instaface/clock.h"
#include "instaface/shm_writer.h"
#include "instaface/view.h"
#include "test_segment.h"

namespace instaface {
namespace {

using namespace std::chrono_literals;

// The reader runs for at least kReadAtLeast and until the two-read pattern went wrong
// kEnoughTwoReadMismatches times, which takes milliseconds when the writer and the reader run
// at once; it gives up after kReadAtMost (then the test fails: the race was not exercised).
constexpr auto kReadAtLeast = 500ms;
constexpr auto kReadAtMost = 10s;
constexpr uint64_t kEnoughTwoReadMismatches = 1000;
constexpr int64_t kHoldEachStateNs = 300;

shm::PublishedState Published(uint64_t term, uint64_t lease_base) {
  shm::PublishedState s;
  s.term = term;
  const bool leads = term % 2 == 0;
  s.role = leads ? Role::kLeader : Role::kFollower;
  s.lease_until_ns = leads ? lease_base + term : 0;
  s.self_id = "a";
  s.leader_id = leads ? "a" : "b";
  return s;
}

// Whether `lead` is one the writer published: an even term with its own lease end.
bool PublishedLeadership(const Leadership& lead, uint64_t lease_base) {
  return lead.term % 2 == 0 && lead.lease_until_ns == lease_base + lead.term;
}

// The pattern leadership() replaces: the decision from one read, the term from another.
std::optional<Leadership> LeadershipFromTwoReads(const View& view) {
  if (!view.is_leader()) return std::nullopt;
  const Snapshot s = view.snapshot();
  return Leadership{s.term, s.lease_until_ns};
}

TEST(LeadershipRead, TermBelongsToTheLeadershipChecked) {
  testing::TestSegment segment("leadership");
  auto writer = shm::Writer::Create(segment.name(), 0600, 3600s);
  ASSERT_TRUE(writer.ok()) << writer.error();
  auto view = View::Open(segment.name());
  ASSERT_TRUE(view.ok()) << view.error();
  const uint64_t lease_base = static_cast<uint64_t>(LeaseClockNowNs()) + 3600'000'000'000ULL;

  std::atomic<bool> done{false};
  std::thread flipper([&] {
    for (uint64_t term = 2; !done.load(std::memory_order_relaxed); ++term) {
      writer->Publish(Published(term, lease_base));
      // Keep each state for a moment: back-to-back publishes leave the record mid-update most
      // of the time, and the reader would then see the few stable moments of one kind mostly.
      const int64_t hold_until = LeaseClockNowNs() + kHoldEachStateNs;
      while (LeaseClockNowNs() < hold_until) {
      }
    }
  });

  uint64_t calls = 0;
  uint64_t leading = 0;
  uint64_t wrong = 0;  // leadership() answers no publish held
  uint64_t two_read_leading = 0;
  uint64_t two_read_wrong = 0;
  const auto start = std::chrono::steady_clock::now();
  for (;;) {
    const auto elapsed = std::chrono::steady_clock::now() - start;
    if (elapsed >= kReadAtMost) break;
    if (elapsed >= kReadAtLeast && two_read_wrong >= kEnoughTwoReadMismatches) break;
    for (int i = 0; i < 256; ++i) {
      ++calls;
      if (const std::optional<Leadership> lead = view->leadership()) {
        ++leading;
        if (!PublishedLeadership(*lead, lease_base)) {
          ++wrong;
          ADD_FAILURE() << "leadership() said leader in term " << lead->term << " with lease end "
                        << lead->lease_until_ns - lease_base << " past the base";
        }
      }
      if (const std::optional<Leadership> lead = LeadershipFromTwoReads(*view)) {
        ++two_read_leading;
        if (!PublishedLeadership(*lead, lease_base)) ++two_read_wrong;
      }
    }
    if (wrong > 0) break;
  }
  done = true;
  flipper.join();

  std::printf(
      "%llu calls each: leadership() led %llu times, wrong %llu; two reads led %llu "
      "times, wrong %llu\n",
      static_cast<unsigned long long>(calls), static_cast<unsigned long long>(leading),
      static_cast<unsigned long long>(wrong), static_cast<unsigned long long>(two_read_leading),
      static_cast<unsigned long long>(two_read_wrong));
  EXPECT_EQ(wrong, 0u) << "leadership() took its term from another read than its decision";
  EXPECT_GT(leading, 0u) << "the reader never saw a leadership: nothing was tested";
  // The same loop, the same writer: the two-read pattern must have gone wrong here, or the run
  // did not exercise the race that leadership() has to survive.
  EXPECT_GT(two_read_wrong, 0u) << "the race was not exercised in " << calls << " calls";
}

// The same race, step by step: the publish that lands between the two reads.
TEST(LeadershipRead, TwoReadsCanFenceWithATermThisNodeDidNotLead) {
  shm::Writer writer = shm::Writer::CreateInProcess(3600s);
  View view = writer.view();
  const uint64_t lease_base = static_cast<uint64_t>(LeaseClockNowNs()) + 3600'000'000'000ULL;
  writer.Publish(Published(6, lease_base));

  const bool checked = view.is_leader();
  const std::optional<Leadership> lead = view.leadership();
  writer.Publish(Published(7, lease_base));  // the lease is lost and term 7 begins elsewhere
  const uint64_t fence = view.snapshot().term;

  EXPECT_TRUE(checked);
  EXPECT_EQ(fence, 7u) << "two reads: checked as leader, fenced with a term it never led";
  ASSERT_TRUE(lead.has_value());
  EXPECT_EQ(lead->term, 6u) << "one read: the term of the leadership that was checked";
  EXPECT_EQ(lead->lease_until_ns, lease_base + 6);
  EXPECT_FALSE(view.leadership().has_value());
}

}  // namespace
}  // namespace instaface
