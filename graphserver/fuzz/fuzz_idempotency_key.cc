// Fuzzes the Idempotency-Key header parser with header values from the network: whatever the
// bytes, it returns a key or an error, never throws, and a key it accepts is 1..128 printable
// ASCII characters that survive formatting for the answer's header and parsing again.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "instaface/graphserver/idempotency_key.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace instaface::graphserver;
  const std::string_view value(reinterpret_cast<const char*>(data), size);
  const auto key = ParseIdempotencyKey(value);
  if (!key.ok()) {
    if (key.status().message().empty()) std::abort();
    return 0;
  }
  if (key->empty() || key->size() > 128) std::abort();
  for (char c : *key) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) std::abort();
  }
  const auto again = ParseIdempotencyKey(FormatIdempotencyKey(*key));
  if (!again.ok() || *again != *key) std::abort();
  return 0;
}
