// The Watcher calls back at start, after every publish, and when staleness or the lease flips
// with time alone; Stop returns promptly even while the thread sleeps.
#include "instaface/watcher.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "instaface/clock.h"
#include "instaface/shm_writer.h"

namespace instaface {
namespace {

using namespace std::chrono_literals;

constexpr auto kDeadline = 10s;  // liveness only

// The clock of the record's lease ends and liveness stamps.
uint64_t LeaseNs() { return static_cast<uint64_t>(instaface::LeaseClockNowNs()); }

// Collects callbacks and lets the test wait for one that matches.
class Recorder {
 public:
  void Add(const Snapshot& s) {
    std::lock_guard<std::mutex> lock(mu_);
    seen_.push_back(s);
    cv_.notify_all();
  }
  // Waits for a callback, from the `from`-th on, that satisfies pred.
  template <typename Pred>
  bool WaitFor(Pred pred, size_t from = 0) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, kDeadline, [&] {
      for (size_t i = from; i < seen_.size(); ++i) {
        if (pred(seen_[i])) return true;
      }
      return false;
    });
  }
  std::vector<Snapshot> seen() {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Snapshot> seen_;
};

TEST(WatcherTest, CallsBackAtStartAndAfterEveryPublish) {
  shm::Writer writer = shm::Writer::CreateInProcess(10s);
  View view = writer.view();
  Recorder recorder;
  auto watcher = Watcher::Start(view, [&](const Snapshot& s) { recorder.Add(s); });
  ASSERT_TRUE(recorder.WaitFor([](const Snapshot& s) { return s.term == 0; }));
  for (uint64_t term = 1; term <= 5; ++term) {
    shm::PublishedState state;
    state.term = term;
    writer.Publish(state);
    ASSERT_TRUE(recorder.WaitFor([term](const Snapshot& s) { return s.term == term; }))
        << "no callback for term " << term;
  }
  watcher->Stop();
  const auto seen = recorder.seen();
  for (size_t i = 1; i < seen.size(); ++i) {
    EXPECT_GT(seen[i].change_counter, seen[i - 1].change_counter) << "a callback without change";
  }
}

TEST(WatcherTest, ReportsStaleWhenTheAgentStopsStamping) {
  shm::Writer writer = shm::Writer::CreateInProcess(100ms);
  View view = writer.view();
  Recorder recorder;
  auto watcher = Watcher::Start(view, [&](const Snapshot& s) { recorder.Add(s); });
  // No publish and no stamp from here on: only the timer can notice.
  EXPECT_TRUE(recorder.WaitFor([](const Snapshot& s) { return s.stale; }));
  // The agent resumes stamping (on a loaded machine a single stamp could age out again
  // before the watcher's timer looks).
  const size_t stale_seen = recorder.seen().size();
  std::atomic<bool> resumed{true};
  std::thread stamper([&] {
    while (resumed) {
      writer.StampLiveness();
      std::this_thread::sleep_for(5ms);
    }
  });
  EXPECT_TRUE(recorder.WaitFor([](const Snapshot& s) { return !s.stale; }, stale_seen))
      << "recovery not reported";
  resumed = false;
  stamper.join();
}

TEST(WatcherTest, ReportsTheEndOfTheLease) {
  shm::Writer writer = shm::Writer::CreateInProcess(3600s);
  View view = writer.view();
  shm::PublishedState state;
  state.role = Role::kLeader;
  state.term = 1;
  state.lease_until_ns = LeaseNs() + 200'000'000ULL;
  writer.Publish(state);
  Recorder recorder;
  auto watcher = Watcher::Start(view, [&](const Snapshot& s) { recorder.Add(s); });
  // stale_after/4 is 15 min: only the lease timer can deliver this in time.
  EXPECT_TRUE(recorder.WaitFor([](const Snapshot& s) { return s.term == 1 && !s.lease_valid; }));
}

TEST(WatcherTest, StopReturnsWhileTheThreadSleeps) {
  shm::Writer writer = shm::Writer::CreateInProcess(3600s);  // timer of 15 minutes
  View view = writer.view();
  Recorder recorder;
  auto watcher = Watcher::Start(view, [&](const Snapshot& s) { recorder.Add(s); });
  ASSERT_TRUE(recorder.WaitFor([](const Snapshot&) { return true; }));
  watcher->Stop();  // hangs for 15 minutes if the wake does not reach the sleeper
  watcher->Stop();  // idempotent
  watcher.reset();
}

}  // namespace
}  // namespace instaface
