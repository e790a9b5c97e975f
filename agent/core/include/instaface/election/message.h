// Messages exchanged between election cores. The wire encoding (framing, version, HMAC) lives
// in agent/wire; this is the decoded, trusted-after-authentication form.
#ifndef INSTAFACE_ELECTION_MESSAGE_H_
#define INSTAFACE_ELECTION_MESSAGE_H_

#include <chrono>
#include <cstdint>
#include <string>

namespace instaface::election {

using Term = uint64_t;
using NodeId = std::string;              // at most kMaxNodeIdLength bytes on the wire
using Nanos = std::chrono::nanoseconds;  // a node's monotonic clock, arbitrary epoch

inline constexpr size_t kMaxNodeIdLength = 64;

enum class MessageType : uint8_t {
  // "Would you vote for me?" (Raft thesis §9.6). term = the term the sender would stand in
  // (its term + 1); the receiver's term does not change.
  kPreVoteRequest = 1,
  // granted; term = the request's term if granted, else the responder's term.
  kPreVoteResponse = 2,
  // "Are you with me?" term = the candidate's (already raised) term. `transfer` is set when the
  // candidacy was started by TimeoutNow: it may override the receiver's leader lease, but only
  // if the leader announced the transfer (see Message::transferring).
  kVoteRequest = 3,
  // granted; term = the responder's term.
  kVoteResponse = 4,
  // Leader to follower. send_time = the leader's clock when sent; transferring = the leader is
  // handing over and no longer counts acks towards its lease.
  kHeartbeat = 5,
  // granted = accepted; term = the responder's term (higher than the leader's on rejection);
  // send_time echoes the heartbeat's send_time (the leader derives its lease from it).
  kHeartbeatResponse = 6,
  // Leader to transfer target: stand now, skipping PreVote. send_time = the transfer's start on
  // the leader's clock, transferring = true: the announcement it carries, should it overtake the
  // heartbeat that makes it.
  kTimeoutNow = 7,
};

const char* MessageTypeName(MessageType type);

struct Message {
  MessageType type = MessageType::kHeartbeat;
  Term term = 0;
  NodeId from;
  NodeId to;
  bool granted = false;       // responses
  bool transfer = false;      // kVoteRequest: campaign started by TimeoutNow
  bool transferring = false;  // kHeartbeat: leader is transferring leadership
  Nanos send_time{0};         // kHeartbeat: sender clock; kHeartbeatResponse: echoed
  // Every type: the sender started less than election_min ago, so it refuses votes and defers a
  // TimeoutNow (election.h); a leader does not pick it as a transfer target while another will do.
  bool restarting = false;

  friend bool operator==(const Message& a, const Message& b) {
    return a.type == b.type && a.term == b.term && a.from == b.from && a.to == b.to &&
           a.granted == b.granted && a.transfer == b.transfer && a.transferring == b.transferring &&
           a.send_time == b.send_time && a.restarting == b.restarting;
  }
};

}  // namespace instaface::election

#endif  // INSTAFACE_ELECTION_MESSAGE_H_
