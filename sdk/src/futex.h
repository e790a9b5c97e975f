// Thin wrappers over the futex system calls on 32-bit words. Always the shared (not private)
// variant: the words live in a mapping that several processes share, and a private futex is
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

// Sleeps while *first == first_expected and *second == second_expected, until a wake on either
// word or CLOCK_MONOTONIC reaches deadline_ns (futex_waitv, Linux 5.16). Returns early like
// FutexWaitUntil, and true once it has been tried. Returns false, without sleeping, when this
// kernel has no futex_waitv or a seccomp filter refuses it (ENOSYS, EPERM): then, and from
// then on in this process, callers must wait on one word at a time.
bool FutexWaitEitherUntil(const std::atomic<uint32_t>* first, uint32_t first_expected,
                          const void* second, uint32_t second_expected, uint64_t deadline_ns);

// False once FutexWaitEitherUntil has found futex_waitv unusable in this process.
bool FutexWaitEitherUsable();

// Wakes every thread sleeping on word, in any process.
void FutexWakeAll(const std::atomic<uint32_t>* word);

}  // namespace instaface::internal

#endif  // INSTAFACE_SDK_SRC_FUTEX_H_
