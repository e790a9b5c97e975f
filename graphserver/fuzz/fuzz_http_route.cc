// Fuzzes the graphserver's route matching with a method and a request target from the network:
// whatever the bytes, MatchRoute returns exactly one of a route or an error, never throws, and
// what it accepts is in range (ids positive, console file names that cannot leave their
// directory). The first byte picks the method, the rest is the target.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "instaface/graphserver/route.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace instaface::graphserver;
  if (size == 0) return 0;
  static constexpr std::string_view kMethods[] = {"GET", "HEAD",   "POST",
                                                  "PUT", "DELETE", "OPTIONS"};
  const std::string_view method = kMethods[data[0] % 6];
  const std::string_view target(reinterpret_cast<const char*>(data + 1), size - 1);
  const RouteMatch m = MatchRoute(method, target);
  if (m.route.has_value() == m.error.has_value()) std::abort();
  if (m.route) {
    const Route& r = *m.route;
    if (r.kind == RouteKind::kConsole) {
      if (r.type.empty() || r.type[0] == '.' || r.type.find('/') != std::string::npos ||
          r.type.size() > kMaxConsoleFileName) {
        std::abort();
      }
    } else if (!r.type.empty() && !IsValidType(r.type)) {
      std::abort();
    }
    if ((r.kind == RouteKind::kCreateAssociation || r.kind == RouteKind::kTimeline ||
         r.kind == RouteKind::kRandom) &&
        r.from <= 0) {
      std::abort();
    }
    if (r.kind == RouteKind::kCreateAssociation && r.to <= 0) std::abort();
  } else if (m.error->status != 400 && m.error->status != 404 && m.error->status != 405) {
    std::abort();
  }
  return 0;
}
