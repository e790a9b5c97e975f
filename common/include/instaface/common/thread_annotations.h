// Locks the compiler checks. clang's thread-safety analysis (-Wthread-safety) proves at compile
// time that every GUARDED_BY member is touched only with its mutex held; other compilers see
// the plain types. libstdc++'s std::mutex carries no annotations, so state shared between
// threads is guarded by instaface::common::Mutex and locked with MutexLock.
//
//   common::Mutex mu_;
//   std::deque<Job> queue_ GUARDED_BY(mu_);
//   void Push(Job j) EXCLUDES(mu_) { common::MutexLock lock(mu_); queue_.push_back(j); }
//
// Waiting on a std::condition_variable goes through MutexLock::native(); write the wait as a
// loop around cv.wait(lock.native()) rather than with a predicate lambda, which the analysis
// would check as a function of its own, without the lock.
//
// Thread safety: that is the point.
#ifndef INSTAFACE_COMMON_THREAD_ANNOTATIONS_H_
#define INSTAFACE_COMMON_THREAD_ANNOTATIONS_H_

#include <mutex>

#if defined(__clang__)
#define INSTAFACE_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define INSTAFACE_THREAD_ANNOTATION(x)
#endif

#define CAPABILITY(x) INSTAFACE_THREAD_ANNOTATION(capability(x))
#define SCOPED_CAPABILITY INSTAFACE_THREAD_ANNOTATION(scoped_lockable)
#define GUARDED_BY(x) INSTAFACE_THREAD_ANNOTATION(guarded_by(x))
#define PT_GUARDED_BY(x) INSTAFACE_THREAD_ANNOTATION(pt_guarded_by(x))
#define REQUIRES(...) INSTAFACE_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define EXCLUDES(...) INSTAFACE_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define ACQUIRE(...) INSTAFACE_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define RELEASE(...) INSTAFACE_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define NO_THREAD_SAFETY_ANALYSIS INSTAFACE_THREAD_ANNOTATION(no_thread_safety_analysis)

namespace instaface::common {

class CAPABILITY("mutex") Mutex {
 public:
  void Lock() ACQUIRE() { mu_.lock(); }
  void Unlock() RELEASE() { mu_.unlock(); }
  std::mutex& native() { return mu_; }

 private:
  std::mutex mu_;
};

// Holds a Mutex for its scope; may be unlocked early and locked again.
class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mu) ACQUIRE(mu) : lock_(mu.native()) {}
  ~MutexLock() RELEASE() {}
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  void Unlock() RELEASE() { lock_.unlock(); }
  void Lock() ACQUIRE() { lock_.lock(); }
  // For std::condition_variable::wait, which releases the mutex while it sleeps and holds it
  // again when it returns.
  std::unique_lock<std::mutex>& native() { return lock_; }

 private:
  std::unique_lock<std::mutex> lock_;
};

}  // namespace instaface::common

#endif  // INSTAFACE_COMMON_THREAD_ANNOTATIONS_H_
