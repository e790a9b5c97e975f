// Watcher: a thread that calls back whenever the published state changes, for apps that react
// to leadership changes instead of asking is_leader() on every request.
//
//   auto watcher = instaface::Watcher::Start(view, [](const instaface::Snapshot& s) { ... });
//
// The callback runs on the watcher's thread: once at start with the current state, then after
// every publish and whenever `stale` or `lease_valid` flips (those change with time alone, so
// the thread also wakes on a timer: a quarter of stale_after, or the lease end if sooner). The
// agent's death wakes it at once (View::WaitForChange), with `stale` set.
//
// Thread safety: Start and Stop may be called from any thread, but not from the callback. The
// View must outlive the Watcher.
#ifndef INSTAFACE_WATCHER_H_
#define INSTAFACE_WATCHER_H_

#include <atomic>
#include <functional>
#include <memory>
#include <thread>

#include "instaface/view.h"

namespace instaface {

class Watcher {
 public:
  using Callback = std::function<void(const Snapshot&)>;

  static std::unique_ptr<Watcher> Start(const View& view, Callback callback);
  ~Watcher();  // Stop()

  Watcher(const Watcher&) = delete;
  Watcher& operator=(const Watcher&) = delete;

  // Returns after the thread has finished its current callback, if any, and exited.
  void Stop();

 private:
  Watcher(const View& view, Callback callback);
  void Run();

  const View& view_;
  Callback callback_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> exited_{false};
  std::thread thread_;
};

}  // namespace instaface

#endif  // INSTAFACE_WATCHER_H_
