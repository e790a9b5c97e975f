// Fuzzes the graph service's input checks with request bodies and path segments: whatever the
// bytes, the checks return a value or an InvalidArgument, and what they accept is in range
// (the query's keys included).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <nlohmann/json.hpp>

#include "instaface/graph/validation.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace instaface::graph;
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  if (auto id = ParseId(text); id.ok() && *id <= 0) std::abort();
  if (auto count = ParseCount(text); count.ok() && *count < 0) std::abort();
  (void)ValidateType(text);

  const nlohmann::json body = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return 0;
  if (auto ids = IdsFromJson(body, 1000); ids.ok()) {
    if (ids->size() > 1000) std::abort();
    for (int64_t id : *ids) {
      if (id <= 0) std::abort();
    }
  }
  (void)ValidateAttributes(body);
  if (auto parts = SplitQuery(body); parts.ok() && parts->entities == nullptr) std::abort();
  return 0;
}
