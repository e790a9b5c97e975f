// The wire format of election messages between agents, and its authenticated decoder.
//
// Layout (little-endian, version 2):
//   u32 magic "IFW1" | u8 version | u8 type | u8 flags | u8 reserved (0)
//     flags: 1 granted, 2 transfer, 4 transferring, 8 restarting (version 2)
//   u8 cluster_len | cluster (1..64 bytes)
//   u64 term
//   u8 from_len | from (1..64) | u8 to_len | to (1..64)
//   i64 send_time_ns
//   u64 timestamp_ns (sender's CLOCK_REALTIME, for the replay window) | u64 nonce
//   u16 watch_port (the sender's death-watch port, transport/death_watch.h; 0: none)
//   32 bytes HMAC-SHA256(cluster secret, every byte before it)
// Version 1 is the same without watch_port and the restarting flag, and is still decoded (port
// 0, flag clear): a new agent hears an old one, while an old one rejects version 2 (bad_version).
// A rolling upgrade of an odd-sized cluster, one agent at a time, keeps a majority that hears
// itself at every step (of an even-sized one, not halfway).
//
// Decode never trusts a byte before checking it: every length is bounds-checked, the MAC is
// compared in constant time, and a rejected message yields a RejectReason so that the caller
// can count it. Decode does not apply the replay window (see replay_window.h): a message is
// only recorded as seen once it has authenticated.
//
// Thread safety: a Codec is immutable after construction; Encode and Decode may be called
// from any number of threads at once.
#ifndef INSTAFACE_WIRE_CODEC_H_
#define INSTAFACE_WIRE_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "instaface/common/status.h"
#include "instaface/election/message.h"

namespace instaface::wire {

inline constexpr uint32_t kMagic = 0x31574649;  // "IFW1" read little-endian
inline constexpr uint8_t kVersion = 2;
inline constexpr uint8_t kVersionWithoutWatchPort = 1;
inline constexpr size_t kMaxClusterLength = 64;
inline constexpr size_t kMacBytes = 32;
// Smallest possible frame: 1-byte cluster, from and to.
inline constexpr size_t kMinFrameBytes =
    4 + 4 + (1 + 1) + 8 + (1 + 1) + (1 + 1) + 8 + 8 + 8 + kMacBytes;
inline constexpr size_t kMaxFrameBytes = 4 + 4 + (1 + kMaxClusterLength) + 8 +
                                         2 * (1 + election::kMaxNodeIdLength) + 8 + 8 + 8 + 2 +
                                         kMacBytes;

enum class RejectReason : uint8_t {
  kTooShort = 0,  // fewer bytes than the smallest frame, or a field runs past the end
  kTooLong,       // more bytes than the frame describes
  kBadMagic,
  kBadVersion,
  kBadType,
  kBadFlags,   // unknown flag bits or a non-zero reserved byte
  kBadLength,  // a string length of 0 or above its maximum
  kWrongCluster,
  kBadMac,
  kReplayed,  // this (sender, timestamp, nonce) was already accepted
  kTooOld,    // outside the replay window
};
inline constexpr size_t kRejectReasonCount = 11;
// Stable snake_case name, used as a metrics label.
const char* RejectReasonName(RejectReason reason);

// A message that decoded and authenticated, with the fields the replay window needs.
struct Envelope {
  election::Message message;
  uint64_t timestamp_ns = 0;
  uint64_t nonce = 0;
  uint16_t watch_port = 0;  // 0: the sender runs no death watch (or speaks version 1)
};

class Decoded {
 public:
  Decoded(Envelope envelope) : v_(std::move(envelope)) {}  // NOLINT: implicit on purpose
  Decoded(RejectReason reason) : v_(reason) {}             // NOLINT: implicit on purpose
  bool ok() const { return v_.index() == 0; }
  const Envelope& envelope() const { return std::get<0>(v_); }
  Envelope& envelope() { return std::get<0>(v_); }
  RejectReason reason() const { return std::get<1>(v_); }

 private:
  std::variant<Envelope, RejectReason> v_;
};

class Codec {
 public:
  // `cluster` must be 1..64 bytes and `secret` non-empty; the caller validates both (see
  // ValidateCodecArguments) before constructing.
  Codec(std::string cluster, std::string secret);

  // Encodes `message` under this codec's cluster and secret. Ids longer than kMaxNodeIdLength
  // or empty are a programming error in the caller (ids are validated at configuration); they
  // are truncated to keep the frame decodable. `timestamp_ns` and `nonce` feed the receiver's
  // replay window; `watch_port` tells the receiver where to watch this node's process.
  std::vector<uint8_t> Encode(const election::Message& message, uint64_t timestamp_ns,
                              uint64_t nonce, uint16_t watch_port = 0) const;
  Decoded Decode(const uint8_t* data, size_t size) const;

  const std::string& cluster() const { return cluster_; }

 private:
  std::string cluster_;
  std::string secret_;
};

// OK when the pair is usable, else an error whose message says what is wrong.
common::Status ValidateCodecArguments(const std::string& cluster, const std::string& secret);

}  // namespace instaface::wire

#endif  // INSTAFACE_WIRE_CODEC_H_
