// libFuzzer target for the death watch's hello, the one thing a watcher reads from the peer it
// watches (built with INSTAFACE_FUZZ=ON and clang). Any input must be accepted or refused with
// a message, never crash; an accepted hello must be exactly the one the peer would have sent
// (the format is canonical), so nothing else can pass for it.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "instaface/transport/death_watch.h"

// The seeds (corpus/fuzz_watch_hello) answer this nonce, under this cluster, secret and id.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace instaface::transport;
  std::array<uint8_t, kWatchNonceBytes> nonce{};
  for (size_t i = 0; i < nonce.size(); ++i) nonce[i] = static_cast<uint8_t>(i);
  const auto checked = CheckWatchHello(data, size, "fuzz", "fuzz-secret", "fuzz-leader", nonce);
  if (!checked.ok()) {
    if (checked.message().empty()) std::abort();
    return 0;
  }
  const auto expected = EncodeWatchHello("fuzz", "fuzz-secret", "fuzz-leader", nonce);
  if (size != expected.size() || std::memcmp(data, expected.data(), size) != 0) std::abort();
  return 0;
}
