// Reads the cluster secret that authenticates every message between agents.
//
// Thread safety: a free function with no shared state.
#ifndef INSTAFACE_WIRE_SECRET_H_
#define INSTAFACE_WIRE_SECRET_H_

#include <string>

#include "instaface/common/status.h"

namespace instaface::wire {

// The whole file, with trailing newlines (\n or \r\n) trimmed. A missing or unreadable file,
// or one that is empty after trimming, is an error naming the path.
common::StatusOr<std::string> LoadSecretFile(const std::string& path);

}  // namespace instaface::wire

#endif  // INSTAFACE_WIRE_SECRET_H_
