// libFuzzer target for the durable-state file decoder (built with INSTAFACE_FUZZ=ON and clang).
// A state file is read back from disk after crashes, so any bytes must load or be refused with
// an error, never crash; an accepted file must re-encode to the same bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "instaface/state/state_store.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using instaface::state::StateStore;
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  const auto state = StateStore::Decode(bytes);
  if (!state.ok()) {
    if (state.status().message().empty()) std::abort();
    return 0;
  }
  if (StateStore::Encode(*state) != bytes) std::abort();
  return 0;
}
