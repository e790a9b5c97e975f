#include "futex.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <climits>

static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t),
              "the futex word must be a plain 32-bit integer");

namespace instaface::internal {

namespace {

// futex_waitv's ABI (include/uapi/linux/futex.h), spelled out so that the SDK builds against
// kernel headers older than 5.16 too; it runs there, falling back.
constexpr long kSysFutexWaitv = 449;  // the same number on every architecture
constexpr uint32_t kFutex2SizeU32 = 0x02;
struct FutexWaitv {
  uint64_t val;
  uint64_t uaddr;
  uint32_t flags;  // kFutex2SizeU32, and not FUTEX2_PRIVATE: these words are shared
  uint32_t reserved;
};
static_assert(sizeof(FutexWaitv) == 24, "struct futex_waitv is 24 bytes");

std::atomic<bool> waitv_unusable{false};

timespec ToTimespec(uint64_t ns) {
  timespec ts;
  ts.tv_sec = static_cast<time_t>(ns / 1000000000ULL);
  ts.tv_nsec = static_cast<long>(ns % 1000000000ULL);
  return ts;
}

}  // namespace

void FutexWaitUntil(const std::atomic<uint32_t>* word, uint32_t expected, uint64_t deadline_ns) {
  timespec deadline = ToTimespec(deadline_ns);
  // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline, so a loop that absorbs
  // spurious wakeups does not stretch the caller's timeout.
  syscall(SYS_futex, const_cast<std::atomic<uint32_t>*>(word), FUTEX_WAIT_BITSET, expected,
          &deadline, nullptr, FUTEX_BITSET_MATCH_ANY);
}

bool FutexWaitEitherUntil(const std::atomic<uint32_t>* first, uint32_t first_expected,
                          const void* second, uint32_t second_expected, uint64_t deadline_ns) {
  if (waitv_unusable.load(std::memory_order_relaxed)) return false;
  FutexWaitv words[2] = {
      {first_expected, reinterpret_cast<uintptr_t>(first), kFutex2SizeU32, 0},
      {second_expected, reinterpret_cast<uintptr_t>(second), kFutex2SizeU32, 0},
  };
  timespec deadline = ToTimespec(deadline_ns);  // absolute, like FUTEX_WAIT_BITSET's
  if (syscall(kSysFutexWaitv, words, 2u, 0u, &deadline, CLOCK_MONOTONIC) >= 0) return true;
  switch (errno) {
    case EAGAIN:     // a word had changed already
    case ETIMEDOUT:  // deadline
    case EINTR:      // a signal
      return true;
    default:
      // ENOSYS before Linux 5.16 (or under a seccomp filter that answers so), EPERM from a
      // filter that denies it, EINVAL from a kernel that knows other flags: a loop that kept
      // trying would spin, so stop for good.
      waitv_unusable.store(true, std::memory_order_relaxed);
      return false;
  }
}

bool FutexWaitEitherUsable() { return !waitv_unusable.load(std::memory_order_relaxed); }

void FutexWakeAll(const std::atomic<uint32_t>* word) {
  syscall(SYS_futex, const_cast<std::atomic<uint32_t>*>(word), FUTEX_WAKE, INT_MAX, nullptr,
          nullptr, 0);
}

}  // namespace instaface::internal
