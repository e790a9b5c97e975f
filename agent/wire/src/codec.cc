#include "instaface/wire/codec.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cstring>
#include <optional>

namespace instaface::wire {
namespace {

using election::Message;
using election::MessageType;

constexpr uint8_t kFlagGranted = 1u << 0;
constexpr uint8_t kFlagTransfer = 1u << 1;
constexpr uint8_t kFlagTransferring = 1u << 2;
constexpr uint8_t kFlagRestarting = 1u << 3;  // version 2
constexpr uint8_t kKnownFlags = kFlagGranted | kFlagTransfer | kFlagTransferring | kFlagRestarting;

void PutU8(std::vector<uint8_t>& out, uint8_t v) { out.push_back(v); }
void PutU32(std::vector<uint8_t>& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void PutU64(std::vector<uint8_t>& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void PutString(std::vector<uint8_t>& out, const std::string& s, size_t max) {
  const size_t n = std::min(s.size(), max);
  out.push_back(static_cast<uint8_t>(n));
  out.insert(out.end(), s.begin(), s.begin() + static_cast<std::ptrdiff_t>(n));
}

void ComputeMac(const std::string& secret, const uint8_t* data, size_t size,
                uint8_t mac[kMacBytes]) {
  unsigned int len = kMacBytes;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()), data, size, mac, &len);
}

bool KnownType(uint8_t t) {
  return t >= static_cast<uint8_t>(MessageType::kPreVoteRequest) &&
         t <= static_cast<uint8_t>(MessageType::kTimeoutNow);
}

// Reads fields front to back; every read checks the remaining length first.
class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : p_(data), end_(data + size) {}
  size_t remaining() const { return static_cast<size_t>(end_ - p_); }
  bool U8(uint8_t& v) {
    if (remaining() < 1) return false;
    v = *p_++;
    return true;
  }
  bool U32(uint32_t& v) {
    if (remaining() < 4) return false;
    v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(p_[i]) << (8 * i);
    p_ += 4;
    return true;
  }
  bool U64(uint64_t& v) {
    if (remaining() < 8) return false;
    v = 0;
    for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(p_[i]) << (8 * i);
    p_ += 8;
    return true;
  }
  bool Bytes(size_t n, std::string& s) {
    if (remaining() < n) return false;
    s.assign(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    return true;
  }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
};

}  // namespace

const char* RejectReasonName(RejectReason reason) {
  switch (reason) {
    case RejectReason::kTooShort:
      return "too_short";
    case RejectReason::kTooLong:
      return "too_long";
    case RejectReason::kBadMagic:
      return "bad_magic";
    case RejectReason::kBadVersion:
      return "bad_version";
    case RejectReason::kBadType:
      return "bad_type";
    case RejectReason::kBadFlags:
      return "bad_flags";
    case RejectReason::kBadLength:
      return "bad_length";
    case RejectReason::kWrongCluster:
      return "wrong_cluster";
    case RejectReason::kBadMac:
      return "bad_mac";
    case RejectReason::kReplayed:
      return "replayed";
    case RejectReason::kTooOld:
      return "too_old";
  }
  return "unknown";
}

common::Status ValidateCodecArguments(const std::string& cluster, const std::string& secret) {
  if (cluster.empty() || cluster.size() > kMaxClusterLength) {
    return common::Status::Error("cluster name must be 1 to " + std::to_string(kMaxClusterLength) +
                                 " bytes");
  }
  if (secret.empty()) return common::Status::Error("cluster secret must not be empty");
  return common::Status::Ok();
}

Codec::Codec(std::string cluster, std::string secret)
    : cluster_(std::move(cluster)), secret_(std::move(secret)) {}

std::vector<uint8_t> Codec::Encode(const Message& m, uint64_t timestamp_ns, uint64_t nonce,
                                   uint16_t watch_port) const {
  std::vector<uint8_t> out;
  out.reserve(kMaxFrameBytes);
  PutU32(out, kMagic);
  PutU8(out, kVersion);
  PutU8(out, static_cast<uint8_t>(m.type));
  PutU8(out, static_cast<uint8_t>(
                 (m.granted ? kFlagGranted : 0) | (m.transfer ? kFlagTransfer : 0) |
                 (m.transferring ? kFlagTransferring : 0) | (m.restarting ? kFlagRestarting : 0)));
  PutU8(out, 0);
  PutString(out, cluster_, kMaxClusterLength);
  PutU64(out, m.term);
  PutString(out, m.from, election::kMaxNodeIdLength);
  PutString(out, m.to, election::kMaxNodeIdLength);
  PutU64(out, static_cast<uint64_t>(m.send_time.count()));
  PutU64(out, timestamp_ns);
  PutU64(out, nonce);
  PutU8(out, static_cast<uint8_t>(watch_port & 0xff));
  PutU8(out, static_cast<uint8_t>(watch_port >> 8));
  uint8_t mac[kMacBytes];
  ComputeMac(secret_, out.data(), out.size(), mac);
  out.insert(out.end(), mac, mac + kMacBytes);
  return out;
}

Decoded Codec::Decode(const uint8_t* data, size_t size) const {
  if (data == nullptr || size < kMinFrameBytes) return RejectReason::kTooShort;
  if (size > kMaxFrameBytes) return RejectReason::kTooLong;
  Reader r(data, size);
  uint32_t magic = 0;
  uint8_t version = 0, type = 0, flags = 0, reserved = 0;
  r.U32(magic);
  if (magic != kMagic) return RejectReason::kBadMagic;
  r.U8(version);
  if (version != kVersion && version != kVersionWithoutWatchPort) {
    return RejectReason::kBadVersion;
  }
  r.U8(type);
  if (!KnownType(type)) return RejectReason::kBadType;
  r.U8(flags);
  r.U8(reserved);
  if ((flags & ~kKnownFlags) != 0 || reserved != 0) return RejectReason::kBadFlags;
  if (version == kVersionWithoutWatchPort && (flags & kFlagRestarting) != 0) {
    return RejectReason::kBadFlags;
  }

  Envelope e;
  Message& m = e.message;
  m.type = static_cast<MessageType>(type);
  m.granted = flags & kFlagGranted;
  m.transfer = flags & kFlagTransfer;
  m.transferring = flags & kFlagTransferring;
  m.restarting = flags & kFlagRestarting;

  auto read_string = [&r](size_t max, std::string& s) -> std::optional<RejectReason> {
    uint8_t len = 0;
    if (!r.U8(len)) return RejectReason::kTooShort;
    if (len == 0 || len > max) return RejectReason::kBadLength;
    if (!r.Bytes(len, s)) return RejectReason::kTooShort;
    return std::nullopt;
  };
  std::string cluster;
  if (auto err = read_string(kMaxClusterLength, cluster)) return *err;
  if (!r.U64(m.term)) return RejectReason::kTooShort;
  if (auto err = read_string(election::kMaxNodeIdLength, m.from)) return *err;
  if (auto err = read_string(election::kMaxNodeIdLength, m.to)) return *err;
  uint64_t send_time = 0;
  if (!r.U64(send_time) || !r.U64(e.timestamp_ns) || !r.U64(e.nonce)) {
    return RejectReason::kTooShort;
  }
  m.send_time = election::Nanos(static_cast<int64_t>(send_time));
  if (version == kVersion) {
    uint8_t low = 0, high = 0;
    if (!r.U8(low) || !r.U8(high)) return RejectReason::kTooShort;
    e.watch_port = static_cast<uint16_t>(low | (high << 8));
  }
  if (r.remaining() < kMacBytes) return RejectReason::kTooShort;
  if (r.remaining() > kMacBytes) return RejectReason::kTooLong;

  // Checked before the MAC only to give a precise reason; a foreign cluster's message is
  // rejected either way.
  if (cluster != cluster_) return RejectReason::kWrongCluster;
  const size_t body = size - kMacBytes;
  uint8_t mac[kMacBytes];
  ComputeMac(secret_, data, body, mac);
  if (CRYPTO_memcmp(mac, data + body, kMacBytes) != 0) return RejectReason::kBadMac;
  return e;
}

}  // namespace instaface::wire
