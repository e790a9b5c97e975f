// libinstaface's own access to View internals: the C API needs to know why an open failed, and
// the writer builds Views over its own record.
#ifndef INSTAFACE_SDK_SRC_VIEW_ACCESS_H_
#define INSTAFACE_SDK_SRC_VIEW_ACCESS_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "instaface/view.h"

namespace instaface::internal {

enum class OpenFailure { kNone, kInvalidArgument, kNotFound, kIncompatible, kSystem };

struct ViewAccess {
  static Result<View> Open(const std::string& shm_name, OpenFailure* failure);
  // `writable` is the same record mapped writable, or null (View::writable_).
  static View Make(const shm::Record* record, shm::Record* writable, uint64_t stale_after_ns,
                   std::shared_ptr<const void> owner) {
    return View(record, writable, stale_after_ns, std::move(owner));
  }
  // View::WaitForChange for the C API, which tells a death from a timeout: true when the
  // counter moved or the agent died, false on a timeout.
  static bool WaitForChangeOrDeath(const View& view, uint32_t last_seen,
                                   std::chrono::nanoseconds timeout, uint32_t* current) {
    const View::WaitResult result = view.WaitForChangeOrDeath(last_seen, timeout);
    *current = result.counter;
    return result.end == View::WaitEnd::kChanged || result.end == View::WaitEnd::kAgentGone;
  }
  static const shm::Record* record(const View& view) { return view.record_; }
};

}  // namespace instaface::internal

#endif  // INSTAFACE_SDK_SRC_VIEW_ACCESS_H_
