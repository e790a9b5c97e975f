// libFuzzer target for the durable-state file decoder (built with INSTAFACE_FUZZ=ON and clang).
// A state file is read back from disk after crashes, so any bytes must load or be refused with
// an error, never crash; an accepted state must survive a round trip through the current
// format (which need not give back the same bytes: a version-1 file, or two copies of which
// one is damaged, load as one state).
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
  const auto again = StateStore::Decode(StateStore::Encode(*state));
  if (!again.ok() || !(*again == *state)) std::abort();
  return 0;
}
