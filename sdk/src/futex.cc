#include "futex.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <climits>

static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t),
              "the futex word must be a plain 32-bit integer");

namespace instaface::internal {

void FutexWaitUntil(const std::atomic<uint32_t>* word, uint32_t expected, uint64_t deadline_ns) {
  timespec deadline;
  deadline.tv_sec = static_cast<time_t>(deadline_ns / 1000000000ULL);
  deadline.tv_nsec = static_cast<long>(deadline_ns % 1000000000ULL);
  // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline, so a loop that absorbs
  // spurious wakeups does not stretch the caller's timeout.
  syscall(SYS_futex, const_cast<std::atomic<uint32_t>*>(word), FUTEX_WAIT_BITSET, expected,
          &deadline, nullptr, FUTEX_BITSET_MATCH_ANY);
}

void FutexWakeAll(const std::atomic<uint32_t>* word) {
  syscall(SYS_futex, const_cast<std::atomic<uint32_t>*>(word), FUTEX_WAKE, INT_MAX, nullptr,
          nullptr, 0);
}

}  // namespace instaface::internal
