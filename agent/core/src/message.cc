#include "instaface/election/message.h"

namespace instaface::election {

const char* MessageTypeName(MessageType type) {
  switch (type) {
    case MessageType::kPreVoteRequest:
      return "PreVoteRequest";
    case MessageType::kPreVoteResponse:
      return "PreVoteResponse";
    case MessageType::kVoteRequest:
      return "VoteRequest";
    case MessageType::kVoteResponse:
      return "VoteResponse";
    case MessageType::kHeartbeat:
      return "Heartbeat";
    case MessageType::kHeartbeatResponse:
      return "HeartbeatResponse";
    case MessageType::kTimeoutNow:
      return "TimeoutNow";
  }
  return "Unknown";
}

}  // namespace instaface::election
