// libFuzzer target for the agent's wire decoder (built with INSTAFACE_FUZZ=ON and clang).
// Any input must decode or be rejected with a reason, never crash; an accepted frame must
// re-encode to exactly the same bytes (the format is canonical; a version 1 frame to the same
// fields), and the replay window must then refuse it.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "instaface/wire/codec.h"
#include "instaface/wire/replay_window.h"

// The seed corpus (corpus/fuzz_wire_decode) is signed with this cluster and secret, so the
// fuzzer starts from frames that pass the MAC and explores the checks after it.
static const instaface::wire::Codec kCodec("fuzz", "fuzz-secret");

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace instaface::wire;
  const Decoded decoded = kCodec.Decode(data, size);
  if (!decoded.ok()) {
    if (static_cast<size_t>(decoded.reason()) >= kRejectReasonCount) std::abort();
    return 0;
  }
  const Envelope& e = decoded.envelope();
  // Version 2 is what Encode writes: it must give the same bytes back. A version 1 frame has
  // no port to lose; its fields must survive a re-encoding.
  const auto again = kCodec.Encode(e.message, e.timestamp_ns, e.nonce, e.watch_port);
  if (data[4] == kVersion) {
    if (again.size() != size || std::memcmp(again.data(), data, size) != 0) std::abort();
  } else {
    const Decoded round = kCodec.Decode(again.data(), again.size());
    if (!round.ok() || !(round.envelope().message == e.message) ||
        round.envelope().watch_port != 0) {
      std::abort();
    }
  }
  ReplayWindowOptions options;
  options.max_skew = std::chrono::nanoseconds(INT64_MAX);
  ReplayWindow window(options);
  if (window.Check(e.message.from, e.timestamp_ns, e.nonce, e.timestamp_ns)) std::abort();
  if (!window.Check(e.message.from, e.timestamp_ns, e.nonce, e.timestamp_ns)) std::abort();
  return 0;
}
