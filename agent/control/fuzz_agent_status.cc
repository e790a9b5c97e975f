// libFuzzer target for the status reply's reader (built with INSTAFACE_FUZZ=ON). Any bytes must
// give a status or an error with a message; an accepted status must survive a render/parse round
// trip unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "instaface/control/agent_status.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace instaface::control;
  const auto json = nlohmann::json::parse(data, data + size, nullptr, false);
  if (json.is_discarded()) return 0;
  auto status = ParseAgentStatus(json);
  if (!status.ok()) {
    if (status.status().message().empty()) std::abort();
    return 0;
  }
  auto again = ParseAgentStatus(ToJson(*status));
  if (!again.ok() || !(*again == *status)) std::abort();
  return 0;
}
