#include "instaface/wire/replay_window.h"

#include <gtest/gtest.h>

namespace instaface::wire {
namespace {

constexpr uint64_t kSecond = 1'000'000'000ULL;
constexpr uint64_t kNow = 1'700'000'000ULL * kSecond;

TEST(ReplayWindowTest, AcceptsFreshAndRejectsExactReplay) {
  ReplayWindow window;
  EXPECT_EQ(window.Check("a", kNow, 1, kNow), std::nullopt);
  EXPECT_EQ(window.Check("a", kNow, 1, kNow), RejectReason::kReplayed);
  // Same timestamp, other nonce: a different message.
  EXPECT_EQ(window.Check("a", kNow, 2, kNow), std::nullopt);
  // Same pair from another sender: tracked separately.
  EXPECT_EQ(window.Check("b", kNow, 1, kNow), std::nullopt);
}

TEST(ReplayWindowTest, RejectsOlderThanWindowBehindNewest) {
  ReplayWindowOptions options;
  options.window = std::chrono::seconds(5);
  ReplayWindow window(options);
  EXPECT_EQ(window.Check("a", kNow, 1, kNow), std::nullopt);
  // Reordering within the window is fine.
  EXPECT_EQ(window.Check("a", kNow - 4 * kSecond, 2, kNow), std::nullopt);
  EXPECT_EQ(window.Check("a", kNow - 6 * kSecond, 3, kNow), RejectReason::kTooOld);
}

TEST(ReplayWindowTest, RejectsTimestampsFarFromLocalClock) {
  ReplayWindowOptions options;
  options.max_skew = std::chrono::seconds(30);
  ReplayWindow window(options);
  EXPECT_EQ(window.Check("a", kNow - 31 * kSecond, 1, kNow), RejectReason::kTooOld);
  EXPECT_EQ(window.Check("a", kNow + 31 * kSecond, 1, kNow), RejectReason::kTooOld);
  EXPECT_EQ(window.Check("a", kNow + 29 * kSecond, 1, kNow), std::nullopt);
}

TEST(ReplayWindowTest, ForgettingNeverLetsAReplayThrough) {
  ReplayWindowOptions options;
  options.max_entries_per_sender = 4;
  ReplayWindow window(options);
  for (uint64_t i = 0; i < 10; ++i) {
    ASSERT_EQ(window.Check("a", kNow + i, i, kNow), std::nullopt);
  }
  // Every earlier message is refused, remembered or not.
  for (uint64_t i = 0; i < 10; ++i) {
    EXPECT_NE(window.Check("a", kNow + i, i, kNow), std::nullopt) << i;
  }
}

TEST(ReplayWindowTest, KeepsABoundedNumberOfSenders) {
  ReplayWindowOptions options;
  options.max_senders = 3;
  ReplayWindow window(options);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(window.Check("s" + std::to_string(i), kNow, 1, kNow), std::nullopt);
  }
  EXPECT_EQ(window.senders(), 3u);
}

}  // namespace
}  // namespace instaface::wire
