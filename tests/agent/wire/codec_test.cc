#include "instaface/wire/codec.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <set>
#include <string>
#include <vector>

namespace instaface::wire {
namespace {

using election::Message;
using election::MessageType;

Message SampleMessage() {
  Message m;
  m.type = MessageType::kHeartbeatResponse;
  m.term = 0x0102030405060708ULL;
  m.from = "node-a";
  m.to = "node-b";
  m.granted = true;
  m.transferring = true;
  m.send_time = election::Nanos(-123456789);  // a clock with an arbitrary epoch may be negative
  return m;
}

// Offsets of the fixed-position header fields (see codec.h).
constexpr size_t kVersionOffset = 4;
constexpr size_t kTypeOffset = 5;
constexpr size_t kFlagsOffset = 6;
constexpr size_t kReservedOffset = 7;
constexpr size_t kClusterLengthOffset = 8;

TEST(CodecTest, RoundTripsEveryTypeAndFlag) {
  Codec codec("graph", "s3cret");
  for (int t = 1; t <= 7; ++t) {
    for (int flags = 0; flags < 16; ++flags) {
      Message m = SampleMessage();
      m.type = static_cast<MessageType>(t);
      m.granted = flags & 1;
      m.transfer = flags & 2;
      m.transferring = flags & 4;
      m.restarting = flags & 8;
      const auto bytes = codec.Encode(m, 1111, 2222);
      const Decoded d = codec.Decode(bytes.data(), bytes.size());
      ASSERT_TRUE(d.ok()) << RejectReasonName(d.reason());
      EXPECT_EQ(d.envelope().message, m);
      EXPECT_EQ(d.envelope().timestamp_ns, 1111u);
      EXPECT_EQ(d.envelope().nonce, 2222u);
    }
  }
}

TEST(CodecTest, CarriesTheDeathWatchPort) {
  Codec codec("graph", "s3cret");
  for (uint16_t port : {0, 1, 0x1234, 65535}) {
    const auto bytes = codec.Encode(SampleMessage(), 1, 2, port);
    const Decoded d = codec.Decode(bytes.data(), bytes.size());
    ASSERT_TRUE(d.ok()) << RejectReasonName(d.reason());
    EXPECT_EQ(d.envelope().watch_port, port);
  }
}

TEST(CodecTest, AVersionOneFrameDecodesWithoutAWatchPort) {
  // A version 1 sender's frame: the same fields without the port, under its own MAC.
  Codec codec("graph", "s3cret");
  const auto v2 = codec.Encode(SampleMessage(), 7, 8, 0x4242);
  std::vector<uint8_t> v1(v2.begin(), v2.end() - kMacBytes - 2);
  v1[kVersionOffset] = kVersionWithoutWatchPort;
  unsigned int mac_size = 0;
  uint8_t mac[EVP_MAX_MD_SIZE];
  const std::string key = "s3cret";
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), v1.data(), v1.size(), mac,
       &mac_size);
  ASSERT_EQ(mac_size, kMacBytes);
  v1.insert(v1.end(), mac, mac + kMacBytes);
  const Decoded d = codec.Decode(v1.data(), v1.size());
  ASSERT_TRUE(d.ok()) << RejectReasonName(d.reason());
  EXPECT_EQ(d.envelope().message, SampleMessage());
  EXPECT_EQ(d.envelope().watch_port, 0);
  // The port is covered by the MAC: a version 2 frame relabelled as version 1 fails.
  auto relabelled = v2;
  relabelled[kVersionOffset] = kVersionWithoutWatchPort;
  EXPECT_FALSE(codec.Decode(relabelled.data(), relabelled.size()).ok());
}

TEST(CodecTest, RoundTripsMaximalLengths) {
  const std::string cluster(kMaxClusterLength, 'c');
  Codec codec(cluster, "k");
  Message m = SampleMessage();
  m.from = std::string(election::kMaxNodeIdLength, 'f');
  m.to = std::string(election::kMaxNodeIdLength, 't');
  const auto bytes = codec.Encode(m, 1, 2);
  EXPECT_EQ(bytes.size(), kMaxFrameBytes);
  const Decoded d = codec.Decode(bytes.data(), bytes.size());
  ASSERT_TRUE(d.ok()) << RejectReasonName(d.reason());
  EXPECT_EQ(d.envelope().message, m);
}

TEST(CodecTest, EncodingIsLittleEndian) {
  Codec codec("graph", "s3cret");
  const auto bytes = codec.Encode(SampleMessage(), 0, 0);
  EXPECT_EQ(bytes[0], 'I');
  EXPECT_EQ(bytes[1], 'F');
  EXPECT_EQ(bytes[2], 'W');
  EXPECT_EQ(bytes[3], '1');
  // term follows the 1-byte length and 5 bytes of "graph".
  const size_t term_at = kClusterLengthOffset + 1 + 5;
  EXPECT_EQ(bytes[term_at], 0x08);
  EXPECT_EQ(bytes[term_at + 7], 0x01);
}

Decoded DecodeBytes(const Codec& codec, const std::vector<uint8_t>& bytes) {
  return codec.Decode(bytes.data(), bytes.size());
}

TEST(CodecTest, RejectsEveryTruncation) {
  Codec codec("graph", "s3cret");
  const auto bytes = codec.Encode(SampleMessage(), 5, 6);
  for (size_t n = 0; n < bytes.size(); ++n) {
    std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
    const Decoded d = DecodeBytes(codec, cut);
    ASSERT_FALSE(d.ok()) << "length " << n;
    EXPECT_TRUE(d.reason() == RejectReason::kTooShort || d.reason() == RejectReason::kBadMac)
        << "length " << n << ": " << RejectReasonName(d.reason());
  }
  EXPECT_EQ(codec.Decode(nullptr, 0).reason(), RejectReason::kTooShort);
}

TEST(CodecTest, RejectsTrailingBytes) {
  Codec codec("graph", "s3cret");
  auto bytes = codec.Encode(SampleMessage(), 5, 6);
  bytes.push_back(0);
  EXPECT_EQ(DecodeBytes(codec, bytes).reason(), RejectReason::kTooLong);
  bytes.resize(kMaxFrameBytes + 1, 0);
  EXPECT_EQ(DecodeBytes(codec, bytes).reason(), RejectReason::kTooLong);
}

TEST(CodecTest, RejectsBadHeaderFields) {
  Codec codec("graph", "s3cret");
  const auto good = codec.Encode(SampleMessage(), 5, 6);

  auto bytes = good;
  bytes[0] ^= 0xff;
  EXPECT_EQ(DecodeBytes(codec, bytes).reason(), RejectReason::kBadMagic);

  for (uint8_t version : {0, 3, 255}) {
    bytes = good;
    bytes[kVersionOffset] = version;
    EXPECT_EQ(DecodeBytes(codec, bytes).reason(), RejectReason::kBadVersion) << int(version);
  }

  for (uint8_t type : {0, 8, 255}) {
    bytes = good;
    bytes[kTypeOffset] = type;
    EXPECT_EQ(DecodeBytes(codec, bytes).reason(), RejectReason::kBadType) << int(type);
  }

  bytes = good;
  bytes[kFlagsOffset] |= 0x80;
  EXPECT_EQ(DecodeBytes(codec, bytes).reason(), RejectReason::kBadFlags);

  bytes = good;
  bytes[kReservedOffset] = 1;
  EXPECT_EQ(DecodeBytes(codec, bytes).reason(), RejectReason::kBadFlags);
}

TEST(CodecTest, RejectsBadStringLengths) {
  Codec codec("graph", "s3cret");
  const auto good = codec.Encode(SampleMessage(), 5, 6);
  auto bytes = good;
  bytes[kClusterLengthOffset] = 0;
  EXPECT_EQ(DecodeBytes(codec, bytes).reason(), RejectReason::kBadLength);
  bytes[kClusterLengthOffset] = kMaxClusterLength + 1;
  EXPECT_EQ(DecodeBytes(codec, bytes).reason(), RejectReason::kBadLength);
  // A length that runs past the end of the frame.
  bytes[kClusterLengthOffset] = kMaxClusterLength;
  bytes.resize(kMinFrameBytes);
  EXPECT_EQ(DecodeBytes(codec, bytes).reason(), RejectReason::kTooShort);

  // from's length byte sits right after the term.
  const size_t from_len_at = kClusterLengthOffset + 1 + 5 + 8;
  bytes = good;
  bytes[from_len_at] = 0;
  EXPECT_EQ(DecodeBytes(codec, bytes).reason(), RejectReason::kBadLength);
  bytes[from_len_at] = election::kMaxNodeIdLength + 1;
  EXPECT_EQ(DecodeBytes(codec, bytes).reason(), RejectReason::kBadLength);
}

TEST(CodecTest, RejectsOtherCluster) {
  Codec ours("graph", "s3cret");
  Codec theirs("other", "s3cret");
  const auto bytes = theirs.Encode(SampleMessage(), 5, 6);
  EXPECT_EQ(DecodeBytes(ours, bytes).reason(), RejectReason::kWrongCluster);
}

TEST(CodecTest, RejectsWrongSecret) {
  Codec ours("graph", "s3cret");
  Codec theirs("graph", "s3cret!");
  const auto bytes = theirs.Encode(SampleMessage(), 5, 6);
  EXPECT_EQ(DecodeBytes(ours, bytes).reason(), RejectReason::kBadMac);
}

// Flipping any single bit of an authentic frame must never yield an accepted message.
TEST(CodecTest, RejectsEveryTamperedBit) {
  Codec codec("graph", "s3cret");
  const auto good = codec.Encode(SampleMessage(), 5, 6);
  for (size_t i = 0; i < good.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      auto bytes = good;
      bytes[i] ^= static_cast<uint8_t>(1u << bit);
      EXPECT_FALSE(DecodeBytes(codec, bytes).ok()) << "byte " << i << " bit " << bit;
    }
  }
}

TEST(CodecTest, EveryReasonHasADistinctName) {
  std::set<std::string> names;
  for (size_t i = 0; i < kRejectReasonCount; ++i) {
    names.insert(RejectReasonName(static_cast<RejectReason>(i)));
  }
  EXPECT_EQ(names.size(), kRejectReasonCount);
  EXPECT_EQ(names.count("unknown"), 0u);
}

TEST(CodecTest, ValidatesArguments) {
  EXPECT_TRUE(ValidateCodecArguments("graph", "k").ok());
  EXPECT_EQ(ValidateCodecArguments("", "k").message(), "cluster name must be 1 to 64 bytes");
  EXPECT_FALSE(ValidateCodecArguments(std::string(kMaxClusterLength + 1, 'c'), "k").ok());
  EXPECT_EQ(ValidateCodecArguments("graph", "").message(), "cluster secret must not be empty");
}

}  // namespace
}  // namespace instaface::wire
