// A life lock: a robust, process-shared mutex in a shared-memory segment that its writer holds
// for as long as it lives (the agent in its record, an app in its presence record). The kernel
// marks it owner-died the moment the holding thread's process exits, so a reader learns of the
// death at once, from one load of the lock's word, without a system call.
//
// Thread safety: LifeLock is created and destroyed by one thread; the functions on a lock's word
// (OwnerGone, ArmOwnerDeathWake) are safe anywhere.
#ifndef INSTAFACE_SDK_SRC_LIFE_LOCK_H_
#define INSTAFACE_SDK_SRC_LIFE_LOCK_H_

#include <linux/futex.h>
#include <pthread.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdint>
#include <future>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>

namespace instaface::internal {

// Initialises `lock` as robust and process-shared.
inline bool InitLifeLock(pthread_mutex_t* lock) {
  pthread_mutexattr_t attr;
  if (pthread_mutexattr_init(&attr) != 0) return false;
  bool ok = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED) == 0 &&
            pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST) == 0 &&
            pthread_mutex_init(lock, &attr) == 0;
  pthread_mutexattr_destroy(&attr);
  return ok;
}

// Holds a life lock on a thread of its own for as long as its segment is mapped.
// The holder must be a thread that lives as long as the record: the kernel marks the lock when
// the thread that holds it exits, whatever the rest of the process does. A thread of our own
// also lets the lock be released by the thread that took it (a robust mutex refuses any
// other), so that no robust-list entry is left pointing into memory that is unmapped.
class LifeLock {
 public:
  // Takes `lock`, which a dead holder may have left owner-dead. Fails (EBUSY) while a live
  // process holds it, or with the reason no thread could be started to hold it (EAGAIN);
  // never throws, so that a caller's descriptors and locks are released on every path.
  static std::unique_ptr<LifeLock> Take(pthread_mutex_t* lock, int* error) {
    auto keeper = std::unique_ptr<LifeLock>(new LifeLock(lock));
    std::promise<int> taken;
    std::future<int> result = taken.get_future();
    try {
      keeper->thread_ = std::thread([k = keeper.get(), &taken] { k->Hold(taken); });
    } catch (const std::system_error& e) {
      *error = e.code().value();
      return nullptr;
    }
    *error = result.get();
    if (*error != 0) {
      keeper->thread_.join();
      return nullptr;
    }
    return keeper;
  }
  ~LifeLock() {
    {
      std::lock_guard<std::mutex> guard(mu_);
      release_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();  // Take joined it already when it failed
  }

 private:
  explicit LifeLock(pthread_mutex_t* lock) : lock_(lock) {}

  void Hold(std::promise<int>& taken) {
    // What the taker wrote before Take (a withdrawn claim, shm_writer.cc) happens before this
    // thread; the fence passes it on to every reader whose acquire load of the word sees it
    // taken (glibc's compare-and-swap below is only an acquire). ThreadSanitizer models no
    // fence (GCC warns of one), nor sees glibc's own atomics: its builds go without.
#ifndef __SANITIZE_THREAD__
    std::atomic_thread_fence(std::memory_order_release);
#endif
    int rv = pthread_mutex_trylock(lock_);
    if (rv == EOWNERDEAD) rv = pthread_mutex_consistent(lock_);  // a dead holder's: ours now
    if (rv == ENOTRECOVERABLE) {
      // Left unusable (released by an owner that never made it consistent): start afresh.
      pthread_mutex_destroy(lock_);
      rv = InitLifeLock(lock_) ? pthread_mutex_trylock(lock_) : EINVAL;
    }
    taken.set_value(rv);
    if (rv != 0) return;
    std::unique_lock<std::mutex> guard(mu_);
    cv_.wait(guard, [this] { return release_; });
    pthread_mutex_unlock(lock_);
  }

  pthread_mutex_t* const lock_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool release_ = false;
};

// The lock's futex word. The kernel and glibc update it with atomic operations; read it as one.
inline uint32_t LifeLockWord(const pthread_mutex_t& lock) {
  return static_cast<uint32_t>(__atomic_load_n(&lock.__data.__lock, __ATOMIC_ACQUIRE));
}

// Whether a word of LifeLockWord says its holder is gone: the kernel marked it owner-died, or
// nobody holds it.
inline bool OwnerGoneWord(uint32_t word) {
  return (word & FUTEX_OWNER_DIED) != 0 || (word & FUTEX_TID_MASK) == 0;
}

// Whether the holder of `lock` is gone.
inline bool OwnerGone(const pthread_mutex_t& lock) { return OwnerGoneWord(LifeLockWord(lock)); }

// Makes the holder's death wake a sleeper on the lock's word: sets FUTEX_WAITERS in it, if it
// still is `observed` (a live holder's), exactly as a thread that blocks in pthread_mutex_lock
// does. Returns the word as it is afterwards: observed | FUTEX_WAITERS, or whatever it changed
// to (the holder died or let go, or another sleeper set the bit first).
//
// This is glibc's own protocol for a robust mutex, so the holder is none the worse for it: its
// unlock swaps the word to 0 and, seeing FUTEX_WAITERS, wakes one sleeper (FUTEX_WAKE, 1); a
// process that takes the lock over from a dead holder keeps the bit. When the holder dies, the
// kernel (handle_futex_death, as the thread exits) sets FUTEX_OWNER_DIED, keeps FUTEX_WAITERS,
// and because that bit is set wakes one sleeper on the word. One: the one woken must wake the
// rest (View's wait does). Needs a writable mapping of the lock.
inline uint32_t ArmOwnerDeathWake(pthread_mutex_t* lock, uint32_t observed) {
  int expected = static_cast<int>(observed);
  const int armed = static_cast<int>(observed | FUTEX_WAITERS);
  if (__atomic_compare_exchange_n(&lock->__data.__lock, &expected, armed, false, __ATOMIC_SEQ_CST,
                                  __ATOMIC_ACQUIRE)) {
    return static_cast<uint32_t>(armed);
  }
  return static_cast<uint32_t>(expected);
}

}  // namespace instaface::internal

#endif  // INSTAFACE_SDK_SRC_LIFE_LOCK_H_
