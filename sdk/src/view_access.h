// libinstaface's own access to View internals: the C API needs to know why an open failed, and
// the writer builds Views over its own record.
#ifndef INSTAFACE_SDK_SRC_VIEW_ACCESS_H_
#define INSTAFACE_SDK_SRC_VIEW_ACCESS_H_

#include <memory>
#include <string>

#include "instaface/view.h"

namespace instaface::internal {

enum class OpenFailure { kNone, kInvalidArgument, kNotFound, kIncompatible, kSystem };

struct ViewAccess {
  static Result<View> Open(const std::string& shm_name, OpenFailure* failure);
  static View Make(const shm::Record* record, std::atomic<uint32_t>* waiters,
                   uint64_t stale_after_ns, std::shared_ptr<const void> owner) {
    return View(record, waiters, stale_after_ns, std::move(owner));
  }
  static const shm::Record* record(const View& view) { return view.record_; }
};

}  // namespace instaface::internal

#endif  // INSTAFACE_SDK_SRC_VIEW_ACCESS_H_
