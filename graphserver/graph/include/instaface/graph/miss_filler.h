// MissFiller: where a follower's cache misses are filled from when it should not (or need not)
// read the database itself. The HTTP layer implements it by calling the leader's read routes
// (POST /api/graph/entities and POST /api/graph/entities/{type}) and returning their JSON as is.
//
// GraphService asks ShouldUse() on every miss batch; returning false (this node leads, or no
// leader is known) makes the service read its own database (or replica) instead. When a Fetch
// fails, the service also falls back to the database, so a leader change never fails a read.
//
// Thread safety: implementations are called from many request threads at once and must be
// thread-safe.
#ifndef INSTAFACE_GRAPH_MISS_FILLER_H_
#define INSTAFACE_GRAPH_MISS_FILLER_H_

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "instaface/common/status.h"

namespace instaface::graph {

class MissFiller {
 public:
  virtual ~MissFiller() = default;
  virtual bool ShouldUse() const = 0;
  // The leader's answer to POST /entities with `ids`: [{id, type, created, attributes}, ...].
  virtual common::StatusOr<nlohmann::json> FetchEntities(const std::vector<int64_t>& ids) = 0;
  // The leader's answer to POST /entities/{type} with `from_ids`:
  // [{type, from, to, created, attributes}, ...].
  virtual common::StatusOr<nlohmann::json> FetchAssociations(
      const std::string& type, const std::vector<int64_t>& from_ids) = 0;
};

}  // namespace instaface::graph

#endif  // INSTAFACE_GRAPH_MISS_FILLER_H_
