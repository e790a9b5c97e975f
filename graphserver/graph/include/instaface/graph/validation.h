// Input rules of the graph service, shared by the service and the HTTP layer (which parses ids
// and counts out of URL paths with them).
//
// Thread safety: pure functions.
#ifndef INSTAFACE_GRAPH_VALIDATION_H_
#define INSTAFACE_GRAPH_VALIDATION_H_

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "instaface/common/status.h"

namespace instaface::graph {

// Entity and association types: 1..10 characters of [A-Za-z0-9_-] (they are also URL path
// segments, and the column is VARCHAR(10)).
common::Status ValidateType(std::string_view type);

// An id is an integer in [1, 2^63 - 1]. From decimal text (a URL path segment): no sign, no
// spaces, no leading '+', at most 19 digits.
common::StatusOr<int64_t> ParseId(std::string_view text);
// A non-negative decimal count (the {count} of /random), at most 10 digits.
common::StatusOr<int64_t> ParseCount(std::string_view text);

// A JSON array of ids (unsigned or positive integers, no floats, no strings), at most max_ids
// long. Duplicates are kept in order; callers dedupe when they need to.
common::StatusOr<std::vector<int64_t>> IdsFromJson(const nlohmann::json& ids, size_t max_ids,
                                                   std::string_view what = "ids");

// Attributes must be a JSON object (null is taken as {}).
common::Status ValidateAttributes(const nlohmann::json& attributes);

// An idempotency key (entity_writes.h): 1 to kMaxIdempotencyKeyLength characters of printable
// ASCII (space to '~'), which is what an HTTP header can carry and the key column stores.
inline constexpr size_t kMaxIdempotencyKeyLength = 128;
common::Status ValidateIdempotencyKey(std::string_view key);

// The two keys of a query request, found as the original service's .NET model binder finds
// them: case-insensitively ("Entities" and "Template" are what its clients send). Any other
// key, or one key twice under different cases, is refused rather than ignored, so a misspelt
// request gets a 400 that names the key instead of an empty answer. Pointers into `request`.
struct QueryParts {
  const nlohmann::json* entities = nullptr;  // never null on success
  const nlohmann::json* tmpl = nullptr;      // null when the request has no template
};
common::StatusOr<QueryParts> SplitQuery(const nlohmann::json& request);

}  // namespace instaface::graph

#endif  // INSTAFACE_GRAPH_VALIDATION_H_
