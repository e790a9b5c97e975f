// Thin wrappers over the futex system call on a 32-bit word. Always the shared (not private)
// variant: the word lives in a mapping that several processes share, and a private futex is
// keyed by the address in one process only.
#ifndef INSTAFACE_SDK_SRC_FUTEX_H_
#define INSTAFACE_SDK_SRC_FUTEX_H_

#include <atomic>
#include <cstdint>

namespace instaface::internal {

// Sleeps while *word == expected, until woken or CLOCK_MONOTONIC reaches deadline_ns. Returns
// early, without saying why, on a wake, a signal, a changed word or a spurious wakeup; callers
// re-check their condition in a loop.
void FutexWaitUntil(const std::atomic<uint32_t>* word, uint32_t expected, uint64_t deadline_ns);

// Wakes every thread sleeping on word, in any process.
void FutexWakeAll(const std::atomic<uint32_t>* word);

}  // namespace instaface::internal

#endif  // INSTAFACE_SDK_SRC_FUTEX_H_
