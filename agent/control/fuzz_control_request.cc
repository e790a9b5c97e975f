// libFuzzer target for the control socket's request parser (built with INSTAFACE_FUZZ=ON).
// Any input must parse to a request or an error; an accepted request must survive a
// serialize/parse round trip unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "instaface/control/control_request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace instaface::control;
  std::string_view line(reinterpret_cast<const char*>(data), size);
  auto request = ParseRequest(line);
  if (!request.ok()) {
    if (request.status().message().empty()) std::abort();
    return 0;
  }
  auto again = ParseRequest(SerializeRequest(*request));
  if (!again.ok() || again->command != request->command ||
      again->transfer_to != request->transfer_to || again->unplug_on != request->unplug_on ||
      again->unplug_peer != request->unplug_peer) {
    std::abort();
  }
  return 0;
}
