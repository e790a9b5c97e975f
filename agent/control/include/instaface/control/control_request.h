// The control socket's request language: one JSON object per line.
//
//   {"cmd":"status"}                 the current state
//   {"cmd":"watch"}                  the current state, then one line per change
//   {"cmd":"step-down"}              a leader steps down (a follower answers an error)
//   {"cmd":"transfer","to":"id"}     a leader hands over, to "to" or to the best peer
//   {"cmd":"unplug","on":true}       fault injection: stop (true) or resume (false) heartbeats
//   {"cmd":"unplug","on":true,"peer":"id"}
//                                    fault injection on one link: drop every message to and
//                                    from that peer (true), or carry them again (false)
//
// ParseRequest is a pure function of the line (fuzzed by fuzz_control_request): malformed JSON,
// an unknown command, a missing or mistyped field, or a line over kMaxRequestBytes is an error
// value, never an exception or a crash.
//
// Thread safety: plain values and pure functions.
#ifndef INSTAFACE_CONTROL_CONTROL_REQUEST_H_
#define INSTAFACE_CONTROL_CONTROL_REQUEST_H_

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "instaface/common/status.h"

namespace instaface::control {

// A request line longer than this (newline excluded) is refused and its connection closed.
inline constexpr size_t kMaxRequestBytes = 4096;

enum class Command { kStatus, kWatch, kStepDown, kTransfer, kUnplug };
// "status", "watch", "step-down", "transfer", "unplug".
const char* CommandName(Command command);

struct Request {
  Command command = Command::kStatus;
  std::optional<std::string> transfer_to;  // kTransfer: the chosen peer, if any
  bool unplug_on = false;                  // kUnplug
  std::optional<std::string> unplug_peer;  // kUnplug: one link, not the whole node
};

// `line` without its trailing newline (a trailing '\r' is tolerated).
common::StatusOr<Request> ParseRequest(std::string_view line);

// The request as one JSON line without the newline, as a client sends it.
std::string SerializeRequest(const Request& request);

}  // namespace instaface::control

#endif  // INSTAFACE_CONTROL_CONTROL_REQUEST_H_
