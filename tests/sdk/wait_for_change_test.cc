// WaitForChange sleeps on the futex until a publish, in this process or another, and times out
// when nothing is published. Sleepers register in `waiters` and unregister when they leave.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "instaface/shm_layout.h"
#include "instaface/shm_writer.h"
#include "instaface/view.h"
#include "test_segment.h"

namespace instaface {
namespace {

using namespace std::chrono_literals;
using testing::RawMapping;
using testing::TestSegment;

// Liveness deadline for "it woke up": generous, never a performance threshold.
constexpr auto kDeadline = 10s;

// Waits until `count` readers sleep on the record (or the deadline passes).
bool WaitForSleepers(const shm::Record& record, uint32_t count) {
  const auto deadline = std::chrono::steady_clock::now() + kDeadline;
  while (record.waiters.load() != count) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

class WaitForChangeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto writer = shm::Writer::Create(segment_.name(), 0600, 10s);
    ASSERT_TRUE(writer.ok()) << writer.error();
    writer_.emplace(std::move(*writer));
    auto view = View::Open(segment_.name());
    ASSERT_TRUE(view.ok()) << view.error();
    view_.emplace(std::move(*view));
    raw_.emplace(segment_.posix(), sizeof(shm::Record));
    ASSERT_TRUE(raw_->ok());
  }
  const shm::Record& record() const { return *raw_->as<shm::Record>(); }

  TestSegment segment_{"wait"};
  std::optional<shm::Writer> writer_;
  std::optional<View> view_;
  std::optional<RawMapping> raw_;
};

TEST_F(WaitForChangeTest, WakesOnPublish) {
  const uint32_t seen = view_->snapshot().change_counter;
  std::atomic<uint32_t> woke_with{seen};
  std::atomic<bool> returned{false};
  std::thread waiter([&] {
    woke_with = view_->WaitForChange(seen, kDeadline);
    returned = true;
  });
  ASSERT_TRUE(WaitForSleepers(record(), 1));
  EXPECT_FALSE(returned.load()) << "returned before anything was published";
  shm::PublishedState state;
  state.term = 2;
  writer_->Publish(state);
  waiter.join();
  EXPECT_EQ(woke_with.load(), seen + 1);
  EXPECT_EQ(view_->snapshot().term, 2u);
  EXPECT_EQ(record().waiters.load(), 0u) << "the sleeper must unregister";
}

TEST_F(WaitForChangeTest, WakesEverySleeper) {
  const uint32_t seen = view_->snapshot().change_counter;
  std::atomic<int> woke{0};
  std::vector<std::thread> waiters;
  for (int i = 0; i < 3; ++i) {
    waiters.emplace_back([&] {
      if (view_->WaitForChange(seen, kDeadline) != seen) ++woke;
    });
  }
  ASSERT_TRUE(WaitForSleepers(record(), 3));
  writer_->Publish(shm::PublishedState{});
  for (auto& t : waiters) t.join();
  EXPECT_EQ(woke.load(), 3);
}

TEST_F(WaitForChangeTest, TimesOutWhenNothingChanges) {
  const uint32_t seen = view_->snapshot().change_counter;
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(view_->WaitForChange(seen, 50ms), seen);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 50ms) << "returned before its timeout";
  EXPECT_EQ(record().waiters.load(), 0u);
}

TEST_F(WaitForChangeTest, LivenessStampsDoNotWakeSleepers) {
  const uint32_t seen = view_->snapshot().change_counter;
  std::atomic<bool> stop{false};
  std::thread stamper([&] {
    while (!stop) {
      writer_->StampLiveness();
      std::this_thread::sleep_for(1ms);
    }
  });
  EXPECT_EQ(view_->WaitForChange(seen, 100ms), seen);
  stop = true;
  stamper.join();
}

TEST_F(WaitForChangeTest, ReturnsAtOnceWhenAlreadyChanged) {
  const uint32_t seen = view_->snapshot().change_counter;
  writer_->Publish(shm::PublishedState{});
  EXPECT_EQ(view_->WaitForChange(seen, 3600s), seen + 1);
  EXPECT_EQ(view_->WaitForChange(seen + 1, 0ns), seen + 1) << "zero timeout only reads";
}

TEST_F(WaitForChangeTest, WriterSkipsTheWakeWithoutSleepers) {
  // Nothing to observe directly but the protocol state: no sleepers registered means the
  // writer's check reads zero.
  EXPECT_EQ(record().waiters.load(), 0u);
  writer_->Publish(shm::PublishedState{});
  EXPECT_EQ(record().waiters.load(), 0u);
}

// The futex word is shared between processes: a reader in another process wakes too.
TEST_F(WaitForChangeTest, WakesAReaderInAnotherProcess) {
  const uint32_t seen = view_->snapshot().change_counter;
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto view = View::Open(segment_.name());
    if (!view.ok()) _exit(2);
    const uint32_t now = view->WaitForChange(seen, kDeadline);
    _exit(now != seen && view->snapshot().term == 77 ? 0 : 1);
  }
  ASSERT_TRUE(WaitForSleepers(record(), 1));
  shm::PublishedState state;
  state.term = 77;
  writer_->Publish(state);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(WaitForChangeInProcessTest, WakesOnPublishToAnInProcessRecord) {
  shm::Writer writer = shm::Writer::CreateInProcess(10s);
  View view = writer.view();
  const uint32_t seen = view.snapshot().change_counter;
  std::thread publisher([&] {
    std::this_thread::sleep_for(20ms);
    writer.Publish(shm::PublishedState{});
  });
  EXPECT_EQ(view.WaitForChange(seen, kDeadline), seen + 1);
  publisher.join();
}

}  // namespace
}  // namespace instaface
