#include "instaface/watcher.h"

#include <algorithm>
#include <thread>

#include "clocks.h"
#include "futex.h"
#include "instaface/shm_layout.h"

namespace instaface {

namespace {

constexpr uint64_t kMinTimerNs = 1000000;  // 1 ms: never spin on a lease about to end

bool Differs(const Snapshot& a, const Snapshot& b) {
  return a.change_counter != b.change_counter || a.stale != b.stale ||
         a.lease_valid != b.lease_valid;
}

}  // namespace

std::unique_ptr<Watcher> Watcher::Start(const View& view, Callback callback) {
  std::unique_ptr<Watcher> watcher(new Watcher(view, std::move(callback)));
  watcher->thread_ = std::thread([w = watcher.get()] { w->Run(); });
  return watcher;
}

Watcher::Watcher(const View& view, Callback callback)
    : view_(view), callback_(std::move(callback)) {}

Watcher::~Watcher() { Stop(); }

void Watcher::Stop() {
  if (!thread_.joinable()) return;
  stop_.store(true, std::memory_order_seq_cst);
  // A wake can slip in between the thread's check of stop_ and its futex wait; repeat it until
  // the thread has left (the waits elsewhere absorb the extra wakeups).
  while (!exited_.load(std::memory_order_acquire)) {
    internal::FutexWakeAll(&view_.record_->change_counter);
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  thread_.join();
}

void Watcher::Run() {
  Snapshot last = view_.snapshot();
  callback_(last);
  const uint64_t periodic = std::max<uint64_t>(view_.stale_after_ns_ / 4, kMinTimerNs);
  while (!stop_.load(std::memory_order_seq_cst)) {
    uint64_t timeout = periodic;
    if (last.lease_valid) {
      // Wake when the lease ends, to report lease_valid turning false.
      const uint64_t now = internal::LeaseNowNs();
      const uint64_t left = last.lease_until_ns > now ? last.lease_until_ns - now : 0;
      timeout = std::clamp<uint64_t>(left + kMinTimerNs, kMinTimerNs, periodic);
    }
    // The agent's death ends the sleep at once, unless the last callback already said stale:
    // then the death has nothing new to report, and the timer paces the thread.
    view_.Wait(last.change_counter, std::chrono::nanoseconds(timeout), &stop_,
               /*death_ends_wait=*/!last.stale);
    if (stop_.load(std::memory_order_seq_cst)) break;
    Snapshot now = view_.snapshot();
    if (Differs(now, last)) {
      last = std::move(now);
      callback_(last);
    }
  }
  exited_.store(true, std::memory_order_release);
}

}  // namespace instaface
